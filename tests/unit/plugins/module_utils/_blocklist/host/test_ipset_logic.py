# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The ipset adapter's logic against a fake runner: what it makes of ipset's answers, what it runs when a tool
fails, and that a failure names the set and keeps the tool's words.  No root, no kernel: test_backend_ipset.py
shows the same adapter against the real kernel."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import backend_ipset
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ipset import IpsetAdapter, size_for
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import write_atomic
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import (
    Entries, LiveInfo, StateStore, SyncError, sync_set,
)
from ansible_collections.fleetwall.blocklist.tests.unit.plugins.module_utils._blocklist.host.fake_runner import (
    FakeRunner, fail, ok,
)

NAME = 'bl4'
MISSING = 'ipset v7.17: The set with the given name does not exist\n'
BUSY = 'ipset v7.17: Set cannot be destroyed: it is in use by a kernel component\n'
EBUSY = 'ipset v7.17: Kernel error received: Device or resource busy\n'


@pytest.fixture
def fake():
    runner = FakeRunner()
    yield runner
    runner.check()


@pytest.fixture(autouse=True)
def no_busy_wait(monkeypatch):
    # The retries are counted here, not timed: a hundred waits of 0.1 s would be ten seconds of nothing.
    monkeypatch.setattr(backend_ipset, 'BUSY_WAIT', 0)


def terse(name=NAME, count=0, set_type='hash:net', family='inet', maxelem=65536, timeout=None, references=0):
    """What ``ipset list -terse`` prints (ipset 7.x), initval included as the kernel reports it."""
    header = 'family %s hashsize 1024 maxelem %d%s bucketsize 12 initval 0x5d2c8e11' % (
        family, maxelem, ' timeout %d' % timeout if timeout else '')
    return ('Name: %s\nType: %s\nRevision: 7\nHeader: %s\nSize in memory: 1264\nReferences: %d\n'
            'Number of entries: %d\n' % (name, set_type, header, references, count))


def adapter(fake, tmp_path, **kwargs):
    made = IpsetAdapter(fake, 'ipset', NAME, **kwargs)
    # Batch files in the test's directory, so that one left behind is seen.
    made.scratch = (str(tmp_path), 'batch-')
    return made


def leftover_batches(tmp_path):
    return [name for name in os.listdir(str(tmp_path)) if name.startswith('batch-')]


# -- probe ------------------------------------------------------------------------------------------------------------

def test_probe_reads_count_capacity_type_family_timeout_and_references(fake, tmp_path):
    fake.on(['ipset', 'list', '-terse', NAME], ok(terse(count=3, maxelem=131072, timeout=600, references=2)))
    live = adapter(fake, tmp_path).probe()
    assert (live.exists, live.count, live.capacity) == (True, 3, 131072)
    assert live.fingerprint == {'type': 'hash:net', 'family': 'inet', 'timeout': 600}
    assert live.detail == {'references': 2}


def test_probe_of_a_missing_set_says_it_does_not_exist(fake, tmp_path):
    fake.on(['ipset', 'list', '-terse', NAME], fail(MISSING))
    assert adapter(fake, tmp_path).probe().exists is False


def test_probe_failing_for_another_reason_names_the_set_and_keeps_the_tools_words(fake, tmp_path):
    # Not "does not exist": treating it as a missing set would make the engine create one over it.
    fake.on(['ipset', 'list', '-terse', NAME], fail('ipset v7.17: Kernel error received: Operation not permitted\n'))
    with pytest.raises(SyncError) as failed:
        adapter(fake, tmp_path).probe()
    assert NAME in str(failed.value) and 'Operation not permitted' in str(failed.value)


@pytest.mark.parametrize('garbled', [
    terse(count=3).replace('Number of entries: 3', 'Number of entries: three'),
    terse(count=3).replace('maxelem 65536', 'maxelem lots'),
])
def test_probe_of_output_it_cannot_read_is_an_error_not_a_guess(fake, tmp_path, garbled):
    fake.on(['ipset', 'list', '-terse', NAME], ok(garbled))
    with pytest.raises(SyncError, match='unexpected output from ipset list -terse bl4'):
        adapter(fake, tmp_path).probe()


