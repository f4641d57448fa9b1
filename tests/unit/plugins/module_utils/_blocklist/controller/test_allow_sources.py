"""Allow sources: the ranges Cloudflare, AWS and Google publish, fetched like feeds and subtracted like the
allowlist, with the fail-safe the other way round (the last good copy, or no build at all)."""
import datetime
import ipaddress
import json
import os

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.allow_sources import overlap
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (
    ShadowCopyError, build_shadow_copy,
)
from ansible_collections.fleetwall.blocklist.tests.helpers import FEEDS

CORE_INDEPENDENT = True
ALLOW = os.path.join(FEEDS, 'allow')
T0 = 1796083200


def at(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)


def blocked(root, name='blocklist_v4.txt'):
    with open(os.path.join(root, 'current', name)) as handle:
        return set(handle.read().split())


@pytest.fixture
def feed(tmp_path):
    path = tmp_path / 'attackers.txt'
    # 104.16.5.5 and 104.24.0.0/16 lie inside Cloudflare's 104.16.0.0/13 and 104.24.0.0/14; 198.51.100.7 does not.
    path.write_text('104.16.5.5\n198.51.100.7\n104.24.0.0/16\n2400:cb00:1::/48\n2001:db8:bad::1\n')
    return [{'name': 'attackers', 'path': str(path)}]


def cloudflare():
    return [{'name': 'cloudflare_v4', 'path': os.path.join(ALLOW, 'cloudflare-ips-v4')},
            {'name': 'cloudflare_v6', 'path': os.path.join(ALLOW, 'cloudflare-ips-v6')}]


def test_cloudflare_s_ranges_stay_reachable_and_the_rest_is_blocked(tmp_path, feed):
    root = str(tmp_path / 'copy')
    result = build_shadow_copy(root, feed, allow_feeds=cloudflare())
    assert result['published']
    assert blocked(root) == {'198.51.100.7'}
    assert blocked(root, 'blocklist_v6.txt') == {'2001:db8:bad::1'}
    status = dict((s['name'], s) for s in result['allow_feeds'])
    # Cloudflare's files end without a newline; every network is read all the same.
    with open(os.path.join(ALLOW, 'cloudflare-ips-v4')) as handle:
        listed = [ipaddress.ip_network(line.strip()) for line in handle.read().split('\n') if line.strip()]
    assert len(listed) == 15 and status['cloudflare_v4']['networks'] == len(list(ipaddress.collapse_addresses(listed)))
    assert (status['cloudflare_v4']['addresses_removed'], status['cloudflare_v4']['networks_removed']) == (1 + 65536, 2)
    assert (status['cloudflare_v6']['addresses_removed'], status['cloudflare_v6']['networks_removed']) == (2 ** 80, 1)
    assert status['cloudflare_v4']['kind'] == 'allow' and status['cloudflare_v4']['status'] == 'fresh'
    with open(os.path.join(root, 'current', 'manifest.json')) as handle:
        manifest = json.load(handle)
    assert [s['name'] for s in manifest['allow_feeds']] == ['cloudflare_v4', 'cloudflare_v6']
    assert manifest['allow_feeds'][0]['age_seconds'] == 0 and manifest['allow_feeds'][0]['max_age'] > 0


def test_aws_s_prefixes_through_a_query_and_the_static_allowlist_together(tmp_path):
    with open(os.path.join(ALLOW, 'aws-ip-ranges.json')) as handle:
        aws = json.load(handle)
    cloudfront = sorted(set(p['ip_prefix'] for p in aws['prefixes'] if p['service'] == 'CLOUDFRONT'))
    feed_path = tmp_path / 'feed.txt'
    feed_path.write_text('%s\n198.51.100.7\n203.0.113.5\n' % cloudfront[0])
    root = str(tmp_path / 'copy')
    source = {'name': 'aws_cloudfront', 'path': os.path.join(ALLOW, 'aws-ip-ranges.json'), 'format': 'json',
              'query': "prefixes[?service=='CLOUDFRONT'].ip_prefix"}
    result = build_shadow_copy(root, [{'name': 'f', 'path': str(feed_path)}], allowlist=['203.0.113.5'],
                               allow_feeds=[source])
    assert blocked(root) == {'198.51.100.7'}
    merged = list(ipaddress.collapse_addresses(ipaddress.ip_network(p) for p in cloudfront))
    assert result['allow_feeds'][0]['networks'] == len(merged)
    assert result['allow_feeds'][0]['addresses_removed'] == ipaddress.ip_network(cloudfront[0]).num_addresses


def test_a_source_never_fetched_stops_the_build_unless_it_is_not_required(tmp_path, feed):
    root = str(tmp_path / 'copy')
    missing = {'name': 'cdn', 'path': str(tmp_path / 'not-there.txt')}
    with pytest.raises(ShadowCopyError, match='allow source cdn has no good copy .*fail closed'):
        build_shadow_copy(root, feed, allow_feeds=[missing])
    assert not os.path.exists(os.path.join(root, 'current'))          # nothing published
    result = build_shadow_copy(root, feed, allow_feeds=[dict(missing, required=False)])
    assert result['published'] and '104.16.5.5' in blocked(root)
    assert any('allow source cdn:' in w and 'required is false' in w for w in result['warnings'])
    assert result['allow_feeds'][0]['status'] == 'failed'


