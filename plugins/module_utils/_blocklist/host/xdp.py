# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The XDP program's maps and program, pinned in bpffs: what the XDP backend keeps in the kernel.

Per family, the program reads an LPM trie through a one-slot ARRAY_OF_MAPS (src/xdp/fleetwall_xdp.c). A new
generation is a new trie, filled while the old one serves, then put in the slot by one map update: a packet sees
the old trie or the new one, never a half-filled one. A change small enough to edit in place goes into the live
trie, adds before deletes. The slot, the drop counters and the program are pinned under one directory, so a later
run opens them by path; the live trie is found through the slot (the kernel gives its id).
"""

from __future__ import annotations

import errno
import os
import queue
import socket
import struct
import threading

from . import bpf
from . import xdp_program

PIN_DIR = '/sys/fs/bpf/fleetwall'
PROGRAM = 'fleetwall_xdp'
SLOT = struct.pack('<I', 0)
# The least room a new trie is made with, and how much more than its entries: a trie's size is fixed when it is
# made, and adds past it fail (the engine then loads a new generation, sized again).
MIN_CAPACITY = 65536
HEADROOM = 2
# Per family: the outer map's name (as the program names it), the trie's key size and its address length.
FAMILIES = {4: ('fleetwall_v4', 8, 4, socket.AF_INET), 6: ('fleetwall_v6', 20, 16, socket.AF_INET6)}
DROPS = 'fleetwall_drops'
# What is pinned, in the order a run pins it: the program last, once its maps are.
PINNED = tuple(FAMILIES[version][0] for version in sorted(FAMILIES)) + (DROPS, PROGRAM)
DROPS_VALUE = 16        # struct drops: packets, bytes
LISTED = b'\x01'
BPF_MAP_GET_FD_BY_ID = 14
# Entries a batch of a large fill: packed while the kernel takes the batch before.
FILL_CHUNK = 1 << 16
# (type, key size, value size) of each pinned map.
EXPECTED_SHAPES = dict([(FAMILIES[v][0], (bpf.MAP_TYPE_ARRAY_OF_MAPS, 4, 4)) for v in FAMILIES]
                       + [(DROPS, (bpf.MAP_TYPE_PERCPU_ARRAY, 4, DROPS_VALUE))])


def capacity_for(count):
    return max(MIN_CAPACITY, count * HEADROOM)


def trie_key(version, entry):
    """The LPM trie key of an entry (``192.0.2.0/24``, ``2001:db8::1``): prefix length, then the address.

    The entries are canonical (no host bits): the sync engine has checked them before they get here.
    """
    address, _sep, length = entry.partition('/')
    _name, _key_size, size, family = FAMILIES[version]
    return struct.pack('<I', int(length) if length else size * 8) + socket.inet_pton(family, address)


def pack_keys(version, entries):
    """The trie keys of ``entries``, end to end: trie_key's, in one loop with its lookups bound (a million keys
    cost a tenth of a second less than through trie_key)."""
    _name, _key_size, size, family = FAMILIES[version]
    pack, full = struct.Struct('<I%ds' % size).pack, size * 8
    address_bytes = socket.inet_aton if version == 4 else (lambda text: socket.inet_pton(family, text))
    keys = []
    append = keys.append
    for entry in entries:
        address, slash, length = entry.partition('/')
        append(pack(int(length) if slash else full, address_bytes(address)))
    return b''.join(keys)


def entry_of(version, key):
    """The canonical text of a trie key (a /32 or /128 as the bare address)."""
    _name, _key_size, size, family = FAMILIES[version]
    length, = struct.unpack_from('<I', key)
    address = socket.inet_ntop(family, key[4:4 + size])
    return address if length == size * 8 else '%s/%d' % (address, length)


def map_fd_by_id(map_id):
    return bpf.call(BPF_MAP_GET_FD_BY_ID, struct.pack('<I', map_id), 'open map %d' % map_id)[0]


class XdpMaps(object):
    """The pinned program and maps under ``pin_dir``: created by ``create``, opened by ``open``."""

    def __init__(self, pin_dir=PIN_DIR):
        self.pin_dir = pin_dir
        self.fds = {}

    def path(self, name):
        return os.path.join(self.pin_dir, name)

    @property
    def program_path(self):
        return self.path(PROGRAM)

    def open(self):
        """True when the program and its maps are pinned (and now open), False when none of them is."""
        found = {}
        try:
            for name in PINNED:
                found[name] = bpf.pinned(self.path(name))
            missing = [name for name, fd in found.items() if fd is None]
            if len(missing) == len(found):
                return False
            if missing:
                raise PartialPins(errno.ENOENT, '%s holds part of the XDP backend (%s missing): a full run pins it '
                                                'again' % (self.pin_dir, ', '.join(sorted(missing))))
            check_pinned(found)
        except BaseException:
            self.close(found.values())
            raise
        self.fds = found
        return True

    def create(self, tries):
        """Make the maps and the program around ``tries`` ({version: trie fd}) and pin them all; on failure,
        nothing this call made is left pinned (and nothing another run pinned is touched)."""
        os.makedirs(self.pin_dir, 0o700, exist_ok=True)
        os.chmod(self.pin_dir, 0o700)
        fds, pinned = {}, []
        try:
            for version, (name, _key_size, _size, _family) in FAMILIES.items():
                fds[name] = bpf.create_map(bpf.MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 1, name, inner_fd=tries[version])
                bpf.update(fds[name], SLOT, struct.pack('<I', tries[version]))
            fds[DROPS] = bpf.create_map(bpf.MAP_TYPE_PERCPU_ARRAY, 4, DROPS_VALUE, 2, DROPS)
            program = bpf.with_maps(xdp_program.INSTRUCTIONS, xdp_program.MAP_REFERENCES, fds)
            fds[PROGRAM] = bpf.load_xdp(program, PROGRAM)
            for name in PINNED:
                bpf.pin(fds[name], self.path(name))
                pinned.append(name)
        except BaseException:
            self.close(fds.values())
            self.unpin(pinned)
            raise
        self.fds = fds

    def clear_partial(self):
        """Unpin what a run killed while pinning left (PartialPins), once each pin is checked to be of the kind we
        pin: another tool's object under one of our names is refused, never removed."""
        for name in PINNED:
            fd = bpf.pinned(self.path(name))
            if fd is None:
                continue
            try:
                if name == PROGRAM:
                    ours = bpf.object_type(fd) == bpf.PROG_TYPE_XDP
                else:
                    ours = bpf.map_shape(fd) == EXPECTED_SHAPES[name]
            finally:
                os.close(fd)
            if not ours:
                raise bpf.BpfError(errno.EINVAL, '%s is not the XDP backend\'s %s: remove it by hand' % (name, name))
            self.unpin([name])

    def unpin(self, names=None):
        """Remove the pins (the kernel frees what nothing else holds)."""
        for name in PINNED if names is None else names:
            try:
                os.unlink(self.path(name))
            except FileNotFoundError:
                pass

    @staticmethod
    def close(fds):
        for fd in fds:
            if fd is not None:
                os.close(fd)

    @staticmethod
    def new_trie(version, entries, packed=None):
        """A new trie holding ``entries``, sized for them with room to grow; its fd. ``packed`` (an Event) is set
        once the keys are packed, before the kernel fills the trie (a system call, without the GIL)."""
        name, key_size, _size, _family = FAMILIES[version]
        fd = bpf.create_map(bpf.MAP_TYPE_LPM_TRIE, key_size, 1, capacity_for(len(entries)), name + '_t',
                            bpf.F_NO_PREALLOC)
        try:
            fill(fd, version, entries, packed)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def switch(self, version, trie_fd):
        """Put ``trie_fd`` in the family's slot: one map update, so a packet sees the old trie or this one."""
        bpf.update(self.fds[FAMILIES[version][0]], SLOT, struct.pack('<I', trie_fd))

    def live_trie(self, version):
        """An fd of the trie the program reads now (the kernel gives its id through the slot)."""
        value = bpf.lookup(self.fds[FAMILIES[version][0]], SLOT, 4)
        if value is None:
            raise bpf.BpfError(errno.ENOENT, 'the IPv%d slot of %s holds no trie' % (version, self.pin_dir))
        return map_fd_by_id(struct.unpack('<I', value)[0])

    def entries(self, version):
        fd = self.live_trie(version)
        try:
            return set(entry_of(version, key) for key in bpf.keys(fd, FAMILIES[version][1]))
        finally:
            os.close(fd)

    def edit(self, version, added, removed):
        """Add, then remove, in the live trie."""
        fd = self.live_trie(version)
        try:
            fill(fd, version, added)
            remove(fd, version, removed)
        finally:
            os.close(fd)

    def drops(self):
        """{4: (packets, bytes), 6: (packets, bytes)}: the program's counters, summed over the CPUs."""
        cpus = possible_cpus()
        counted = {}
        for index, version in enumerate(sorted(FAMILIES)):
            raw = bpf.lookup(self.fds[DROPS], struct.pack('<I', index), DROPS_VALUE * cpus)
            counted[version] = tuple(sum(struct.unpack_from('<Q', raw, DROPS_VALUE * cpu + field)[0]
                                         for cpu in range(cpus)) for field in (0, 8))
        return counted