def test_a_set_of_another_type_or_timeout_is_incompatible_and_named(fake, tmp_path):
    fake.on(['ipset', 'list', '-terse', NAME], ok(terse(set_type='hash:ip')))
    made = adapter(fake, tmp_path)
    problem = made.incompatible(made.probe())
    assert 'bl4' in problem and 'hash:ip' in problem and 'hash:net' in problem
    fake.on(['ipset', 'list', '-terse', NAME], ok(terse(timeout=600)))
    assert 'timeout' in made.incompatible(made.probe())
    fake.on(['ipset', 'list', '-terse', NAME], ok(terse()))
    assert made.incompatible(made.probe()) is None


# -- the busy retry ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('busy', [EBUSY, BUSY])
def test_a_swap_waits_out_a_concurrent_dump(fake, tmp_path, busy):
    made = adapter(fake, tmp_path)
    fake.on(['ipset', 'destroy', made.tmp_name], fail(MISSING), ok())
    fake.on(['ipset', 'restore'], ok())
    fake.on(['ipset', 'swap', made.tmp_name, NAME], fail(busy), fail(busy), ok())
    assert made.apply_full(['192.0.2.1'], LiveInfo(True)) is True
    assert len(fake.commands(['ipset', 'swap'])) == 3
    # The old generation, now under the temporary name, is destroyed after the swap.
    assert fake.commands()[-1] == ['ipset', 'destroy', made.tmp_name]


def test_the_wait_for_a_busy_set_is_bounded_and_the_live_set_is_left_as_it_was(fake, tmp_path):
    made = adapter(fake, tmp_path)
    fake.on(['ipset', 'destroy', made.tmp_name], fail(MISSING), ok())
    fake.on(['ipset', 'restore'], ok())
    fake.on(['ipset', 'swap'], fail(EBUSY))
    with pytest.raises(SyncError) as failed:
        made.apply_full(['192.0.2.1'], LiveInfo(True))
    assert len(fake.commands(['ipset', 'swap'])) == backend_ipset.BUSY_RETRIES
    message = str(failed.value)
    assert 'bl4' in message and 'Device or resource busy' in message and 'live set unchanged' in message
    assert fake.commands()[-1] == ['ipset', 'destroy', made.tmp_name]


def test_an_error_that_is_not_busy_is_not_retried(fake, tmp_path):
    made = adapter(fake, tmp_path)
    fake.on(['ipset', 'destroy', made.tmp_name], fail(MISSING), ok())
    fake.on(['ipset', 'restore'], ok())
    fake.on(['ipset', 'swap'], fail("ipset v7.17: The sets cannot be swapped: their type does not match\n"))
    with pytest.raises(SyncError, match='type does not match'):
        made.apply_full(['192.0.2.1'], LiveInfo(True))
    assert len(fake.commands(['ipset', 'swap'])) == 1


# -- full reloads -----------------------------------------------------------------------------------------------------

def test_a_full_reload_fills_a_temporary_set_sized_for_the_entries_and_swaps_it_in(fake, tmp_path):
    made = adapter(fake, tmp_path, timeout=3600)
    fake.on(['ipset', 'destroy', made.tmp_name], fail(MISSING), ok())
    fake.on(['ipset', 'restore'], ok())
    fake.on(['ipset', 'swap', made.tmp_name, NAME], ok())
    entries = ['192.0.2.%d' % i for i in range(1, 41)]
    assert made.apply_full(entries, LiveInfo(True)) is True
    (batch,) = fake.batches()
    lines = batch.splitlines()
    maxelem, hashsize = size_for(len(entries))
    assert lines[0] == 'create %s hash:net family inet hashsize %d maxelem %d timeout 3600' % (
        made.tmp_name, hashsize, maxelem)
    assert sorted(lines[1:]) == sorted('add %s %s' % (made.tmp_name, e) for e in entries)
    # The live set is only ever swapped, never written: the batch names the temporary set alone.
    assert NAME not in batch.replace(made.tmp_name, '')
    assert leftover_batches(tmp_path) == []


