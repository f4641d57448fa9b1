"""Provider presets resolve to complete feed specs; they are data, so a new one is a dict."""
import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.presets import (
    PRESETS, PresetError, resolve_feed,
)


def test_abuseipdb_sets_url_header_format_and_limits():
    feed, secrets = resolve_feed({'name': 'abuse', 'preset': 'abuseipdb', 'api_key': 'k' * 80})
    assert feed['url'] == 'https://api.abuseipdb.com/api/v2/blacklist?confidenceMinimum=90&limit=10000'
    assert feed['headers'] == {'Key': 'k' * 80, 'Accept': 'application/json'}
    assert (feed['format'], feed['query']) == ('json', 'data[].[ipAddress, abuseConfidenceScore]')
    assert feed['min_interval'] == 21600 and feed['preset'] == 'abuseipdb'
    assert 'k' * 80 in secrets


def test_operator_settings_win_and_params_merge():
    feed, _s = resolve_feed({'name': 'abuse', 'preset': 'abuseipdb', 'api_key': 'secret-key',
                             'url': 'http://127.0.0.1:8080/abuseipdb/api/v2/blacklist',
                             'params': {'confidenceMinimum': 50, 'limit': None}, 'min_interval': 60})
    assert feed['url'] == 'http://127.0.0.1:8080/abuseipdb/api/v2/blacklist?confidenceMinimum=50'
    assert feed['min_interval'] == 60


def test_plaintext_mode_overlays_the_preset():
    feed, _s = resolve_feed({'name': 'abuse', 'preset': 'abuseipdb', 'mode': 'plaintext', 'api_key': 'kkkk'})
    assert feed['format'] == 'plain' and 'query' not in feed
    assert feed['url'].endswith('&plaintext=true')
    assert feed['headers']['Accept'] == 'text/plain' and feed['headers']['Key'] == 'kkkk'


def test_bearer_list_fills_the_list_id_and_redacts_the_token():
    feed, secrets = resolve_feed({'name': 'vendor', 'preset': 'bearer_list', 'api_key': 'tok-123456',
                                  'url': 'https://lists.example.net/v1/lists/{list_id}.txt',
                                  'params': {'list_id': 'ssh-brute'}})
    assert feed['url'] == 'https://lists.example.net/v1/lists/ssh-brute.txt'
    assert feed['headers'] == {'Authorization': 'Bearer tok-123456'}
    assert 'tok-123456' in secrets and 'Bearer tok-123456' in secrets


def test_ipsum_level_is_min_count():
    feed, _s = resolve_feed({'name': 'ipsum', 'preset': 'ipsum', 'level': 5})
    assert (feed['format'], feed['min_count']) == ('ipsum', 5)
    assert 'level' not in feed
    assert resolve_feed({'name': 'ipsum', 'preset': 'ipsum'})[0]['min_count'] == 3


def test_sikkerapi_filters_pass_through():
    feed, _s = resolve_feed({'name': 's', 'preset': 'sikkerapi', 'api_key': 'sk_free_x',
                             'params': {'protocols': 'ssh,http', 'onlyCountries': 'CN,RU', 'scoreMinimum': 90}})
    assert 'protocols=ssh%2Chttp' in feed['url'] and 'onlyCountries=CN%2CRU' in feed['url']
    assert 'scoreMinimum=90' in feed['url'] and 'plaintext=true' in feed['url']


@pytest.mark.parametrize('spec, message', [
    ({'name': 'a', 'preset': 'nope'}, "unknown preset 'nope'"),
    ({'name': 'a', 'preset': 'abuseipdb'}, 'needs api_key'),
    ({'name': 'a', 'preset': 'bearer_list', 'api_key': 'tttt'}, 'needs url'),
    ({'name': 'a', 'preset': 'bearer_list', 'api_key': 'tttt', 'url': 'https://x.example/{list_id}'},
     r'needs a value for \{list_id\}'),
    ({'name': 'a', 'preset': 'abuseipdb', 'api_key': 'k', 'mode': 'csv'}, "no mode 'csv'"),
    ({'name': 'a', 'url': 'https://x.example/', 'mode': 'v6'}, 'mode needs a preset'),
])
def test_configuration_errors_are_clear(spec, message):
    with pytest.raises(PresetError, match=message):
        resolve_feed(spec)


def test_operator_presets_are_plain_data():
    mine = {'internal': {'url': 'https://feeds.internal/{team}.txt', 'headers': {'X-Api-Key': '{api_key}'},
                         'format': 'plain', 'min_interval': 120, 'requires': ['api_key']}}
    feed, secrets = resolve_feed({'name': 'i', 'preset': 'internal', 'api_key': 'abcd1234',
                                  'params': {'team': 'soc'}}, mine)
    assert feed['url'] == 'https://feeds.internal/soc.txt' and feed['min_interval'] == 120
    assert secrets == ['abcd1234', 'abcd1234']


def test_every_builtin_preset_documents_its_quota():
    for name, preset in PRESETS.items():
        assert preset.get('quota'), name
        assert preset.get('min_interval'), name