def fill(fd, version, entries, packed=None):
    """Put ``entries`` in the trie ``fd``, by BPF_MAP_UPDATE_BATCH; a full trie says so.

    Past FILL_CHUNK entries the keys are packed a chunk at a time while a second thread hands the chunks packed
    before to the kernel: the kernel's part, the longer one, runs without the GIL, so the packing (and whatever the
    caller does once ``packed`` is set after the first chunk) is hidden behind it.
    """
    if not entries:
        return
    entries = entries if isinstance(entries, (list, tuple)) else list(entries)
    if len(entries) <= FILL_CHUNK:
        keys = pack_keys(version, entries)
        if packed is not None:
            packed.set()
        _fill_batch(fd, version, keys, len(entries), 0, len(entries))
        return
    chunks, failure = queue.Queue(maxsize=4), []

    def kernel_fill():
        done = 0
        for keys, count in iter(chunks.get, None):
            if not failure:
                try:
                    _fill_batch(fd, version, keys, count, done, len(entries))
                except bpf.BpfError as exc:
                    failure.append(exc)
                done += count
    filler = threading.Thread(target=kernel_fill)
    filler.start()
    try:
        for start in range(0, len(entries), FILL_CHUNK):
            part = entries[start:start + FILL_CHUNK]
            chunks.put((pack_keys(version, part), len(part)))
            if packed is not None:
                packed.set()
            if failure:
                break
    finally:
        chunks.put(None)
        filler.join()
    if failure:
        raise failure[0]


