# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The iptables rules that enforce an ipset, against a fake iptables: the one ``iptables-restore --noflush``
transaction they make, read back from ``iptables -S`` as iptables prints it, and what a failure leaves.  No root,
no kernel: test_backend_ipset.py runs the same against the real kernel."""

from __future__ import annotations

import shlex
import shutil

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import iptables_rules
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.iptables_rules import ensure_rules
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import SyncError
from ansible_collections.fleetwall.blocklist.tests.unit.plugins.module_utils._blocklist.host.fake_runner import (
    FakeRunner, fail, ok,
)

BINARIES = ('iptables', 'iptables-restore')
BASE = '-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n'
OURS = '-A INPUT -m set --match-set bl4 src -m comment --comment fleetwall:bl4 -j DROP\n'
ACCEPT_SSH = '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n'


@pytest.fixture
def fake():
    runner = FakeRunner()
    yield runner
    runner.check()


class IptablesModel(object):
    """``iptables -S`` and ``iptables-restore --noflush`` of -D and -I lines, over {chain: [rule token lists]}."""

    def __init__(self, listing):
        self.chains = {}
        for line in listing.splitlines():
            if line.startswith('-P ') or line.startswith('-N '):
                self.chains.setdefault(line.split()[1], [])
            elif line.startswith('-A '):
                tokens = shlex.split(line)
                self.chains.setdefault(tokens[1], []).append(tokens[2:])

    def listing(self, _call=None):
        # As iptables -S prints a rule: a token with a space in double quotes.
        return ok(''.join('-N %s\n' % chain for chain in self.chains if chain not in ('INPUT', 'FORWARD', 'OUTPUT'))
                  + ''.join('-A %s %s\n' % (chain, ' '.join('"%s"' % t if ' ' in t else t for t in rule))
                            for chain, rules in self.chains.items() for rule in rules))

    def restore(self, call):
        lines = call.data.splitlines()
        assert call.args[1:] == ['-w', '--noflush'] and lines[0] == '*filter' and lines[-1] == 'COMMIT', call
        for line in lines[1:-1]:
            # iptables-restore reads double quotes as shlex does.
            verb, chain, *rule = shlex.split(line)
            if verb == '-D':
                if rule not in self.chains[chain]:
                    return fail('iptables-restore: line %d failed: Bad rule (does a matching rule exist in that '
                                'chain?)\n' % (lines.index(line) + 1))
                self.chains[chain].remove(rule)
            else:
                self.chains[chain].insert(int(rule[0]) - 1, rule[1:])
        return ok()


def rule_line(chain, tokens):
    return '-A %s %s\n' % (chain, ' '.join('"%s"' % t if ' ' in t else t for t in tokens))


def model(fake, listing):
    kernel = IptablesModel(listing)
    fake.on(['iptables', '-w', '-S'], kernel.listing)
    fake.on(['iptables-restore'], kernel.restore)
    return kernel


def test_rules_in_place_at_the_top_are_left_alone(fake):
    model(fake, BASE + OURS + ACCEPT_SSH)
    assert ensure_rules(fake, BINARIES, 4, 'bl4', [{'chain': 'INPUT'}]) == []
    assert fake.commands(['iptables-restore']) == []


def test_a_rule_with_a_quoted_log_prefix_reads_back_as_in_place(fake):
    # iptables -S prints the prefix quoted; read back it must equal what was asked, or every run would rewrite it.
    logged = ('-A INPUT -m set --match-set bl4 src -m comment --comment fleetwall:bl4 -m limit --limit 5/min '
              '--limit-burst 10 -j LOG --log-prefix "fleetwall-drop: "\n')
    model(fake, BASE + logged + OURS)
    assert ensure_rules(fake, BINARIES, 4, 'bl4', [{'chain': 'INPUT', 'log': True}]) == []


def test_a_quoted_log_prefix_reaches_iptables_as_one_argument(fake):
    kernel = model(fake, BASE + ACCEPT_SSH)
    ensure_rules(fake, BINARIES, 4, 'bl4', [{'chain': 'INPUT', 'log': True, 'log_prefix': 'blocked by fleetwall: '}])
    log_rule = kernel.chains['INPUT'][0]
    assert log_rule[log_rule.index('--log-prefix') + 1] == 'blocked by fleetwall: '
    # So the next run finds it in place.
    assert ensure_rules(fake, BINARIES, 4, 'bl4', [{'chain': 'INPUT', 'log': True,
                                                    'log_prefix': 'blocked by fleetwall: '}]) == []


def test_rules_below_someone_elses_accept_are_moved_to_the_top_in_one_transaction(fake):
    kernel = model(fake, BASE + ACCEPT_SSH + OURS)
    changes = ensure_rules(fake, BINARIES, 4, 'bl4', [{'chain': 'INPUT'}])
    assert changes == ['INPUT: 1 tagged rule(s) replaced by 1 at the top']
    assert len(fake.commands(['iptables-restore'])) == 1
    assert [rule_line('INPUT', rule) for rule in kernel.chains['INPUT']] == [OURS, ACCEPT_SSH]
    # And now they stand: nothing more to do.
    assert ensure_rules(fake, BINARIES, 4, 'bl4', [{'chain': 'INPUT'}]) == []


def test_a_changed_rule_replaces_ours_and_leaves_the_others_rules(fake):
    kernel = model(fake, BASE + OURS + ACCEPT_SSH)
    ensure_rules(fake, BINARIES, 6, 'bl4', [{'chain': 'INPUT', 'target': 'REJECT', 'ports': [80, 443]}])
    (rule, other) = kernel.chains['INPUT']
    assert rule == ['-p', 'tcp', '-m', 'set', '--match-set', 'bl4', 'src', '-m', 'multiport', '--dports',
                                 '80,443', '-m', 'comment', '--comment', 'fleetwall:bl4', '-j', 'REJECT',
                                 '--reject-with', 'icmp6-port-unreachable']
    assert rule_line('INPUT', other) == ACCEPT_SSH


def test_check_mode_says_what_would_change_and_changes_nothing(fake):
    kernel = model(fake, BASE + ACCEPT_SSH)
    changes = ensure_rules(fake, BINARIES, 4, 'bl4', [{'chain': 'INPUT'}, {'chain': 'OUTPUT'}], check_mode=True)
    assert changes == ['INPUT: 0 tagged rule(s) replaced by 1 at the top',
                       'OUTPUT: 0 tagged rule(s) replaced by 1 at the top']
    assert fake.commands(['iptables-restore']) == [] and kernel.chains['OUTPUT'] == []


def test_a_failed_listing_is_an_error_with_the_tools_words_and_nothing_is_written(fake):
    fake.on(['iptables', '-w', '-S'], fail("iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: "
                                           "Permission denied (you must be root)\n", rc=4))
    with pytest.raises(SyncError, match='iptables -S failed: .*Permission denied'):
        ensure_rules(fake, BINARIES, 4, 'bl4', [{'chain': 'INPUT'}])
    assert fake.commands(['iptables-restore']) == []


def test_a_failed_restore_says_the_rules_were_left_and_keeps_the_tools_words(fake):
    model(fake, BASE)
    fake.on(['iptables-restore'], fail("iptables-restore v1.8.9 (nf_tables): Set bl4 doesn't exist.\n"
                                       "Error occurred at line: 2\n"))
    with pytest.raises(SyncError) as failed:
        ensure_rules(fake, BINARIES, 4, 'bl4', [{'chain': 'INPUT'}])
    assert "Set bl4 doesn't exist" in str(failed.value) and 'rules left as they were' in str(failed.value)


def test_a_missing_docker_chain_is_a_warning_and_the_other_chains_are_still_written(fake, monkeypatch):
    # The other iptables variant is installed and holds DOCKER-USER (Docker writing with iptables-legacy).
    tools = {'iptables': '/usr/sbin/iptables', 'iptables-legacy': '/usr/sbin/iptables-legacy'}
    monkeypatch.setattr(shutil, 'which', lambda name, path=None: tools.get(name))
    monkeypatch.setattr(iptables_rules, '_variant_in_use', lambda tool, family: True)
    kernel = model(fake, BASE)
    fake.on(['/usr/sbin/iptables-legacy', '-w', '-S', 'DOCKER-USER'], ok('-N DOCKER-USER\n-A DOCKER-USER -j RETURN\n'))
    changes = ensure_rules(fake, BINARIES, 4, 'bl4', [{'chain': 'INPUT'}, {'chain': 'DOCKER-USER'}])
    assert changes == ['INPUT: 0 tagged rule(s) replaced by 1 at the top']
    assert 'chain DOCKER-USER does not exist in iptables, but it does in iptables-legacy' in changes.warnings[0]
    assert len(kernel.chains['INPUT']) == 1 and 'DOCKER-USER' not in kernel.chains


def test_a_missing_docker_chain_nowhere_asks_whether_docker_is_there(fake, monkeypatch):
    monkeypatch.setattr(shutil, 'which', lambda name, path=None: '/usr/sbin/iptables' if name == 'iptables' else None)
    model(fake, BASE + OURS)
    changes = ensure_rules(fake, BINARIES, 4, 'bl4', [{'chain': 'INPUT'}, {'chain': 'DOCKER-USER'}])
    assert changes == [] and 'is Docker installed' in changes.warnings[0]
