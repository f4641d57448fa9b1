# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Work done in a forked child on the controller's second core.

The central build is pure Python: one core does the parse, the sort, the
merge and the formatting.  A fork shares the parent's data for free (copy
on write), which is what the provenance writer and the parallel parse of a
big feed need; a thread would share the interpreter's lock instead.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import threading
import time


def fork_child(work, output=None):
    """Run ``work()`` in a forked child; return its pid, or None when it cannot be forked safely.

    ``output``, a pipe's write end, is the child's to keep; ``work`` writes
    to it.  The child exits 0 when ``work`` returned, 1 otherwise, and never
    returns into the caller.  None means: do it inline.
    """
    if threading.active_count() > 1 or not hasattr(os, 'fork'):
        # A fork while another thread may hold a lock can deadlock the child;
        # the module process has one thread, a library caller may not.
        return None
    # Freezing moves every object out of the collector's reach, so neither
    # process's collections write to (and copy) the other's shared pages.
    gc.freeze()
    try:
        pid = os.fork()
    except OSError:
        gc.unfreeze()
        return None
    if pid != 0:
        gc.unfreeze()
        return pid
    code = 1
    try:
        work()
        code = 0
    finally:
        if output is not None:
            os.close(output)
        os._exit(code)


def read_child(pid, fd, timeout):
    """The bytes a forked child wrote to the pipe ``fd``, once it exited 0; None otherwise.

    The child is always reaped: killed first when it takes longer than
    ``timeout`` seconds or when the parent is interrupted.  None means the
    child failed, was killed or ran late: the caller then does the work
    itself.
    """
    chunks = []
    deadline = time.monotonic() + timeout
    finished = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                finished = True
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
        if not finished:
            os.kill(pid, signal.SIGKILL)
        _pid, status = os.waitpid(pid, 0)
    return b''.join(chunks) if status == 0 else None
