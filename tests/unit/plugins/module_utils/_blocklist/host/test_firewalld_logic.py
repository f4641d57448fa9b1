# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The firewalld adapter against a fake firewall-cmd: the order of its changes, what it makes of firewall-cmd's
answers (its warnings on an exit status of 0 included), and what it says when firewalld fails or does not answer.
No root, no firewalld: test_faults_firewalld.py runs the module against a real one."""

from __future__ import annotations

import json

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import backend_firewalld
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_firewalld import (
    FirewalldAdapter, FirewalldRules,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import write_atomic
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import LiveInfo, SyncError
from ansible_collections.fleetwall.blocklist.tests.unit.plugins.module_utils._blocklist.host.fake_runner import (
    FakeRunner, fail, ok,
)

FW = 'firewall-cmd'
NAME = 'fleetwall_v4'
PERMANENT = [FW, '--permanent', '--ipset=' + NAME]
RUNTIME = [FW, '--ipset=' + NAME]
NO_REPLY = ('Error: Did not receive a reply. Possible causes include: the remote application did not send a reply, '
            'the message bus security policy blocked the reply, the reply timeout expired, or the network connection '
            'was broken.\n')
ZONES = 'drop\n  target: DROP\n  sources: \n  services: \npublic (active)\n  target: default\n  services: ssh\n'


@pytest.fixture
def fake():
    runner = FakeRunner()
    yield runner
    runner.check()


def adapter(fake, tmp_path, **kwargs):
    made = FirewalldAdapter(fake, FW, NAME, config_dir=str(tmp_path / 'etc'), **kwargs)
    made.scratch = (str(tmp_path), 'batch-')
    return made


def ipset_xml(tmp_path, set_type='hash:net', family='inet'):
    path = tmp_path / 'etc' / 'ipsets' / (NAME + '.xml')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n<ipset type="%s">\n  <option name="family" value="%s"/>\n'
                    '</ipset>\n' % (set_type, family))


def change_order(fake):
    """(scope, verb, entries) of each change, in the order firewall-cmd was asked for them."""
    order = []
    for call in fake.calls:
        if '--get-entries' in call.args:
            continue            # a listing, not a change
        if call.args[:3] == PERMANENT:
            verb = call.args[3][2:].split('-')[0]
            order.append(('permanent', verb, call.batch.split()))
        elif call.args[:2] == RUNTIME:
            verbs = {arg[2:].split('-')[0] for arg in call.args[2:]}
            assert len(verbs) == 1, call
            order.append(('runtime', verbs.pop(), [arg.split('=', 1)[1] for arg in call.args[2:]]))
    return order


# -- is firewalld there -----------------------------------------------------------------------------------------------

def test_running_fails_with_firewall_cmds_own_words(fake, tmp_path):
    fake.on([FW, '--state'], fail('not running\n', rc=252))
    with pytest.raises(SyncError) as failed:
        adapter(fake, tmp_path).running()
    assert 'firewalld is not running' in str(failed.value) and 'firewall-cmd --state: not running' in str(failed.value)


def test_running_reports_why_firewall_cmd_could_not_ask(fake, tmp_path):
    said = ('ERROR:dbus.proxies:Introspect error: org.freedesktop.DBus.Error.FileNotFound: Failed to connect to socket '
            '/run/dbus/system_bus_socket: No such file or directory\n')
    fake.on([FW, '--state'], fail(said))
    with pytest.raises(SyncError, match='Failed to connect to socket /run/dbus/system_bus_socket'):
        adapter(fake, tmp_path).running()


def test_running_passes_when_firewalld_says_so(fake, tmp_path):
    fake.on([FW, '--state'], ok('running\n'))
    assert adapter(fake, tmp_path).running() is None


def test_no_reply_within_the_dbus_timeout_says_so_and_what_to_do(fake, tmp_path):
    fake.on([FW, '--permanent', '--get-ipsets'], fail(NO_REPLY))
    with pytest.raises(SyncError) as failed:
        adapter(fake, tmp_path).probe()
    message = str(failed.value)
    assert message.startswith(backend_firewalld.TIMEOUT_PREFIX)
    assert 'D-Bus timeout' in message and 'may still be applying' in message and 'nftables' in message


def test_a_failure_keeps_firewall_cmds_words_and_its_status(fake, tmp_path):
    fake.on([FW, '--permanent', '--get-ipsets'], fail('Error: INVALID_ZONE: internal\n', rc=112))
    with pytest.raises(SyncError) as failed:
        adapter(fake, tmp_path).probe()
    assert 'INVALID_ZONE: internal' in str(failed.value) and 'rc 112' in str(failed.value)


# -- probe ------------------------------------------------------------------------------------------------------------

def test_the_ipset_exists_only_when_it_is_both_permanent_and_runtime(fake, tmp_path):
    ipset_xml(tmp_path)
    fake.on([FW, '--permanent', '--get-ipsets'], ok('other %s\n' % NAME))
    fake.on([FW, '--get-ipsets'], ok('other\n'))
    live = adapter(fake, tmp_path).probe()
    # A first creation killed before its reload: permanent, not yet runtime; the engine must create it again.
    assert live.exists is False and live.detail == {'permanent': True, 'runtime': False}
    assert live.fingerprint == {'type': 'hash:net', 'family': 'inet'}


def test_an_ipset_of_another_type_or_family_is_incompatible_and_named(fake, tmp_path):
    ipset_xml(tmp_path, set_type='hash:ip', family='inet6')
    fake.on([FW, '--permanent', '--get-ipsets'], ok(NAME + '\n'))
    fake.on([FW, '--get-ipsets'], ok(NAME + '\n'))
    made = adapter(fake, tmp_path)
    problem = made.incompatible(made.probe())
    assert NAME in problem and 'hash:ip family inet6' in problem and 'left as it is' in problem


def test_after_a_comparison_that_changed_nothing_the_permanent_ipset_is_made_the_runtime_one(fake, tmp_path):
    """A run killed between the permanent and the runtime part, or a hand edit, leaves them apart; a reload would
    make the permanent one live, so the probe that ends the engine's run puts it right."""
    fake.on(RUNTIME + ['--get-entries'], ok('192.0.2.1\n192.0.2.2\n'))
    fake.on(PERMANENT + ['--get-entries'], ok('192.0.2.1\n198.51.100.9\n'))
    fake.on(PERMANENT, ok())
    fake.on([FW, '--permanent', '--get-ipsets'], ok(NAME + '\n'))
    fake.on([FW, '--get-ipsets'], ok(NAME + '\n'))
    made = adapter(fake, tmp_path)
    assert made.read_entries() == {'192.0.2.1', '192.0.2.2'}
    made.probe()
    assert change_order(fake) == [('permanent', 'add', ['192.0.2.2']), ('permanent', 'remove', ['198.51.100.9'])]
    # Once: the next probe has nothing to reconcile.
    made.probe()
    assert len(change_order(fake)) == 2


