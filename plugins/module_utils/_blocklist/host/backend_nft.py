# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The nftables adapter for the sync engine.

What the ``nft`` CLI costs decides the design (measured with nftables 1.0.6,
see docs/nftables.md):

* ``nft -t list ruleset`` lists set and chain definitions without elements:
  milliseconds at any size (``-t list table`` is not: it fetches them).  It
  is the probe; a set's ``handle`` is its identity, so a set deleted and
  recreated behind our back is noticed.
* Anything that lists elements (``list set``, even with ``-t``) costs about a
  minute at a million, and so does any change to an *interval* set, because
  the CLI fetches its elements first to check for overlaps.  Elements of a
  plain (hash) set are added and deleted without that.
* A set's element count is not part of its definition.

Hence: the engine's record of the last apply stands in for the live listing
(as with ipset); the listing happens only with ``verify``; and the role keeps
single addresses in a hash set and networks in a (much smaller) interval set,
so that a routine change never touches a million-element interval set.

Every change is one ``nft -f`` transaction: the kernel applies all of it or
none of it, so no packet sees an empty or half-filled set.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re

from .adapter import SetAdapter, validate_while_loading
from ..addresses import (
    V4, V6, BITS, AddressError, format_network, nested_pair, parse_network, parse_range, ranges_to_networks,
)
from .command_runner import tool_message
from ..files import scratch_file
from ..sync import LiveInfo, SyncError

# nft's words for an element that overlaps another of the same transaction, or one already in the set.
OVERLAP_ERRORS = ('conflicting intervals specified', 'interval overlaps with an existing one')

TYPES = {'ipv4_addr': V4, 'ipv6_addr': V6}
FAMILIES = ('inet', 'ip', 'ip6')
NAME = re.compile(r'^[A-Za-z][A-Za-z0-9_]{0,62}\Z')
# Elements per 'add element' statement; one statement of a million elements
# makes nft's parser hold the whole list at once.
CHUNK = 50000
# Elements per transaction when a new plain set is filled in parts.
LOAD_CHUNK = 20000
BUFFER_HINT = ('the transaction is larger than the netlink socket buffer; raise net.core.rmem_max and '
               'net.core.wmem_max (e.g. to 16777216) or load fewer entries')


def validate_name(kind, name):
    if not name or not NAME.match(name):
        return '%s name %r must start with a letter and use only letters, digits and _ (at most 63)' % (kind, name)
    return None


RESTORE_UNIT = """# Installed by fleetwall.blocklist (nft_set_sync restore_unit).
# Loads the blocklist sets and their chains (table inet fleetwall) after
# nftables.service, whose 'flush ruleset' would otherwise remove them. Each
# script recreates one set with its elements and chains in one transaction.
# Early boot, as nftables.service itself: without DefaultDependencies=no it
# would wait for sysinit.target while ordered before network-pre.target, a
# cycle with ifupdown's networking.service and cloud-init's network stage,
# which systemd breaks by dropping one of the jobs.
[Unit]
Description=Restore fleetwall.blocklist nftables sets
DefaultDependencies=no
After=nftables.service local-fs.target
Wants=network-pre.target
Before=network-pre.target shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'rc=0; for f in %s/*.nft; do [ -e "$$f" ] || continue; nft -f "$$f" || rc=1; done; exit $$rc'

[Install]
WantedBy=multi-user.target
"""


# Every saved set script, loaded again where the host's own ruleset was just loaded over ours.
LOAD_COMMAND = """-/bin/sh -c 'for f in %s/*.nft; do [ -e "$$f" ] || continue; nft -f "$$f"; done'"""
RELOAD_DROPIN = """# Installed by fleetwall.blocklist (nft_set_sync restore_unit): nftables.service's
# ExecStart and ExecReload load /etc/nftables.conf, whose 'flush ruleset' removes
# the blocklist's table; it is loaded again right after, in the same job.
[Service]
ExecStartPost=%s
ExecReload=%s
"""


