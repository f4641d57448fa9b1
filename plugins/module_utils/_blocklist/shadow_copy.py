# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The shadow copy: the fleet's validated, versioned blocklist.

Layout under the shadow copy directory::

    feeds/<name>.body        last good body of each feed, as fetched
    feeds/<name>.json        when it was fetched, its sha256, its counts
    generations/<N>/         blocklist_v4.txt, blocklist_v6.txt, manifest.json
    current -> generations/<N>

A generation directory is complete before ``current`` points at it, and the
symlink is replaced with rename(2), so readers see either the old or the new
generation, never a mixture.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile

from .addresses import (
    V4, V6, BITS, AddressError, RefusalTable, parse_network, merge_keys,
    merge_ranges, subtract_ranges, ranges_to_networks, format_network, count_addresses,
    parse_range,
)
from .feeds import FeedError, parse_feed
from .files import acquire_lock, write_atomic
from .fetch import FetchError, fetch, redact_url

FILES = {V4: 'blocklist_v4.txt', V6: 'blocklist_v6.txt'}
MANIFEST = 'manifest.json'
MANIFEST_FORMAT = 1
FEED_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$')


class ShadowCopyError(Exception):
    pass


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def parse_allowlist(entries):
    """Allowlist entries are operator configuration: any bad one is fatal."""
    ranges = {V4: [], V6: []}
    for entry in entries:
        text = str(entry).strip()
        try:
            if '-' in text:
                version, start, end = parse_range(text)
            else:
                version, start, prefixlen = parse_network(text)
                end = start + (1 << (BITS[version] - prefixlen)) - 1
        except AddressError as exc:
            raise ShadowCopyError('allowlist entry %r is invalid: %s' % (text, exc))
        ranges[version].append((start, end))
    return {v: merge_ranges(r) for v, r in ranges.items()}


class ShadowCopyStore(object):
    def __init__(self, root, file_mode=0o644):
        self.root = root
        self.file_mode = file_mode
        self.feeds_dir = os.path.join(root, 'feeds')
        self.generations_dir = os.path.join(root, 'generations')
        self.current_link = os.path.join(root, 'current')
        self._lock_handle = None

    def ensure_dirs(self):
        for path in (self.root, self.feeds_dir, self.generations_dir):
            if not os.path.isdir(path):
                os.makedirs(path, 0o755)

    def lock(self, timeout=300):
        """Serialise builds: two at once would race on generation numbers."""
        self.ensure_dirs()
        handle = acquire_lock(os.path.join(self.root, '.lock'), timeout, poll=0.2)
        if handle is None:
            raise ShadowCopyError('another shadow copy build holds %s/.lock' % self.root)
        self._lock_handle = handle

    def unlock(self):
        if self._lock_handle:
            self._lock_handle.close()
            self._lock_handle = None

    def current_manifest(self):
        path = os.path.join(self.current_link, MANIFEST)
        if not os.path.exists(path):
            return None
        try:
            with open(path) as handle:
                return json.load(handle)
        except ValueError as exc:
            raise ShadowCopyError('current manifest %s is unreadable: %s' % (path, exc))

    def generation_numbers(self):
        if not os.path.isdir(self.generations_dir):
            return []
        return sorted(int(n) for n in os.listdir(self.generations_dir) if n.isdigit())

    def read_feed_cache(self, name):
        body_path = os.path.join(self.feeds_dir, name + '.body')
        meta_path = os.path.join(self.feeds_dir, name + '.json')
        if not (os.path.exists(body_path) and os.path.exists(meta_path)):
            return None, None
        with open(meta_path) as handle:
            meta = json.load(handle)
        with open(body_path, 'rb') as handle:
            body = handle.read()
        if hashlib.sha256(body).hexdigest() != meta.get('sha256'):
            return None, None
        return body, meta

    def write_feed_cache(self, name, body, meta):
        self.ensure_dirs()
        write_atomic(os.path.join(self.feeds_dir, name + '.body'), body, 0o600)
        write_atomic(os.path.join(self.feeds_dir, name + '.json'),
                      json.dumps(meta, indent=1, sort_keys=True).encode(), 0o600)

    def publish(self, generation, files, manifest):
        self.ensure_dirs()
        staging = tempfile.mkdtemp(dir=self.generations_dir, prefix='.staging-')
        try:
            for filename, data in files.items():
                write_atomic(os.path.join(staging, filename), data, self.file_mode)
            write_atomic(os.path.join(staging, MANIFEST),
                          json.dumps(manifest, indent=1, sort_keys=True).encode(), self.file_mode)
            os.chmod(staging, 0o755)
            final = os.path.join(self.generations_dir, str(generation))
            if os.path.exists(final):
                shutil.rmtree(final)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        link_tmp = self.current_link + '.tmp'
        if os.path.lexists(link_tmp):
            os.unlink(link_tmp)
        os.symlink(os.path.join('generations', str(generation)), link_tmp)
        os.rename(link_tmp, self.current_link)
        return final

    def write_preview(self, files, manifest):
        self.ensure_dirs()
        preview = os.path.join(self.root, 'preview')
        if not os.path.isdir(preview):
            os.makedirs(preview, 0o755)
        for filename, data in files.items():
            write_atomic(os.path.join(preview, filename), data, self.file_mode)
        write_atomic(os.path.join(preview, MANIFEST),
                      json.dumps(manifest, indent=1, sort_keys=True).encode(), self.file_mode)
        return preview

    def prune(self, keep):
        numbers = self.generation_numbers()
        removed = []
        for number in numbers[:-keep] if keep > 0 else []:
            shutil.rmtree(os.path.join(self.generations_dir, str(number)), ignore_errors=True)
            removed.append(number)
        return removed


