# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The shadow copy: the fleet's validated, versioned blocklist.

Layout under the shadow copy directory::

    feeds/<name>.body        last good body of each feed, as fetched
    feeds/<name>.json        when it was fetched, its sha256, its counts
    generations/<N>/         blocklist_v4.txt, blocklist_v6.txt   (block tier)
                             challenge_v4.txt, challenge_v6.txt   (challenge tier)
                             provenance.tsv.gz, manifest.json
    current -> generations/<N>

A generation directory is complete before ``current`` points at it, and the
symlink is replaced with rename(2), so readers see either the old or the new
generation, never a mixture.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import zlib
from bisect import bisect_left
from itertools import chain

from ..addresses import (
    V4, V6, BITS, AF, AddressError, RefusalTable, parse_network, merge_keys,
    merge_ranges, subtract_ranges, networks_file, count_addresses,
    parse_span, insert_ranges, count_networks, format_network, network_key,
)
from .feed_options import ALLOW_ONLY_DEFAULTS, FEED_DEFAULTS
from .feeds import ASN_LIST_FORMATS, FeedError, ProviderError, parse_asn_list, parse_feed
from ..files import acquire_lock, lock_holder, trusted_owner, write_atomic
from .forking import fork_child
from .fleet_local import (
    FEED_NAME as FLEET_LOCAL, GENERATION_FILE as FLEET_LOCAL_FILE, TIERS as FLEET_LOCAL_TIERS,
    FleetLocalError, feed_body, load_state as load_fleet_local, merge_harvest, offered_entries,
    save_state as save_fleet_local,
)
from .fetch import FetchError, fetch_response, redact, redact_url
from . import allow_sources, operator_entries, scopes
from .presets import PresetError, resolve_feed

FILES = {V4: 'blocklist_v4.txt', V6: 'blocklist_v6.txt'}
CHALLENGE_FILES = {V4: 'challenge_v4.txt', V6: 'challenge_v6.txt'}
PROVENANCE = 'provenance.tsv.gz'
DEFAULT_TIERS = {'block': 90, 'challenge': 50}
# How old a feed's copy may get before the run fails for it (after publishing what it has): a feed that fails on
# every run only warned, and cron and AWX never alerted however old the copy got.  Two days is a day of failures
# past the slowest daily list; a preset or the feed may say otherwise (max_age, 0 for never).
DEFAULT_MAX_AGE = 2 * 86400
TIERS = ('auto', 'block', 'challenge', scopes.ADMIT)
MANIFEST = 'manifest.json'
# HMAC-SHA256 of the manifest with a key kept outside the shadow directory (signing_key).
SIGNATURE = 'manifest.sig'
MANIFEST_FORMAT = 2
FEED_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z')


class ShadowCopyError(Exception):
    pass


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def parse_allowlist(entries):
    """Allowlist entries are operator configuration: any bad one is fatal, and every bad one is named at once
    (one error a run made three runs of three typos)."""
    ranges = {V4: [], V6: []}
    problems = []
    for entry in entries:
        text = str(entry).strip()
        try:
            version, start, end = parse_span(text)
        except AddressError as exc:
            problems.append('%r (%s)' % (text, exc))
            continue
        ranges[version].append((start, end))
    if len(problems) == 1:
        raise ShadowCopyError('allowlist entry %s is invalid' % problems[0])
    if problems:
        raise ShadowCopyError('%d allowlist entries are invalid: %s' % (len(problems), '; '.join(problems[:20])))
    return {v: merge_ranges(r) for v, r in ranges.items()}


def check_trusted_path(path):
    """Refuse ``path`` when another user could change it, or replace it through a directory above it.

    As ssh's StrictModes: the path and each directory above it must belong
    to this user or root, and none may be writable by its group or others,
    except a directory above with the sticky bit (/tmp), where others cannot
    rename what they do not own.  A root run pushes what the shadow copy
    says to every host's kernel: it must not trust what someone else wrote.
    """
    real = os.path.realpath(path)
    current = real
    while True:
        info = os.stat(current)
        if not trusted_owner(info.st_uid):
            raise ShadowCopyError('%s belongs to uid %d, not to this user (uid %d) or root: another user could '
                                  'change what every host blocks. Fix: chown %d %s (or use another shadow_copy_dir)'
                                  % (current, info.st_uid, os.geteuid(), os.geteuid(), current))
        others_write = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if others_write and (current == real or not info.st_mode & stat.S_ISVTX):
            raise ShadowCopyError('%s is writable by its group or by everyone (mode %04o): another user could '
                                  'change what every host blocks. Fix: chmod go-w %s'
                                  % (current, stat.S_IMODE(info.st_mode), current))
        parent = os.path.dirname(current)
        if parent == current:
            return real
        current = parent


def trusted_generation_dir(requested):
    """The generation directory ``requested`` names, checked before anything is read from it.

    ``current`` (a link) must point at a generation of its own shadow copy's
    ``generations/``; a kept generation's path, or the controller's copy of a
    remote build, is taken as it is.  Every directory on the way is checked
    (check_trusted_path).
    """
    requested = requested.rstrip('/') or '/'
    real = os.path.realpath(requested)
    if os.path.basename(requested) == 'current' and os.path.islink(requested):
        generations = os.path.realpath(os.path.join(os.path.dirname(requested), 'generations'))
        if os.path.dirname(real) != generations:
            raise ShadowCopyError('%s points at %s, outside %s: refusing it (a generation is only ever one of the '
                                  'build\'s own)' % (requested, real, generations))
    return check_trusted_path(real)


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
        """Serialise builds: two at once would race on generation numbers.

        The tree is checked first (check_trust): nothing in it may be another
        user's to change. Holding the lock, whatever temporary files are in it
        were left by a killed or failed build, and are removed.
        """
        self.ensure_dirs()
        self.check_trust()
        path = os.path.join(self.root, '.lock')
        handle = acquire_lock(path, timeout, poll=0.2)
        if handle is None:
            raise ShadowCopyError('%s: another shadow copy build (waited %d s)' % (lock_holder(path), timeout))
        self._lock_handle = handle
        self.remove_leftovers()

    def check_trust(self):
        """ssh's StrictModes for the shadow copy: its directories (and theirs, up to /) are this user's or
        root's and writable by nobody else, and ``current`` points at one of its own generations."""
        for path in (self.root, self.feeds_dir, self.generations_dir):
            check_trusted_path(path)
        if os.path.lexists(self.current_link):
            trusted_generation_dir(self.current_link)

    def remove_leftovers(self):
        """What builds that died left: provenance files, half-written files, staging directories."""
        for directory in (self.root, self.feeds_dir, self.generations_dir):
            for name in os.listdir(directory):
                path = os.path.join(directory, name)
                if name.startswith('.staging-') and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                elif name.startswith('.provenance-') or (name.startswith('.') and '.tmp-' in name):
                    try:
                        os.unlink(path)
                    except OSError:
                        pass

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
        # Only directories the build made: a link planted at a number is no generation (and publish replaces it).
        return sorted(int(n) for n in os.listdir(self.generations_dir)
                      if n.isascii() and n.isdigit() and not os.path.islink(os.path.join(self.generations_dir, n)))

    def read_feed_cache(self, name):
        """(body, meta) of a feed's last good copy; (None, meta) for a feed rate-limited before it ever had one."""
        body_path = os.path.join(self.feeds_dir, name + '.body')
        meta_path = os.path.join(self.feeds_dir, name + '.json')
        if not os.path.exists(meta_path):
            return None, None
        with open(meta_path) as handle:
            meta = json.load(handle)
        if not os.path.exists(body_path):
            return None, (meta if isinstance(meta, dict) and meta.get('no_copy') else None)
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

    def write_feed_meta(self, name, meta):
        """Update what is known about a cached body (revalidated, rate-limited) without rewriting it."""
        write_atomic(os.path.join(self.feeds_dir, name + '.json'),
                     json.dumps(meta, indent=1, sort_keys=True).encode(), 0o600)

    def publish(self, generation, files, manifest, moves=None):
        """Write a generation and point ``current`` at it; ``moves`` are finished files to rename in."""
        self.ensure_dirs()
        staging = tempfile.mkdtemp(dir=self.generations_dir, prefix='.staging-')
        try:
            for filename, data in files.items():
                write_atomic(os.path.join(staging, filename), data, self.file_mode)
            for filename, path in (moves or {}).items():
                os.chmod(path, self.file_mode)
                os.rename(path, os.path.join(staging, filename))
            write_atomic(os.path.join(staging, MANIFEST),
                         json.dumps(manifest, indent=1, sort_keys=True).encode(), self.file_mode)
            os.chmod(staging, 0o755)
            final = os.path.join(self.generations_dir, str(generation))
            if os.path.islink(final):
                os.unlink(final)        # a link planted at the name: removed, never followed
            elif os.path.exists(final):
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

    def write_preview(self, files, manifest, moves=None):
        self.ensure_dirs()
        preview = os.path.join(self.root, 'preview')
        if not os.path.isdir(preview):
            os.makedirs(preview, 0o755)
        for filename, data in files.items():
            write_atomic(os.path.join(preview, filename), data, self.file_mode)
        for filename, path in (moves or {}).items():
            os.rename(path, os.path.join(preview, filename))
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


def _status_age(now, epoch):
    return int(now.timestamp() - epoch) if epoch is not None else None


