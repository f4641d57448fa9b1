# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The nftables adapter and its rule manager against a fake runner: the transactions they write, what they make of
nft's listings, and what they say when nft refuses.  No root, no kernel: test_backend_nft.py shows the same adapter
against the real kernel."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import backend_nft
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nft import NftAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import write_atomic
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.nft_rules import RuleManager
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import LiveInfo, StateStore, SyncError
from ansible_collections.fleetwall.blocklist.tests.unit.plugins.module_utils._blocklist.host.fake_runner import (
    FakeRunner, fail, ok,
)

LIST_RULESET = ['nft', '-t', '-j', 'list', 'ruleset', 'inet']
LIST_SET = ['nft', '-j', 'list', 'set', 'inet', 'fleetwall', 'bl4']
LABEL = 'nft set inet fleetwall bl4'


@pytest.fixture
def fake():
    runner = FakeRunner()
    yield runner
    runner.check()


def ruleset(*items):
    """``nft -t -j list ruleset inet`` as nft 1.0 prints it."""
    return ok(json.dumps({'nftables': [{'metainfo': {'version': '1.0.6', 'json_schema_version': 1}}] + list(items)}))


def table(name='fleetwall', handle=1):
    return {'table': {'family': 'inet', 'name': name, 'handle': handle}}


def nft_set(name='bl4', handle=2, flags=('interval',), elem_type='ipv4_addr', table_name='fleetwall', **more):
    body = {'family': 'inet', 'name': name, 'table': table_name, 'type': elem_type, 'handle': handle}
    if flags is not None:
        body['flags'] = flags if isinstance(flags, str) else list(flags)
    body.update(more)
    return {'set': body}


def chain(name, handle):
    return {'chain': {'family': 'inet', 'table': 'fleetwall', 'name': name, 'handle': handle, 'type': 'filter',
                      'hook': name.rsplit('_', 1)[1], 'prio': -10, 'policy': 'accept'}}


def adapter(fake, tmp_path, **kwargs):
    made = NftAdapter(fake, 'nft', 'fleetwall', 'bl4', **kwargs)
    made.scratch = (str(tmp_path), 'batch-')
    return made


def elements(batch, verb):
    """The elements of the ``verb element`` statements of a batch, in order."""
    found = []
    for line in batch.splitlines():
        if line.startswith('%s element ' % verb):
            found.extend(e.strip() for e in line[line.index('{') + 1:line.rindex('}')].split(','))
    return found


# -- the listing and the probe ----------------------------------------------------------------------------------------

def test_probe_finds_the_set_by_table_and_name_with_its_handle_type_and_flags(fake, tmp_path):
    fake.on(LIST_RULESET, ruleset(table(), table('other', 9), nft_set(table_name='other', handle=10, flags=()),
                                  nft_set(handle=4, flags=['interval', 'timeout'], timeout=3600)))
    made = adapter(fake, tmp_path)
    live = made.probe()
    assert live.exists and live.count is None
    assert live.fingerprint == {'type': 'ipv4_addr', 'interval': True, 'timeout': 3600, 'has_timeout_flag': True}
    # The handle is the set's identity: a set deleted and made again by hand is not the one the record vouches for.
    assert made.identity(live) == 4


def test_a_single_flag_printed_as_a_string_is_read_as_one(fake, tmp_path):
    # nft's JSON gives one flag as a plain string, several as a list.
    fake.on(LIST_RULESET, ruleset(table(), nft_set(flags='interval')))
    assert adapter(fake, tmp_path).probe().fingerprint['interval'] is True


def test_a_set_of_that_name_in_another_table_is_not_ours(fake, tmp_path):
    fake.on(LIST_RULESET, ruleset(table('other'), nft_set(table_name='other')))
    assert adapter(fake, tmp_path).probe().exists is False


def test_a_failed_listing_keeps_nfts_words(fake, tmp_path):
    fake.on(LIST_RULESET, fail('Error: Could not process rule: Operation not permitted\n'))
    with pytest.raises(SyncError, match='cannot list the nft ruleset: Error: Could not process rule: Operation not'):
        adapter(fake, tmp_path).probe()