def _load_feed(store, spec, refusals, now, fetcher, write_cache=True):
    """Fetch and parse one feed, falling back to its last good body."""
    name = spec['name']
    shown = redact_url(spec['url']) if spec.get('url') else spec.get('path')
    status = {'name': name, 'source': shown, 'format': spec.get('format', 'auto')}

    def parse(body):
        parsed = parse_feed(body, name=name, fmt=spec.get('format') or 'auto',
                            min_count=spec.get('min_count'), refusals=refusals,
                            max_invalid_fraction=spec.get('max_invalid_fraction', 0.1))
        if parsed.accepted == 0 and parsed.refused_total == 0 and not spec.get('allow_empty'):
            raise FeedError('feed %s parsed to zero addresses; treated as a failed fetch' % name)
        return parsed

    try:
        body = fetcher(url=spec.get('url'), path=spec.get('path'), headers=spec.get('headers'),
                       timeout=spec.get('timeout', 30), retries=spec.get('retries', 2),
                       validate_certs=spec.get('validate_certs', True))
        parsed = parse(body)
    except (FetchError, FeedError) as exc:
        error = str(exc)
        body, meta = store.read_feed_cache(name)
        if body is None:
            status.update(status='failed', error=error)
            return status, None
        try:
            parsed = parse(body)
        except FeedError as cache_exc:
            status.update(status='failed', error='%s; cached copy unusable: %s' % (error, cache_exc))
            return status, None
        status.update(status='cached', error=error, fetched_at=meta.get('fetched_at'),
                      age_seconds=int(now.timestamp() - meta.get('fetched_epoch', now.timestamp())),
                      body_sha256=meta.get('sha256'))
    else:
        meta = {'fetched_at': now.isoformat(), 'fetched_epoch': int(now.timestamp()),
                'sha256': hashlib.sha256(body).hexdigest(), 'source': shown}
        if write_cache:
            store.write_feed_cache(name, body, meta)
        status.update(status='fresh', fetched_at=meta['fetched_at'], age_seconds=0,
                      body_sha256=meta['sha256'])
    status.update(parsed.summary())
    return status, parsed


