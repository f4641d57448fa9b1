"""The shadow copy against the provider-emulating feed server: presets, tiers, provenance,
quota-saving and every failure mode leaving the previous generation in place."""
import datetime
import gzip
import json
import os

import netaddr
import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import build_shadow_copy

import feed_server
from ansible_collections.fleetwall.blocklist.tests.helpers import FEEDS, provider_oracle, tally

KEY = feed_server.LAB_KEYS['abuseipdb']
NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture
def provider():
    srv = feed_server.serve(FEEDS)
    yield 'http://127.0.0.1:%d' % srv.server_address[1], srv.state
    srv.shutdown()


def feeds_for(url, key=KEY, **abuse):
    abuse_feed = {'name': 'abuseipdb', 'preset': 'abuseipdb', 'api_key': key,
                  'url': url + '/abuseipdb/api/v2/blacklist', 'params': {'confidenceMinimum': 50}}
    abuse_feed.update(abuse)
    return [
        abuse_feed,
        {'name': 'spamhaus_drop', 'preset': 'spamhaus_drop', 'url': url + '/providers/drop_v4.json'},
        {'name': 'spamhaus_drop_v6', 'preset': 'spamhaus_drop', 'mode': 'v6', 'url': url + '/providers/drop_v6.json'},
        {'name': 'ipsum', 'preset': 'ipsum', 'level': 3, 'url': url + '/ipsum/ipsum.txt'},
    ]


def read_list(root, name):
    with open(os.path.join(root, 'current', name)) as handle:
        return handle.read().split()


def manifest(root):
    with open(os.path.join(root, 'current', 'manifest.json')) as handle:
        return json.load(handle)


def build(root, url, now=NOW, **kwargs):
    return build_shadow_copy(root, kwargs.pop('feeds', None) or feeds_for(url), now=now, **kwargs)


def test_presets_build_one_copy_with_tiers_and_provenance(tmp_path, provider):
    url, state = provider
    root = str(tmp_path / 'copy')
    result = build(root, url)
    assert result['published'] and [f['status'] for f in result['feeds']] == ['fresh'] * 4

    # An independent oracle, with netaddr, from the fixture files themselves.
    records, block, challenge = provider_oracle()

    got_block = netaddr.IPSet(read_list(root, 'blocklist_v4.txt') + read_list(root, 'blocklist_v6.txt'))
    got_challenge = netaddr.IPSet(read_list(root, 'challenge_v4.txt') + read_list(root, 'challenge_v6.txt'))
    assert got_block == block
    assert got_challenge == challenge and len(challenge) > 0
    assert read_list(root, 'blocklist_v4.txt') == [str(c) if c.size > 1 else str(c.ip)
                                                   for c in block.iter_cidrs() if c.version == 4]

    m = manifest(root)
    abuse = m['feeds'][0]
    assert abuse['preset'] == 'abuseipdb' and abuse['scored']
    assert abuse['block'] == sum(1 for r in records if r['abuseConfidenceScore'] >= 90)
    assert abuse['challenge'] == sum(1 for r in records if 50 <= r['abuseConfidenceScore'] < 90)
    assert m['tiers']['block_score'] == 90 and m['files']['challenge_v4.txt']['tier'] == 'challenge'

    # Provenance: every listed network with the feeds that listed it and the best score.
    path = os.path.join(root, 'current', m['provenance']['file'])
    with gzip.open(path, 'rt') as handle:
        rows = [line.rstrip('\n').split('\t') for line in handle if not line.startswith('#')]
    by_entry = {row[0]: (row[1].split(','), row[2]) for row in rows}
    overlap = next(r for r in records if r['ipAddress'] in by_entry and 'ipsum' in by_entry[r['ipAddress']][0]
                   and r['abuseConfidenceScore'] >= 50)
    feeds, score = by_entry[overlap['ipAddress']]
    assert feeds == ['abuseipdb', 'ipsum'] and float(score) == overlap['abuseConfidenceScore']
    assert by_entry['1.10.16.0/20'] == (['spamhaus_drop'], '-')
    assert len(rows) == len(by_entry) <= sum(f['accepted'] for f in m['feeds'])
    assert set(by_entry) >= set(r['ipAddress'] for r in records if r['abuseConfidenceScore'] >= 50)

    # The API key is nowhere on disk.
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), 'rb') as handle:
                assert KEY.encode() not in handle.read(), name


