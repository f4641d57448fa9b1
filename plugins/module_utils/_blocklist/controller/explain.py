# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Why an address is blocked, or is not: the shadow copy's answer, by containment, from the files it publishes.

Every file searched here is sorted by network (family, first address, then longer prefixes first): the tiers'
files (aggregated, disjoint networks) and the provenance (every network any feed listed, with its feeds and best
score). So no file is scanned. The networks that contain a query are at most one per prefix length (33 for IPv4,
129 for IPv6), each found by a bisection over the file's bytes; the networks inside a query network are one run of
lines, found by two more. At a million provenance lines the cost is the gzip decompression (about a tenth of a
second); the tiers' files are searched in place (mmap).
"""

from __future__ import annotations

import datetime
import gzip
import json
import mmap
import os


from ..addresses import (
    BITS, AddressError, RefusalTable, enclosing, format_network, parse_network, parse_query, parse_span,
)

# How many networks inside a query network are listed by name; the rest are counted.
INSIDE_SAMPLE = 50
TIER_FILES = {'block': {4: 'blocklist_v4.txt', 6: 'blocklist_v6.txt'},
              'challenge': {4: 'challenge_v4.txt', 6: 'challenge_v6.txt'}}
PROVENANCE = 'provenance.tsv.gz'
FLEET_LOCAL = 'fleet_local.json'


class ExplainError(Exception):
    """A query or a shadow copy that cannot be explained; the message says which and why."""


class SortedNetworks(object):
    """Lines sorted by network in a bytes-like buffer (bytes, or an mmap), searched by bisection.

    A line is a network (``192.0.2.0/24``, ``2001:db8::1``), optionally followed by a tab and more columns; lines
    starting with ``#`` before the first network are skipped.
    """

    def __init__(self, data):
        self.data = data
        self.begin = 0
        while data[self.begin:self.begin + 1] == b'#':
            newline = data.find(b'\n', self.begin)
            self.begin = len(data) if newline < 0 else newline + 1

    @staticmethod
    def key(line):
        """(family, first address, host bits) of a line: the files' own order. An unparsable line sorts last."""
        text = line.split(b'\t', 1)[0].strip().decode('ascii', 'replace')
        try:
            version, start, prefixlen = parse_network(text)
        except AddressError:
            return (7, 0, 0)
        return (version, start, BITS[version] - prefixlen)

    def _line(self, start):
        end = self.data.find(b'\n', start)
        return end if end >= 0 else len(self.data)

    def first_at_or_after(self, target):
        """The byte offset of the first line whose key is at least ``target`` (the buffer's end if none)."""
        low, high = self.begin, len(self.data)
        while low < high:
            middle = (low + high) // 2
            start = max(self.data.rfind(b'\n', low, middle) + 1, low)
            end = self._line(start)
            if self.key(self.data[start:end]) < target:
                low = end + 1
            else:
                high = start
        return min(low, len(self.data))

    def lines_between(self, first, last):
        """The lines whose keys are at least ``first`` and at most ``last``, in order."""
        position = self.first_at_or_after(first)
        while position < len(self.data):
            end = self._line(position)
            line = self.data[position:end]
            if line and self.key(line) > last:
                return
            if line:
                yield line
            position = end + 1

    def containing(self, version, start, prefixlen):
        """The lines whose networks contain the network (``prefixlen`` included: the network itself)."""
        for first, length in enclosing(version, start, prefixlen):
            key = (version, first, BITS[version] - length)
            yield from self.lines_between(key, key)

    def inside(self, version, start, prefixlen):
        """The lines whose networks lie inside the network, itself excluded."""
        bits = BITS[version]
        last = start + (1 << (bits - prefixlen)) - 1
        for line in self.lines_between((version, start, 0), (version, last, bits)):
            if self.key(line)[2] < bits - prefixlen:
                yield line