class NftAdapter(SetAdapter):
    backend = 'nft'
    replaces_whole = True
    # (directory, prefix) of batch files; the engine points it into the state directory (StateStore.scratch).
    scratch = (None, 'fleetwall-nft-')

    def __init__(self, run, nft_bin, table, name, family='inet', elem_type='ipv4_addr', interval=True,
                 timeout=None, select='all', keep_listing=False):
        for kind, value in (('table', table), ('set', name)):
            problem = validate_name(kind, value)
            if problem:
                raise SyncError(problem)
        if family not in FAMILIES:
            raise SyncError('family must be one of %s' % ', '.join(FAMILIES))
        if elem_type not in TYPES:
            raise SyncError('type must be ipv4_addr or ipv6_addr')
        if (family == 'ip' and elem_type != 'ipv4_addr') or (family == 'ip6' and elem_type != 'ipv6_addr'):
            raise SyncError('a table of family %s cannot match %s' % (family, elem_type))
        self._command = run
        self._keep_listing = keep_listing
        self._listing = None
        self.bin = nft_bin
        self.family = family
        self.table = table
        self.name = name
        self.elem_type = elem_type
        self.version = TYPES[elem_type]
        self.interval = interval
        self.host_only = not interval
        self.timeout = timeout
        self.select = select
        self.label = 'nft set %s %s %s' % (family, table, name)
        self.rule_manager = None
        self.ref = '%s %s %s' % (family, table, name)

    # -- the engine's interface -------------------------------------------------

    def fingerprint(self):
        return {'type': self.elem_type, 'interval': self.interval, 'timeout': self.timeout or 0,
                'select': self.select}

    def _nft(self, args, check=True):
        rc, out, err = self.run([self.bin] + args)
        if check and rc != 0:
            raise SyncError('nft %s failed: %s' % (' '.join(args), tool_message(err, out)))
        return rc, out, err

    def run(self, args, *more, **options):
        # Anything but a listing may change the ruleset, and the listing kept is then stale.
        if 'list' not in args:
            self._listing = None
        return self._command(args, *more, **options)

    def listing(self):
        """The family's tables, sets, chains and rules as nft's JSON items, without set elements.

        Terse listing of the ruleset is instant at any set size (listing one
        table is not: nft then fetches the elements).  With ``keep_listing``
        one call serves the set's probe and its chains: the listing is kept
        until this adapter runs anything but a listing.  The module builds
        an adapter per set and run and lists under the set's lock, so what
        is kept is that one sync's view, never shared with another set's.
        """
        if self._listing is not None:
            return self._listing
        rc, out, err = self._nft(['-t', '-j', 'list', 'ruleset', self.family], check=False)
        if rc != 0:
            raise SyncError('cannot list the nft ruleset: %s' % tool_message(err, out))
        try:
            listing = json.loads(out).get('nftables', [])
        except ValueError:
            raise SyncError('unexpected output from nft -t -j list ruleset: %r' % out[:200])
        if self._keep_listing:
            self._listing = listing
        return listing

    def _sets(self):
        return [item['set'] for item in self.listing() if 'set' in item]

    def probe(self):
        for item in self._sets():
            if item.get('table') == self.table and item.get('name') == self.name:
                flags = item.get('flags') or []
                if isinstance(flags, str):
                    flags = [flags]
                return LiveInfo(True, count=None, fingerprint={
                    'type': item.get('type'), 'interval': 'interval' in flags,
                    'timeout': int(item.get('timeout', 0) or 0) if 'timeout' in flags or item.get('timeout') else 0,
                    'has_timeout_flag': 'timeout' in flags}, detail={'handle': item.get('handle')})
        return LiveInfo(False)

    def identity(self, live):
        """What must not have changed for the record of the last apply to stand: the set's handle."""
        return live.detail.get('handle') if live.exists else None

    def incompatible(self, live):
        fp = live.fingerprint
        if fp.get('type') != self.elem_type or fp.get('interval') != self.interval:
            return ('nft set %s exists as %s%s, but this task manages %s%s; a set\'s type cannot change '
                    'in place, so it was left as it is. Remove it (state=absent) or pick another name.'
                    % (self.ref, fp.get('type'), ' interval' if fp.get('interval') else '',
                       self.elem_type, ' interval' if self.interval else ''))
        if fp.get('has_timeout_flag') != bool(self.timeout):
            return ('nft set %s was created %s timeouts and this task asks %s them; that cannot change '
                    'in place, so the set was left as it is'
                    % (self.ref, 'with' if fp.get('has_timeout_flag') else 'without',
                       'for' if self.timeout else 'for no'))
        return None

    def read_entries(self):
        """The full live listing: about a minute at a million elements, so only for verify or drift."""
        _rc, out, _err = self._nft(['-j', 'list', 'set', self.family, self.table, self.name])
        try:
            items = json.loads(out).get('nftables', [])
        except ValueError:
            raise SyncError('unexpected output from nft -j list set: %r' % out[:200])
        entries = set()
        bits = BITS[self.version]
        for item in items:
            for element in (item.get('set') or {}).get('elem', []) or []:
                if isinstance(element, dict) and 'elem' in element:
                    element = element['elem'].get('val')
                try:
                    if isinstance(element, str):
                        entries.add(format_network(*parse_network(element)))
                    elif 'prefix' in element:
                        text = '%s/%s' % (element['prefix']['addr'], element['prefix']['len'])
                        entries.add(format_network(*parse_network(text)))
                    elif 'range' in element:
                        version, first, last = parse_range('-'.join(element['range']))
                        entries.update(format_network(version, start, prefixlen)
                                       for start, prefixlen in ranges_to_networks([(first, last)], bits))
                    else:
                        # Passed over, it would be invisible to verify, and never removed.
                        raise TypeError('not an address, a prefix or a range')
                except (AddressError, KeyError, TypeError):
                    raise SyncError('unexpected element in %s: %r' % (self.label, element))
        return entries

    def _set_definition(self):
        flags = (['interval'] if self.interval else []) + (['timeout'] if self.timeout else [])
        parts = ['type %s;' % self.elem_type]
        if flags:
            parts.append('flags %s;' % ','.join(flags))
        if self.timeout:
            parts.append('timeout %ds;' % self.timeout)
        parts.append('comment "managed by fleetwall.blocklist";')
        return 'add set %s { %s }\n' % (self.ref, ' '.join(parts))

    def _elements(self, verb, entries):
        """'add/delete element' statements in chunks, built with joins rather than per-entry formats.

        A generator: the script is written chunk by chunk, so a million-entry
        load never holds the whole script in memory beside the entries.
        """
        if not isinstance(entries, (list, tuple)):
            entries = list(entries)
        for start in range(0, len(entries), CHUNK):
            yield '%s element %s { %s }\n' % (verb, self.ref, ', '.join(entries[start:start + CHUNK]))

    def _apply(self, chunks, what, written=None):
        with scratch_file(chunks, *self.scratch) as path:
            if written is not None:
                written.set()
            rc, out, err = self.run([self.bin, '-f', path])
        if rc != 0:
            message = tool_message(err, out)
            # Read in all of it: the first failing line need not say why.
            if any(cause in (err or out) for cause in ('Message too long', 'No buffer space', 'ENOBUFS')):
                message += '; ' + BUFFER_HINT
            raise SyncError('%s of %s failed, the live set is unchanged (one transaction): %s'
                            % (what, self.label, message))

    def apply_full(self, desired, live, validate=None):
        """Replace the whole content in one transaction: create if missing, flush, add.

        For a set that does not exist yet, ``validate()`` runs while nft loads
        it: no rule references a new set until this run adds one, so loading
        it before validation ends is harmless, and it is deleted again if
        validation says no or a load fails (the ipset adapter does the same
        with its temporary set).  An existing set is live, so it is validated
        first and replaced in one transaction.
        """
        with self._overlaps_named(lambda: desired):
            return self._apply_full(desired, live, validate)

    def _apply_full(self, desired, live, validate):
        chunks = itertools.chain(['add table %s %s\n' % (self.family, self.table), self._set_definition(),
                                  'flush set %s\n' % self.ref], self._elements('add', desired))
        if validate is None:
            self._apply(chunks, 'full load')
            return True
        if live.exists:
            if not validate():
                return False
            self._apply(chunks, 'full load')
            return True
        return validate_while_loading(lambda written: self._load_new(desired, chunks, written), validate,
                                      self._discard_new_set)

    def _discard_new_set(self):
        self._nft(['delete', 'set', self.family, self.table, self.name], check=False)

    def _load_new(self, desired, chunks, written):
        """Fill a set that does not exist yet; ``written`` is set once the first batch file is written."""
        if self.interval or len(desired) <= LOAD_CHUNK:
            self._apply(chunks, 'full load', written)
            return
        # A new plain set is referenced by nothing until this run
        # adds its rules, so it may be filled in several transactions:
        # each nft process then holds one part, not the whole list
        # (peak memory), and adding to a plain set costs nothing per
        # call.  Interval sets are never loaded this way: every call
        # would fetch what is already in them.  The table and the set
        # go in with the first part: one nft process fewer.
        head = ['add table %s %s\n' % (self.family, self.table), self._set_definition()]
        entries = desired if isinstance(desired, (list, tuple)) else list(desired)
        for start in range(0, len(entries), LOAD_CHUNK):
            part = self._elements('add', entries[start:start + LOAD_CHUNK])
            self._apply(itertools.chain(head if start == 0 else [], part), 'full load', written)

    def apply_incremental(self, added, removed):
        # Deletions and additions in one transaction; the kernel applies
        # both or neither, and checks the additions against the set without the deletions.
        with self._overlaps_named(lambda: (self.read_entries() - set(removed)) | set(added)):
            self._apply(itertools.chain(self._elements('delete', removed), self._elements('add', added)), 'update')

    @contextlib.contextmanager
    def _overlaps_named(self, entries):
        """An interval set holds no two entries of which one lies inside the other: nft refuses the transaction
        with its own words and a column number.  The refusal then names the pair, from ``entries()`` (called only
        then: for an update it lists the live set).  nft_set_sync refuses rather than folds such a pair, so that the
        set holds exactly the list it was given (docs/backends.md)."""
        try:
            yield
        except SyncError as exc:
            if not self.interval or not any(text in str(exc) for text in OVERLAP_ERRORS):
                raise
            pair = nested_pair(entries())
            if pair is None:
                raise
            raise SyncError('%s cannot hold both %s and %s, which lies inside it: an interval set holds no '
                            'overlapping entries, and nothing was applied. List the wider entry alone (the shadow '
                            "copy's lists are aggregated and never overlap), or use ipset_sync, whose hash:net set "
                            'holds both' % (self.label, pair[0], pair[1]))

    def destroy(self):
        """Delete the set, and our table once nothing is left in it (the last set's chains and counter went
        before); True if anything was deleted."""
        deleted = False
        if self.probe().exists:
            self._apply(['delete set %s\n' % self.ref], 'removal')
            deleted = True
        held = [item for item in self.listing() for kind, body in item.items()
                if kind != 'table' and isinstance(body, dict) and body.get('table') == self.table]
        has_table = any((item.get('table') or {}).get('name') == self.table for item in self.listing())
        if has_table and not held:
            self._apply(['delete table %s %s\n' % (self.family, self.table)], 'removal')
            deleted = True
        return deleted

    @staticmethod
    def restore_dropins(save_dir):
        """{drop-in path relative to the unit directory: text}: the table again after nftables.service restarts or
        reloads (Debian's ExecReload and ExecStart run /etc/nftables.conf, which begins with 'flush ruleset')."""
        load = LOAD_COMMAND % save_dir
        return {'nftables.service.d/fleetwall-nft.conf': RELOAD_DROPIN % (load, load)}

    @staticmethod
    def restore_unit(save_dir):
        """The boot unit that loads every set script in ``save_dir``."""
        return RESTORE_UNIT % save_dir

    def save_to(self, path, write_atomic, store):
        """An nft script that recreates the set, its elements and its chains at boot.

        Written from the record of what was applied, not from a listing of
        the live set, which would cost a minute at a million.  In the record's
        order: nft takes elements in any order, and sorting a million of them
        cost half a second of every change.
        """
        lines = ['add table %s %s\n' % (self.family, self.table), self._set_definition(),
                 'flush set %s\n' % self.ref] + list(self._elements('add', store.load_lines()))
        if self.rule_manager is not None and self.rule_manager.applied:
            lines += self.rule_manager.script(self.rule_manager.applied, ())
        write_atomic(path, ''.join(lines).encode(), 0o600)
