# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""An operator's own time-limited entries: an unblock (kept out of every tier, as the allowlist is) or a block
(one more feed, ``operator``, in the block tier), each with who asked, when, why and until when.

They live in the shadow copy's directory (``operator_entries.json``), beside the feed cache: every build applies
the ones in force and drops the expired ones, so an unblock ends by itself at the first build after its expiry.
Every change is logged there too (added, extended, ended early, expired), the newest LOG_LIMIT events kept.
"""

from __future__ import annotations

import getpass
import json
import os
import re

from ..addresses import AddressError, format_network, parse_network
from ..files import write_atomic

STATE_FILE = 'operator_entries.json'
STATE_FORMAT = 1
FEED_NAME = 'operator'
ACTIONS = ('block', 'unblock')
LOG_LIMIT = 1000
MAX_TTL = 366 * 86400
REASON_LIMIT = 500
TTL = re.compile(r'^\s*(\d+)\s*([smhdw]?)\s*$')
UNITS = {'': 1, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}


class OperatorEntryError(Exception):
    """A request or a state file that cannot be used; the message says which and why."""


def parse_ttl(text):
    """Seconds of a TTL: ``3600``, ``90s``, ``30m``, ``24h``, ``7d``, ``2w``; 0 ends an entry now."""
    match = TTL.match(str(text))
    if not match:
        raise OperatorEntryError('ttl %r is not a duration: give seconds, or a number with s, m, h, d or w '
                                 '(24h, 7d); 0 ends the entry now' % (text,))
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    if seconds > MAX_TTL:
        raise OperatorEntryError('ttl %r is longer than a year: an entry that should last for ever belongs in the '
                                 'allowlist or a feed' % (text,))
    return seconds


def load_state(root):
    path = os.path.join(root, STATE_FILE)
    if not os.path.exists(path):
        return {'format': STATE_FORMAT, 'entries': [], 'log': []}
    try:
        with open(path) as handle:
            state = json.load(handle)
    except ValueError as exc:
        raise OperatorEntryError('the operator entries %s are unreadable (%s); move the file aside to start over'
                                 % (path, exc))
    if not isinstance(state, dict) or state.get('format') != STATE_FORMAT or \
            not isinstance(state.get('entries'), list) or not isinstance(state.get('log'), list):
        raise OperatorEntryError('the operator entries %s are not in format %d' % (path, STATE_FORMAT))
    return state


def save_state(root, state):
    state = dict(state, log=state['log'][-LOG_LIMIT:])
    write_atomic(os.path.join(root, STATE_FILE), json.dumps(state, indent=1, sort_keys=True).encode(), 0o600)


def checked_request(request):
    """The request (action, entry, ttl, reason, by) with its entry canonical and its ttl in seconds."""
    action = request.get('action')
    if action not in ACTIONS:
        raise OperatorEntryError('action must be one of %s, not %r' % (', '.join(ACTIONS), action))
    try:
        version, start, prefixlen = parse_network(str(request.get('entry') or '').strip())
    except AddressError as exc:
        raise OperatorEntryError('%r is not an address or a network: %s' % (request.get('entry'), exc))
    reason = str(request.get('reason') or '').strip()
    if not reason:
        raise OperatorEntryError('say why (reason): the log keeps it for whoever asks later why %s was %sed'
                                 % (request.get('entry'), action))
    return {'action': action, 'entry': format_network(version, start, prefixlen), 'ttl': parse_ttl(request.get('ttl')),
            'reason': reason[:REASON_LIMIT], 'by': str(request.get('by') or _build_user())[:200]}


def _build_user():
    """Who runs the build, when the request does not say (a shell's login; root under sudo or cron)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return 'unknown'


def apply_request(state, request, now):
    """The state with the request applied at ``now`` (epoch seconds); the event it logged.

    The same action on the same entry replaces the one in force (a new expiry, reason and author: ``extended``);
    a ttl of 0 ends it now (``ended``). An unblock and a block of the same entry cannot both be in force: the
    newer one replaces the other.
    """
    request = checked_request(request)
    kept, replaced = [], None
    for entry in state['entries']:
        if entry['entry'] == request['entry']:
            replaced = entry
        else:
            kept.append(entry)
    event = {'at': now, 'action': request['action'], 'entry': request['entry'], 'by': request['by'],
             'reason': request['reason']}
    if request['ttl'] == 0:
        if replaced is None or replaced['action'] != request['action']:
            raise OperatorEntryError('no %s of %s is in force to end' % (request['action'], request['entry']))
        event['event'] = 'ended'
    else:
        event.update(event='extended' if replaced and replaced['action'] == request['action'] else 'added',
                     expires=now + request['ttl'])
        kept.append({'action': request['action'], 'entry': request['entry'], 'by': request['by'],
                     'reason': request['reason'], 'at': now, 'expires': now + request['ttl']})
    kept.sort(key=lambda entry: (entry['action'], entry['entry']))
    return dict(state, entries=kept, log=state['log'] + [event]), event


def expire(state, now):
    """The state without the entries whose expiry has passed; the events it logged."""
    kept, events = [], []
    for entry in state['entries']:
        if entry['expires'] <= now:
            events.append({'at': now, 'event': 'expired', 'action': entry['action'], 'entry': entry['entry'],
                           'by': entry['by'], 'reason': entry['reason']})
        else:
            kept.append(entry)
    return dict(state, entries=kept, log=state['log'] + events), events


def in_force(state, action):
    """The entries of ``action`` in force, as texts."""
    return [entry['entry'] for entry in state['entries'] if entry['action'] == action]


def feed_body(state):
    """The blocks in force as a plain list, so that they meet the same parser, refusals and tiers as any feed."""
    return ''.join('%s\n' % entry for entry in in_force(state, 'block')).encode()
