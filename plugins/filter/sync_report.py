# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: sync_report
short_description: One line per host summarising the sync modules' results
version_added: 0.1.0
author:
  - fleetwall.blocklist contributors (@fleetwall)
description:
  - Reads a registered result of a sync module (for example C(ipset_sync)), one per set, a loop of them, or one
    call with O(fleetwall.blocklist.ipset_sync#module:sets), from each host's variables
    and returns one line per host with added, removed and total entries per set, and the seconds the host's sync
    calls took by their own account (their C(elapsed)).
  - Hosts without the result (failed, unreachable or skipped) are listed as such, so nobody has to scroll
    through the whole play to find them. A set whose change was refused (O(fleetwall.blocklist.ipset_sync#module:max_change_percent))
    is marked C(REFUSED), and so is its host.
  - C(fleetwall.blocklist.sync_summary) gives the one-line fleet-wide count.
extends_documentation_fragment:
  - fleetwall.blocklist.sync_results
'''

EXAMPLES = r'''
- name: Per-host summary
  ansible.builtin.debug:
    msg: "{{ hostvars | fleetwall.blocklist.sync_report(ansible_play_hosts_all, 'ipset_sync_results') }}"
  run_once: true
'''

RETURN = r'''
_value:
  description: One line per host.
  type: list
  elements: str
'''


def _describe(result):
    if result.get('unreachable'):
        return '%s UNREACHABLE: %s' % (result.get('name', '?'), result.get('msg', ''))
    if result.get('failed'):
        return '%s FAILED: %s' % (result.get('name', '?'), result.get('msg', ''))
    if result.get('skipped'):
        return '%s skipped' % result.get('name', result.get('item', '?'))
    return '%s%s +%d -%d =%d' % (result.get('name', '?'), ' REFUSED' if result.get('refused') else '',
                                 result.get('added', 0) or 0, result.get('removed', 0) or 0,
                                 result.get('total', 0) or 0)


def ran_names(hostvars, host, variable):
    """[(name, registered result)] of the registered variable(s) whose task ran on the host."""
    names = [variable] if isinstance(variable, str) else list(variable)
    found = []
    try:
        # Once: each lookup of a host in hostvars works out all of its variables.
        host_vars = hostvars[host]
    except KeyError:
        return found
    for name in names:
        registered = host_vars.get(name)
        if registered and not (registered.get('skipped') and 'results' not in registered):
            found.append((name, registered))
    return found


def host_results(hostvars, host, variable):
    """Every result of the registered variable(s) a host has, loop items and a call's ``sets`` flattened."""
    results = []
    for _name, registered in ran_names(hostvars, host, variable):
        for item in registered.get('results', [registered]):
            results.extend(item.get('sets') or [item])
    return results


def host_state(results):
    """UNREACHABLE, FAILED, REFUSED, changed or ok; None without results."""
    if not results:
        return None
    # Ansible registers a host that went unreachable during the task as {'unreachable': True, 'changed': False}.
    if any(r.get('unreachable') for r in results):
        return 'UNREACHABLE'
    if any(r.get('failed') for r in results):
        return 'FAILED'
    if any(r.get('refused') for r in results):
        return 'REFUSED'
    return 'changed' if any(r.get('changed') for r in results) else 'ok'


def host_elapsed(hostvars, host, variable):
    """The seconds the host's sync calls took by their own account (``elapsed``), or None."""
    times = [item['elapsed'] for _name, registered in ran_names(hostvars, host, variable)
             for item in registered.get('results', [registered]) if isinstance(item.get('elapsed'), (int, float))]
    return sum(times) if times else None


def sync_report(hostvars, hosts, variable):
    lines = []
    for host in hosts:
        results = host_results(hostvars, host, variable)
        if not results:
            lines.append('%s: no result (failed, unreachable or not run)' % host)
            continue
        seconds = host_elapsed(hostvars, host, variable)
        lines.append('%s: %s  %s%s' % (host, host_state(results), ' | '.join(_describe(r) for r in results),
                                       '  (%.2f s)' % seconds if seconds is not None else ''))
    return lines


class FilterModule(object):
    def filters(self):
        return {'sync_report': sync_report}
