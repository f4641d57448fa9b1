# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Files written so that a reader never sees half of one, and locks with a deadline."""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
import time


def write_atomic(path, data, mode=0o644):
    """Write beside the target, fsync, then rename over it."""
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp-')
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not exc.filename:
            # A write into a full disk names no file; the operator needs to know which one.
            raise OSError(exc.errno, exc.strerror, path)
        raise


def ensure_unit(path, text, check_mode=False):
    """Install the systemd unit ``path`` with ``text`` and enable it for multi-user.target; True if anything changed.

    The link is the one ``systemctl enable`` makes, written directly so that
    it works where systemd is not running (images, containers, the lab).
    """
    changed = False
    try:
        with open(path, 'rb') as handle:
            current = handle.read()
    except (IOError, OSError):
        current = None
    if current != text.encode():
        changed = True
        if not check_mode:
            os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
            write_atomic(path, text.encode(), 0o644)
    wants = os.path.join(os.path.dirname(path), 'multi-user.target.wants', os.path.basename(path))
    if not (os.path.islink(wants) and os.readlink(wants) == path):
        changed = True
        if not check_mode:
            os.makedirs(os.path.dirname(wants), 0o755, exist_ok=True)
            tmp = '%s.fleetwall-%d' % (wants, os.getpid())
            os.symlink(path, tmp)
            os.rename(tmp, wants)
    return changed


def acquire_lock(path, timeout, poll=0.1):
    """Return an open handle holding an exclusive flock on ``path``, or None after ``timeout`` seconds."""
    handle = open(path, 'a')
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except (IOError, OSError) as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                handle.close()
                return None
            time.sleep(poll)
