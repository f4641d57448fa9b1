"""The sync engine and the ipset adapter against the real kernel, in a private network namespace."""
import os

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ipset import IpsetAdapter, size_for
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.iptables_rules import ensure_rules
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import (
    Entries, StateStore, SyncError, SyncPolicy, read_entries_source, sync_set,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='needs root for a network namespace')


def live(run, name):
    rc, out, _err = run(['ipset', 'save', name])
    assert rc == 0
    return {line.split()[2] for line in out.splitlines() if line.startswith('add ')}


def sync(run, tmp_path, entries, name='bl4', family='inet', **kwargs):
    adapter = IpsetAdapter(run, 'ipset', name, family=family, set_type=kwargs.pop('set_type', 'hash:net'))
    store = StateStore(str(tmp_path / 'state'), 'ipset', name)
    path = tmp_path / ('entries-%s.txt' % name)
    path.write_text(''.join(e + '\n' for e in entries))
    return sync_set(adapter, store, Entries.read(str(path)), SyncPolicy(**kwargs))


def test_first_load_noop_incremental_and_full(netns, tmp_path):
    base = ['198.51.100.%d' % i for i in range(200)] + ['203.0.113.0/24']
    r = sync(netns, tmp_path, base, want_diff=True)
    assert (r['changed'], r['added'], r['removed'], r['total']) == (True, 201, 0, 201)
    assert live(netns, 'bl4') == set(base)
    assert r['diff']['after'].startswith('ipset bl4: 201 entries\n')
    assert '... and 181 more added' in r['diff']['after']

    r = sync(netns, tmp_path, base)
    assert (r['changed'], r['added'], r['removed'], r['verified']) == (False, 0, 0, False)

    small = base[5:] + ['192.0.2.7']
    r = sync(netns, tmp_path, small)
    assert (r['changed'], r['added'], r['removed'], r['full_reload']) == (True, 1, 5, False)
    assert live(netns, 'bl4') == set(small)

    other = ['192.0.2.%d' % i for i in range(100)]
    r = sync(netns, tmp_path, other)
    assert r['full_reload'] and live(netns, 'bl4') == set(other)
    # The temporary set of the swap is gone.
    assert netns(['ipset', 'list', '-n'])[1].split() == ['bl4']


def test_check_mode_changes_nothing(netns, tmp_path):
    sync(netns, tmp_path, ['198.51.100.1'])
    r = sync(netns, tmp_path, ['198.51.100.2'], check_mode=True, want_diff=True)
    assert (r['changed'], r['added'], r['removed']) == (True, 1, 1)
    assert live(netns, 'bl4') == {'198.51.100.1'}
    assert '198.51.100.1' in r['diff']['before'] and '198.51.100.2' in r['diff']['after']


def test_drift_is_found_by_count_and_by_verify(netns, tmp_path):
    entries = ['198.51.100.%d' % i for i in range(10)]
    sync(netns, tmp_path, entries)
    netns(['ipset', 'del', 'bl4', '198.51.100.3'])
    r = sync(netns, tmp_path, entries)
    assert (r['changed'], r['added'], r['verified']) == (True, 1, True)
    # Same count, different content: only verify can see it.
    netns(['ipset', 'del', 'bl4', '198.51.100.4'])
    netns(['ipset', 'add', 'bl4', '192.0.2.99'])
    assert sync(netns, tmp_path, entries)['changed'] is False
    r = sync(netns, tmp_path, entries, verify=True)
    assert (r['changed'], r['added'], r['removed']) == (True, 1, 1)
    assert live(netns, 'bl4') == set(entries)


def test_invalid_entries_apply_nothing(netns, tmp_path):
    sync(netns, tmp_path, ['198.51.100.1'])
    for bad in (['198.51.100.2', '1.2.3.4 }; flush ruleset; {'], ['2001:db8::1'], ['0.0.0.0/0'], ['1.2.3.4/33']):
        with pytest.raises(SyncError, match='invalid entries, nothing applied'):
            sync(netns, tmp_path, bad)
        assert live(netns, 'bl4') == {'198.51.100.1'}


