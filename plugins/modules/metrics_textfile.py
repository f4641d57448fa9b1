#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: metrics_textfile
short_description: Write a host's blocklist metrics for node_exporter's textfile collector
version_added: 0.4.0
description:
  - Writes C(fleetwall.prom) (atomically, so node_exporter never reads half a file) with, per set, the entries
    the last successful sync put there (C(fleetwall_entries), label C(tier)) and when a sync last changed it
    (C(fleetwall_last_change_timestamp_seconds)); the packets and bytes dropped by the rules that enforce it
    (C(fleetwall_dropped_packets_total), C(fleetwall_dropped_bytes_total)); the generation pushed
    (C(fleetwall_generation)); and when a run last synced every set (C(fleetwall_last_sync_timestamp_seconds)).
  - Entries come from the sync engine's records in O(state_dir), not from listing the sets. Drops come from the
    tagged iptables rules (C(iptables-save -c), C(ip6tables-save -c)) for ipset and from the named counters of the
    table C(inet fleetwall) for nftables; UFW and firewalld sets have entries but no drop counters.
  - The file changes at every run (timestamps, counters), so writing it is not reported as a change.
author:
  - fleetwall.blocklist contributors (@fleetwall)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the counters and returns the metrics; writes nothing.
  diff_mode:
    support: none
  platform:
    platforms: linux
options:
  path:
    description: The textfile. Its directory is node_exporter's C(--collector.textfile.directory).
    type: path
    default: /var/lib/prometheus/node-exporter/fleetwall.prom
  create_dir:
    description: Create the directory when it is missing. Otherwise a missing directory means no node_exporter, and nothing is written.
    type: bool
    default: false
  state_dir:
    description: The sync modules' O(fleetwall.blocklist.ipset_sync#module:state_dir).
    type: path
    default: /var/lib/fleetwall
  generation:
    description: The shadow copy generation this run pushed.
    type: int
'''

EXAMPLES = r'''
- name: Metrics for node_exporter
  fleetwall.blocklist.metrics_textfile:
    generation: "{{ hostvars['localhost']['shadow_copy_to_push']['generation'] }}"
'''

RETURN = r'''
written:
  description: Whether the file was written (false in check mode or without the directory).
  returned: always
  type: bool
sets:
  description: Per set, C(backend), C(set), C(entries), C(last_change) and, where counters exist, C(dropped_packets) and C(dropped_bytes).
  returned: always
  type: list
  elements: dict
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import write_atomic
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.metrics import (
    iptables_drops, nft_drops, read_records, render,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', default='/var/lib/prometheus/node-exporter/fleetwall.prom'),
            create_dir=dict(type='bool', default=False),
            state_dir=dict(type='path', default='/var/lib/fleetwall'),
            generation=dict(type='int'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    records = read_records(params['state_dir'])
    drops = {}
    ipset_sets = [s for b, s, _r in records if b == 'ipset']
    for tool in ('iptables-save', 'ip6tables-save'):
        binary = module.get_bin_path(tool)
        if ipset_sets and binary:
            rc, out, _err = module.run_command([binary, '-c'])
            if rc == 0:
                for name, (packets, octets) in iptables_drops(out, ipset_sets).items():
                    before = drops.get(('ipset', name), (0, 0))
                    drops[('ipset', name)] = (before[0] + packets, before[1] + octets)
    nft_sets = [s for b, s, _r in records if b == 'nftables']
    nft = module.get_bin_path('nft')
    if nft_sets and nft:
        rc, out, _err = module.run_command([nft, '-j', 'list', 'counters', 'table', 'inet', 'fleetwall'])
        if rc == 0:
            for name, counts in nft_drops(out, nft_sets).items():
                drops[('nftables', name)] = counts
    now = int(time.time())
    text = render(records, drops, params['generation'], now)
    sets = []
    for backend, name, record in records:
        item = {'backend': backend, 'set': name, 'entries': record['count'], 'last_change': record.get('applied_at')}
        if (backend, name) in drops:
            item.update(dropped_packets=drops[(backend, name)][0], dropped_bytes=drops[(backend, name)][1])
        sets.append(item)
    directory = os.path.dirname(params['path'])
    written = False
    if not module.check_mode and (os.path.isdir(directory) or params['create_dir']):
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        write_atomic(params['path'], text.encode(), 0o644)
        written = True
    module.exit_json(changed=False, written=written, sets=sets, generation=params['generation'])


if __name__ == '__main__':
    main()
