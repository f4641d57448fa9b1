# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The XDP adapter for the sync engine: one family's LPM trie of the pinned XDP program (xdp.py).

Each family is one set to the engine. Both families share one program and its pins: the first set a host gets
makes them (the other family's trie empty), the other family's first load then only fills its own trie and puts it
in its slot. A full load is a new trie, filled while the old one serves, switched in by one map update; an edit
goes into the live trie, adds before deletes. The program is attached to interfaces by XdpRules, after the set
exists, and detached before it goes.

Neither an LPM trie's entry count nor its contents are cheap to read (a listing is one syscall per key): the
engine's record stands in for them, vouched for by the live trie's id, which every full load changes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib
import json
import os
import sys
import time

from . import bpf, xdp, xdp_attach
from .adapter import SetAdapter, SetRules
from .xdp_boot import HEADER
from ..sync import LiveInfo, SyncError

TYPES = {'ipv4_addr': 4, 'ipv6_addr': 6}
# What the boot unit runs, copied beside the save files: it imports these by their names in one package.
BOOT_PACKAGE = 'fleetwall_xdp'
BOOT_FILES = ('__init__', 'bpf', 'xdp_program', 'xdp', 'xdp_attach', 'command_runner', 'xdp_boot')
BOOT_LAUNCHER = """# Installed by fleetwall.blocklist (xdp_set_sync restore_unit): runs the XDP restore with the files beside it.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetwall_xdp.xdp_boot import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
"""
RESTORE_UNIT = """# Installed by fleetwall.blocklist (xdp_set_sync restore_unit).
# Pins the XDP program and its tries again from the save files in %(dir)s, and attaches it to the interfaces
# they name, before the network comes up. Early boot, as nftables.service: without DefaultDependencies=no it
# would wait for sysinit.target while ordered before network-pre.target, a cycle with the network's own units.
[Unit]
Description=Restore fleetwall.blocklist XDP program and tries
DefaultDependencies=no
After=local-fs.target sys-fs-bpf.mount systemd-udev-settle.service
Wants=network-pre.target
Before=network-pre.target shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=%(python)s -I -B %(dir)s/lib/restore.py %(dir)s

[Install]
WantedBy=multi-user.target
"""
PIN_LOCK_TIMEOUT = 60


class XdpAdapter(SetAdapter):
    """One family's trie of the XDP program pinned under ``pin_dir``."""

    backend = 'xdp'

    def __init__(self, name, elem_type='ipv4_addr', pin_dir=xdp.PIN_DIR, interfaces=(), mode='auto', lock_dir=None):
        if elem_type not in TYPES:
            raise SyncError('type must be one of %s' % ', '.join(sorted(TYPES)))
        self.name, self.version, self.host_only = name, TYPES[elem_type], False
        self.label = 'XDP IPv%d trie %s' % (self.version, name)
        self.maps = xdp.XdpMaps(pin_dir)
        self.interfaces, self.mode = list(interfaces), mode
        self.lock_dir = lock_dir
        self.warnings = []

    def fingerprint(self):
        return {'type': 'lpm_trie', 'family': 'ipv%d' % self.version, 'pin_dir': self.maps.pin_dir}

    # -- the live trie -------------------------------------------------------------------------------------------

    def _open(self):
        """True when the program and maps are pinned (and open); a pin that is not ours is a SyncError."""
        if self.maps.fds:
            return True
        try:
            return self.maps.open()
        except bpf.BpfError as exc:
            raise SyncError('%s: %s' % (self.label, exc))

    def probe(self):
        if not self._open():
            return LiveInfo(False)
        with self._live_trie() as fd:
            return LiveInfo(True, count=None, fingerprint=self.fingerprint(), capacity=bpf.max_entries(fd),
                            detail={'trie_id': bpf.object_id(fd)})

    def identity(self, live):
        return live.detail.get('trie_id')

    def incompatible(self, live):
        return None     # open() refused whatever is pinned under our names and is not ours

    def read_entries(self):
        return self._bpf(lambda: self.maps.entries(self.version), 'list')

    @contextlib.contextmanager
    def _live_trie(self):
        fd = self._bpf(lambda: self.maps.live_trie(self.version), 'open')
        try:
            yield fd
        finally:
            os.close(fd)

    def _bpf(self, step, what):
        try:
            return step()
        except bpf.BpfError as exc:
            raise SyncError('%s: cannot %s: %s' % (self.label, what, exc))

    # -- changes -------------------------------------------------------------------------------------------------

    def apply_full(self, desired, live, validate=None):
        """A new trie, filled, then switched in (or, on a host with nothing pinned, pinned with the program)."""
        if validate is not None and not validate():
            return False
        entries = list(desired)
        with self.pin_lock():
            trie = self._bpf(lambda: xdp.XdpMaps.new_trie(self.version, entries), 'load')
            try:
                if self._open():
                    self._bpf(lambda: self.maps.switch(self.version, trie), 'switch in the new trie of')
                else:
                    self._create(trie)
            finally:
                os.close(trie)
        return True

    def _create(self, trie):
        """Pin the program and its maps around ``trie``, with an empty trie for the other family."""
        other = 10 - self.version
        empty = self._bpf(lambda: xdp.XdpMaps.new_trie(other, []), 'make the IPv%d trie for' % other)
        try:
            self._bpf(lambda: self.maps.create({self.version: trie, other: empty}), 'pin the program and maps of')
        finally:
            os.close(empty)

    def apply_incremental(self, added, removed):
        added, removed = list(added), list(removed)
        try:
            self.maps.edit(self.version, added, removed)
        except bpf.BpfError as exc:
            if exc.errno not in (errno.ENOSPC, errno.E2BIG):
                raise SyncError('%s: cannot update: %s' % (self.label, exc))
            # Adds go in before deletes, so a change may pass the trie's fixed size on the way even when its end
            # fits: the whole generation then goes into a new trie, sized again.
            entries = (self.read_entries() - set(removed)) | set(added)
            self.apply_full(entries, None)

    def destroy(self):
        """Empty this family's trie; unpin everything once neither family holds an entry (the rules detached
        the program before). True when there was a trie."""
        if not self._open():
            return False
        with self.pin_lock():
            empty = self._bpf(lambda: xdp.XdpMaps.new_trie(self.version, []), 'make an empty trie for')
            try:
                self._bpf(lambda: self.maps.switch(self.version, empty), 'empty')
            finally:
                os.close(empty)
            if not self.other_family_holds_entries():
                self.maps.close(self.maps.fds.values())
                self.maps.fds = {}
                self.maps.unpin()
                _remove_empty_dir(self.maps.pin_dir)
        return True

    def other_family_holds_entries(self):
        fd = self._bpf(lambda: self.maps.live_trie(10 - self.version), 'open')
        try:
            return bool(next(iter(bpf.keys(fd, xdp.FAMILIES[10 - self.version][1])), None))
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def pin_lock(self):
        """Held while pins are made, switched or removed: two runs (one per family) must not both pin."""
        if not self.lock_dir:
            yield
            return
        os.makedirs(self.lock_dir, 0o700, exist_ok=True)
        with open(os.path.join(self.lock_dir, 'xdp-pins.lock'), 'a') as handle:
            deadline = time.monotonic() + PIN_LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SyncError('%s: another run held the XDP pins lock for %d s'
                                        % (self.label, PIN_LOCK_TIMEOUT))
                    time.sleep(0.05)
            yield

    # -- persistence ---------------------------------------------------------------------------------------------

    def save_to(self, path, write_atomic, store):
        """The save file: a header the boot unit reads (family, pins, interfaces, mode), then the entries; and the
        boot library beside it."""
        header = {'version': self.version, 'pin_dir': self.maps.pin_dir, 'interfaces': self.interfaces,
                  'mode': self.mode}
        lines = [HEADER + json.dumps(header, sort_keys=True) + '\n'] + [line + '\n' for line in store.load_lines()]
        write_atomic(path, ''.join(lines).encode(), 0o600)
        os.makedirs(os.path.join(os.path.dirname(path), 'lib', BOOT_PACKAGE), 0o700, exist_ok=True)

    @staticmethod
    def restore_unit(save_dir):
        return RESTORE_UNIT % {'dir': save_dir, 'python': sys.executable or '/usr/bin/python3'}

    @staticmethod
    def restore_dropins(save_dir):
        return {}     # no other service's reload or restart touches XDP programs

    @staticmethod
    def restore_plugins(save_dir):
        """The boot library: the files the restore runs, as this module has them (written where save_to made
        their directory)."""
        library = os.path.join(save_dir, 'lib')
        files = {os.path.join(library, 'restore.py'): BOOT_LAUNCHER}
        for name in BOOT_FILES:
            files[os.path.join(library, BOOT_PACKAGE, name + '.py')] = _boot_source(name)
        return files


def _boot_source(name):
    """The source of one of this package's files, from wherever its loader has it (a file, or Ansible's zip)."""
    if name == '__init__':
        return ''
    full = __name__.rpartition('.')[0] + '.' + name
    module = importlib.import_module(full)
    return module.__loader__.get_source(full)


def _remove_empty_dir(path):
    try:
        os.rmdir(path)
    except OSError:
        pass


class XdpRules(SetRules):
    """Where the program runs: attached to ``interfaces`` after the set exists, detached before it goes."""

    def __init__(self, run, ip_bin, adapter):
        self.run, self.ip_bin, self.adapter = run, ip_bin, adapter
        self.modes = {}

    def ensure(self, rules, check_mode=False, verify=False):
        wanted = [rule['interface'] for rule in rules]
        maps = self.adapter.maps
        if not self.adapter._open():
            # Check mode on a host with nothing pinned yet: everything would be attached.
            self.modes = dict((name, self.adapter.mode) for name in wanted)
            return ['attach on %s (%s mode)' % (name, self.adapter.mode) for name in wanted]
        program_id = bpf.object_id(maps.fds[xdp.PROGRAM])
        try:
            changes, self.modes = xdp_attach.apply(self.run, self.ip_bin, maps.program_path, program_id, wanted,
                                                   self.adapter.mode, check_mode)
        except xdp_attach.AttachError as exc:
            raise SyncError('%s: %s' % (self.adapter.label, exc))
        return changes

    def report(self):
        return {'attached': self.modes}

    def remove(self, check_mode=False):
        """Detach the program, unless the other family's trie still holds entries (it still has work)."""
        if not self.adapter._open() or self.adapter.other_family_holds_entries():
            return []
        try:
            return xdp_attach.detach_ours(self.run, self.ip_bin, check_mode)
        except xdp_attach.AttachError as exc:
            raise SyncError('%s: %s' % (self.adapter.label, exc))