def stale_feeds(resolved, statuses):
    """The feeds whose copy is older than their ``max_age``, or that have none: each status says its max_age, and
    the list (name, status, age_seconds, max_age, error) is what the play fails for once the rest is published."""
    stale = []
    for (feed, _secrets), status in zip(resolved, statuses):
        max_age = feed.get('max_age')
        max_age = DEFAULT_MAX_AGE if max_age is None else max_age
        status['max_age'] = max_age
        age = status.get('age_seconds')
        if max_age and (status.get('status') == 'failed' or (age is not None and age > max_age)):
            stale.append({'name': status['name'], 'status': status.get('status'), 'age_seconds': age,
                          'max_age': max_age, 'error': status.get('error')})
    return stale


def _load_feed(store, spec, secrets, refusals, now, fetcher, offline=False):
    """Fetch (or reuse) and parse one feed; return (status, parsed or None, cache meta to write or None).

    The last good body of every feed is kept with what the provider said
    about it (ETag, Last-Modified, when to come back after a 429), so that a
    run scheduled too often, a rate limit or a failure reuses it instead of
    calling the provider or weakening the copy.
    """
    listed = None
    if spec.get('asns_from'):
        # The AS numbers of another source (an ip2asn feed's asns_from): loaded first, as a feed of its own.
        listed, asn_list, cache_update = _answer(_AsnListLoad(store, spec['asns_from'], secrets, None, now), fetcher,
                                                 offline)
        _update_feed_cache(store, spec['asns_from']['name'], cache_update)
        if asn_list is None:
            # No list, not even a cached one: the feed fails as any feed does (the shrink guard keeps what it gave).
            load = _FeedLoad(store, spec, secrets, refusals, now)
            load.status.update(status='failed', error_kind=listed.get('error_kind'), asns_from=listed,
                               error='its ASN list (asns_from, %s) has no usable copy: %s'
                               % (listed.get('source'), listed.get('error')))
            return load.redacted(), None, None
        # With the feed's own asns, as given: parse_feed checks them (a bad one fails the feed, with its reason).
        given = spec.get('asns')
        given = [given] if isinstance(given, (str, int)) else list(given or ())
        spec = dict(spec, selected_asns=sorted(asn_list.asns) + given)
    status, parsed, cache_update = _answer(_FeedLoad(store, spec, secrets, refusals, now), fetcher, offline)
    if listed is not None:
        _with_asn_list(status, listed)
    return status, parsed, cache_update


def _answer(load, fetcher, offline):
    if offline:
        # An operator's block or unblock: published in seconds from what the copy already has, asking no provider.
        return load.use_cache('not asked: an offline build answers every feed from its cached copy')
    return load.cached_answer() or load.fetch(fetcher)


def _with_asn_list(status, listed):
    """The feed's status, with its ASN list's: a list that failed is the feed's warning, and the older of the two
    copies is the feed's age (max_age, stale_feeds)."""
    status['asns_from'] = listed
    if listed.get('error') and not status.get('error'):
        status['error'] = 'its ASN list (asns_from) %s: %s' % (listed.get('status'), listed.get('error'))
    ages = [age for age in (status.get('age_seconds'), listed.get('age_seconds')) if age is not None]
    if ages and status.get('status') != 'failed':
        status['age_seconds'] = max(ages)


