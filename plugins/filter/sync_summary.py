# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: sync_summary
short_description: One line for the whole fleet - hosts to change, entries to add and remove, refusals, failures
version_added: 0.4.0
author:
  - fleetwall.blocklist contributors (@fleetwall)
description:
  - Counts the sync modules' results over all hosts, so that a C(--check --diff) preview (or a run) of 500 hosts
    can be read in AWX's output without scrolling - how many hosts would change, how many entries would be
    added and removed, and which hosts refused a change, failed or have no result.
  - Takes the same arguments as C(fleetwall.blocklist.sync_report), which gives the line per host.
extends_documentation_fragment:
  - fleetwall.blocklist.sync_results
'''

EXAMPLES = r'''
- name: Fleet summary
  ansible.builtin.debug:
    msg: "{{ hostvars | fleetwall.blocklist.sync_summary(ansible_play_hosts_all, ['ipset_sync_results']) }}"
    # fleet: 500 hosts, 12 to change (+340 -25 entries), 480 unchanged, 3 REFUSED: h7, h9, h12, ...
'''

RETURN = r'''
_value:
  description: The line.
  type: str
'''

from ansible_collections.fleetwall.blocklist.plugins.filter.sync_report import host_results, host_state

NAMES_SHOWN = 10


def shown_names(hosts):
    shown = ', '.join(hosts[:NAMES_SHOWN])
    return shown + (' and %d more' % (len(hosts) - NAMES_SHOWN) if len(hosts) > NAMES_SHOWN else '')


def sync_summary(hostvars, hosts, variable):
    by_state = {'changed': [], 'ok': [], 'REFUSED': [], 'FAILED': [], 'UNREACHABLE': [], None: []}
    added = removed = 0
    for host in hosts:
        results = host_results(hostvars, host, variable)
        by_state[host_state(results)].append(host)
        for result in results:
            if not result.get('failed') and not result.get('refused') and not result.get('unreachable'):
                added += result.get('added', 0) or 0
                removed += result.get('removed', 0) or 0
    parts = ['fleet: %d hosts' % len(hosts),
             '%d to change (+%d -%d entries)' % (len(by_state['changed']), added, removed),
             '%d unchanged' % len(by_state['ok'])]
    for state, label in (('REFUSED', 'REFUSED a change above max_change_percent'), ('FAILED', 'FAILED'),
                         ('UNREACHABLE', 'UNREACHABLE'), (None, 'without a result')):
        if by_state[state]:
            parts.append('%d %s: %s' % (len(by_state[state]), label, shown_names(by_state[state])))
    return ', '.join(parts)


class FilterModule(object):
    def filters(self):
        return {'sync_summary': sync_summary}
