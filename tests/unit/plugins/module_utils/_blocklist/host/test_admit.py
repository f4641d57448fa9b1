"""Admit-only sets: lockout protection adds to them, their rules drop every other source, and a set that would cut
the managing SSH session is refused."""
import os

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import module_support
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nft import NftAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.nft_rules import RuleManager
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.protect import (
    Protection, ssh_connections,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import (
    Entries, StateStore, SyncError, SyncPolicy, sync_set,
)


def test_admitting_adds_what_is_not_covered_and_says_why():
    protection = Protection([('192.0.2.9', 'SSH client'), ('198.51.100.0/24', 'protect'), ('2001:db8::1', 'own')])
    lines, findings = protection.admit(['198.51.100.0/25', '203.0.113.0/24'], 4)
    # The part of the /24 the entries already hold is not added twice.
    assert lines == ['198.51.100.0/25', '203.0.113.0/24', '192.0.2.9', '198.51.100.128/25']
    assert [f['entry'] for f in findings] == ['192.0.2.9', '198.51.100.128/25']
    assert findings[0]['covers'] == ['192.0.2.9 (SSH client)']
    assert protection.admit([], 6)[0] == ['2001:db8::1']
    assert Protection([]).admit(['203.0.113.0/24'], 4) == (['203.0.113.0/24'], [])
    # A gateway alone is not admitted (behind SNAT every source looks like it); one that is also protect is.
    gateway = Protection([('192.0.2.1', 'default gateway'), ('192.0.2.9', 'SSH client'), ('192.0.2.254', 'protect'),
                          ('192.0.2.254', 'default gateway')])
    assert gateway.admit([], 4)[0] == ['192.0.2.9', '192.0.2.254']


@pytest.mark.parametrize('environ, expected', [
    ({'SSH_CONNECTION': '192.0.2.9 50000 192.0.2.1 22'}, [('192.0.2.9', 22)]),
    ({'SSH_CLIENT': '2001:db8::9 50000 2222'}, [('2001:db8::9', 2222)]),
    ({'SSH_CONNECTION': '192.0.2.9 50000 192.0.2.1 port'}, [('192.0.2.9', None)]),
    ({'SSH_CONNECTION': '192.0.2.9'}, [('192.0.2.9', None)]),
    ({}, []),
])
def test_the_managing_connection_and_the_port_it_came_in_on(environ, expected):
    assert ssh_connections(environ) == expected


class Adapter(object):
    version = 4


def admit_params(ports=(22,)):
    return {'name': 'admit4', 'admit': True, 'state': 'present', 'rules': [{'chain': 'input', 'ports': list(ports)}]}


def test_an_admit_only_set_that_would_cut_the_ssh_session_is_refused(monkeypatch):
    monkeypatch.setenv('SSH_CONNECTION', '192.0.2.9 50000 192.0.2.1 22')
    monkeypatch.delenv('SSH_CLIENT', raising=False)
    outside = Entries('x', ['203.0.113.0/24'])
    with pytest.raises(SyncError, match='would not hold 192.0.2.9, the client of the SSH session'):
        module_support.refuse_admit_lockout(admit_params(), Adapter(), outside, Protection([]))
    # Held by the entries, by lockout protection, or on a port the rules leave open: it passes.
    module_support.refuse_admit_lockout(admit_params(), Adapter(), Entries('y', ['192.0.2.0/24']), Protection([]))
    module_support.refuse_admit_lockout(admit_params(), Adapter(), outside, Protection([('192.0.2.9', 'SSH client')]))
    module_support.refuse_admit_lockout(admit_params(ports=[8443]), Adapter(), outside, Protection([]))


@pytest.mark.parametrize('rules', [None, [], [{'chain': 'input'}], [{'chain': 'output', 'ports': [22]}]])
def test_an_admit_only_set_needs_rules_on_input_with_ports(rules):
    params = dict(admit_params(), rules=rules)
    with pytest.raises(SyncError, match='needs rules, each on the input chain with ports'):
        module_support.check_admit_rules(params)
    module_support.check_admit_rules(admit_params())


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root for a network namespace')
def test_the_kernel_set_holds_the_protected_addresses_and_the_rule_refuses_the_rest(netns, tmp_path):
    adapter = NftAdapter(netns, 'nft', 'fleetwall', 'admit4', interval=True)
    adapter.admit = True
    store = StateStore(str(tmp_path / 'state'), 'nft', 'admit4')
    policy = SyncPolicy(protection=Protection([('192.0.2.9', 'SSH client')])).admitting()
    result = sync_set(adapter, store, Entries.read(entries=['198.51.100.0/24']), policy)
    assert result['changed'] and [f['entry'] for f in result['admitted']] == ['192.0.2.9']
    assert adapter.read_entries() == {'198.51.100.0/24', '192.0.2.9'}
    # The same entries under the same protection: nothing to do.
    again = sync_set(adapter, store, Entries.read(entries=['198.51.100.0/24']), policy)
    assert not again['changed']
    manager = RuleManager(adapter, str(tmp_path / 'state'))
    assert manager.ensure([{'chain': 'input', 'ports': [22]}]) == ['admit4_input: 1 rule(s)']
    _rc, out, _err = netns(['nft', 'list', 'chain', 'inet', 'fleetwall', 'admit4_input'])
    assert 'ip saddr != @admit4 tcp dport 22 counter name "admit4_drops" drop' in out


def test_an_admit_only_set_under_other_protection_asks_for_its_source_again(tmp_path):
    """What the host recorded holds what protection added (the SSH client of the run before): under other protection
    it is not the source, and a set judged by it would keep admitting that client, or pass the lockout check."""
    store = StateStore(str(tmp_path), 'nft', 'admit4')
    store.save({'source_sha256': 'abc', 'protection': Protection([('192.0.2.9', 'SSH client')]).digest, 'count': 2},
               entries=['198.51.100.0/24', '192.0.2.9'])
    params = {'entries_zlib': None, 'entries_sha256': 'abc', 'entries_file': None, 'entries': None, 'src': None,
              'state': 'present', 'admit': True}
    same = Protection([('192.0.2.9', 'SSH client')])
    assert module_support.desired_entries(None, params, store, protection=same).lines == ['198.51.100.0/24', '192.0.2.9']
    assert module_support.desired_entries(None, params, store, protection=Protection([])) is None
    # A blocklist's record stands for its source under any protection, as before.
    assert module_support.desired_entries(None, dict(params, admit=False), store, protection=Protection([])) is not None


def test_other_sets_are_removed_only_once_every_named_set_is_in_place(tmp_path):
    """A scope the copy no longer has goes; never beside a named set that failed, was refused or waits for its
    entries (its replacement did not go in), nor a set the call names, nor one without the prefix."""
    for name in ('fw_scope_admit_tcp_22_v4', 'fw_scope_admit_tcp_2222_v4', 'fw_v4_hosts', 'other_scope_x'):
        StateStore(str(tmp_path), 'nft', name).save({'source_sha256': 'a', 'count': 1}, entries=['192.0.2.1'])
    params = {'remove_other_sets': 'fw_scope_', 'state_dir': str(tmp_path),
              'sets': [{'name': 'fw_v4_hosts', 'persist_file': '/var/lib/fleetwall/nft/fw_v4_hosts.nft'},
                       {'name': 'fw_scope_admit_tcp_2222_v4'}]}
    done = [{'name': 'fw_v4_hosts', 'backend': 'nft'}, {'name': 'fw_scope_admit_tcp_2222_v4', 'backend': 'nft'}]
    assert module_support.other_sets_to_remove(params, done) == [
        {'name': 'fw_scope_admit_tcp_22_v4', 'state': 'absent',
         'persist_file': '/var/lib/fleetwall/nft/fw_scope_admit_tcp_22_v4.nft'}]
    for outcome in ({'failed': True}, {'refused': 'too large a change'}, {'upload_required': True}):
        assert module_support.other_sets_to_remove(params, [done[0], dict(done[1], **outcome)]) == []
    assert module_support.other_sets_to_remove(dict(params, remove_other_sets=None), done) == []