def test_min_interval_reuses_the_cache_without_a_request(tmp_path, provider):
    url, state = provider
    root = str(tmp_path / 'copy')
    build(root, url)
    before = len(state.requests)
    again = build(root, url, now=NOW + datetime.timedelta(minutes=30))
    statuses = {f['name']: f for f in again['feeds']}
    # Every preset asks for at least an hour between downloads: nothing was requested.
    assert len(state.requests) == before
    assert all(f['status'] == 'cached' and 'min_interval' in f['reason'] for f in statuses.values())
    assert not again['changed'] and not again['warnings']


def test_a_preview_spends_no_quota(tmp_path, provider):
    """--check --diff, then the real run: the preview downloaded every feed and kept nothing, so the run downloaded
    again, two of AbuseIPDB's five free daily downloads for one change. Now the provider is asked once."""
    url, state = provider
    root = str(tmp_path / 'copy')
    preview = build(root, url, check_mode=True)
    assert not preview['published'] and not os.path.exists(os.path.join(root, 'current'))
    applied = build(root, url, now=NOW + datetime.timedelta(minutes=2))
    assert applied['published']
    asked = [path for path, _status, _headers in state.requests if path.startswith('/abuseipdb/')]
    assert len(asked) == 1, asked
    statuses = {f['name']: f for f in applied['feeds']}
    assert all(f['status'] == 'cached' and 'min_interval' in f['reason'] for f in statuses.values()), statuses
    assert read_list(root, 'blocklist_v4.txt') == open(os.path.join(root, 'preview', 'blocklist_v4.txt')).read().split()


def test_a_feed_failing_past_its_max_age_is_named_for_the_run_to_fail(tmp_path, provider):
    """A feed that failed on every run only warned: cron and AWX never alerted, however old the copy got. Past its
    max_age (two days by default) it is listed in stale_feeds, with its age, and the rest is still published."""
    url, state = provider
    root = str(tmp_path / 'copy')
    build(root, url)
    state.faults['/abuseipdb/'] = '500'
    feeds = feeds_for(url, retries=1)
    day = build(root, url, now=NOW + datetime.timedelta(days=1), feeds=feeds)
    assert day['feeds'][0]['status'] == 'cached' and day['stale_feeds'] == []
    late = NOW + datetime.timedelta(days=2, hours=1)
    (tmp_path / 'new.txt').write_text('192.0.2.1\n')
    extra = [{'name': 'local', 'path': str(tmp_path / 'new.txt')}, {'name': 'gone', 'path': str(tmp_path / 'absent.txt')}]
    result = build(root, url, now=late, feeds=feeds + extra)
    assert result['published'] and result['generation'] == 2, result['withheld']
    stale = {s['name']: s for s in result['stale_feeds']}
    assert sorted(stale) == ['abuseipdb', 'gone'], stale
    assert stale['abuseipdb']['age_seconds'] == 49 * 3600 and stale['abuseipdb']['max_age'] == 2 * 86400
    assert stale['gone']['age_seconds'] is None and stale['gone']['status'] == 'failed'
    assert any('feed abuseipdb: its copy is 176400 s old, past its max_age of 172800 s' in w for w in result['warnings'])
    # max_age 0: never stale.
    quiet = build(root, url, now=late, feeds=feeds_for(url, retries=1, max_age=0))
    assert quiet['stale_feeds'] == []


def test_conditional_get_after_min_interval(tmp_path, provider):
    url, state = provider
    root = str(tmp_path / 'copy')
    build(root, url)
    later = build(root, url, now=NOW + datetime.timedelta(hours=7))
    spamhaus = [f for f in later['feeds'] if f['name'] == 'spamhaus_drop'][0]
    assert spamhaus['status'] == 'fresh' and spamhaus['not_modified']
    assert state.requests[-1][1] == 304 or any(s == 304 for _p, s, _h in state.requests)
    assert not later['changed']


