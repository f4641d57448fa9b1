# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The include files of nginx's ``geo`` blocks: IPv4 as ranges, IPv6 as CIDRs.

IPv4 goes to ``dest`` in the geo module's ``ranges`` form (``FIRST-LAST VALUE;``, sorted, disjoint, adjacent ranges
of one value merged), which nginx holds in a tenth of the memory of the CIDR form and parses ten times faster; IPv6,
which the ``ranges`` form cannot hold, goes to ``dest_v6`` as ``CIDR VALUE;``.  The role's http snippet reads each
in its own geo block and joins them with a ``map`` into the one variable the enforcement snippet compares.  The
``ranges`` form cannot end a range at 255.255.255.255 either: that address, when an entry covers it, is written to
``dest_v6`` as ``255.255.255.255 VALUE;`` (a CIDR block holds IPv4 too), so nothing listed is lost.

Overlapping entries keep the CIDR form's meaning, the narrowest entry wins: the ranges are cut where a narrower
entry of another value lies inside a wider one.  What the run reports (added, removed, total, tiers, the diff) is in
entries, CIDR notation: the fewest networks that cover the ranges, which for the shadow copy's tiers (merged, each
tier without the ones before it) are its own lines.

A file of the old layout at ``dest`` (every entry as ``CIDR VALUE;``, before 0.5.0) is read as ours and rewritten;
any other line (a hand-written ``default``, ``proxy`` or ``include``) is reported and the files left as they are.

The files go live only after ``nginx -t`` accepted them inside the real configuration: each candidate is
bind-mounted over its live path in a private mount namespace, where ``nginx -t`` reads them with every other file
as it is, and they are renamed into place only when that test passed.  So a file that fails validation is never on
the live path, not even for the moment a test would take.  With ``http_snippet``, the http snippet that declares the
geo blocks is a third such file, tested and installed with the two, which is how a host moves from the old layout
(one CIDR geo block) to this one in a single step.

With ``reload``, the module reloads nginx itself, under the lock, and a marker beside ``dest``
(``.<name>.reload-pending``), written before the first rename and removed once nginx took the reload, makes the
next run reload again when a run was killed (or the reload failed) in between: the files on disk are then already
new, and nothing else would tell that nginx still serves the old ones.

nginx caches a ``ranges`` include of more than 100,000 entries in ``FILE.bin`` beside it, on every parse (``nginx
-t`` too), and later reads the cache instead of the text when the cache is not older than the file, by whole
seconds: it could serve a list that was never installed.  The role's geo block has a second, empty include
(``/dev/null``), which keeps nginx from writing it; a leftover ``dest.bin`` is removed at every run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
import tempfile
import time

from ..addresses import AddressError, format_address, format_network, parse_network, ranges_to_networks
from .command_runner import tool_message
from ..files import (acquire_lock, leftover_prefix, lock_holder, open_regular, remove_leftovers, remove_write_leftovers,
                     write_atomic)
from ..sync import SyncError, canonicalize, compact_diff

HEADER = '# Managed by fleetwall.blocklist (nginx_geo_file); every run rewrites this file.\n'
HEADER_V4 = HEADER + '# IPv4 as FIRST-LAST ranges, read by a geo block with "ranges"; IPv6 is in the -v6 file.\n'
HEADER_V6 = HEADER + '# IPv6 (and 255.255.255.255, which ranges cannot end at) as CIDRs.\n'
# The candidates' name before they were named after their target (files.leftover_prefix).
OLD_CANDIDATE_PREFIX = '.fleetwall-geo-'
VALUE = re.compile(r'^[A-Za-z0-9_.:-]{1,64}\Z')
# An entry: an address or network (digits, hex, dots and colons, an optional prefix length) and its value.  A geo
# directive (``default``, ``proxy``, ``delete``, ``ranges``, ``include``) is not one, and a file that has one was
# written by someone else: it is reported and left as it is, never read as an entry and dropped.
LINE = re.compile(r'^([0-9A-Fa-f]*[.:][0-9A-Fa-f.:]*(?:/[0-9]{1,3})?)\s+(\S+?);$')
# An IPv4 range of the ranges form.
RANGE_LINE = re.compile(r'^([0-9]{1,3}(?:\.[0-9]{1,3}){3})-([0-9]{1,3}(?:\.[0-9]{1,3}){3})\s+(\S+?);$')
LAST_V4 = (1 << 32) - 1