def test_a_failed_full_restore_destroys_the_temporary_set_and_names_the_set(fake, tmp_path):
    made = adapter(fake, tmp_path)
    fake.on(['ipset', 'destroy', made.tmp_name], fail(MISSING), ok())
    fake.on(['ipset', 'restore'], fail('ipset v7.17: Error in line 3: Syntax error: cannot parse 192.0.2.300\n'))
    with pytest.raises(SyncError) as failed:
        made.apply_full(['192.0.2.1', '192.0.2.300'], LiveInfo(True))
    message = str(failed.value)
    assert 'bl4' in message and 'cannot parse 192.0.2.300' in message and 'live set unchanged' in message
    assert fake.commands(['ipset', 'swap']) == []
    assert fake.commands()[-1] == ['ipset', 'destroy', made.tmp_name]
    assert leftover_batches(tmp_path) == []


def test_a_leftover_temporary_set_that_cannot_be_destroyed_stops_the_reload_before_any_load(fake, tmp_path):
    made = adapter(fake, tmp_path)
    fake.on(['ipset', 'destroy', made.tmp_name], fail('ipset v7.17: Kernel error received: Operation not permitted\n'))
    with pytest.raises(SyncError) as failed:
        made.apply_full(['192.0.2.1'], LiveInfo(True))
    assert made.tmp_name in str(failed.value) and 'Operation not permitted' in str(failed.value)
    assert fake.commands(['ipset', 'restore']) == []


def test_a_temporary_set_that_stays_after_the_swap_is_left_for_the_next_reload(fake, tmp_path):
    # The new generation is live by then: a failure to clean up must not report the change as failed.
    made = adapter(fake, tmp_path)
    fake.on(['ipset', 'destroy', made.tmp_name], fail(MISSING), fail('ipset v7.17: Operation not permitted\n'))
    fake.on(['ipset', 'restore'], ok())
    fake.on(['ipset', 'swap'], ok())
    assert made.apply_full(['192.0.2.1'], LiveInfo(True)) is True


def test_a_new_set_is_loaded_under_the_temporary_name_and_renamed_once_validated(fake, tmp_path):
    made = adapter(fake, tmp_path)
    fake.on(['ipset', 'destroy', made.tmp_name], fail(MISSING))
    fake.on(['ipset', 'restore'], ok())
    seen = []
    assert made.apply_full(['192.0.2.1'], LiveInfo(False), validate=lambda: seen.append('validated') or True)
    load, finish = fake.batches()
    assert load.startswith('create %s ' % made.tmp_name) and 'add %s 192.0.2.1\n' % made.tmp_name in load
    assert finish == 'rename %s %s\n' % (made.tmp_name, NAME) and seen == ['validated']
    assert fake.commands(['ipset', 'swap']) == []


def test_a_new_set_that_fails_validation_is_never_renamed_in(fake, tmp_path):
    made = adapter(fake, tmp_path)
    fake.on(['ipset', 'destroy', made.tmp_name], fail(MISSING), ok())
    fake.on(['ipset', 'restore'], ok())
    assert made.apply_full(['192.0.2.1/32'], LiveInfo(False), validate=lambda: False) is False
    assert [batch.split()[0] for batch in fake.batches()] == ['create']
    assert fake.commands()[-1] == ['ipset', 'destroy', made.tmp_name]


def test_a_validation_error_is_raised_after_the_temporary_set_is_destroyed(fake, tmp_path):
    made = adapter(fake, tmp_path)
    fake.on(['ipset', 'destroy', made.tmp_name], fail(MISSING), ok())
    fake.on(['ipset', 'restore'], ok())

    def invalid():
        raise SyncError('invalid entries, nothing applied')
    with pytest.raises(SyncError, match='invalid entries'):
        made.apply_full(['not-an-address'], LiveInfo(False), validate=invalid)
    assert fake.commands()[-1] == ['ipset', 'destroy', made.tmp_name]
    assert len(fake.batches()) == 1


def test_a_load_that_fails_while_validation_passes_is_reported_and_cleaned_up(fake, tmp_path):
    made = adapter(fake, tmp_path)
    fake.on(['ipset', 'destroy', made.tmp_name], fail(MISSING), ok())
    fake.on(['ipset', 'restore'], fail('ipset v7.17: Error in line 2: Hash is full, cannot add more elements\n'))
    with pytest.raises(SyncError) as failed:
        made.apply_full(['192.0.2.1'], LiveInfo(False), validate=lambda: True)
    assert 'bl4' in str(failed.value) and 'Hash is full' in str(failed.value)
    assert len(fake.batches()) == 1     # no rename after the failed load
    assert fake.commands()[-1] == ['ipset', 'destroy', made.tmp_name]


