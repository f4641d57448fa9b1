# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: fleet_report
short_description: The fleet report of a run - per host backend, generation, entries, changes, drift and drops
version_added: 0.4.0
author:
  - fleetwall.blocklist contributors (@fleetwall)
description:
  - Combines each host's sync results (as C(fleetwall.blocklist.sync_report) reads them) with its
    metrics (the C(fleetwall.blocklist.metrics_textfile) result, or the C(metrics) a sync module returns when it
    wrote them itself with its C(metrics_textfile) option) into one document, which C(playbooks/blocklist.yml)
    writes as C(fleet_report.json) and renders as a self-contained HTML page.
  - Per host - C(state) (C(changed), C(ok), C(REFUSED), C(FAILED), C(UNREACHABLE) or C(no result)), C(backend), C(generation),
    C(entries), C(added), C(removed), C(drift) (added plus removed entries of the sets that were compared with the
    live kernel object instead of trusted from the engine's record; a set someone changed by hand shows here),
    C(dropped_packets), C(dropped_bytes) (null where the backend has no drop counters), C(drops_by_backend)
    (packets per backend, for a host with XDP beside its kernel backend), C(web_requests) (per web tier, the
    requests nginx answered from it, counted from the tier's request log), and C(reason) for a host that is not
    C(ok) or C(changed) (its failure's message, its refusal, or that it has no result at all).
  - With O(feeds) (the build's feed statuses), C(feeds) holds each feed's health - C(name), C(status),
    C(fetched_at) (its last success), C(age_seconds), C(max_age), C(error) and C(stale) (older than its max_age,
    or no copy at all).
extends_documentation_fragment:
  - fleetwall.blocklist.sync_results
options:
  metrics:
    description:
      - Name of the registered C(metrics_textfile) result; the default is what the nginx role registers, written
        after the web tier and so the last on its host. Without it, the C(metrics) of the sync results are read.
    type: str
    default: nginx_metrics_result
  generation:
    description: The generation this run pushed.
    type: raw
  feeds:
    description: The feed statuses of the build (C(shadow_copy_build)'s RV(fleetwall.blocklist.shadow_copy_build#module:feeds)).
    type: list
    elements: dict
    version_added: 0.5.0
  allow_feeds:
    description:
      - The allow sources' statuses of the build (C(shadow_copy_build)'s
        RV(fleetwall.blocklist.shadow_copy_build#module:allow_feeds)); the report has their health as C(allow_feeds),
        as it has the feeds', with what each kept reachable.
    type: list
    elements: dict
    version_added: 0.5.0
  entries:
    description:
      - The entries of the generation pushed, per family (C(shadow_copy_build)'s
        RV(fleetwall.blocklist.shadow_copy_build#module:entries)); the report gives them per tier as C(tiers)
        (C(block), C(challenge)).
    type: dict
    version_added: 0.5.0
  bans:
    description:
      - Per host, what M(fleetwall.blocklist.fail2ban_bans) read there (the shadow copy role's harvest). Each host's
        row then has C(bans_in_force) and C(bans_by_day), the bans in force by the UTC day they began.
    type: dict
    version_added: 0.5.0
'''

EXAMPLES = r'''
- name: Write the fleet report
  ansible.builtin.copy:
    content: "{{ hostvars | fleetwall.blocklist.fleet_report(ansible_play_hosts_all, ['ipset_sync_results'])
                 | to_nice_json }}"
    dest: /var/lib/fleetwall/reports/fleet_report.json
    mode: "0644"
  delegate_to: localhost
  run_once: true
'''

RETURN = r'''
_value:
  description: C(generation), C(hosts) (a list of per-host dicts), C(totals), with O(feeds) C(feeds), and with O(entries) C(tiers).
  type: dict
'''

import datetime
import time

from ansible_collections.fleetwall.blocklist.plugins.filter.sync_report import host_results, host_state, ran_names

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.backends import by_result_variable

# Which backend a registered result belongs to (module_utils/_blocklist/backends.py lists them).
BACKENDS = by_result_variable()


# Why a host has no entries in this run's report, when it has no usable result at all.
NO_RESULT = ('no result: the host failed or was unreachable before its sync, or this run left it out; what it '
             'loaded before is still in force there')
# What the page shows of each feed's status (shadow_copy_build's feeds).
FEED_FIELDS = ('name', 'status', 'fetched_at', 'age_seconds', 'max_age', 'error', 'error_kind')


def _reason(results, state):
    """Why a host is not ok or changed: its first failure's message, its refusal, or that it has no result."""
    if state in ('ok', 'changed'):
        return None
    for result in results:
        if result.get('unreachable') or result.get('failed'):
            return str(result.get('msg') or 'failed')[:500]
        if result.get('refused'):
            return str(result['refused'])[:500]
    return NO_RESULT


def _feed_health(feeds):
    """Each feed's status as the page shows it: what it is, when it last succeeded, how old its copy is."""
    health = []
    for status in [s for s in feeds or [] if isinstance(s, dict)]:
        row = dict((key, status.get(key)) for key in FEED_FIELDS)
        age, max_age = status.get('age_seconds'), status.get('max_age')
        row['stale'] = bool(max_age) and (status.get('status') == 'failed' or (age is not None and age > max_age))
        health.append(row)
    return health


def _allow_health(allow_feeds):
    """Each allow source's health, as a feed's, and the listed addresses it kept reachable."""
    statuses = [s for s in allow_feeds or [] if isinstance(s, dict)]
    return [dict(row, addresses_removed=status.get('addresses_removed'))
            for row, status in zip(_feed_health(statuses), statuses)]


def _measured(hostvars, host_vars, host, names, metrics):
    """The host's metrics: the metrics_textfile result, else the metrics a sync call wrote itself (its
    metrics_textfile option)."""
    measured = host_vars.get(metrics) or {}
    if not measured.get('sets'):
        measured = next((r['metrics'] for _n, registered in ran_names(hostvars, host, names)
                         for r in registered.get('results', [registered]) if isinstance(r.get('metrics'), dict)), {})
    return [s for s in measured.get('sets') or [] if isinstance(s, dict)]


def _counters(row, sets):
    """The drops of the host's sets, in all and per backend, and its web tiers' requests answered."""
    counted = [s for s in sets if 'dropped_packets' in s]
    if counted:
        row['dropped_packets'] = sum(s['dropped_packets'] for s in counted)
        row['dropped_bytes'] = sum(s['dropped_bytes'] for s in counted)
        by_backend = {}
        for item in counted:
            by_backend[item['backend']] = by_backend.get(item['backend'], 0) + item['dropped_packets']
        row['drops_by_backend'] = by_backend
    requests = dict((s['set'], s['requests']) for s in sets if isinstance(s.get('requests'), int))
    if requests:
        row['web_requests'] = requests


def _bans(row, harvested):
    """The host's fail2ban bans in force, and how many of them began on each (UTC) day."""
    if not isinstance(harvested, dict) or not harvested.get('available'):
        return
    days = {}
    for ban in harvested.get('bans') or []:
        began = ban.get('banned_at') if isinstance(ban, dict) else None
        # A time past tomorrow is a wrong clock or a forged answer: counted in force, on no day.
        if isinstance(began, int) and not isinstance(began, bool) and 0 < began <= time.time() + 86400:
            day = datetime.datetime.fromtimestamp(began, datetime.timezone.utc).strftime('%Y-%m-%d')
            days[day] = days.get(day, 0) + 1
    row['bans_in_force'] = len(harvested.get('bans') or [])
    row['bans_by_day'] = days


def _tiers(entries):
    """Entries of the generation per tier, from its counts per family (v4, v6, challenge_v4, ...)."""
    if not isinstance(entries, dict):
        return None
    tiers = {'block': 0, 'challenge': 0}
    for family, count in entries.items():
        if isinstance(count, int):
            tiers['challenge' if str(family).startswith('challenge') else 'block'] += count
    return tiers


def fleet_report(hostvars, hosts, variable, metrics='nginx_metrics_result', generation=None, feeds=None,
                 entries=None, bans=None, allow_feeds=None):
    names = [variable] if isinstance(variable, str) else list(variable)
    rows = []
    totals = {'hosts': len(hosts), 'entries': 0, 'added': 0, 'removed': 0, 'drift': 0,
              'dropped_packets': 0, 'dropped_bytes': 0}
    for host in hosts:
        results = host_results(hostvars, host, names)
        try:
            host_vars = hostvars[host]
        except KeyError:
            host_vars = {}
        backends = [BACKENDS.get(name, name) for name, _registered in ran_names(hostvars, host, names)]
        usable = [r for r in results if not r.get('failed') and not r.get('skipped')]
        state = host_state(results) or 'no result'
        row = {'host': host, 'state': state, 'reason': _reason(results, state), 'backend': ', '.join(backends) or None,
               'generation': generation, 'entries': sum(r.get('total') or 0 for r in usable),
               'added': sum(r.get('added') or 0 for r in usable if not r.get('refused')),
               'removed': sum(r.get('removed') or 0 for r in usable if not r.get('refused')),
               'drift': sum((r.get('added') or 0) + (r.get('removed') or 0) for r in usable
                            if r.get('verified') and not r.get('refused')),
               'dropped_packets': None, 'dropped_bytes': None}
        _counters(row, _measured(hostvars, host_vars, host, names, metrics))
        _bans(row, (bans or {}).get(host))
        for key in ('entries', 'added', 'removed', 'drift', 'dropped_packets', 'dropped_bytes'):
            totals[key] += row[key] or 0
        rows.append(row)
    report = {'generation': generation, 'hosts': rows, 'totals': totals}
    if feeds is not None:
        report['feeds'] = _feed_health(feeds)
    if allow_feeds:
        report['allow_feeds'] = _allow_health(allow_feeds)
    if _tiers(entries) is not None:
        report['tiers'] = _tiers(entries)
    return report


class FilterModule(object):
    def filters(self):
        return {'fleet_report': fleet_report}
