# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""iptables/ip6tables rules that enforce an ipset.

Our rules carry a comment tag (``fleetwall:<set>``), so they can be found and
replaced without touching anybody else's rules.  They must sit at the top of
their chain: an earlier ACCEPT would let a listed address through.  Every
change is one ``iptables-restore --noflush`` transaction, so there is no
moment where the old rules are gone and the new ones not yet in.
"""

from __future__ import annotations

import os
import shlex
import shutil

from .adapter import SetRules
from .command_runner import tool_message
from ..sync import SyncError

CHAINS = ('INPUT', 'OUTPUT', 'FORWARD', 'DOCKER-USER')
TARGETS = ('DROP', 'REJECT')
REJECT_WITH = {4: 'icmp-port-unreachable', 6: 'icmp6-port-unreachable'}
# Chains that see a forwarded packet after Docker's DNAT (-p 8080:80 reaches FORWARD with port 80): a port is
# matched there by the connection's original destination, as the client sent it.
AFTER_DNAT = ('FORWARD', 'DOCKER-USER')
# The same tool in the other netfilter backend, where a chain it cannot find may live (Docker 20.10 on a host whose
# iptables is nf_tables still writes with iptables-legacy, and the reverse).
OTHER_VARIANT = {'iptables': ('iptables-legacy', 'iptables-nft'), 'ip6tables': ('ip6tables-legacy', 'ip6tables-nft')}


class RuleChanges(list):
    """The changes ensure_rules made (human-readable), and ``warnings`` for what it could not do and left."""

    def __init__(self, changes=(), warnings=()):
        super(RuleChanges, self).__init__(changes)
        self.warnings = list(warnings)


def tag_for(set_name):
    return 'fleetwall:%s' % set_name


def build_rules(set_name, version, rules):
    """Return {chain: [token lists]} in the order they must appear.

    Tokens follow the order in which ``iptables -S`` prints a rule, so the
    desired rules compare equal to the live ones without a second parser.
    """
    by_chain = {}
    for rule in rules:
        chain = rule.get('chain') or 'INPUT'
        out = by_chain.setdefault(chain, [])
        for match in _matches(set_name, chain, rule):
            if rule.get('log'):
                out.append(match + ['-m', 'limit', '--limit', rule.get('log_limit') or '5/min',
                                    '--limit-burst', '10', '-j', 'LOG', '--log-prefix',
                                    rule.get('log_prefix') or 'fleetwall-drop: '])
            target = rule.get('target') or 'DROP'
            action = ['-j', target]
            if target == 'REJECT':
                action += ['--reject-with', REJECT_WITH[version]]
            out.append(match + action)
    return by_chain


def _matches(set_name, chain, rule):
    """The match part of each rule one wanted rule takes: one, or one per port where ports are matched after DNAT
    (conntrack's --ctorigdstport takes one port, where multiport takes a list).  Tokens in the order iptables -S
    prints them."""
    direction = rule.get('direction') or ('dst' if chain == 'OUTPUT' else 'src')
    ports = rule.get('ports') or []
    head = (['-p', rule.get('protocol') or 'tcp'] if ports else []) + ['-m', 'set', '--match-set', set_name, direction]
    if chain == 'OUTPUT':
        # The connections this host opens: a reply to a listed client that the inbound ports let in still goes.
        head += ['-m', 'conntrack', '--ctstate', 'NEW']
    tail = ['-m', 'comment', '--comment', tag_for(set_name)]
    if not ports:
        return [head + tail]
    if chain in AFTER_DNAT:
        return [head + ['-m', 'conntrack', '--ctorigdstport', str(port)] + tail for port in ports]
    return [head + ['-m', 'multiport', '--dports', ','.join(str(p) for p in ports)] + tail]


def _parse_listing(text):
    """{chain: [token lists]} of the -A lines of ``iptables -S``."""
    chains = {}
    for line in text.splitlines():
        if line.startswith('-N '):
            chains.setdefault(line.split()[1], [])
        elif line.startswith('-A '):
            tokens = shlex.split(line)
            chains.setdefault(tokens[1], []).append(tokens[2:])
    return chains


def _quote(token):
    # iptables-restore understands double quotes only.
    return '"%s"' % token if (' ' in token or not token) else token


def _is_ours(tokens, tag):
    for i, token in enumerate(tokens[:-1]):
        if token == '--comment' and tokens[i + 1] == tag:
            return True
    return False


def _other_variant_holding(run, cmd, chain):
    """', but it does in iptables-legacy' (or -nft) when the other netfilter backend's tool lists ``chain``."""
    family = 'ip6tables' if 'ip6tables' in os.path.basename(cmd) else 'iptables'
    search = os.pathsep.join([os.environ.get('PATH', ''), '/usr/sbin', '/sbin'])
    own = os.path.realpath(shutil.which(cmd, path=search) or cmd)
    for other in OTHER_VARIANT[family]:
        tool = shutil.which(other, path=search)
        if tool is None or os.path.realpath(tool) == own or not _variant_in_use(other, family):
            continue
        rc, out, _err = run([tool, '-w', '-S', chain])
        if rc == 0 and ('-N %s' % chain) in out:
            return ', but it does in %s (Docker writes its chains with that variant of iptables here)' % other
    return ' (is Docker installed, and does it write %s rules?)' % family


def _variant_in_use(tool, family):
    """Whether ``tool``'s tables can hold a chain at all.  The legacy tools load the kernel's x_tables filter
    table just to list it; with no legacy table in this network namespace, there is nothing to look at."""
    if not tool.endswith('-legacy'):
        return True
    try:
        with open('/proc/net/%s_names' % ('ip6_tables' if family == 'ip6tables' else 'ip_tables')) as handle:
            return 'filter' in handle.read().split()
    except (IOError, OSError):
        return False


def ensure_rules(run, binaries, version, set_name, rules, check_mode=False):
    """Make our tagged rules for ``set_name`` exactly ``rules``, at the top.

    ``binaries`` is (iptables, iptables-restore) for the family.  Returns a
    list of human-readable changes (empty when nothing changed).
    """
    cmd, restore_cmd = binaries
    rc, out, err = run([cmd, '-w', '-S'])
    if rc != 0:
        raise SyncError('%s -S failed: %s' % (cmd, tool_message(err)))
    live = _parse_listing(out)
    tag = tag_for(set_name)
    desired = build_rules(set_name, version, rules)
    warnings = []
    for chain in [c for c in desired if c not in live and c not in ('INPUT', 'OUTPUT', 'FORWARD')]:
        # Docker 20.10 writes no ip6tables chains, and may write with the other iptables variant: this family's
        # other rules are still written, and the warning says where the chain is, if anywhere.
        del desired[chain]
        warnings.append('%s: chain %s does not exist in %s%s; its rules were not written, the other chains\' were'
                        % (set_name, chain, cmd, _other_variant_holding(run, cmd, chain)))
    changes = RuleChanges(warnings=warnings)
    script = ['*filter']
    for chain in sorted(set(live) | set(desired)):
        current = live.get(chain, [])
        ours = [r for r in current if _is_ours(r, tag)]
        want = desired.get(chain, [])
        if current[:len(want)] == want and len(ours) == len(want):
            continue
        for tokens in ours:
            script.append(' '.join(_quote(t) for t in ['-D', chain] + tokens))
        for position, tokens in enumerate(want, 1):
            script.append(' '.join(_quote(t) for t in ['-I', chain, str(position)] + tokens))
        changes.append('%s: %d tagged rule(s) replaced by %d at the top' % (chain, len(ours), len(want)))
    if not changes or check_mode:
        return changes
    script.append('COMMIT')
    rc, out, err = run([restore_cmd, '-w', '--noflush'], data='\n'.join(script) + '\n')
    if rc != 0:
        raise SyncError('%s failed, rules left as they were: %s' % (restore_cmd, tool_message(err, out)))
    return changes


def boot_script(cmd, set_name, version, rules):
    """A POSIX shell script that puts ``rules`` back at the top of their chains where they are missing.

    Run by the boot unit after the sets are loaded, and again after netfilter-persistent or Docker starts
    (their drop-ins): a ruleset restored after ours replaces the chain it names, and Docker creates DOCKER-USER
    only when it starts. A rule already in place (a saved ruleset that holds it) is left: no duplicates. A chain
    that does not exist yet is passed over, for the next of those runs.
    """
    name = os.path.basename(cmd)
    lines = ['#!/bin/sh', '# Written by fleetwall.blocklist (ipset_sync): the rules that enforce %s %s.'
             % ('ipset', set_name), 'rc=0']
    for chain, rule_list in sorted(build_rules(set_name, version, rules).items()):
        lines.append('if %s -w -S %s >/dev/null 2>&1; then' % (name, shlex.quote(chain)))
        for position, tokens in enumerate(rule_list, 1):
            quoted = ' '.join(shlex.quote(token) for token in tokens)
            lines.append('  %s -w -C %s %s 2>/dev/null || %s -w -I %s %d %s || rc=1'
                         % (name, shlex.quote(chain), quoted, name, shlex.quote(chain), position, quoted))
        lines.append('fi')
    lines.append('exit $rc')
    return '\n'.join(lines) + '\n'


class IptablesSetRules(SetRules):
    """The tagged iptables rules of an ipset (ensure_rules), and the script that puts them back at boot."""

    def __init__(self, run, binaries, adapter):
        """``binaries``: (iptables, iptables-restore) of the set's family."""
        self.run, self.binaries, self.adapter = run, binaries, adapter

    def ensure(self, rules, check_mode=False, verify=False):
        # The chains are listed on every run (iptables -S is cheap): there is no record to verify.
        changes = ensure_rules(self.run, self.binaries, self.adapter.version, self.adapter.name, rules,
                               check_mode=check_mode)
        # What the boot unit puts back where a restored ruleset or Docker replaced the chains.
        self.adapter.boot_rules = boot_script(self.binaries[0], self.adapter.name, self.adapter.version,
                                              rules) if rules else ''
        return changes

    def remove(self, check_mode=False):
        return self.ensure([], check_mode)
