# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one way the collection's modules run a host's tools.

Every backend reads the output of ``ipset``, ``nft``, ``iptables``, ``ufw``,
``firewall-cmd``, ``nginx``, ``ip`` and ``fail2ban-client``, so each runs in
the C locale: a translated message or a localised number would be misread.
An argument list, never a shell; data goes in on stdin.
"""

from __future__ import annotations

import os
import subprocess

# A tool that could not be started at all, as a shell reports it; one that ran past its time, as timeout(1) does.
NOT_STARTED = 127
TIMED_OUT = 124
# The longest any one tool may run: far past the slowest call measured (firewalld's reload of 100,000 entries took
# about a minute), so that a hung tool fails the module rather than holding the host's lock for ever.
TOOL_TIMEOUT = 3600


def _c_locale_environment():
    env = dict(os.environ)
    env.pop('LANGUAGE', None)    # GNU gettext prefers it to LC_ALL for messages
    env['LC_ALL'] = 'C'
    return env


def run_tool(args, data=None, timeout=TOOL_TIMEOUT):
    """``(rc, stdout, stderr)`` of one tool call, as Ansible's ``module.run_command`` gives them.

    Not run_command itself: it always hands Popen a preexec_fn, which makes
    Python fork() the whole module rather than vfork() it; with a million
    entries in memory (about 200 MB) each call cost about 5 ms more, and nft
    fills a new set in fifty calls.  ``data`` (text) is the tool's stdin;
    without it stdin is empty, never the module's own (Ansible's).  A tool
    that cannot start is a failed call (rc 127) with the reason on stderr,
    which the adapters report as any other failure, in a loader thread too.
    Undecodable bytes are kept escaped, as run_command keeps them, both ways: a tool's own output can be fed
    back to it. A tool still running after ``timeout`` seconds is killed, and the call fails (rc 124).
    """
    feed = data.encode('utf-8', 'surrogateescape') if data is not None else None
    try:
        # Not run_command, on purpose (above): the one place the collection runs a tool.
        proc = subprocess.run(args, input=feed,  # pylint: disable=ansible-bad-function
                              stdin=None if feed is not None else subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_c_locale_environment(),
                              timeout=timeout, check=False)
    except OSError as exc:
        return NOT_STARTED, '', '%s: %s' % (args[0], exc.strerror or exc)
    except subprocess.TimeoutExpired:
        return TIMED_OUT, '', '%s: still running after %d s; stopped' % (args[0], timeout)
    return (proc.returncode, proc.stdout.decode('utf-8', 'surrogateescape'),
            proc.stderr.decode('utf-8', 'surrogateescape'))


# How much of what a failed tool said an error message keeps. Both ends: nft and ipset name the failing line
# first, firewall-cmd, nginx and ufw end with the cause.
MESSAGE_LIMIT = 2000


def tool_message(*outputs):
    """What a failed tool said, for an error message: the first of ``outputs`` that is not blank (stderr, then
    stdout, as a caller passes them), stripped; past MESSAGE_LIMIT characters its first and last halves, with
    how much was left out between them. The one rule for every adapter's message."""
    said = next((text.strip() for text in outputs if text and text.strip()), '')
    if len(said) <= MESSAGE_LIMIT:
        return said
    half = MESSAGE_LIMIT // 2
    return '%s\n[... %d characters left out ...]\n%s' % (said[:half], len(said) - 2 * half, said[-half:])