def test_an_html_challenge_page_keeps_the_last_good_copy(tmp_path, feed):
    root = str(tmp_path / 'copy')
    source = tmp_path / 'cf.txt'
    source.write_text('104.16.0.0/13\n104.24.0.0/14')
    build_shadow_copy(root, feed, allow_feeds=[{'name': 'cf', 'path': str(source)}])
    # What Cloudflare's bot protection answers a script, with status 200, in place of the list.
    source.write_text('<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head>'
                      '<body>Enable JavaScript and cookies to continue</body></html>')
    result = build_shadow_copy(root, feed, allow_feeds=[{'name': 'cf', 'path': str(source)}])
    status = result['allow_feeds'][0]
    assert status['status'] == 'cached' and "HTML page ('Just a moment...')" in status['error']
    assert any(w.startswith('allow source cf: cached:') and 'last good copy is used' in w for w in result['warnings'])
    assert blocked(root) == {'198.51.100.7'}                           # still kept reachable


def test_a_source_that_shrank_past_its_limit_keeps_its_last_good_copy(tmp_path, feed):
    root = str(tmp_path / 'copy')
    source = tmp_path / 'cf.txt'
    source.write_text(''.join('104.%d.0.0/16\n' % n for n in range(16, 32)))       # 16 networks
    build_shadow_copy(root, feed, allow_feeds=[{'name': 'cf', 'path': str(source)}])
    source.write_text(''.join('104.%d.0.0/16\n' % n for n in range(24, 32)))       # half of them
    result = build_shadow_copy(root, feed, allow_feeds=[{'name': 'cf', 'path': str(source)}])
    assert result['allow_feeds'][0]['status'] == 'cached'
    assert ('covers 524288 IPv4 addresses, 50.0% fewer than the 1048576 of the last good copy (max_shrink_percent 10'
            in result['allow_feeds'][0]['error'])
    assert '104.16.5.5' not in blocked(root)
    accepted = build_shadow_copy(root, feed, allow_feeds=[{'name': 'cf', 'path': str(source), 'max_shrink_percent': 60}])
    assert accepted['allow_feeds'][0]['status'] == 'fresh' and '104.16.5.5' in blocked(root)


def test_a_copy_past_its_max_age_is_a_warning_not_a_failure(tmp_path, feed):
    root = str(tmp_path / 'copy')
    source = {'name': 'cf', 'url': 'file://' + os.path.join(ALLOW, 'cloudflare-ips-v4'), 'min_interval': 10 * 86400,
              'max_age': 86400}
    build_shadow_copy(root, feed, allow_feeds=[source], now=at(T0))
    result = build_shadow_copy(root, feed, allow_feeds=[source], now=at(T0 + 2 * 86400))
    status = result['allow_feeds'][0]
    assert status['status'] == 'cached' and status['stale'] and status['age_seconds'] == 2 * 86400
    assert any('allow source cf: its copy is 172800 s old, past its max_age of 86400 s' in w
               for w in result['warnings'])
    assert result['stale_feeds'] == []                                  # the run does not fail for it


def test_a_fleet_ban_inside_an_allow_source_never_reaches_the_copy(tmp_path, feed):
    root = str(tmp_path / 'copy')
    harvest = {'h1': [{'address': '104.16.9.9', 'jail': 'sshd', 'banned_at': T0 - 5},
                      {'address': '198.51.100.99', 'jail': 'sshd', 'banned_at': T0 - 5}]}
    result = build_shadow_copy(root, feed, allow_feeds=cloudflare(), now=at(T0),
                               fleet_local={'harvest': harvest, 'expiry': 3600})
    assert '104.16.9.9' not in blocked(root) and '198.51.100.99' in blocked(root)
    assert result['fleet_local']['allowlisted'] == 1
    # The harvest says why: which ban, on which host, and which source kept it off the fleet.
    assert result['fleet_local']['kept_out'] == [{'address': '104.16.9.9', 'by': 'allow source cloudflare_v4',
                                                  'hosts': ['h1']}]


def test_names_are_checked_and_an_allow_source_has_its_own_cache(tmp_path, feed):
    root = str(tmp_path / 'copy')
    for bad, message in (([{'name': 'a b', 'path': '/x'}], 'allow source name'),
                         ([{'name': 'a', 'path': '/x'}, {'name': 'a', 'path': '/y'}], 'must be unique'),
                         ([{'name': 'a', 'path': '/x', 'tier': 'block'}], 'tier applies to a threat feed only')):
        with pytest.raises(ShadowCopyError, match=message):
            build_shadow_copy(root, feed, allow_feeds=bad)
    # A source may share a feed's name: their cached copies do not mix.
    same_name = [{'name': 'attackers', 'path': os.path.join(ALLOW, 'cloudflare-ips-v4')}]
    build_shadow_copy(root, feed, allow_feeds=same_name)
    assert blocked(root) == {'198.51.100.7'}


