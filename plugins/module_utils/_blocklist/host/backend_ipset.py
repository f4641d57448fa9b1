# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The ipset adapter for the sync engine.

Every change goes to the kernel as one ``ipset restore`` batch read from a
file, never one process per address.  A full reload fills a temporary set
and ``swap``s it in, so the live set is never partly loaded or empty; a small
change adds before it deletes, so every entry of both generations stays
present while the batch runs.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import time

from .adapter import SetAdapter, validate_while_loading
from ..addresses import V4, V6
from .command_runner import tool_message
from ..files import scratch_file
from ..sync import LiveInfo, SyncError

# The kernel answers EBUSY to a swap or destroy while anyone dumps one of the
# sets involved (a monitoring 'ipset list', an admin); a dump ends in
# milliseconds to a second, so the single operation is retried, boundedly.
BUSY_RETRIES = 100
BUSY_WAIT = 0.1


def _busy(message):
    return 'Device or resource busy' in message or 'in use by a kernel component' in message


FAMILIES = {'inet': V4, 'inet6': V6}
SET_TYPES = ('hash:net', 'hash:ip')
MAX_NAME = 31  # IPSET_MAXNAMELEN - 1
MIN_MAXELEM = 65536


def _next_pow2(n):
    return 1 << max(0, (int(n) - 1).bit_length())