def test_rate_limit_falls_back_and_is_not_hammered(tmp_path, provider):
    url, state = provider
    root = str(tmp_path / 'copy')
    build(root, url)
    state.quota['abuseipdb'] = 1           # the one request above used the day's quota
    later = NOW + datetime.timedelta(hours=7)
    result = build(root, url, now=later)
    abuse = result['feeds'][0]
    assert abuse['status'] == 'cached' and abuse['error_kind'] == 'rate_limited'
    assert 'Daily rate limit of 1 requests exceeded' in abuse['error']
    assert state.count('/abuseipdb') == 2
    assert result['generation'] == 1 and not result['withheld']
    # The next run, before the provider's reset, does not ask at all.
    again = build(root, url, now=later + datetime.timedelta(hours=7))
    assert state.count('/abuseipdb') == 2
    assert 'rate-limited this feed until' in again['feeds'][0]['reason']


@pytest.mark.parametrize('fault, kind, message', [
    ('401', 'auth', 'authentication failed (HTTP 401)'),
    ('json_error', 'auth', 'provider answered with an error: Your subscription has expired'),
    ('html', 'content', 'HTML page'),
    ('truncated', 'truncated', 'body truncated'),
    ('500', 'http', 'HTTP 500'),
    ('empty', 'content', 'the body is empty'),
    ('garbage', 'content', 'not valid JSON'),
])
def test_failures_keep_the_last_good_copy(tmp_path, provider, fault, kind, message):
    url, state = provider
    root = str(tmp_path / 'copy')
    build(root, url)
    first = manifest(root)
    state.faults['/abuseipdb/'] = fault
    result = build(root, url, now=NOW + datetime.timedelta(hours=7), feeds=feeds_for(url, retries=1))
    abuse = result['feeds'][0]
    tally('faults injected: feed %s' % fault)
    tally('feed fallbacks', abuse['status'] == 'cached')
    assert abuse['status'] == 'cached' and abuse['error_kind'] == kind and message in abuse['error']
    assert abuse['block'] == first['feeds'][0]['block']
    assert result['generation'] == 1 and manifest(root)['content_sha256'] == first['content_sha256']
    assert any('abuseipdb' in w for w in result['warnings'])


def test_wrong_key_on_first_run_is_failed_and_says_why(tmp_path, provider):
    url, _state = provider
    root = str(tmp_path / 'copy')
    result = build(root, url, feeds=feeds_for(url, key='not-the-key-1234'))
    abuse = result['feeds'][0]
    assert abuse['status'] == 'failed' and abuse['error_kind'] == 'auth'
    assert 'Your API key is either missing, incorrect, or revoked' in abuse['error']
    assert 'not-the-key-1234' not in json.dumps(result)
    assert result['published']  # the other feeds still make a generation


def test_mirror_directory_follows_current(tmp_path, provider):
    url, _state = provider
    root, mirror = str(tmp_path / 'copy'), str(tmp_path / 'mirror')
    result = build(root, url, mirror_dir=mirror)
    assert result['mirrored']
    assert read_list(mirror, 'blocklist_v4.txt') == read_list(root, 'blocklist_v4.txt')
    assert manifest(mirror)['generation'] == 1
    assert not build(root, url, mirror_dir=mirror, now=NOW + datetime.timedelta(minutes=5))['mirrored']


def test_challenge_only_feed_and_thresholds(tmp_path, provider):
    url, _state = provider
    root = str(tmp_path / 'copy')
    feeds = [{'name': 'tor', 'preset': 'tor_exits', 'url': url + '/providers/exit-addresses', 'tier': 'challenge'},
             {'name': 'ways', 'preset': 'wayscloud', 'api_key': feed_server.LAB_KEYS['wayscloud'],
              'url': url + '/wayscloud/v1/ip/threats/live'}]
    result = build(root, url, feeds=feeds, tiers={'block': 80, 'challenge': 60})
    tor, ways = result['feeds']
    assert (tor['block'], tor['challenge']) == (0, 40)
    with open(os.path.join(FEEDS, 'providers', 'wayscloud_threats.json')) as handle:
        scores = [t['threat_score'] for t in json.load(handle)['threats']]
    assert ways['block'] == sum(1 for s in scores if s >= 80)
    assert ways['challenge'] == sum(1 for s in scores if 60 <= s < 80)
    assert ways['below_challenge_score'] == sum(1 for s in scores if s < 60)