def explain(root, query, allowlist=()):
    """What the shadow copy under ``root`` says of ``query`` (an address or a CIDR network); a dict (see the
    ``fleetwall.blocklist.explain`` lookup's RETURN)."""
    version, start, prefixlen = _parse_query(query)
    current = _current_generation(root)
    manifest = _manifest(current)
    result = {'query': format_network(version, start, prefixlen), 'generation': manifest.get('generation'),
              'created': manifest.get('created')}
    for tier in ('block', 'challenge'):
        result[tier] = _tier_entries(current, tier, version, start, prefixlen)
    result['listed'], result['listed_inside'], result['listed_inside_count'] = _listed(current, manifest, version,
                                                                                       start, prefixlen)
    result['verdict'] = _verdict(result, prefixlen == BITS[version])
    result['fleet_bans'] = _fleet_bans(current, version, start, prefixlen)
    result['kept_out'] = (_allow_sources(current, manifest, version, start, prefixlen)
                          + _kept_out(manifest, allowlist, version, start, prefixlen))
    result['operator_blocks'] = _operator_entries(manifest, 'block', version, start, prefixlen)
    result['listed_since'] = _listed_since(root, version, start, prefixlen)
    result['summary'] = summary_lines(result)
    return result


def summary_lines(answer):
    """The answer as an operator reads it, a line per fact."""
    lines = ['%s: %s in generation %s (%s)' % (answer['query'], answer['verdict'], answer['generation'],
                                               answer['created'])]
    for tier in ('block', 'challenge'):
        if answer[tier]:
            lines.append('%s tier entries: %s' % (tier, ', '.join(answer[tier][:10])
                                                  + (' and %d more' % (len(answer[tier]) - 10)
                                                     if len(answer[tier]) > 10 else '')))
    for row in answer['listed']:
        score = '' if row['best_score'] is None else ', best score %g' % row['best_score']
        labels = row.get('labels') or {}
        feeds = ['%s (%s)' % (feed, labels[feed]) if feed in labels else feed for feed in row['feeds']]
        lines.append('listed as %s by %s%s' % (row['network'], ', '.join(feeds), score))
    if answer['listed_inside_count']:
        lines.append('%d listed networks inside it (%s%s)' % (
            answer['listed_inside_count'], ', '.join(row['network'] for row in answer['listed_inside'][:5]),
            ', ...' if answer['listed_inside_count'] > 5 else ''))
    for ban in answer['fleet_bans']:
        lines.append('fleet-local ban of %s: %s' % (ban.get('address'), '; '.join(
            '%s jail %s at %s' % (h.get('host'), h.get('jail'), h.get('banned_at')) for h in ban.get('hosts') or [])))
    for block in answer['operator_blocks']:
        lines.append('blocked by %s until %s: %s' % (block['operator'], _when(block['expires']), block['reason']))
    for kept in answer['kept_out']:
        if kept['by'] == 'allow source':
            lines.append('kept reachable by the allow source %s: %s' % (kept['source'], kept['entry']))
            continue
        if kept['by'] == 'unblock':
            lines.append('unblocked (%s) by %s until %s: %s'
                         % (kept['entry'], kept['operator'], _when(kept['expires']), kept['reason']))
            continue
        lines.append('kept out by the %s%s%s' % (
            kept['by'], (': ' + kept['entry']) if kept.get('entry') else '',
            (' (%s%s)' % (kept['reason'], ', feed %s' % kept['feed'] if kept.get('feed') else ''))
            if kept.get('reason') else ''))
    since = answer['listed_since']
    if since:
        oldest = since['generation'] == since['oldest_kept']
        lines.append('in force since generation %s (%s)%s' % (
            since['generation'], since['created'], ', the oldest kept: maybe earlier' if oldest else ''))
    return lines


def _when(epoch):
    try:
        return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')
    except (TypeError, ValueError, OverflowError, OSError):
        return 'unknown'


def _parse_query(query):
    try:
        return parse_query(query)
    except AddressError as exc:
        raise ExplainError(str(exc))


def _current_generation(root):
    current = os.path.join(root, 'current')
    if not os.path.isdir(current):
        raise ExplainError('%s has no current generation: build the shadow copy first (playbooks/blocklist.yml or '
                           'shadow_copy.yml)' % root)
    return os.path.realpath(current)


