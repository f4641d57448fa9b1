# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Lockout protection: the addresses a host must never block, taken out of what it applies.

Runs on the target with the standard library only. The shadow copy already
refuses private ranges and subtracts the allowlist centrally; this is the last
line, on the host, for what only the host knows: who is connected to it right
now (the controller or the AWX node), its own addresses and its gateways.
"""

from __future__ import annotations

import hashlib
import os
import socket
from bisect import bisect_right

from ..addresses import BITS, AddressError, format_address, format_network, merge_ranges, parse_network, parse_span, \
    ranges_to_networks, subtract_ranges
from .command_runner import tool_message

# How many ancestors to search for the SSH session: become (sudo, su) and the
# pipelining shell sit between the module and sshd's session process.
_ANCESTORS = 12


def ssh_client_addresses(environ=None, proc='/proc'):
    """The client address of the SSH session this module runs under."""
    return [address for address, _port in ssh_connections(environ, proc)]


def _connection(value):
    """(client address, the port it came in on or None) of an SSH_CONNECTION or SSH_CLIENT value, or None.

    SSH_CONNECTION is "client port server-address server-port", SSH_CLIENT "client port server-port": the port
    the session came in on is the last field of both.
    """
    fields = value.split()
    if not fields:
        return None
    port = fields[-1] if len(fields) in (3, 4) else ''
    return fields[0], int(port) if port.isascii() and port.isdigit() and len(port) <= 5 else None


def ssh_connections(environ=None, proc='/proc'):
    """(client address, server port) of the SSH session this module runs under.

    SSH_CONNECTION (or SSH_CLIENT) is in the module's environment unless become
    reset it; then it is still in the environment of an ancestor, the login
    shell that sshd started, which root can read from /proc.
    """
    found = []
    for variable in ('SSH_CONNECTION', 'SSH_CLIENT'):
        connection = _connection((environ if environ is not None else os.environ).get(variable, ''))
        if connection:
            found.append(connection)
    if found or environ is not None:
        return found
    pid = os.getppid()
    for _depth in range(_ANCESTORS):
        if pid <= 1:
            break
        try:
            with open(os.path.join(proc, str(pid), 'environ'), 'rb') as handle:
                variables = handle.read().split(b'\0')
            with open(os.path.join(proc, str(pid), 'stat'), 'rb') as handle:
                # The command name may hold spaces and parentheses: the parent pid follows the last ')'.
                parent = int(handle.read().rsplit(b')', 1)[1].split()[1])
        except (IOError, OSError, ValueError, IndexError):
            break
        for item in variables:
            name, _sep, value = item.partition(b'=')
            if name in (b'SSH_CONNECTION', b'SSH_CLIENT') and value.split():
                return [_connection(value.decode('ascii', 'replace'))]
        pid = parent
    return []


def host_addresses(run, ip_bin):
    """(own addresses, default gateways) from ``ip``; each a list of address texts.

    One ``ip`` process for both (iproute2's batch mode): the addresses, and
    the default routes of both families and every routing table (a
    policy-routed host reaches its controller through another table's
    gateway too). An ``ip`` without batch mode (BusyBox) gets one call each.
    """
    rc, out, err = run([ip_bin, '-o', '-force', '-batch', '-'],
                       data='addr show\nroute show default table all\n')
    own, gateways = _parse_ip_output(out)
    if own:
        return own, gateways
    rc, out, err = run([ip_bin, '-o', 'addr', 'show'])
    if rc != 0:
        raise AddressError('ip addr show failed: %s' % tool_message(err, out))
    own = _parse_ip_output(out)[0]
    for family in ('-4', '-6'):
        rc, out, err = run([ip_bin, family, 'route', 'show', 'default'])
        if rc == 0:
            gateways.extend(_parse_ip_output(out)[1])
    return own, gateways


def _parse_ip_output(text):
    """(addresses, gateways) of ``ip -o addr show`` and ``ip route show default`` lines, in any mix."""
    own, gateways = [], []
    for line in text.splitlines():
        fields = line.split()
        if 'via' in fields:
            # "default via X dev eth0", several "nexthop via X dev ..." for ECMP,
            # or "via inet6 X" for an IPv4 route through an IPv6 next hop.
            for index, field in enumerate(fields[:-1]):
                if field == 'via':
                    gateway = fields[index + 1]
                    if gateway in ('inet', 'inet6') and index + 2 < len(fields):
                        gateway = fields[index + 2]
                    gateways.append(gateway)
            continue
        for keyword in ('inet', 'inet6'):
            if keyword in fields[:-1]:
                own.append(fields[fields.index(keyword) + 1].split('/')[0])
    return own, gateways


class Protection(object):
    """The ranges a host must not block, each with why, and how to take them out of a list of entries."""

    def __init__(self, items):
        """``items``: (text, why) pairs; text is an address, a CIDR network or FIRST-LAST."""
        self.ranges = {4: [], 6: []}
        self.why = {}
        for text, why in items:
            text = text.strip()
            if not text:
                continue
            # A zone id (fe80::1%eth0) names a link-local address; the address is what a set would hold.
            text = text.split('%', 1)[0]
            try:
                version, start, end = parse_span(text)
            except AddressError as exc:
                raise AddressError('protect entry %r: %s' % (text[:80], exc))
            self.ranges[version].append((start, end))
            self.why.setdefault((version, start, end), []).append(why)
        for version in (4, 6):
            self.ranges[version] = merge_ranges(self.ranges[version])
        self._starts = dict((v, [s for s, _e in self.ranges[v]]) for v in (4, 6))
        self._ends = dict((v, [e for _s, e in self.ranges[v]]) for v in (4, 6))

    @property
    def digest(self):
        """Names the protected ranges: a record made under another set of them is not trusted."""
        text = ';'.join('%d:%x-%x' % (v, s, e) for v in (4, 6) for s, e in self.ranges[v])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __bool__(self):
        return bool(self.ranges[4] or self.ranges[6])

    __nonzero__ = __bool__

    def _overlaps(self, version, start, end):
        index = bisect_right(self._starts[version], end)
        return index > 0 and self._ends[version][index - 1] >= start

    def covered(self, lines):
        """The lines that overlap a protected range. Lines that do not parse are left to the engine's
        validation, which refuses them with a clear message."""
        hits = []
        pton, frombytes = socket.inet_pton, int.from_bytes
        families = [(4, socket.AF_INET), (6, socket.AF_INET6)]
        for line in lines:
            version, family = families[1] if ':' in line else families[0]
            if not self.ranges[version]:
                continue
            address, _sep, prefix = line.partition('/')
            try:
                start = frombytes(pton(family, address), 'big')
                size = BITS[version] - int(prefix) if prefix else 0
            except (OSError, ValueError):
                continue
            if not 0 <= size <= BITS[version]:
                continue
            if self._overlaps(version, start, start + (1 << size) - 1):
                hits.append(line)
        return hits

    def reasons(self, version, start, end):
        """Why the protected addresses inside [start, end] are protected: 'ADDRESS (why)' texts."""
        out = []
        for (v, p_start, p_end), whys in sorted(self.why.items()):
            if v == version and p_start <= end and p_end >= start:
                shown = (format_address(v, p_start) if p_start == p_end
                         else '%s-%s' % (format_address(v, p_start), format_address(v, p_end)))
                out.append('%s (%s)' % (shown, ', '.join(sorted(set(whys)))))
        return out

    def carve(self, lines, candidates=None):
        """Take the protected addresses out of ``lines`` (checking only ``candidates`` when given:
        the entries not already applied under this same protection).

        Returns (lines, findings). An entry that covers a protected address is
        replaced by the fewest networks covering the rest of it (a /8 around
        the admin's address becomes 24 networks, all still blocked); each
        finding names the entry and what it covered.
        """
        hits = self.covered(lines if candidates is None else candidates)
        if not hits:
            return lines, []
        hit_set = set(hits)
        kept = [line for line in lines if line not in hit_set]
        findings = []
        for line in sorted(hit_set):
            try:
                version, start, prefixlen = parse_network(line)
            except AddressError:
                # Not canonical (host bits set): the engine's validation refuses it with its message.
                kept.append(line)
                continue
            end = start + (1 << (BITS[version] - prefixlen)) - 1
            rest, _removed = subtract_ranges([(start, end)], self.ranges[version])
            replacement = [format_network(version, net, plen)
                           for net, plen in ranges_to_networks(rest, BITS[version])]
            kept.extend(replacement)
            findings.append({'entry': line, 'covers': self.reasons(version, start, end),
                             'replaced_by': len(replacement)})
        return kept, findings

    def admit(self, lines, version):
        """``lines`` (one family's entries) with the protected ranges of ``version`` they do not cover added.

        An admit-only set holds the only sources its ports answer: what
        lockout protection keeps reachable goes in, rather than out. Returns
        (lines, findings), each finding a network added and why.
        """
        # A gateway is not admitted: behind one that rewrites the sources of inbound connections (SNAT, a load
        # balancer), every source would look like it. The SSH client and own addresses are.
        admitted = merge_ranges([(start, end) for (v, start, end), whys in self.why.items()
                                 if v == version and set(whys) != {'default gateway'}])
        if not admitted:
            return lines, []
        listed = []
        for line in lines:
            try:
                _version, start, prefixlen = parse_network(line)
            except AddressError:
                continue    # the engine's validation refuses it with its message
            listed.append((start, start + (1 << (BITS[version] - prefixlen)) - 1))
        missing, _covered = subtract_ranges(admitted, merge_ranges(listed))
        findings, added = [], []
        for start, end in missing:
            networks = [format_network(version, net, plen)
                        for net, plen in ranges_to_networks([(start, end)], BITS[version])]
            added.extend(networks)
            findings.append({'entry': ', '.join(networks), 'covers': self.reasons(version, start, end)})
        return list(lines) + added, findings


def findings_warning(label, findings, sample=5):
    """One warning for a set: which entries covered which protected addresses."""
    shown = '; '.join('%s covers %s' % (f['entry'], ', '.join(f['covers'])) for f in findings[:sample])
    more = ' (and %d more)' % (len(findings) - sample) if len(findings) > sample else ''
    return ('%s: lockout protection took %d protected address(es) out of %d entr%s, which stay blocked '
            'otherwise: %s%s' % (label, sum(len(f['covers']) for f in findings), len(findings),
                                 'y' if len(findings) == 1 else 'ies', shown, more))