# Runs inside the private mount namespace: bind each candidate over its live
# file, then become ``nginx -t``; nothing here outlives the namespace.
_IN_NAMESPACE = '''
import os, subprocess, sys
mount, count = sys.argv[1], int(sys.argv[2])
pairs = sys.argv[3:3 + 2 * count]
for candidate, live in zip(pairs[0::2], pairs[1::2]):
    if subprocess.call([mount, "--bind", candidate, live]) != 0:
        sys.exit(97)
os.execv(sys.argv[3 + 2 * count], sys.argv[3 + 2 * count:])
'''


def v6_path(dest):
    """The IPv6 file beside ``dest``: ``blocklist.geo`` -> ``blocklist-v6.geo``."""
    root, ext = os.path.splitext(dest)
    return '%s-v6%s' % (root, ext)


def _v4(text):
    _version, start, _prefixlen = parse_network(text)
    return start


def parse_geo(text, path, ranges=True):
    """``(v4, v6)`` of an existing file: v4 a list of ``(start, end, value)`` (ranges and IPv4 CIDRs), v6
    ``{entry: value}``.  With ``ranges``, a line is ``FIRST-LAST VALUE;`` or, as the old layout wrote every entry,
    ``CIDR VALUE;``; without, only the latter.  Anything else in the file is an error."""
    v4, v6 = [], {}
    form = '"FIRST-LAST VALUE;" or "CIDR VALUE;"' if ranges else '"CIDR VALUE;"'
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        try:
            match = RANGE_LINE.match(line) if ranges else None
            if match:
                start, end = _v4(match.group(1)), _v4(match.group(2))
                if end < start:
                    raise AddressError('the range ends before it starts')
                v4.append((start, end, match.group(3)))
                continue
            match = LINE.match(line)
            if not match:
                raise AddressError('')
            version, start, prefixlen = parse_network(match.group(1))
        except AddressError as exc:
            raise SyncError('%s line %d is not %s%s: %r; the file was left as it is (remove it to start over)'
                            % (path, number, form, ' (%s)' % exc if str(exc) else '', line[:120]))
        if version == 4:
            v4.append((start, start + (1 << (32 - prefixlen)) - 1, match.group(2)))
        else:
            v6[format_network(version, start, prefixlen)] = match.group(2)
    return v4, v6


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


def split_families(entries):
    """``(v4, v6)`` of {entry: value}: v4 as ``(start, end, value)`` spans, v6 as {entry: value}."""
    v4, v6 = [], {}
    for entry, value in entries.items():
        if ':' in entry:
            v6[entry] = value
        else:
            _version, start, prefixlen = parse_network(entry)
            v4.append((start, start + (1 << (32 - prefixlen)) - 1, value))
    return v4, v6


def flatten(spans, where='the entries'):
    """Sorted, disjoint ``(start, end, value)`` ranges of nested or disjoint spans, the narrowest span's value on
    each address (as nginx's CIDR form decides), adjacent ranges of one value merged.  Spans that overlap without
    one containing the other (only a hand-made file has them) are an error."""
    out = []

    def emit(first, last, value):
        if first > last:
            return
        if out and out[-1][2] == value and out[-1][1] + 1 == first:
            out[-1] = (out[-1][0], last, value)
        else:
            out.append((first, last, value))
    stack = []      # (end, value) of the spans that contain the address reached, widest first
    cursor = 0      # the first address not emitted yet
    for start, end, value in sorted(spans, key=lambda span: (span[0], -span[1])):
        while stack and stack[-1][0] < start:
            last, outer = stack.pop()
            emit(cursor, last, outer)
            cursor = last + 1
        if stack:
            if end > stack[-1][0]:
                raise SyncError('%s: %s-%s overlaps a range it does not lie inside; the file was left as it is'
                                % (where, format_address(4, start), format_address(4, end)))
            emit(cursor, start - 1, stack[-1][1])
        stack.append((end, value))
        cursor = start
    while stack:
        last, value = stack.pop()
        emit(cursor, last, value)
        cursor = last + 1
    return out


def range_entries(ranges):
    """{entry: value}, the fewest CIDRs that cover the ranges."""
    entries = {}
    for start, end, value in ranges:
        for first, prefixlen in ranges_to_networks([(start, end)], 32):
            entries[format_network(4, first, prefixlen)] = value
    return entries


def render_v4(ranges):
    """The ranges file; a range that ends at 255.255.255.255 stops one short (see render_v6)."""
    lines = [HEADER_V4]
    for start, end, value in ranges:
        end = min(end, LAST_V4 - 1)
        if start <= end:
            lines.append('%s-%s %s;\n' % (format_address(4, start), format_address(4, end), value))
    return ''.join(lines)