def _manifest(generation_dir):
    try:
        with open(os.path.join(generation_dir, 'manifest.json')) as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError) as exc:
        raise ExplainError('cannot read the manifest of %s: %s' % (generation_dir, exc))


def _mapped(path):
    """The file's bytes, mapped (an empty file as empty bytes: mmap refuses those); None when it is missing."""
    try:
        with open(path, 'rb') as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                return b''
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        return None


def _network_text(line):
    return line.split(b'\t', 1)[0].strip().decode('ascii')


def _tier_entries(generation_dir, tier, version, start, prefixlen):
    """The tier's networks that contain the query or lie inside it."""
    return _networks_in_file(os.path.join(generation_dir, TIER_FILES[tier][version]), version, start, prefixlen)


def _allow_sources(generation_dir, manifest, version, start, prefixlen):
    """The allow sources' networks (published in the generation) that contain the query or lie inside it."""
    kept = []
    for source in manifest.get('allow_feeds') or []:
        info = ((source or {}).get('files') or {}).get('v%d' % version) or {}
        if not isinstance(info.get('file'), str) or os.path.basename(info['file']) != info['file']:
            continue
        for entry in _networks_in_file(os.path.join(generation_dir, info['file']), version, start, prefixlen):
            kept.append({'by': 'allow source', 'source': source.get('name'), 'entry': entry})
    return kept


def _networks_in_file(path, version, start, prefixlen):
    """The networks of a sorted networks file that contain the query or lie inside it."""
    data = _mapped(path)
    if data is None:
        return []
    try:
        networks = SortedNetworks(data)
        found = list(networks.containing(version, start, prefixlen)) + list(networks.inside(version, start, prefixlen))
        return [_network_text(line) for line in found]
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


def _covered(entries, version, start, prefixlen):
    """Whether ``entries`` (networks of one family) cover the whole query network."""
    last = start + (1 << (BITS[version] - prefixlen)) - 1
    spans = sorted(parse_span(entry)[1:] for entry in entries)
    reached = start
    for first, end in spans:
        if first > reached:
            return False
        reached = max(reached, end + 1)
        if reached > last:
            return True
    return reached > last


def _verdict(result, single_address):
    query = parse_network(result['query'])
    for tier, word in (('block', 'blocked'), ('challenge', 'challenged')):
        if result[tier]:
            if single_address or _covered(result[tier], *query):
                return word
            return 'partly %s' % word
    # A feed listed it, and the allowlist, an allow source or an unblock kept it out of every tier.
    return 'kept out' if result['listed'] else 'not listed'


def _listed(generation_dir, manifest, version, start, prefixlen):
    """The feeds' own networks (the provenance): those that contain the query, and those inside it (a sample and
    their count); each with the feeds that listed it and its best score."""
    provenance = manifest.get('provenance') or {}
    path = os.path.join(generation_dir, provenance.get('file') or PROVENANCE)
    try:
        with open(path, 'rb') as handle:
            data = gzip.decompress(handle.read())
    except FileNotFoundError:
        return [], [], 0
    except (IOError, OSError, EOFError) as exc:
        raise ExplainError('cannot read the provenance %s: %s' % (path, exc))
    networks = SortedNetworks(data)
    containing = [_provenance_row(line) for line in networks.containing(version, start, prefixlen)]
    inside, count = [], 0
    for line in networks.inside(version, start, prefixlen):
        count += 1
        if len(inside) < INSIDE_SAMPLE:
            inside.append(_provenance_row(line))
    return containing, inside, count


def _provenance_row(line):
    """A provenance line as a dict; its fourth column (present when an address plan's feed labelled its networks:
    ``feed=AS4134 CN,other=CN``) becomes ``labels``, the country or AS each feed said."""
    columns = line.decode('ascii', 'replace').split('\t')
    score = columns[2] if len(columns) > 2 else '-'
    labels = {}
    for item in (columns[3] if len(columns) > 3 else '').split(','):
        feed, sep, label = item.partition('=')
        if sep and feed:
            labels.setdefault(feed, label)
    return {'network': columns[0], 'feeds': [name for name in (columns[1] if len(columns) > 1 else '').split(',')
                                             if name],
            'best_score': None if score in ('', '-') else float(score), 'labels': labels}