def test_non_canonical_entries_are_normalised(netns, tmp_path):
    r = sync(netns, tmp_path, ['198.51.100.1/32', '198.51.100.1'])
    assert r['total'] == 1 and live(netns, 'bl4') == {'198.51.100.1'}
    r = sync(netns, tmp_path, ['2001:DB8:0::1', '2001:db8:1::/48'], name='bl6', family='inet6')
    assert live(netns, 'bl6') == {'2001:db8::1', '2001:db8:1::/48'}
    assert sync(netns, tmp_path, ['2001:DB8:0::1', '2001:db8:1::/48'], name='bl6', family='inet6')['changed'] is False


def test_set_of_another_type_is_left_alone(netns, tmp_path):
    netns(['ipset', 'create', 'bl4', 'hash:ip'])
    netns(['ipset', 'add', 'bl4', '192.0.2.1'])
    with pytest.raises(SyncError, match='already exists as hash:ip family inet'):
        sync(netns, tmp_path, ['198.51.100.1'])
    assert live(netns, 'bl4') == {'192.0.2.1'}


def test_hash_ip_refuses_networks(netns, tmp_path):
    with pytest.raises(SyncError, match='single addresses only'):
        sync(netns, tmp_path, ['198.51.100.0/24'], set_type='hash:ip')


def test_set_grows_past_maxelem_by_swapping(netns, tmp_path):
    sync(netns, tmp_path, ['198.51.100.1'])
    big = ['10.%d.%d.%d' % (a, b, c) for a in range(3) for b in range(256) for c in range(0, 256, 2)]
    assert len(big) > 65536
    r = sync(netns, tmp_path, big)
    assert r['full_reload'] and r['total'] == len(big)
    rc, out, _err = netns(['ipset', 'list', '-t', 'bl4'])
    assert 'maxelem %d' % size_for(len(big))[0] in out
    assert 'Number of entries: %d' % len(big) in out


def test_name_too_long_for_the_kernel():
    with pytest.raises(SyncError, match='1 to 31 characters'):
        IpsetAdapter(None, 'ipset', 'x' * 32)


def test_rules_are_tagged_kept_on_top_and_idempotent(netns, tmp_path):
    sync(netns, tmp_path, ['198.51.100.1'])
    bins = ('iptables', 'iptables-restore')
    netns(['iptables', '-A', 'INPUT', '-s', '192.0.2.1', '-j', 'ACCEPT'])
    rules = [{'chain': 'INPUT', 'target': 'DROP', 'ports': [22, 80], 'protocol': 'tcp', 'log': True,
              'log_prefix': 'fw drop: '}]
    assert ensure_rules(netns, bins, 4, 'bl4', rules, check_mode=True)
    assert 'fleetwall' not in netns(['iptables', '-S'])[1]
    assert ensure_rules(netns, bins, 4, 'bl4', rules)
    assert ensure_rules(netns, bins, 4, 'bl4', rules) == []
    listing = netns(['iptables', '-S', 'INPUT'])[1].splitlines()
    assert listing[1].endswith('-j LOG --log-prefix "fw drop: "')
    assert listing[2].endswith('-j DROP') and '--dports 22,80' in listing[2]
    assert listing[3] == '-A INPUT -s 192.0.2.1/32 -j ACCEPT'
    # Someone inserts a rule above ours: ours move back to the top, theirs stays.
    netns(['iptables', '-I', 'INPUT', '1', '-s', '192.0.2.2', '-j', 'ACCEPT'])
    assert ensure_rules(netns, bins, 4, 'bl4', [{'chain': 'INPUT', 'target': 'REJECT'}])
    listing = netns(['iptables', '-S', 'INPUT'])[1].splitlines()
    assert listing[1:] == [
        '-A INPUT -m set --match-set bl4 src -m comment --comment "fleetwall:bl4" -j REJECT --reject-with icmp-port-unreachable',
        '-A INPUT -s 192.0.2.2/32 -j ACCEPT',
        '-A INPUT -s 192.0.2.1/32 -j ACCEPT',
    ]
    assert ensure_rules(netns, bins, 4, 'bl4', []) and 'fleetwall' not in netns(['iptables', '-S'])[1]


