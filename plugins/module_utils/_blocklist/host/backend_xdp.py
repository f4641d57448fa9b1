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
import hashlib
import importlib
import json
import os
import stat
import sys
import time

from . import bpf, xdp, xdp_attach
from .adapter import SetAdapter, SetRules, validate_while_loading
from .metrics import read_records
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

# An interface that is not there yet (a bond, a VLAN, a late driver) fails the start after every present one is
# protected; systemd then tries again, past network-pre.target, until it is there or the limit is reached.
StartLimitIntervalSec=300
StartLimitBurst=30

[Service]
Type=oneshot
RemainAfterExit=yes
Restart=on-failure
RestartSec=5
ExecStart=%(python)s -I -S -B %(dir)s/lib/restore.py %(dir)s

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
        """True when the program and maps are pinned (and now open); False when none or only part of them is (a
        run killed while pinning: the next full load pins them again); a pin that is not ours is a SyncError."""
        if self.maps.fds:
            return True
        try:
            return self.maps.open()
        except xdp.PartialPins:
            return False
        except bpf.BpfError as exc:
            raise SyncError('%s: %s' % (self.label, exc))

    def _reopen(self):
        """Open the pins again, under the pin lock: another run may have made or removed them since the probe."""
        self.maps.close(self.maps.fds.values())
        self.maps.fds = {}
        return self._open()

    def probe(self):
        self._refuse_a_second_set_of_this_family()
        if not self._open():
            return LiveInfo(False)
        with self._live_trie() as fd:
            return LiveInfo(True, count=None, fingerprint=self.fingerprint(), capacity=bpf.max_entries(fd),
                            detail={'trie_id': bpf.object_id(fd)})

    def identity(self, live):
        # Map ids start again at every boot: an id alone could name another trie after a reboot.
        return '%s/%s' % (boot_id(), live.detail.get('trie_id'))

    def incompatible(self, live):
        return None     # open() refused whatever is pinned under our names and is not ours

    def read_entries(self):
        if not self._open():
            return set()
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
        entries = desired if isinstance(desired, list) else list(desired)
        with self.pin_lock():
            trie = self._new_trie(entries, validate)
            if trie is None:
                return False
            try:
                if self._reopen():
                    self._bpf(lambda: self.maps.switch(self.version, trie), 'switch in the new trie of')
                else:
                    self._create(trie)
            finally:
                os.close(trie)
        return True

    def _new_trie(self, entries, validate):
        """The new trie's fd, filled; with ``validate`` (a first load), validated while the kernel fills it, and
        None (the trie freed) when validation says no."""
        made = []

        def load(packed):
            made.append(self._bpf(lambda: xdp.XdpMaps.new_trie(self.version, entries, packed), 'load'))

        def discard():
            for fd in made:
                os.close(fd)
            del made[:]
        if validate is None:
            load(None)
        elif not validate_while_loading(load, validate, discard):
            return None
        return made[0]

    def _create(self, trie):
        """Pin the program and its maps around ``trie``, with an empty trie for the other family."""
        other = 10 - self.version
        self._bpf(self.maps.clear_partial, 'clear what a killed run pinned for')
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
        with self.pin_lock():
            if not self._reopen():
                return False
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

    def _refuse_a_second_set_of_this_family(self):
        """One set per family and pin directory: two would share one trie, and each load would wipe the other's."""
        if not self.lock_dir:
            return
        for backend, name, record in read_records(self.lock_dir):
            if backend == self.backend and name != self.name and (record.get('fingerprint') == self.fingerprint()
                                                                  and record.get('count')):
                raise SyncError('%s: the set %s already holds the IPv%d trie of %s; one set per family (remove %s '
                                'with state=absent first, or give this one its own pin_dir)'
                                % (self.label, name, self.version, self.maps.pin_dir, name))

    def other_family_holds_entries(self):
        fd = self._bpf(lambda: self.maps.live_trie(10 - self.version), 'open')
        try:
            return bool(bpf.keys(fd, xdp.FAMILIES[10 - self.version][1], limit=1))
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def pin_lock(self):
        """Held while pins are made, switched or removed: two runs (one per family) must not both pin."""
        if not self.lock_dir:
            yield
            return
        os.makedirs(self.lock_dir, 0o700, exist_ok=True)
        # One lock per pin directory, whichever set (and family) the run syncs.
        name = 'xdp-pins-%s.lock' % hashlib.sha256(self.maps.pin_dir.encode()).hexdigest()[:12]
        with open(os.path.join(self.lock_dir, name), 'a') as handle:
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
        library = os.path.join(os.path.dirname(path), 'lib')
        os.makedirs(os.path.join(library, BOOT_PACKAGE), 0o700, exist_ok=True)
        problem = unsafe_for_root_code(os.path.dirname(path))
        if problem:
            raise OSError(errno.EPERM, 'the boot unit runs code from %s as root, and %s' % (library, problem))

    @staticmethod
    def restore_unit(save_dir):
        return RESTORE_UNIT % {'dir': save_dir, 'python': boot_python()}

    @staticmethod
    def restore_dropins(save_dir):
        return {}     # no other service's reload or restart touches XDP programs

    @staticmethod
    def restore_plugins(save_dir):
        """The boot library: the files the restore runs, as this module has them (written where save_to made
        their directory)."""
        library = os.path.join(save_dir, 'lib')
        if unsafe_for_root_code(save_dir):
            return {}       # save_to said why; nothing root runs at boot is written where others could change it
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


def boot_id():
    """This boot's id (the kernel's random boot_id), or '' where /proc does not have it."""
    try:
        with open('/proc/sys/kernel/random/boot_id') as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return ''


def boot_python():
    """The interpreter the boot unit runs: the system's, root's own, present in early boot; the module's only where
    the system has none (a venv or pyenv interpreter may be a user's, or live on a later mount)."""
    system = '/usr/bin/python3'
    try:
        info = os.stat(system)
    except OSError:
        return sys.executable
    return system if info.st_uid == 0 and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) else sys.executable


def unsafe_for_root_code(save_dir):
    """Why code under ``save_dir/lib`` could be changed by someone other than root, or None: each directory from
    the root down to it must be a directory (not a link) that root owns and that group and others cannot write
    (a sticky one, as /tmp, only where root owns what is below it)."""
    path = os.path.abspath(save_dir)
    parts = [path]
    while os.path.dirname(parts[-1]) != parts[-1]:
        parts.append(os.path.dirname(parts[-1]))
    for directory in list(reversed(parts)) + [os.path.join(path, 'lib'), os.path.join(path, 'lib', BOOT_PACKAGE)]:
        try:
            info = os.lstat(directory)
        except OSError:
            continue        # not made yet: save_to makes it, root's and 0700
        if not stat.S_ISDIR(info.st_mode):
            return '%s is not a directory' % directory
        writable = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX
        if info.st_uid != 0 or writable:
            return '%s is not root\'s alone (owner uid %d, mode %o)' % (
                directory, info.st_uid, stat.S_IMODE(info.st_mode))
    return None


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
        with self.adapter.pin_lock():
            return self._ensure([rule['interface'] for rule in rules], check_mode)

    def _ensure(self, wanted, check_mode):
        maps = self.adapter.maps
        if not self.adapter._reopen():
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
        with self.adapter.pin_lock():
            if not self.adapter._reopen() or self.adapter.other_family_holds_entries():
                return []
            try:
                return xdp_attach.detach_ours(self.run, self.ip_bin, check_mode)
            except xdp_attach.AttachError as exc:
                raise SyncError('%s: %s' % (self.adapter.label, exc))