def test_overlap_is_what_a_walk_of_every_address_finds():
    ranges = [(0, 9), (20, 29), (40, 40), (50, 99)]
    holes = [(5, 22), (40, 55), (98, 200)]
    covered = overlap(ranges, holes)
    walked = set(a for s, e in ranges for a in range(s, e + 1)) & set(a for s, e in holes for a in range(s, e + 1))
    assert set(a for s, e in covered for a in range(s, e + 1)) == walked
    assert covered == [(5, 9), (20, 22), (40, 40), (50, 55), (98, 99)]
    assert overlap([], holes) == [] and overlap(ranges, []) == []


def test_the_generation_publishes_each_source_s_ranges_and_explain_names_the_source(tmp_path, feed):
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.explain import explain
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (
        verify_generation)
    root = str(tmp_path / 'copy')
    result = build_shadow_copy(root, feed, allow_feeds=cloudflare())
    generation = os.path.join(root, 'current')
    with open(os.path.join(generation, 'allow_cloudflare_v4_v4.txt')) as handle:
        assert '104.16.0.0/13' in handle.read().split()
    assert verify_generation(generation)['allow_feeds'][0]['files']['v4']['file'] == 'allow_cloudflare_v4_v4.txt'
    answer = explain(root, '104.16.5.5')
    assert 'listed as 104.16.5.5 by attackers' in answer['summary']
    assert 'kept reachable by the allow source cloudflare_v4: 104.16.0.0/13' in answer['summary']
    assert answer['verdict'] == 'kept out' and answer['block'] == []
    # A file changed after the build is caught, as a tier file is.
    with open(os.path.join(generation, 'allow_cloudflare_v4_v4.txt'), 'a') as handle:
        handle.write('0.0.0.0/0\n')
    with pytest.raises(ShadowCopyError, match='allow_cloudflare_v4_v4.txt has sha256'):
        verify_generation(generation)
    # A source whose list changed makes a new generation, though the tiers did not change.
    changed = tmp_path / 'cf.txt'
    changed.write_text('104.16.0.0/13\n104.24.0.0/14\n2400:cb00::/32\n173.245.48.0/20\n')
    again = build_shadow_copy(root, feed, allow_feeds=[{'name': 'cloudflare_v4', 'path': str(changed),
                                                        'max_shrink_percent': 100}])
    assert again['published'] and again['generation'] == result['generation'] + 1


def test_a_threat_feed_cannot_take_an_allow_source_s_cache_name(tmp_path, feed):
    """A feed named allow.cf shared the cache of the allow source cf: when cf failed, its 'last good copy' was the
    threat feed's list, and every listed attacker was kept reachable."""
    with pytest.raises(ShadowCopyError, match='names beginning with allow. are reserved'):
        build_shadow_copy(str(tmp_path / 'copy'), feed + [{'name': 'allow.cf', 'path': feed[0]['path']}])


def test_a_source_is_judged_by_the_addresses_it_covers_not_only_its_entries(tmp_path, feed):
    root = str(tmp_path / 'copy')
    source = tmp_path / 'cf.txt'
    source.write_text('104.16.0.0/13\n104.24.0.0/14\n')
    build_shadow_copy(root, feed, allow_feeds=[{'name': 'cf', 'path': str(source)}])
    # As many entries, a sliver of the addresses: a CDN would be blocked.
    source.write_text('104.16.0.0/32\n104.16.0.0/32\n')
    shrunk = build_shadow_copy(root, feed, allow_feeds=[{'name': 'cf', 'path': str(source)}])
    assert shrunk['allow_feeds'][0]['status'] == 'cached'
    assert 'IPv4 addresses, 100.0% fewer than the 786432 of the last good copy' in shrunk['allow_feeds'][0]['error']
    assert '104.16.5.5' not in blocked(root)
    # Fewer entries, a thousand times the addresses: everything in them would be unblocked.
    source.write_text('104.0.0.0/8\n')
    widened = build_shadow_copy(root, feed, allow_feeds=[{'name': 'cf', 'path': str(source), 'max_shrink_percent': 100}])
    assert widened['allow_feeds'][0]['status'] == 'cached'
    assert 'covers 16777216 IPv4 addresses, 21 times the 786432 of the last good copy' in widened['allow_feeds'][0]['error']


def test_a_source_built_without_publishes_empty_files_for_what_reads_them(tmp_path, feed):
    root = str(tmp_path / 'copy')
    result = build_shadow_copy(root, feed, allow_feeds=[{'name': 'cdn', 'path': str(tmp_path / 'gone.txt'),
                                                         'required': False}])
    assert result['allow_feeds'][0]['networks'] == 0
    for family in ('v4', 'v6'):
        with open(os.path.join(root, 'current', 'allow_cdn_%s.txt' % family)) as handle:
            assert handle.read() == ''