def render_v6(ranges, v6):
    """The CIDR file: 255.255.255.255 when a range covers it, then the IPv6 entries."""
    lines = [HEADER_V6]
    if ranges and ranges[-1][1] == LAST_V4:
        lines.append('255.255.255.255 %s;\n' % ranges[-1][2])
    lines.extend('%s %s;\n' % (entry, v6[entry]) for entry in sorted(v6))
    return ''.join(lines)


def render_geo(entries):
    """``(ranges file, CIDR file)`` texts of {entry: value}."""
    v4, v6 = split_families(entries)
    ranges = flatten(v4)
    return render_v4(ranges), render_v6(ranges, v6)


def effective_entries(entries):
    """{entry: value} as the files hold them: overlaps resolved, adjacent entries of one value merged."""
    v4, v6 = split_families(entries)
    result = range_entries(flatten(v4))
    result.update(v6)
    return result


class GeoFile(object):
    backend = 'nginx'

    def __init__(self, run, dest, nginx_bin=None, nginx_config=None, unshare_bin=None, mount_bin=None,
                 mode=0o644, reload=False, pid_file='/run/nginx.pid', lock_timeout=120, dest_v6=None,
                 http_snippet=None, http_snippet_content=None):
        self.run = run
        self.dest = dest
        self.dest_v6 = dest_v6 or v6_path(dest)
        self.http_snippet = http_snippet
        self.http_snippet_content = http_snippet_content
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
        # What the last run was asked and wrote (its source's and each file's sha256, its counts): a run asked the
        # same, over the same files, is a no-op without parsing, flattening and rendering a million entries.
        self.record_path = os.path.join(self.directory, '.%s.record.json' % name)
        # nginx's cache of a ranges include (see the module's docstring).
        self.binary_cache = dest + '.bin'

    def paths(self):
        return [self.dest, self.dest_v6] + ([self.http_snippet] if self.http_snippet else [])

    @staticmethod
    def _read_bytes(path):
        """The bytes of ``path``, or None when there is none.  Only a regular file is read: a FIFO would hold the
        run for ever, a device would never end."""
        try:
            with open_regular(path) as handle:
                return handle.read()
        except (IOError, OSError) as exc:
            if not os.path.lexists(path):
                return None
            raise SyncError('cannot read %s: %s' % (path, exc.strerror or exc))

    @staticmethod
    def _text(data, path):
        try:
            return data.decode('utf-8')
        except UnicodeDecodeError as exc:
            raise SyncError('%s is not UTF-8 text (byte %d); it was left as it is' % (path, exc.start))

    def read(self):
        """``(entries, raw)``: {entry: value} the files map (as effective_entries reports them), or None when
        neither file exists; and {path: bytes or None} of the managed files as they are."""
        raw = dict((path, self._read_bytes(path)) for path in self.paths())
        if raw[self.dest] is None and raw[self.dest_v6] is None:
            return None, raw
        v4, v6 = [], {}
        for path, ranges in ((self.dest, True), (self.dest_v6, False)):
            if raw[path] is not None:
                file_v4, file_v6 = parse_geo(self._text(raw[path], path), path, ranges=ranges)
                v4.extend(file_v4)
                v6.update(file_v6)
        entries = range_entries(flatten(v4, '%s and %s' % (self.dest, self.dest_v6)))
        entries.update(v6)
        return entries, raw

    def sync(self, tiers, check_mode=False, want_diff=False, diff_sample=20, guard=None):
        """Make the geo files map exactly the tiers' entries. ``guard(changes, before, after)`` may refuse the
        change (module_support.change_guard): then the files are kept and the result says ``refused``.

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
        not: under the file's lock they are nobody's now.  And nginx's cache of the ranges file, which it would
        read in place of a newer file (the geo block the role writes keeps nginx from making it)."""
        remove_write_leftovers(*(self.paths() + [self.record_path]))
        remove_leftovers(self.directory, OLD_CANDIDATE_PREFIX)
        self._remove_binary_cache()

    def _remove_binary_cache(self):
        if os.path.lexists(self.binary_cache) and not os.path.isdir(self.binary_cache):
            os.unlink(self.binary_cache)

    def _lock(self, check_mode):
        if not os.path.isdir(self.directory):
            if check_mode:
                return None
            os.makedirs(self.directory, 0o755)
        handle = acquire_lock(self.lock_path, self.lock_timeout)
        if handle is None:
            raise SyncError('%s; waited %ss' % (lock_holder(self.lock_path), self.lock_timeout))
        return handle

    def _source_digest(self, tiers):
        """sha256 of what the run is asked: each tier's value and lines, and the http snippet's text."""
        digest = hashlib.sha256()
        for tier in tiers:
            digest.update(('%s\0%s\0' % (tier['value'], '\n'.join(tier['lines']))).encode('utf-8', 'surrogateescape'))
        digest.update(('%s\0%s' % (self.http_snippet, self.http_snippet_content)).encode('utf-8', 'surrogateescape'))
        return digest.hexdigest()

    def _file_digests(self):
        """{path: sha256 or None} of the files as they are."""
        digests = {}
        for path in self.paths():
            data = self._read_bytes(path)
            digests[path] = hashlib.sha256(data).hexdigest() if data is not None else None
        return digests

    def _unchanged(self, source, want_diff):
        """The result of a run asked what the record says the files already hold, or None."""
        try:
            with open(self.record_path) as handle:
                record = json.load(handle)
        except (IOError, OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get('source') != source or record.get('files') != self._file_digests():
            return None
        result = {'changed': False, 'added': 0, 'removed': 0, 'total': record.get('total'),
                  'tiers': record.get('tiers'), 'dest': self.dest, 'dest_v6': self.dest_v6, 'rewritten': [],
                  'name': 'nginx geo'}
        if want_diff:
            result['diff'] = compact_diff('nginx geo %s' % self.dest, result['total'], result['total'], (), (), 0)
        return result

    def _save_record(self, source, data, result):
        record = {'source': source, 'total': result['total'], 'tiers': result['tiers'],
                  'files': dict((path, hashlib.sha256(data[path]).hexdigest()) for path in self.paths())}
        write_atomic(self.record_path, json.dumps(record, sort_keys=True).encode('utf-8'), 0o600)

    def _sync(self, tiers, check_mode, want_diff, diff_sample, guard):
        source = self._source_digest(tiers)
        unchanged = self._unchanged(source, want_diff)
        if unchanged is not None:
            return unchanged
        wanted = desired_geo(tiers)
        v4, v6 = split_families(wanted)
        ranges = flatten(v4)
        desired = range_entries(ranges)
        desired.update(v6)
        texts = {self.dest: render_v4(ranges), self.dest_v6: render_v6(ranges, v6)}
        if self.http_snippet:
            texts[self.http_snippet] = self.http_snippet_content or ''
        current, raw = self.read()
        before = current or {}
        added = ['%s %s' % (e, v) for e, v in desired.items() if before.get(e) != v]
        removed = ['%s %s' % (e, v) for e, v in before.items() if desired.get(e) != v]
        counts = {}
        for value in desired.values():
            counts[value] = counts.get(value, 0) + 1
        data = dict((path, text.encode('utf-8')) for path, text in texts.items())
        # Decided on the bytes: an old-layout file with the same entries is rewritten all the same.
        rewrite = [path for path in self.paths() if raw[path] != data[path]]
        result = {'changed': bool(rewrite), 'added': len(added), 'removed': len(removed), 'total': len(desired),
                  'tiers': counts, 'dest': self.dest, 'dest_v6': self.dest_v6, 'rewritten': rewrite,
                  'name': 'nginx geo'}
        if want_diff:
            result['diff'] = compact_diff('nginx geo %s' % self.dest, len(before), len(desired), removed, added,
                                          diff_sample)
        refusal = guard(len(added) + len(removed), len(before), len(desired)) if guard else None
        if refusal:
            result.update(changed=False, total=len(before), refused=refusal, rewritten=[])
            return result
        if rewrite and not check_mode:
            self.install([(path, data[path]) for path in rewrite])
        if not check_mode:
            self._save_record(source, data, result)
        return result

    def _finish_reload(self, result, check_mode):
        """With ``reload``: reload nginx after a change, or when an earlier run's change never reached it."""
        if not self.reload:
            return
        pending = os.path.lexists(self.pending_path)
        if not (pending or (result['changed'] and not result.get('refused'))):
            return
        if pending and not result['changed']:
            # The files are already new (a run was killed, or its reload failed, after a rename): nginx is not.
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
                                % (self.dest, tool_message(err, out)))
            reloaded = True
        else:
            reloaded = False
        if os.path.lexists(self.pending_path):
            os.unlink(self.pending_path)
        return reloaded

    def _master_pid(self):
        """The master's pid from ``pid_file`` if that process lives; ``nginx -t`` leaves an empty pid file.

        Only a regular file is read, and only its start: a FIFO named there blocked the module for ever, and
        /dev/zero would never end."""
        try:
            with open_regular(self.pid_file) as handle:
                text = handle.read(64).decode('ascii', 'replace').strip()
        except (IOError, OSError):
            return None
        if not (text.isascii() and text.isdigit()) or not os.path.exists('/proc/%s' % text):
            return None
        return int(text)

    def install(self, files):
        """Write each ``(path, data)`` beside its target, test them together, then rename each into place: the IPv6
        file first, ``dest`` last, so that a kill in between leaves whole files of two generations (and the marker,
        with ``reload``)."""
        candidates, placeholders = [], []
        try:
            for path, data in files:
                directory = os.path.dirname(path) or '.'
                if not os.path.isdir(directory):
                    os.makedirs(directory, 0o755)
                fd, candidate = tempfile.mkstemp(dir=directory, prefix=leftover_prefix(path))
                candidates.append((candidate, path))
                with os.fdopen(fd, 'wb') as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                mode = stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path) else self.mode
                os.chmod(candidate, mode)
            if self.unshare_bin:  # the module passes the test's tools only with validate
                for candidate, path in candidates:
                    if not os.path.exists(path):
                        # A bind mount needs a target; an empty geo include (or snippet) is valid.
                        open(path, 'a').close()
                        os.chmod(path, os.stat(candidate).st_mode & 0o7777)
                        placeholders.append(path)
                try:
                    self.validate(candidates, first=self.dest in placeholders)
                finally:
                    # nginx -t of a ranges include of more than 100,000 entries, in a block without the second
                    # include, cached the candidate as dest.bin.
                    self._remove_binary_cache()
            if self.reload:
                # Before the first rename: from then until nginx took the reload, the marker says it has not.
                os.close(os.open(self.pending_path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
            order = {self.dest_v6: 0, self.http_snippet: 1, self.dest: 2}
            for candidate, path in sorted(candidates, key=lambda pair: order.get(pair[1], 1)):
                os.rename(candidate, path)
                if path in placeholders:
                    placeholders.remove(path)
        finally:
            for candidate, _path in candidates:
                if os.path.exists(candidate):
                    os.unlink(candidate)
            for path in placeholders:
                os.unlink(path)

    def validate(self, candidates, first=False):
        test = [self.nginx_bin, '-t', '-q'] + (['-c', self.nginx_config] if self.nginx_config else [])
        pairs = [name for pair in candidates for name in pair]
        args = [self.unshare_bin, '--mount', '--propagation', 'private', '--', sys.executable, '-c', _IN_NAMESPACE,
                self.mount_bin, str(len(candidates))] + pairs + test
        rc, out, err = self.run(args)
        if rc == 97:
            raise SyncError('could not bind-mount the candidates over %s to test them: %s'
                            % (', '.join(path for _candidate, path in candidates), tool_message(err)))
        if rc != 0:
            kept = ('there was none before, and there is none now' if first
                    else 'the old file stays')
            others = [path for _candidate, path in candidates if path != self.dest]
            raise SyncError('nginx -t rejected the new %s%s, so it was not installed (%s): %s'
                            % (self.dest, ' (with %s)' % ', '.join(others) if others else '', kept,
                               tool_message(err, out)))


# Each tier's record in the state directory: nginx-VALUE.json, beside the sync modules' <backend>-<set>.json.
TIER_RECORD = re.compile(r'^nginx-(.+)\.json$')


def save_tier_records(state_dir, tiers, result):
    """A record per tier in ``state_dir`` (what it holds, since when, its request log), read by the metrics as the
    sync modules' records are; the records of tiers no longer given go.  ``applied_at`` is when a sync last
    changed the geo files; a record is rewritten only when what it says changed."""
    if not os.path.isdir(state_dir):
        os.makedirs(state_dir, 0o755)
    counts = result.get('tiers') or {}
    wanted = {}
    for tier in tiers:
        wanted['nginx-%s.json' % tier['value']] = {
            'count': counts.get(tier['value'], 0), 'dest': result.get('dest'), 'dest_v6': result.get('dest_v6'),
            'request_log': tier.get('request_log')}
    for name in os.listdir(state_dir):
        # Only this geo file's: another nginx_geo_file call (a second geo file) may keep its records here too.
        if TIER_RECORD.match(name) and name not in wanted \
                and (_read_record(os.path.join(state_dir, name)) or {}).get('dest') in (None, result.get('dest')):
            os.unlink(os.path.join(state_dir, name))
    for name, record in wanted.items():
        path = os.path.join(state_dir, name)
        before = _read_record(path)
        kept = before is not None and not result.get('changed') and before.get('count') == record['count']
        record['applied_at'] = before.get('applied_at') if kept else int(time.time())
        if record != before:
            write_atomic(path, json.dumps(record, sort_keys=True).encode('utf-8'), 0o644)


def _read_record(path):
    try:
        with open_regular(path) as handle:
            record = json.load(handle)
    except (IOError, OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
