"""The sync engine and the nftables adapter against the real kernel, in a private network namespace."""
import json
import os

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nft import NftAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.nft_rules import RuleManager
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import (
    Entries, StateStore, SyncError, SyncPolicy, sync_set,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='needs root for a network namespace')


def adapter_for(run, name='bl4', **kwargs):
    return NftAdapter(run, 'nft', 'fleetwall', name, **kwargs)


def live(run, name='bl4'):
    return adapter_for(run, name, interval=True).read_entries()


def sync(run, tmp_path, entries, name='bl4', adapter=None, **kwargs):
    adapter = adapter or adapter_for(run, name)
    store = StateStore(str(tmp_path / 'state'), 'nft', name)
    path = tmp_path / ('entries-%s.txt' % name)
    path.write_text(''.join(e + '\n' for e in entries))
    return sync_set(adapter, store, Entries.read(str(path)), SyncPolicy(**kwargs))


def test_first_load_noop_incremental_full_and_verify(netns, tmp_path):
    base = ['198.51.100.%d' % i for i in range(200)] + ['203.0.113.0/24', '192.0.2.64/26']
    r = sync(netns, tmp_path, base, want_diff=True)
    assert (r['changed'], r['added'], r['removed'], r['total']) == (True, 202, 0, 202)
    assert live(netns) == set(base)
    assert r['diff']['after'].startswith('nft set inet fleetwall bl4: 202 entries\n')

    r = sync(netns, tmp_path, base)
    assert (r['changed'], r['total'], r['verified']) == (False, 202, False)

    small = base[5:] + ['192.0.2.7']
    r = sync(netns, tmp_path, small)
    assert (r['changed'], r['added'], r['removed'], r['full_reload']) == (True, 1, 5, False)
    assert live(netns) == set(small)

    other = ['203.0.113.%d' % i for i in range(1, 50)]
    r = sync(netns, tmp_path, other)
    assert r['full_reload'] and live(netns) == set(other)

    # Drift made by hand: invisible to the record (nft cannot count cheaply), found by verify.
    netns(['nft', 'add', 'element', 'inet', 'fleetwall', 'bl4', '{ 10.9.9.9 }'])
    netns(['nft', 'delete', 'element', 'inet', 'fleetwall', 'bl4', '{ 203.0.113.1 }'])
    assert sync(netns, tmp_path, other)['changed'] is False
    r = sync(netns, tmp_path, other, verify=True)
    assert (r['changed'], r['added'], r['removed'], r['verified']) == (True, 1, 1, True)
    assert live(netns) == set(other)


def test_recreated_set_is_not_trusted(netns, tmp_path):
    entries = ['198.51.100.1', '198.51.100.2']
    sync(netns, tmp_path, entries)
    netns(['nft', 'delete', 'set', 'inet', 'fleetwall', 'bl4'])
    netns(['nft', 'add', 'set', 'inet', 'fleetwall', 'bl4', '{ type ipv4_addr; flags interval; }'])
    r = sync(netns, tmp_path, entries)
    assert (r['changed'], r['added'], r['verified']) == (True, 2, True)
    assert live(netns) == set(entries)


def test_periodic_verify(netns, tmp_path):
    entries = ['198.51.100.1']
    sync(netns, tmp_path, entries)
    netns(['nft', 'flush', 'set', 'inet', 'fleetwall', 'bl4'])
    assert sync(netns, tmp_path, entries, verify_interval=3600)['changed'] is False
    state = tmp_path / 'state' / 'nft-bl4.json'
    record = json.loads(state.read_text())
    record['verified_at'] -= 7200
    state.write_text(json.dumps(record))
    r = sync(netns, tmp_path, entries, verify_interval=3600)
    assert (r['changed'], r['verified'], r['added']) == (True, True, 1)


def test_plain_set_takes_addresses_only_and_ipv6(netns, tmp_path):
    plain = adapter_for(netns, 'hosts6', elem_type='ipv6_addr', interval=False)
    r = sync(netns, tmp_path, ['2001:db8::1', '2001:db8::2'], name='hosts6', adapter=plain)
    assert r['total'] == 2
    with pytest.raises(SyncError, match='network'):
        sync(netns, tmp_path, ['2001:db8::/64'], name='hosts6', adapter=plain)
    # An existing set of another kind is reported, not replaced.
    with pytest.raises(SyncError, match='cannot change in place'):
        sync(netns, tmp_path, ['2001:db8::/64'], name='hosts6',
             adapter=adapter_for(netns, 'hosts6', elem_type='ipv6_addr', interval=True))


def test_a_failed_transaction_leaves_the_set_as_it_was(netns, tmp_path):
    sync(netns, tmp_path, ['198.51.100.0/24'])
    # Overlapping intervals are refused by the kernel: the whole transaction goes, nothing half-applied.
    with pytest.raises(SyncError, match='cannot hold both 198.51.100.0/24 and 198.51.100.0/25, which lies inside it'):
        sync(netns, tmp_path, ['198.51.100.0/24', '198.51.100.0/25', '203.0.113.9'], verify=True)
    assert live(netns) == {'198.51.100.0/24'}


