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


# Signals that would raise in Python code: blocked across the fork, so that neither process is interrupted
# between the fork and the code that cleans up after it (the child must never run the caller's code).
INTERRUPTS = {signal.SIGINT, signal.SIGTERM}


def fork_child(work, output=None):
    """Run ``work()`` in a forked child; return its pid, or None when it cannot be forked safely.

    ``output``, a pipe's write end, is the child's to keep; ``work`` writes
    to it.  The child exits 0 when ``work`` returned, 1 otherwise, and never
    returns into the caller, whatever interrupts it.  None means: do it
    inline.
    """
    if threading.active_count() > 1 or not hasattr(os, 'fork'):
        # A fork while another thread may hold a lock can deadlock the child;
        # the module process has one thread, a library caller may not.
        return None
    # Freezing moves every object out of the collector's reach, so neither
    # process's collections write to (and copy) the other's shared pages.
    gc.freeze()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        pid = os.fork()
    except OSError:
        pid = None
    if pid != 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        gc.unfreeze()
        return pid
    code = 1
    try:
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            work()
            code = 0
        finally:
            if output is not None:
                os.close(output)
    except BaseException:  # pylint: disable=broad-except
        code = 1
    finally:
        os._exit(code)


def read_child(pid, fd, timeout):
    """The bytes (a bytearray) a forked child wrote to the pipe ``fd``, once it exited 0; None otherwise.

    The child is always reaped: killed first when it takes longer than
    ``timeout`` seconds or when the parent is interrupted.  None means the
    child failed, was killed or ran late: the caller then does the work
    itself.
    """
    received = bytearray()
    deadline = time.monotonic() + timeout
    finished = False
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                finished = True
                break
            received += chunk
    finally:
        os.close(fd)
        if not finished:
            os.kill(pid, signal.SIGKILL)
        try:
            _pid, status = os.waitpid(pid, 0)
        except ChildProcessError:
            # Reaped by someone else (SIGCHLD ignored): its exit status is unknown, so its data is not used.
            status = None
    return received if status == 0 else None
