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
  - For the web tier (the records M(fleetwall.blocklist.nginx_geo_file) keeps), the entries of each tier
    (label C(tier="web")) and, where the tier's record names its request log, the requests it answered
    (C(fleetwall_web_requests_total)) - refused for the block tier, challenged for the challenge tier - counted
    from the log's lines since the last count (only the new bytes are read; a log renamed by logrotate is
    finished from C(LOG.1)).
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
      - Reads the counters and returns the metrics; writes nothing, and a request log's count does not move on.
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
skipped:
  description: Why the file was not written outside check mode (its directory is missing and O(create_dir) is false).
  returned: when the file was not written outside check mode
  type: str
  version_added: 0.5.0
sets:
  description:
    - Per set, C(backend), C(set), C(entries), C(last_change) and, where counters exist, C(dropped_packets) and
      C(dropped_bytes); for a web tier with a request log, C(requests).
  returned: always
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.command_runner import run_tool
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.metrics import write_textfile
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.module_support import check_paths


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
    check_paths(module)
    params = module.params
    try:
        written = write_textfile(run_tool, module.get_bin_path, params['path'], params['state_dir'],
                                 generation=params['generation'], create_dir=params['create_dir'],
                                 check_mode=module.check_mode)
    except (IOError, OSError) as exc:
        module.fail_json(msg='%s: %s' % (getattr(exc, 'filename', '') or params['path'], exc.strerror or exc))
    for warning in written.pop('warnings', []):
        module.warn(warning)
    module.exit_json(changed=False, generation=params['generation'], **written)


if __name__ == '__main__':
    main()