def size_for(count):
    """maxelem with room to grow, and a hashsize that avoids resizes on load."""
    maxelem = max(MIN_MAXELEM, _next_pow2(count * 2))
    hashsize = max(1024, _next_pow2(max(count // 2, 1)))
    return maxelem, hashsize


def validate_name(name):
    if not name or len(name) > MAX_NAME:
        return 'ipset name %r must be 1 to %d characters' % (name, MAX_NAME)
    if not all(c.isalnum() or c in '_-.:' for c in name) or not name.isascii():
        return 'ipset name %r may use only letters, digits and _ - . :' % (name,)
    return None


RESTORE_UNIT = """# Installed by fleetwall.blocklist (ipset_sync restore_unit).
# Loads the saved blocklist sets before any firewall ruleset that references
# them is restored, so those rules never point at a missing set. -exist makes
# it safe on a host whose sets are already loaded. Then puts the rules that
# enforce them at the top of their chains where they are missing; the
# drop-ins for netfilter-persistent and Docker do that again after those
# start, since a ruleset restored later replaces the chains it names.
[Unit]
Description=Restore fleetwall.blocklist ipsets and their rules
DefaultDependencies=no
Before=network-pre.target netfilter-persistent.service iptables.service ip6tables.service ufw.service firewalld.service
Wants=network-pre.target
After=local-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'rc=0; for f in %(dir)s/*.save; do [ -e "$$f" ] || continue; ipset -exist restore -file "$$f" || rc=1; done; exit $$rc'
ExecStart=%(rules)s

[Install]
WantedBy=multi-user.target
"""
# Each saved rules script, run by the unit and after the services that replace or create the chains they use.
RULES_COMMAND = """-/bin/sh -c 'for f in %s/*.rules; do [ -e "$$f" ] || continue; sh "$$f"; done'"""
RULES_DROPIN = """# Installed by fleetwall.blocklist (ipset_sync restore_unit): after %s starts, the
# blocklist's rules go back where it replaced or created the chains.
[Service]
ExecStartPost=%s
"""
DROPIN_SERVICES = ('docker.service',)
# netfilter-persistent (Debian's iptables-persistent) runs its plugins in order, with "start" for its start, restart
# and reload alike, whether systemd or an operator runs it: 15-ip4tables and 25-ip6tables restore the host's saved
# rulesets, which replace the chains the blocklist's rules were in, and this one puts them back after them.  A
# drop-in of netfilter-persistent.service would miss `netfilter-persistent reload` by hand, which the unit has no
# ExecReload for.  ipset-persistent's own plugin is 10-ipset.
NETFILTER_PERSISTENT_PLUGIN = '/usr/share/netfilter-persistent/plugins.d/45-fleetwall-ipset'
RULES_PLUGIN = """#!/bin/sh
# Installed by fleetwall.blocklist (ipset_sync restore_unit): after netfilter-persistent restored the host's
# saved rulesets, the blocklist's rules go back where those replaced the chains.
[ "$1" = start ] || exit 0
for f in %s/*.rules; do
    [ -e "$f" ] || continue
    sh "$f" || echo "fleetwall.blocklist: $f failed: the blocklist's rules are not all in place" >&2
done
exit 0
"""


# Where netfilter-persistent (Debian's iptables-persistent) and the RHEL iptables-services keep the rulesets they
# restore at boot, per family.
SAVED_RULESETS = {'inet': ('/etc/iptables/rules.v4', '/etc/sysconfig/iptables'),
                  'inet6': ('/etc/iptables/rules.v6', '/etc/sysconfig/ip6tables')}


def rules_path(persist):
    """The rules script saved beside the set's save file ``persist``."""
    return os.path.splitext(persist)[0] + '.rules'


def terse_fields(text):
    """{field: value} of ``ipset list -terse`` (Name, Type, Header, Number of entries, ...)."""
    fields = {}
    for line in text.splitlines():
        key, _sep, value = line.partition(':')
        fields[key.strip()] = value.strip()
    return fields


def create_line(name, fields):
    """The ``create`` line of ``ipset save`` from a terse listing's fields, without the per-boot initval
    (restoring a set with another set's initval fails)."""
    header = fields.get('Header', '').split()
    if 'initval' in header:
        at = header.index('initval')
        del header[at:at + 2]
    return 'create %s %s %s\n' % (name, fields.get('Type'), ' '.join(header))


class _LoadFailed(Exception):
    """A first load of the temporary set failed; its message is what ipset (or the batch file's writing) said."""


class IpsetAdapter(SetAdapter):
    backend = 'ipset'
    replaces_whole = True
    # (directory, prefix) of batch files; the engine points it into the state directory (StateStore.scratch).
    scratch = (None, 'fleetwall-ipset-')

    def __init__(self, run, ipset_bin, name, family='inet', set_type='hash:net', timeout=None):
        problem = validate_name(name)
        if problem:
            raise SyncError(problem)
        self.run = run
        self.bin = ipset_bin
        self.name = name
        self.family = family
        self.version = FAMILIES[family]
        self.set_type = set_type
        self.host_only = set_type == 'hash:ip'
        self.timeout = timeout
        self.label = 'ipset %s' % name
        # The script of the rules that enforce the set (iptables_rules.boot_script), set once they are applied:
        # save_to writes it beside the set, '' removes it, None leaves it as it is.
        self.boot_rules = None
        # A stable temporary name, so a run killed mid-load leaves one
        # leftover that the next run removes, not a growing pile.
        self.tmp_name = 'fwtmp-' + hashlib.sha1(name.encode()).hexdigest()[:12]

    def fingerprint(self):
        return {'type': self.set_type, 'family': self.family, 'timeout': self.timeout or 0}

    def _ipset(self, args, check=True):
        rc, out, err = self.run([self.bin] + args)
        if check and rc != 0:
            raise SyncError('ipset %s failed: %s' % (' '.join(args[:2]), tool_message(err, out)))
        return rc, out, err

    def _while_busy(self, args):
        """Run one ipset operation, waiting out EBUSY from a concurrent dump (never a batch: a batch that
        failed half way must not be replayed)."""
        for _attempt in range(BUSY_RETRIES):
            rc, out, err = self._ipset(args, check=False)
            if rc == 0 or not _busy(err or out):
                break
            time.sleep(BUSY_WAIT)
        return rc, tool_message(err, out)

    def _drop_tmp(self):
        """Destroy the temporary set, a leftover of a run that was killed included."""
        rc, msg = self._while_busy(['destroy', self.tmp_name])
        if rc != 0 and 'does not exist' not in msg:
            raise SyncError('cannot destroy the temporary ipset %s: %s' % (self.tmp_name, msg))

    def probe(self, name=None):
        rc, out, err = self._ipset(['list', '-terse', name or self.name], check=False)
        if rc != 0:
            if 'does not exist' in err:
                return LiveInfo(False)
            raise SyncError('cannot read ipset %s: %s' % (name or self.name, tool_message(err)))
        fields = terse_fields(out)
        header = fields.get('Header', '').split()
        opts = dict(zip(header[::2], header[1::2]))
        try:
            count = int(fields.get('Number of entries', '0'))
            capacity = int(opts.get('maxelem', MIN_MAXELEM))
        except ValueError:
            raise SyncError('unexpected output from ipset list -terse %s: %r' % (self.name, out[:200]))
        return LiveInfo(True, count=count, capacity=capacity, fingerprint={
            'type': fields.get('Type'), 'family': opts.get('family'),
            'timeout': int(opts.get('timeout', 0) or 0)},
            detail={'references': int(fields.get('References', '0') or 0)})

    def identity(self, live):
        # ipset counts its entries cheaply (list -terse), which is the check
        # the engine relies on; a set has no handle that would say more.
        return None

    def incompatible(self, live):
        if live.fingerprint.get('type') != self.set_type or live.fingerprint.get('family') != self.family:
            return ('ipset %s already exists as %s family %s, but this task manages %s family %s; '
                    'ipset cannot swap sets of different types, so it was left as it is. '
                    'Remove it (state=absent, after removing rules that use it) or pick another name.'
                    % (self.name, live.fingerprint.get('type'), live.fingerprint.get('family'),
                       self.set_type, self.family))
        if bool(live.fingerprint.get('timeout')) != bool(self.timeout):
            return ('ipset %s was created %s a timeout and this task asks %s one; the kernel cannot '
                    'change that in place, so the set was left as it is'
                    % (self.name, 'with' if live.fingerprint.get('timeout') else 'without',
                       'for' if self.timeout else 'for no'))
        return None

    def read_entries(self):
        _rc, out, _err = self._ipset(['save', self.name])
        prefix = 'add %s ' % self.name
        cut = len(prefix)
        entries = set()
        for line in out.splitlines():
            if line.startswith(prefix):
                entries.add(line[cut:].split(' ', 1)[0])
        return entries

    def _create_line(self, name, count):
        maxelem, hashsize = size_for(count)
        line = 'create %s %s family %s hashsize %d maxelem %d' % (
            name, self.set_type, self.family, hashsize, maxelem)
        if self.timeout:
            line += ' timeout %d' % self.timeout
        return line

    @staticmethod
    def _batch(verb, name, entries):
        """'verb name entry' lines, built with one join rather than a million formats."""
        if not entries:
            return ''
        head = '%s %s ' % (verb, name)
        return head + ('\n' + head).join(entries) + '\n'

    def _restore(self, chunks, exist=False, written=None):
        with scratch_file(chunks, *self.scratch) as path:
            if written is not None:
                written.set()
            rc, out, err = self.run([self.bin] + (['-exist'] if exist else []) + ['restore', '-file', path])
        return rc, tool_message(err, out)

    def apply_full(self, desired, live, validate=None):
        """Fill a temporary set and swap it in (or rename it, for a new set).

        With ``validate``, the kernel load runs in a thread while
        ``validate()`` checks the entries: the temporary set is referenced by
        no rule, so loading it before validation ends is harmless, and the
        swap happens only when validation said yes.  Returns False (nothing
        changed) when ``validate()`` returns False; re-raises its errors.
        """
        self._drop_tmp()
        load = [self._create_line(self.tmp_name, len(desired)) + '\n', self._batch('add', self.tmp_name, desired)]
        if live.exists:
            finish = None
        else:
            finish = 'rename %s %s\n' % (self.tmp_name, self.name)
        if validate is None:
            rc, msg = self._restore(load + ([finish] if finish else []))
            valid = True
        else:
            try:
                valid = validate_while_loading(lambda written: self._load_tmp(load, written), validate,
                                               self._discard_tmp)
            except _LoadFailed as failed:
                # validate_while_loading has destroyed the temporary set.
                raise self._failed_before_swap(failed)
            if not valid:
                return False
            rc, msg = self._restore([finish]) if finish else (0, '')
        if rc == 0 and finish is None:
            # The swap is the one atomic step: the live set is the old generation or the new one.
            rc, msg = self._while_busy(['swap', self.tmp_name, self.name])
        if rc != 0:
            self._discard_tmp()
            raise self._failed_before_swap(msg)
        if finish is None:
            try:
                self._drop_tmp()
            except SyncError:
                # The new generation is live; the old one, left under the temporary name, is destroyed by
                # the next full reload.
                pass
        return valid

    def _load_tmp(self, load, written):
        """Fill the temporary set; raise _LoadFailed with what went wrong."""
        try:
            rc, msg = self._restore(load, written=written)
        except (IOError, OSError) as exc:
            # The batch file could not be written (a full state directory): say which and why.
            raise _LoadFailed('%s: %s' % (exc.filename or 'batch file', exc.strerror or exc))
        if rc != 0:
            raise _LoadFailed(msg)

    def _discard_tmp(self):
        self._ipset(['destroy', self.tmp_name], check=False)

    def _failed_before_swap(self, said):
        return SyncError('full reload of ipset %s failed before the swap, live set unchanged: %s' % (self.name, said))

    def apply_incremental(self, added, removed):
        rc, msg = self._restore([self._batch('add', self.name, added), self._batch('del', self.name, removed)],
                                exist=True)
        if rc != 0:
            raise SyncError('updating ipset %s failed: %s' % (self.name, msg))

    def destroy(self):
        live = self.probe()
        if not live.exists:
            return False
        if live.detail.get('references'):
            raise SyncError('ipset %s is still referenced by %d firewall rule(s); remove them first'
                            % (self.name, live.detail['references']))
        self._ipset(['destroy', self.name])
        return True

    def saved_rulesets_naming(self):
        """The host's saved iptables rulesets (netfilter-persistent's, restored at boot) whose rules name this set.

        Such a file fails to restore as a whole once the set is gone: every rule in it is lost at the next boot.
        """
        found = []
        needle = '--match-set %s ' % self.name
        for path in SAVED_RULESETS[self.family]:
            try:
                with open(path) as handle:
                    if any(needle in line for line in handle):
                        found.append(path)
            except (IOError, OSError, UnicodeDecodeError):
                continue
        return found

    @staticmethod
    def restore_unit(save_dir):
        """The boot unit that restores every save file in ``save_dir``, then the rules of each."""
        return RESTORE_UNIT % {'dir': save_dir, 'rules': RULES_COMMAND % save_dir}

    @staticmethod
    def restore_dropins(save_dir):
        """{drop-in path relative to the unit directory: text}: the rules again after the services that create
        the chains (Docker's DOCKER-USER)."""
        return dict(('%s.d/fleetwall-ipset.conf' % service, RULES_DROPIN % (service, RULES_COMMAND % save_dir))
                    for service in DROPIN_SERVICES)

    @staticmethod
    def restore_plugins(save_dir):
        """{path: text} of the executable plugins that put the rules back after another tool restored a ruleset
        (netfilter-persistent's), installed where that tool keeps its plugins."""
        return {NETFILTER_PERSISTENT_PLUGIN: RULES_PLUGIN % shlex.quote(save_dir)}

    def save_paths(self, persist, every=False):
        """The files save_to writes for ``persist``: the set, and the script of its rules when it has rules;
        ``every`` file it may have written before (for a removal)."""
        return [persist] + ([rules_path(persist)] if every or self.boot_rules else [])

    def save_to(self, path, write_atomic, store):
        """What ``ipset save`` would write, from the set's header and the record of what was applied.

        Not ``ipset save`` itself: at a million entries it took 0.57 s, and 20 MB to read back, after every
        change. The record holds the entries the engine has just vouched for, and the terse listing gives the
        create line. An entry of a timeout set starts its full timeout again at boot.
        """
        _rc, out, _err = self._ipset(['list', '-terse', self.name])
        text = create_line(self.name, terse_fields(out)) + self._batch('add', self.name, store.load_lines())
        write_atomic(path, text.encode(), 0o600)
        if self.boot_rules:
            write_atomic(rules_path(path), self.boot_rules.encode(), 0o600)
        elif self.boot_rules is not None and os.path.exists(rules_path(path)):
            os.unlink(rules_path(path))
