# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The firewalld adapter for the sync engine: a firewalld ipset, permanent and runtime.

firewalld replaces any ipset or rule it did not make when it reloads, so on
a firewalld host the blocklist has to be firewalld's own ipset.  A change
goes to the permanent ipset first, in bulk (``--permanent
--add-entries-from-file``, which only rewrites its XML), then to the runtime
ipset one entry at a time (``--add-entry``, ``--remove-entry``: firewalld's
addEntry and removeEntry, each one element added to or deleted from the
kernel set).  firewalld's bulk runtime path (setEntries, behind
``--add-entries-from-file``) flushes the kernel set and refills it in
transactions of 1,000 elements, so the rules would match an empty, then a
partial set; the per-entry path costs more and never does that.  New entries
go in before old ones come out, so every entry of both generations is
blocked while the change runs; only an old entry that a new one overlaps
(firewalld refuses overlapping entries) comes out just before it goes in.  The runtime set changes without a reload;
only the very first creation needs one, because firewalld creates runtime
ipsets only from the permanent configuration.  The enforcing rule is a zone
source (``ipset:NAME`` in the ``drop`` zone) or a rich rule with ``drop`` or
``reject``; services (SSH among them) are never touched and firewalld is
never restarted.
"""

from __future__ import annotations

import json
import os
import re

from .adapter import SetAdapter, SetRules
from ..addresses import V4, V6, overlapping
from .command_runner import tool_message
from ..files import scratch_file
from ..sync import LiveInfo, SyncError

FAMILIES = {'inet': V4, 'inet6': V6}
MAX_NAME = 31
TIMEOUT_PREFIX = 'timed out:'
# Entries per firewall-cmd call on the runtime ipset.  firewall-cmd makes one D-Bus call per entry either way; a
# batch spreads its own start (0.1-0.4 s) over many entries.  1,000 IPv6 entries are about 55 KB of arguments.
RUNTIME_BATCH = 1000
# What firewall-cmd says, exit status 0, of an entry already there or already gone: the change is done.
_ALREADY_DONE = ('Warning: ALREADY_ENABLED:', 'Warning: NOT_ENABLED:')
_HEADER = re.compile(r'<ipset\b[^>]*\btype="([^"]+)"')
_FAMILY = re.compile(r'<option\b[^>]*name="family"[^>]*value="([^"]+)"')


def _zone_settings(listing):
    """{zone: {setting: set of values}} of ``firewall-cmd --list-all-zones``: a zone at the start of a line, its
    settings indented (``  services: ssh dhcpv6-client``), a rich rule on a line of its own under ``rich rules:``."""
    zones, zone, key = {}, None, None
    for line in listing.splitlines():
        if line and not line[0].isspace():
            zone, key = line.split()[0], None
            zones[zone] = {}
        elif zone and line.strip():
            name, sep, values = line.strip().partition(':')
            if sep and line.startswith('  ') and not line.startswith('\t') and ' ' not in name.replace('rich rules', ''):
                key = name
                zones[zone][key] = set(values.split())
            elif key is not None:
                zones[zone].setdefault(key, set()).add(line.strip())
    return zones


class FirewalldAdapter(SetAdapter):
    backend = 'firewalld'
    # (directory, prefix) of batch files; the engine points it into the state directory (StateStore.scratch).
    scratch = (None, 'fleetwall-firewalld-')
    # firewalld has no swap: a change to an existing ipset is always the
    # add-before-remove of apply_incremental (see the engine).
    replaces_whole = False

    def __init__(self, run, firewall_cmd, name, family='inet', config_dir='/etc/firewalld', maxelem=None,
                 nft=None, ipset=None):
        if not name or len(name) > MAX_NAME or not re.match(r'^[A-Za-z0-9_.:-]+\Z', name):
            raise SyncError('firewalld ipset name %r must be 1-%d letters, digits or _ . : -' % (name, MAX_NAME))
        self.run = run
        self.bin = firewall_cmd
        self.name = name
        self.family = family
        self.version = FAMILIES[family]
        self.host_only = False
        self.config_dir = config_dir
        self.maxelem = maxelem
        # The kernel tools that show whether firewalld rebuilt its kernel state (kernel_generation); either may be
        # missing, as FirewallBackend needs only one of them.
        self.nft, self.ipset = nft, ipset
        self.label = 'firewalld ipset %s' % name
        self.xml_path = os.path.join(config_dir, 'ipsets', name + '.xml')
        # (runtime, permanent) entries as read_entries listed them, until the permanent ipset is reconciled with
        # them; so one adapter serves one sync_set call, as the module builds it.
        self.compared = None
        # What the module says beside its result (the runtime settings a creation's reload dropped).
        self.warnings = []

    def cmd(self, args, what=None):
        rc, out, err = self.run([self.bin] + list(args))
        if rc != 0:
            self._fail(what or ' '.join(args[:2]), err or out, rc)
        return out

    def _fail(self, what, said, rc=None):
        if 'Did not receive a reply' in said:
            raise SyncError('%s firewall-cmd %s: firewalld did not answer within the 25 s D-Bus timeout; it may '
                            'still be applying the change. firewalld handles large ipsets slowly (a reload of '
                            '100,000 entries took about a minute in our benchmark); on this host use the '
                            'nftables backend (fleetwall_backend=nftables), whose table firewalld leaves alone'
                            % (TIMEOUT_PREFIX, what))
        raise SyncError('firewall-cmd %s failed%s: %s' % (what, ' (rc %d)' % rc if rc else '', tool_message(said)))

    def running(self):
        rc, out, err = self.run([self.bin, '--state'])
        if rc != 0:
            raise SyncError('firewalld is not running (firewall-cmd --state: %s); start it, or pick another '
                            'backend' % tool_message(out, err))

    def fingerprint(self):
        return {'type': 'hash:net', 'family': self.family}

    def probe(self):
        """Whether the ipset exists, permanent and runtime, and its type and family.

        The engine probes again after its update, before it writes its record, and never in check mode.  If it
        compared and found nothing to change, it applied nothing: the permanent ipset is made the runtime one's
        entries first (read_entries).
        """
        if self.compared is not None:
            self._permanent_follows_runtime()
        permanent = self.cmd(['--permanent', '--get-ipsets']).split()
        runtime = self.cmd(['--get-ipsets']).split()
        exists = self.name in permanent and self.name in runtime
        fingerprint = {}
        try:
            with open(self.xml_path) as handle:
                head = handle.read(4096)
            match, family = _HEADER.search(head), _FAMILY.search(head)
            fingerprint = {'type': match.group(1) if match else None,
                           'family': family.group(1) if family else 'inet'}
        except (IOError, OSError):
            pass
        return LiveInfo(exists, count=None, fingerprint=fingerprint,
                        detail={'permanent': self.name in permanent, 'runtime': self.name in runtime})

    def identity(self, live):
        """The permanent XML's size and mtime (firewalld rewrites it on every permanent change), and the generation
        of firewalld's kernel state: a reload, a restart or a reboot rebuilds the runtime ipset from that file, so
        anything that set the file apart from the record without changing its size and mtime shows after it, and
        the run after one compares both ipsets instead of trusting its record."""
        try:
            st = os.stat(self.xml_path)
        except OSError:
            return None
        return '%d:%d:%s' % (st.st_size, st.st_mtime_ns, self.kernel_generation())

    def kernel_generation(self):
        """What changes when firewalld rebuilds its kernel state: the handle of its nftables table (a reload deletes
        the table and makes it again), or under FirewallBackend=iptables the kernel ipset's entry count; None when
        neither tool can say."""
        if self.nft:
            rc, out, _err = self.run([self.nft, '-j', 'list', 'tables', 'inet'])
            try:
                tables = [item['table'] for item in json.loads(out)['nftables'] if 'table' in item] if rc == 0 else []
            except (ValueError, KeyError, TypeError):
                tables = []
            for table in tables:
                if table.get('name') == 'firewalld':
                    return 'nft table handle %s' % table.get('handle')
        if self.ipset:
            rc, out, _err = self.run([self.ipset, 'list', '-terse', self.name])
            count = re.search(r'^Number of entries: (\d+)$', out, re.M) if rc == 0 else None
            if count:
                return 'ipset entries %s' % count.group(1)
        return None

    def incompatible(self, live):
        found = live.fingerprint
        if found and (found.get('type') != 'hash:net' or found.get('family') != self.family):
            return ('firewalld ipset %s exists as %s family %s, this task manages hash:net family %s; it was left '
                    'as it is' % (self.name, found.get('type'), found.get('family'), self.family))
        return None

    def read_entries(self):
        """The runtime ipset's entries: what the rules match now, which the engine compares and changes.

        The engine calls this only when it compares (no record it trusts, or verify), and then the permanent ipset
        is listed too: a run killed between the two, or a hand edit, leaves them apart, and a reload would make
        the permanent one live.  It is made the same as the runtime one before the engine writes its record:
        by apply_incremental when the engine changes anything, otherwise by the probe that follows.
        """
        runtime = self._listing([])
        self.compared = (runtime, self._listing(['--permanent']))
        return runtime

    def _listing(self, scope):
        return set(self.cmd(scope + ['--ipset=' + self.name, '--get-entries']).split())

    def _with_file(self, entries, args):
        with scratch_file(('\n'.join(entries), '\n'), *self.scratch) as path:
            return self.cmd(args + [path], ' '.join(args[:2]) + ' (%d entries)' % len(entries))

    def _change_permanent(self, added, removed):
        """In bulk from files: the permanent ipset is firewalld's XML file, the kernel is not touched.  The old
        entries that a new one overlaps go first: firewalld refuses an entry that overlaps one in the ipset."""
        clearing = overlapping(removed, added)
        for entries, verb in ((clearing, 'remove'), (added, 'add'), (set(removed) - clearing, 'remove')):
            if entries:
                self._with_file(sorted(entries), ['--permanent', '--ipset=' + self.name,
                                                  '--%s-entries-from-file' % verb])

    def _change_runtime(self, entries, verb):
        """One firewalld addEntry or removeEntry per entry, each one element added to or deleted from the kernel set.

        firewall-cmd goes on past an entry that fails and still exits 0 when another succeeded, saying why on
        stderr, so its warnings are read: only "already there" and "already gone" mean the entry is as wanted.
        """
        for start in range(0, len(entries), RUNTIME_BATCH):
            batch = entries[start:start + RUNTIME_BATCH]
            what = '--ipset=%s --%s-entry (%d entries)' % (self.name, verb, len(batch))
            rc, out, err = self.run([self.bin, '--ipset=' + self.name] + ['--%s-entry=%s' % (verb, e) for e in batch])
            if rc != 0:
                self._fail(what, err or out, rc)
            failed = [line for line in err.splitlines() if line.startswith('Warning:')
                      and not line.startswith(_ALREADY_DONE)]
            if failed:
                self._fail('%s: %d of them' % (what, len(failed)), '\n'.join(failed[:5]))

    def _permanent_change(self, added, removed):
        """(to add, to remove) for the permanent ipset: the engine's change, or after a comparison, what makes the
        permanent ipset the desired entries, whatever it held."""
        if self.compared is None:
            return added, removed
        runtime, permanent = self.compared
        self.compared = None
        desired = (runtime - removed) | added
        return desired - permanent, permanent - desired

    def _permanent_follows_runtime(self):
        """After a comparison that found the runtime ipset right: the permanent ipset as the runtime one."""
        runtime, permanent = self.compared
        self.compared = None
        self._change_permanent(runtime - permanent, permanent - runtime)

    def apply_full(self, desired, live, validate=None):
        """Create the ipset with its entries (the engine never asks this of an existing one).

        firewalld creates runtime ipsets only from its permanent
        configuration, so a new one takes one reload.  The entries go into
        the permanent ipset first: a reload loads them as one set, while
        adding them to the runtime ipset afterwards costs firewalld more
        with every entry already there (measured in docs/performance.md).
        """
        if validate is not None and not validate():
            return False
        if not live.detail.get('permanent'):
            options = ['--option=family=' + self.family,
                       '--option=maxelem=%d' % max(65536, self.maxelem or 2 * len(desired))]
            self.cmd(['--permanent', '--new-ipset=' + self.name, '--type=hash:net'] + options, '--new-ipset')
        try:
            # A permanent ipset without its runtime one is a first creation killed before its reload: what it holds
            # beyond the desired entries goes, or the reload would make it live.
            stale = self._listing(['--permanent']) - set(desired) if live.detail.get('permanent') else ()
            self._change_permanent(desired, stale)
            self.warnings.extend(self._dropped_by_reload())
            self.cmd(['--reload'])
        except SyncError as exc:
            if not str(exc).startswith(TIMEOUT_PREFIX):
                # A timed-out reload is still running in firewalld; removing
                # the ipset now would queue a second one behind it.
                self.run([self.bin, '--permanent', '--delete-ipset=' + self.name])
            raise
        return True

    def preview_creation(self):
        """Check mode's word on a first creation: the runtime settings its one reload would drop."""
        self.warnings.extend(self._dropped_by_reload(preview=True))

    def _dropped_by_reload(self, preview=False):
        """Warnings for the runtime-only settings (a port, a service, a rich rule added without --permanent) that
        the reload about to run drops: firewalld creates runtime ipsets only from its permanent configuration, so
        a first creation needs that one reload.  Interfaces are left out: their zones come from NetworkManager."""
        runtime = _zone_settings(self.cmd(['--list-all-zones']))
        permanent = _zone_settings(self.cmd(['--permanent', '--list-all-zones']))
        lost = ['%s %s: %s' % (zone, key, ', '.join(sorted(values - permanent.get(zone, {}).get(key, set()))))
                for zone, settings in sorted(runtime.items()) for key, values in sorted(settings.items())
                if key != 'interfaces' and values - permanent.get(zone, {}).get(key, set())]
        if not lost:
            return []
        return ['creating %s %s one firewalld reload, which %s runtime settings that are not permanent: %s. '
                'Make them permanent (firewall-cmd --runtime-to-permanent, or --permanent when adding them) so that '
                'a reload or a reboot keeps them' % (self.label, 'takes' if preview else 'took',
                                                     'will drop' if preview else 'dropped', '; '.join(lost))]

    def apply_incremental(self, added, removed):
        """The permanent ipset first, then the runtime one, adds before removes in each (but for the old entries
        that a new one overlaps, which go just before it).

        A run killed in between leaves the runtime ipset behind, never ahead: the next run finds no record, compares
        both ipsets and finishes the change (the permanent part repeats harmlessly, firewall-cmd skipping entries
        already there or gone).  The other order would leave the permanent ipset behind where nothing
        looks, until a reload or a reboot made it live.
        """
        self._change_permanent(*self._permanent_change(added, removed))
        # firewalld refuses an entry that overlaps one in the ipset (INVALID_ENTRY), as aggregation makes between
        # generations (203.0.113.5 then 203.0.113.0/24): the old entries a new one overlaps go just before it.
        # Only they are out for a moment, the D-Bus call between; every other entry of both generations stays in.
        clearing = overlapping(removed, added)
        self._change_runtime(sorted(clearing), 'remove')
        self._change_runtime(sorted(added), 'add')
        self._change_runtime(sorted(set(removed) - clearing), 'remove')

    def destroy(self):
        live = self.probe()
        if not live.detail['permanent']:
            return False
        self.cmd(['--permanent', '--delete-ipset=' + self.name])
        self.cmd(['--reload'])
        return live.exists

    def save_to(self, path, write_atomic, store=None):
        raise SyncError('firewalld keeps the set in its permanent configuration; persist_file is not used')