# -- changes ----------------------------------------------------------------------------------------------------------

def test_a_change_goes_permanent_first_then_runtime_adding_before_removing(fake, tmp_path):
    fake.on(PERMANENT, ok())
    fake.on(RUNTIME, ok())
    # 203.0.113.5 lies inside the new 203.0.113.0/24: firewalld refuses overlapping entries, so it goes just before.
    adapter(fake, tmp_path).apply_incremental({'203.0.113.0/24', '198.51.100.9'}, {'203.0.113.5', '192.0.2.1'})
    assert change_order(fake) == [
        ('permanent', 'remove', ['203.0.113.5']),
        ('permanent', 'add', ['198.51.100.9', '203.0.113.0/24']),
        ('permanent', 'remove', ['192.0.2.1']),
        ('runtime', 'remove', ['203.0.113.5']),
        ('runtime', 'add', ['198.51.100.9', '203.0.113.0/24']),
        ('runtime', 'remove', ['192.0.2.1']),
    ]


def test_runtime_entries_go_in_batches(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(backend_firewalld, 'RUNTIME_BATCH', 2)
    fake.on(PERMANENT, ok())
    fake.on(RUNTIME, ok())
    added = ['192.0.2.%d' % i for i in range(1, 6)]
    adapter(fake, tmp_path).apply_incremental(set(added), set())
    runtime = [entries for scope, _verb, entries in change_order(fake) if scope == 'runtime']
    assert [len(batch) for batch in runtime] == [2, 2, 1] and sorted(sum(runtime, [])) == sorted(added)


@pytest.mark.parametrize('warning', ['Warning: ALREADY_ENABLED: 192.0.2.1', 'Warning: NOT_ENABLED: 192.0.2.1'])
def test_an_entry_already_there_or_already_gone_is_as_wanted(fake, tmp_path, warning):
    # A run killed half way repeats its change: firewall-cmd then warns, exit status 0, and the change is done.
    fake.on(PERMANENT, ok())
    fake.on(RUNTIME, (0, 'success\n', warning + '\n'))
    adapter(fake, tmp_path).apply_incremental({'192.0.2.1'}, {'198.51.100.1'})
    assert len(fake.commands(RUNTIME)) == 2


def test_a_partial_failure_reported_only_by_warnings_is_a_failure(fake, tmp_path):
    # firewall-cmd goes past an entry it refuses and exits 0 when another succeeded.
    fake.on(PERMANENT, ok())
    fake.on(RUNTIME, (0, 'success\n', 'Warning: ALREADY_ENABLED: 192.0.2.1\n'
                                      "Warning: INVALID_ENTRY: invalid address '192.0.2.300'\n"))
    with pytest.raises(SyncError) as failed:
        adapter(fake, tmp_path).apply_incremental({'192.0.2.1', '192.0.2.2'}, set())
    message = str(failed.value)
    assert NAME in message and '1 of them' in message and "INVALID_ENTRY: invalid address '192.0.2.300'" in message
    assert 'ALREADY_ENABLED' not in message


def test_a_failed_permanent_change_stops_before_the_runtime_ipset_is_touched(fake, tmp_path):
    fake.on(PERMANENT, fail('Error: INVALID_ENTRY: 192.0.2.300\n', rc=136))
    with pytest.raises(SyncError, match='INVALID_ENTRY: 192.0.2.300'):
        adapter(fake, tmp_path).apply_incremental({'192.0.2.1'}, set())
    assert fake.commands(RUNTIME) == []


def test_a_new_ipset_is_made_permanent_filled_then_loaded_by_one_reload(fake, tmp_path):
    fake.on([FW, '--permanent', '--new-ipset=' + NAME], ok())
    fake.on(PERMANENT, ok())
    fake.on([FW, '--list-all-zones'], ok(ZONES))
    fake.on([FW, '--permanent', '--list-all-zones'], ok(ZONES))
    fake.on([FW, '--reload'], ok())
    made = adapter(fake, tmp_path)
    assert made.apply_full(['192.0.2.1', '192.0.2.2'], LiveInfo(False, detail={'permanent': False})) is True
    new, fill, reload_ = fake.calls[0], fake.calls[1], fake.calls[-1]
    assert new.args[:4] == [FW, '--permanent', '--new-ipset=' + NAME, '--type=hash:net']
    assert '--option=family=inet' in new.args and '--option=maxelem=65536' in new.args
    assert fill.batch.split() == ['192.0.2.1', '192.0.2.2'] and reload_.args == [FW, '--reload']
    # Nothing was dropped by the reload, so nothing to warn of; and no runtime entry is added one by one.
    assert made.warnings == [] and fake.commands(RUNTIME) == []


def test_a_reload_that_drops_runtime_settings_is_warned_of(fake, tmp_path):
    fake.on([FW, '--permanent', '--new-ipset=' + NAME], ok())
    fake.on(PERMANENT, ok())
    fake.on([FW, '--list-all-zones'], ok(ZONES.replace('services: ssh', 'services: http ssh')
                                         .replace('target: default', 'target: default\n  interfaces: eth0')))
    fake.on([FW, '--permanent', '--list-all-zones'], ok(ZONES))
    fake.on([FW, '--reload'], ok())
    made = adapter(fake, tmp_path)
    made.apply_full(['192.0.2.1'], LiveInfo(False))
    (warning,) = made.warnings
    # Interfaces come from NetworkManager, not from the reload: not reported.
    assert 'public services: http' in warning and 'runtime-to-permanent' in warning and 'eth0' not in warning


def test_a_failed_first_reload_takes_the_new_ipset_away_again(fake, tmp_path):
    fake.on([FW, '--permanent', '--new-ipset=' + NAME], ok())
    fake.on(PERMANENT, ok())
    fake.on([FW, '--list-all-zones'], ok(ZONES))
    fake.on([FW, '--permanent', '--list-all-zones'], ok(ZONES))
    fake.on([FW, '--reload'], fail('Error: COMMAND_FAILED: nft: Error: Could not process rule\n', rc=1))
    fake.on([FW, '--permanent', '--delete-ipset=' + NAME], ok())
    with pytest.raises(SyncError, match='COMMAND_FAILED: nft: Error: Could not process rule'):
        adapter(fake, tmp_path).apply_full(['192.0.2.1'], LiveInfo(False))
    assert fake.commands()[-1] == [FW, '--permanent', '--delete-ipset=' + NAME]


def test_a_first_reload_that_timed_out_is_left_to_finish(fake, tmp_path):
    # firewalld may still be reloading: removing the ipset now would queue a second reload behind the first.
    fake.on([FW, '--permanent', '--new-ipset=' + NAME], ok())
    fake.on(PERMANENT, ok())
    fake.on([FW, '--list-all-zones'], ok(ZONES))
    fake.on([FW, '--permanent', '--list-all-zones'], ok(ZONES))
    fake.on([FW, '--reload'], fail(NO_REPLY))
    with pytest.raises(SyncError) as failed:
        adapter(fake, tmp_path).apply_full(['192.0.2.1'], LiveInfo(False))
    assert str(failed.value).startswith(backend_firewalld.TIMEOUT_PREFIX) and '--reload' in str(failed.value)
    assert fake.commands([FW, '--permanent', '--delete-ipset=' + NAME]) == []


def test_a_permanent_ipset_left_by_a_killed_creation_is_emptied_of_what_is_not_wanted(fake, tmp_path):
    fake.on(PERMANENT + ['--get-entries'], ok('192.0.2.1\n203.0.113.66\n'))
    fake.on(PERMANENT, ok())
    fake.on([FW, '--list-all-zones'], ok(ZONES))
    fake.on([FW, '--permanent', '--list-all-zones'], ok(ZONES))
    fake.on([FW, '--reload'], ok())
    adapter(fake, tmp_path).apply_full(['192.0.2.1', '192.0.2.2'], LiveInfo(False, detail={'permanent': True}))
    assert fake.commands([FW, '--permanent', '--new-ipset=' + NAME]) == []
    changes = [(verb, entries) for scope, verb, entries in change_order(fake) if scope == 'permanent']
    assert ('remove', ['203.0.113.66']) in changes and changes[0][0] == 'add'


# -- the rest of the interface ----------------------------------------------------------------------------------------

def test_the_kernel_generation_is_the_nft_tables_handle_or_the_kernel_ipsets_count(fake, tmp_path):
    tables = {'nftables': [{'metainfo': {}}, {'table': {'family': 'inet', 'name': 'firewalld', 'handle': 42}}]}
    fake.on(['nft', '-j', 'list', 'tables', 'inet'], ok(json.dumps(tables)))
    assert adapter(fake, tmp_path, nft='nft').kernel_generation() == 'nft table handle 42'
    # Output nft cannot be read from, under FirewallBackend=iptables: the kernel ipset's count instead.
    fake.on(['nft', '-j', 'list', 'tables', 'inet'], ok('not json'))
    fake.on(['ipset', 'list', '-terse', NAME], ok('Name: %s\nType: hash:net\nNumber of entries: 17\n' % NAME))
    assert adapter(fake, tmp_path, nft='nft', ipset='ipset').kernel_generation() == 'ipset entries 17'
    fake.on(['ipset', 'list', '-terse', NAME], fail('ipset v7.17: The set with the given name does not exist\n'))
    assert adapter(fake, tmp_path, nft='nft', ipset='ipset').kernel_generation() is None


def test_destroy_removes_a_permanent_ipset_with_one_reload_and_leaves_a_missing_one(fake, tmp_path):
    fake.on([FW, '--permanent', '--get-ipsets'], ok('\n'))
    fake.on([FW, '--get-ipsets'], ok('\n'))
    assert adapter(fake, tmp_path).destroy() is False
    assert fake.commands([FW, '--permanent', '--delete-ipset=' + NAME]) == []
    fake.on([FW, '--permanent', '--get-ipsets'], ok(NAME + '\n'))
    fake.on([FW, '--get-ipsets'], ok(NAME + '\n'))
    fake.on([FW, '--permanent', '--delete-ipset=' + NAME], ok())
    fake.on([FW, '--reload'], ok())
    assert adapter(fake, tmp_path).destroy() is True
    assert fake.commands()[-2:] == [[FW, '--permanent', '--delete-ipset=' + NAME], [FW, '--reload']]


def test_save_to_refuses_since_firewalld_keeps_the_set_itself(fake, tmp_path):
    with pytest.raises(SyncError, match='persist_file is not used'):
        adapter(fake, tmp_path).save_to(str(tmp_path / 'x.save'), write_atomic)
    assert fake.calls == []


def test_switching_the_rule_never_leaves_the_ipset_unenforced(fake, tmp_path):
    # Bound now: the ipset as a source of the drop zone, runtime and permanent.
    bound = {(False, 'source', 'drop', 'ipset:' + NAME), (True, 'source', 'drop', 'ipset:' + NAME)}
    enforced = []

    def firewall_cmd(call):
        """--query-, --add- and --remove- of a zone's source or rich rule, over ``bound``."""
        zone = next((a.split('=', 1)[1] for a in call.args if a.startswith('--zone=')), None)
        verb, _sep, setting = call.args[-1][2:].partition('-')
        kind, _sep, value = setting.partition('=')
        key = ('--permanent' in call.args, kind, zone, value)
        if verb == 'query':
            return ok('yes\n') if key in bound else fail('no\n')
        (bound.add if verb == 'add' else bound.discard)(key)
        enforced.append(any(not permanent for permanent, _kind, _zone, _value in bound))
        return ok('success\n')
    fake.on([FW], firewall_cmd)
    changes = FirewalldRules(adapter(fake, tmp_path)).ensure([{'mode': 'rich_rule', 'target': 'drop', 'zone': 'public'}])
    rich = 'rule family="ipv4" source ipset="%s" drop' % NAME
    assert bound == {(False, 'rich-rule', 'public', rich), (True, 'rich-rule', 'public', rich)}
    assert [change.split()[0] for change in changes] == ['add', 'add', 'remove', 'remove']
    # After every single change some runtime binding enforces the ipset.
    assert len(enforced) == 4 and all(enforced)
    # And asked again, nothing is left to change.
    assert FirewalldRules(adapter(fake, tmp_path)).ensure([{'mode': 'rich_rule', 'target': 'drop', 'zone': 'public'}]) == []
