# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Parsing of threat-feed bodies into validated networks, with optional scores.

Formats:

* line-oriented text: plain lists, FireHOL netsets, Spamhaus DROP text
  (``1.2.3.0/24 ; SBL123``) and ipsum (``IP<TAB>count``);
* ``jsonl``: one JSON object a line, as Spamhaus ``drop_v4.json`` publishes,
  with its trailing ``{"type": "metadata", ...}`` record;
* ``json``: any JSON document, with a JMESPath ``query`` that yields the
  addresses, or ``[address, score]`` pairs, or objects with ``address``/``ip``
  and ``score`` keys;
* ``csv`` with a named column (and optionally a score column);
* ``tor_exits``: Tor's ``exit-addresses`` (``ExitAddress 1.2.3.4 date time``);
* ``rir_delegated``: a Regional Internet Registry's statistics exchange file
  (``registry|cc|type|start|value|date|status[|opaque-id[|extensions]]``), the
  networks of the ``countries`` selected;
* ``ip2asn``: iptoasn.com's table (``range_start<TAB>range_end<TAB>AS<TAB>cc<TAB>description``),
  the networks of the ``asns`` (or ``countries``) selected.

The last two are whole address plans, not lists: they need a selection, which
is applied to each row before its addresses are converted, and every network
they give carries a label (its country, ``CN``; its AS and country,
``AS13335 US``), a list parallel to the keys as scores are.

