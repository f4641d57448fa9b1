# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Feeds scoped to ports: a block that holds on some ports only, and an admit-only list for a port.

A country or an ASN is too broad to drop whole: its users reach the public
web site, and only the admin port should refuse them.  A feed with ``ports``
therefore puts its block-tier networks in a scope of their own, not in the
block tier every backend enforces on all traffic; the kernel backends drop
them on those ports only.

``tier: admit_only`` turns a feed around: its networks are the only sources
that may reach its ``ports`` ("port 22 only from NO and SE").  The static
allowlist and the operators' unblocks join them here, and each host adds what
lockout protection knows (its SSH client, its own addresses and gateways).
Two admit-only scopes on one port would intersect (a source must pass both),
so admit-only feeds that share a port must name the same ports and are one
scope, the union of their networks.

Each scope is written as ``scope_<name>_v4.txt`` and ``_v6.txt`` beside the
tiers, listed in the manifest (``scopes``) and in the content hash.
"""

from __future__ import annotations

import hashlib

from ..addresses import V4, V6, insert_ranges, merge_keys, networks_file, count_addresses, subtract_ranges

ADMIT = 'admit_only'
KINDS = ('block', 'admit')
PROTOCOLS = ('tcp', 'udp')
# Ports one feed may scope: the scope's name carries them, and an nft set name has at most 63 characters, of which
# the role's prefix and family take 19 (fleetwall_scope_..._v4).
MAX_PORTS = 5


class ScopeError(ValueError):
    """A feed's ports cannot be scoped as given."""


def feed_scope(feed):
    """(kind, protocol, ports) of a feed's scope, or None for a feed that holds on all traffic."""
    ports = feed.get('ports') or []
    tier = feed.get('tier') or 'auto'
    if tier == ADMIT and not ports:
        raise ScopeError('feed %s: tier admit_only needs ports, the ports only its networks may reach (an admit-only '
                         'list for all traffic would cut the host off from everyone else)' % feed['name'])
    if not ports:
        return None
    if tier == 'challenge':
        raise ScopeError('feed %s: ports do not apply to the challenge tier, which the web tier enforces on its own '
                         'requests; use tier block or admit_only with ports' % feed['name'])
    protocol = feed.get('protocol') or 'tcp'
    if protocol not in PROTOCOLS:
        raise ScopeError('feed %s: protocol must be one of %s' % (feed['name'], ', '.join(PROTOCOLS)))
    if len(ports) > MAX_PORTS:
        raise ScopeError('feed %s: at most %d ports a feed' % (feed['name'], MAX_PORTS))
    numbers = []
    for port in ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ScopeError('feed %s: port %r is not a port number (1-65535)' % (feed['name'], port))
        numbers.append(port)
    if len(set(numbers)) != len(numbers):
        raise ScopeError('feed %s: a port is listed twice' % feed['name'])
    return ('admit' if tier == ADMIT else 'block', protocol, tuple(sorted(numbers)))


def scope_name(scope):
    kind, protocol, ports = scope
    return '%s_%s_%s' % (kind, protocol, '_'.join(str(port) for port in ports))


def file_names(scope):
    name = scope_name(scope)
    return {V4: 'scope_%s_v4.txt' % name, V6: 'scope_%s_v6.txt' % name}


def check_admit_overlap(feeds):
    """ScopeError when two admit-only scopes share a port: each would drop what the other admits."""
    admit = sorted(set(scope for scope in (feed_scope(feed) for feed in feeds) if scope and scope[0] == 'admit'))
    for index, first in enumerate(admit):
        for second in admit[index + 1:]:
            if first[1] == second[1] and set(first[2]) & set(second[2]):
                raise ScopeError('admit-only feeds on %s ports %s and %s share a port: a source would have to be in '
                                 'both lists. Give feeds that admit to the same port the same ports (they are then '
                                 'one list, their union)' % (first[1], ','.join(map(str, first[2])),
                                                             ','.join(map(str, second[2]))))


class Scopes(object):
    """The scoped feeds' keys, per scope and family, and which feeds fed each scope."""

    def __init__(self):
        self.keys = {}
        self.feeds = {}

    def add(self, scope, feed_name, keys):
        wanted = self.keys.setdefault(scope, {V4: [], V6: []})
        for version in (V4, V6):
            if keys[version]:
                wanted[version].append(keys[version])
        self.feeds.setdefault(scope, []).append(feed_name)

    def __bool__(self):
        return bool(self.keys)

    __nonzero__ = __bool__


class ScopeFiles(object):
    """Each scope's files, their manifest entries, and what the content hash adds for them."""

    def __init__(self):
        self.files, self.file_info, self.manifest = {}, {}, []
        self.empty_admit = []

    def content_text(self):
        return ''.join('\n%s %s' % (name, info['sha256']) for name, info in sorted(self.file_info.items()))


def scope_files(scopes, allow_ranges, admit_ranges):
    """The files of every scope: a block scope minus the allowlist and the allow sources (``allow_ranges``), as the
    block tier is; an admit scope with the allowlist and the operators' unblocks (``admit_ranges``) added.

    The allow sources (CDNs, clouds) are kept reachable, not admitted: adding all of AWS to the sources that may
    reach an admin port would leave little of the restriction.
    """
    out = ScopeFiles()
    for scope in sorted(scopes.keys):
        kind = scope[0]
        names = file_names(scope)
        entry = {'name': scope_name(scope), 'kind': kind, 'protocol': scope[1], 'ports': list(scope[2]),
                 'feeds': scopes.feeds[scope], 'files': {}, 'entries': {}, 'feed_ranges': 0}
        for version in (V4, V6):
            parts = scopes.keys[scope][version]
            merged = merge_keys([key for part in parts for key in part], version)
            entry['feed_ranges'] += len(merged)
            if kind == 'admit':
                ranges = insert_ranges(merged, admit_ranges[version])
            else:
                ranges, _removed = subtract_ranges(merged, allow_ranges[version])
            data = networks_file(ranges, version)
            out.files[names[version]] = data
            out.file_info[names[version]] = {'sha256': hashlib.sha256(data).hexdigest(), 'entries': data.count(b'\n'),
                                             'addresses': count_addresses(ranges), 'tier': 'scope'}
            entry['files']['v%d' % version] = names[version]
            entry['entries']['v%d' % version] = data.count(b'\n')
        if kind == 'admit' and not entry['feed_ranges']:
            out.empty_admit.append(entry['name'])
        out.manifest.append(entry)
    return out