def test_a_listing_that_is_not_json_is_an_error_not_an_empty_ruleset(fake, tmp_path):
    # Read as empty, it would make the engine create the set over the one that is there.
    fake.on(LIST_RULESET, ok('table inet fleetwall {\n'))
    with pytest.raises(SyncError, match='unexpected output from nft -t -j list ruleset'):
        adapter(fake, tmp_path).probe()


def test_a_kept_listing_serves_until_anything_else_runs(fake, tmp_path):
    fake.on(LIST_RULESET, ruleset(table(), nft_set()))
    fake.on(['nft', '-f'], ok())
    made = adapter(fake, tmp_path, keep_listing=True)
    made.probe()
    made.probe()
    assert len(fake.commands(LIST_RULESET)) == 1
    made.apply_incremental(['192.0.2.9'], [])
    made.probe()
    assert len(fake.commands(LIST_RULESET)) == 2
    # Without keep_listing every look lists again: another sync's change is never hidden.
    plain = adapter(fake, tmp_path)
    plain.probe()
    plain.probe()
    assert len(fake.commands(LIST_RULESET)) == 4


def test_an_incompatible_set_is_named_with_what_it_is_and_what_was_asked(fake, tmp_path):
    fake.on(LIST_RULESET, ruleset(table(), nft_set(flags=None)))
    made = adapter(fake, tmp_path)
    problem = made.incompatible(made.probe())
    assert 'inet fleetwall bl4' in problem and 'ipv4_addr interval' in problem
    timed = adapter(fake, tmp_path, interval=False, timeout=600)
    assert 'without timeouts' in timed.incompatible(timed.probe())


# -- loads and updates ------------------------------------------------------------------------------------------------

