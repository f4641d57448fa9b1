# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet-local feed: bans that the fleet's own fail2ban made.

Every harvest reports, per host, the bans fail2ban has in force there. Each
(address, host, jail) is a *sighting*, remembered in ``fleet_local.json``
under the shadow copy directory with when the ban began (``banned_at``, the
host's word) and when a harvest last saw it in force (``last_seen``, the
controller's clock). A sighting goes at the first harvest that read its
host and found the ban no longer in force (an unban there lifts it
fleet-wide); a host that could not be read keeps its sightings, and any
sighting not seen again for ``expiry`` seconds is forgotten. An address is
offered to the shadow copy while it has sightings on at least ``min_hosts``
distinct hosts, and then goes through the same parser, refusal table and
allowlist as every other feed.
"""

from __future__ import annotations

import json
import os

from ..addresses import AddressError, canonical
from ..files import write_atomic

FEED_NAME = 'fleet_local'
STATE_FILE = 'fleet_local.json'
GENERATION_FILE = 'fleet_local.json'
STATE_FORMAT = 1
SAMPLE_SIZE = 10
TIERS = ('block', 'challenge')


class FleetLocalError(Exception):
    pass


def load_state(root):
    path = os.path.join(root, STATE_FILE)
    if not os.path.exists(path):
        return {'format': STATE_FORMAT, 'sightings': []}
    try:
        with open(path) as handle:
            state = json.load(handle)
    except ValueError as exc:
        raise FleetLocalError('the fleet-local state %s is unreadable (%s); move it aside to start over' % (path, exc))
    if not isinstance(state, dict) or state.get('format') != STATE_FORMAT or \
            not isinstance(state.get('sightings'), list):
        raise FleetLocalError('the fleet-local state %s is not in format %d' % (path, STATE_FORMAT))
    return state


def save_state(root, state):
    write_atomic(os.path.join(root, STATE_FILE),
                 json.dumps(state, indent=1, sort_keys=True).encode(), 0o600)


def _epoch_or_none(value):
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _sample_invalid(report, host, ban, reason):
    report['invalid'] += 1
    if len(report['invalid_samples']) < SAMPLE_SIZE:
        report['invalid_samples'].append({'host': host, 'ban': repr(ban)[:100], 'reason': reason})


def _host_bans(host, bans, report):
    """The valid bans a host reported, as (address, jail, banned_at); None when its bans could not be read."""
    if isinstance(bans, dict):
        # A module result; one without bans (the module crashed) counts as unavailable too.
        if not bans.get('available') or bans.get('failed') or not isinstance(bans.get('bans'), list):
            report['unavailable'].append(host)
            return None
        bans = bans['bans']
    report['hosts'] += 1
    if not isinstance(bans, list):
        _sample_invalid(report, host, bans, 'not a list of bans')
        return None
    valid = []
    for ban in bans:
        address = ban.get('address') if isinstance(ban, dict) else None
        jail = ban.get('jail') if isinstance(ban, dict) else None
        try:
            if not isinstance(address, str) or not isinstance(jail, str) or not jail:
                raise AddressError('not a ban with an address and a jail')
            _version, address = canonical(address.strip())
        except AddressError as exc:
            _sample_invalid(report, host, ban, str(exc))
            continue
        valid.append((address, jail, _epoch_or_none(ban.get('banned_at'))))
    return valid


def merge_harvest(state, harvest, now, expiry, jails=None):
    """Return (new state, report) after the harvest ``{host: [ban, ...]}`` at ``now`` (epoch seconds).

    A host's value may also be what ``fail2ban_bans`` returned (``bans`` with
    ``available``): a host where fail2ban could not be read is counted as
    unavailable, and its sightings are left to expire.

    A sighting of a host whose bans were read goes as soon as the host no
    longer lists that ban (counted as ``unbanned``): fail2ban's ban ended or
    someone lifted it there, so an unban on the banning host lifts it
    fleet-wide. An unavailable host's silence is no unban, nor is a host's
    absence from ``harvest`` (unreachable): their sightings stay until
    ``expiry``, which bounds every sighting's life.

    ``harvest`` None means no harvest ran this time: nothing is refreshed,
    but sightings still expire. Bans come from hosts and are not trusted:
    anything that is not a single valid address or network is counted and
    sampled, never stored.
    """
    sightings = {}
    for sighting in state.get('sightings', []):
        sightings[(sighting['address'], sighting['host'], sighting['jail'])] = dict(sighting)
    report = {'hosts': 0, 'bans': 0, 'new': 0, 'unbanned': 0, 'expired': 0, 'invalid': 0, 'invalid_samples': [],
              'other_jails': 0, 'unavailable': []}
    # What each host whose bans were read has in force, (address, jail); other jails' bans too, since a ban
    # this harvest does not take is still no unban.
    in_force = {}
    for host, bans in sorted((harvest or {}).items()):
        host = str(host)
        bans = _host_bans(host, bans, report)
        if bans is None:
            continue
        in_force[host] = set((address, jail) for address, jail, _banned_at in bans)
        for address, jail, banned_at in bans:
            if jails and jail not in jails:
                report['other_jails'] += 1
                continue
            report['bans'] += 1
            known = sightings.get((address, host, jail))
            if known is None:
                report['new'] += 1
                sightings[(address, host, jail)] = {
                    'address': address, 'host': host, 'jail': jail,
                    'banned_at': banned_at if banned_at is not None else now, 'first_seen': now, 'last_seen': now}
            else:
                known['last_seen'] = now
                if banned_at is not None:
                    known['banned_at'] = banned_at
    kept = []
    for sighting in sightings.values():
        host_bans = in_force.get(sighting['host'])
        if host_bans is not None and (sighting['address'], sighting['jail']) not in host_bans:
            report['unbanned'] += 1
        elif now - sighting['last_seen'] > expiry:
            report['expired'] += 1
        else:
            kept.append(sighting)
    kept.sort(key=lambda s: (s['address'], s['host'], s['jail']))
    return {'format': STATE_FORMAT, 'sightings': kept}, report


def offered_entries(state, min_hosts, expiry):
    """The addresses seen on at least ``min_hosts`` hosts, each with its sightings and when it expires.

    Returns (entries, pending): entries sorted by address, pending the number
    of addresses still below ``min_hosts``.
    """
    by_address = {}
    for sighting in state['sightings']:
        by_address.setdefault(sighting['address'], []).append(sighting)
    entries, pending = [], 0
    for address in sorted(by_address):
        seen = by_address[address]
        if len(set(s['host'] for s in seen)) < min_hosts:
            pending += 1
            continue
        entries.append({
            'address': address,
            'hosts': [{k: s[k] for k in ('host', 'jail', 'banned_at', 'first_seen', 'last_seen')} for s in seen],
            'expires': max(s['last_seen'] for s in seen) + expiry,
        })
    return entries, pending


def feed_body(entries):
    """The entries as a plain list, so that they meet the same parser as any feed."""
    return ''.join('%s\n' % entry['address'] for entry in entries).encode()