class _FeedLoad(object):
    """One feed's load: its status as it grows, its cache, and the ways to an answer (the cache, or a fetch)."""

    def __init__(self, store, spec, secrets, refusals, now):
        self.spec, self.secrets, self.refusals, self.now = spec, secrets, refusals, now
        self.name = spec['name']
        # A preset may put the key in the URL's path; the query and user info are dropped by redact_url.
        self.shown = redact(redact_url(spec['url']), secrets) if spec.get('url') else spec.get('path')
        self.status = {'name': self.name, 'source': self.shown, 'format': spec.get('format', 'auto'),
                       'preset': spec.get('preset'), 'tier': spec.get('tier', 'auto'), 'requests': 0}
        source = [spec.get('url'), spec.get('path'), spec.get('format'), spec.get('query'), spec.get('field')]
        if spec.get('countries') or spec.get('asns') or spec.get('asns_from'):
            # An address plan's copy is judged (max_growth_factor) against the last one of the same selection.
            listed = spec.get('asns_from') or {}
            source.append([spec.get('countries'), spec.get('asns'),
                           [listed.get(key) for key in ('url', 'path', 'preset', 'format', 'field')]])
        self.fingerprint = hashlib.sha256(json.dumps(source, default=str).encode()).hexdigest()
        self.cached_body, self.meta = store.read_feed_cache(self.name)
        self.now_epoch = int(now.timestamp())
        self.same_source = self.meta is not None and self.meta.get('fingerprint') in (None, self.fingerprint)

    def parse(self, body):
        spec = self.spec
        html = html_page_title(body)
        if html is not None:
            raise FeedError('the provider answered an HTML page (%r), not the list: a bot challenge such as '
                            'Cloudflare\'s "Just a moment...", a login or an error page' % html)
        parsed = self.read(body)
        if parsed.accepted == 0 and parsed.refused_total == 0 and not spec.get('allow_empty'):
            raise FeedError('feed %s parsed to zero addresses; treated as a failed fetch' % self.name)
        return parsed

    def read(self, body):
        spec = self.spec
        return parse_feed(body, name=self.name, fmt=spec.get('format') or 'auto',
                          min_count=spec.get('min_count'), refusals=self.refusals,
                          max_invalid_fraction=spec.get('max_invalid_fraction', FEED_DEFAULTS['max_invalid_fraction']),
                          query=spec.get('query'), field=spec.get('field'),
                          score_field=spec.get('score_field'), min_score=spec.get('min_score'),
                          max_entries=spec.get('max_entries', FEED_DEFAULTS['max_entries']),
                          require_metadata=bool(spec.get('require_metadata')), countries=spec.get('countries'),
                          asns=spec.get('selected_asns', spec.get('asns')))

    def redacted(self):
        """This feed's status as it leaves (the result, warnings, manifest.json): what came from the provider, its
        messages and the invalid lines quoted from a body, can echo a secret."""
        status = self.status
        for field in ('source', 'error', 'reason'):
            if isinstance(status.get(field), str):
                status[field] = redact(status[field], self.secrets)
        if status.get('invalid_samples'):
            status['invalid_samples'] = [dict(sample, text=redact(str(sample.get('text')), self.secrets))
                                         for sample in status['invalid_samples']]
        return status

    def use_cache(self, reason, error=None, kind=None):
        status, meta = self.status, self.meta
        if self.cached_body is None:
            status.update(status='failed', error=error or reason, error_kind=kind)
            return self.redacted(), None, None
        try:
            parsed = self.parse(self.cached_body)
        except Exception as exc:  # pylint: disable=broad-except
            status.update(status='failed', error='%s; cached copy unusable: %s' % (error or reason, _said(exc)),
                          error_kind=kind)
            return self.redacted(), None, None
        status.update(status='cached', reason=reason, error=error, error_kind=kind,
                      fetched_at=meta.get('fetched_at'),
                      # Since the provider last confirmed the copy (a 304 does), not since its body came.
                      age_seconds=_status_age(self.now, meta.get('checked_epoch', meta.get('fetched_epoch'))),
                      body_sha256=meta.get('sha256'))
        status.update(parsed.summary())
        return self.redacted(), parsed, None

    def cached_answer(self):
        """The cache's answer when the provider must not be asked now (its rate-limit reset, min_interval), or None."""
        if not (self.same_source and self.spec.get('url')):
            return None
        not_before = self.meta.get('not_before') or 0
        if not isinstance(not_before, (int, float)) or not 0 <= not_before < 253402300800:
            not_before = 0      # a cache written before resets were bounded: ask again rather than fail
        if self.now_epoch < not_before:
            # Remembered with or without a copy: a provider's reset holds on the first fetch too.
            return self.use_cache('the provider rate-limited this feed until %s; not asked again before then%s'
                                  % (datetime.datetime.fromtimestamp(not_before, datetime.timezone.utc).isoformat(),
                                     '' if self.cached_body is not None else '; the feed has no copy yet'),
                                  kind=None if self.cached_body is not None else 'rate_limited')
        min_interval = self.spec.get('min_interval') or 0
        checked = self.meta.get('checked_epoch', self.meta.get('fetched_epoch', 0))
        if self.cached_body is not None and min_interval and self.now_epoch - checked < min_interval:
            return self.use_cache('checked %d s ago; min_interval is %d s' % (self.now_epoch - checked, min_interval))
        return None

    def fetch(self, fetcher):
        """Ask the provider (conditionally when there is a copy); any failure falls back to the cache."""
        try:
            response = self._request(fetcher)
            if response.not_modified:
                return self._not_modified()
            parsed = self.parse(response.body)
            rejected = self._too_large(parsed) or self._shrank(parsed) or self._widened(parsed)
            if rejected:
                return self.use_cache('fetch rejected', kind='content', error=rejected)
        except FetchError as exc:
            return self._failed_fetch(exc)
        except FeedError as exc:
            return self.use_cache('fetch failed', error=redact(str(exc), self.secrets),
                                  kind='auth' if isinstance(exc, ProviderError) else 'content')
        except Exception as exc:  # pylint: disable=broad-except
            # A parser fault on a body nobody here wrote is that feed's failure, never the whole build's.
            return self.use_cache('fetch failed', error=redact(_said(exc), self.secrets), kind='content')
        return self._fresh(response, parsed)

    def _request(self, fetcher):
        spec, meta = self.spec, self.meta
        conditional = self.cached_body is not None and self.same_source
        self.status['requests'] = 1
        response = fetcher(url=spec.get('url'), path=spec.get('path'), headers=spec.get('headers'),
                           timeout=spec.get('timeout', FEED_DEFAULTS['timeout']),
                           retries=spec.get('retries', FEED_DEFAULTS['retries']),
                           validate_certs=spec.get('validate_certs', FEED_DEFAULTS['validate_certs']),
                           etag=meta.get('etag') if conditional else None,
                           last_modified=meta.get('last_modified') if conditional else None,
                           max_wait=spec.get('max_wait', 0), secrets=self.secrets,
                           deadline=spec.get('deadline', FEED_DEFAULTS['deadline']),
                           max_bytes=spec.get('max_bytes', FEED_DEFAULTS['max_bytes']))
        self.status['requests'] = response.attempts
        return response

    def _not_modified(self):
        meta = self.meta
        parsed = self.parse(self.cached_body)
        new_meta = dict(meta, checked_epoch=self.now_epoch, checked_at=self.now.isoformat(), not_before=None,
                        source=self.shown)
        self.status.update(status='fresh', not_modified=True, fetched_at=meta.get('fetched_at'),
                           age_seconds=0, body_sha256=meta.get('sha256'))
        self.status.update(parsed.summary())
        return self.redacted(), parsed, new_meta

    def _too_large(self, parsed):
        """Why a body that grew past max_growth_factor of the last good copy is not used, or None."""
        growth = self.spec.get('max_growth_factor', FEED_DEFAULTS['max_growth_factor'])
        last_accepted = (self.meta or {}).get('accepted') if self.same_source else None
        if not (growth and last_accepted and parsed.accepted > growth * last_accepted):
            return None
        return ('the body has %d entries, %.0f times the %d of the last good copy (max_growth_factor %s); '
                'an upstream fault or an attack is more likely than a list that grew this fast, so the last '
                'good copy is used. Raise max_growth_factor for this feed to accept it'
                % (parsed.accepted, parsed.accepted / float(last_accepted), last_accepted, growth))

    def coverage(self, parsed):
        """{'4': addresses, '6': addresses} the body covers once merged, for a source judged by its coverage (an
        allow source: a list of two /32 where a /13 was, or of /8s where /24s were, keeps its entry count)."""
        if self.spec.get('max_shrink_percent') is None:
            return None
        if getattr(self, '_coverage', None) is None or self._coverage[0] is not parsed:
            self._coverage = (parsed, dict((str(version), count_addresses(merge_keys(list(parsed.keys[version]), version)))
                                           for version in (V4, V6)))
        return self._coverage[1]

    def _widened(self, parsed):
        """Why a source whose coverage of a family grew past max_growth_factor of the last good copy's is not used,
        or None: an allow source that suddenly covers a thousand times the addresses unblocks them all."""
        growth = self.spec.get('max_growth_factor', FEED_DEFAULTS['max_growth_factor'])
        last = (self.meta or {}).get('addresses') if self.same_source else None
        now = self.coverage(parsed)
        for family in ('4', '6'):
            if growth and now and isinstance(last, dict) and last.get(family) and now[family] > growth * last[family]:
                return ('the body covers %d IPv%s addresses, %.0f times the %d of the last good copy '
                        '(max_growth_factor %s); the last good copy is used. Raise max_growth_factor for this source '
                        'to accept it' % (now[family], family, now[family] / float(last[family]), last[family], growth))
        return None

    def _shrank(self, parsed):
        """Why a body that shrank past the source's max_shrink_percent of the last good copy (in entries, or in the
        addresses of a family it covers) is not used, or None (an allow source's setting: one that shrank can block
        a CDN)."""
        limit = self.spec.get('max_shrink_percent')
        last_accepted = (self.meta or {}).get('accepted') if self.same_source else None
        if limit is None or not last_accepted:
            return None
        last, now = (self.meta or {}).get('addresses'), self.coverage(parsed)
        for family in ('4', '6'):
            if isinstance(last, dict) and last.get(family) and (last[family] - now[family]) * 100.0 / last[family] > limit:
                return ('the body covers %d IPv%s addresses, %.1f%% fewer than the %d of the last good copy '
                        '(max_shrink_percent %s); the last good copy is used. Raise max_shrink_percent for this '
                        'source to accept it' % (now[family], family, (last[family] - now[family]) * 100.0 / last[family],
                                                 last[family], limit))
        if parsed.accepted >= last_accepted:
            return None
        shrink = (last_accepted - parsed.accepted) * 100.0 / last_accepted
        if shrink <= limit:
            return None
        return ('the body has %d entries, %.1f%% fewer than the %d of the last good copy (max_shrink_percent %s); '
                'the last good copy is used. Raise max_shrink_percent for this source to accept it'
                % (parsed.accepted, shrink, last_accepted, limit))

    def _failed_fetch(self, exc):
        result = self.use_cache('fetch failed', error=redact(str(exc), self.secrets), kind=exc.kind)
        if exc.retry_at and self.meta is not None and result[1] is not None:
            # Remember the provider's reset so that the next runs do not hammer it.
            return result[0], result[1], dict(self.meta, not_before=exc.retry_at, source=self.shown)
        if exc.retry_at and self.cached_body is None:
            # No copy yet: the reset is remembered all the same, in a record that holds nothing else.
            return result[0], result[1], {'no_copy': True, 'not_before': exc.retry_at,
                                          'fingerprint': self.fingerprint, 'source': self.shown}
        return result

    def _fresh(self, response, parsed):
        body, now = response.body, self.now
        sha = hashlib.sha256(body).hexdigest()
        new_meta = {'fetched_at': now.isoformat(), 'fetched_epoch': self.now_epoch, 'checked_epoch': self.now_epoch,
                    'checked_at': now.isoformat(), 'sha256': sha, 'source': self.shown,
                    'fingerprint': self.fingerprint, 'etag': response.etag, 'last_modified': response.last_modified,
                    'accepted': parsed.accepted}
        if self.coverage(parsed) is not None:
            new_meta['addresses'] = self.coverage(parsed)
        self.status.update(status='fresh', fetched_at=new_meta['fetched_at'], age_seconds=0, body_sha256=sha,
                           not_modified=False)
        if response.rate_remaining is not None:
            self.status['rate_remaining'] = response.rate_remaining
        self.status.update(parsed.summary())
        return self.redacted(), parsed, ('body', body, new_meta)


class _AsnListLoad(_FeedLoad):
    """An ASN list's load (a feed's asns_from): cached, paced and fetched as a feed is, read as AS numbers."""

    def read(self, body):
        spec = self.spec
        return parse_asn_list(body, name=self.name, fmt=spec.get('format') or 'auto', field=spec.get('field'),
                              max_invalid_fraction=spec.get('max_invalid_fraction',
                                                            FEED_DEFAULTS['max_invalid_fraction']),
                              max_entries=spec.get('max_entries', FEED_DEFAULTS['max_entries']),
                              require_metadata=bool(spec.get('require_metadata')))


# What an HTML page starts with, after blanks and a byte order mark; and its title, to name it.
_HTML_START = re.compile(br'\A(?:\xef\xbb\xbf)?\s*(?:<!doctype\s+html|<html[\s>]|<head[\s>])', re.IGNORECASE)
_HTML_TITLE = re.compile(br'<title[^>]*>([^<]{0,200})', re.IGNORECASE)


def html_page_title(body):
    """The title of ``body`` when it is an HTML page ('' without one), or None.  No list a feed or an allow source
    serves is HTML; a 200 with an HTML page is a bot challenge, a captive portal or an error page."""
    head = body[:4096] if isinstance(body, bytes) else str(body)[:4096].encode('utf-8', 'replace')
    if not _HTML_START.match(head):
        return None
    title = _HTML_TITLE.search(head)
    return title.group(1).decode('utf-8', 'replace').strip() if title else ''


def _said(exc):
    """An unexpected exception as one line for the feed's status: its type and the start of its message."""
    if isinstance(exc, FeedError):
        return str(exc)
    return 'cannot read the body (%s: %s)' % (type(exc).__name__, str(exc)[:200])


def split_tiers(parsed, tier, thresholds):
    """Split a feed's keys into (block keys, challenge keys, dropped count) for each family."""
    block, challenge, dropped = {V4: [], V6: []}, {V4: [], V6: []}, 0
    for version in (V4, V6):
        keys = parsed.keys[version]
        if tier == 'challenge':
            challenge[version] = keys
        elif tier == 'block' or parsed.scores is None:
            block[version] = keys
        else:
            block_min, challenge_min = thresholds['block'], thresholds['challenge']
            b_append, c_append = block[version].append, challenge[version].append
            for key, score in zip(keys, parsed.scores[version]):
                if score >= block_min:
                    b_append(key)
                elif score >= challenge_min:
                    c_append(key)
                else:
                    dropped += 1
    return block, challenge, dropped


PROVENANCE_CHUNK = 65536


