# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The set backends' contract: every set adapter is a SetAdapter, and one that leaves a method out cannot be built."""

from __future__ import annotations

import importlib
import inspect
import os

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.adapter import SetAdapter, validate_while_loading
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.backends import BACKENDS

MODULES = 'ansible_collections.fleetwall.blocklist.plugins.modules.'


def _set_modules():
    """{module name: the SetAdapter its module builds}, for every module that hands an adapter to run_sync: found
    in the modules, so that a new set backend is checked without being listed here."""
    modules_dir = list(importlib.import_module(MODULES.rstrip('.')).__path__)[0]
    found = {}
    for name in sorted(os.listdir(modules_dir)):
        if not name.endswith('.py'):
            continue
        with open(os.path.join(modules_dir, name)) as handle:
            if 'run_sync(' not in handle.read():
                continue
        module = importlib.import_module(MODULES + name[:-3])
        found[name[:-3]] = [value for value in vars(module).values()
                            if inspect.isclass(value) and issubclass(value, SetAdapter) and value is not SetAdapter]
    return found


SET_MODULES = _set_modules()


def test_the_set_modules_are_found():
    # The three set backends of today: a search that found none would check nothing.
    assert set(SET_MODULES) >= {'ipset_sync', 'nft_set_sync', 'firewalld_ipset_sync'}


@pytest.mark.parametrize('module', sorted(SET_MODULES))
def test_every_set_backend_keeps_the_contract_under_the_name_its_records_carry(module):
    assert len(SET_MODULES[module]) == 1, 'the module builds one SetAdapter: %r' % SET_MODULES[module]
    adapter = SET_MODULES[module][0]
    assert not inspect.isabstract(adapter)
    entry = [backend for backend in BACKENDS.values() if backend.module == module]
    assert len(entry) == 1 and adapter.backend in entry[0].record_names


def test_an_adapter_that_leaves_a_method_out_cannot_be_built():
    class Forgetful(SetAdapter):
        backend = 'forgetful'

        def fingerprint(self):
            return {}

        def probe(self):
            return None

        def incompatible(self, live):
            return None

        def read_entries(self):
            return set()

        def apply_full(self, desired, live, validate=None):
            return True

        def destroy(self):
            return False

        def save_to(self, path, write_atomic, store):
            return None
    # apply_incremental is missing: Python refuses the class at its first use, not the engine halfway through a sync.
    with pytest.raises(TypeError, match='apply_incremental'):
        Forgetful()  # pylint: disable=abstract-class-instantiated  # the point of the test


def _loader(events, fails=None):
    def load(written):
        events.append('batch written')
        written.set()
        if fails:
            raise fails
        events.append('loaded')
    return load


@pytest.mark.parametrize('valid, load_error, expected', [
    (True, None, True),
    # Valid but not canonical: the load may have failed on duplicates; the caller retries, so no error.
    (False, None, False),
    (False, OSError(28, 'No space left on device'), False),
])
def test_a_first_load_is_kept_only_when_it_loaded_and_validation_said_yes(valid, load_error, expected):
    events = []

    def validate():
        events.append('validated')
        return valid
    assert validate_while_loading(_loader(events, load_error), validate, lambda: events.append('discarded')) is expected
    # Validation waited for the batch file; the new set is discarded unless it is kept.
    assert events[0] == 'batch written' and 'validated' in events
    assert ('discarded' in events) is (not expected)


def test_what_the_load_or_validation_raised_reaches_the_caller_and_the_new_set_is_gone():
    events = []
    with pytest.raises(OSError, match='No space left'):
        validate_while_loading(_loader(events, OSError(28, 'No space left on device')), lambda: True,
                               lambda: events.append('discarded'))
    assert events[-1] == 'discarded'

    def refuses():
        raise ValueError('entry 3 is not an address')
    events = []
    with pytest.raises(ValueError, match='entry 3'):
        validate_while_loading(_loader(events), refuses, lambda: events.append('discarded'))
    assert events == ['batch written', 'loaded', 'discarded']


def test_every_backends_rules_keep_one_interface():
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.adapter import NoRules, SetRules
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_firewalld import FirewalldRules
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.iptables_rules import IptablesSetRules
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.nft_rules import RuleManager
    for rules in (IptablesSetRules, RuleManager, FirewalldRules, NoRules):
        assert issubclass(rules, SetRules) and not inspect.isabstract(rules), rules
    assert NoRules().ensure([{'chain': 'INPUT'}]) == [] and NoRules().remove() == []
