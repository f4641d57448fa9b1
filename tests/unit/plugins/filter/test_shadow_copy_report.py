import datetime

from ansible_collections.fleetwall.blocklist.plugins.filter.shadow_copy_report import shadow_copy_report
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import build_shadow_copy


def test_a_build_with_harvested_bans_reports_them(tmp_path):
    feed = tmp_path / 'attackers.txt'
    feed.write_text('203.0.113.0/24\n')
    harvest = {'h1': {'available': True, 'bans': [{'address': '198.51.100.7', 'jail': 'sshd', 'banned_at': 1}]},
               'h2': {'available': True, 'bans': [{'address': '198.51.100.8', 'jail': 'sshd', 'banned_at': 1},
                                                  # made by hand: allowlisted, so enforced nowhere
                                                  {'address': '198.18.0.201', 'jail': 'sshd', 'banned_at': 1}]},
               'h3': {'available': False, 'bans': [], 'msg': 'fail2ban is not running'}}
    result = build_shadow_copy(str(tmp_path / 'copy'), [{'name': 'attackers', 'path': str(feed)}],
                               allowlist=['198.18.0.201'],
                               now=datetime.datetime(2026, 11, 23, tzinfo=datetime.timezone.utc),
                               fleet_local={'harvest': harvest, 'min_hosts': 1})
    lines = shadow_copy_report(result)
    assert lines[0].startswith('generation 1 (new): block 3 IPv4')
    assert lines[2] == 'feed fleet_local: fresh; 3 accepted, 3 block, 0 challenge; 0 request(s)'
    assert lines[3] == ('fleet-local bans: 2 enforced (3 accepted, 1 kept out by the allowlist or an allow source), '
                        '0 below min_hosts 1, '
                        '3 new, 0 unbanned, 0 expired; harvested from 2 host(s); not readable on h3')
    assert lines[4] == 'fleet-local ban of 198.18.0.201 (on h2) not pushed: the allowlist keeps it reachable'


def test_a_withheld_build_says_which_generation_stays_and_what_the_allowlist_kept_out(tmp_path):
    feed = tmp_path / 'attackers.txt'
    feed.write_text(''.join('203.0.113.%d\n' % n for n in range(1, 41)) + '198.51.100.0/24\n')
    now = datetime.datetime(2026, 12, 5, tzinfo=datetime.timezone.utc)
    first = build_shadow_copy(str(tmp_path / 'copy'), [{'name': 'attackers', 'path': str(feed)}],
                              allowlist=['198.51.100.128/25', '198.51.100.1'], now=now)
    lines = shadow_copy_report(first)
    assert lines[0].startswith('generation 1 (new): block ')
    assert lines[-1] == ('allowlist: kept 129 IPv4 + 0 IPv6 listed address(es) out of the block tier, 0 IPv4 + 0 IPv6 '
                         'out of the challenge tier')
    feed.write_text('203.0.113.1\n')
    withheld = build_shadow_copy(str(tmp_path / 'copy'), [{'name': 'attackers', 'path': str(feed)}], now=now)
    lines = shadow_copy_report(withheld)
    # The counts are the refused copy's; the kept generation is 1, and the run names the role's variable.
    assert lines[0].startswith('generation 1 stays in force; the new copy was WITHHELD (the new copy has 1 entries')
    assert lines[0].endswith('-e shadow_copy_force=true) to publish anyway): it would block 1 IPv4 + 0 IPv6, '
                             'challenge 0 IPv4 + 0 IPv6')
    assert not any(line.startswith('allowlist:') for line in lines)


def test_each_allow_source_says_what_it_kept_reachable_and_a_stale_one_says_so(tmp_path):
    feed, source = tmp_path / 'attackers.txt', tmp_path / 'cdn.txt'
    feed.write_text('104.16.5.5\n104.24.0.0/16\n198.51.100.7\n')
    source.write_text('104.16.0.0/13\n104.24.0.0/14')
    now = datetime.datetime(2026, 12, 5, tzinfo=datetime.timezone.utc)
    allow = [{'name': 'cdn', 'url': 'file://%s' % source, 'min_interval': 864000, 'max_age': 3600}]
    lines = shadow_copy_report(build_shadow_copy(str(tmp_path / 'copy'), [{'name': 'attackers', 'path': str(feed)}],
                                                 allow_feeds=allow, now=now))
    assert lines[-1] == 'allow source cdn: fresh; 2 network(s), kept 65537 listed address(es) in 2 network(s) reachable'
    later = shadow_copy_report(build_shadow_copy(str(tmp_path / 'copy'), [{'name': 'attackers', 'path': str(feed)}],
                                                 allow_feeds=allow, now=now + datetime.timedelta(hours=2)))
    assert later[-1].startswith('allow source cdn: cached, 7200 s old (checked 7200 s ago; min_interval is 864000 s)')
    assert later[-1].endswith('reachable; STALE: older than its max_age of 3600 s')


def test_a_feed_scoped_to_ports_and_an_admit_only_port_are_named_with_their_ports(tmp_path):
    country = tmp_path / 'country.txt'
    country.write_text('198.51.100.0/24\n2001:db8:7::/48\n')
    admins = tmp_path / 'admins.txt'
    admins.write_text('192.0.2.0/26\n')
    result = build_shadow_copy(str(tmp_path / 'copy'), [
        {'name': 'country', 'path': str(country), 'ports': [8443, 22]},
        {'name': 'admins', 'path': str(admins), 'tier': 'admit_only', 'ports': [22]}], allowlist=['203.0.113.5'])
    lines = shadow_copy_report(result)
    assert 'feed country: fresh; 2 accepted, 0 block, 0 challenge, 2 in scope block_tcp_22_8443; 1 request(s)' in lines
    assert lines[-2:] == [
        'scope admit_tcp_22: 2 IPv4 + 0 IPv6 entries from admins; only these may reach tcp port(s) 22',
        'scope block_tcp_22_8443: 1 IPv4 + 1 IPv6 entries from country; dropped on tcp port(s) 22,8443']
