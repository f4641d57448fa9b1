# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The include file of an nginx ``geo`` block: ``CIDR VALUE;`` per line.

The file goes live only after ``nginx -t`` accepted it inside the real
configuration: the candidate is bind-mounted over the live path in a
private mount namespace, where ``nginx -t`` reads it with every other file
as it is, and renamed into place only when that test passed.  So a file
that fails validation is never on the live path, not even for the moment
a test would take.

With ``reload``, the module reloads nginx itself, under the file's lock, and
a marker beside the file (``.<name>.reload-pending``), written before the
rename and removed once nginx took the reload, makes the next run reload
again when a run was killed (or the reload failed) between the two: the file
on disk is then already new, and nothing else would tell that nginx still
serves the old one.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tempfile

from .files import acquire_lock, leftover_prefix, lock_holder, open_regular, remove_leftovers, remove_write_leftovers
from .sync import SyncError, canonicalize, compact_diff

HEADER = '# Managed by fleetwall.blocklist (nginx_geo_file); every run rewrites this file.\n'
# The candidates' name before they were named after their target (files.leftover_prefix).
OLD_CANDIDATE_PREFIX = '.fleetwall-geo-'
VALUE = re.compile(r'^[A-Za-z0-9_.:-]{1,64}\Z')
# An entry: an address or network (digits, hex, dots and colons, an optional prefix length) and its value.  A geo
# directive (``default``, ``proxy``, ``delete``, ``ranges``, ``include``) is not one, and a file that has one was
# written by someone else: it is reported and left as it is, never read as an entry and dropped.
LINE = re.compile(r'^([0-9A-Fa-f]*[.:][0-9A-Fa-f.:]*(?:/[0-9]{1,3})?)\s+(\S+?);$')

# Runs inside the private mount namespace: bind the candidate over the live
# file, then become ``nginx -t``; nothing here outlives the namespace.
_IN_NAMESPACE = '''
import os, subprocess, sys
mount, candidate, live = sys.argv[1:4]
if subprocess.call([mount, "--bind", candidate, live]) != 0:
    sys.exit(97)
os.execv(sys.argv[4], sys.argv[4:])
'''


def parse_geo(text, path):
    """{entry: value} of an existing file; anything else in it is an error."""
    entries = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        match = LINE.match(line)
        if not match:
            raise SyncError('%s line %d is not "CIDR VALUE;": %r; the file was left as it is (remove it to '
                            'start over)' % (path, number, line[:120]))
        entries[match.group(1)] = match.group(2)
    return entries


def desired_geo(tiers):
    """{entry: value} from tiers in order; an entry of an earlier tier wins."""
    entries = {}
    for tier in tiers:
        value = tier['value']
        if not VALUE.match(value):
            raise SyncError('tier value %r must be 1-64 letters, digits or _ . : -' % value)
        by_family = {4: [], 6: []}
        for line in tier['lines']:
            by_family[6 if ':' in line else 4].append(line)
        for version in (4, 6):
            for entry in canonicalize(by_family[version], version):
                entries.setdefault(entry, value)
    return entries


def render_geo(entries):
    order = sorted(entries, key=lambda e: (':' in e, e))
    return HEADER + ''.join('%s %s;\n' % (entry, entries[entry]) for entry in order)


