# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Monotonic request counters from nginx's per-tier access logs (one line per request blocked or challenged).

Each run counts only the bytes appended since the last one: a state file keeps, per tier, the log's path, the
(st_dev, st_ino) of the file counted, the byte offset counted up to, the total so far, and the sha256 of the file's
first bytes counted (at most HEAD_BYTES).  That digest tells the file counted from a new one that got its inode
number once it was removed (two rotations between runs can do that), and from the same file truncated and written
past the old offset again: (dev, ino) and the size alone would resume in the middle of another file.  Only complete
lines (ending in a newline) are counted, and the offset stops just after the last one, so a line nginx is still
writing is counted by the next run.  At most ``max_bytes`` are read per log and run: a backlog is caught up over
several runs, so the counter lags but never lies.

Rotation, as Debian's logrotate does it for nginx (daily, ``delaycompress``): the log is renamed to ``<log>.1``, left
uncompressed for a day, and nginx reopens a new file at the path.  When the file at the path is not the one counted,
its tail is counted at ``<log>.1`` (only there: a compressed file is never read) before the new file is counted from
its start.  When the counted file is no longer at ``<log>.1`` either (two rotations between runs, or another scheme),
the lines it got between the last run and its rotation are lost: the new file is counted from its start, and the
loss is reported.  A file of the counted inode that is shorter than the offset or begins with other bytes
(``copytruncate``, or a reused inode number) is counted from its start; what was written between the last run and a
truncation went to the copy and is lost too.  Lines nginx writes into ``<log>.1`` after it was counted there (in the
moment between the rename and nginx's reopening) are lost as well.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat

from ..files import open_regular, path_problem, write_atomic

CHUNK = 1024 * 1024
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
# Where logrotate with delaycompress leaves the previous log, uncompressed.
ROTATED_SUFFIX = '.1'
STATE_VERSION = 1
# A state of a few tiers is a few hundred bytes; anything near this is not ours.
MAX_STATE_BYTES = 1024 * 1024
# The first bytes of a log hold its first lines' times and addresses: enough to tell two logs apart.
HEAD_BYTES = 4096
FILE_KINDS = ((stat.S_ISLNK, 'a symlink'), (stat.S_ISDIR, 'a directory'), (stat.S_ISFIFO, 'a FIFO'),
              (stat.S_ISSOCK, 'a socket'), (stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'))


class NotRegular(Exception):
    """The log path holds something other than a regular file; it is never opened."""


def count_requests(logs, state_path, check_mode=False, max_bytes=DEFAULT_MAX_BYTES):
    """Count the complete lines appended to each log since the last call; ``(totals, problems)``.

    ``logs`` is {tier: log path}; ``totals`` is {tier: lines counted since the counter began} for every tier given;
    ``problems`` is a list of short texts, each naming a path and why, for the caller to warn with.  The state is
    saved to ``state_path`` (0600, atomically) unless ``check_mode``, which returns what the counts would be.  Tiers
    not given are dropped from the state.

    A missing log (nginx has not logged yet) keeps its total and is no problem; a log that was counted and is gone,
    not at ``<log>.1`` either, is reported once, as lines lost.  A path that is not a regular file
    (a symlink, a FIFO, a directory, a device) is never opened: it keeps its total and is reported, as is a log that
    cannot be read.  A tier whose log path changed keeps its total and counts the new file from its start, as a first
    count does.

    A state file that cannot be read or is corrupt is reported ("state reset") and every counter starts over at 0,
    its offset at the current end of its log: the lines counted before cannot be told from the others, and counting
    them again would make the counter lie, where a reset is what Prometheus' rate() and increase() expect.
    """
    if max_bytes < 1:
        raise ValueError('max_bytes must be at least 1, not %r' % (max_bytes,))
    problems = []
    saved, state_problem = read_state(state_path)
    if state_problem:
        problems.append(state_problem)
    tiers = {}
    for tier in sorted(logs):
        if saved is None:
            tiers[tier], tier_problems = _start_at_end(logs[tier])
        else:
            tiers[tier], tier_problems = _count_tier(logs[tier], saved.get(tier), max_bytes)
        problems.extend(tier_problems)
    if not check_mode:
        problems.extend(_save_state(state_path, tiers))
    return dict((tier, entry['total']) for tier, entry in tiers.items()), problems


def read_state(state_path):
    """``({tier: entry}, None)`` from the state file ({} when there is none), or ``(None, problem)`` when it cannot be
    read or is not a state this module wrote."""
    try:
        with open_regular(state_path) as handle:
            data = handle.read(MAX_STATE_BYTES + 1)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return {}, None
        return None, _state_reset(state_path, exc.strerror or str(exc))
    if len(data) > MAX_STATE_BYTES:
        return None, _state_reset(state_path, 'it is larger than %d bytes' % MAX_STATE_BYTES)
    try:
        document = json.loads(data.decode('utf-8'))
    except ValueError as exc:     # UnicodeDecodeError is a ValueError too
        return None, _state_reset(state_path, 'it is not JSON (%s)' % exc)
    tiers = document.get('tiers') if isinstance(document, dict) and document.get('version') == STATE_VERSION else None
    if not isinstance(tiers, dict) or not all(_valid_entry(entry) for entry in tiers.values()):
        return None, _state_reset(state_path, 'it is not a request count state of version %d' % STATE_VERSION)
    return tiers, None


def _state_reset(state_path, why):
    return ('%s cannot be used: %s; state reset: every request counter starts over at 0 from the current end of its '
            'log' % (state_path, why))


def _valid_entry(entry):
    if not isinstance(entry, dict) or not isinstance(entry.get('path'), str):
        return False
    if not (_is_count(entry.get('offset')) and _is_count(entry.get('total'))):
        return False
    head = entry.get('head')
    if head is not None and not (isinstance(head, str) and len(head) == 64):
        return False
    identity = (entry.get('dev'), entry.get('ino'))
    return identity == (None, None) or all(_is_count(number) for number in identity)


def _is_count(value):
    # JSON's true is an int to Python; it is no count.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _entry(path, total, identity=(None, None), offset=0, head=None):
    """A tier's state: its log, the file counted (None, None before there was one), where the count stopped, the
    digest of the file's first bytes counted (None when they could not be read)."""
    return {'path': path, 'dev': identity[0], 'ino': identity[1], 'offset': offset, 'total': total, 'head': head}


def _identity(info):
    return info.st_dev, info.st_ino


def _regular_stat(path):
    """The lstat of the regular file at ``path``, None when nothing is there; NotRegular for anything else.

    lstat, not stat: a symlink is refused rather than followed, so the module reads only what nginx writes.
    """
    why = path_problem(path)
    if why:
        raise NotRegular(why)
    try:
        info = os.lstat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in FILE_KINDS if test(info.st_mode)), 'not a regular file')
        raise NotRegular('it is %s, not a regular file' % kind)
    return info


def _start_at_end(path):
    """A tier's state after a state reset: total 0 from the log's current end, so no line is counted twice."""
    try:
        info = _regular_stat(path)
    except NotRegular as exc:
        return _entry(path, 0), ['%s was not read: %s' % (path, exc)]
    except OSError as exc:
        return _entry(path, 0), ['%s cannot be looked at: %s' % (path, exc.strerror or exc)]
    if info is None:
        return _entry(path, 0), []
    try:
        with _open_same(path, _identity(info)) as handle:
            head = _head_digest(handle, info.st_size)
    except (IOError, OSError):
        # Without its head the file is known by its inode and size alone, which still counts no old line again.
        head = None
    return _entry(path, 0, _identity(info), info.st_size, head), []


def _count_tier(path, entry, max_bytes):
    """``(entry, problems)``: the tier's state after counting its log, or the state as it was when it cannot be."""
    if entry is None or entry['path'] != path:
        entry = _entry(path, entry['total'] if entry else 0)
    try:
        return _count_log(path, entry, max_bytes)
    except NotRegular as exc:
        return entry, ['%s was not read: %s' % (path, exc)]
    except (IOError, OSError) as exc:
        return entry, ['%s cannot be counted: %s' % (exc.filename or path, exc.strerror or exc)]


def _count_log(path, entry, max_bytes):
    """Count the rotated file's tail when the counted file was rotated, then the file at ``path``."""
    current = _regular_stat(path)
    counted = (entry['dev'], entry['ino'])
    total, offset, head, budget, problems = entry['total'], entry['offset'], entry['head'], max_bytes, []
    if counted != (None, None) and not _is_counted_file(path, current, entry):
        rotated = path + ROTATED_SUFFIX
        if current is not None and _identity(current) == counted:
            pass        # truncated (copytruncate) or a reused inode number: the file at the path, from its start
        elif _is_counted_file(rotated, _rotated_stat(rotated), entry):
            lines, offset, head, used, at_end = _count_lines(rotated, counted, offset, budget)
            total, budget = total + lines, budget - used
            if not at_end:
                # The budget ran out in the rotated file: the next run goes on there, then counts the new file.
                return _entry(path, total, counted, offset, head), problems
        else:
            problems.append('%s is no longer the file counted before, and that file is not at %s (rotated twice, '
                            'or removed): the requests it logged since the last count are lost' % (path, rotated))
        counted, offset, head = (None, None), 0, None
    if current is None:
        return _entry(path, total, counted, offset, head), problems
    if counted == (None, None):
        counted = _identity(current)
    lines, offset, head, _used, _at_end = _count_lines(path, counted, offset, budget)
    return _entry(path, total + lines, counted, offset, head), problems


def _rotated_stat(rotated):
    """The lstat of the regular file at ``rotated``, or None: anything else there is not the log."""
    try:
        return _regular_stat(rotated)
    except (NotRegular, OSError):
        return None


def _is_counted_file(path, info, entry):
    """Whether ``info`` (an lstat of ``path``) is the file ``entry`` counted: that dev and inode, at least as long as
    the offset, and beginning with the bytes counted."""
    counted = (entry['dev'], entry['ino'])
    if info is None or _identity(info) != counted or info.st_size < entry['offset']:
        return False
    if entry['head'] is None:
        return True
    with _open_same(path, counted) as handle:
        return _head_digest(handle, entry['offset']) == entry['head']


def _open_same(path, counted):
    """``open_regular(path)``, refusing a file other than the one looked at (``counted``: its dev and inode), such as
    a FIFO or a link swapped in since."""
    handle = open_regular(path)
    if _identity(os.fstat(handle.fileno())) != tuple(counted):
        handle.close()
        raise OSError(errno.EAGAIN, 'it was replaced while it was being opened; it is counted next time', path)
    return handle


def _head_digest(handle, offset):
    """The sha256 of the file's first bytes up to ``offset`` (at most HEAD_BYTES): bytes nginx wrote, which
    appending never changes."""
    handle.seek(0)
    return hashlib.sha256(handle.read(min(offset, HEAD_BYTES))).hexdigest()


def _count_lines(path, counted, offset, budget):
    """``(lines, offset, head, bytes read, at end)``: the complete lines of the file ``counted`` at ``path`` from
    ``offset``, reading at most ``budget`` bytes; the offset returned is just after the last newline counted, the
    head is the digest of the file's first bytes up to there."""
    with _open_same(path, counted) as handle:
        handle.seek(offset)
        lines, counted_to, position, at_end = 0, offset, offset, False
        while position - offset < budget:
            chunk = handle.read(min(CHUNK, budget - (position - offset)))
            if not chunk:
                at_end = True
                break
            newlines = chunk.count(b'\n')
            if newlines:
                lines += newlines
                counted_to = position + chunk.rindex(b'\n') + 1
            position += len(chunk)
        if not lines and not at_end:
            # One line longer than the whole budget: step over the part read, or the count would never move on.
            # Its newline, when it comes, counts it; nothing is counted twice.
            counted_to = position
        return lines, counted_to, _head_digest(handle, counted_to), position - offset, at_end


def _save_state(state_path, tiers):
    """Write the state (0600, atomically); the problems, none when it was written.

    A state not written is no lie: the next run counts again from the last state written.
    """
    document = {'version': STATE_VERSION, 'tiers': tiers}
    data = (json.dumps(document, indent=1, sort_keys=True) + '\n').encode('utf-8')
    try:
        write_atomic(state_path, data, 0o600)
    except (IOError, OSError) as exc:
        return ['the request counts could not be saved to %s: %s; the next run counts from the last state saved'
                % (exc.filename or state_path, exc.strerror or exc)]
    return []
