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