@pytest.mark.parametrize('first, then, pair', [
    # A new set: nft says 'conflicting intervals specified' with a column number.
    ([], ['203.0.113.9', '198.51.100.0/24', '198.51.100.77'], ('198.51.100.0/24', '198.51.100.77')),
    # An address added inside a network already in the set: 'interval overlaps with an existing one'.
    (['198.51.100.0/24'], ['198.51.100.0/24', '198.51.100.77'], ('198.51.100.0/24', '198.51.100.77')),
    # A network added around an address already in the set, and the same in IPv6.
    (['198.51.100.77'], ['198.51.100.77', '198.51.100.0/24'], ('198.51.100.0/24', '198.51.100.77')),
    (['2001:db8::/48'], ['2001:db8::/48', '2001:db8:0:1::/64'], ('2001:db8::/48', '2001:db8:0:1::/64')),
])
def test_nested_entries_are_refused_naming_the_pair(netns, tmp_path, first, then, pair):
    """Before, nft's own 'conflicting intervals specified' was all the operator saw; ipset holds both."""
    v6 = ':' in then[0]
    adapter = adapter_for(netns, elem_type='ipv6_addr' if v6 else 'ipv4_addr')
    if first:
        sync(netns, tmp_path, first, adapter=adapter)
    with pytest.raises(SyncError) as caught:
        sync(netns, tmp_path, then, adapter=adapter)
    assert 'cannot hold both %s and %s, which lies inside it' % pair in str(caught.value)
    assert 'nothing was applied' in str(caught.value)
    rc, _out, _err = netns(['nft', 'list', 'set', 'inet', 'fleetwall', 'bl4'])
    assert (adapter_for(netns, elem_type='ipv6_addr' if v6 else 'ipv4_addr').read_entries() == set(first)) if first \
        else rc != 0
    # One transaction deletes before it adds: an entry replaced by one around it or inside it is no overlap.
    if first:
        other = pair[1] if pair[0] in first else pair[0]
        r = sync(netns, tmp_path, [other], adapter=adapter)
        assert r['changed'] and adapter.read_entries() == {other}


def test_rules_in_chains_of_their_own(netns, tmp_path):
    adapter = adapter_for(netns)
    sync(netns, tmp_path, ['198.51.100.7'], adapter=adapter)
    manager = RuleManager(adapter, str(tmp_path / 'state'))
    # Somebody else's table and rule stay untouched.
    netns(['nft', 'add', 'table', 'inet', 'theirs'])
    netns(['nft', 'add', 'chain', 'inet', 'theirs', 'in', '{ type filter hook input priority 0; }'])
    netns(['nft', 'add', 'rule', 'inet', 'theirs', 'in', 'tcp', 'dport', '22', 'accept'])
    rules = [{'chain': 'input', 'ports': [22, 80], 'log': True}, {'chain': 'output'}]
    assert manager.ensure(rules) == ['bl4_input: 2 rule(s)', 'bl4_output: 1 rule(s)']
    assert manager.ensure(rules) == []
    _rc, out, _err = netns(['nft', 'list', 'chain', 'inet', 'fleetwall', 'bl4_input'])
    assert 'priority filter - 10' in out
    assert 'ip saddr @bl4 tcp dport { 22, 80 } limit rate 5/minute log prefix "fleetwall-drop: "' in out
    assert 'counter name "bl4_drops" drop' in out
    _rc, out, _err = netns(['nft', 'list', 'chain', 'inet', 'fleetwall', 'bl4_output'])
    assert 'ip daddr @bl4 ct state new counter name "bl4_drops" drop' in out
    # A chain removed by hand is noticed cheaply and put back.
    netns(['nft', 'flush', 'chain', 'inet', 'fleetwall', 'bl4_output'])
    netns(['nft', 'delete', 'chain', 'inet', 'fleetwall', 'bl4_output'])
    assert manager.ensure(rules) != []
    # Rules edited by hand are found by verify.
    netns(['nft', 'flush', 'chain', 'inet', 'fleetwall', 'bl4_input'])
    assert manager.ensure(rules) == []
    assert manager.ensure(rules, verify=True) != []
    _rc, out, _err = netns(['nft', 'list', 'chain', 'inet', 'fleetwall', 'bl4_input'])
    assert 'counter name "bl4_drops" drop' in out
    assert manager.ensure([]) == ['bl4_input: removed', 'bl4_output: removed']
    _rc, out, _err = netns(['nft', 'list', 'ruleset'])
    assert 'bl4_input' not in out and 'tcp dport 22 accept' in out