def test_invalid_first_load_creates_nothing(netns, tmp_path):
    # The kernel starts loading while the entries are validated; an invalid
    # entry must leave no set behind, neither the live name nor the temporary one.
    entries = ['198.51.100.%d' % i for i in range(50)] + ['198.51.100.0/24x']
    with pytest.raises(SyncError, match="'198.51.100.0/24x': invalid prefix length"):
        sync(netns, tmp_path, entries)
    assert netns(['ipset', 'list', '-n'])[1].split() == []


def test_invalid_full_reload_keeps_the_live_set(netns, tmp_path):
    sync(netns, tmp_path, ['198.51.100.1'])
    entries = ['203.0.113.%d' % i for i in range(50)] + ['203.0.113.5/24']
    with pytest.raises(SyncError, match='host bits set'):
        sync(netns, tmp_path, entries)
    assert live(netns, 'bl4') == {'198.51.100.1'}
    assert netns(['ipset', 'list', '-n'])[1].split() == ['bl4']


@pytest.mark.parametrize('text', ['198.51.100.1 198.51.100.2\n', '198.51.100.1\x1f198.51.100.2\n',
                                  '198.51.100.1;198.51.100.2\n'])
def test_a_line_is_never_split_into_several_entries(text, tmp_path):
    path = tmp_path / 'e.txt'
    path.write_text(text)
    lines, _sha, _raw = read_entries_source(str(path))
    assert len(lines) == 1


def test_entries_file_with_comments_blank_lines_and_crlf(tmp_path):
    path = tmp_path / 'e.txt'
    path.write_bytes(b'# generated\r\n198.51.100.1\r\n\r\n  198.51.100.2  \r\n')
    assert read_entries_source(str(path))[0] == ['198.51.100.1', '198.51.100.2']


def test_timeout_sets(netns, tmp_path):
    adapter = IpsetAdapter(netns, 'ipset', 'bl4t', timeout=600)
    store = StateStore(str(tmp_path / 'state'), 'ipset', 'bl4t')
    lines = ['198.51.100.1', '198.51.100.0/30']
    entries = Entries.read(entries=lines)
    r = sync_set(adapter, store, entries)
    assert r['changed'] and r['total'] == 2
    out = netns(['ipset', 'list', '-t', 'bl4t'])[1]
    assert 'timeout 600' in out
    # Entries carry their remaining time in the listing; the diff must not care.
    assert adapter.read_entries() == {'198.51.100.1', '198.51.100.0/30'}
    assert sync_set(adapter, store, entries, SyncPolicy(verify=True))['changed'] is False
    # A set without timeout support cannot become one in place.
    plain = IpsetAdapter(netns, 'ipset', 'bl4t')
    with pytest.raises(SyncError, match='created with a timeout'):
        sync_set(plain, StateStore(str(tmp_path / 'state2'), 'ipset', 'bl4t'), entries)