class FirewalldRules(SetRules):
    """The rule that enforces the ipset: a source of the drop zone, or a rich rule, runtime and permanent."""

    def __init__(self, adapter):
        self.adapter = adapter

    def _rich(self, target):
        family = 'ipv4' if self.adapter.family == 'inet' else 'ipv6'
        action = 'drop' if target == 'drop' else 'reject type="%s"' % (
            'icmp-port-unreachable' if family == 'ipv4' else 'icmp6-port-unreachable')
        return 'rule family="%s" source ipset="%s" %s' % (family, self.adapter.name, action)

    def _wanted(self, mode, target, zone):
        if mode == 'zone_source':
            return [('source', zone or 'drop', 'ipset:' + self.adapter.name)]
        return [('rich-rule', zone, self._rich(target))]

    def _present(self, kind, zone, value, permanent):
        args = (['--permanent'] if permanent else []) + (['--zone=' + zone] if zone else [])
        rc, _out, _err = self.adapter.run([self.adapter.bin] + args + ['--query-%s=%s' % (kind, value)])
        return rc == 0

    def _all_ours(self, zone):
        """Every binding of our ipset the other modes would make, to remove when the mode changes."""
        found = []
        for mode in ('zone_source', 'rich_rule'):
            for target in ('drop', 'reject'):
                for item in self._wanted(mode, target, zone if mode == 'rich_rule' else None):
                    if item not in found:
                        found.append(item)
        return found

    def ensure(self, rules, check_mode=False, verify=False):
        """``rules`` holds one binding (the module refuses more): its mode, target and zone. firewalld is asked
        on every run, so there is nothing else to verify."""
        if not rules:
            return self.remove(check_mode)
        return self.bind(rules[0]['mode'], rules[0]['target'], rules[0]['zone'], check_mode=check_mode)

    def remove(self, check_mode=False):
        return self.bind(None, None, None, check_mode=check_mode, remove=True)

    def bind(self, mode, target, zone, check_mode=False, remove=False):
        """Bind the ipset one way (or none, with ``remove``), runtime and permanent; the other ways go."""
        wanted = [] if remove else self._wanted(mode, target, zone)
        changes = []
        # Add before remove: a switch of mode never leaves the set unenforced.
        for kind, where, value in wanted:
            for permanent in (False, True):
                if not self._present(kind, where, value, permanent):
                    changes.append('add %s %s %s%s' % (kind, where or '(default zone)', value,
                                                       ' (permanent)' if permanent else ''))
                    if not check_mode:
                        self._set(kind, where, value, permanent, 'add')
        for kind, where, value in self._all_ours(zone):
            if (kind, where, value) in wanted:
                continue
            for permanent in (False, True):
                if self._present(kind, where, value, permanent):
                    changes.append('remove %s %s %s%s' % (kind, where or '(default zone)', value,
                                                          ' (permanent)' if permanent else ''))
                    if not check_mode:
                        self._set(kind, where, value, permanent, 'remove')
        return changes

    def _set(self, kind, zone, value, permanent, verb):
        args = (['--permanent'] if permanent else []) + (['--zone=' + zone] if zone else [])
        self.adapter.cmd(args + ['--%s-%s=%s' % (verb, kind, value)], '--%s-%s' % (verb, kind))
