# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Attaching the pinned XDP program to interfaces, through iproute2 (``ip link set dev IF xdpdrv pinned PATH``).

Shared by the module (backend_xdp.XdpRules) and the boot unit (xdp_boot.py), which runs with Python's standard
library and the files it is given, so this file imports nothing of the collection. ``run`` is the command runner:
``run(args) -> (rc, stdout, stderr)``.

An interface holds one XDP program per mode. The program is never put over one that another tool attached: a
program of another name is refused, named by its id and name. One of ours (``fleetwall_xdp``) with another id, left
by an earlier pin or an older release, is replaced in one step (``ip -force``): the interface is never without it.
"""

from __future__ import annotations

import collections
import json

PROGRAM_NAME = 'fleetwall_xdp'
# The kernel's XDP attach modes (IFLA_XDP_ATTACHED), as ``ip -j link`` gives them, and iproute2's words for them.
MODES = {1: 'native', 2: 'generic', 3: 'offload'}
IP_WORDS = {'native': 'xdpdrv', 'generic': 'xdpgeneric', 'offload': 'xdpoffload'}


# An interface as ``ip -j link`` shows it: the XDP program on it (mode, id, name) and its link type.
Link = collections.namedtuple('Link', ['mode', 'prog_id', 'prog_name', 'link_type'])
# The program parses Ethernet frames: on an interface without them (WireGuard, tun, PPP: link type 'none' or
# 'ppp') it would read the IP header as an Ethernet one and match nothing, or the wrong thing.
ETHERNET_TYPES = ('ether', 'loopback')


class AttachError(Exception):
    """An interface the program cannot be attached to, or detached from; nothing else was changed by that step."""


def links(run, ip_bin):
    """{interface: Link} for every interface; its mode is None where no XDP program is attached."""
    rc, out, err = run([ip_bin, '-j', 'link', 'show'])
    if rc != 0:
        raise AttachError('ip link show failed: %s' % (err.strip() or out.strip()))
    found = {}
    for link in json.loads(out or '[]'):
        xdp = link.get('xdp') or {}
        prog = xdp.get('prog') or {}
        found[link['ifname']] = Link(MODES.get(xdp.get('mode')), prog.get('id'), prog.get('name'),
                                     link.get('link_type'))
    return found


def default_route_interfaces(run, ip_bin):
    """The interfaces that carry the host's default routes, IPv4 and IPv6, in that order, each once."""
    names = []
    for family in ('-4', '-6'):
        rc, out, _err = run([ip_bin, '-j', family, 'route', 'show', 'default'])
        if rc != 0:
            continue
        for route in json.loads(out or '[]'):
            for name in [route.get('dev')] + [hop.get('dev') for hop in route.get('nexthops') or []]:
                if name and name not in names:
                    names.append(name)
    return names


def plan(current, wanted, program_id):
    """What to do per interface: [(interface, action, detail)], action one of attach, replace, detach.

    ``current`` is links(); ``wanted`` the interfaces the program belongs on; ``program_id`` the pinned program's.
    Raises AttachError naming every interface that is missing or holds another tool's program.
    """
    problems, steps = [], []
    for name in wanted:
        if name not in current:
            problems.append('%s: no such interface' % name)
            continue
        mode, prog_id, prog_name, link_type = current[name]
        if link_type not in ETHERNET_TYPES:
            problems.append('%s carries no Ethernet frames (link type %s), which the program parses; list the '
                            'Ethernet interface under it, or leave %s out' % (name, link_type, name))
        elif mode is None:
            steps.append((name, 'attach', None))
        elif prog_name != PROGRAM_NAME:
            problems.append('%s already runs XDP program %s (id %s, %s mode), which fleetwall did not attach; '
                            'detach it or leave %s out of the interfaces' % (name, prog_name, prog_id, mode, name))
        elif prog_id != program_id:
            steps.append((name, 'replace', mode))
    for name, (mode, prog_id, prog_name, _link_type) in sorted(current.items()):
        if name not in wanted and mode is not None and prog_name == PROGRAM_NAME:
            steps.append((name, 'detach', mode))
    if problems:
        raise AttachError('; '.join(problems))
    return steps


def attach(run, ip_bin, name, program_path, mode='auto', replace_mode=None):
    """Attach (or, with ``replace_mode``, replace ours in that mode) on ``name``; returns the mode it runs in.

    ``auto`` tries native mode first and falls back to generic, which every driver has; ``native`` fails where the
    driver lacks it.
    """
    if replace_mode is not None:
        _ip(run, [ip_bin, '-force', 'link', 'set', 'dev', name, IP_WORDS[replace_mode], 'pinned', program_path],
            'replace the XDP program on %s' % name)
        return replace_mode
    tries = ['native', 'generic'] if mode == 'auto' else [mode]
    errors = []
    for candidate in tries:
        rc, out, err = run([ip_bin, 'link', 'set', 'dev', name, IP_WORDS[candidate], 'pinned', program_path])
        if rc == 0:
            return candidate
        errors.append('%s mode: %s' % (candidate, (err.strip() or out.strip())))
    raise AttachError('cannot attach the XDP program to %s (%s)' % (name, '; '.join(errors)))


def detach(run, ip_bin, name, mode):
    _ip(run, [ip_bin, 'link', 'set', 'dev', name, IP_WORDS[mode], 'off'], 'detach the XDP program from %s' % name)


def _ip(run, args, what):
    rc, out, err = run(args)
    if rc != 0:
        raise AttachError('cannot %s: %s' % (what, err.strip() or out.strip()))


def apply(run, ip_bin, program_path, program_id, wanted, mode='auto', check_mode=False):
    """Make the program run on exactly the ``wanted`` interfaces among those it runs on; returns (changes, modes):
    the list of what changed (what would, in check mode) and {interface: mode} of where it runs after."""
    current = links(run, ip_bin)
    steps = plan(current, wanted, program_id)
    changes = []
    modes = dict((name, current[name][0]) for name in wanted if current[name][0] is not None)
    for name, action, detail in steps:
        if action == 'detach':
            if not check_mode:
                detach(run, ip_bin, name, detail)
            changes.append('detach from %s (%s mode)' % (name, detail))
            continue
        if check_mode:
            modes[name] = detail or mode
        else:
            modes[name] = attach(run, ip_bin, name, program_path, mode, detail if action == 'replace' else None)
        changes.append('%s on %s (%s mode)' % (action, name, modes[name]))
    return changes, modes


def detach_ours(run, ip_bin, check_mode=False):
    """Detach the program from every interface it runs on; the list of what changed."""
    changes = []
    for name, (mode, _prog_id, prog_name, _link_type) in sorted(links(run, ip_bin).items()):
        if mode is not None and prog_name == PROGRAM_NAME:
            if not check_mode:
                detach(run, ip_bin, name, mode)
            changes.append('detach from %s (%s mode)' % (name, mode))
    return changes
