# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Reading a host's current fail2ban bans, for the fleet-wide harvest.

Two sources, both read-only: fail2ban's SQLite database (which knows when
each ban began and how long it lasts) and, when the server keeps no database,
``fail2ban-client banned`` (which knows only what is banned now). Standard
library only: this runs on the hosts.
"""

from __future__ import annotations

import ast
import os
import sqlite3

DEFAULT_DATABASE = '/var/lib/fail2ban/fail2ban.sqlite3'


class Fail2banError(Exception):
    pass


def active_bans_from_database(path, now, jails=None, timeout=10.0):
    """The bans in force at ``now`` (epoch seconds), newest first per address and jail.

    fail2ban keeps a row per ban until ``dbpurgeage`` has passed, long after
    the ban itself ended; a ban is in force while ``timeofban + bantime`` is
    in the future, or for ever when ``bantime`` is negative.
    """
    try:
        # Only a regular file: sqlite waits for ever on a FIFO.
        if os.path.lexists(path) and not os.path.isfile(path):
            raise sqlite3.Error('not a regular file')
        # Read-only and by URI, so that a missing file is an error instead of a new empty database.
        connection = sqlite3.connect('file:%s?mode=ro' % path, uri=True, timeout=timeout)
    except sqlite3.Error as exc:
        raise Fail2banError('cannot open the fail2ban database %s: %s' % (path, exc))
    try:
        rows = connection.execute(
            'SELECT jail, ip, MAX(timeofban), bantime, bancount FROM bans GROUP BY jail, ip').fetchall()
    except sqlite3.Error as exc:
        raise Fail2banError('cannot read bans from the fail2ban database %s: %s' % (path, exc))
    finally:
        connection.close()
    bans = []
    for jail, address, banned_at, ban_seconds, ban_count in rows:
        if jails and jail not in jails:
            continue
        try:
            banned_at, ban_seconds = int(banned_at), int(ban_seconds)
        except (TypeError, ValueError):
            continue
        if ban_seconds >= 0 and banned_at + ban_seconds <= now:
            continue
        bans.append({'address': str(address), 'jail': str(jail), 'banned_at': banned_at,
                     'ban_seconds': ban_seconds, 'ban_count': int(ban_count or 1)})
    bans.sort(key=lambda ban: (ban['jail'], ban['address']))
    return bans


def parse_client_banned(text, jails=None):
    """Bans from ``fail2ban-client banned``, which prints a Python literal: ``[{'sshd': ['1.2.3.4']}]``."""
    try:
        document = ast.literal_eval(text.strip() or '[]')
    except (ValueError, SyntaxError) as exc:
        raise Fail2banError('cannot parse the output of fail2ban-client banned: %s' % exc)
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        raise Fail2banError('fail2ban-client banned printed %s, expected a list of jails'
                            % type(document).__name__)
    bans = []
    for item in document:
        if not isinstance(item, dict):
            raise Fail2banError('fail2ban-client banned printed an item that is not a jail: %r' % (item,))
        for jail, addresses in item.items():
            if jails and jail not in jails:
                continue
            for address in addresses or []:
                bans.append({'address': str(address), 'jail': str(jail), 'banned_at': None,
                             'ban_seconds': None, 'ban_count': None})
    bans.sort(key=lambda ban: (ban['jail'], ban['address']))
    return bans


def parse_client_dbfile(text):
    """The database path from ``fail2ban-client get dbfile``, or None when the server keeps none.

    The answer is ``Current database file is:`` and then the path behind a backtick and a dash;
    with the database disabled it is ``Database currently disabled``.
    """
    for line in text.splitlines():
        line = line.strip()
        if line.startswith('`- '):
            path = line[3:].strip()
            return None if path in ('', 'None', ':memory:') else path
    return None