Nothing here fails on a single bad line: bad lines are counted and sampled,
and only a feed whose share of bad lines passes a threshold is declared
broken.  Only ``json`` needs a library outside the standard library
(jmespath, a controller dependency); it is imported when a feed uses it.
"""

from __future__ import annotations

import csv
import json
import math
import os
import pickle
import re
import socket
import time
from array import array

from ..addresses import (
    V4, V6, BITS, AddressError, RefusalTable, parse_network, parse_range,
    network_key, ranges_to_networks, format_network,
)
from .forking import fork_child, read_child

FORMATS = ('auto', 'plain', 'netset', 'ipsum', 'spamhaus_drop', 'jsonl', 'json', 'csv', 'tor_exits',
           'rir_delegated', 'ip2asn')
# The address plans: a feed of one needs a selection (countries, asns), or it would block the whole Internet.
SELECTION_FORMATS = ('rir_delegated', 'ip2asn')
# What a country code is (ISO 3166 alpha-2, as the registries and iptoasn.com write them), and an AS number
# (32 bits; AS0 is "not routed").
COUNTRY_CODE = re.compile(r'[A-Za-z]{2}\Z')
MAX_ASN = 4294967295
# RIR rows that count: an address block in use.  'available' and 'reserved' blocks belong to nobody yet.
RIR_STATUSES = ('allocated', 'assigned')
TEXT_FORMATS = ('plain', 'netset', 'ipsum', 'spamhaus_drop')
DEFAULT_MAX_INVALID_FRACTION = 0.1
# Entries (lines, for the line formats) one feed body may hold: ten times the largest real feeds, and a
# bound on the memory a hostile body of short lines can take before anything is parsed.
DEFAULT_MAX_ENTRIES = 2000000
SAMPLE_SIZE = 10
# A line-format body of this many lines or more is parsed in two processes, its second half in a forked child
# on the other core: at ten million lines the parse and the sort are half the build.
PARALLEL_MIN_LINES = 1000000
# The child parses and sorts less than the parent does; it is late at ten times the parent's own time, at
# least PARALLEL_MIN_WAIT and at most PARALLEL_TIMEOUT seconds, and the parent then parses its part itself.
PARALLEL_MIN_WAIT = 30
PARALLEL_TIMEOUT = 600
# The parent's share of the body: the child's half also pays for the fork and for sending its keys back
# (measured: at an even split the parent waited a fifth of its own time).
PARENT_SHARE = 0.56
REFUSED_LIST_LIMIT = 1000
TOR_KEYWORDS = ('ExitNode', 'Published', 'LastStatus', 'ExitAddress')
# A count (ipsum), a column number or a Content-Length: no real one has more digits, and int() raises past
# 4300 of them.
MAX_NUMBER_DIGITS = 18
# A score given as text: a decimal number as JSON writes one, in ASCII digits.
SCORE_TEXT = re.compile(r'[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z')


class FeedError(Exception):
    """The feed as a whole cannot be used; the message says why."""


class ProviderError(FeedError):
    """The provider answered with an error document instead of data (bad key, quota, ...)."""


def ascii_number(text):
    """``text`` as a non-negative integer when it is a short run of ASCII digits, else None.

    str.isdigit() also says yes to '²' (which int() refuses) and to '٣' (which int() reads as 3), and
    int() raises past 4300 digits: in feed text only 0-9 are digits.
    """
    if text.isascii() and text.isdigit() and len(text) <= MAX_NUMBER_DIGITS:
        return int(text)
    return None


class FeedParseResult(object):
    """Accepted networks as sort keys per family, and, for scored feeds, a parallel list of scores."""

    def __init__(self, name, scored=False, labelled=False):
        self.name = name
        self.keys = {V4: [], V6: []}
        self.scores = {V4: [], V6: []} if scored else None
        # For the address plans (rir_delegated, ip2asn): each network's country or AS, parallel to its key.
        self.labels = {V4: [], V6: []} if labelled else None
        # Well-formed rows of an address plan that the selection left out (other countries and ASNs).
        self.not_selected = 0
        self.lines = 0
        self.comments = 0
        self.invalid = 0
        self.invalid_samples = []
        self.below_min_count = 0
        self.below_min_score = 0
        self.refused = {}
        self.refused_entries = []
        self.refused_truncated = False
        # Why a big body's second part was parsed in this process after all (its child failed or ran late).
        # The networks an address plan's rows may make (their ranges are split into CIDRs): max_entries.
        self.max_networks = None
        self.parse_fallback = None

    @property
    def accepted(self):
        return len(self.keys[V4]) + len(self.keys[V6])

    @property
    def refused_total(self):
        return sum(self.refused.values())

    def add_invalid(self, line_no, text, reason):
        self.invalid += 1
        if len(self.invalid_samples) < SAMPLE_SIZE:
            self.invalid_samples.append({'line': line_no, 'text': str(text)[:100], 'reason': reason})

    def add_refused(self, entry, reason):
        self.refused[reason] = self.refused.get(reason, 0) + 1
        if len(self.refused_entries) < REFUSED_LIST_LIMIT:
            self.refused_entries.append({'entry': entry, 'reason': reason, 'feed': self.name})
        else:
            self.refused_truncated = True

    def sort_keys(self):
        """Sort each family's keys, and their scores with them.

        Sorted, a feed's keys cost the merge one pass, and the provenance
        file is written from them in order without a dictionary of them all.
        """
        for version in (V4, V6):
            keys = self.keys[version]
            if self.scores is None and self.labels is None:
                keys.sort()
            elif keys:
                # The scores and the labels (whichever the feed has) move with their keys.
                parallel = [values for values in (self.scores, self.labels) if values is not None]
                rows = sorted(zip(keys, *(values[version] for values in parallel)))
                self.keys[version] = [row[0] for row in rows]
                for column, values in enumerate(parallel, 1):
                    values[version] = [row[column] for row in rows]

    # What absorb adds up, and what else it joins: the counts, the samples and the refusals.
    COUNTERS = ('comments', 'invalid', 'below_min_count', 'below_min_score')
    MERGED = COUNTERS + ('invalid_samples', 'refused', 'refused_entries', 'refused_truncated')

    def transferable(self):
        """This result as plain data for a pipe: IPv4 keys as the bytes of a machine-word array."""
        state = {name: getattr(self, name) for name in self.MERGED}
        state.update(lines=self.lines, v4=array('Q', self.keys[V4]).tobytes(), v6=self.keys[V6])
        return state

    def absorb(self, state):
        """Add the ``transferable`` state of the lines after this result's (an unscored result's) to it."""
        self.lines = state['lines']
        for name in self.COUNTERS:
            setattr(self, name, getattr(self, name) + state[name])
        self.invalid_samples = (self.invalid_samples + state['invalid_samples'])[:SAMPLE_SIZE]
        for reason, count in state['refused'].items():
            self.refused[reason] = self.refused.get(reason, 0) + count
        room = REFUSED_LIST_LIMIT - len(self.refused_entries)
        self.refused_entries.extend(state['refused_entries'][:room])
        self.refused_truncated = (self.refused_truncated or state['refused_truncated']
                                  or len(state['refused_entries']) > room)
        v4 = array('Q')
        v4.frombytes(state['v4'])
        self.keys[V4].extend(v4)
        self.keys[V6].extend(state['v6'])

    def summary(self):
        out = {
            'lines': self.lines,
            'comments': self.comments,
            'accepted': self.accepted,
            'accepted_v4': len(self.keys[V4]),
            'accepted_v6': len(self.keys[V6]),
            'invalid': self.invalid,
            'invalid_samples': self.invalid_samples,
            'below_min_count': self.below_min_count,
            'below_min_score': self.below_min_score,
            'refused': dict(self.refused),
            'scored': self.scores is not None,
        }
        if self.parse_fallback:
            out['parse_fallback'] = self.parse_fallback
        if self.labels is not None:
            out['not_selected'] = self.not_selected
        return out


def _looks_like_html(head):
    head = head.lstrip()[:512].lower()
    return head.startswith('<') and ('<html' in head or '<!doctype' in head or '<head' in head or '<body' in head)


def decode_body(body):
    if isinstance(body, bytes):
        body = body.decode('utf-8', errors='replace')
    if body.startswith('\ufeff'):
        body = body[1:]
    return body


def provider_error_message(document):
    """The provider's own message from an error document, or None when it is not one.

    Covers ``{"error": "..."}``, ``{"error": {"message": ...}}``, ``{"message": ...}``
    with no data, and AbuseIPDB's ``{"errors": [{"detail": ..., "status": 401}]}``.
    """
    if not isinstance(document, dict):
        return None
    errors = document.get('errors')
    if isinstance(errors, list) and errors:
        parts = []
        for item in errors[:3]:
            if isinstance(item, dict):
                parts.append(str(item.get('detail') or item.get('message') or item.get('title') or item))
            else:
                parts.append(str(item))
        return '; '.join(parts)[:300]
    error = document.get('error')
    if error:
        if isinstance(error, dict):
            error = error.get('message') or error.get('detail') or error
        return str(error)[:300]
    return None


def body_error_message(body):
    """Provider message from a small JSON error body (bytes or text), else None."""
    text = decode_body(body[:65536]).strip() if body else ''
    if not text.startswith('{'):
        return None
    try:
        return provider_error_message(json.loads(text))
    except (ValueError, RecursionError):
        # RecursionError: '{"a": [[[[...' nested past the interpreter's limit is no error document either.
        return None


class _Collector(object):
    """Validates entries and files them by family, refused, invalid or below a threshold."""

    def __init__(self, result, refusals, min_score):
        self.result = result
        self.refusal_reason = refusals.reason
        self.min_score = min_score

    def add(self, entry, line_no, raw, score=None):
        result = self.result
        if not isinstance(entry, str):
            result.add_invalid(line_no, raw, 'the address is not a string')
            return
        entry = entry.strip()
        if result.scores is not None:
            if score is None or isinstance(score, bool):
                result.add_invalid(line_no, raw, 'missing score')
                return
            # float() also reads '٣', '1_0', 'nan' and 'inf' from text, and raises OverflowError on an
            # integer past 1e308 (JSON has no limit on digits); NaN passes every threshold test as false.
            if isinstance(score, str) and not SCORE_TEXT.match(score.strip()):
                result.add_invalid(line_no, raw, 'score is not a number')
                return
            try:
                score = float(score)
            except (TypeError, ValueError, OverflowError):
                result.add_invalid(line_no, raw, 'score is not a number')
                return
            if not math.isfinite(score):
                result.add_invalid(line_no, raw, 'score is not a finite number')
                return
            if self.min_score is not None and score < self.min_score:
                result.below_min_score += 1
                return
        try:
            if '-' in entry:
                version, first, last = parse_range(entry)
                networks = list(ranges_to_networks([(first, last)], BITS[version]))
            else:
                version, start, prefixlen = parse_network(entry)
                networks = ((start, prefixlen),)
        except AddressError as exc:
            result.add_invalid(line_no, raw, str(exc))
            return
        reasons = [self.refusal_reason(version, start, prefixlen) for start, prefixlen in networks]
        refused = next((reason for reason in reasons if reason is not None), None)
        if refused is not None:
            # A range is one entry, judged whole as a CIDR is: '1.0.0.0-223.255.255.255' must not pass
            # as the pieces of it that happen to be narrow enough.
            result.add_refused(entry if len(networks) > 1 else format_network(version, *networks[0]), refused)
            return
        keys = result.keys[version]
        for start, prefixlen in networks:
            keys.append(network_key(version, start, prefixlen))
            if result.scores is not None:
                result.scores[version].append(score)


def _parse_text(lines, result, collector, refusals, want_count, min_count, first_line=1):
    # The hot path.  Most lines of a big feed are a bare IPv4 address, and
    # glibc's inet_pton accepts exactly those (no spaces, no leading zeros),
    # so one C call validates them; only the rest goes through the full
    # parser.  A first octet outside every refused range needs no lookup.
    pton, af_inet, from_bytes = socket.inet_pton, socket.AF_INET, int.from_bytes
    needs_check = refusals.v4_octets_to_check()
    max_host_bits = 32 - max(8, refusals.min_prefix[V4])
    v4_keys = result.keys[V4]
    append = v4_keys.append
    add = collector.add
    comments = 0
    line_no = first_line - 1
    for line_no, raw in enumerate(lines, first_line):
        if not want_count:
            try:
                value = from_bytes(pton(af_inet, raw), 'big')
            except (OSError, ValueError):
                # An IPv4 CIDR of /8 or longer lies within one first octet,
                # so the same octet test decides whether it needs a lookup.
                addr, slash, prefix = raw.partition('/')
                if slash and prefix.isascii() and prefix.isdigit() and len(prefix) <= 2:
                    host_bits = 32 - int(prefix)
                    if 0 <= host_bits <= max_host_bits:
                        try:
                            value = from_bytes(pton(af_inet, addr), 'big')
                        except (OSError, ValueError):
                            value = None
                        if value is not None and not value & ((1 << host_bits) - 1) \
                                and (value >> 24) not in needs_check:
                            append(value << 8 | host_bits)
                            continue
            else:
                if (value >> 24) in needs_check:
                    add(raw, line_no, raw)
                else:
                    append(value << 8)
                continue
        line = raw.strip()
        if not line or line[0] in '#;':
            comments += 1
            continue
        if '#' in line:
            line = line.split('#', 1)[0]
        if ';' in line:
            line = line.split(';', 1)[0]
        tokens = line.split()
        if not tokens:
            comments += 1
            continue
        count = ascii_number(tokens[1]) if len(tokens) == 2 else None
        if len(tokens) > 2 or (len(tokens) == 2 and not want_count and count is None):
            # An address, optionally a count (ipsum), then a comment: anything else is not a list line,
            # and taking its first word would turn '1.2.3.4 }; flush ruleset' into an entry.
            result.add_invalid(line_no, raw, 'unexpected text after the address')
            continue
        if len(tokens) == 2:
            if count is None:
                result.add_invalid(line_no, raw, 'count column is not a number')
                continue
            if min_count is not None and count < min_count:
                result.below_min_count += 1
                continue
        elif want_count and min_count is not None:
            result.add_invalid(line_no, raw, 'ipsum line without a count column')
            continue
        add(tokens[0], line_no, raw)
    result.lines = line_no
    result.comments += comments


def _parse_text_body(text, line_count, result, collector, refusals, want_count, min_count):
    """``_parse_text`` over a whole body; from PARALLEL_MIN_LINES lines on, its second part in a forked child.

    Each process parses and sorts its part; the parent adds the child's
    counts, samples, refusals and keys to its own, in line order, and the
    final sort merges two sorted runs.  Where no child can be forked, the
    whole body is parsed here; where the child fails or runs late, its part
    is, and ``parse_fallback`` says so: the result is the same either way.
    """
    args = (refusals, want_count, min_count)
    middle = text.find('\n', int(len(text) * PARENT_SHARE)) if line_count >= PARALLEL_MIN_LINES else -1
    split = middle + 1
    first_line = text.count('\n', 0, split) + 1 if split else 0

    def parse_second_part(into, into_collector):
        _parse_text(_iter_lines(text, split), into, into_collector, *args, first_line=first_line)

    child = _start_child(parse_second_part, result, collector, refusals) if split else None
    if child is None:
        _parse_text(_iter_lines(text), result, collector, *args)
        return
    pid, read_end = child
    started = time.monotonic()
    parsed_first_part = False
    try:
        _parse_text(_iter_lines(text, 0, split), result, collector, *args)
        result.sort_keys()
        parsed_first_part = True
    finally:
        # Reaped in every case; killed at once when the parent's part failed.  The child's part is smaller
        # than the parent's: ten times the parent's own time is late.
        late = min(max(PARALLEL_MIN_WAIT, 10 * (time.monotonic() - started)), PARALLEL_TIMEOUT)
        payload = read_child(pid, read_end, late if parsed_first_part else 0)
    if payload is None:
        result.parse_fallback = ('the child parsing lines %d on failed or took longer than %.0f s; this process '
                                 'parsed them' % (first_line, late))
        parse_second_part(result, collector)
    else:
        result.absorb(pickle.loads(payload))


def _start_child(parse_second_part, result, collector, refusals):
    """(pid, pipe's read end) of a forked child that parses the second part and sends it back; None if none.

    None means one process parses it all: a scored body (the text formats
    have no score; a body that asks for one is all invalid lines), no file
    descriptor for a pipe, or no child forked.
    """
    if result.scores is not None:
        return None
    try:
        read_end, write_end = os.pipe()
    except OSError:
        return None

    def second_part():
        os.close(read_end)
        part = FeedParseResult(result.name)
        parse_second_part(part, _Collector(part, refusals, collector.min_score))
        part.sort_keys()
        with os.fdopen(write_end, 'wb', closefd=False) as out:
            # Pickled: the reader is this child's own parent, through a pipe nobody else holds.
            out.write(pickle.dumps(part.transferable(), protocol=pickle.HIGHEST_PROTOCOL))

    pid = fork_child(second_part, write_end)
    os.close(write_end)
    if pid is None:
        os.close(read_end)
        return None
    return pid, read_end


def _parse_tor(lines, result, collector):
    line_no = 0
    for line_no, raw in enumerate(lines, 1):
        tokens = raw.split()
        if len(tokens) >= 2 and tokens[0] == 'ExitAddress':
            collector.add(tokens[1], line_no, raw)
        elif tokens and tokens[0] not in TOR_KEYWORDS and not tokens[0].startswith('#'):
            result.add_invalid(line_no, raw, 'not a line of an exit-addresses document')
        else:
            result.comments += 1
    result.lines = line_no


def country_codes(values, name='feed'):
    """The upper-case ISO 3166 codes of ``values`` (a code or a list, any case), as a frozenset; FeedError for
    anything that is not two ASCII letters."""
    if values is None:
        return frozenset()
    if isinstance(values, str):
        values = [values]
    codes = set()
    for value in values:
        if not isinstance(value, str) or not COUNTRY_CODE.match(value.strip()):
            raise FeedError('feed %s: countries: %r is not a two-letter country code (ISO 3166 alpha-2, e.g. CN)'
                            % (name, value))
        codes.add(value.strip().upper())
    return frozenset(codes)


def asn_number(value):
    """An AS number given as 13335, '13335' or 'AS13335' (any case), as an int 1-4294967295; None for anything else
    (AS0 is iptoasn.com's "Not routed": no AS)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if text[:2].upper() == 'AS':
            text = text[2:]
        number = ascii_number(text)
    else:
        return None
    return number if number is not None and 0 < number <= MAX_ASN else None


def as_numbers(values, name='feed'):
    """The AS numbers of ``values`` (one or a list; 13335, '13335', 'AS13335'), as a frozenset of ints; FeedError
    for one that is not an AS number."""
    if values is None:
        return frozenset()
    if isinstance(values, (str, int)):
        values = [values]
    numbers = set()
    for value in values:
        number = asn_number(value)
        if number is None:
            raise FeedError('feed %s: asns: %r is not an AS number (13335, "13335" or "AS13335"; 1-%d)'
                            % (name, value, MAX_ASN))
        numbers.add(number)
    return frozenset(numbers)


def _add_plan_networks(result, refusal_reason, version, first, last, label):
    """The networks of the range ``first``-``last`` with their label; refused whole when any piece is refused (a
    range is one entry, judged as a CIDR is)."""
    networks = list(ranges_to_networks([(first, last)], BITS[version]))
    for start, prefixlen in networks:
        refused = refusal_reason(version, start, prefixlen)
        if refused is not None:
            if len(networks) == 1:
                entry = format_network(version, start, prefixlen)
            else:
                entry = '%s-%s' % (format_network(version, first, BITS[version]),
                                   format_network(version, last, BITS[version]))
            result.add_refused(entry, refused)
            return
    keys, labels = result.keys[version], result.labels[version]
    for start, prefixlen in networks:
        keys.append(start << 8 | (BITS[version] - prefixlen))
        labels.append(label)
    # A row is a range, which may take up to 2 x 127 networks: max_entries bounds the networks, not only the lines.
    if result.max_networks and len(keys) > result.max_networks:
        raise FeedError('feed %s: its selected rows make more than max_entries (%d) networks; refused whole, as an '
                        'upstream fault or an attack is likelier than a real table that size (raise max_entries for '
                        'this feed if it is real)' % (result.name, result.max_networks))


def _plan_address(text, version):
    """A bare address of ``version`` as an int, or None."""
    try:
        found, start, prefixlen = parse_network(text)
    except AddressError:
        return None
    return start if found == version and prefixlen == BITS[version] else None


def _parse_rir(lines, result, refusals, countries):
    """The RIR statistics exchange format, plain or extended: the version line, ``summary`` lines and comments are
    skipped, so are ``asn`` rows and the rows of other countries or of blocks not in use (available, reserved).
    Only a selected row's addresses are converted: IPv4 rows give a first address and a count of addresses (not
    always a power of two: the range becomes its fewest CIDRs), IPv6 rows a first address and a prefix length."""
    reason = refusals.reason
    interned = {}
    header_seen = False
    line_no = 0
    for line_no, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line[0] == '#':
            result.comments += 1
            continue
        fields = line.split('|')
        if not header_seen and fields[0].replace('.', '').isdigit() and fields[0].isascii():
            # The version line: version|registry|serial|records|startdate|enddate|UTCoffset.
            header_seen = True
            result.comments += 1
            continue
        header_seen = True
        if len(fields) >= 6 and fields[5] == 'summary':
            result.comments += 1
            continue
        if len(fields) < 7:
            result.add_invalid(line_no, raw, 'not a row of the RIR statistics format '
                                             '(registry|cc|type|start|value|date|status)')
            continue
        kind = fields[2]
        if kind not in ('ipv4', 'ipv6'):
            if kind == 'asn':
                result.not_selected += 1
            else:
                result.add_invalid(line_no, raw, 'type %r is none of asn, ipv4, ipv6' % kind[:20])
            continue
        code = fields[1].upper()
        if code not in countries:
            result.not_selected += 1
            continue
        if fields[6] not in RIR_STATUSES:
            if fields[6] in ('available', 'reserved'):
                result.not_selected += 1
            else:
                result.add_invalid(line_no, raw, 'status %r is none of allocated, assigned, available, reserved'
                                   % fields[6][:20])
            continue
        value = ascii_number(fields[4])
        if kind == 'ipv4':
            first = _plan_address(fields[3], V4)
            if first is None:
                result.add_invalid(line_no, raw, 'the start is not an IPv4 address')
                continue
            if not value:
                result.add_invalid(line_no, raw, 'the count of addresses is not a positive number')
                continue
            last = first + value - 1
            if last > 0xffffffff:
                result.add_invalid(line_no, raw, 'start + count runs past the end of the IPv4 space')
                continue
            version = V4
        else:
            first = _plan_address(fields[3], V6)
            if first is None:
                result.add_invalid(line_no, raw, 'the start is not an IPv6 address')
                continue
            if value is None or value > 128:
                result.add_invalid(line_no, raw, 'the prefix length is not a number from 0 to 128')
                continue
            size = 1 << (128 - value)
            if first & (size - 1):
                result.add_invalid(line_no, raw, 'host bits set in the start for its prefix length /%d' % value)
                continue
            last = first + size - 1
            version = V6
        _add_plan_networks(result, reason, version, first, last, interned.setdefault(code, code))
    result.lines = line_no


def _parse_ip2asn(lines, result, refusals, countries, asns):
    """iptoasn.com's table, IPv4 and IPv6 rows mixed: a row is selected by its AS number (compared as text, so a
    row of another AS costs a split and a set lookup) or its country column; AS0 ("Not routed") never is. A row left
    out is checked for its shape (its columns, a numeric AS), not for its addresses."""
    reason = refusals.reason
    wanted = frozenset(str(number) for number in asns)
    interned = {}
    line_no = 0
    for line_no, raw in enumerate(lines, 1):
        fields = raw.split('\t')
        if len(fields) < 4:
            if not raw.strip() or raw.lstrip()[:1] == '#':
                result.comments += 1
            else:
                result.add_invalid(line_no, raw, 'not a row of the ip2asn table '
                                                 '(range_start, range_end, AS number, country, description)')
            continue
        number = fields[2]
        if number not in wanted and not (countries and fields[3].upper() in countries):
            if number.isascii() and number.isdigit():
                result.not_selected += 1
            else:
                result.add_invalid(line_no, raw, 'the AS number is not a number')
            continue
        value = ascii_number(number)
        if not value or value > MAX_ASN:
            if value == 0:
                result.not_selected += 1
            else:
                # Selected by its country: its AS column goes into the label, so it must be an AS number.
                result.add_invalid(line_no, raw, 'the AS number is not a number')
            continue
        version = V6 if ':' in fields[0] else V4
        first, last = _plan_address(fields[0], version), _plan_address(fields[1], version)
        if first is None or last is None or first > last:
            result.add_invalid(line_no, raw, 'range_start and range_end are not a range of addresses of one family')
            continue
        label = interned.get((number, fields[3]))
        if label is None:
            code = fields[3].upper()
            label = interned[(number, fields[3])] = 'AS%d%s' % (value, ' ' + code if COUNTRY_CODE.match(code) else '')
        _add_plan_networks(result, reason, version, first, last, label)
    result.lines = line_no


class AsnListResult(FeedParseResult):
    """An ASN list (asns_from): the AS numbers it names; ``accepted`` is how many."""

    def __init__(self, name):
        super(AsnListResult, self).__init__(name)
        self.asns = set()
        self.rows = 0

    @property
    def accepted(self):
        return len(self.asns)

    def summary(self):
        return {'lines': self.lines, 'comments': self.comments, 'asns': len(self.asns), 'accepted': len(self.asns),
                'invalid': self.invalid, 'invalid_samples': self.invalid_samples}


ASN_LIST_FORMATS = ('auto', 'jsonl', 'plain')


def parse_asn_list(body, name='feed', fmt='auto', field=None, max_invalid_fraction=DEFAULT_MAX_INVALID_FRACTION,
                   max_entries=DEFAULT_MAX_ENTRIES, require_metadata=False):
    """An ASN list's AS numbers: Spamhaus ASN-DROP's JSON lines (``{"asn": 932, ...}``, the key ``field``, its
    metadata record's count checked), or plain lines of ``AS123`` or ``123`` (``#`` and ``;`` comments).  Bad lines
    are counted; a list mostly of them, an HTML page or a provider's error document is a FeedError."""
    if fmt not in ASN_LIST_FORMATS:
        raise FeedError('feed %s: an ASN list is read as %s, not %s' % (name, ', '.join(ASN_LIST_FORMATS), fmt))
    text = decode_body(body)
    if _looks_like_html(text):
        raise FeedError('feed %s: the body is an HTML page (an error page or captive portal?), not a list' % name)
    _check_entry_count(name, text.count('\n') + 1, max_entries, 'lines')
    lines = _split_lines(text)
    result = AsnListResult(name)
    if fmt == 'auto':
        fmt = 'jsonl' if any(line.lstrip().startswith('{') for line in lines[:50]) else 'plain'
    if fmt == 'jsonl':
        if len(lines) == 1 and lines[0].lstrip().startswith('{'):
            message = body_error_message(text)
            if message:
                raise ProviderError('feed %s: the provider answered with an error: %s' % (name, message))
        _parse_asn_jsonl(lines, result, field or 'asn', require_metadata)
    else:
        _parse_asn_plain(lines, result)
    if result.invalid and result.invalid > max_invalid_fraction * (result.rows + result.invalid):
        raise FeedError(
            'ASN list %s looks broken: %d of %d entries are invalid (limit %.0f%%); first: %s'
            % (name, result.invalid, result.rows + result.invalid, max_invalid_fraction * 100,
               '; '.join('line %(line)d %(text)r: %(reason)s' % s for s in result.invalid_samples[:3])))
    return result


def _parse_asn_jsonl(lines, result, field, require_metadata):
    found = {}
    for line_no, raw, record in _jsonl_records(lines, result, found):
        number = asn_number(record.get(field))
        if number is None:
            result.add_invalid(line_no, raw, 'no AS number in %r' % field)
            continue
        result.rows += 1
        result.asns.add(number)
    _check_metadata_count(result, found.get('metadata'), require_metadata)


def _parse_asn_plain(lines, result):
    line_no = 0
    for line_no, raw in enumerate(lines, 1):
        line = raw.split('#', 1)[0].split(';', 1)[0].strip()
        if not line:
            result.comments += 1
            continue
        tokens = line.split()
        number = asn_number(tokens[0]) if len(tokens) == 1 else None
        if number is None:
            result.add_invalid(line_no, raw, 'not an AS number (AS123 or 123) alone on its line')
            continue
        result.rows += 1
        result.asns.add(number)
    result.lines = line_no


def _jsonl_records(lines, result, found):
    """(line number, raw line, record) of each JSON-lines data record; blank and comment lines and the
    ``{"type": "metadata"}`` record (kept in ``found['metadata']``) count as comments, a line that is no JSON object
    is invalid. Sets ``result.lines`` once every line is read."""
    line_no = 0
    for line_no, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line[0] in '#;':
            result.comments += 1
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            # RecursionError: a line of '[[[[...' nested past the interpreter's limit.
            result.add_invalid(line_no, raw, 'not a JSON object')
            continue
        if not isinstance(record, dict):
            result.add_invalid(line_no, raw, 'not a JSON object')
            continue
        if record.get('type') == 'metadata':
            found['metadata'] = record
            result.comments += 1
            continue
        yield line_no, raw, record
    result.lines = line_no


def _parse_jsonl(lines, result, collector, field, score_field, require_metadata=False):
    found = {}
    for line_no, raw, record in _jsonl_records(lines, result, found):
        if field not in record:
            result.add_invalid(line_no, raw, 'no %r field' % field)
            continue
        collector.add(record[field], line_no, raw, record.get(score_field) if score_field else None)
    _check_metadata_count(result, found.get('metadata'), require_metadata)


def _check_metadata_count(result, metadata, required):
    """Spamhaus's metadata record, its last line, says how many records it wrote: fewer is a truncated download,
    which must not pass for a shorter list.  Where the feed requires the record, a body without it was cut before
    its last line, whatever the transport said."""
    expected = metadata.get('records') if metadata else None
    has_count = isinstance(expected, int) and not isinstance(expected, bool)
    if required and not has_count:
        raise FeedError('feed %s: the body ends without its metadata record and its record count (require_metadata); '
                        'truncated?' % result.name)
    data_lines = result.lines - result.comments
    if has_count and data_lines != expected:
        raise FeedError('feed %s: the metadata record announces %s records but the body has %s; truncated?'
                        % (result.name, expected, data_lines))


def _csv_rows(lines):
    """The csv rows of the data lines; a line the csv module refuses (a field past its limit of 128 KiB) comes
    as its csv.Error instead of a row, so that it is one invalid row rather than the end of the feed."""
    reader = csv.reader(line for line in lines if line.strip() and not line.lstrip().startswith('#'))
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader starts afresh at the next line: it has consumed the one it refused.
            yield exc


def _parse_csv(lines, result, collector, field, score_field):
    header = None
    if field is None:
        raise FeedError('feed %s: the csv format needs field, the name (or 0-based number) of the address column'
                        % result.name)
    column = ascii_number(str(field))
    by_index = column is not None
    score_column = ascii_number(str(score_field)) if score_field is not None else None
    row_no = 0
    skipped = 0
    for row_no, row in enumerate(_csv_rows(lines), 1):
        if isinstance(row, csv.Error):
            result.add_invalid(row_no, '', 'not a csv row: %s' % row)
            continue
        if header is None and not by_index:
            header = [h.strip() for h in row]
            if field not in header:
                raise FeedError('feed %s: no column %r in the csv header (%s)'
                                % (result.name, field, ', '.join(header[:20])))
            column = header.index(field)
            if score_field is not None and score_column is None:
                if score_field not in header:
                    raise FeedError('feed %s: no score column %r in the csv header' % (result.name, score_field))
                score_column = header.index(score_field)
            skipped += 1
            continue
        if len(row) <= column:
            result.add_invalid(row_no, ','.join(row), 'row has no column %s' % field)
            continue
        score = row[score_column] if score_column is not None and len(row) > score_column else None
        collector.add(row[column], row_no, ','.join(row), score)
    result.lines = len(lines)
    result.comments += len(lines) - row_no + skipped


def _parse_json(text, result, collector, query, scored, max_entries):
    if not query:
        raise FeedError('feed %s: a JSON body needs query, a JMESPath expression for its addresses' % result.name)
    if not text.strip():
        raise FeedError('feed %s: the body is empty, not a JSON document' % result.name)
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise FeedError('feed %s: the body is not valid JSON (%s); truncated?' % (result.name, exc))
    except RecursionError:
        raise FeedError('feed %s: the JSON document is nested too deeply to be a feed' % result.name)
    try:
        import jmespath
    except ImportError:
        raise FeedError('feed %s: the json format needs the Python library jmespath on the host that '
                        'builds the shadow copy (pip install jmespath)' % result.name)
    try:
        found = jmespath.search(query, document)
    except jmespath.exceptions.JMESPathError as exc:
        raise FeedError('feed %s: query %r is not valid JMESPath: %s' % (result.name, query, exc))
    if found is None or found == []:
        message = provider_error_message(document)
        if message:
            raise ProviderError('feed %s: the provider answered with an error: %s' % (result.name, message))
        found = []
    if not isinstance(found, list):
        raise FeedError('feed %s: query %r yields %s, not a list' % (result.name, query, type(found).__name__))
    _check_entry_count(result.name, len(found), max_entries, 'entries')
    if scored is None:
        # A query yielding pairs or objects carries scores; bare strings do not.
        scored = bool(found) and isinstance(found[0], (list, dict))
    if scored:
        result.scores = {V4: [], V6: []}
    add = collector.add
    for index, item in enumerate(found, 1):
        if isinstance(item, str):
            add(item, index, item, None)
        elif isinstance(item, list) and len(item) == 2:
            add(item[0], index, item, item[1])
        elif isinstance(item, dict):
            address = item.get('address', item.get('ip'))
            add(address, index, item, item.get('score'))
        elif item is None and not scored:
            result.add_invalid(index, item, 'null address')
        else:
            result.add_invalid(index, item, 'expected an address, [address, score] or {address, score}')
    result.lines = len(found)


def _iter_lines(text, start=0, stop=None, chunk_chars=1 << 20):
    """The lines of ``text[start:stop]`` (newlines already LF only), split about a mebibyte at a time.

    A list of ten million line strings costs a gigabyte; the text formats
    read their lines once, in order, and need only the current chunk's.
    """
    stop = len(text) if stop is None else stop
    position = start
    while True:
        end = text.find('\n', position + chunk_chars, stop)
        if end < 0:
            yield from _split_lines(text[position:stop])
            return
        yield from text[position:end].split('\n')
        position = end + 1


def _head(text, size=65536):
    """The first ``size`` characters of ``text`` and the rest of the line they end in (up to 4 KiB more)."""
    end = text.find('\n', size, size + 4096)
    return text[:end] if end >= 0 else text[:size]


def _lf_only(text):
    """CRLF and CR line ends as LF."""
    if '\r' in text:
        text = text.replace('\r\n', '\n').replace('\r', '\n')
    return text


def _split_lines(text):
    """Lines split at LF, CRLF and CR only.

    ``str.splitlines`` also splits at form feed, the ASCII separators and
    U+0085/U+2028/U+2029: a feed's line numbers would no longer match its
    newlines, and a line would silently become two entries.
    """
    lines = _lf_only(text).split('\n')
    if lines and not lines[-1]:
        lines.pop()
    return lines


# FireHOL's netsets say how many entries they hold: "# Entries         : 2892 subnets, 619304666 unique IPs".
DECLARED_ENTRIES = re.compile(r'^#\s*Entries\s*:\s*([0-9]{1,12})\s+subnets\b')


def _check_declared_entries(name, lines, result):
    """FeedError when the body holds fewer entries than its header declares: a download cut short.

    A cut at a line boundary with no Content-Length (a closed connection) is
    otherwise a shorter list that passes for a real one.
    """
    for line in lines[:100]:
        match = DECLARED_ENTRIES.match(line)
        if match:
            declared, found = int(match.group(1)), result.lines - result.comments
            if found < declared:
                raise FeedError('feed %s: its header declares %d entries but the body has %d; the download was cut '
                                'short' % (name, declared, found))
            return


def _check_entry_count(name, count, max_entries, what):
    if max_entries and count > max_entries:
        raise FeedError('feed %s: the body has %d %s, more than max_entries (%d); refused whole, as a list that '
                        'size is an upstream fault or an attack more likely than a feed (raise max_entries for this '
                        'feed if it is real)' % (name, count, what, max_entries))


def detect_format(text, query=None):
    """The format of a body in ``auto`` mode."""
    if query:
        return 'json'
    # The first 50 lines, from the first 64 KiB: splitting a 10M-line body to look at 50 of them
    # cost a gigabyte.
    for line in _split_lines(_head(text))[:50]:
        line = line.strip()
        if not line or line[0] in '#;':
            continue
        if line[0] == '{':
            return 'jsonl'
        if line[0] == '[':
            return 'json'
        if line.split(None, 1)[0] in TOR_KEYWORDS:
            return 'tor_exits'
        return 'plain'
    return 'plain'


def parse_feed(body, name='feed', fmt='auto', min_count=None, refusals=None,
               max_invalid_fraction=DEFAULT_MAX_INVALID_FRACTION, query=None, field=None,
               score_field=None, scored=None, min_score=None, max_entries=DEFAULT_MAX_ENTRIES,
               require_metadata=False, countries=None, asns=None):
    """Parse a feed body (bytes or text).

    ``min_count`` applies to the count column of ipsum-style lines; lines whose
    count is below it are skipped and counted, not treated as invalid.  A
    scored feed (a ``json`` query yielding pairs, or a ``score_field``) keeps
    every entry's score; ``min_score`` drops lower ones.  Raises FeedError
    for a body that is HTML, an error document, or mostly garbage, and for
    one of more than ``max_entries`` entries (lines, in the line formats:
    counted before anything is split, so such a body costs no more memory
    than its text).  ``require_metadata`` (``jsonl``) makes a body without
    its metadata record a truncated one.

    ``rir_delegated`` and ``ip2asn`` need a selection: ``countries`` (ISO
    codes, any case) and, for ``ip2asn``, ``asns`` (13335, '13335' or
    'AS13335'); a row is kept when either selects it.  Their results carry
    ``labels``, each network's country or AS.
    """
    if fmt not in FORMATS:
        raise FeedError('unknown feed format %r (known: %s)' % (fmt, ', '.join(FORMATS)))
    text = decode_body(body)
    if _looks_like_html(text):
        raise FeedError('feed %s: the body is an HTML page (an error page or captive portal?), not a list' % name)
    if refusals is None:
        refusals = RefusalTable()
    if fmt == 'auto':
        fmt = detect_format(text, query)
    codes, numbers = _selection(name, fmt, countries, asns)
    if scored is None and fmt != 'json':
        scored = bool(score_field) and fmt not in SELECTION_FORMATS
    result = FeedParseResult(name, scored=bool(scored), labelled=fmt in SELECTION_FORMATS)
    collector = _Collector(result, refusals, min_score)
    if fmt == 'json':
        _parse_json(text, result, collector, query, scored, max_entries)
    else:
        # Lines as the parser splits them (at LF, CRLF and CR), counted before the body is copied or split:
        # a body of ten million CR-ended lines is ten million lines too.
        ends = text.count('\n') + text.count('\r') - text.count('\r\n')
        line_count = ends + 1 - text.endswith(('\n', '\r'))
        _check_entry_count(name, line_count, max_entries, 'lines')
        text = _lf_only(text)
        lines = _split_lines(text) if fmt in ('jsonl', 'csv', 'tor_exits') else None
        if fmt == 'jsonl':
            if len(lines) == 1 and lines[0].lstrip().startswith('{'):
                message = body_error_message(text)
                if message:
                    raise ProviderError('feed %s: the provider answered with an error: %s' % (name, message))
            _parse_jsonl(lines, result, collector, field or 'cidr', score_field, require_metadata)
        elif fmt == 'csv':
            _parse_csv(lines, result, collector, field, score_field)
        elif fmt == 'tor_exits':
            _parse_tor(lines, result, collector)
        elif fmt == 'rir_delegated':
            result.max_networks = max_entries
            _parse_rir(_iter_lines(text), result, refusals, codes)
        elif fmt == 'ip2asn':
            result.max_networks = max_entries
            _parse_ip2asn(_iter_lines(text), result, refusals, codes, numbers)
        else:
            _parse_text_body(text, line_count, result, collector, refusals, fmt == 'ipsum', min_count)
            _check_declared_entries(name, _split_lines(_head(text)), result)

    considered = (result.accepted + result.invalid + result.refused_total + result.below_min_count
                  + result.below_min_score + result.not_selected)
    if result.invalid and result.invalid > max_invalid_fraction * considered:
        raise FeedError(
            'feed %s looks broken: %d of %d entries are invalid (limit %.0f%%); first: %s'
            % (name, result.invalid, considered, max_invalid_fraction * 100,
               '; '.join('line %(line)d %(text)r: %(reason)s' % s for s in result.invalid_samples[:3])))
    result.sort_keys()
    return result


def _selection(name, fmt, countries, asns):
    """(country codes, AS numbers) a feed selects, checked against its format: an address plan needs one (without,
    it lists every address there is), and no other format has any."""
    codes, numbers = country_codes(countries, name), as_numbers(asns, name)
    if fmt not in SELECTION_FORMATS:
        if codes or numbers:
            raise FeedError('feed %s: countries and asns select the rows of an address plan (format rir_delegated '
                            'or ip2asn), not of a %s list' % (name, fmt))
    elif fmt == 'rir_delegated' and numbers:
        raise FeedError('feed %s: a rir_delegated file does not say which AS holds a network; select it by countries, '
                        'or use the ip2asn format (preset ip2asn) for asns' % name)
    elif not codes and not numbers:
        raise FeedError('feed %s: format %s lists the address space of the whole Internet; select what to block '
                        'with countries%s. Without a selection it would block everything'
                        % (name, fmt, '' if fmt == 'rir_delegated' else ', asns or asns_from'))
    return codes, numbers
