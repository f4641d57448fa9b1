# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: held_summary
short_description: Which hosts hold an address in force, from each host's registered held_entries result
version_added: 0.5.0
author:
  - fleetwall.blocklist contributors (@fleetwall)
description:
  - One line for the count, then one per host that holds it (backend, set, entries, when applied), one per host
    whose lockout protection keeps it reachable, and one for the hosts that could not answer.
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  hosts:
    description: The hosts to report on (C(ansible_play_hosts_all)).
    type: list
    elements: str
    required: true
  registered:
    description: The variable each host registered the result of M(fleetwall.blocklist.held_entries) in.
    type: str
    required: true
'''

EXAMPLES = r'''
- name: The fleet's answer
  ansible.builtin.debug:
    msg: "{{ hostvars | fleetwall.blocklist.held_summary(ansible_play_hosts_all, 'fleetwall_held') }}"
  run_once: true
'''

RETURN = r'''
_value:
  description: The lines.
  type: list
  elements: str
'''

import datetime


def _when(epoch):
    if not epoch:
        return 'unknown'
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')


def held_summary(hostvars, hosts, registered):
    holding, protecting, silent = [], [], []
    for host in hosts:
        result = (hostvars.get(host) or {}).get(registered)
        if not isinstance(result, dict) or result.get('failed') or 'held' not in result:
            silent.append(host)
            continue
        for item in result['held']:
            holding.append('%s: %s set %s holds %s (applied %s)' % (
                host, item.get('backend'), item.get('set'), ', '.join(item.get('entries') or []),
                _when(item.get('applied_at'))))
        if result.get('protected'):
            protecting.append('%s: lockout protection keeps it reachable: %s' % (host, '; '.join(result['protected'])))
    holders = sorted(set(line.split(':', 1)[0] for line in holding))
    named = (': ' + ', '.join(holders)) if holders else ''
    lines = ['held in force on %d of %d hosts%s' % (len(holders), len(hosts), named)]
    lines += holding + protecting
    if silent:
        lines.append('no answer from %s' % ', '.join(silent))
    return lines


class FilterModule(object):
    def filters(self):
        return {'held_summary': held_summary}