# The rest of the feed faults: each keeps the previous protection (the feed's last good copy) and says why.
@pytest.mark.parametrize('fault, kind, message', [
    ('slow', 'network', 'after 1 attempts'),                 # slower than the feed's timeout
    ('429', 'rate_limited', 'rate'),
    ('down', 'network', 'after 1 attempts'),                 # nothing listens any more
])
def test_more_failures_keep_the_last_good_copy(tmp_path, provider, fault, kind, message):
    url, state = provider
    root = str(tmp_path / 'copy')
    build(root, url)
    first = manifest(root)
    state.slow_seconds = 3
    feeds = feeds_for(url, retries=0, timeout=1)
    if fault == 'down':
        feeds[0]['url'] = 'http://127.0.0.1:9/abuseipdb/api/v2/blacklist'
    else:
        state.faults['/abuseipdb/'] = fault
    result = build(root, url, now=NOW + datetime.timedelta(hours=7), feeds=feeds)
    abuse = result['feeds'][0]
    tally('faults injected: feed %s' % fault)
    tally('feed fallbacks', abuse['status'] == 'cached')
    assert abuse['status'] == 'cached' and abuse['error_kind'] == kind and message in abuse['error'].lower()
    assert abuse['block'] == first['feeds'][0]['block']
    assert result['generation'] == 1 and manifest(root)['content_sha256'] == first['content_sha256']
    assert any('abuseipdb' in w for w in result['warnings'])


def test_a_feed_a_hundred_times_its_size_keeps_its_last_good_copy_alone(tmp_path):
    feed = tmp_path / 'list.txt'
    other = tmp_path / 'other.txt'
    feed.write_text(''.join('198.51.100.%d\n' % i for i in range(1, 101)))
    other.write_text('192.0.2.1\n')
    root = str(tmp_path / 'copy')
    feeds = [{'name': 'list', 'path': str(feed)}, {'name': 'other', 'path': str(other)}]
    build_shadow_copy(root, feeds, now=NOW)
    # 100x: 10,000 entries where there were 100, and the other feed changed too.
    # Every other address, so that nothing aggregates.
    feed.write_text(''.join('45.%d.%d.%d\n' % (j >> 16, (j >> 8) & 255, j & 255) for j in range(1, 20000, 2)))
    other.write_text('192.0.2.1\n192.0.2.2\n')
    result = build_shadow_copy(root, feeds, now=NOW + datetime.timedelta(hours=1))
    status = {f['name']: f for f in result['feeds']}
    tally('faults injected: feed 100x its size')
    tally('feed fallbacks', status['list']['status'] == 'cached')
    assert status['list']['status'] == 'cached' and status['list']['error_kind'] == 'content'
    assert '100 times the 100 of the last good copy' in status['list']['error']
    assert status['other']['status'] == 'fresh'
    assert result['generation'] == 2
    published = set(read_list(root, 'blocklist_v4.txt'))
    assert netaddr.IPSet(published).size == 102 and '192.0.2.2' in published
    assert not any(a.startswith('45.') for a in published)
    # The operator who knows the list really grew says so for that feed.
    feeds[0]['max_growth_factor'] = 0
    result = build_shadow_copy(root, feeds, now=NOW + datetime.timedelta(hours=2))
    assert result['feeds'][0]['status'] == 'fresh' and len(read_list(root, 'blocklist_v4.txt')) > 10000


