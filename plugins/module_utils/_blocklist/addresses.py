# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Address arithmetic on integer ranges.

Everything here is standard library only, because it runs on target hosts as
well as on the controller.  Networks are handled as integer ranges rather than
ipaddress objects: at a million entries the object overhead of ipaddress (and
of netaddr) dominates, while sorting and sweeping plain integers stays fast.

A network is encoded for sorting as a single integer ``(start << 8) | hostbits``
where ``hostbits = bits - prefixlen``; sorting these ints orders networks by
start address, which is all the merge sweep needs.
"""

from __future__ import annotations

import socket
from array import array
from bisect import bisect_left, bisect_right
from itertools import islice
from operator import itemgetter

V4 = 4
V6 = 6
BITS = {V4: 32, V6: 128}
AF = {V4: socket.AF_INET, V6: socket.AF_INET6}


class AddressError(ValueError):
    """An entry that is not a valid address or network; the message says why."""


def _parse_address(text):
    """Return (version, int) for a bare address, or raise AddressError."""
    if ':' in text:
        if '%' in text:
            raise AddressError('zone ids are not allowed')
        try:
            packed = socket.inet_pton(socket.AF_INET6, text)
        except (OSError, ValueError):
            raise AddressError('not an IPv6 address')
        return V6, int.from_bytes(packed, 'big')
    try:
        # inet_pton (unlike inet_aton) rejects '1.2.3', '0x1.2.3.4' and
        # leading zeros, which some tools read as octal.
        packed = socket.inet_pton(socket.AF_INET, text)
    except (OSError, ValueError):
        raise AddressError('not an IPv4 address')
    return V4, int.from_bytes(packed, 'big')


def parse_network(text):
    """Parse ``ADDR`` or ``ADDR/PREFIX`` strictly.

    Returns ``(version, start, prefixlen)``.  A network with host bits set
    (``1.2.3.4/24``) is an error rather than being widened: the operator must
    see that the feed said something odd.
    """
    if not text or len(text) > 64:
        raise AddressError('empty or overlong entry')
    addr, sep, prefix = text.partition('/')
    version, start = _parse_address(addr)
    bits = BITS[version]
    if sep:
        if not prefix.isdigit() or len(prefix) > 3 or not prefix.isascii():
            raise AddressError('invalid prefix length')
        prefixlen = int(prefix)
        if prefixlen > bits:
            raise AddressError('prefix length /%d out of range for IPv%d' % (prefixlen, version))
    else:
        prefixlen = bits
    if start & ((1 << (bits - prefixlen)) - 1):
        raise AddressError('host bits set (did you mean %s/%d?)'
                           % (format_address(version, start & ~((1 << (bits - prefixlen)) - 1)), prefixlen))
    return version, start, prefixlen


def parse_query(text):
    """``parse_network`` of what an operator asked about (explain, held_entries), the error naming the query."""
    try:
        return parse_network(str(text).strip())
    except AddressError as exc:
        raise AddressError('%r is not an address or a network: %s' % (text, exc))


def enclosing(version, start, prefixlen):
    """(first address, prefix length) of every network that contains the network, itself included: one per
    prefix length, from /0 to ``prefixlen``."""
    bits = BITS[version]
    for length in range(prefixlen + 1):
        yield start & ~((1 << (bits - length)) - 1), length


def parse_range(text):
    """Parse ``FIRST-LAST`` (as some feeds publish) into (version, start, end)."""
    first, _sep, last = text.partition('-')
    v1, start = _parse_address(first.strip())
    v2, end = _parse_address(last.strip())
    if v1 != v2:
        raise AddressError('range mixes IPv4 and IPv6')
    if end < start:
        raise AddressError('range end before start')
    return v1, start, end


def parse_span(text):
    """(version, first, last) of an address, a CIDR network or a FIRST-LAST range: what an allowlist or a
    protect entry may be."""
    if '-' in text:
        return parse_range(text)
    version, start, prefixlen = parse_network(text)
    return version, start, start + (1 << (BITS[version] - prefixlen)) - 1


def format_address(version, value):
    return socket.inet_ntop(AF[version], value.to_bytes(BITS[version] // 8, 'big'))


def format_network(version, start, prefixlen):
    """Canonical text: host networks bare, as ``ipset save`` and nft print them."""
    if prefixlen == BITS[version]:
        return format_address(version, start)
    return '%s/%d' % (format_address(version, start), prefixlen)


def canonical(text):
    """Return (version, canonical text) for an entry, or raise AddressError."""
    version, start, prefixlen = parse_network(text)
    return version, format_network(version, start, prefixlen)


def network_key(version, start, prefixlen):
    return (start << 8) | (BITS[version] - prefixlen)


def _spans(entries):
    """(version, start, end, text) of each valid entry; invalid ones are passed over, others say what is wrong."""
    for text in entries:
        try:
            version, start, prefixlen = parse_network(text)
        except AddressError:
            continue
        yield version, start, start + (1 << (BITS[version] - prefixlen)) - 1, text


def nested_pair(entries):
    """``(outer, inner)``: two of ``entries`` (canonical or not) of which the second lies inside the first, or None.

    Two CIDR blocks are nested or disjoint, so sorted by start, the widest first, an entry that starts before the
    end of the widest block seen so far lies inside it.
    """
    spans = sorted(_spans(entries), key=lambda span: (span[0], span[1], -span[2]))
    outer = None
    for span in spans:
        if outer is not None and span[0] == outer[0] and span[1] <= outer[2]:
            return outer[3], span[3]
        if outer is None or span[0] != outer[0] or span[2] > outer[2]:
            outer = span
    return None


def overlapping(entries, others):
    """The entries (texts) that overlap any of ``others``: contain one, or lie inside one.  Invalid texts are passed
    over.  Two CIDR blocks are nested or disjoint, so an entry overlaps another exactly when one contains the
    other: found by bisection over the others sorted by start, with the widest end reached so far."""
    tables = {}
    for version, start, end, _text in sorted(_spans(others)):
        starts, reach = tables.setdefault(version, ([], []))
        starts.append(start)
        reach.append(max(end, reach[-1]) if reach else end)
    found = set()
    for version, start, end, text in _spans(entries):
        if version not in tables:
            continue
        starts, reach = tables[version]
        before = bisect_right(starts, start) - 1        # others starting at or before this one: one contains it?
        inside = bisect_right(starts, end) - 1          # others starting within this one: it contains them
        if (before >= 0 and reach[before] >= start) or inside > before:
            found.add(text)
    return found


class RangeList(object):
    """Sorted, disjoint, inclusive ``(start, end)`` ranges, kept as two columns.

    As a list of tuples a range costs about 100 bytes; ten million of them
    were most of a big build's memory.  IPv4 values fit a machine word and
    sit in two unsigned 64-bit arrays at 16 bytes a range; IPv6 values do
    not and stay Python lists.  It reads as a sequence of tuples (iterate,
    index, slice, compare with a list), so small callers need not care.
    """

    __slots__ = ('starts', 'ends')

    def __init__(self, compact=False):
        self.starts, self.ends = (array('Q'), array('Q')) if compact else ([], [])

    @classmethod
    def of(cls, ranges):
        """``ranges`` itself when it is a RangeList, else its pairs in a new (list-backed) one."""
        if isinstance(ranges, RangeList):
            return ranges
        out = cls()
        for start, end in ranges:
            out.append(start, end)
        return out

    def like(self):
        """An empty RangeList with the same storage."""
        return RangeList(compact=isinstance(self.starts, array))

    def append(self, start, end):
        self.starts.append(start)
        self.ends.append(end)

    def extend(self, other, first=0, last=None):
        """Append ``other[first:last]`` column by column, without making tuples."""
        self.starts.extend(other.starts[first:last])
        self.ends.extend(other.ends[first:last])

    def pop(self):
        return self.starts.pop(), self.ends.pop()

    def __len__(self):
        return len(self.starts)

    def __iter__(self):
        return zip(self.starts, self.ends)

    def __getitem__(self, index):
        if isinstance(index, slice):
            out = RangeList()
            out.starts, out.ends = self.starts[index], self.ends[index]
            return out
        return self.starts[index], self.ends[index]

    def __eq__(self, other):
        return list(self) == list(other)

    __hash__ = None

    def __repr__(self):
        return 'RangeList(%r)' % (list(self)[:10],)


def merge_keys(keys, version=None, presorted=False):
    """Merge encoded networks into sorted, disjoint, non-adjacent ranges.

    ``keys`` may be in any order and contain duplicates; it is sorted in
    place, unless the caller knows it is sorted already (``presorted``: one
    feed's keys, as parse_feed leaves them; checking costs a pass).
    Returns a RangeList, compact for IPv4 (``version`` 4).
    """
    if not presorted:
        keys.sort()
    ranges = RangeList(compact=version == V4)
    if not keys:
        return ranges
    add_start, add_end = ranges.starts.append, ranges.ends.append
    cur_start = keys[0] >> 8
    cur_end = cur_start + (1 << (keys[0] & 0xff)) - 1
    # Every key below the limit starts at or before cur_end + 1: it joins the
    # current range.  One comparison decides it for the common case, a key
    # that starts a range of its own.
    limit = (cur_end + 2) << 8
    for key in islice(keys, 1, None):
        if key < limit:
            end = (key >> 8) + (1 << (key & 0xff)) - 1
            if end > cur_end:
                cur_end = end
                limit = (end + 2) << 8
            continue
        add_start(cur_start)
        add_end(cur_end)
        cur_start = cur_end = key >> 8
        host_bits = key & 0xff
        if host_bits:
            cur_end += (1 << host_bits) - 1
        limit = (cur_end + 2) << 8
    add_start(cur_start)
    add_end(cur_end)
    return ranges


def merge_ranges(ranges):
    """Merge arbitrary (start, end) ranges into sorted disjoint ranges."""
    out = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1] + 1:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def insert_ranges(ranges, extra):
    """Merge a few more ranges into sorted, disjoint, non-adjacent ``ranges``; return a new RangeList.

    Linear in the copying of ``ranges`` plus a binary search per extra range,
    where ``merge_ranges`` over the concatenation would walk every range in
    Python: this is how the fleet's few bans join a million feed entries.
    """
    ranges = RangeList.of(ranges)
    if not extra:
        return ranges
    starts, ends = ranges.starts, ranges.ends
    out, pos, count = ranges.like(), 0, len(ranges)
    for start, end in merge_ranges(extra):
        index = bisect_left(starts, start, pos)
        if index > pos and ends[index - 1] + 1 >= start:
            index -= 1
        out.extend(ranges, pos, index)
        if out and out.ends[-1] + 1 >= start:
            previous = out.pop()
            start, end = min(previous[0], start), max(previous[1], end)
        while index < count and starts[index] <= end + 1:
            start, end = min(start, starts[index]), max(end, ends[index])
            index += 1
        out.append(start, end)
        pos = index
    out.extend(ranges, pos)
    return out


def count_networks(ranges, bits):
    """How many CIDR lines ``networks_text`` would write for ``ranges``, without writing them."""
    # Most ranges are one aligned block (a single address or a feed's CIDR):
    # a power-of-two size that its start is a multiple of.
    odd = [(start, end) for start, end in ranges
           if (end - start + 1) & (end - start) or start & (end - start)]
    return len(ranges) - len(odd) + sum(sum(1 for _network in ranges_to_networks([r], bits)) for r in odd)


def _subtract_sweep(ranges, holes):
    """``ranges`` minus ``holes``, walking both: for the few ranges a hole touches."""
    out = []
    removed = 0
    j = 0
    holes = RangeList.of(holes)
    h_starts, h_ends = holes.starts, holes.ends
    n_holes = len(holes)
    for start, end in ranges:
        while j < n_holes and h_ends[j] < start:
            j += 1
        k = j
        cur = start
        while k < n_holes and h_starts[k] <= end:
            h_start, h_end = h_starts[k], h_ends[k]
            if h_start > cur:
                out.append((cur, h_start - 1))
            overlap_start = max(h_start, cur)
            overlap_end = min(h_end, end)
            if overlap_end >= overlap_start:
                removed += overlap_end - overlap_start + 1
            cur = max(cur, h_end + 1)
            if cur > end:
                break
            k += 1
        if cur <= end:
            out.append((cur, end))
    return out, removed


def _touched_windows(ranges, holes):
    """``[first, last)`` index runs of ``ranges`` that some hole overlaps, found by bisection.

    The bisection goes from the shorter side into the longer one: an
    allowlist's few holes into a million ranges, or a challenge tier's few
    ranges into the block tier's million.
    """
    windows = []
    if len(holes) <= len(ranges):
        starts, ends = ranges.starts, ranges.ends
        for h_start, h_end in holes:
            first, last = bisect_left(ends, h_start), bisect_right(starts, h_end)
            if first >= last:
                continue
            if windows and first <= windows[-1][1]:
                windows[-1][1] = max(windows[-1][1], last)
            else:
                windows.append([first, last])
        return windows
    h_starts, h_ends, n_holes = holes.starts, holes.ends, len(holes)
    for index, (start, end) in enumerate(ranges):
        first = bisect_left(h_ends, start)
        if first < n_holes and h_starts[first] <= end:
            if windows and windows[-1][1] == index:
                windows[-1][1] = index + 1
            else:
                windows.append([index, index + 1])
    return windows


def subtract_ranges(ranges, holes):
    """Exact difference of two sorted disjoint range lists (lists of pairs or RangeLists).

    Returns the ranges of ``ranges`` not covered by ``holes``, as a
    RangeList, and the number of addresses removed.  A /16 minus one /32
    becomes two ranges, which ``ranges_to_networks`` turns into the minimal
    set of CIDRs.

    Only the ranges a hole touches go through the sweep; the rest are
    copied as slices of the columns.
    """
    ranges, holes = RangeList.of(ranges), RangeList.of(holes)
    out = ranges.like()
    if not holes or not ranges:
        out.extend(ranges)
        return out, 0
    hole_starts, hole_ends = holes.starts, holes.ends
    removed = 0
    position = 0
    for first, last in _touched_windows(ranges, holes):
        out.extend(ranges, position, first)
        window = ranges[first:last]
        touching = holes[bisect_left(hole_ends, window.starts[0]):bisect_right(hole_starts, window.ends[-1])]
        kept, count = _subtract_sweep(window, touching)
        for start, end in kept:
            out.append(start, end)
        removed += count
        position = last
    out.extend(ranges, position)
    return out, removed


def ranges_to_networks(ranges, bits):
    """Yield (start, prefixlen) covering each range with the fewest CIDRs."""
    for start, end in ranges:
        while start <= end:
            # The largest block is limited by the alignment of start and by
            # the remaining length of the range.
            align = (start & -start).bit_length() - 1 if start else bits
            span = (end - start + 1).bit_length() - 1
            size = min(align, span)
            yield start, bits - size
            start += 1 << size


def networks_text(ranges, version):
    """Canonical lines for the CIDRs covering ``ranges`` (what ``ranges_to_networks`` yields, formatted).

    Returns a list of strings, one per range; a range that needs several
    CIDRs is one string of newline-separated lines, so ``'\n'.join`` of the
    result is the file.  Most ranges of a real blocklist are single
    addresses: they go straight to inet_ntop inside one list comprehension,
    which halves the cost at a million.
    """
    ntop, family, width, bits = socket.inet_ntop, AF[version], BITS[version] // 8, BITS[version]

    def split(start, end):
        size = end - start + 1
        if not size & (size - 1) and not start & (size - 1):
            # One aligned block, as most of a feed's CIDRs stay: no generator for it.
            return '%s/%d' % (ntop(family, start.to_bytes(width, 'big')), bits + 1 - size.bit_length())
        return '\n'.join(
            ntop(family, net.to_bytes(width, 'big')) if prefixlen == bits
            else '%s/%d' % (ntop(family, net.to_bytes(width, 'big')), prefixlen)
            for net, prefixlen in ranges_to_networks(((start, end),), bits))

    return [ntop(family, start.to_bytes(width, 'big')) if start == end else split(start, end)
            for start, end in ranges]


def networks_file(ranges, version, chunk=65536):
    """The file of ``networks_text``'s lines, newline-terminated, as bytes.

    Formatted ``chunk`` ranges at a time: the strings of ten million lines
    at once cost more memory than the ranges and the file together.
    """
    parts = []
    for first in range(0, len(ranges), chunk):
        lines = networks_text(ranges[first:first + chunk], version)
        lines.append('')
        parts.append('\n'.join(lines).encode())
    return b''.join(parts)


def count_addresses(ranges):
    if isinstance(ranges, RangeList):
        # The sums run in C over the columns: a million ranges per build.
        return sum(ranges.ends) - sum(ranges.starts) + len(ranges)
    return sum(map(itemgetter(1), ranges)) - sum(map(itemgetter(0), ranges)) + len(ranges)


# Ranges that a blocklist must never contain unless the operator says so.
# Categories follow the IANA special-purpose registries.  'documentation' and
# 'benchmarking' are known but not refused by default: feeds do not list them
# in practice and labs (like this project's own) are built in them.
SPECIAL_RANGES = {
    V4: [
        ('0.0.0.0/8', 'unspecified'),
        ('10.0.0.0/8', 'private'),
        ('100.64.0.0/10', 'shared'),
        ('127.0.0.0/8', 'loopback'),
        ('169.254.0.0/16', 'link_local'),
        ('172.16.0.0/12', 'private'),
        ('192.0.0.0/24', 'reserved'),
        ('192.0.2.0/24', 'documentation'),
        ('192.88.99.0/24', 'reserved'),             # 6to4 relay anycast, deprecated (RFC 7526)
        ('192.168.0.0/16', 'private'),
        ('198.18.0.0/15', 'benchmarking'),
        ('198.51.100.0/24', 'documentation'),
        ('203.0.113.0/24', 'documentation'),
        ('224.0.0.0/4', 'multicast'),
        ('240.0.0.0/4', 'reserved'),
    ],
    V6: [
        ('::/128', 'unspecified'),
        ('::1/128', 'loopback'),
        ('::ffff:0:0/96', 'ipv4_mapped'),
        ('64:ff9b:1::/48', 'private'),
        ('100::/64', 'reserved'),                   # discard-only (RFC 6666)
        ('100:0:0:1::/64', 'reserved'),             # dummy prefix (RFC 9780)
        ('2001:2::/48', 'benchmarking'),            # RFC 5180
        ('2001:10::/28', 'reserved'),               # ORCHID, deprecated (RFC 4843)
        ('2001:db8::/32', 'documentation'),
        ('3fff::/20', 'documentation'),             # RFC 9637
        ('5f00::/16', 'reserved'),                  # SRv6 SIDs, not globally routable (RFC 9602)
        ('fc00::/7', 'private'),
        ('fe80::/10', 'link_local'),
        ('ff00::/8', 'multicast'),
    ],
}
# IPv6 prefixes whose addresses carry an IPv4 address: 6to4 (RFC 3056), NAT64's well-known prefix
# (RFC 6052), the deprecated IPv4-compatible addresses (RFC 4291) and Teredo (RFC 4380).  Blocking
# 2002:c0a8:101::1 is blocking 192.168.1.1 by another name, so an entry in one of them is judged by the IPv4
# rules on the network it embeds (category 'ipv4_embedded').  Each field is (label, offset of its 32 bits
# from the top of the address, mask the address stores it XORed with): Teredo holds its server's IPv4 in
# bits 32-63 and its client's, inverted, in the last 32.  ::ffff:0:0/96 (IPv4-mapped) is not here: it is
# refused whole, as 'ipv4_mapped'.
IPV4_EMBEDDINGS = (
    ('IPv4-compatible', '::/96', (('IPv4-compatible', 96, 0),)),
    ('NAT64', '64:ff9b::/96', (('NAT64', 96, 0),)),
    ('Teredo', '2001::/32', (('Teredo server', 32, 0), ('Teredo client', 96, 0xffffffff))),
    ('6to4', '2002::/16', (('6to4', 16, 0),)),
)
IPV4_EMBEDDED = 'ipv4_embedded'
DEFAULT_REFUSED_CATEGORIES = (
    'unspecified', 'private', 'shared', 'loopback', 'link_local', 'multicast',
    'reserved', 'ipv4_mapped', IPV4_EMBEDDED,
)
ALL_CATEGORIES = tuple(sorted({c for table in SPECIAL_RANGES.values() for _n, c in table} | {IPV4_EMBEDDED}))


class _EmbeddingPrefix(object):
    """One of IPV4_EMBEDDINGS, parsed: where its IPv4 fields sit in an address."""

    def __init__(self, name, text, fields):
        self.name = name
        self.text = text
        _version, self.start, self.prefixlen = parse_network(text)
        self.end = self.start + (1 << (BITS[V6] - self.prefixlen)) - 1
        self.fields = fields

    def ipv4_networks(self, start, prefixlen):
        """Yield (label, IPv4 start, IPv4 prefixlen) for each field of the IPv6 network ``start/prefixlen``.

        The network fixes a field's top ``prefixlen - offset`` bits and leaves the rest free, so what it
        embeds is an IPv4 network of that length (XOR with a constant maps a CIDR block to a CIDR block).
        """
        for label, offset, xor in self.fields:
            ipv4_prefixlen = min(max(prefixlen - offset, 0), 32)
            value = ((start >> (BITS[V6] - offset - 32)) & 0xffffffff) ^ xor
            yield label, value & ~((1 << (32 - ipv4_prefixlen)) - 1), ipv4_prefixlen


def _refusal_rows(version, categories):
    """Sorted disjoint (start, end, verdict) rows: a verdict is a reason, or an _EmbeddingPrefix to judge by.

    A special range inside an embedding prefix (::1 inside ::/96) keeps its own reason: the embedding's
    row is cut around it.
    """
    rows = []
    for text, category in SPECIAL_RANGES[version]:
        if category in categories:
            _v, start, prefixlen = parse_network(text)
            rows.append((start, start + (1 << (BITS[version] - prefixlen)) - 1, '%s %s' % (category, text)))
    if version == V6 and IPV4_EMBEDDED in categories:
        specials = merge_ranges([(start, end) for start, end, _reason in rows])
        for name, text, fields in IPV4_EMBEDDINGS:
            prefix = _EmbeddingPrefix(name, text, fields)
            uncovered, _removed = subtract_ranges([(prefix.start, prefix.end)], specials)
            rows.extend((start, end, prefix) for start, end in uncovered)
    rows.sort(key=itemgetter(0))
    return rows


class RefusalTable(object):
    """Decides whether a network must be refused, and says why.

    Lookups are a bisect over a handful of disjoint ranges, so checking every
    entry of a million-line feed costs well under a second.  The IPv6 prefixes
    that embed IPv4 are rows of the same table: only an entry that falls in one
    pays for judging what it embeds.
    """

    def __init__(self, categories=DEFAULT_REFUSED_CATEGORIES, min_prefix=None):
        unknown = set(categories) - set(ALL_CATEGORIES)
        if unknown:
            raise ValueError('unknown refusal categories: %s (known: %s)'
                             % (', '.join(sorted(unknown)), ', '.join(ALL_CATEGORIES)))
        self.categories = tuple(categories)
        self.min_prefix = {V4: 8, V6: 19}
        self.min_prefix.update(min_prefix or {})
        self._tables = {}
        self._v4_octets = None
        for version in (V4, V6):
            rows = _refusal_rows(version, self.categories)
            self._tables[version] = ([r[0] for r in rows], rows)

    def v4_octets_to_check(self):
        """First octets of the IPv4 addresses that may be refused; any other single address never is."""
        if self._v4_octets is None:
            octets = set()
            for start, end, _reason in self._tables[V4][1]:
                octets.update(range(start >> 24, (end >> 24) + 1))
            self._v4_octets = frozenset(octets)
        return self._v4_octets

    def reason(self, version, start, prefixlen):
        """Return None when the network may be blocked, else the reason."""
        if prefixlen == 0:
            return 'default route'
        if prefixlen < self.min_prefix[version]:
            return 'broader than /%d' % self.min_prefix[version]
        starts, rows = self._tables[version]
        end = start + (1 << (BITS[version] - prefixlen)) - 1
        # The candidate is the last row starting at or before our end; rows
        # are disjoint so no earlier one can overlap if it doesn't.
        idx = bisect_right(starts, end) - 1
        while idx >= 0 and rows[idx][1] >= start:
            verdict = rows[idx][2]
            if isinstance(verdict, str):
                return verdict
            refused = self._embedded_reason(verdict, start, prefixlen)
            if refused is not None:
                return refused
            # What it embeds may be blocked, but the network may still reach into a special range the
            # embedding's row was cut around (::/126 covers ::1): look at the rows before it too.
            idx -= 1
        return None

    def _embedded_reason(self, prefix, start, prefixlen):
        """Judge an IPv6 network inside an embedding prefix by the IPv4 networks it embeds."""
        if prefixlen <= prefix.prefixlen:
            return 'whole %s prefix %s' % (prefix.name, prefix.text)
        for label, ipv4_start, ipv4_prefixlen in prefix.ipv4_networks(start, prefixlen):
            refused = self.reason(V4, ipv4_start, ipv4_prefixlen)
            if refused is not None:
                # 'broader than /8' and 'default route' say nothing of IPv4 on their own.
                broad = ipv4_prefixlen == 0 or ipv4_prefixlen < self.min_prefix[V4]
                return '%s of %s%s' % (label, 'IPv4 ' if broad else '', refused)
        return None