def test_persisted_script_recreates_set_and_chains(netns, tmp_path):
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import write_atomic
    adapter = adapter_for(netns)
    store = StateStore(str(tmp_path / 'state'), 'nft', 'bl4')
    sync(netns, tmp_path, ['198.51.100.7', '203.0.113.0/24'], adapter=adapter)
    manager = RuleManager(adapter, str(tmp_path / 'state'))
    adapter.rule_manager = manager
    manager.ensure([{'chain': 'input'}])
    path = str(tmp_path / 'persist.nft')
    adapter.save_to(path, write_atomic, store)
    netns(['nft', 'flush', 'ruleset'])
    rc, _out, err = netns(['nft', '-f', path])
    assert rc == 0, err
    assert live(netns) == {'198.51.100.7', '203.0.113.0/24'}
    _rc, out, _err = netns(['nft', 'list', 'chain', 'inet', 'fleetwall', 'bl4_input'])
    assert '@bl4' in out


def test_new_plain_set_is_filled_in_parts_and_removed_if_anything_fails(netns, tmp_path, monkeypatch):
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import backend_nft
    monkeypatch.setattr(backend_nft, 'LOAD_CHUNK', 100)
    calls = []

    def counting(args, data=None, check_rc=False):
        calls.append(args)
        return netns(args, data)
    entries = ['198.51.%d.%d' % (i // 250, i % 250 + 1) for i in range(1000)]
    plain = NftAdapter(counting, 'nft', 'fleetwall', 'parts', interval=False)
    r = sync(netns, tmp_path, entries, name='parts', adapter=plain)
    assert (r['changed'], r['total']) == (True, 1000)
    assert len([c for c in calls if c[1:2] == ['-f']]) == 10   # ten parts, the first with the definition
    assert adapter_for(netns, 'parts', interval=False).read_entries() == set(entries)

    bad = entries[:500] + ['198.51.100.300'] + entries[500:]
    plain = NftAdapter(netns, 'nft', 'fleetwall', 'parts2', interval=False)
    with pytest.raises(SyncError, match='invalid entries'):
        sync(netns, tmp_path, bad, name='parts2', adapter=plain)
    assert not plain.probe().exists


def test_a_part_whose_batch_file_cannot_be_written_fails_the_load_and_leaves_no_set(netns, tmp_path, monkeypatch):
    import contextlib
    import errno
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import backend_nft
    monkeypatch.setattr(backend_nft, 'LOAD_CHUNK', 100)
    written = []
    real = backend_nft.scratch_file

    @contextlib.contextmanager
    def filling(chunks, *args):
        written.append(1)
        if len(written) == 3:
            raise OSError(errno.ENOSPC, 'No space left on device', '/state/nft-full.scratch-x')
        with real(chunks, *args) as path:
            yield path
    monkeypatch.setattr(backend_nft, 'scratch_file', filling)
    entries = ['198.51.%d.%d' % (i // 250, i % 250 + 1) for i in range(1000)]
    plain = NftAdapter(netns, 'nft', 'fleetwall', 'full', interval=False)
    # The loader thread's error reaches the caller (it used to be lost, and the load counted as done).
    with pytest.raises(OSError, match='No space left'):
        sync(netns, tmp_path, entries, name='full', adapter=plain)
    assert not plain.probe().exists


def test_one_listing_serves_the_probe_and_the_chains_of_a_sync(netns, tmp_path):
    calls = []

    def counted(args, **kwargs):
        calls.append(list(args))
        return netns(args, **kwargs)
    rules = [{'chain': 'input'}]
    sync(netns, tmp_path, ['198.51.100.7'])
    RuleManager(adapter_for(netns), str(tmp_path / 'state')).ensure(rules)

    # What the module does on a host with nothing to change: one nft call in all.
    adapter = adapter_for(counted, keep_listing=True)
    assert sync(counted, tmp_path, ['198.51.100.7'], adapter=adapter)['changed'] is False
    assert RuleManager(adapter, str(tmp_path / 'state')).ensure(rules) == []
    assert calls == [['nft', '-t', '-j', 'list', 'ruleset', 'inet']]

    # A change is followed by a fresh listing: the rules' new chain handles are read after the apply.
    del calls[:]
    adapter = adapter_for(counted, keep_listing=True)
    manager = RuleManager(adapter, str(tmp_path / 'state'))
    assert manager.ensure(rules + [{'chain': 'output'}]) == ['bl4_input: 1 rule(s)', 'bl4_output: 1 rule(s)']
    assert [c[1:3] for c in calls] == [['-t', '-j'], ['-f', calls[1][2]], ['-t', '-j']]
    # And the record it wrote names the live chains: a new run finds nothing to do.
    assert RuleManager(adapter_for(netns, keep_listing=True), str(tmp_path / 'state')).ensure(
        rules + [{'chain': 'output'}]) == []
    # Without keep_listing (the default) every look is a new listing.
    del calls[:]
    adapter = adapter_for(counted)
    adapter.probe()
    RuleManager(adapter, str(tmp_path / 'state')).ensure(rules + [{'chain': 'output'}])
    assert len(calls) == 2
