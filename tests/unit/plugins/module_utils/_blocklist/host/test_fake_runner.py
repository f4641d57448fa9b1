# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fake runner the adapters' logic tests use: if it answered wrongly, or let an unexpected command through,
every test built on it could pass for the wrong reason."""

from __future__ import annotations

import threading

import pytest

from ansible_collections.fleetwall.blocklist.tests.unit.plugins.module_utils._blocklist.host.fake_runner import (
    FakeRunner, UnexpectedCommand, fail, ok,
)


def test_the_longest_matching_start_answers_whatever_the_order_it_was_scripted_in():
    fake = FakeRunner()
    fake.on(['ipset', 'list', '-terse', 'bl4'], ok('the set'))
    fake.on(['ipset'], fail('any other ipset command'))
    assert fake(['ipset', 'list', '-terse', 'bl4']) == (0, 'the set', '')
    assert fake(['ipset', 'list', '-terse', 'other']) == (1, '', 'any other ipset command')
    # Of two equal starts the later one answers: a test can change its mind half way.
    fake.on(['ipset'], ok('changed'))
    assert fake(['ipset', 'destroy', 'x']) == (0, 'changed', '')


def test_answers_are_given_in_turn_and_the_last_one_repeats():
    fake = FakeRunner()
    fake.on(['ipset', 'swap'], fail('Device or resource busy'), fail('Device or resource busy'), ok())
    assert [fake(['ipset', 'swap', 'a', 'b'])[0] for _attempt in range(5)] == [1, 1, 0, 0, 0]


def test_an_answer_may_be_a_function_of_the_call_with_its_stdin():
    fake = FakeRunner()
    fake.on(['cat'], lambda call: ok(call.data.upper()))
    assert fake(['cat'], data='*filter\n') == (0, '*FILTER\n', '')
    assert fake.calls[0].data == '*filter\n' and fake.calls[0].args == ['cat']


def test_the_batch_file_is_kept_with_the_call_since_it_is_gone_once_the_tool_returns(tmp_path):
    batch = tmp_path / 'batch'
    batch.write_text('add bl4 192.0.2.1\n')
    fake = FakeRunner().on(['ipset', 'restore'], ok()).on(['nft', '-f'], ok()).on(['nft', 'list'], ok())
    fake(['ipset', 'restore', '-file', str(batch)])
    batch.write_text('add element inet t s { 192.0.2.2 }\n')
    fake(['nft', '-f', str(batch)])
    batch.unlink()
    fake(['nft', 'list', 'ruleset'])
    assert fake.batches() == ['add bl4 192.0.2.1\n', 'add element inet t s { 192.0.2.2 }\n']
    assert fake.calls[2].batch is None


def test_commands_lists_the_calls_that_start_alike():
    fake = FakeRunner().on(['nft'], ok())
    for args in (['nft', '-f', 'x'], ['nft', 'delete', 'set', 'inet', 't', 's'], ['nft', '-f', 'y']):
        fake(args)
    assert fake.commands(['nft', '-f']) == [['nft', '-f', 'x'], ['nft', '-f', 'y']]
    assert len(fake.commands()) == 3


def test_an_unexpected_command_fails_the_test_even_where_the_adapter_swallows_the_error():
    fake = FakeRunner().on(['ipset', 'list'], ok())
    with pytest.raises(UnexpectedCommand, match='ipset.*destroy'):
        fake(['ipset', 'destroy', 'bl4'])
    # Raised in a thread (as the loaders run the kernel's load), the error is lost; the record is not.
    worker = threading.Thread(target=lambda: pytest.raises(UnexpectedCommand, fake, ['nft', '-f', 'x']))
    worker.start()
    worker.join()
    with pytest.raises(AssertionError, match="'nft', '-f', 'x'"):
        fake.check()


def test_check_passes_when_every_command_was_answered():
    fake = FakeRunner().on(['true'], ok())
    fake(['true'])
    fake.check()
    with pytest.raises(ValueError):
        fake.on(['false'])
