"""Provider presets resolve to complete feed specs; they are data, so a new one is a dict."""
import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.presets import (
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


# -- the secrets resolve_feed collects for redaction --------------------------------------------------------------

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.presets import (  # noqa: E402
    preset_secrets, spec_secrets,
)


def test_every_header_value_the_operator_wrote_is_a_secret_whatever_its_name():
    feed, secrets = resolve_feed({'name': 'f', 'url': 'https://feeds.example.net/list.txt',
                                  'headers': {'X-Custom-Token': 'ct-1', 'X-Tenant': '42',
                                              'Authorization': 'Basic dXNyOnB3OjE='}})
    assert feed['headers']['X-Custom-Token'] == 'ct-1'
    # Short and numeric ones too: the operator wrote them, nothing tells an auth header from its name.
    assert {'ct-1', '42'} <= set(secrets)
    # Basic credentials as sent, the token after the scheme, and decoded: 'usr:pw:1', 'usr', 'pw:1'.
    assert {'Basic dXNyOnB3OjE=', 'dXNyOnB3OjE=', 'usr:pw:1', 'usr', 'pw:1'} <= set(secrets)


def test_a_key_of_any_length_and_the_presets_key_header_are_secrets_its_constants_are_not():
    _feed, secrets = resolve_feed({'name': 'a', 'preset': 'abuseipdb', 'api_key': 'k3y'})
    assert secrets == ['k3y', 'k3y']        # the key, and the Key header that carries it
    assert 'application/json' not in secrets  # a built-in preset's Accept header is public
    _feed, secrets = resolve_feed({'name': 'b', 'preset': 'bearer_list', 'api_key': 'Zq9',
                                   'url': 'https://lists.example.net/x.txt'})
    assert {'Zq9', 'Bearer Zq9'} <= set(secrets)


def test_url_userinfo_and_query_values_are_secrets_plain_numbers_and_booleans_are_not():
    url = 'https://us%40r:p%2Fw@feeds.example.net/v1/{list_id}.txt?token=a%2Bb+c&limit=10&score=-2.5&plain=TRUE&k7'
    feed, secrets = resolve_feed({'name': 'u', 'url': url, 'params': {'list_id': 'ssh', 'extra': 'xq1', 'min': 90}})
    assert feed['url'] == ('https://us%40r:p%2Fw@feeds.example.net/v1/ssh.txt'
                           '?token=a%2Bb+c&limit=10&score=-2.5&plain=TRUE&k7&extra=xq1&min=90')
    # As written in the URL and decoded; Basic base64 of what urllib sends for them.
    assert {'us%40r', 'us@r', 'p%2Fw', 'p/w', 'dXNAcjpwL3c='} <= set(secrets)
    assert {'a%2Bb+c', 'a+b c', 'k7', 'xq1'} <= set(secrets)
    assert not {'10', '-2.5', 'TRUE', '90', 'ssh'} & set(secrets)   # settings, and a value that fills the path


def test_operator_presets_literal_headers_are_secrets_used_or_not():
    mine = {'internal': {'url': 'https://feeds.internal/list.txt',
                         'headers': {'X-Team-Token': 'lit-4', 'Accept': 'a/b'},
                         'modes': {'v2': {'headers': {'X-Team-Token': 'lit-v2'}}}},
            'keyed': {'headers': {'Key': '{api_key}'}}}
    _feed, secrets = resolve_feed({'name': 'i', 'preset': 'internal'}, mine)
    assert {'lit-4', 'a/b'} <= set(secrets)     # the operator wrote the preset: all of it
    assert set(preset_secrets(mine)) == {'lit-4', 'a/b', 'lit-v2'}   # '{api_key}' is filled per feed


def test_spec_secrets_cover_a_feed_that_does_not_resolve():
    spec = {'name': 'x', 'preset': 'nope', 'api_key': 'k1', 'headers': {'X-T': 'Bearer t2'},
            'url': 'https://u3:p4@x.example/?q=s5'}
    with pytest.raises(PresetError):
        resolve_feed(spec)
    assert {'k1', 'Bearer t2', 't2', 'u3', 'p4', 's5'} <= set(spec_secrets(spec))