def build_shadow_copy(root, feeds, allowlist=(), refused_categories=None, min_prefix=None,
                      max_shrink_percent=50, force=False, keep_generations=10, check_mode=False,
                      fetcher=fetch, file_mode=0o644, now=None):
    """Fetch every feed, build a generation and publish it if it is safe to.

    Returns a result dict for the module.  Nothing is published when the new
    generation is empty while the current one is not, when it shrank past
    ``max_shrink_percent`` (unless ``force``), or when no feed was usable.
    """
    names = [spec.get('name') for spec in feeds]
    for name in names:
        if not name or not FEED_NAME.match(name):
            raise ShadowCopyError('feed name %r is not valid: use letters, digits, _ . -' % (name,))
    if len(set(names)) != len(names):
        raise ShadowCopyError('feed names must be unique')
    if not feeds:
        raise ShadowCopyError('no feeds configured')
    kwargs = {}
    if refused_categories is not None:
        kwargs['categories'] = refused_categories
    try:
        refusals = RefusalTable(min_prefix=min_prefix, **kwargs)
    except ValueError as exc:
        raise ShadowCopyError(str(exc))
    allow_ranges = parse_allowlist(allowlist)
    now = now or _utcnow()
    store = ShadowCopyStore(root, file_mode=file_mode)
    store.lock()
    try:
        previous = store.current_manifest()
        statuses = []
        keys = {V4: [], V6: []}
        refusal_counts = {}
        refused_entries = []
        refused_truncated = False
        for spec in feeds:
            status, parsed = _load_feed(store, spec, refusals, now, fetcher, write_cache=not check_mode)
            statuses.append(status)
            if parsed is None:
                continue
            for version in (V4, V6):
                keys[version].extend(parsed.keys[version])
            for reason, count in parsed.refused.items():
                refusal_counts[reason] = refusal_counts.get(reason, 0) + count
            refused_entries.extend(parsed.refused_entries)
            refused_truncated = refused_truncated or parsed.refused_truncated

        files = {}
        file_info = {}
        allow_removed = {}
        for version in (V4, V6):
            merged = merge_keys(keys[version])
            remaining, removed = subtract_ranges(merged, allow_ranges[version])
            allow_removed['v%d' % version] = removed
            lines = [format_network(version, start, prefixlen)
                     for start, prefixlen in ranges_to_networks(remaining, BITS[version])]
            data = ('\n'.join(lines) + '\n').encode() if lines else b''
            files[FILES[version]] = data
            file_info[FILES[version]] = {
                'sha256': hashlib.sha256(data).hexdigest(),
                'entries': len(lines),
                'addresses': count_addresses(remaining),
            }
        content_sha = hashlib.sha256(b''.join(
            bytes.fromhex(file_info[FILES[v]]['sha256']) for v in (V4, V6))).hexdigest()
        total = sum(info['entries'] for info in file_info.values())

        warnings = ['feed %(name)s: %(status)s: %(error)s' % s for s in statuses if s.get('error')]
        result = {
            'changed': False, 'published': False, 'withheld': None,
            'generation': previous['generation'] if previous else None,
            'path': store.current_link, 'feeds': statuses,
            'entries': {'v4': file_info[FILES[V4]]['entries'], 'v6': file_info[FILES[V6]]['entries']},
            'refused': refusal_counts, 'warnings': warnings,
        }
        prev_total = 0
        if previous:
            prev_total = sum(info['entries'] for info in previous['files'].values())

        if all(s['status'] == 'failed' for s in statuses):
            result['withheld'] = 'no feed could be fetched or read from cache'
        elif total == 0 and prev_total > 0:
            result['withheld'] = ('the new copy is empty; an empty result never replaces generation %d '
                                  'with %d entries' % (previous['generation'], prev_total))
        elif (prev_total and not force and
              (prev_total - total) * 100.0 / prev_total > max_shrink_percent):
            result['withheld'] = ('the new copy has %d entries, %.1f%% fewer than generation %d (%d); '
                                  'the limit is %s%%, set force to publish anyway'
                                  % (total, (prev_total - total) * 100.0 / prev_total,
                                     previous['generation'], prev_total, max_shrink_percent))
        if result['withheld']:
            result['warnings'].append('not published: ' + result['withheld'])
            return result
        if previous and previous.get('content_sha256') == content_sha:
            return result

        existing = store.generation_numbers()
        generation = max(existing + [previous['generation'] if previous else 0]) + 1
        manifest = {
            'format': MANIFEST_FORMAT,
            'generation': generation,
            'created': now.isoformat(),
            'content_sha256': content_sha,
            'files': file_info,
            'feeds': statuses,
            'allowlist': {'entries': len(list(allowlist)), 'addresses_removed': allow_removed},
            'refusals': {'by_reason': refusal_counts, 'entries': refused_entries,
                         'truncated': refused_truncated},
            'policy': {'min_prefix': {'v4': refusals.min_prefix[V4], 'v6': refusals.min_prefix[V6]},
                       'refused_categories': sorted(refusals.categories),
                       'max_shrink_percent': max_shrink_percent, 'forced': bool(force)},
            'previous_generation': previous['generation'] if previous else None,
        }
        result.update(changed=True, published=not check_mode, generation=generation)
        if check_mode:
            # A preview must show hosts the diff of the copy this run would
            # publish, so its files go to a scratch directory that nothing
            # else reads; 'current' and the feed cache stay untouched.
            result['path'] = store.write_preview(files, manifest)
            return result
        store.publish(generation, files, manifest)
        result['pruned'] = store.prune(keep_generations)
        return result
    finally:
        store.unlock()
