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

import shlex

from .sync import SyncError

CHAINS = ('INPUT', 'OUTPUT', 'FORWARD', 'DOCKER-USER')
TARGETS = ('DROP', 'REJECT')
REJECT_WITH = {4: 'icmp-port-unreachable', 6: 'icmp6-port-unreachable'}


def tag_for(set_name):
    return 'fleetwall:%s' % set_name


def build_rules(set_name, version, rules):
    """Return {chain: [token lists]} in the order they must appear.

    Tokens follow the order in which ``iptables -S`` prints a rule, so the
    desired rules compare equal to the live ones without a second parser.
    """
    tag = tag_for(set_name)
    by_chain = {}
    for rule in rules:
        chain = rule.get('chain') or 'INPUT'
        direction = rule.get('direction') or ('dst' if chain == 'OUTPUT' else 'src')
        match = []
        ports = rule.get('ports') or []
        if ports:
            match += ['-p', rule.get('protocol') or 'tcp']
        match += ['-m', 'set', '--match-set', set_name, direction]
        if ports:
            match += ['-m', 'multiport', '--dports', ','.join(str(p) for p in ports)]
        match += ['-m', 'comment', '--comment', tag]
        out = by_chain.setdefault(chain, [])
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


def ensure_rules(run, binaries, version, set_name, rules, check_mode=False):
    """Make our tagged rules for ``set_name`` exactly ``rules``, at the top.

    ``binaries`` is (iptables, iptables-restore) for the family.  Returns a
    list of human-readable changes (empty when nothing changed).
    """
    cmd, restore_cmd = binaries
    rc, out, err = run([cmd, '-w', '-S'])
    if rc != 0:
        raise SyncError('%s -S failed: %s' % (cmd, err.strip()))
    live = _parse_listing(out)
    tag = tag_for(set_name)
    desired = build_rules(set_name, version, rules)
    for chain in desired:
        if chain not in live and chain not in ('INPUT', 'OUTPUT', 'FORWARD'):
            raise SyncError('chain %s does not exist on this host (is Docker installed?)' % chain)
    changes = []
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
        raise SyncError('%s failed, rules left as they were: %s' % (restore_cmd, (err or out).strip()))
    return changes
