# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nftables rules that enforce a set: one base chain per set and hook, in our own table.

Listing rules makes the ``nft`` CLI fetch the elements of every set they use
(about 20 s next to a million-element set), while listing chain definitions
is instant.  So each set gets base chains of its own (``<set>_input``, ...)
that nobody else writes to, at priority ``filter - 10`` so they see packets
before the usual filter chains (firewalld's, Docker's, iptables-nft's).  A
chain's content is replaced whole (flush and add, in one transaction) when
the wanted rules change, which this side knows from a digest it records; a
chain deleted or recreated by hand is noticed by its handle.  Rule content
edited by hand is found by ``verify``, which lists the chains.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

from .adapter import SetRules
from ..files import write_atomic
from ..sync import SyncError

HOOKS = ('input', 'output', 'forward')
PRIORITY = -10
PREFIX_OK = re.compile(r'^[A-Za-z0-9 _:.\-]{0,64}\Z')


def chain_name(set_name, hook):
    return '%s_%s' % (set_name, hook)


def counter_name(set_name):
    return '%s_drops' % set_name


def build(adapter, rules):
    """{chain: [rule statements]} for the wanted rules, in order."""
    proto = 'ip' if adapter.version == 4 else 'ip6'
    by_chain = {}
    for rule in rules:
        hook = rule.get('chain') or 'input'
        if hook not in HOOKS:
            raise SyncError('chain must be one of %s' % ', '.join(HOOKS))
        statements = by_chain.setdefault(chain_name(adapter.name, hook), [])
        for match in _matches(adapter, proto, hook, rule):
            if rule.get('log'):
                prefix = rule.get('log_prefix') or 'fleetwall-drop: '
                if not PREFIX_OK.match(prefix):
                    raise SyncError('log_prefix %r may use letters, digits, space and _ : . - only' % prefix)
                statements.append('%s limit rate %s log prefix "%s"'
                                  % (match, rule.get('log_limit') or '5/minute', prefix))
            verdict = 'reject' if (rule.get('target') or 'drop').lower() == 'reject' else 'drop'
            statements.append('%s counter name "%s" %s' % (match, counter_name(adapter.name), verdict))
    return by_chain


def _matches(adapter, proto, hook, rule):
    """The match of each rule one wanted rule takes.  On forward, a port is the connection's original destination
    port: Docker's DNAT (-p 8080:80) has made the packet's own port 80 by then.  nft cannot type an anonymous set
    of ``ct original proto-dst`` values, so that is one rule per port."""
    direction = rule.get('direction') or ('dst' if hook == 'output' else 'src')
    # An admit-only set's rules refuse every source it does not hold.
    match = '%s %saddr %s@%s' % (proto, 's' if direction == 'src' else 'd',
                                 '!= ' if getattr(adapter, 'admit', False) else '', adapter.name)
    if hook == 'output':
        # The connections this host opens: a reply to a listed client that the inbound ports let in still goes.
        match += ' ct state new'
    ports = [int(port) for port in rule.get('ports') or []]
    protocol = rule.get('protocol') or 'tcp'
    if not ports:
        return [match]
    if hook == 'forward':
        return ['%s meta l4proto %s ct original proto-dst %d' % (match, protocol, port) for port in ports]
    return ['%s %s dport { %s }' % (match, protocol, ', '.join(str(port) for port in ports))]


class RuleManager(SetRules):
    """Keeps a set's chains and rules, and remembers what it applied."""

    def __init__(self, adapter, state_dir):
        self.adapter = adapter
        self.path = os.path.join(state_dir, 'nft-%s-%s.rules.json' % (adapter.table, adapter.name))
        self.applied = {}

    def _record(self):
        try:
            with open(self.path) as handle:
                return json.load(handle)
        except (IOError, OSError, ValueError):
            return None

    def _live_chains(self):
        adapter = self.adapter
        chains = {}
        for item in adapter.listing():
            chain = item.get('chain')
            if chain and chain.get('table') == adapter.table:
                chains[chain['name']] = chain.get('handle')
        return chains

    def _live_rules(self, chain):
        adapter = self.adapter
        rc, out, _err = adapter.run([adapter.bin, '-t', 'list', 'chain', adapter.family, adapter.table, chain])
        if rc != 0:
            return None
        return [line.strip() for line in out.splitlines()
                if line.strip() and not line.strip().startswith(('table', 'chain', 'type', '}'))]

    def script(self, wanted, stale):
        adapter = self.adapter
        ref = '%s %s' % (adapter.family, adapter.table)
        lines = ['add table %s\n' % ref]
        if wanted:
            lines.append('add counter %s %s\n' % (ref, counter_name(adapter.name)))
        for chain, statements in sorted(wanted.items()):
            hook = chain[len(adapter.name) + 1:]
            lines.append('add chain %s %s { type filter hook %s priority %d; policy accept; }\n'
                         % (ref, chain, hook, PRIORITY))
            lines.append('flush chain %s %s\n' % (ref, chain))
            lines.extend('add rule %s %s %s\n' % (ref, chain, s) for s in statements)
        for chain in sorted(stale):
            lines.append('flush chain %s %s\ndelete chain %s %s\n' % (ref, chain, ref, chain))
        return lines

    def ensure(self, rules, check_mode=False, verify=False):
        """Make the set's chains hold exactly ``rules``; return a list of changes."""
        adapter = self.adapter
        wanted = build(adapter, rules)
        digest = hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()
        live = self._live_chains()
        ours = {name for name in live if name in {chain_name(adapter.name, h) for h in HOOKS}}
        record = self._record() or {}
        same = (record.get('digest') == digest and set(record.get('chains', {})) == set(wanted)
                and all(live.get(c) == h for c, h in record.get('chains', {}).items()) and ours == set(wanted))
        if same and verify:
            # The expensive look, on request: the rules as the kernel has them.
            for chain, statements in wanted.items():
                got = self._live_rules(chain)
                if got is None or len(got) != len(statements):
                    same = False
        self.applied = wanted
        if same:
            return []
        changes = ['%s: %d rule(s)' % (chain, len(s)) for chain, s in sorted(wanted.items())]
        changes += ['%s: removed' % chain for chain in sorted(ours - set(wanted))]
        if check_mode:
            return changes
        self._apply(self.script(wanted, ours - set(wanted)))
        after = self._live_chains()
        state = {'digest': digest, 'chains': {c: after.get(c) for c in wanted}}
        write_atomic(self.path, json.dumps(state, sort_keys=True).encode(), 0o600)
        return changes

    def _apply(self, lines):
        self.adapter._apply(lines, 'rule update')

    def remove(self, check_mode=False):
        """Delete the set's chains and its drop counter; a list of what went."""
        adapter = self.adapter
        live = self._live_chains()
        ours = [name for name in live if name in {chain_name(adapter.name, h) for h in HOOKS}]
        counter = counter_name(adapter.name)
        has_counter = any((item.get('counter') or {}).get('name') == counter
                          and item['counter'].get('table') == adapter.table for item in adapter.listing())
        if (ours or has_counter) and not check_mode:
            ref = '%s %s' % (adapter.family, adapter.table)
            self._apply(['flush chain %s %s\ndelete chain %s %s\n' % (ref, c, ref, c) for c in ours]
                        + (['delete counter %s %s\n' % (ref, counter)] if has_counter else []))
            try:
                os.unlink(self.path)
            except OSError:
                pass
        return ['%s: removed' % c for c in ours] + (['counter %s: removed' % counter] if has_counter else [])