def _provenance_rows(parsed_feeds, version, names=()):
    """(sorted keys with repeats, base mask, masks, best scores, labels) for one family.

    Each feed's keys come sorted (parse_feed sorts them).  The largest
    unscored feed is the base: its keys are walked as they are, and only the
    other feeds' keys (the fleet's bans, a scored API's few thousand) go into
    a dictionary of feed masks, where a key not in it is the base's alone.
    A dictionary of ten million keys would cost the writer more than the
    build's merge.

    A labelled feed (an address plan's: each network's country or AS) is
    never the base: its keys go into the dictionary, and their labels, as
    ``feed=label`` text, into ``labels``.
    """
    listed = [(1 << index, parsed) for index, parsed in enumerate(parsed_feeds)
              if parsed is not None and parsed.keys[version]]
    unscored = [item for item in listed if item[1].scores is None and getattr(item[1], 'labels', None) is None]
    base_bit, base = max(unscored, key=lambda item: len(item[1].keys[version])) if unscored else (0, None)
    masks, best, labels = {}, {}, {}
    for bit, parsed in listed:
        if getattr(parsed, 'labels', None) is not None:
            _add_labels(labels, names[bit.bit_length() - 1], parsed.keys[version], parsed.labels[version])
        if parsed is base:
            continue
        keys = parsed.keys[version]
        get = masks.get
        for key in keys:
            masks[key] = get(key, 0) | bit
        if parsed.scores is not None:
            best_get = best.get
            for key, score in zip(keys, parsed.scores[version]):
                if score > best_get(key, -1.0):
                    best[key] = score
    if base is None:
        return sorted(masks), base_bit, masks, best, labels
    base_keys = base.keys[version]
    rows, position = [], 0
    for key in sorted(masks):
        index = bisect_left(base_keys, key)
        if index < len(base_keys) and base_keys[index] == key:
            masks[key] |= base_bit
            continue
        rows.extend(base_keys[position:index])
        rows.append(key)
        position = index
    if not rows:
        return base_keys, base_bit, masks, best, labels
    rows.extend(base_keys[position:])
    return rows, base_bit, masks, best, labels


def _add_labels(labels, name, keys, feed_labels):
    """``name=label`` for each key, joined with a comma to another feed's (a feed's repeats of a key keep its
    first)."""
    get = labels.get
    for key, label in zip(keys, feed_labels):
        text = '%s=%s' % (name, label)
        found = get(key)
        if found is None:
            labels[key] = text
        elif not (found + ',').startswith(name + '=') and (',%s=' % name) not in found:
            labels[key] = found + ',' + text


def provenance_chunks(names, parsed_feeds):
    """Gzipped TSV, in chunks: every distinct network any feed listed, which feeds listed it, its best score.

    Networks are as the feeds listed them, before aggregation and the
    allowlist: that is what an auditor asking "why is X blocked" needs.
    IPv4 first, each family sorted by network.  Written a chunk at a time:
    the lines of ten million entries at once cost gigabytes.
    """
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)      # 31: a gzip stream, its mtime 0
    # An address plan's feed (rir_delegated, ip2asn) adds a fourth column, each network's country or AS by feed
    # (``asn_drop=AS4134 CN``); a copy without one writes the three columns it always did.
    labelled = any(getattr(parsed, 'labels', None) is not None for parsed in parsed_feeds if parsed is not None)
    yield compressor.compress(b'# entry\tfeeds\tbest_score\tlabels\n' if labelled else b'# entry\tfeeds\tbest_score\n')
    for version in (V4, V6):
        keys, base_bit, masks, best, labels = _provenance_rows(parsed_feeds, version, names)
        suffixes = {mask: '\t' + ','.join(n for i, n in enumerate(names) if mask >> i & 1) + '\t'
                    for mask in set(masks.values()) | {base_bit}}
        ntop, family, width, bits = socket.inet_ntop, AF[version], BITS[version] // 8, BITS[version]

        def network(key):
            return format_network(version, key >> 8, bits - (key & 0xff))

        mask_of, base_suffix = masks.get, suffixes[base_bit]
        for first in range(0, len(keys), PROVENANCE_CHUNK):
            chunk = keys[first:first + PROVENANCE_CHUNK]
            # Sorted, so a repeat follows its first: a key is kept only where it differs from the one before.
            before = chain((keys[first - 1] if first else None,), chunk)
            if not masks:
                # One feed, ten million keys: most are single addresses, formatted here without two calls.
                tail = base_suffix + ('-\t-' if labelled else '-')
                lines = [(network(key) if key & 0xff else ntop(family, (key >> 8).to_bytes(width, 'big'))) + tail
                         for key, previous in zip(chunk, before) if key != previous]
            elif not labelled:
                lines = [network(key) + suffixes[mask_of(key, base_bit)] + ('%g' % best[key] if key in best else '-')
                         for key, previous in zip(chunk, before) if key != previous]
            else:
                lines = [network(key) + suffixes[mask_of(key, base_bit)] + ('%g' % best[key] if key in best else '-')
                         + '\t' + labels.get(key, '-') for key, previous in zip(chunk, before) if key != previous]
            if lines:
                lines.append('')
                yield compressor.compress('\n'.join(lines).encode())
    yield compressor.flush()


def provenance_bytes(names, parsed_feeds):
    return b''.join(provenance_chunks(names, parsed_feeds))


def _start_provenance(path, names, parsed_feeds):
    """Write the provenance file in a child process, beside the parent's merge.

    The audit trail costs as much as the blocklist itself at a million
    entries; forked, it runs on another core and the build's critical path
    does not wait for it.  Where no child can be forked, it is written inline.
    """
    def write():
        write_atomic(path, provenance_chunks(names, parsed_feeds), 0o644)
    pid = fork_child(write)
    if pid is None:
        write()
    return pid


def _finish_provenance(pid, path):
    if pid is not None:
        _pid, code = os.waitpid(pid, 0)
        if code != 0:
            return None
    return path if os.path.exists(path) else None


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def manifest_signature(manifest, signing_key):
    """HMAC-SHA256 of the manifest's canonical JSON (so a re-serialised copy, a mirror's, signs the same)."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(',', ':'), ensure_ascii=True).encode()
    return hmac.new(signing_key.encode('utf-8'), canonical, hashlib.sha256).hexdigest()


def check_signature(generation_dir, manifest, signing_key):
    """ShadowCopyError unless ``manifest.sig`` is the manifest's HMAC under ``signing_key``."""
    path = os.path.join(generation_dir, SIGNATURE)
    try:
        with open(path) as handle:
            found = handle.read(200).strip()
    except (IOError, OSError):
        raise ShadowCopyError('%s has no signature (%s) but a signing key is set: it was not written by a build '
                              'that holds the key; nothing pushed' % (generation_dir, SIGNATURE))
    if not hmac.compare_digest(found, manifest_signature(manifest, signing_key)):
        raise ShadowCopyError('the signature %s does not match the manifest under the signing key: the manifest '
                              'was changed by someone without the key, or signed with another key; nothing pushed'
                              % path)


def verify_generation(generation_dir, signing_key=None):
    """Check every file the manifest lists against its sha256; return the manifest, or raise ShadowCopyError.

    The manifest is written last, by the build, from the bytes it wrote: a
    file edited, truncated or replaced afterwards no longer matches it, and
    the push must send nothing rather than whatever is there now.  With a
    ``signing_key``, the manifest itself must carry the build's signature:
    whoever can write the shadow directory but does not hold the key cannot
    rewrite the manifest to match an edit.
    """
    path = os.path.join(generation_dir, MANIFEST)
    try:
        with open(path) as handle:
            manifest = json.load(handle)
    except (IOError, OSError, ValueError) as exc:
        raise ShadowCopyError('cannot read the manifest %s: %s; nothing pushed' % (path, exc))
    if signing_key:
        check_signature(generation_dir, manifest, signing_key)
    listed = dict((name, info.get('sha256')) for name, info in (manifest.get('files') or {}).items())
    provenance = manifest.get('provenance') or {}
    if provenance.get('file') and os.path.lexists(os.path.join(generation_dir, provenance['file'])):
        # Never pushed, and not fetched along from a remote build host; checked where it is.
        listed[provenance['file']] = provenance.get('sha256')
    for source in manifest.get('allow_feeds') or []:
        # The allow sources' ranges: checked where they are, as the provenance is.
        for info in ((source or {}).get('files') or {}).values():
            if os.path.lexists(os.path.join(generation_dir, str(info.get('file')))):
                listed[str(info['file'])] = info.get('sha256')
    if not listed:
        raise ShadowCopyError('the manifest %s lists no files; nothing pushed' % path)
    for name, expected in sorted(listed.items()):
        target = os.path.join(generation_dir, name)
        try:
            found = file_sha256(target)
        except (IOError, OSError) as exc:
            raise ShadowCopyError('%s: %s; the generation is not what the build published, nothing pushed'
                                  % (target, exc.strerror or exc))
        if found != expected:
            raise ShadowCopyError('%s has sha256 %s, but the manifest says %s: the file changed after the build '
                                  'published it; nothing pushed' % (target, found, expected))
    return manifest


