# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The bpf() system call from Python's standard library: maps, the XDP program, pins.

A host needs no libbpf, no bpftool and no compiler: ctypes calls the system call with the ``union bpf_attr``
layouts of linux/bpf.h (stable kernel ABI), built here with struct. Only what the XDP backend uses is here.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

# The bpf() system call's number per architecture (asm/unistd.h). Little-endian ones only: the attributes, the
# trie keys and the shipped program are all packed little-endian (a big-endian host such as s390x would need its
# own build of the program).
SYSCALL = {'x86_64': 321, 'aarch64': 280, 'armv7l': 386, 'ppc64le': 361, 'riscv64': 280}

# Commands (enum bpf_cmd).
MAP_CREATE, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM, MAP_GET_NEXT_KEY, PROG_LOAD, OBJ_PIN, OBJ_GET = range(8)
PROG_TEST_RUN = 10
OBJ_GET_INFO_BY_FD = 15
MAP_UPDATE_BATCH, MAP_DELETE_BATCH = 26, 27

# Map and program types, flags.
MAP_TYPE_PERCPU_ARRAY, MAP_TYPE_LPM_TRIE, MAP_TYPE_ARRAY_OF_MAPS = 6, 11, 12
PROG_TYPE_XDP = 6
F_NO_PREALLOC = 1
ANY = 0

# The bpf_attr union is 144 bytes on current kernels; a larger buffer of zeros is what older fields expect.
ATTR_SIZE = 144
INSTRUCTION_SIZE = 8
LOG_SIZE = 1 << 20


class BpfError(OSError):
    """A bpf() call the kernel refused: errno, what was asked, and the verifier's log for a program; for a batch,
    ``done`` is how many elements the kernel handled before it stopped."""

    done = None


_libc = None


def _syscall():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc.syscall


def call(cmd, attr, what):
    """bpf(cmd, attr): (its return value, the attr buffer as the kernel left it); BpfError naming ``what`` else.

    The caller keeps every buffer that ``attr`` points at alive until this returns.
    """
    number = SYSCALL.get(os.uname().machine)
    if number is None:
        raise BpfError(errno.ENOSYS, 'bpf() on %s is not known to this module' % os.uname().machine)
    buffer = ctypes.create_string_buffer(bytes(attr).ljust(ATTR_SIZE, b'\0'), ATTR_SIZE)
    result = _syscall()(ctypes.c_long(number), ctypes.c_int(cmd), buffer, ctypes.c_uint(ATTR_SIZE))
    if result < 0:
        code = ctypes.get_errno()
        error = BpfError(code, '%s: %s' % (what, os.strerror(code)))
        error.attr = buffer.raw
        raise error
    return result, buffer


def address(data):
    """(buffer, its address): of ``data`` (bytes the kernel reads), or of that many zero bytes to fill. The caller
    keeps the buffer until the call is done."""
    if isinstance(data, int):
        buffer = ctypes.create_string_buffer(data)
    else:
        buffer = ctypes.create_string_buffer(bytes(data), len(data))
    return buffer, ctypes.addressof(buffer)


def create_map(map_type, key_size, value_size, max_entries, name, flags=0, inner_fd=0):
    attr = struct.pack('<IIIIIII16s', map_type, key_size, value_size, max_entries, flags, inner_fd, 0,
                       name.encode()[:15])
    return call(MAP_CREATE, attr, 'create map %s' % name)[0]


def update(fd, key, value, flags=ANY):
    key_buffer, key_at = address(key)
    value_buffer, value_at = address(value)
    call(MAP_UPDATE_ELEM, struct.pack('<IIQQQ', fd, 0, key_at, value_at, flags), 'update map element')
    del key_buffer, value_buffer


def delete(fd, key):
    key_buffer, key_at = address(key)
    try:
        call(MAP_DELETE_ELEM, struct.pack('<IIQ', fd, 0, key_at), 'delete map element')
    except BpfError as exc:
        if exc.errno != errno.ENOENT:
            raise
        return False
    del key_buffer
    return True


def lookup(fd, key, value_size):
    """The value of ``key``, or None."""
    key_buffer, key_at = address(key)
    value_buffer, value_at = address(value_size)
    try:
        call(MAP_LOOKUP_ELEM, struct.pack('<IIQQQ', fd, 0, key_at, value_at, 0), 'look up map element')
    except BpfError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    del key_buffer
    return value_buffer.raw


def keys(fd, key_size, limit=None):
    """Every key of the map (the first ``limit`` of them), by BPF_MAP_GET_NEXT_KEY from the start."""
    found = []
    key_buffer, key_at = address(key_size)
    next_buffer, next_at = address(key_size)
    current = 0     # a null key asks for the first one
    while True:
        try:
            call(MAP_GET_NEXT_KEY, struct.pack('<IIQQ', fd, 0, current, next_at), 'list map keys')
        except BpfError as exc:
            if exc.errno == errno.ENOENT:
                return found
            raise
        found.append(next_buffer.raw)
        if limit is not None and len(found) >= limit:
            return found
        ctypes.memmove(key_buffer, next_buffer, key_size)
        current = key_at


