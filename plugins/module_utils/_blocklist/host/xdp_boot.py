# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The XDP backend's boot restore: what its systemd unit runs, with Python's standard library only.

    python3 -I SAVE_DIR/lib/restore.py SAVE_DIR

xdp_set_sync copies this file, and the few it imports (relative imports only), into SAVE_DIR/lib/fleetwall_xdp/.
From every save file (``*.xdp``: a header line, then one entry a line) it fills a new trie per family, pins the
program and its maps again, or switches the new tries in where they are still pinned, and attaches the program to
the interfaces the headers name. Every interface it can is protected before it reports one it could not.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

from . import bpf, xdp, xdp_attach
from .command_runner import run_tool

HEADER = '# fleetwall-xdp '
SAVE_EXTENSION = '.xdp'


def read_save_file(path):
    """(header, entries) of one save file."""
    with open(path) as handle:
        first = handle.readline()
        if not first.startswith(HEADER):
            raise ValueError('%s does not start with the fleetwall-xdp header' % path)
        header = json.loads(first[len(HEADER):])
        entries = [line.strip() for line in handle if line.strip() and not line.startswith('#')]
    return header, entries


def read_save_dir(save_dir):
    """({pin_dir: {'entries': {version: [entries]}, 'interfaces': [...], 'mode': mode}}, [why a file was not read])
    from every save file."""
    wanted, unreadable = {}, []
    for name in sorted(os.listdir(save_dir)):
        if not name.endswith(SAVE_EXTENSION):
            continue
        try:
            header, entries = read_save_file(os.path.join(save_dir, name))
            version, pin_dir = int(header['version']), str(header['pin_dir'])
            if version not in (4, 6):
                raise ValueError('IP version %r' % header['version'])
        except KeyError as exc:
            unreadable.append('%s: its header has no %s' % (name, exc))
            continue
        except (OSError, ValueError, TypeError) as exc:
            # One bad file must not cost the others their protection: it is reported, and the rest restored.
            unreadable.append('%s: %s' % (name, exc))
            continue
        target = wanted.setdefault(pin_dir, {'entries': {4: [], 6: []}, 'interfaces': [], 'mode': 'auto'})
        target['entries'][version].extend(entries)
        target['interfaces'] += [i for i in header.get('interfaces') or [] if i not in target['interfaces']]
        target['mode'] = header.get('mode') or target['mode']
    return wanted, unreadable


def restore(pin_dir, entries, interfaces, mode, ip_bin):
    """Pin (or refill) the program's tries for ``pin_dir`` and attach it; the changes made."""
    maps = xdp.XdpMaps(pin_dir)
    tries = {}
    try:
        for version in sorted(xdp.FAMILIES):
            tries[version] = xdp.XdpMaps.new_trie(version, entries[version])
        if maps.open():
            for version, trie in tries.items():
                maps.switch(version, trie)
        else:
            maps.create(tries)
    finally:
        maps.close(tries.values())
    try:
        program_id = bpf.object_id(maps.fds[xdp.PROGRAM])
        present = xdp_attach.links(run_tool, ip_bin)
        changes, _modes = xdp_attach.apply(run_tool, ip_bin, maps.program_path, program_id,
                                           [name for name in interfaces if name in present], mode)
    finally:
        maps.close(maps.fds.values())
    missing = [name for name in interfaces if name not in present]
    if missing:
        raise xdp_attach.AttachError('restored and attached (%s), but no interface %s is here to attach to'
                                     % ('; '.join(changes) or 'already attached', ', '.join(missing)))
    return changes


def main(argv):
    if len(argv) != 1:
        sys.stderr.write('usage: restore.py SAVE_DIR\n')
        return 2
    ip_bin = shutil.which('ip') or '/sbin/ip'
    restored, unreadable = read_save_dir(argv[0])
    for problem in unreadable:
        sys.stderr.write('fleetwall-xdp: not restored: %s\n' % problem)
    failed = bool(unreadable)
    for pin_dir, wanted in sorted(restored.items()):
        try:
            changes = restore(pin_dir, wanted['entries'], wanted['interfaces'], wanted['mode'], ip_bin)
        except (OSError, ValueError, xdp_attach.AttachError) as exc:
            sys.stderr.write('fleetwall-xdp: %s: %s\n' % (pin_dir, exc))
            failed = True
            continue
        counts = ', '.join('IPv%d %d' % (v, len(wanted['entries'][v])) for v in sorted(wanted['entries']))
        sys.stdout.write('fleetwall-xdp: %s restored (%s entries); %s\n'
                         % (pin_dir, counts, '; '.join(changes) or 'already attached'))
    return 1 if failed else 0
