"""The fleet-local feed: harvested fail2ban bans merged into the shadow copy, with expiry and min_hosts."""
import datetime
import json
import os

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.fleet_local import (
    FleetLocalError, load_state, merge_harvest, offered_entries,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (
    ShadowCopyError, build_shadow_copy,
)

T0 = 1795440000


def at(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)


def ban(address, jail='sshd', banned_at=T0 - 5):
    return {'address': address, 'jail': jail, 'banned_at': banned_at, 'ban_seconds': 600, 'ban_count': 1}


def read(root, *parts):
    with open(os.path.join(root, *parts)) as handle:
        return handle.read()


def test_sightings_are_refreshed_while_seen_and_expire_after():
    state, report = merge_harvest({'sightings': []}, {'h1': [ban('198.51.100.7')]}, T0, expiry=100)
    assert report['new'] == 1 and report['bans'] == 1 and report['hosts'] == 1
    assert state['sightings'] == [{'address': '198.51.100.7', 'host': 'h1', 'jail': 'sshd',
                                   'banned_at': T0 - 5, 'first_seen': T0, 'last_seen': T0}]
    # Seen again 90 s later: last_seen moves, first_seen stays.
    state, report = merge_harvest(state, {'h1': [ban('198.51.100.7')]}, T0 + 90, expiry=100)
    assert report['new'] == 0 and state['sightings'][0]['last_seen'] == T0 + 90
    assert state['sightings'][0]['first_seen'] == T0
    # Not seen any more because h1 could not be read, then was unreachable: kept until expiry, then forgotten.
    state, report = merge_harvest(state, {'h1': {'available': False, 'bans': []}}, T0 + 190, expiry=100)
    assert len(state['sightings']) == 1 and report['expired'] == 0 and report['unbanned'] == 0
    state, report = merge_harvest(state, {'h2': []}, T0 + 191, expiry=100)
    assert state['sightings'] == [] and report['expired'] == 1 and report['unbanned'] == 0


def test_a_host_read_without_the_ban_drops_its_sightings_at_once():
    """An unban on the host that banned lifts the address at the next harvest; silence is not an unban."""
    bans = {'h1': [ban('198.51.100.7'), ban('198.51.100.7', 'recidive'), ban('198.51.100.8')],
            'h2': [ban('198.51.100.7')], 'h3': [ban('198.51.100.9')]}
    state, _report = merge_harvest({'sightings': []}, bans, T0, expiry=86400)
    # 60 s later h1 was read and no longer bans .7 in either jail (fail2ban-client set sshd unbanip ...);
    # h2 could not be read and h3 was unreachable (not in the harvest at all).
    harvest = {'h1': [ban('198.51.100.8')], 'h2': {'available': False, 'bans': [], 'msg': 'not running'}}
    state, report = merge_harvest(state, harvest, T0 + 60, expiry=86400)
    assert report['unbanned'] == 2 and report['expired'] == 0
    assert sorted((s['address'], s['host'], s['jail']) for s in state['sightings']) == [
        ('198.51.100.7', 'h2', 'sshd'), ('198.51.100.8', 'h1', 'sshd'), ('198.51.100.9', 'h3', 'sshd')]
    # h2 read without it: the last sighting of .7 goes, and with it the address.
    state, report = merge_harvest(state, {'h1': [ban('198.51.100.8')], 'h2': []}, T0 + 120, expiry=86400)
    assert report['unbanned'] == 1
    entries, _pending = offered_entries(state, min_hosts=1, expiry=86400)
    assert [e['address'] for e in entries] == ['198.51.100.8', '198.51.100.9']
    # A ban still in force in a jail this harvest leaves out is no unban: that sighting only expires.
    state, _report = merge_harvest({'sightings': []}, {'h1': [ban('198.51.100.7', 'recidive')]}, T0, expiry=100)
    state, report = merge_harvest(state, {'h1': [ban('198.51.100.7', 'recidive')]}, T0 + 50, expiry=100,
                                  jails=['sshd'])
    assert report['unbanned'] == 0 and len(state['sightings']) == 1
    assert state['sightings'][0]['last_seen'] == T0


def test_no_harvest_still_expires():
    state, _report = merge_harvest({'sightings': []}, {'h1': [ban('198.51.100.7')]}, T0, expiry=10)
    state, report = merge_harvest(state, None, T0 + 5, expiry=10)
    assert len(state['sightings']) == 1 and report['hosts'] == 0
    state, report = merge_harvest(state, None, T0 + 11, expiry=10)
    assert state['sightings'] == [] and report['expired'] == 1


def test_bad_bans_from_a_host_are_counted_never_stored():
    harvest = {'h1': [ban('198.51.100.7'), ban('not-an-ip'), ban('198.51.101.0/23'), {'jail': 'sshd'},
                      'garbage', ban('2001:DB8:0:0::1', jail='recidive'), ban('198.51.100.9', jail='')],
               'h2': 'not a list'}
    state, report = merge_harvest({'sightings': []}, harvest, T0, expiry=100)
    assert sorted(s['address'] for s in state['sightings']) == ['198.51.100.7', '2001:db8::1']
    assert report['invalid'] == 6
    reasons = ' '.join(s['reason'] for s in report['invalid_samples'])
    assert 'host bits set' in reasons and 'not a list of bans' in reasons


def test_jail_filter_and_min_hosts():
    harvest = {'h1': [ban('198.51.100.7'), ban('198.51.100.8'), ban('198.51.100.9', jail='nginx-http-auth')],
               'h2': [ban('198.51.100.7', jail='recidive')]}
    state, report = merge_harvest({'sightings': []}, harvest, T0, expiry=100, jails=['sshd', 'recidive'])
    assert report['other_jails'] == 1
    entries, pending = offered_entries(state, min_hosts=2, expiry=100)
    assert [e['address'] for e in entries] == ['198.51.100.7'] and pending == 1
    assert {(h['host'], h['jail']) for h in entries[0]['hosts']} == {('h1', 'sshd'), ('h2', 'recidive')}
    assert entries[0]['expires'] == T0 + 100
    entries, pending = offered_entries(state, min_hosts=1, expiry=100)
    assert [e['address'] for e in entries] == ['198.51.100.7', '198.51.100.8'] and pending == 0


def test_two_jails_on_one_host_are_not_two_hosts():
    bans = [ban('198.51.100.7'), ban('198.51.100.7', 'recidive')]
    state, _report = merge_harvest({'sightings': []}, {'h1': bans}, T0, expiry=100)
    entries, pending = offered_entries(state, min_hosts=2, expiry=100)
    assert entries == [] and pending == 1


def test_corrupt_state_is_an_error_not_a_reset(tmp_path):
    (tmp_path / 'fleet_local.json').write_text('{"format": 1, "sightings": [')
    with pytest.raises(FleetLocalError, match='unreadable'):
        load_state(str(tmp_path))
    root = str(tmp_path)
    with pytest.raises(ShadowCopyError, match='unreadable'):
        build_shadow_copy(root, [], fleet_local={'harvest': {}})


def feeds_with(tmp_path, lines):
    path = tmp_path / 'attackers.txt'
    path.write_text(''.join(line + '\n' for line in lines))
    return [{'name': 'attackers', 'path': str(path)}]


def test_build_merges_harvest_with_provenance_allowlist_and_refusals(tmp_path):
    root = str(tmp_path / 'copy')
    feeds = feeds_with(tmp_path, ['203.0.113.0/24', '2001:db8:bad::/48'])
    harvest = {'h1': [ban('198.51.100.7'), ban('198.18.0.201'), ban('10.1.2.3'), ban('2001:db8:f00::1')],
               'h2': [ban('198.51.100.7', 'recidive', T0 - 1)]}
    result = build_shadow_copy(root, feeds, allowlist=['198.18.0.201'], now=at(T0),
                               fleet_local={'harvest': harvest, 'expiry': 3600})
    assert result['published']
    v4 = read(root, 'current', 'blocklist_v4.txt').split()
    assert v4 == ['198.51.100.7', '203.0.113.0/24']          # the friend is allowlisted, 10/8 refused
    assert read(root, 'current', 'blocklist_v6.txt').split() == ['2001:db8:bad::/48', '2001:db8:f00::1']
    manifest = json.loads(read(root, 'current', 'manifest.json'))
    status = [f for f in manifest['feeds'] if f['name'] == 'fleet_local'][0]
    assert status['status'] == 'fresh' and status['accepted'] == 3 and status['refused'] == {'private 10.0.0.0/8': 1}
    assert manifest['fleet_local']['accepted'] == 3 and manifest['fleet_local']['hosts_harvested'] == 2
    assert manifest['allowlist']['addresses_removed']['v4'] == 1
    provenance = json.loads(read(root, 'current', 'fleet_local.json'))
    # What the copy enforces, and nothing else: not the allowlisted friend, not the refused private address.
    assert sorted(e['address'] for e in provenance) == ['198.51.100.7', '2001:db8:f00::1']
    assert (manifest['fleet_local']['entries'], manifest['fleet_local']['allowlisted'],
            manifest['fleet_local']['refused']) == (2, 1, 1)
    seven = [e for e in provenance if e['address'] == '198.51.100.7'][0]
    assert sorted((h['host'], h['jail'], h['banned_at']) for h in seven['hosts']) == [
        ('h1', 'sshd', T0 - 5), ('h2', 'recidive', T0 - 1)]
    assert seven['expires'] == T0 + 3600
    import gzip
    with gzip.open(os.path.join(root, 'current', 'provenance.tsv.gz'), 'rt') as handle:
        rows = {line.split('\t')[0]: line.split('\t')[1] for line in handle if not line.startswith('#')}
    assert rows['198.51.100.7'] == 'fleet_local' and rows['203.0.113.0/24'] == 'attackers'


def test_expiry_removes_the_entry_unless_a_feed_lists_it(tmp_path):
    root = str(tmp_path / 'copy')
    feeds = feeds_with(tmp_path, ['203.0.113.0/24', '198.51.100.8'])
    harvest = {'h1': [ban('198.51.100.7'), ban('198.51.100.8')]}
    build_shadow_copy(root, feeds, now=at(T0), fleet_local={'harvest': harvest, 'expiry': 60})
    assert read(root, 'current', 'blocklist_v4.txt').split() == ['198.51.100.7', '198.51.100.8', '203.0.113.0/24']
    # Still banned on h1 at T0 + 50: refreshed.  At T0 + 111 nobody has seen them for 61 s.
    build_shadow_copy(root, feeds, now=at(T0 + 50), fleet_local={'harvest': harvest, 'expiry': 60})
    # h1 cannot be read at T0 + 111 (its silence is no unban), and nobody has seen them for 61 s.
    result = build_shadow_copy(root, feeds, now=at(T0 + 111),
                               fleet_local={'harvest': {'h1': {'available': False, 'bans': []}}, 'expiry': 60})
    assert result['published'] and result['fleet_local']['expired'] == 2
    assert read(root, 'current', 'blocklist_v4.txt').split() == ['198.51.100.8', '203.0.113.0/24']


def test_expiry_is_outside_the_shrink_and_empty_guards(tmp_path):
    root = str(tmp_path / 'copy')
    feeds = feeds_with(tmp_path, ['203.0.113.7'])
    wave = {'h1': [ban('198.51.100.%d' % i) for i in range(1, 41)]}
    assert build_shadow_copy(root, feeds, now=at(T0), fleet_local={'harvest': wave, 'expiry': 60})['published']
    # 41 entries to 1 is a 97% shrink, but all of it is fleet-local expiry.
    result = build_shadow_copy(root, feeds, now=at(T0 + 61), fleet_local={'harvest': {}, 'expiry': 60})
    assert result['published'] and result['withheld'] is None and result['entries']['v4'] == 1
    # Without feeds at all, the fleet-local feed may even shrink to nothing.
    only = str(tmp_path / 'only')
    assert build_shadow_copy(only, [], now=at(T0), fleet_local={'harvest': wave, 'expiry': 60})['published']
    result = build_shadow_copy(only, [], now=at(T0 + 61), fleet_local={'harvest': {}, 'expiry': 60})
    assert result['published'] and result['entries']['v4'] == 0
    # The feeds' own share is still guarded.
    feeds_with(tmp_path, [])
    (tmp_path / 'attackers.txt').write_text('198.51.100.1\n')
    grown = feeds_with(tmp_path, ['203.0.113.%d' % i for i in range(1, 21)])
    grown[0]['max_growth_factor'] = 0      # a deliberate 20-fold growth, not the fault under test here
    build_shadow_copy(root, grown, now=at(T0 + 62), fleet_local={'harvest': {}, 'expiry': 60})
    result = build_shadow_copy(root, feeds_with(tmp_path, ['203.0.113.1']), now=at(T0 + 63),
                               fleet_local={'harvest': wave, 'expiry': 60})
    assert result['withheld'] and 'fewer than generation' in result['withheld']


def test_check_mode_previews_without_remembering(tmp_path):
    root = str(tmp_path / 'copy')
    feeds = feeds_with(tmp_path, ['203.0.113.0/24'])
    result = build_shadow_copy(root, feeds, now=at(T0), check_mode=True,
                               fleet_local={'harvest': {'h1': [ban('198.51.100.7')]}})
    assert result['changed'] and not result['published']
    assert read(root, 'preview', 'blocklist_v4.txt').split() == ['198.51.100.7', '203.0.113.0/24']
    assert not os.path.exists(os.path.join(root, 'fleet_local.json'))


def test_reserved_name_and_bad_options(tmp_path):
    root = str(tmp_path / 'copy')
    feeds = [{'name': 'fleet_local', 'path': str(tmp_path)}]
    with pytest.raises(ShadowCopyError, match='reserved'):
        build_shadow_copy(root, feeds, fleet_local={})
    with pytest.raises(ShadowCopyError, match='min_hosts'):
        build_shadow_copy(root, feeds_with(tmp_path, ['203.0.113.1']), fleet_local={'min_hosts': 0})
    with pytest.raises(ShadowCopyError, match='no feeds configured'):
        build_shadow_copy(root, [])


def test_module_results_are_taken_as_they_come():
    harvest = {'h1': {'changed': False, 'available': True, 'source': 'database', 'bans': [ban('198.51.100.7')]},
               'h2': {'changed': False, 'available': False, 'source': None, 'bans': []},
               'h3': {'failed': True, 'available': False, 'msg': 'cannot read bans', 'bans': []},
               'h4': {'failed': False, 'msg': 'MODULE FAILURE', 'module_stderr': 'Traceback ...'}}
    state, report = merge_harvest({'sightings': []}, harvest, T0, expiry=100)
    assert [s['host'] for s in state['sightings']] == ['h1']
    assert report['hosts'] == 1 and report['unavailable'] == ['h2', 'h3', 'h4']


def test_an_expired_ban_leaves_the_provenance_even_when_a_feed_keeps_the_address(tmp_path):
    root = str(tmp_path / 'copy')
    feeds = feeds_with(tmp_path, ['198.51.100.7'])
    build_shadow_copy(root, feeds, now=at(T0), fleet_local={'harvest': {'h1': [ban('198.51.100.7')]}, 'expiry': 60})
    assert [e['address'] for e in json.loads(read(root, 'current', 'fleet_local.json'))] == ['198.51.100.7']
    result = build_shadow_copy(root, feeds, now=at(T0 + 61), fleet_local={'harvest': {}, 'expiry': 60})
    # The hosts enforce the same list, but the copy no longer says a fail2ban ban put it there.
    assert result['published'] and result['generation'] == 2
    assert read(root, 'current', 'blocklist_v4.txt').split() == ['198.51.100.7']
    assert json.loads(read(root, 'current', 'fleet_local.json')) == []
    # And an unchanged harvest publishes nothing new.
    assert not build_shadow_copy(root, feeds, now=at(T0 + 62), fleet_local={'harvest': {}, 'expiry': 60})['published']


def test_an_unban_lifts_the_block_at_the_next_build_unless_the_host_was_unreachable(tmp_path):
    root = str(tmp_path / 'copy')
    feeds = feeds_with(tmp_path, ['203.0.113.0/24'])
    harvest = {'h1': [ban('198.51.100.7')], 'h3': [ban('198.51.100.9')]}
    build_shadow_copy(root, feeds, now=at(T0), fleet_local={'harvest': harvest})
    assert read(root, 'current', 'blocklist_v4.txt').split() == ['198.51.100.7', '198.51.100.9', '203.0.113.0/24']
    # Ten minutes later (the expiry is a day): h1 was read and no longer bans .7; h3 was unreachable.
    result = build_shadow_copy(root, feeds, now=at(T0 + 600), fleet_local={'harvest': {'h1': []}})
    assert result['published'] and result['fleet_local']['unbanned'] == 1 and result['fleet_local']['expired'] == 0
    assert read(root, 'current', 'blocklist_v4.txt').split() == ['198.51.100.9', '203.0.113.0/24']
    assert [e['address'] for e in json.loads(read(root, 'current', 'fleet_local.json'))] == ['198.51.100.9']


def test_an_allowlisted_ban_is_neither_enforced_nor_listed_nor_counted(tmp_path):
    """A hand-made ban of an allowlisted address: kept out of the copy, its provenance and its enforced count."""
    root = str(tmp_path / 'copy')
    feeds = feeds_with(tmp_path, ['203.0.113.0/24'])
    harvest = {'h1': [ban('198.51.100.7'), ban('192.0.2.10'), ban('198.18.0.0/28')]}
    # The allowlist covers 192.0.2.10 entirely and one address of the /28, which the copy still blocks in part.
    result = build_shadow_copy(root, feeds, allowlist=['192.0.2.0/24', '198.18.0.1'], now=at(T0),
                               fleet_local={'harvest': harvest})
    assert '192.0.2.10' not in read(root, 'current', 'blocklist_v4.txt')
    assert sorted(e['address'] for e in json.loads(read(root, 'current', 'fleet_local.json'))) == [
        '198.18.0.0/28', '198.51.100.7']
    summary = result['fleet_local']
    assert (summary['entries'], summary['accepted'], summary['allowlisted']) == (2, 3, 1)
    # An allowlisted ban alone changes nothing a host enforces: no new generation.
    result = build_shadow_copy(root, feeds, allowlist=['192.0.2.0/24', '198.18.0.1'], now=at(T0 + 60),
                               fleet_local={'harvest': {'h1': harvest['h1'] + [ban('192.0.2.11')]}})
    assert not result['published'] and result['fleet_local']['allowlisted'] == 2
