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
    """{pin_dir: {'entries': {version: [entries]}, 'interfaces': [...], 'mode': mode}} from every save file."""
    wanted = {}
    for name in sorted(os.listdir(save_dir)):
        if not name.endswith(SAVE_EXTENSION):
            continue
        header, entries = read_save_file(os.path.join(save_dir, name))
        target = wanted.setdefault(header['pin_dir'], {'entries': {4: [], 6: []}, 'interfaces': [], 'mode': 'auto'})
        target['entries'][int(header['version'])].extend(entries)
        target['interfaces'] += [i for i in header.get('interfaces') or [] if i not in target['interfaces']]
        target['mode'] = header.get('mode') or target['mode']
    return wanted


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
    failed = False
    for pin_dir, wanted in sorted(read_save_dir(argv[0]).items()):
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