def test_a_full_load_is_one_transaction_that_creates_flushes_and_fills(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(backend_nft, 'CHUNK', 2)
    fake.on(['nft', '-f'], ok())
    entries = ['192.0.2.1', '192.0.2.2', '198.51.100.0/24']
    assert adapter(fake, tmp_path, timeout=600).apply_full(entries, LiveInfo(True)) is True
    (batch,) = fake.batches()
    lines = batch.splitlines()
    assert lines[0] == 'add table inet fleetwall'
    assert lines[1].startswith('add set inet fleetwall bl4 { type ipv4_addr; flags interval,timeout; timeout 600s;')
    assert lines[2] == 'flush set inet fleetwall bl4'
    # Chunked statements, every entry once, all in the one file (one transaction).
    assert len(lines) == 5 and elements(batch, 'add') == entries
    assert os.listdir(str(tmp_path)) == []


def test_an_existing_set_is_validated_before_anything_is_sent(fake, tmp_path):
    made = adapter(fake, tmp_path)
    assert made.apply_full(['192.0.2.1/32'], LiveInfo(True), validate=lambda: False) is False
    assert fake.calls == []


def test_a_new_plain_set_is_filled_in_parts_the_first_with_its_table_and_set(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(backend_nft, 'LOAD_CHUNK', 2)
    fake.on(['nft', '-f'], ok())
    entries = ['192.0.2.%d' % i for i in range(1, 6)]
    made = adapter(fake, tmp_path, interval=False)
    assert made.apply_full(entries, LiveInfo(False), validate=lambda: True) is True
    batches = fake.batches()
    assert len(batches) == 3
    assert batches[0].startswith('add table inet fleetwall\nadd set inet fleetwall bl4 { type ipv4_addr; comment')
    assert not any('add set' in batch or 'flush' in batch for batch in batches[1:])
    assert [e for batch in batches for e in elements(batch, 'add')] == entries


def test_a_new_set_that_fails_validation_is_deleted_again(fake, tmp_path):
    fake.on(['nft', '-f'], ok())
    fake.on(['nft', 'delete', 'set'], ok())
    assert adapter(fake, tmp_path).apply_full(['192.0.2.1/32'], LiveInfo(False), validate=lambda: False) is False
    assert fake.commands()[-1] == ['nft', 'delete', 'set', 'inet', 'fleetwall', 'bl4']


def test_a_new_set_whose_load_failed_is_deleted_and_the_failure_named(fake, tmp_path):
    fake.on(['nft', '-f'], fail('/tmp/batch:4:1-40: Error: Could not process rule: No such file or directory\n'))
    fake.on(['nft', 'delete', 'set'], ok())
    with pytest.raises(SyncError) as failed:
        adapter(fake, tmp_path).apply_full(['192.0.2.1'], LiveInfo(False), validate=lambda: True)
    message = str(failed.value)
    assert LABEL in message and 'Could not process rule: No such file or directory' in message
    assert fake.commands()[-1] == ['nft', 'delete', 'set', 'inet', 'fleetwall', 'bl4']
    assert os.listdir(str(tmp_path)) == []


def test_an_update_deletes_and_adds_in_one_transaction(fake, tmp_path):
    fake.on(['nft', '-f'], ok())
    adapter(fake, tmp_path).apply_incremental(['203.0.113.5'], ['192.0.2.1', '192.0.2.2'])
    (batch,) = fake.batches()
    assert batch.splitlines()[0].startswith('delete element inet fleetwall bl4 {')
    assert batch.splitlines()[-1] == 'add element inet fleetwall bl4 { 203.0.113.5 }'
    assert sorted(elements(batch, 'delete')) == ['192.0.2.1', '192.0.2.2']


def test_a_refused_transaction_names_the_set_and_says_it_is_unchanged(fake, tmp_path):
    fake.on(['nft', '-f'], fail('/tmp/batch:1:40-50: Error: Could not process rule: Set does not exist\n'))
    with pytest.raises(SyncError) as failed:
        adapter(fake, tmp_path, interval=False).apply_incremental(['203.0.113.5'], [])
    message = str(failed.value)
    assert message.startswith('update of %s failed' % LABEL) and 'unchanged' in message
    assert 'Set does not exist' in message and 'net.core.rmem_max' not in message


@pytest.mark.parametrize('said', ['netlink: Error: Could not process rule: Message too long',
                                  'netlink: Error: Could not receive a message from the kernel: No buffer space available'])
def test_a_transaction_larger_than_the_socket_buffer_says_how_to_raise_it(fake, tmp_path, said):
    fake.on(['nft', '-f'], fail(said + '\n'))
    with pytest.raises(SyncError) as failed:
        adapter(fake, tmp_path).apply_full(['192.0.2.1'], LiveInfo(True))
    message = str(failed.value)
    assert said in message and 'net.core.rmem_max' in message and LABEL in message


def test_an_overlap_in_an_interval_set_is_named_by_its_pair(fake, tmp_path):
    fake.on(['nft', '-f'], fail('Error: Could not process rule: File exists\ninterval overlaps with an existing one\n'))
    fake.on(LIST_SET, ok(json.dumps({'nftables': [nft_set(elem=[{'prefix': {'addr': '198.51.100.0', 'len': 24}}])]})))
    with pytest.raises(SyncError) as failed:
        adapter(fake, tmp_path).apply_incremental(['198.51.100.128/25'], [])
    message = str(failed.value)
    assert '198.51.100.0/24 and 198.51.100.128/25' in message and 'nothing was applied' in message


def test_an_overlap_error_of_a_plain_set_is_passed_on_as_nft_said_it(fake, tmp_path):
    fake.on(['nft', '-f'], fail('Error: conflicting intervals specified\n'))
    with pytest.raises(SyncError, match='conflicting intervals specified'):
        adapter(fake, tmp_path, interval=False).apply_incremental(['198.51.100.1'], [])
    assert fake.commands(LIST_SET) == []       # a plain set holds no intervals: nothing to look up


# -- the full listing -------------------------------------------------------------------------------------------------

def test_read_entries_reads_strings_prefixes_ranges_and_elements_with_timeouts(fake, tmp_path):
    fake.on(LIST_SET, ok(json.dumps({'nftables': [{'metainfo': {}}, nft_set(elem=[
        '192.0.2.7',
        {'prefix': {'addr': '198.51.100.0', 'len': 24}},
        {'range': ['203.0.113.0', '203.0.113.127']},
        {'elem': {'val': '192.0.2.9', 'timeout': 600, 'expires': 540}},
    ])]})))
    assert adapter(fake, tmp_path).read_entries() == {'192.0.2.7', '198.51.100.0/24', '203.0.113.0/25', '192.0.2.9'}


def test_an_element_it_cannot_read_is_an_error_naming_the_set(fake, tmp_path):
    fake.on(LIST_SET, ok(json.dumps({'nftables': [nft_set(elem=['192.0.2.7', 'fleetwall.example'])]})))
    with pytest.raises(SyncError, match="unexpected element in %s: 'fleetwall.example'" % LABEL):
        adapter(fake, tmp_path).read_entries()
    fake.on(LIST_SET, ok('{"nftables": [ truncated'))
    with pytest.raises(SyncError, match='unexpected output from nft -j list set'):
        adapter(fake, tmp_path).read_entries()


def test_an_element_object_of_a_shape_it_does_not_know_is_an_error_not_left_out(fake, tmp_path):
    # Left out, the element is invisible to verify: the engine never removes it, and never says so.
    fake.on(LIST_SET, ok(json.dumps({'nftables': [nft_set(elem=['192.0.2.7', {'set': ['198.51.100.1']}])]})))
    with pytest.raises(SyncError, match='unexpected element in %s' % LABEL):
        adapter(fake, tmp_path).read_entries()


def test_a_failed_full_listing_is_an_error_not_an_empty_set(fake, tmp_path):
    fake.on(LIST_SET, fail('Error: No such file or directory\nlist set inet fleetwall bl4\n'))
    with pytest.raises(SyncError, match='No such file or directory'):
        adapter(fake, tmp_path).read_entries()


# -- removal ----------------------------------------------------------------------------------------------------------

def test_destroy_deletes_the_set_and_the_table_it_leaves_empty(fake, tmp_path):
    fake.on(LIST_RULESET, ruleset(table(), nft_set()), ruleset(table()))
    fake.on(['nft', '-f'], ok())
    assert adapter(fake, tmp_path).destroy() is True
    assert fake.batches() == ['delete set inet fleetwall bl4\n', 'delete table inet fleetwall\n']


def test_destroy_keeps_a_table_that_holds_anything_else(fake, tmp_path):
    fake.on(LIST_RULESET, ruleset(table(), nft_set(), nft_set('bl6', 3, elem_type='ipv6_addr')),
            ruleset(table(), nft_set('bl6', 3, elem_type='ipv6_addr')))
    fake.on(['nft', '-f'], ok())
    assert adapter(fake, tmp_path).destroy() is True
    assert fake.batches() == ['delete set inet fleetwall bl4\n']


def test_destroy_of_nothing_changes_nothing(fake, tmp_path):
    fake.on(LIST_RULESET, ruleset())
    assert adapter(fake, tmp_path).destroy() is False
    assert fake.commands(['nft', '-f']) == []


# -- rules ------------------------------------------------------------------------------------------------------------

RULES = [{'chain': 'input'}, {'chain': 'forward', 'ports': [80, 443], 'target': 'reject'}]


def test_rules_go_in_as_one_transaction_then_stand_on_their_record(fake, tmp_path):
    fake.on(LIST_RULESET, ruleset(table(), nft_set()),
            ruleset(table(), nft_set(), chain('bl4_forward', 8), chain('bl4_input', 7)))
    fake.on(['nft', '-f'], ok())
    made = adapter(fake, tmp_path)
    manager = RuleManager(made, str(tmp_path / 'state'))
    os.makedirs(str(tmp_path / 'state'))
    assert manager.ensure(RULES) == ['bl4_forward: 2 rule(s)', 'bl4_input: 1 rule(s)']
    (batch,) = fake.batches()
    assert 'add counter inet fleetwall bl4_drops\n' in batch
    assert 'add chain inet fleetwall bl4_input { type filter hook input priority -10; policy accept; }\n' in batch
    assert 'add rule inet fleetwall bl4_input ip saddr @bl4 counter name "bl4_drops" drop\n' in batch
    # After DNAT the original port is the one the client asked for, one rule per port.
    assert ('add rule inet fleetwall bl4_forward ip saddr @bl4 meta l4proto tcp ct original proto-dst 443 counter '
            'name "bl4_drops" reject\n') in batch
    # Each chain is flushed before it is filled, in the same transaction: no duplicate rules, no gap.
    assert batch.index('flush chain inet fleetwall bl4_input') < batch.index('add rule inet fleetwall bl4_input')
    # The same rules over the same chains: nothing to do, and nothing run but the listing.
    again = RuleManager(made, str(tmp_path / 'state'))
    assert again.ensure(RULES) == [] and len(fake.batches()) == 1
    # A chain made again by hand (a new handle) is not vouched for.
    fake.on(LIST_RULESET, ruleset(table(), nft_set(), chain('bl4_forward', 8), chain('bl4_input', 12)))
    assert again.ensure(RULES) == ['bl4_forward: 2 rule(s)', 'bl4_input: 1 rule(s)'] and len(fake.batches()) == 2


def test_a_refused_rule_update_writes_no_record(fake, tmp_path):
    fake.on(LIST_RULESET, ruleset(table(), nft_set()))
    fake.on(['nft', '-f'], fail('Error: Could not process rule: No such file or directory\n'))
    os.makedirs(str(tmp_path / 'state'))
    manager = RuleManager(adapter(fake, tmp_path), str(tmp_path / 'state'))
    with pytest.raises(SyncError) as failed:
        manager.ensure(RULES)
    assert str(failed.value).startswith('rule update of %s failed' % LABEL)
    assert 'No such file or directory' in str(failed.value)
    assert not os.path.exists(manager.path)


def test_a_stale_chain_is_flushed_and_deleted(fake, tmp_path):
    fake.on(LIST_RULESET, ruleset(table(), nft_set(), chain('bl4_input', 7), chain('bl4_output', 9)))
    fake.on(['nft', '-f'], ok())
    os.makedirs(str(tmp_path / 'state'))
    changes = RuleManager(adapter(fake, tmp_path), str(tmp_path / 'state')).ensure([{'chain': 'input'}])
    assert 'bl4_output: removed' in changes
    assert 'flush chain inet fleetwall bl4_output\ndelete chain inet fleetwall bl4_output\n' in fake.batches()[0]


def test_check_mode_lists_the_rule_changes_and_runs_none(fake, tmp_path):
    fake.on(LIST_RULESET, ruleset(table(), nft_set()))
    changes = RuleManager(adapter(fake, tmp_path), str(tmp_path / 'state')).ensure(RULES, check_mode=True)
    assert changes == ['bl4_forward: 2 rule(s)', 'bl4_input: 1 rule(s)'] and fake.batches() == []


def test_save_to_writes_the_set_from_the_record_and_its_rules(fake, tmp_path):
    fake.on(LIST_RULESET, ruleset(table(), nft_set()), ruleset(table(), nft_set(), chain('bl4_input', 7)))
    fake.on(['nft', '-f'], ok())
    store = StateStore(str(tmp_path / 'state'), 'nft', 'bl4')
    store.save({'count': 2}, entries=['198.51.100.0/24', '192.0.2.7'])
    made = adapter(fake, tmp_path)
    made.rule_manager = RuleManager(made, str(tmp_path / 'state'))
    made.rule_manager.ensure([{'chain': 'input'}])
    listed = len(fake.calls)
    path = str(tmp_path / 'bl4.nft')
    made.save_to(path, write_atomic, store)
    script = open(path).read()
    assert script.startswith('add table inet fleetwall\nadd set inet fleetwall bl4 { type ipv4_addr; flags interval;')
    assert elements(script, 'add') == ['198.51.100.0/24', '192.0.2.7']
    assert 'add rule inet fleetwall bl4_input ip saddr @bl4 counter name "bl4_drops" drop\n' in script
    # From the record: the minute-long listing of a million elements is not run.
    assert len(fake.calls) == listed
