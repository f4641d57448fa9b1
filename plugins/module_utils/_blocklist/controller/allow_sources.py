# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Allow sources: the ranges their owners publish (CDNs, clouds, monitors), fetched and cached as the feeds are,
and subtracted exactly from every tier as the static allowlist is.

Their fail-safe runs the other way round. A threat feed that shrinks unblocks a little; an allow source that
shrinks (or fails, or answers Cloudflare's "Just a moment..." page) can block a CDN and take a site down. So a
source's fetch that fails, cannot be parsed, answers HTML or shrank past its ``max_shrink_percent`` keeps the
source's last good copy (the feed loader's cache, with a warning naming the source), and a source that has no good
copy at all stops the build (fail closed) unless it says ``required: false``.

The loading itself is the feeds' (shadow_copy._load_feed), handed in as a function: this module decides what an
allow source's answer means.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right

from ..addresses import BITS, count_networks, merge_keys, merge_ranges, networks_file

V4, V6 = 4, 6
# Each source's cached copy is kept under this prefix, so that an allow source and a feed may share a name.
CACHE_PREFIX = 'allow.'
# Settings of a threat feed that mean nothing for an allow source.
FEED_ONLY_SETTINGS = ('tier', 'level')


class AllowSourceError(Exception):
    pass


def check_names(allow_feeds, name_pattern):
    """Every allow source has a valid name of its own, and no setting that only a threat feed has."""
    names = [feed.get('name') for feed in allow_feeds]
    for feed, name in zip(allow_feeds, names):
        if not name or not name_pattern.match(name):
            raise AllowSourceError('allow source name %r is not valid: use letters, digits, _ . -' % (name,))
        given = [key for key in FEED_ONLY_SETTINGS if feed.get(key) is not None]
        if given:
            raise AllowSourceError('allow source %s: %s applies to a threat feed only' % (name, ', '.join(given)))
    if len(set(names)) != len(names):
        raise AllowSourceError('allow source names must be unique')


class Loaded(object):
    """What the allow sources gave: each one's ranges per family, their statuses, and the warnings to say."""

    def __init__(self):
        self.ranges = {}        # source name: {V4: ranges, V6: ranges}
        self.files = {}         # source name: {'v4': {'file', 'sha256'}, 'v6': ...}, once generation_files ran
        self.statuses = []
        self.warnings = []

    def merged_with(self, allow_ranges):
        """``allow_ranges`` (the static allowlist's, per family) with every source's ranges added."""
        merged = {}
        for version in (V4, V6):
            listed = [pair for ranges in self.ranges.values() for pair in ranges[version]]
            merged[version] = merge_ranges(list(allow_ranges[version]) + listed)
        return merged


def load(resolved, load_source, default_max_age):
    """Load each of ``resolved`` ([(feed, secrets)]) with ``load_source(feed, secrets)`` -> (status, parsed or None);
    return a Loaded.  Raises AllowSourceError for a required source without a good copy: nothing is published."""
    loaded = Loaded()
    for feed, secrets in resolved:
        status, parsed = load_source(dict(feed, name=CACHE_PREFIX + feed['name']), secrets)
        status = dict(status, name=feed['name'], kind='allow')
        loaded.statuses.append(status)
        if parsed is None:
            _without_copy(loaded, feed, status)
            continue
        loaded.ranges[feed['name']] = dict((version, merge_keys(list(parsed.keys[version]), version))
                                           for version in (V4, V6))
        status['networks'] = sum(count_networks(loaded.ranges[feed['name']][v], BITS[v]) for v in (V4, V6))
        _say_what_it_kept(loaded, feed, status, default_max_age)
    return loaded