def manifest_beside(path):
    """The manifest of the generation ``path`` belongs to, or None when it is not a generation's file."""
    try:
        with open(os.path.join(os.path.dirname(path), MANIFEST)) as handle:
            manifest = json.load(handle)
    except (IOError, OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def manifest_sha256(manifest, path):
    """The sha256 ``manifest`` lists for ``path``, or None when it does not list it."""
    info = (manifest.get('files') or {}).get(os.path.basename(path)) if manifest else None
    return info.get('sha256') if isinstance(info, dict) else None


def manifest_min_prefix(manifest):
    """{4: n, 6: m}: the minimum prefix lengths the build that wrote ``manifest`` refused broader entries by."""
    found = ((manifest or {}).get('policy') or {}).get('min_prefix') or {}
    return dict((version, found['v%d' % version]) for version in (V4, V6)
                if isinstance(found.get('v%d' % version), int))


def _mirror(result, mirror_dir, generation_dir):
    """publish_mirror, after the generation is published: a mirror that cannot be written is a warning beside the
    change that was made, never a failure that hides it."""
    try:
        result['mirrored'] = publish_mirror(mirror_dir, generation_dir)
    except (OSError, ValueError, ShadowCopyError) as exc:
        result['mirror_error'] = '%s: %s' % (getattr(exc, 'filename', None) or mirror_dir,
                                             getattr(exc, 'strerror', None) or exc)
        result['warnings'].append('generation %s is published in %s, but the mirror %s was not updated and still '
                                  'serves what it held: %s' % (result.get('generation'), os.path.dirname(
                                      os.path.dirname(generation_dir)), mirror_dir, result['mirror_error']))


def publish_mirror(mirror_dir, generation_dir, keep=2):
    """Copy a published generation to a mirror directory, with the same atomic ``current`` switch."""
    mirror = ShadowCopyStore(mirror_dir)
    files = {}
    for filename in sorted(os.listdir(generation_dir)):
        if filename == MANIFEST:
            continue
        with open(os.path.join(generation_dir, filename), 'rb') as handle:
            files[filename] = handle.read()
    with open(os.path.join(generation_dir, MANIFEST)) as handle:
        manifest = json.load(handle)
    current = mirror.current_manifest()
    if current and current.get('generation') == manifest['generation'] and \
            current.get('content_sha256') == manifest.get('content_sha256'):
        return False
    mirror.publish(manifest['generation'], files, manifest)
    mirror.prune(keep)
    return True


class _Tier(object):
    """One tier's file data per family, with what the feeds alone would publish when the fleet adds bans."""

    def __init__(self):
        self.files, self.info, self.removed, self.ranges = {}, {}, {}, {}
        self.feeds_ranges, self.feeds_entries = {}, 0
        self.source_removed = {}     # per allow source, what it kept out of this tier


def _tier_files(keys, allow_ranges, block=None, extra_keys=None, allow=None):
    """Merge one tier's keys, subtract the allowlist (and for challenge, the ``block`` tier); return a _Tier.

    ``keys`` maps each family to the key lists of the feeds, and is emptied.

    ``extra_keys`` (the fleet-local bans for this tier) join the feeds' merged
    ranges afterwards, so that what the feeds alone publish is counted exactly
    for the guards, at the cost of one more subtraction and count, not a
    second merge.
    """
    tier = _Tier()
    for version in (V4, V6):
        # Consumed: the keys (most of a big build's memory) go once merged.
        parts = keys.pop(version)
        # One feed's keys come sorted from parse_feed (split_tiers keeps their order); several need the sort.
        merged = merge_keys(parts[0] if len(parts) == 1 else list(chain.from_iterable(parts)), version,
                            presorted=len(parts) == 1)
        del parts
        if extra_keys is not None:
            feeds_only, _removed = subtract_ranges(merged, allow_ranges[version])
            if block is not None:
                feeds_only, _overlap = subtract_ranges(feeds_only, block.feeds_ranges[version])
            tier.feeds_ranges[version] = feeds_only
            tier.feeds_entries += count_networks(feeds_only, BITS[version])
            if extra_keys[version]:
                merged = insert_ranges(merged, merge_keys(list(extra_keys[version]), version))
        if allow is not None:
            allow_sources.add_removed(tier.source_removed, allow, version, merged)
        remaining, removed_count = subtract_ranges(merged, allow_ranges[version])
        if block is not None:
            remaining, _overlap = subtract_ranges(remaining, block.ranges[version])
        tier.ranges[version] = remaining
        tier.removed['v%d' % version] = removed_count
        data = networks_file(remaining, version)
        tier.files[version] = data
        tier.info[version] = {'sha256': hashlib.sha256(data).hexdigest(), 'entries': data.count(b'\n'),
                              'addresses': count_addresses(remaining)}
    return tier


def _allowlisted(allow_ranges, version, start, end):
    """Whether the allowlist covers the whole range ``start``-``end``."""
    ranges = allow_ranges[version]
    index = bisect_left(ranges, (start + 1,)) - 1
    return index >= 0 and ranges[index][1] >= end


def _enforced_entries(entries, parsed, allow_ranges, allow=None):
    """The offered entries that the copy enforces, and the others the allowlist or an allow source kept out (each
    with what kept it out: ``by``).

    An entry the refusal table refused is counted in the feed's refusals; one
    the allowlist covers entirely is enforced nowhere. Neither belongs in the
    generation's record of what fleet-local bans put in the copy.
    """
    accepted = {version: set(parsed.keys[version]) for version in (V4, V6)}
    enforced, allowlisted = [], []
    for entry in entries:
        try:
            version, start, prefixlen = parse_network(str(entry['address']))
        except AddressError:
            continue        # a sighting edited by hand: the parser counted it as invalid
        if network_key(version, start, prefixlen) not in accepted[version]:
            continue
        end = start + (1 << (BITS[version] - prefixlen)) - 1
        if _allowlisted(allow_ranges, version, start, end):
            by = next(('allow source %s' % name for name, ranges in sorted((allow.ranges if allow else {}).items())
                       if _allowlisted(ranges, version, start, end)), 'allowlist')
            allowlisted.append({'address': entry['address'], 'by': by,
                                'hosts': sorted(seen.get('host') for seen in entry.get('hosts') or [])})
            continue
        enforced.append(entry)
    return enforced, allowlisted


def _fleet_local_feed(root, fleet_local, refusals, allow_ranges, now, check_mode, allow=None):
    """Merge the harvest into the remembered sightings; return (enforced entries, info, parsed feed)."""
    now_epoch = int(now.timestamp())
    try:
        state, report = merge_harvest(load_fleet_local(root), fleet_local['harvest'], now_epoch,
                                      fleet_local['expiry'], fleet_local['jails'])
    except FleetLocalError as exc:
        raise ShadowCopyError(str(exc))
    if not check_mode:
        save_fleet_local(root, state)
    entries, pending = offered_entries(state, fleet_local['min_hosts'], fleet_local['expiry'])
    parsed = parse_feed(feed_body(entries), name=FLEET_LOCAL, fmt='plain', refusals=refusals)
    enforced, kept_out = _enforced_entries(entries, parsed, allow_ranges, allow)
    harvested = fleet_local['harvest'] is not None
    status = {'name': FLEET_LOCAL, 'source': 'fail2ban on %d hosts' % report['hosts'] if harvested
              else 'fail2ban (no harvest this run; remembered sightings only)',
              'format': 'fleet_local', 'preset': None, 'tier': fleet_local['tier'], 'requests': 0,
              'status': 'fresh' if harvested else 'cached', 'error': None,
              'harvest': report, 'pending_min_hosts': pending}
    status.update(parsed.summary())
    if report['invalid']:
        status['error'] = '%d harvested bans were not valid addresses and were ignored' % report['invalid']
    status['block' if fleet_local['tier'] == 'block' else 'challenge'] = parsed.accepted
    summary = {'entries': len(enforced), 'accepted': parsed.accepted, 'allowlisted': len(kept_out),
               # Which bans the allowlist or an allow source kept off the fleet, and which one (the first 20).
               'kept_out': kept_out[:20],
               'refused': parsed.refused_total, 'pending_min_hosts': pending,
               'sightings': len(state['sightings']), 'new': report['new'], 'unbanned': report['unbanned'],
               'expired': report['expired'],
               'hosts_harvested': report['hosts'] if harvested else None, 'invalid': report['invalid'],
               'hosts_unavailable': report['unavailable'],
               'expiry_seconds': fleet_local['expiry'], 'min_hosts': fleet_local['min_hosts'],
               'tier': fleet_local['tier']}
    return enforced, {'status': status, 'summary': summary}, parsed


def _sign_current(store, signing_key, warnings):
    """Sign the current generation when it has no valid signature yet (a key set since it was published)."""
    generation_dir = os.path.realpath(store.current_link)
    manifest = verify_generation(generation_dir)
    try:
        check_signature(generation_dir, manifest, signing_key)
        return
    except ShadowCopyError:
        pass
    write_atomic(os.path.join(generation_dir, SIGNATURE),
                 (manifest_signature(manifest, signing_key) + '\n').encode(), store.file_mode)
    warnings.append('signed generation %s, which had no valid signature, after checking its files against its '
                    'manifest' % manifest.get('generation'))


class _Plan(object):
    """What a build was asked for, validated before anything is fetched or locked."""

    def __init__(self, feeds, allowlist, refused_categories, min_prefix, presets, tiers, fleet_local, offline=False,
                 allow_feeds=()):
        self.names = _feed_names(feeds, fleet_local)
        self.offline = offline
        self.operator = None    # the operator's entries in force (operator_entries.py), read under the build's lock
        self.fleet_local = _fleet_local_options(fleet_local)
        self.thresholds = _thresholds(tiers)
        self.resolved = [_resolved_feed(spec, presets) for spec in feeds]
        try:
            scopes.check_admit_overlap([feed for feed, _secrets in self.resolved])
        except scopes.ScopeError as exc:
            raise ShadowCopyError(str(exc))
        try:
            allow_sources.check_names(allow_feeds, FEED_NAME)
        except allow_sources.AllowSourceError as exc:
            raise ShadowCopyError(str(exc))
        self.allow_resolved = [_resolved_feed(_with_allow_defaults(spec), presets) for spec in allow_feeds]
        kwargs = {} if refused_categories is None else {'categories': refused_categories}
        try:
            self.refusals = RefusalTable(min_prefix=min_prefix, **kwargs)
        except ValueError as exc:
            raise ShadowCopyError(str(exc))
        self.allowlist = list(allowlist)
        self.allowlist_entries = len(self.allowlist)
        self.allow_ranges = parse_allowlist(self.allowlist)
        # What an admit-only scope adds to its feeds' networks: the allowlist and the unblocks, not the allow sources.
        self.admit_ranges = self.allow_ranges

    def take_operator_entries(self, state):
        """The operator's entries in force join the build: its unblocks the allowlist, its blocks a feed."""
        self.operator = state
        unblocks = operator_entries.in_force(state, 'unblock')
        if unblocks:
            self.allow_ranges = self.admit_ranges = parse_allowlist(self.allowlist + unblocks)


def _with_allow_defaults(spec):
    """An allow source's settings, its own fail-safe's defaults (required, max_shrink_percent) where it has none."""
    given = dict((key, value) for key, value in spec.items() if value is not None)
    return dict(ALLOW_ONLY_DEFAULTS, **given)


def _feed_names(feeds, fleet_local):
    names = [spec.get('name') for spec in feeds]
    for name in names:
        if not name or not FEED_NAME.match(name):
            raise ShadowCopyError('feed name %r is not valid: use letters, digits, _ . -' % (name,))
        if fleet_local is not None and name == FLEET_LOCAL:
            raise ShadowCopyError('the feed name %s is reserved for the harvested fail2ban bans' % FLEET_LOCAL)
        if name == operator_entries.FEED_NAME:
            raise ShadowCopyError('the feed name %s is reserved for the operators\' own blocks (playbooks/block.yml)'
                                  % operator_entries.FEED_NAME)
        if name.endswith(ASN_LIST_SUFFIX):
            raise ShadowCopyError('feed name %s: names ending in %s are reserved for the caches of ASN lists '
                                  '(asns_from)' % (name, ASN_LIST_SUFFIX))
        if name.startswith(allow_sources.CACHE_PREFIX):
            # An allow source's copy is cached under that name: a feed of it would share the cache, and the source
            # would fall back on the feed's list as its "last good copy".
            raise ShadowCopyError('feed name %s: names beginning with %s are reserved for the allow sources\' caches'
                                  % (name, allow_sources.CACHE_PREFIX))
    if len(set(names)) != len(names):
        raise ShadowCopyError('feed names must be unique')
    if not feeds and fleet_local is None:
        # Most often the inventory is not the one meant (-i), or its group_vars were not copied along.
        raise ShadowCopyError('no feeds configured: the feeds option (shadow_copy_feeds with the role) is empty. '
                              'Is -i the inventory that sets it? inventory/example/group_vars/all.yml shows how, '
                              'and docs/presets/ has a page per provider')
    return names


def _fleet_local_options(fleet_local):
    if fleet_local is None:
        return None
    fleet_local = dict({'harvest': None, 'expiry': 86400, 'min_hosts': 1, 'tier': 'block', 'jails': []},
                       **fleet_local)
    if fleet_local['tier'] not in FLEET_LOCAL_TIERS:
        raise ShadowCopyError('fleet_local tier must be one of %s' % ', '.join(FLEET_LOCAL_TIERS))
    if fleet_local['expiry'] < 1 or fleet_local['min_hosts'] < 1:
        raise ShadowCopyError('fleet_local expiry and min_hosts must be at least 1')
    return fleet_local


def _thresholds(tiers):
    thresholds = dict(DEFAULT_TIERS)
    thresholds.update(tiers or {})
    if thresholds['challenge'] > thresholds['block']:
        raise ShadowCopyError('the challenge score (%s) must not be above the block score (%s)'
                              % (thresholds['challenge'], thresholds['block']))
    return thresholds


def _resolved_feed(spec, presets):
    """(feed, secrets) of one feed's options with its preset applied."""
    try:
        feed, secrets = resolve_feed(spec, presets)
    except PresetError as exc:
        raise ShadowCopyError(str(exc))
    if not feed.get('url') and not feed.get('path'):
        raise ShadowCopyError('feed %s needs url, path or a preset' % feed['name'])
    if feed.get('asns_from') is not None:
        feed['asns_from'], list_secrets = _resolved_asn_list(feed, presets)
        secrets = secrets + list_secrets
    if feed.get('tier', 'auto') not in TIERS:
        raise ShadowCopyError('feed %s: tier must be one of %s' % (feed['name'], ', '.join(TIERS)))
    try:
        scopes.feed_scope(feed)
    except scopes.ScopeError as exc:
        raise ShadowCopyError(str(exc))
    return feed, secrets


# An ASN list's cache name is its feed's and this (a feed's own name may not end in it).
ASN_LIST_SUFFIX = '.asns'


def _resolved_asn_list(feed, presets):
    """(list feed, secrets) of a feed's asns_from: a preset name, or a feed definition (url, path or preset, format,
    field, headers, ...), cached as <feed>.asns."""
    given = feed['asns_from']
    given = {'preset': given} if isinstance(given, str) else given
    if not isinstance(given, dict):
        raise ShadowCopyError('feed %s: asns_from must be a preset name (spamhaus_asn_drop) or a feed definition '
                              '(url, path or preset, format, field, ...)' % feed['name'])
    if feed.get('format') != 'ip2asn':
        raise ShadowCopyError('feed %s: asns_from selects the rows of an ip2asn table (format ip2asn, preset ip2asn), '
                              'not of a %s feed' % (feed['name'], feed.get('format') or 'auto'))
    spec = dict((key, value) for key, value in given.items() if key != 'asns_from')
    spec['name'] = feed['name'] + ASN_LIST_SUFFIX
    try:
        listed, secrets = resolve_feed(spec, presets)
    except PresetError as exc:
        raise ShadowCopyError('feed %s: asns_from: %s' % (feed['name'], exc))
    if not listed.get('url') and not listed.get('path'):
        raise ShadowCopyError('feed %s: asns_from needs url, path or a preset' % feed['name'])
    if (listed.get('format') or 'auto') not in ASN_LIST_FORMATS:
        raise ShadowCopyError('feed %s: asns_from: an ASN list is read as %s, not %s'
                              % (feed['name'], ', '.join(ASN_LIST_FORMATS), listed.get('format')))
    return listed, secrets


class _Collected(object):
    """What the feeds (and the fleet's bans) gave: per-feed statuses, each tier's key lists, the refusals."""

    def __init__(self, names):
        self.names = list(names)
        self.statuses = []
        self.parsed_feeds = []
        # Each family's key lists, one a feed: a single feed's list is merged as it is, never copied.
        self.block_keys = {V4: [], V6: []}
        self.challenge_keys = {V4: [], V6: []}
        self.refusal_counts = {}
        self.refused_entries = []
        self.refused_truncated = False
        self.fleet_entries = self.fleet_info = None
        self.fleet_keys = {'block': None, 'challenge': None}
        self.allow = allow_sources.Loaded()
        self.scopes = scopes.Scopes()
        # Admit-only feeds with no copy at all: without them, their ports would open to everyone.
        self.failed_admit = []

    def count_refusals(self, parsed):
        for reason, count in parsed.refused.items():
            self.refusal_counts[reason] = self.refusal_counts.get(reason, 0) + count
        self.refused_entries.extend(parsed.refused_entries)
        self.refused_truncated = self.refused_truncated or bool(getattr(parsed, 'refused_truncated', False))


def _collect(store, root, plan, now, fetcher, check_mode):
    """Load every feed (fetched, revalidated or cached) and the fleet's bans; nothing is merged yet."""
    collected = _Collected(plan.names)
    if plan.allow_resolved:
        # First: what they keep reachable is kept out of everything after, the fleet's bans included.
        collected.allow = _load_allow_sources(store, plan, now, fetcher)
        plan.allow_ranges = collected.allow.merged_with(plan.allow_ranges)
    for feed, secrets in plan.resolved:
        status, parsed, cache_update = _load_feed(store, feed, secrets, plan.refusals, now, fetcher, plan.offline)
        collected.statuses.append(status)
        collected.parsed_feeds.append(parsed)
        _update_feed_cache(store, feed['name'], cache_update)
        cache_update = None     # the body: as large as the feed, and not needed again
        if parsed is not None:
            _add_feed_tiers(collected, status, parsed, feed.get('tier', 'auto'), plan.thresholds,
                            scopes.feed_scope(feed))
        elif feed.get('tier') == scopes.ADMIT:
            collected.failed_admit.append(feed['name'])
    if plan.fleet_local is not None:
        _add_fleet_local(collected, root, plan, now, check_mode)
    if plan.operator and operator_entries.in_force(plan.operator, 'block'):
        _add_operator_blocks(collected, plan)
    return collected


def _load_allow_sources(store, plan, now, fetcher):
    def load_source(spec, secrets):
        status, parsed, cache_update = _load_feed(store, spec, secrets, plan.refusals, now, fetcher, plan.offline)
        _update_feed_cache(store, spec['name'], cache_update)
        return status, parsed
    try:
        return allow_sources.load(plan.allow_resolved, load_source, DEFAULT_MAX_AGE)
    except allow_sources.AllowSourceError as exc:
        raise ShadowCopyError(str(exc))


def _add_operator_blocks(collected, plan):
    """The operators' blocks in force: one more feed, ``operator``, in the block tier, refused where any feed's
    entry would be (a block of 10.0.0.0/8 is not published)."""
    name = operator_entries.FEED_NAME
    parsed = parse_feed(operator_entries.feed_body(plan.operator), name=name, fmt='plain', refusals=plan.refusals)
    status = {'name': name, 'source': 'playbooks/block.yml (operator_entries.json)', 'format': 'operator',
              'preset': None, 'tier': 'block', 'requests': 0, 'status': 'fresh', 'error': None}
    status.update(parsed.summary())
    collected.names.append(name)
    collected.statuses.append(status)
    collected.parsed_feeds.append(parsed)
    _add_feed_tiers(collected, status, parsed, 'block', plan.thresholds)


def _operator_state(root, plan, request, now, check_mode):
    """Read the operators' entries, drop the expired ones, apply ``request``; saved (not in check mode) before the
    build uses them. Returns what the result and the manifest say of them."""
    now_epoch = int(now.timestamp())
    try:
        state, events = operator_entries.expire(operator_entries.load_state(root), now_epoch)
        if request:
            state, event = operator_entries.apply_request(state, request, now_epoch)
            events.append(event)
    except operator_entries.OperatorEntryError as exc:
        raise ShadowCopyError(str(exc))
    if events and not check_mode:
        operator_entries.save_state(root, state)
    plan.take_operator_entries(state)
    return {'in_force': state['entries'], 'events': events}


def _update_feed_cache(store, name, cache_update):
    # In check mode too: the feed cache is the controller's, and a preview that downloaded a feed must not
    # make the run after it download again (AbuseIPDB's free tier allows five downloads a day).
    if cache_update is None:
        return
    if isinstance(cache_update, tuple):
        store.write_feed_cache(name, cache_update[1], cache_update[2])
    else:
        store.write_feed_meta(name, cache_update)


def _add_feed_tiers(collected, status, parsed, tier, thresholds, scope=None):
    """A feed's keys into the tiers; with a ``scope`` (scopes.feed_scope), what would be blocked goes to the scope
    instead (an admit-only feed's keys all do)."""
    if scope is not None and scope[0] == 'admit':
        block, challenge, dropped = parsed.keys, {V4: [], V6: []}, 0
    else:
        block, challenge, dropped = split_tiers(parsed, tier, thresholds)
    if scope is not None:
        status['scope'] = scopes.scope_name(scope)
        status['scoped'] = len(block[V4]) + len(block[V6])
        collected.scopes.add(scope, status['name'], block)
        block = {V4: [], V6: []}
    status['block'] = len(block[V4]) + len(block[V6])
    status['challenge'] = len(challenge[V4]) + len(challenge[V6])
    status['below_challenge_score'] = dropped
    for version in (V4, V6):
        for keys, tier_keys in ((collected.block_keys, block), (collected.challenge_keys, challenge)):
            if tier_keys[version]:
                keys[version].append(tier_keys[version])
    collected.count_refusals(parsed)


def _add_fleet_local(collected, root, plan, now, check_mode):
    collected.fleet_entries, collected.fleet_info, parsed = _fleet_local_feed(
        root, plan.fleet_local, plan.refusals, plan.allow_ranges, now, check_mode, collected.allow)
    collected.names.append(FLEET_LOCAL)
    collected.statuses.append(collected.fleet_info['status'])
    collected.parsed_feeds.append(parsed)
    # Both tiers count what the feeds alone publish (for the guards); the bans join one of them.
    collected.fleet_keys = {'block': {V4: [], V6: []}, 'challenge': {V4: [], V6: []}}
    collected.fleet_keys[plan.fleet_local['tier']] = parsed.keys
    collected.count_refusals(parsed)


class _Merged(object):
    """The copy's files: each tier merged, the allowlist subtracted, hashed; and the provenance file."""

    def __init__(self, block_tier, challenge_tier, provenance_path, fleet_entries, allow=None, scoped=None):
        self.block_tier, self.challenge_tier, self.provenance_path = block_tier, challenge_tier, provenance_path
        self.files, self.file_info = {}, {}
        self.scoped = scoped or scopes.ScopeFiles()
        allow_files = allow_sources.generation_files(allow) if allow is not None else {}
        self.files.update(allow_files)
        if fleet_entries is not None:
            self.files[FLEET_LOCAL_FILE] = json.dumps(fleet_entries, indent=1, sort_keys=True).encode()
        for version in (V4, V6):
            self.files[FILES[version]] = block_tier.files[version]
            self.files[CHALLENGE_FILES[version]] = challenge_tier.files[version]
            self.file_info[FILES[version]] = dict(block_tier.info[version], tier='block')
            self.file_info[CHALLENGE_FILES[version]] = dict(challenge_tier.info[version], tier='challenge')
        self.content_sha = _content_sha(self.file_info, challenge_tier.info, fleet_entries, allow_files)
        if self.scoped.file_info:
            # Ports scoped by a feed are part of what hosts enforce; a copy without scopes keeps its hash.
            self.files.update(self.scoped.files)
            self.file_info.update(self.scoped.file_info)
            self.content_sha = hashlib.sha256((self.content_sha + self.scoped.content_text()).encode()).hexdigest()
        self.total = sum(info['entries'] for info in self.file_info.values())
        self.entries = {'v4': block_tier.info[V4]['entries'], 'v6': block_tier.info[V6]['entries'],
                        'challenge_v4': challenge_tier.info[V4]['entries'],
                        'challenge_v6': challenge_tier.info[V6]['entries']}
        self.allowlist_removed = {'addresses_removed': block_tier.removed,
                                  'challenge_addresses_removed': challenge_tier.removed}


def _merge(root, plan, collected, provenance):
    """Each tier's files from the collected keys, with the provenance written meanwhile by a forked child."""
    provenance_path = provenance_pid = None
    if provenance and not all(p is None for p in collected.parsed_feeds):
        provenance_path = os.path.join(root, '.provenance-%d.tmp' % os.getpid())
        provenance_pid = _start_provenance(provenance_path, collected.names, collected.parsed_feeds)
    # The provenance has what it needs (a forked child has its own copy); dropped here, the feeds'
    # keys are freed as each tier is merged.
    collected.parsed_feeds = None
    try:
        block_tier = _tier_files(collected.block_keys, plan.allow_ranges, extra_keys=collected.fleet_keys['block'],
                                 allow=collected.allow)
        challenge_tier = _tier_files(collected.challenge_keys, plan.allow_ranges, block_tier,
                                     extra_keys=collected.fleet_keys['challenge'], allow=collected.allow)
        scoped = scopes.scope_files(collected.scopes, plan.allow_ranges, plan.admit_ranges)
        if provenance_path:
            provenance_path = _finish_provenance(provenance_pid, provenance_path)
            provenance_pid = None
    except BaseException:
        if provenance_pid:
            os.waitpid(provenance_pid, 0)
        raise
    return _Merged(block_tier, challenge_tier, provenance_path, collected.fleet_entries, collected.allow, scoped)


def _content_sha(file_info, challenge_info, fleet_entries, allow_files=None):
    """The hash of what hosts enforce, in a fixed order: an unchanged copy is recognised whatever the feeds'
    metadata says."""
    content_sha = hashlib.sha256(b''.join(
        bytes.fromhex(file_info[f]['sha256'])
        for f in (FILES[V4], FILES[V6], CHALLENGE_FILES[V4], CHALLENGE_FILES[V6]))).hexdigest()
    if not any(challenge_info[v]['entries'] for v in (V4, V6)):
        # Keep the hash of a copy without a challenge tier as it was
        # before tiers existed, so upgrading does not publish a new one.
        content_sha = hashlib.sha256(b''.join(
            bytes.fromhex(file_info[FILES[v]]['sha256']) for v in (V4, V6))).hexdigest()
    if fleet_entries is not None:
        # Which addresses fleet-local bans put in the copy is part of it, even when the feeds already
        # cover them: otherwise a generation's fleet_local.json would keep naming bans that ended.
        content_sha = hashlib.sha256((content_sha + '\n' + '\n'.join(
            e['address'] for e in fleet_entries)).encode()).hexdigest()
    if allow_files:
        # What the allow sources list is published for explain and the hosts' trusted proxies: a source that
        # changed makes a new generation even when the tiers did not.
        content_sha = hashlib.sha256((content_sha + ''.join(
            '\n%s %s' % (name, hashlib.sha256(data).hexdigest()) for name, data in sorted(allow_files.items())))
            .encode()).hexdigest()
    return content_sha


def _first_result(store, previous, plan, collected, merged):
    """The result as it stands before the guards: the current generation, this run's counts and warnings."""
    statuses = collected.statuses
    warnings = ['feed %(name)s: %(status)s: %(error)s' % s for s in statuses if s.get('error')]
    stale = stale_feeds(plan.resolved, statuses)
    warnings.extend('feed %s: %s, past its max_age of %d s; the run fails for it once the hosts have the rest'
                    % (s['name'], 'no copy at all' if s['age_seconds'] is None
                       else 'its copy is %d s old' % s['age_seconds'], s['max_age']) for s in stale)
    result = {
        'changed': False, 'published': False, 'withheld': None,
        'generation': previous['generation'] if previous else None,
        'path': store.current_link, 'feeds': statuses, 'entries': merged.entries, 'scopes': merged.scoped.manifest,
        'refused': collected.refusal_counts, 'warnings': warnings, 'mirrored': False, 'stale_feeds': stale,
        # What the allowlist unblocked is said in the run, not only in the manifest.
        'allowlist': dict(merged.allowlist_removed,
                          ranges=len(plan.allow_ranges[V4]) + len(plan.allow_ranges[V6])),
        'allow_feeds': allow_sources.statuses_with_removed(collected.allow, merged.block_tier.source_removed,
                                                           merged.challenge_tier.source_removed),
    }
    warnings.extend(collected.allow.warnings)
    if previous:
        result['generation_path'] = os.path.realpath(store.current_link)
    return result


def _withheld(previous, plan, collected, merged, feed_count, force, max_shrink_percent):
    """Why the new copy must not replace the current generation, or None.

    Fleet-local entries come and go by design; the guards protect against
    feeds that broke, so they count (at most) the feeds' share.
    """
    prev_total = sum(info['entries'] for info in previous['files'].values()) if previous else 0
    guard_total = (merged.block_tier.feeds_entries + merged.challenge_tier.feeds_entries
                   if plan.fleet_local is not None else merged.total)
    prev_guard = ((previous or {}).get('fleet_local') or {}).get('feeds_entries', prev_total)
    if collected.fleet_info:
        collected.fleet_info['summary']['feeds_entries'] = guard_total
    if feed_count and all(s['status'] == 'failed' for s in collected.statuses[:feed_count]):
        return 'no feed could be fetched or read from cache'
    if collected.failed_admit:
        return ('the admit-only feed(s) %s have no usable copy: published without them, their ports would admit '
                'everyone' % ', '.join(collected.failed_admit))
    if merged.scoped.empty_admit:
        return ('the admit-only list %s has no networks from its feeds: published, it would close its ports to all '
                'but the allowlist' % ', '.join(merged.scoped.empty_admit))
    if guard_total == 0 and prev_guard > 0:
        return ('the new copy is empty; an empty result never replaces generation %d with %d entries'
                % (previous['generation'], prev_total))
    if prev_guard and not force and (prev_guard - guard_total) * 100.0 / prev_guard > max_shrink_percent:
        return ('the new copy has %d entries, %.1f%% fewer than generation %d (%d); '
                'the limit is %s%% (max_shrink_percent); set force (shadow_copy_force with the role, '
                '-e shadow_copy_force=true) to publish anyway'
                % (guard_total, (prev_guard - guard_total) * 100.0 / prev_guard,
                   previous['generation'], prev_guard, max_shrink_percent))
    return None


def _keep_current(store, result, previous, merged, signing_key, mirror_dir, check_mode):
    """Nothing to publish (withheld, or the same copy): the current generation stays, signed and mirrored."""
    if result['withheld']:
        result['warnings'].append('not published: ' + result['withheld'])
    if merged.provenance_path:
        os.unlink(merged.provenance_path)
    if signing_key and previous and not check_mode:
        _sign_current(store, signing_key, result['warnings'])
    if mirror_dir and previous and not check_mode:
        _mirror(result, mirror_dir, os.path.realpath(store.current_link))
    return result


def _manifest(generation, now, previous, plan, collected, merged, force, max_shrink_percent):
    provenance_info = None
    if merged.provenance_path:
        with open(merged.provenance_path, 'rb') as handle:
            provenance_info = {'file': PROVENANCE, 'sha256': hashlib.sha256(handle.read()).hexdigest(),
                               'feeds': collected.names, 'columns': ['entry', 'feeds', 'best_score']}
            # A feed parsed from an address plan (its status counts the rows not selected) labels its networks.
            if any('not_selected' in status for status in collected.statuses):
                provenance_info['columns'].append('labels')
    manifest = {
        'format': MANIFEST_FORMAT,
        'generation': generation,
        'created': now.isoformat(),
        'content_sha256': merged.content_sha,
        'files': merged.file_info,
        'tiers': {'block_score': plan.thresholds['block'], 'challenge_score': plan.thresholds['challenge'],
                  'block_files': [FILES[V4], FILES[V6]],
                  'challenge_files': [CHALLENGE_FILES[V4], CHALLENGE_FILES[V6]]},
        'provenance': provenance_info,
        # Feeds scoped to ports (scopes.py): each scope's kind, ports, feeds and files.
        'scopes': merged.scoped.manifest,
        'feeds': collected.statuses,
        'allowlist': dict(merged.allowlist_removed, entries=plan.allowlist_entries),
        # Each allow source's status (its copy's age among it) and what it kept out of this generation.
        'allow_feeds': allow_sources.statuses_with_removed(collected.allow, merged.block_tier.source_removed,
                                                           merged.challenge_tier.source_removed),
        'refusals': {'by_reason': collected.refusal_counts, 'entries': collected.refused_entries,
                     'truncated': collected.refused_truncated},
        'policy': {'min_prefix': {'v4': plan.refusals.min_prefix[V4], 'v6': plan.refusals.min_prefix[V6]},
                   'refused_categories': sorted(plan.refusals.categories),
                   'max_shrink_percent': max_shrink_percent, 'forced': bool(force)},
        'previous_generation': previous['generation'] if previous else None,
    }
    if collected.fleet_info:
        manifest['fleet_local'] = dict(collected.fleet_info['summary'], file=FLEET_LOCAL_FILE)
    if plan.operator and plan.operator['entries']:
        manifest['operator_entries'] = plan.operator['entries']
    return manifest


def _publish(store, result, manifest, merged, signing_key, keep_generations, mirror_dir, check_mode):
    """Write the new generation (or, in check mode, the preview) and point ``current`` at it."""
    files = dict(merged.files)
    moves = {PROVENANCE: merged.provenance_path} if merged.provenance_path else {}
    if signing_key:
        files[SIGNATURE] = (manifest_signature(manifest, signing_key) + '\n').encode()
    result.update(changed=True, published=not check_mode, generation=manifest['generation'])
    if check_mode:
        # A preview must show hosts the diff of the copy this run would
        # publish, so its files go to a scratch directory that nothing
        # else reads; 'current' and the feed cache stay untouched.
        result['path'] = result['generation_path'] = store.write_preview(files, manifest, moves)
        return result
    final = store.publish(manifest['generation'], files, manifest, moves)
    result['generation_path'] = final
    result['pruned'] = store.prune(keep_generations)
    if mirror_dir:
        _mirror(result, mirror_dir, final)
    return result


def build_shadow_copy(root, feeds, allowlist=(), refused_categories=None, min_prefix=None,
                      max_shrink_percent=50, force=False, keep_generations=10, check_mode=False,
                      fetcher=fetch_response, file_mode=0o644, now=None, presets=None, tiers=None,
                      provenance=True, mirror_dir=None, fleet_local=None, signing_key=None, operator_request=None,
                      offline=False, allow_feeds=()):
    """Fetch every feed, build a generation and publish it if it is safe to.

    Returns a result dict for the module.  Nothing is published when the new
    generation is empty while the current one is not, when it shrank past
    ``max_shrink_percent`` (unless ``force``), or when no feed was usable.

    ``fleet_local`` (a dict with ``harvest``, ``expiry``, ``min_hosts``,
    ``tier`` and ``jails``) adds the fleet's own fail2ban bans as one more
    feed; see fleet_local.py.  Its entries expire by design, so the empty and
    shrink guards count only what the other feeds contribute.

    With ``signing_key``, every generation carries ``manifest.sig``, the
    manifest's HMAC; a current generation without one (the key is new) is
    signed once its files are checked against its manifest.

    The operators' own entries (operator_entries.py) are read under the
    build's lock, the expired ones dropped and ``operator_request`` (action,
    entry, ttl, reason, by) applied: the unblocks in force join the
    allowlist, the blocks one more feed. ``offline`` answers every feed from
    its cached copy, asking no provider (an operator's entry, published now).

    ``allow_feeds`` are allow sources (allow_sources.py): fetched like feeds,
    subtracted like the allowlist, and failing closed when one has no good copy.

    The stages: validate (_Plan), collect, merge, guard, then keep the
    current generation or write the manifest and publish.
    """
    plan = _Plan(feeds, allowlist, refused_categories, min_prefix, presets, tiers, fleet_local, offline, allow_feeds)
    now = now or _utcnow()
    store = ShadowCopyStore(root, file_mode=file_mode)
    store.lock()
    try:
        previous = store.current_manifest()
        operator = _operator_state(root, plan, operator_request, now, check_mode)
        collected = _collect(store, root, plan, now, fetcher, check_mode)
        merged = _merge(root, plan, collected, provenance)
        result = _first_result(store, previous, plan, collected, merged)
        result['withheld'] = _withheld(previous, plan, collected, merged, len(feeds), force, max_shrink_percent)
        if collected.fleet_info:
            result['fleet_local'] = collected.fleet_info['summary']
        result['operator_entries'] = operator
        if result['withheld'] or (previous and previous.get('content_sha256') == merged.content_sha):
            return _keep_current(store, result, previous, merged, signing_key, mirror_dir, check_mode)
        generation = max(store.generation_numbers() + [previous['generation'] if previous else 0]) + 1
        manifest = _manifest(generation, now, previous, plan, collected, merged, force, max_shrink_percent)
        return _publish(store, result, manifest, merged, signing_key, keep_generations, mirror_dir, check_mode)
    finally:
        # Whatever this build wrote and did not publish (a full disk, an error) goes, under its lock.
        store.remove_leftovers()
        store.unlock()
