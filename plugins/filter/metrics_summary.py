# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: metrics_summary
short_description: One line saying where the hosts' node_exporter metrics went, or why they were not written
version_added: 0.5.0
author:
  - fleetwall.blocklist contributors (@fleetwall)
description:
  - Reads the C(metrics) that the sync modules return with their C(metrics_textfile) option, and the results of
    C(fleetwall.blocklist.metrics_textfile), from each host's registered results.
  - Says on how many hosts the textfile was written and where, and names the hosts where it was not because
    node_exporter's textfile directory is missing, with the variables that change that. Empty when no host had
    metrics to write.
extends_documentation_fragment:
  - fleetwall.blocklist.sync_results
'''

EXAMPLES = r'''
- name: Say where the metrics went
  ansible.builtin.debug:
    msg: "{{ hostvars | fleetwall.blocklist.metrics_summary(ansible_play_hosts_all, ['ipset_sync_results', 'nginx_metrics_result']) }}"
  run_once: true
'''

RETURN = r'''
_value:
  description: The line, or an empty string.
  type: str
'''

from ansible_collections.fleetwall.blocklist.plugins.filter.sync_report import ran_names
from ansible_collections.fleetwall.blocklist.plugins.filter.sync_summary import shown_names


def _host_metrics(hostvars, host, variable):
    """The metrics results a host's registered results carry (a sync call's ``metrics``, or metrics_textfile's own)."""
    found = []
    for _name, registered in ran_names(hostvars, host, variable):
        for item in registered.get('results', [registered]):
            metrics = item.get('metrics') if isinstance(item.get('metrics'), dict) else item
            if 'written' in metrics:
                found.append(metrics)
    return found


def metrics_summary(hostvars, hosts, variable):
    """Where each host's node_exporter metrics went, or why they did not, in one line; empty without metrics."""
    written, skipped, paths, reasons = [], [], set(), set()
    for host in hosts:
        results = _host_metrics(hostvars, host, variable)
        if any(r.get('written') for r in results):
            written.append(host)
            paths.update(r['path'] for r in results if r.get('written') and r.get('path'))
        elif any(r.get('skipped') for r in results):
            skipped.append(host)
            reasons.update(r['skipped'] for r in results if r.get('skipped'))
    parts = []
    if written:
        parts.append('written on %d host(s) to %s' % (len(written), ', '.join(sorted(paths)) or '?'))
    if skipped:
        parts.append('NOT written on %d host(s), %s (no node_exporter textfile collector there; '
                     'fleetwall_metrics_create_dir: true creates it, fleetwall_metrics: false stops trying): %s'
                     % (len(skipped), '; '.join(sorted(reasons)), shown_names(skipped)))
    return ('metrics: ' + '; '.join(parts)) if parts else ''


class FilterModule(object):
    def filters(self):
        return {'metrics_summary': metrics_summary}
