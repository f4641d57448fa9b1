"""Provider presets end to end: playbooks/shadow_copy.yml against the provider-emulating feed
server, then playbooks/push.yml to the lab fleet without a single request to any provider.

The tests run in order and share one shadow copy, as successive scheduled runs would.
"""
import gzip
import json
import os

import netaddr
import pytest

from .conftest import HOSTS, ansible, host_sh, reachable

import feed_server
import fleet
from ansible_collections.fleetwall.blocklist.tests.helpers import provider_oracle

KEY = feed_server.LAB_KEYS['abuseipdb']
ATTACKER, FRIEND = fleet.ATTACKER, fleet.FRIEND


@pytest.fixture(scope='module')
def setup(lab, feeds, tmp_path_factory):
    (feeds.root / 'lab_attackers_scored.json').write_text(json.dumps({'data': [
        {'ipAddress': ATTACKER[0], 'abuseConfidenceScore': 100},
        {'ipAddress': ATTACKER[1], 'abuseConfidenceScore': 100},
    ]}))
    feeds.state.reset()
    state = tmp_path_factory.mktemp('feeds-shadow')
    abuse = {'name': 'abuseipdb', 'preset': 'abuseipdb', 'api_key': KEY,
             'url': feeds.url + '/abuseipdb/api/v2/blacklist', 'params': {'confidenceMinimum': 50}}
    return {
        'tmp': tmp_path_factory.mktemp('feeds-vars'), 'feeds': feeds, 'abuse': abuse,
        'vars': {
            'shadow_copy_dir': str(state / 'copy'),
            'shadow_copy_mirror_dir': str(state / 'mirror'),
            'shadow_copy_mirror_host': 'h1',
            'shadow_copy_mirror_host_dir': '/var/lib/fleetwall/mirror',
            'shadow_copy_feeds': [
                abuse,
                {'name': 'spamhaus_drop', 'preset': 'spamhaus_drop', 'url': feeds.url + '/providers/drop_v4.json'},
                {'name': 'spamhaus_drop_v6', 'preset': 'spamhaus_drop', 'mode': 'v6',
                 'url': feeds.url + '/providers/drop_v6.json'},
                {'name': 'ipsum', 'preset': 'ipsum', 'level': 3, 'url': feeds.url + '/ipsum/ipsum.txt'},
                # The lab's attackers, scored like an API would, so that the push has something to prove.
                {'name': 'lab', 'format': 'json', 'query': 'data[].[ipAddress, abuseConfidenceScore]',
                 'url': feeds.url + '/lab_attackers_scored.json'},
            ],
        },
    }


def run(setup, playbook, *args):
    return ansible('ansible-playbook', [playbook] + list(args), extra_vars=setup['vars'], tmp_path=setup['tmp'])


def current(setup, name):
    return os.path.join(setup['vars']['shadow_copy_dir'], 'current', name)


def test_presets_build_one_shadow_copy_with_tiers_and_provenance(setup):
    result = run(setup, 'playbooks/shadow_copy.yml', '-vvv')
    assert result.rc == 0, result.out[-3000:]
    # The key went to the provider (the emulator checked it) but never to the output, even at -vvv.
    assert setup['feeds'].state.requests[0][2].get('Key') == KEY
    assert KEY not in result.out
    with open(current(setup, 'manifest.json')) as handle:
        manifest = json.load(handle)
    assert [f['status'] for f in manifest['feeds']] == ['fresh'] * 5
    assert KEY not in json.dumps(manifest)

    records, block, challenge = provider_oracle(extra_block=ATTACKER)

    def entries(*names):
        out = []
        for name in names:
            with open(current(setup, name)) as handle:
                out.extend(handle.read().split())
        return out

    assert netaddr.IPSet(entries('blocklist_v4.txt', 'blocklist_v6.txt')) == block
    assert netaddr.IPSet(entries('challenge_v4.txt', 'challenge_v6.txt')) == challenge
    assert manifest['files']['blocklist_v4.txt']['entries'] == len(entries('blocklist_v4.txt'))
    abuse = manifest['feeds'][0]
    assert (abuse['block'], abuse['challenge']) == (
        sum(1 for r in records if r['abuseConfidenceScore'] >= 90),
        sum(1 for r in records if 50 <= r['abuseConfidenceScore'] < 90))
    with gzip.open(current(setup, 'provenance.tsv.gz'), 'rt') as handle:
        rows = {line.split('\t')[0]: line.rstrip('\n').split('\t')[1:] for line in handle if line[0] != '#'}
    assert rows[ATTACKER[0]] == ['lab', '100']
    assert rows['1.10.16.0/20'] == ['spamhaus_drop', '-']
    # The mirror holds the same generation.
    with open(os.path.join(setup['vars']['shadow_copy_mirror_dir'], 'current', 'manifest.json')) as handle:
        assert json.load(handle)['content_sha256'] == manifest['content_sha256']
    assert 'feed abuseipdb: fresh' in result.out
    # And the mirror host has it too, behind a current link.
    rc, out, err = host_sh('h1', 'cat /var/lib/fleetwall/mirror/current/manifest.json')
    assert rc == 0, err
    assert json.loads(out)['content_sha256'] == manifest['content_sha256']


