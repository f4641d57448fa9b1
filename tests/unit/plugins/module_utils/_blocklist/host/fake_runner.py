# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A stand-in for ``command_runner.run_tool`` that the adapters' logic tests hand to an adapter.

Every adapter takes its runner, ``run(args, data=None) -> (rc, stdout, stderr)``, as its first argument, so its
decisions (what it runs, in which order, what it makes of an answer, what it says when a tool fails) can be tested
without root, a namespace or any real firewall.  The namespace tests stay for what only the kernel can show.

A test scripts the answers by the start of the command line (``fake.on(['ipset', 'swap'], ...)``); the longest
matching start answers, the latest of equal ones.  Each answer is ``(rc, stdout, stderr)`` or a function of the
:class:`Call` returning one, so an answer may look at the batch file or model a tool's state.  Several answers are
given out in turn, the last one again and again.  A command nothing answers fails the test: the adapter ran
something the test did not expect.
"""

from __future__ import annotations

import os

# The options after which the adapters name their batch file (``ipset restore -file``, ``nft -f``, firewall-cmd's
# ``--add-entries-from-file``).  The file is removed as soon as the tool returns, so the runner keeps its text with
# the call.
BATCH_FLAGS = ('-file', '-f', '--add-entries-from-file', '--remove-entries-from-file')


def ok(out=''):
    """A tool that succeeded, printing ``out``."""
    return (0, out, '')


def fail(err, rc=1, out=''):
    """A tool that failed with ``err`` on stderr."""
    return (rc, out, err)


class UnexpectedCommand(AssertionError):
    """The adapter ran a command the test scripted no answer for."""


class Call(object):
    """One command the adapter ran: its argument list, its stdin (``data``) and the text of its batch file."""

    def __init__(self, args, data, batch):
        self.args = args
        self.data = data
        self.batch = batch

    def __repr__(self):
        return 'Call(%r)' % (self.args,)


class FakeRunner(object):
    """Scripted answers keyed by the start of the argument list; every call recorded in ``calls``."""

    def __init__(self):
        self._answers = []          # [prefix tuple, [answers]], in the order they were scripted
        self.calls = []
        self.unexpected = []

    def on(self, prefix, *answers):
        """Answer a command that starts with ``prefix`` with ``answers`` in turn (the last one repeats)."""
        if not answers:
            raise ValueError('on(%r) needs at least one answer' % (prefix,))
        self._answers.append((tuple(prefix), list(answers)))
        return self

    def __call__(self, args, data=None, **_options):
        args = list(args)
        call = Call(args, data, _batch_text(args))
        self.calls.append(call)
        best = None
        for prefix, answers in self._answers:
            if tuple(args[:len(prefix)]) == prefix and (best is None or len(prefix) >= len(best[0])):
                best = (prefix, answers)
        if best is None:
            # Kept as well as raised: an adapter may run this in a thread, or catch what it raises.
            self.unexpected.append(args)
            raise UnexpectedCommand('no answer scripted for %r' % (args,))
        answers = best[1]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return answer(call) if callable(answer) else answer

    def commands(self, prefix=()):
        """The argument lists of the calls that started with ``prefix``, in order."""
        prefix = tuple(prefix)
        return [call.args for call in self.calls if tuple(call.args[:len(prefix)]) == prefix]

    def batches(self):
        """The texts of the batch files the adapter handed to its tools, in order."""
        return [call.batch for call in self.calls if call.batch is not None]

    def check(self):
        """Fail if any command had no scripted answer (also one raised where the adapter swallowed it)."""
        assert not self.unexpected, 'commands with no scripted answer: %r' % (self.unexpected,)


def _batch_text(args):
    for flag in BATCH_FLAGS:
        if flag in args[:-1]:
            path = args[args.index(flag) + 1]
            if os.path.isfile(path):
                with open(path) as handle:
                    return handle.read()
    return None