# -- updates ----------------------------------------------------------------------------------------------------------

def test_an_update_is_one_batch_that_adds_before_it_deletes(fake, tmp_path):
    fake.on(['ipset', '-exist', 'restore', '-file'], ok())
    adapter(fake, tmp_path).apply_incremental({'192.0.2.7'}, {'192.0.2.1', '192.0.2.2'})
    (batch,) = fake.batches()
    lines = batch.splitlines()
    assert lines[0] == 'add bl4 192.0.2.7' and sorted(lines[1:]) == ['del bl4 192.0.2.1', 'del bl4 192.0.2.2']


def test_a_failed_update_names_the_set_and_keeps_the_tools_words(fake, tmp_path):
    fake.on(['ipset', '-exist', 'restore'], fail("ipset v7.17: Error in line 1: Element cannot be added to the set: "
                                                 "it's already added\n"))
    with pytest.raises(SyncError) as failed:
        adapter(fake, tmp_path).apply_incremental({'192.0.2.7'}, set())
    assert 'updating ipset bl4 failed' in str(failed.value) and "it's already added" in str(failed.value)
    assert leftover_batches(tmp_path) == []


# -- listing, removal, persistence ------------------------------------------------------------------------------------

def test_read_entries_takes_this_sets_add_lines_only(fake, tmp_path):
    fake.on(['ipset', 'save', NAME], ok(
        'create bl4 hash:net family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x5d2c8e11\n'
        'add bl4 192.0.2.0/24\nadd bl4 198.51.100.7 timeout 300\nadd bl40 203.0.113.1\n'))
    assert adapter(fake, tmp_path).read_entries() == {'192.0.2.0/24', '198.51.100.7'}


def test_read_entries_that_fail_are_an_error_not_an_empty_set(fake, tmp_path):
    # An empty set read from a failed listing would make the engine add everything and remove nothing.
    fake.on(['ipset', 'save', NAME], fail('ipset v7.17: Kernel error received: Cannot allocate memory\n'))
    with pytest.raises(SyncError, match='Cannot allocate memory'):
        adapter(fake, tmp_path).read_entries()


def test_destroy_refuses_a_set_that_rules_still_reference(fake, tmp_path):
    fake.on(['ipset', 'list', '-terse', NAME], ok(terse(count=1, references=2)))
    with pytest.raises(SyncError, match='referenced by 2 firewall rule'):
        adapter(fake, tmp_path).destroy()
    assert fake.commands(['ipset', 'destroy']) == []


def test_destroy_of_a_missing_set_runs_nothing_and_reports_no_change(fake, tmp_path):
    fake.on(['ipset', 'list', '-terse', NAME], fail(MISSING))
    assert adapter(fake, tmp_path).destroy() is False
    assert len(fake.calls) == 1


def test_save_to_writes_the_create_line_without_initval_and_the_recorded_entries(fake, tmp_path):
    fake.on(['ipset', 'list', '-terse', NAME], ok(terse(count=2, maxelem=131072, timeout=600)))
    store = StateStore(str(tmp_path / 'state'), 'ipset', NAME)
    store.save({'count': 2}, entries=['198.51.100.7', '192.0.2.0/24'])
    made = adapter(fake, tmp_path)
    made.boot_rules = '#!/bin/sh\niptables -w -I INPUT 1 -m set --match-set bl4 src -j DROP\n'
    path = str(tmp_path / 'bl4.save')
    made.save_to(path, write_atomic, store)
    lines = open(path).read().splitlines()
    # Restoring a set with another boot's initval fails: it must not be in the file.
    assert 'initval' not in lines[0]
    assert lines[0].split() == ['create', 'bl4', 'hash:net', 'family', 'inet', 'hashsize', '1024', 'maxelem', '131072',
                                'timeout', '600', 'bucketsize', '12']
    assert lines[1:] == ['add bl4 198.51.100.7', 'add bl4 192.0.2.0/24']
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # The rules' script beside it, and gone again once the set has no rules.
    rules = tmp_path / 'bl4.rules'
    assert rules.read_text() == made.boot_rules
    made.boot_rules = ''
    made.save_to(path, write_atomic, store)
    assert not rules.exists()
    # Not 'ipset save': that is the listing of a million entries this avoids.
    assert fake.commands(['ipset', 'save']) == []