def test_scheduled_too_often_reuses_the_copy_without_requests(setup):
    before = len(setup['feeds'].state.requests)
    result = run(setup, 'playbooks/shadow_copy.yml')
    assert result.rc == 0, result.out[-3000:]
    provider_requests = [r for r in setup['feeds'].state.requests[before:] if not r[0].startswith('/lab_')]
    assert provider_requests == []
    assert 'feed abuseipdb: cached' in result.out and 'min_interval is 21600 s' in result.out
    assert 'generation 1 (unchanged)' in result.out


def test_failed_provider_keeps_the_previous_generation_and_says_why(setup):
    setup['abuse']['min_interval'] = 0
    setup['feeds'].state.keys['abuseipdb'] = 'rotated-key-at-the-provider'
    try:
        result = run(setup, 'playbooks/shadow_copy.yml')
    finally:
        setup['feeds'].state.keys['abuseipdb'] = KEY
        del setup['abuse']['min_interval']
    assert result.rc == 0, result.out[-3000:]
    assert 'authentication failed (HTTP 401): Authentication failed' in result.out
    assert 'feed abuseipdb: cached' in result.out
    assert 'generation 1 (unchanged)' in result.out
    assert KEY not in result.out


def test_push_only_sends_no_request_and_blocks(setup):
    before = len(setup['feeds'].state.requests)
    result = run(setup, 'playbooks/push.yml')
    assert result.rc == 0, result.out[-3000:]
    assert len(setup['feeds'].state.requests) == before
    for host in HOSTS:
        assert not reachable('attacker', host, ATTACKER[0], 4)
        assert not reachable('attacker', host, ATTACKER[1], 6)
        assert reachable('friend', host, FRIEND[0], 4)


@pytest.mark.parametrize('fault', ['429', '500', 'html', 'truncated', 'slow', 'json_error', 'garbage'])
def test_every_failure_mode_keeps_protection_and_says_what_happened(setup, fault):
    """A provider failing in each way during a full build-and-push run: the generation stays,
    the hosts keep blocking, and the run says what happened to which feed."""
    state = setup['feeds'].state
    state.faults['/abuseipdb/'] = fault
    state.slow_seconds = 3
    # A short reset, so that the not_before it leaves does not hold the next case back.
    state.retry_after = 1
    setup['abuse'].update(min_interval=0, timeout=1, retries=1)
    try:
        result = run(setup, 'playbooks/blocklist.yml')
    finally:
        state.faults.clear()
        for key in ('min_interval', 'timeout', 'retries'):
            del setup['abuse'][key]
    assert result.rc == 0, result.out[-3000:]
    expected = {'429': 'rate limited (HTTP 429): rate limit exceeded', '500': 'HTTP 500',
                'html': 'HTML page', 'truncated': 'body truncated', 'slow': 'timed out',
                'json_error': 'Your subscription has expired', 'garbage': 'not valid JSON'}[fault]
    assert expected in result.out
    assert 'feed abuseipdb: cached' in result.out and 'generation 1 (unchanged)' in result.out
    for host in HOSTS:
        assert not reachable('attacker', host, ATTACKER[0], 4)
        assert reachable('friend', host, FRIEND[0], 4)


# -- secrets: none in the output at -vvv nor in any file, however the provider echoes them -------------------------

from urllib.parse import quote, quote_plus  # noqa: E402

from ansible_collections.fleetwall.blocklist.tests.helpers import (  # noqa: E402
    ECHO_KEY, ECHO_PASSWORD, ECHO_QUERY, ECHO_TOKEN, ECHO_USER, echo_secret_forms)


