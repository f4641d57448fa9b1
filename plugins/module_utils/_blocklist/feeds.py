# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Parsing of threat-feed bodies into validated networks.

One line-oriented parser covers the text formats operators meet: plain lists,
FireHOL netsets, Spamhaus DROP text (``1.2.3.0/24 ; SBL123``) and ipsum
(``IP<TAB>count``).  Nothing here fails on a single bad line: bad lines are
counted and sampled, and only a feed whose share of bad lines passes a
threshold is declared broken.
"""

from __future__ import annotations

from .addresses import (
    V4, V6, BITS, AddressError, RefusalTable, parse_network, parse_range,
    network_key, ranges_to_networks, format_network,
)

FORMATS = ('auto', 'plain', 'netset', 'ipsum', 'spamhaus_drop')
DEFAULT_MAX_INVALID_FRACTION = 0.1
SAMPLE_SIZE = 10
REFUSED_LIST_LIMIT = 1000


class FeedError(Exception):
    """The feed as a whole cannot be used; the message says why."""


class FeedParseResult(object):
    def __init__(self, name):
        self.name = name
        self.keys = {V4: [], V6: []}
        self.lines = 0
        self.comments = 0
        self.invalid = 0
        self.invalid_samples = []
        self.below_min_count = 0
        self.refused = {}
        self.refused_entries = []
        self.refused_truncated = False

    @property
    def accepted(self):
        return len(self.keys[V4]) + len(self.keys[V6])

    @property
    def refused_total(self):
        return sum(self.refused.values())

    def add_invalid(self, line_no, text, reason):
        self.invalid += 1
        if len(self.invalid_samples) < SAMPLE_SIZE:
            self.invalid_samples.append({'line': line_no, 'text': text[:100], 'reason': reason})

    def add_refused(self, entry, reason):
        self.refused[reason] = self.refused.get(reason, 0) + 1
        if len(self.refused_entries) < REFUSED_LIST_LIMIT:
            self.refused_entries.append({'entry': entry, 'reason': reason, 'feed': self.name})
        else:
            self.refused_truncated = True

    def summary(self):
        return {
            'lines': self.lines,
            'comments': self.comments,
            'accepted': self.accepted,
            'accepted_v4': len(self.keys[V4]),
            'accepted_v6': len(self.keys[V6]),
            'invalid': self.invalid,
            'invalid_samples': self.invalid_samples,
            'below_min_count': self.below_min_count,
            'refused': dict(self.refused),
        }


def _looks_like_html(head):
    head = head.lstrip()[:512].lower()
    return head.startswith('<') and ('<html' in head or '<!doctype' in head or '<head' in head or '<body' in head)


def decode_body(body):
    if isinstance(body, bytes):
        body = body.decode('utf-8', errors='replace')
    if body.startswith('\ufeff'):
        body = body[1:]
    return body


def parse_feed(body, name='feed', fmt='auto', min_count=None, refusals=None,
               max_invalid_fraction=DEFAULT_MAX_INVALID_FRACTION):
    """Parse a feed body (bytes or text).

    ``min_count`` applies to the count column of ipsum-style lines; lines whose
    count is below it are skipped and counted, not treated as invalid.
    Raises FeedError for a body that is HTML or mostly garbage.
    """
    if fmt not in FORMATS:
        raise FeedError('unknown feed format %r (known: %s)' % (fmt, ', '.join(FORMATS)))
    text = decode_body(body)
    if _looks_like_html(text):
        raise FeedError('feed %s: the body is an HTML page (an error page or captive portal?), not a list' % name)
    if refusals is None:
        refusals = RefusalTable()
    result = FeedParseResult(name)
    keys = result.keys
    refusal_reason = refusals.reason
    want_count = fmt == 'ipsum'

    for line_no, raw in enumerate(text.splitlines(), 1):
        result.lines += 1
        line = raw.strip()
        if not line or line[0] in '#;':
            result.comments += 1
            continue
        if '#' in line:
            line = line.split('#', 1)[0]
        if ';' in line:
            line = line.split(';', 1)[0]
        tokens = line.split()
        if not tokens:
            result.comments += 1
            continue
        entry = tokens[0]
        if len(tokens) > 1 and (want_count or tokens[1].isdigit()):
            if not tokens[1].isdigit():
                result.add_invalid(line_no, raw, 'count column is not a number')
                continue
            if min_count is not None and int(tokens[1]) < min_count:
                result.below_min_count += 1
                continue
        elif want_count and min_count is not None:
            result.add_invalid(line_no, raw, 'ipsum line without a count column')
            continue
        try:
            if '-' in entry:
                version, first, last = parse_range(entry)
                networks = list(ranges_to_networks([(first, last)], BITS[version]))
            else:
                version, start, prefixlen = parse_network(entry)
                networks = ((start, prefixlen),)
        except AddressError as exc:
            result.add_invalid(line_no, raw, str(exc))
            continue
        for start, prefixlen in networks:
            reason = refusal_reason(version, start, prefixlen)
            if reason is None:
                keys[version].append(network_key(version, start, prefixlen))
            else:
                result.add_refused(format_network(version, start, prefixlen), reason)

    considered = result.accepted + result.invalid + result.refused_total + result.below_min_count
    if result.invalid and result.invalid > max_invalid_fraction * considered:
        raise FeedError(
            'feed %s looks broken: %d of %d entries are invalid (limit %.0f%%); first: %s'
            % (name, result.invalid, considered, max_invalid_fraction * 100,
               '; '.join('line %(line)d %(text)r: %(reason)s' % s for s in result.invalid_samples[:3])))
    return result
