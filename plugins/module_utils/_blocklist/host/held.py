# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which of a host's blocklist sets hold an address or a network in force: read from the records of the last
apply (the engine's ``<backend>-<set>.entries``), never from the kernel's sets, which cost a minute to list at a
million entries in nft.

An address is held by an entry that contains it; a record's entries are canonical, so the entries that can
contain it are known texts (one per prefix length) and each line is one set lookup. A network query also matches
the entries inside it, which needs each line parsed.
"""

from __future__ import annotations

import json
import os
import socket

from ..addresses import BITS, enclosing, format_network, parse_query
from ..backends import backend_of_record
from .metrics import RECORD


def containing_texts(version, start, prefixlen):
    """The canonical texts of every network that contains the network (itself included)."""
    return set(format_network(version, first, length) for first, length in enclosing(version, start, prefixlen))


def held(state_dir, query):
    """[{'backend', 'set', 'entries', 'applied_at'}] of the records under ``state_dir`` whose entries hold ``query``
    (whole or in part), sorted by backend and set."""
    version, start, prefixlen = parse_query(query)
    texts = containing_texts(version, start, prefixlen)
    whole_address = prefixlen == BITS[version]
    found = []
    for name in sorted(os.listdir(state_dir)) if os.path.isdir(state_dir) else ():
        match = RECORD.match(name)
        entries_path = os.path.join(state_dir, name[:-len('.json')] + '.entries')
        if not match or not os.path.exists(entries_path):
            continue
        matching = _matching_lines(entries_path, texts, None if whole_address else (version, start, prefixlen))
        if matching:
            found.append({'backend': backend_of_record(match.group(1)), 'set': match.group(2), 'entries': matching,
                          'applied_at': _applied_at(os.path.join(state_dir, name))})
    return found


def _matching_lines(path, texts, network):
    """The lines of ``path`` (first word) among ``texts``, and with ``network`` also those inside it."""
    found = []
    with open(path, 'rb') as handle:
        for raw in handle:
            line = raw.split(None, 1)[0].decode('ascii', 'replace') if raw.strip() else ''
            if not line or line.startswith('#'):
                continue
            if line in texts or (network is not None and _inside(line, network)):
                found.append(line)
    return found


def _inside(line, network):
    version, start, prefixlen = network
    family = socket.AF_INET6 if version == 6 else socket.AF_INET
    if (':' in line) != (version == 6):
        return False
    address, _sep, length = line.partition('/')
    try:
        first = int.from_bytes(socket.inet_pton(family, address), 'big')
    except (OSError, ValueError):
        return False
    bits = BITS[version]
    return (first >> (bits - prefixlen)) == (start >> (bits - prefixlen)) and (
        not length or int(length) >= prefixlen)


def _applied_at(record_path):
    try:
        with open(record_path) as handle:
            return json.load(handle).get('applied_at')
    except (IOError, OSError, ValueError, AttributeError):
        return None