def echo_url(feeds, kind):
    """A URL of the echoing fault with the user info and a key in the query."""
    return 'http://%s:%s@127.0.0.1:%d/fault/%s/list.txt?token=%s&limit=10' % (
        quote(ECHO_USER), quote(ECHO_PASSWORD, safe=''), feeds.server_address[1], kind, quote_plus(ECHO_QUERY))


def test_no_secret_reaches_the_output_at_vvv_or_any_file_however_the_provider_echoes_it(setup, tmp_path):
    """Every kind of secret, each to a provider that echoes it in the reason phrase, a JSON error, a 200 body and
    a redirect's Location: the build at -vvv and the lookup's errors show none of them, nor does any file the build
    wrote (the feed cache's bodies, the provider's bytes verbatim, are 0600), and both still say what failed."""
    feeds = setup['feeds']
    echo_feeds = []
    for kind in feed_server.ECHO_FAULTS:
        path = '/fault/%s/list.txt' % kind
        echo_feeds += [
            {'name': kind + '-header', 'url': feeds.url + path, 'headers': {'X-Custom-Token': ECHO_TOKEN}},
            {'name': kind + '-key', 'preset': 'bearer_list', 'api_key': ECHO_KEY, 'url': feeds.url + path},
            {'name': kind + '-url', 'url': echo_url(feeds, kind)},
        ]
    shadow = str(tmp_path / 'copy')
    extra = dict(setup['vars'], shadow_copy_dir=shadow, shadow_copy_mirror_dir=None, shadow_copy_mirror_host=None,
                 shadow_copy_feeds=echo_feeds)
    build = ansible('ansible-playbook', ['playbooks/shadow_copy.yml', '-vvv'], extra_vars=extra, tmp_path=tmp_path)
    # Published from the echo_body feeds, whose 1000 addresses outweigh the echoed lines; then the build job fails
    # for the feeds that have no copy at all (their max_age), naming them with their errors, redacted too.
    assert os.path.isdir(os.path.join(shadow, 'current')), build.out[-3000:]
    assert build.rc != 0 and 'feed(s) past their max_age' in build.out, build.out[-3000:]
    assert 'feed echo_reason-header: failed: ' in build.out and 'HTTP 400 Bad request: X-Custom-Token: ********' \
        in build.out
    assert 'feed echo_json-key: failed: ' in build.out and 'not accepted: Authorization: ********' in build.out
    assert 'user: ********; password: ********; Authorization: Basic ********; query: token=********&limit=10' \
        in build.out
    assert 'feed echo_redirect-url: failed: ' in build.out and 'redirects to ftp://127.0.0.1:1/user%3A%20********' \
        in build.out

    lookups = ["lookup('fleetwall.blocklist.threat_feed', echo_url_%d, errors='warn')" % index
               for index in range(len(feed_server.ECHO_FAULTS))]
    lookups += ["lookup('fleetwall.blocklist.threat_feed', '%s/fault/%s/list.txt', preset='bearer_list', "
                "api_key=echo_key, headers={'X-Custom-Token': echo_token}, errors='warn')" % (feeds.url, kind)
                for kind in feed_server.ECHO_FAULTS]
    lookup_vars = dict({'echo_url_%d' % index: echo_url(feeds, kind) for index, kind in
                        enumerate(feed_server.ECHO_FAULTS)}, echo_key=ECHO_KEY, echo_token=ECHO_TOKEN)
    lookup = ansible('ansible', ['localhost', '-m', 'ansible.builtin.debug', '-a', 'msg={{ [%s] | length }}'
                                 % ', '.join(lookups), '-vvv'], extra_vars=lookup_vars, tmp_path=tmp_path)
    assert lookup.rc == 0, lookup.out[-3000:]
    assert lookup.out.count('threat_feed: http://127.0.0.1:') == 2 * 3    # every kind but echo_body, twice
    assert 'Bad request: Authorization: ********; X-Custom-Token: ********' in lookup.out

    for form in echo_secret_forms():
        assert form not in build.out, form
        assert form not in lookup.out, form
    for directory, _dirs, names in os.walk(shadow):
        for name in names:
            path = os.path.join(directory, name)
            if directory == os.path.join(shadow, 'feeds') and name.endswith('.body'):
                assert os.stat(path).st_mode & 0o777 == 0o600, path
                continue
            with (gzip.open if name.endswith('.gz') else open)(path, 'rb') as handle:
                content = handle.read().decode('utf-8', 'replace')
            for form in echo_secret_forms():
                assert form not in content, (path, form)