def _fleet_bans(generation_dir, version, start, prefixlen):
    """The fleet-local bans (fail2ban, harvested) behind the generation that overlap the query."""
    try:
        with open(os.path.join(generation_dir, FLEET_LOCAL)) as handle:
            entries = json.load(handle)
    except FileNotFoundError:
        return []
    except (IOError, OSError, ValueError) as exc:
        raise ExplainError('cannot read the fleet-local bans of %s: %s' % (generation_dir, exc))
    found = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            if _overlaps(entry['address'], version, start, prefixlen):
                found.append(entry)
        except (AddressError, KeyError, TypeError):
            continue
    return found


def _overlaps(entry, version, start, prefixlen):
    entry_version, first, last = parse_span(str(entry))
    end = start + (1 << (BITS[version] - prefixlen)) - 1
    return entry_version == version and first <= end and last >= start


def _kept_out(manifest, allowlist, version, start, prefixlen):
    """What keeps the query out of the tiers, or would if a feed listed it: the allowlist entries that overlap it;
    the feeds' entries the build refused that overlap it (the manifest keeps a sample of them, with their feed);
    and the copy's refusal policy, when the query lies in a range no feed may block."""
    kept = []
    for entry in _operator_entries(manifest, 'unblock', version, start, prefixlen):
        kept.append(dict(entry, by='unblock'))
    for entry in allowlist or ():
        try:
            if _overlaps(entry, version, start, prefixlen):
                kept.append({'by': 'allowlist', 'entry': str(entry)})
        except AddressError:
            continue
    refusals = manifest.get('refusals') or {}
    for refused in refusals.get('entries') or []:
        try:
            if _overlaps(refused['entry'], version, start, prefixlen):
                kept.append({'by': 'refusal', 'entry': refused['entry'], 'reason': refused.get('reason'),
                             'feed': refused.get('feed')})
        except (AddressError, KeyError, TypeError):
            continue
    reason = _policy_refusal(manifest.get('policy') or {}, version, start, prefixlen)
    if reason:
        kept.append({'by': 'refusal policy', 'reason': reason})
    return kept


def _operator_entries(manifest, action, version, start, prefixlen):
    """The operators' entries of ``action`` in force in the generation (playbooks/block.yml, unblock.yml) that
    overlap the query: who asked, why, until when."""
    found = []
    for entry in manifest.get('operator_entries') or []:
        try:
            if entry.get('action') == action and _overlaps(entry['entry'], version, start, prefixlen):
                found.append({'entry': entry['entry'], 'reason': entry.get('reason'), 'operator': entry.get('by'),
                              'expires': entry.get('expires')})
        except (AddressError, KeyError, TypeError, AttributeError):
            continue
    return found


def _policy_refusal(policy, version, start, prefixlen):
    """Why the copy's policy would refuse the query if a feed listed it, or None."""
    try:
        refusals = RefusalTable(policy.get('refused_categories') or (),
                                dict((int(k[1:]), v) for k, v in (policy.get('min_prefix') or {}).items()))
    except (ValueError, TypeError):
        return None
    return refusals.reason(version, start, prefixlen)


def _listed_since(root, version, start, prefixlen):
    """The oldest generation of the unbroken run, up to the current one, in which a tier holds the query (or part of
    it); None when the current one does not. Generations older than the copy keeps are not known."""
    generations_dir = os.path.join(root, 'generations')
    numbers = sorted((int(name) for name in os.listdir(generations_dir) if name.isdigit()), reverse=True)
    current = os.path.basename(_current_generation(root))
    numbers = [n for n in numbers if n <= int(current)] if current.isdigit() else numbers
    since = None
    for number in numbers:
        generation_dir = os.path.join(generations_dir, str(number))
        if not any(_tier_entries(generation_dir, tier, version, start, prefixlen) for tier in TIER_FILES):
            break
        since = number
    if since is None:
        return None
    created = _manifest(os.path.join(generations_dir, str(since))).get('created')
    return {'generation': since, 'created': created, 'oldest_kept': numbers[-1] if numbers else None}