def _without_copy(loaded, feed, status):
    error = status.get('error') or 'no copy'
    if feed.get('required', True):
        raise AllowSourceError(
            'allow source %s has no good copy (%s): nothing is published until it has one, so that what it keeps '
            'reachable is never blocked (fail closed). Fix the source, or set required: false for it to build '
            'without it' % (feed['name'], error))
    loaded.warnings.append('allow source %s: %s; it has no good copy, and required is false: this build goes on '
                           'without it' % (feed['name'], error))
    # Published as empty files all the same: what reads them (the nginx role's trusted proxies) finds the source
    # and trusts nothing of it, rather than failing every host.
    loaded.ranges[feed['name']] = {V4: [], V6: []}
    status['networks'] = 0


def _say_what_it_kept(loaded, feed, status, default_max_age):
    """Warn when a source fell back on its last good copy, and when that copy is older than its max_age."""
    if status.get('error'):
        loaded.warnings.append('allow source %s: %s: %s; its last good copy is used' % (
            feed['name'], status.get('status'), status['error']))
    max_age = feed.get('max_age')
    max_age = default_max_age if max_age is None else max_age
    age = status.get('age_seconds')
    status['max_age'] = max_age
    status['stale'] = bool(max_age) and age is not None and age > max_age
    if status['stale']:
        loaded.warnings.append('allow source %s: its copy is %d s old, past its max_age of %d s; what it keeps '
                               'reachable may have changed since' % (feed['name'], age, max_age))


def overlap(ranges, holes):
    """The parts of sorted disjoint ``ranges`` that sorted disjoint ``holes`` cover, as sorted (start, end) pairs.

    By bisection per hole, not a walk of ``ranges``: a source has thousands of ranges, a tier a million."""
    starts = ranges.starts if hasattr(ranges, 'starts') else [start for start, _end in ranges]
    ends = ranges.ends if hasattr(ranges, 'ends') else [end for _start, end in ranges]
    covered = []
    for hole_start, hole_end in holes:
        index = max(bisect_right(starts, hole_start) - 1, 0)
        while index < len(starts) and starts[index] <= hole_end:
            low, high = max(starts[index], hole_start), min(ends[index], hole_end)
            if low <= high:
                covered.append((low, high))
            index += 1
    return covered


def add_removed(counts, loaded, version, tier_ranges):
    """Add to ``counts`` ({name: {'addresses', 'networks'}}) what each source covers of a tier's ``tier_ranges`` of
    ``version``, before any subtraction (networks: the fewest CIDRs of what it kept out)."""
    for name, ranges in loaded.ranges.items():
        covered = overlap(tier_ranges, ranges[version])
        removed = counts.setdefault(name, {'addresses': 0, 'networks': 0})
        removed['addresses'] += sum(end - start + 1 for start, end in covered)
        removed['networks'] += count_networks(covered, BITS[version])
    return counts


def statuses_with_removed(loaded, *tier_counts):
    """The sources' statuses, each with what it kept out of the tiers (``addresses_removed``,
    ``networks_removed``) and the generation's files of its ranges (``files``, per family: file and sha256)."""
    statuses = []
    for status in loaded.statuses:
        counts = [counts.get(status['name']) or {} for counts in tier_counts]
        status = dict(status, addresses_removed=sum(c.get('addresses', 0) for c in counts),
                      networks_removed=sum(c.get('networks', 0) for c in counts))
        if status['name'] in loaded.files:
            status['files'] = loaded.files[status['name']]
        statuses.append(status)
    return statuses


def file_name(name, version):
    return 'allow_%s_v%d.txt' % (name, version)


def generation_files(loaded):
    """{file name: bytes} of each source's ranges, one file per family, as the tiers' files are written: published
    in the generation, so that explain names the source and the hosts read the ranges without a second download.
    Records each file's sha256 in ``loaded.files`` for the manifest."""
    files = {}
    for name, ranges in sorted(loaded.ranges.items()):
        loaded.files[name] = {}
        for version in (V4, V6):
            data = networks_file(ranges[version], version)
            files[file_name(name, version)] = data
            loaded.files[name]['v%d' % version] = {'file': file_name(name, version),
                                                   'sha256': hashlib.sha256(data).hexdigest()}
    return files