def test_a_change_larger_than_max_change_percent_is_refused_unless_forced(netns, tmp_path):
    base = ['198.51.100.%d' % i for i in range(100)]
    # A set that does not exist yet takes any change.
    assert sync(netns, tmp_path, base, max_change_percent=5)['changed']
    # 4 removed + 1 added = 5% of 100: allowed.
    r = sync(netns, tmp_path, base[4:] + ['192.0.2.1'], max_change_percent=5)
    assert r['changed'] and 'refused' not in r
    # 30 removed (a generation that lost a feed, say): refused, nothing applied, in check mode too.
    wrong = base[34:] + ['192.0.2.1']
    for check_mode in (True, False):
        r = sync(netns, tmp_path, wrong, max_change_percent=5, check_mode=check_mode, want_diff=True)
        assert not r['changed'] and (r['added'], r['removed'], r['total']) == (0, 30, 97)
        assert 'above max_change_percent 5' in r['refused'] and '30 entries' in r['refused']
        # The roles' user reads the variable they set, beside the module's option.
        assert 'fleetwall_force_change with the roles' in r['refused']
        assert '... and 10 more removed' in r['diff']['before']
        assert live(netns, 'bl4') == set(base[4:] + ['192.0.2.1'])
    r = sync(netns, tmp_path, wrong, max_change_percent=5, force_change=True)
    assert r['changed'] and 'refused' not in r and live(netns, 'bl4') == set(wrong)


def test_an_empty_list_never_empties_a_set_unless_allowed(netns, tmp_path):
    """The issue's row: a generation file truncated to 0 bytes emptied every host's set (+0 -70 =0), no warning.
    The host refuses it whatever the set's size and with no max_change_percent set."""
    sync(netns, tmp_path, ['198.51.100.1', '198.51.100.2'], allow_empty=False)
    for check_mode in (True, False):
        r = sync(netns, tmp_path, [], allow_empty=False, check_mode=check_mode)
        assert r['refused'].startswith('the change would remove all 2 entries in place') and not r['changed']
        assert live(netns, 'bl4') == {'198.51.100.1', '198.51.100.2'}
    r = sync(netns, tmp_path, [], allow_empty=True)
    assert (r['changed'], r['total']) == (True, 0) and live(netns, 'bl4') == set()


def test_outbound_rules_match_new_connections_and_read_back(netns, tmp_path):
    sync(netns, tmp_path, ['198.51.100.1'])
    bins = ('iptables', 'iptables-restore')
    rules = [{'chain': 'INPUT', 'ports': [22]}, {'chain': 'OUTPUT', 'target': 'REJECT'}]
    assert ensure_rules(netns, bins, 4, 'bl4', rules)
    assert ensure_rules(netns, bins, 4, 'bl4', rules) == []
    assert netns(['iptables', '-S', 'OUTPUT'])[1].splitlines()[1] == (
        '-A OUTPUT -m set --match-set bl4 dst -m conntrack --ctstate NEW -m comment --comment "fleetwall:bl4" '
        '-j REJECT --reject-with icmp-port-unreachable')


def test_the_save_file_restores_at_boot_as_ipset_save_would(netns, tmp_path):
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import write_atomic
    entries = ['198.51.100.7', '203.0.113.0/24']
    adapter = IpsetAdapter(netns, 'ipset', 'bl4', timeout=600)
    store = StateStore(str(tmp_path / 'state'), 'ipset', 'bl4')
    path = tmp_path / 'entries.txt'
    path.write_text(''.join(e + '\n' for e in entries))
    sync_set(adapter, store, Entries.read(str(path)))
    saved_by_ipset = netns(['ipset', 'save', 'bl4'])[1].splitlines()
    save_file = str(tmp_path / 'bl4.save')
    adapter.save_to(save_file, write_atomic, store)
    with open(save_file) as handle:
        saved = handle.read()
    # ipset's own create line, less the per-boot initval; the record's entries, each with the set's full timeout.
    assert saved.splitlines()[0] == saved_by_ipset[0].split(' initval ')[0]
    assert 'timeout 600' in saved.splitlines()[0] and 'initval' not in saved and saved.endswith('\n')
    assert sorted(saved.splitlines()[1:]) == ['add bl4 198.51.100.7', 'add bl4 203.0.113.0/24']
    netns(['ipset', 'destroy', 'bl4'])
    rc, _out, err = netns(['ipset', 'restore', '-file', save_file])
    assert rc == 0, err
    assert live(netns, 'bl4') == set(entries)
    assert netns(['ipset', 'save', 'bl4'])[1].splitlines()[0].split(' initval ')[0] == saved.splitlines()[0]