def _fill_batch(fd, version, keys, count, before, total):
    """One batch of ``count`` keys, ``before`` entries of ``total`` already in."""
    try:
        bpf.update_batch(fd, keys, LISTED * count, count, 'fill the IPv%d trie' % version)
    except bpf.BpfError as exc:
        if exc.errno in (errno.ENOSPC, errno.E2BIG):
            raise bpf.BpfError(exc.errno, 'the IPv%d trie is full after %s of %d entries (its size is fixed when it '
                                          'is made: a new generation is sized again)'
                                          % (version, before + (exc.done or 0), total))
        raise


def remove(fd, version, entries):
    """Take ``entries`` out of the trie ``fd``: one batch; one at a time past an entry that is not there (a batch
    stops at the first missing key, and the rest would stay listed)."""
    if not entries:
        return
    keys = [trie_key(version, entry) for entry in entries]
    try:
        bpf.delete_batch(fd, b''.join(keys), len(keys), 'remove from the IPv%d trie' % version)
    except bpf.BpfError as exc:
        if exc.errno != errno.ENOENT:
            raise
        for key in keys[exc.done or 0:]:
            bpf.delete(fd, key)


class PartialPins(bpf.BpfError):
    """Some of the backend's pins are there and some are not: what a run killed while pinning leaves."""


def check_pinned(fds):
    """Refuse pins that are not what this backend pins (another tool's objects under our names)."""
    for name, (map_type, key_size, value_size) in EXPECTED_SHAPES.items():
        found = bpf.map_shape(fds[name])
        if found != (map_type, key_size, value_size):
            raise bpf.BpfError(errno.EINVAL, '%s is not the XDP backend\'s %s (type, key and value sizes %r)'
                                             % (name, name, found))
    if bpf.object_type(fds[PROGRAM]) != bpf.PROG_TYPE_XDP:
        raise bpf.BpfError(errno.EINVAL, '%s is not an XDP program' % PROGRAM)


def possible_cpus():
    """How many CPUs a per-CPU map has values for: the kernel's possible CPUs (/sys/devices/system/cpu/possible)."""
    with open('/sys/devices/system/cpu/possible') as handle:
        text = handle.read().strip()
    count = 0
    for part in text.split(','):
        first, _sep, last = part.partition('-')
        count += int(last or first) - int(first) + 1
    return count