# -- the engine over a model of ipset ---------------------------------------------------------------------------------

class IpsetModel(object):
    """Enough of ipset's behaviour to run the engine over: sets of entries, restore batches, swap, destroy."""

    def __init__(self):
        self.sets = {}
        self.after_restore = None

    def __call__(self, call):
        args = call.args[1:]
        exist = args[0] == '-exist'
        args = args[1:] if exist else args
        verb, name = args[0], args[-1]
        if verb == 'list':
            return ok(terse(name, len(self.sets[name]))) if name in self.sets else fail(MISSING)
        if verb == 'save':
            return ok(''.join('add %s %s\n' % (name, e) for e in sorted(self.sets[name])))
        if verb == 'destroy':
            return ok() if self.sets.pop(name, None) is not None else fail(MISSING)
        if verb == 'swap':
            self.sets[args[1]], self.sets[args[2]] = self.sets[args[2]], self.sets[args[1]]
            return ok()
        assert verb == 'restore', call
        for line in call.batch.splitlines():
            word, target, rest = line.split(' ', 2) if line.count(' ') >= 2 else line.split(' ') + ['']
            if word == 'create':
                self.sets[target] = set()
            elif word == 'rename':
                self.sets[rest] = self.sets.pop(target)
            elif word == 'add':
                self.sets[target].add(rest)
            elif word == 'del':
                self.sets[target].discard(rest)
        if self.after_restore:
            self.after_restore(self)
        return ok()


def sync(fake, tmp_path, entries):
    return sync_set(IpsetAdapter(fake, 'ipset', NAME), StateStore(str(tmp_path / 'state'), 'ipset', NAME),
                    Entries.read(entries=entries))


def test_the_engine_loads_then_trusts_its_record_then_changes_in_place(fake, tmp_path):
    model = IpsetModel()
    fake.on(['ipset'], model)
    first = ['192.0.2.%d' % i for i in range(1, 21)]
    result = sync(fake, tmp_path, first)
    assert (result['changed'], result['added'], result['total']) == (True, 20, 20)
    assert model.sets == {NAME: set(first)}          # renamed in, no temporary set left
    # The same entries again: one cheap look at the set, no listing, no batch.
    del fake.calls[:]
    assert sync(fake, tmp_path, first)['changed'] is False
    assert fake.commands() == [['ipset', 'list', '-terse', NAME]]
    # A small change is one update in place, not a reload.
    del fake.calls[:]
    second = first[1:] + ['198.51.100.1']
    result = sync(fake, tmp_path, second)
    assert (result['added'], result['removed'], result['full_reload']) == (1, 1, False)
    assert model.sets == {NAME: set(second)}
    assert fake.commands(['ipset', 'swap']) == [] and len(fake.commands(['ipset', '-exist', 'restore'])) == 1


def test_the_engine_does_not_vouch_for_a_set_that_holds_other_than_it_applied(fake, tmp_path):
    model = IpsetModel()
    fake.on(['ipset'], model)
    before = ['192.0.2.%d' % i for i in range(1, 21)]
    sync(fake, tmp_path, before)
    # Someone else deletes an entry while the (in place) update runs.
    model.after_restore = lambda m: m.sets[NAME].discard('192.0.2.1')
    wanted = before + ['198.51.100.1']
    result = sync(fake, tmp_path, wanted)
    assert result['full_reload'] is False
    assert 'holds 20 entries after the update, expected 21' in result['warnings'][0]
    assert StateStore(str(tmp_path / 'state'), 'ipset', NAME).load() is None
    # So the next run compares the live set and puts the entry back.
    model.after_restore = None
    result = sync(fake, tmp_path, wanted)
    assert (result['verified'], result['added']) == (True, 1) and model.sets[NAME] == set(wanted)