def test_a_429_on_the_first_fetch_is_remembered_too(tmp_path, provider):
    """Before, a reset was stored only beside a cached body: a feed rate-limited on its first fetch was asked
    again on every run, one request each, however far the reset."""
    url, state = provider
    root = str(tmp_path / 'copy')
    state.retry_after = 3600
    state.faults['/abuseipdb/'] = '429'
    feeds = feeds_for(url, retries=0)
    tally('faults injected: feed 429 on the first fetch')
    first = build(root, url, feeds=feeds)['feeds'][0]
    assert (first['status'], first['error_kind'], first['requests']) == ('failed', 'rate_limited', 1)
    later = build(root, url, feeds=feeds, now=NOW + datetime.timedelta(minutes=30))['feeds'][0]
    assert (later['status'], later['error_kind'], later['requests']) == ('failed', 'rate_limited', 0)
    assert 'not asked again before then; the feed has no copy yet' in later['error']
    # After the reset, it is asked, and the copy is made.
    state.faults.clear()
    done = build(root, url, feeds=feeds, now=datetime.datetime.now(datetime.timezone.utc)
                 + datetime.timedelta(hours=2))['feeds'][0]
    assert (done['status'], done['requests']) == ('fresh', 1)


# A download cut at a line break, with no Content-Length and the connection closed, looks complete to the
# transport.  Before, the Spamhaus list cut so (no metadata line) and the FireHOL netset cut so (fewer entries than
# its '# Entries' header) were published as shorter lists; a JSON document cut so does not parse.
@pytest.mark.parametrize('feed, message', [
    ({'name': 'spamhaus_drop', 'preset': 'spamhaus_drop', 'path': '/providers/drop_v4.json'},
     'the body ends without its metadata record'),
    ({'name': 'spamhaus_drop_v6', 'preset': 'spamhaus_drop', 'mode': 'v6', 'path': '/providers/drop_v6.json'},
     'the body ends without its metadata record'),
    ({'name': 'firehol_level1', 'preset': 'firehol_level1', 'path': '/firehol/firehol_level1.netset'},
     'its header declares'),
    ({'name': 'abuseipdb', 'preset': 'abuseipdb', 'api_key': KEY, 'path': '/abuseipdb/api/v2/blacklist'},
     'not valid JSON'),
])
def test_a_download_cut_short_is_a_failed_fetch(tmp_path, provider, feed, message):
    url, state = provider
    root = str(tmp_path / 'copy')
    feed = dict(feed, url=url + feed.pop('path'), retries=0)
    other = {'name': 'ipsum', 'preset': 'ipsum', 'level': 3, 'url': url + '/ipsum/ipsum.txt'}
    build(root, url, feeds=[feed, other])
    first = manifest(root)
    state.faults[feed['url'][len(url):]] = 'cut_short'
    tally('faults injected: feed cut short at a line break (%s)' % feed['name'])
    result = build(root, url, now=NOW + datetime.timedelta(hours=7), feeds=[feed, other])
    status = result['feeds'][0]
    assert state.count(feed['url'][len(url):]) == 2          # the cut answer was really served
    tally('feed fallbacks', status['status'] == 'cached')
    assert status['status'] == 'cached' and status['error_kind'] == 'content', status
    assert message in status['error'], status['error']
    assert status['block'] == first['feeds'][0]['block']
    assert result['generation'] == 1 and manifest(root)['content_sha256'] == first['content_sha256']
    assert any(feed['name'] in w for w in result['warnings'])


def test_a_mirror_that_cannot_be_written_is_a_warning_beside_the_published_generation(tmp_path, provider):
    """Before, a traceback came after the generation was published and 'current' switched: the play said
    failed for a change that was made."""
    url, _state = provider
    root = str(tmp_path / 'copy')
    blocker = tmp_path / 'a-file'
    blocker.write_text('not a directory\n')
    for attempt, mirror in enumerate([str(blocker / 'mirror'), str(tmp_path / ('m' * 300))], 1):
        tally('faults injected: mirror_dir that cannot be written')
        result = build(root, url, mirror_dir=mirror, now=NOW + datetime.timedelta(days=attempt),
                       feeds=feeds_for(url)[1:2] if attempt == 1 else feeds_for(url)[1:3])
        assert result['published'] and result['generation'] == attempt and not result['mirrored']
        assert manifest(root)['generation'] == attempt
        assert ('Not a directory' if attempt == 1 else 'File name too long') in result['mirror_error']
        assert any('generation %d is published in %s, but the mirror' % (attempt, root) in w
                   for w in result['warnings']), result['warnings']