# Where the kernel writes back how many elements a batch handled (the batch struct's count).
BATCH_COUNT_AT = 32


def _batch(cmd, fd, keys_bytes, values_bytes, count, what):
    key_buffer, key_at = address(keys_bytes)
    value_buffer, value_at = address(values_bytes) if values_bytes else (None, 0)
    attr = struct.pack('<QQQQIIQQ', 0, 0, key_at, value_at, count, fd, 0, 0)
    try:
        call(cmd, attr, what)
    except BpfError as exc:
        # The kernel stops at the first element it refuses and says how many it handled before it.
        exc.done = struct.unpack_from('<I', exc.attr, BATCH_COUNT_AT)[0]
        raise
    finally:
        del key_buffer, value_buffer    # kept until the call returned: the kernel read them


def update_batch(fd, keys_bytes, values_bytes, count, what='update map elements'):
    """BPF_MAP_UPDATE_BATCH of ``count`` packed keys and values; a refusal says how many went in (``done``)."""
    _batch(MAP_UPDATE_BATCH, fd, keys_bytes, values_bytes, count, what)


def delete_batch(fd, keys_bytes, count, what='delete map elements'):
    """BPF_MAP_DELETE_BATCH of ``count`` packed keys; a key that is not there stops it (ENOENT, ``done``)."""
    _batch(MAP_DELETE_BATCH, fd, keys_bytes, None, count, what)


def load_xdp(instructions, name, license_text=b'GPL'):
    """Load an XDP program (its instructions, with the map references already set); its fd. A refusal carries the
    verifier's log."""
    insn_buffer, insn_at = address(instructions)
    license_buffer, license_at = address(license_text + b'\0')
    log_buffer, log_at = address(LOG_SIZE)
    attr = struct.pack('<IIQQIIQII16s', PROG_TYPE_XDP, len(instructions) // INSTRUCTION_SIZE, insn_at, license_at,
                       1, LOG_SIZE, log_at, 0, 0, name.encode()[:15])
    try:
        return call(PROG_LOAD, attr, 'load XDP program %s' % name)[0]
    except BpfError as exc:
        log = log_buffer.value.decode('utf-8', 'replace').strip()
        raise BpfError(exc.errno, '%s%s' % (exc.strerror, ('; the verifier said: ' + log[-2000:]) if log else ''))
    finally:
        del insn_buffer, license_buffer


def with_maps(instructions, references, fds):
    """The instructions with each map-loading instruction set to its map's fd (BPF_PSEUDO_MAP_FD)."""
    program = bytearray(instructions)
    for index, name in references:
        at = index * INSTRUCTION_SIZE
        if program[at] != 0x18:
            raise BpfError(errno.EINVAL, 'instruction %d is not a 64-bit immediate load' % index)
        program[at + 1] = (program[at + 1] & 0x0f) | (1 << 4)    # src_reg = BPF_PSEUDO_MAP_FD
        struct.pack_into('<i', program, at + 4, fds[name])
    return bytes(program)


def pin(fd, path):
    path_buffer, path_at = address(path.encode() + b'\0')
    call(OBJ_PIN, struct.pack('<QII', path_at, fd, 0), 'pin %s' % path)
    del path_buffer


def pinned(path):
    """The fd of the object pinned at ``path``, or None when nothing is."""
    path_buffer, path_at = address(path.encode() + b'\0')
    try:
        return call(OBJ_GET, struct.pack('<QII', path_at, 0, 0), 'open %s' % path)[0]
    except BpfError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    finally:
        del path_buffer


def test_run(prog_fd, packet, repeat=1):
    """(return value, average ns a run) of the program on ``packet`` (BPF_PROG_TEST_RUN): what it decides for a
    frame, without a network."""
    packet_buffer, packet_at = address(packet)
    attr = struct.pack('<IIIIQQII', prog_fd, 0, len(packet), 0, packet_at, 0, repeat, 0)
    try:
        _result, buffer = call(PROG_TEST_RUN, attr, 'test-run the program')
    finally:
        del packet_buffer
    retval, = struct.unpack_from('<I', buffer.raw, 4)
    duration, = struct.unpack_from('<I', buffer.raw, 36)
    return retval, duration


def _info(fd, size=256):
    info_buffer, info_at = address(size)
    call(OBJ_GET_INFO_BY_FD, struct.pack('<IIQ', fd, size, info_at), 'object info')
    return info_buffer.raw


def object_id(fd):
    """The kernel's id of a program or map (bpf_prog_info.id / bpf_map_info.id, both at offset 4)."""
    return struct.unpack_from('<I', _info(fd), 4)[0]


def object_type(fd):
    """The type of a program or map (bpf_prog_info.type / bpf_map_info.type, at offset 0)."""
    return struct.unpack_from('<I', _info(fd), 0)[0]


def max_entries(fd):
    """The most entries a map holds (bpf_map_info.max_entries, at offset 16)."""
    return struct.unpack_from('<I', _info(fd), 16)[0]


def map_shape(fd):
    """(type, key size, value size) of a map (bpf_map_info)."""
    map_type, _map_id, key_size, value_size = struct.unpack_from('<IIII', _info(fd), 0)
    return map_type, key_size, value_size