class GeoFile(object):
    backend = 'nginx'

    def __init__(self, run, dest, nginx_bin=None, nginx_config=None, unshare_bin=None, mount_bin=None,
                 mode=0o644, reload=False, pid_file='/run/nginx.pid', lock_timeout=120):
        self.run = run
        self.dest = dest
        self.nginx_bin = nginx_bin
        self.nginx_config = nginx_config
        self.unshare_bin = unshare_bin
        self.mount_bin = mount_bin
        self.mode = mode
        self.reload = reload
        self.pid_file = pid_file
        self.lock_timeout = lock_timeout
        self.directory = os.path.dirname(dest) or '.'
        name = os.path.basename(dest)
        self.lock_path = os.path.join(self.directory, '.%s.lock' % name)
        self.pending_path = os.path.join(self.directory, '.%s.reload-pending' % name)

    def read(self):
        """The file's tiers as parse_geo reads them, or None when there is no file yet.  Only a regular file of
        UTF-8 text is read: a FIFO would hold the run for ever, a device would never end."""
        try:
            with open_regular(self.dest) as handle:
                return parse_geo(handle.read().decode('utf-8'), self.dest)
        except UnicodeDecodeError as exc:
            raise SyncError('%s is not UTF-8 text (byte %d); it was left as it is' % (self.dest, exc.start))
        except (IOError, OSError) as exc:
            if not os.path.lexists(self.dest):
                return None
            raise SyncError('cannot read %s: %s' % (self.dest, exc.strerror or exc))

    def sync(self, tiers, check_mode=False, want_diff=False, diff_sample=20, guard=None):
        """Make the geo file map exactly the tiers' entries. ``guard(changes, before, after)`` may refuse the
        change (module_support.change_guard): then the file is kept and the result says ``refused``.

        Two runs on one file serialise on its lock, as the set modules' runs do."""
        lock = self._lock(check_mode)
        try:
            if lock is not None and not check_mode:
                self._remove_leftovers()
            result = self._sync(tiers, check_mode, want_diff, diff_sample, guard)
            self._finish_reload(result, check_mode)
            return result
        finally:
            if lock is not None:
                lock.close()

    def _remove_leftovers(self):
        """The candidates of killed runs (a 1M-entry one is 21 MB), removed at the start of every run, a change or
        not: under the file's lock they are nobody's now."""
        remove_write_leftovers(self.dest)
        remove_leftovers(self.directory, OLD_CANDIDATE_PREFIX)

    def _lock(self, check_mode):
        if not os.path.isdir(self.directory):
            if check_mode:
                return None
            os.makedirs(self.directory, 0o755)
        handle = acquire_lock(self.lock_path, self.lock_timeout)
        if handle is None:
            raise SyncError('%s; waited %ss' % (lock_holder(self.lock_path), self.lock_timeout))
        return handle

    def _sync(self, tiers, check_mode, want_diff, diff_sample, guard):
        desired = desired_geo(tiers)
        current = self.read()
        before = current or {}
        added = ['%s %s' % (e, v) for e, v in desired.items() if before.get(e) != v]
        removed = ['%s %s' % (e, v) for e, v in before.items() if desired.get(e) != v]
        counts = {}
        for value in desired.values():
            counts[value] = counts.get(value, 0) + 1
        result = {'changed': bool(added or removed) or current is None, 'added': len(added),
                  'removed': len(removed), 'total': len(desired), 'tiers': counts, 'dest': self.dest,
                  'name': 'nginx geo'}
        if want_diff:
            result['diff'] = compact_diff('nginx geo %s' % self.dest, len(before), len(desired), removed, added,
                                          diff_sample)
        refusal = guard(len(added) + len(removed), len(before), len(desired)) if guard else None
        if refusal:
            result.update(changed=False, total=len(before), refused=refusal)
            return result
        if result['changed'] and not check_mode:
            self.install(render_geo(desired).encode('utf-8'))
        return result

    def _finish_reload(self, result, check_mode):
        """With ``reload``: reload nginx after a change, or when an earlier run's change never reached it."""
        if not self.reload:
            return
        pending = os.path.lexists(self.pending_path)
        if not (pending or (result['changed'] and not result.get('refused'))):
            return
        if pending and not result['changed']:
            # The file is already new (a run was killed, or its reload failed, after the rename): nginx is not.
            result.update(changed=True, reload_pending=True)
        if not check_mode:
            result['reloaded'] = self.reload_nginx()

    def reload_nginx(self):
        """Reload a running master and clear the marker; False where no master runs (it reads the file at start)."""
        if self._master_pid() is not None:
            test = ['-c', self.nginx_config] if self.nginx_config else []
            rc, out, err = self.run([self.nginx_bin, '-s', 'reload'] + test)
            if rc != 0:
                raise SyncError('the new %s is in place, but nginx -s reload failed: %s; the next run reloads again'
                                % (self.dest, (err or out).strip()[-1000:]))
            reloaded = True
        else:
            reloaded = False
        if os.path.lexists(self.pending_path):
            os.unlink(self.pending_path)
        return reloaded

    def _master_pid(self):
        """The master's pid from ``pid_file`` if that process lives; ``nginx -t`` leaves an empty pid file."""
        try:
            with open(self.pid_file) as handle:
                text = handle.read().strip()
        except (IOError, OSError):
            return None
        if not (text.isascii() and text.isdigit()) or not os.path.exists('/proc/%s' % text):
            return None
        return int(text)

    def install(self, data):
        directory = self.directory
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        fd, candidate = tempfile.mkstemp(dir=directory, prefix=leftover_prefix(self.dest))
        placeholder = False
        try:
            with os.fdopen(fd, 'wb') as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            mode = stat.S_IMODE(os.stat(self.dest).st_mode) if os.path.exists(self.dest) else self.mode
            os.chmod(candidate, mode)
            if self.unshare_bin:  # the module passes the test's tools only with validate
                if not os.path.exists(self.dest):
                    # A bind mount needs a target; an empty geo include is valid.
                    open(self.dest, 'a').close()
                    os.chmod(self.dest, mode)
                    placeholder = True
                self.validate(candidate, first=placeholder)
            if self.reload:
                # Before the rename: from then until nginx took the reload, the marker says it has not.
                os.close(os.open(self.pending_path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
            os.rename(candidate, self.dest)
            placeholder = False
        finally:
            if os.path.exists(candidate):
                os.unlink(candidate)
            if placeholder:
                os.unlink(self.dest)

    def validate(self, candidate, first=False):
        test = [self.nginx_bin, '-t', '-q'] + (['-c', self.nginx_config] if self.nginx_config else [])
        args = [self.unshare_bin, '--mount', '--propagation', 'private', '--', sys.executable, '-c', _IN_NAMESPACE,
                self.mount_bin, candidate, self.dest] + test
        rc, out, err = self.run(args)
        if rc == 97:
            raise SyncError('could not bind-mount the candidate over %s to test it: %s' % (self.dest, err.strip()))
        if rc != 0:
            kept = ('there was none before, and there is none now' if first
                    else 'the old file stays')
            raise SyncError('nginx -t rejected the new %s, so it was not installed (%s): %s'
                            % (self.dest, kept, (err or out).strip()[-2000:]))
