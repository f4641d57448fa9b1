#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: held_entries
short_description: Which of a host's blocklist sets hold an address in force, and whether lockout protection keeps it
version_added: 0.5.0
description:
  - Reads the records the sync modules keep of their last apply in O(state_dir) (one per set, of every backend) and
    returns the sets whose entries contain O(address) or, for a network, overlap it. The kernel's sets are never
    listed, so the answer costs the same at a million entries.
  - Also says whether this host's lockout protection keeps the address reachable whatever the feeds say (the
    client of the SSH session, the host's own addresses and default gateways, and O(protect)), and why.
  - C(playbooks/explain.yml) runs it on every host after the shadow copy's answer.
author:
  - fleetwall.blocklist contributors (@fleetwall)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - fleetwall.blocklist.read_only
options:
  address:
    description: An address or a CIDR network.
    type: str
    required: true
  state_dir:
    description: Where the sync modules keep their records.
    type: path
    default: /var/lib/fleetwall
  lockout_protection:
    description: Say whether the host's lockout protection keeps the address reachable, as the sync modules do.
    type: bool
    default: true
  protect:
    description: The entries the host never blocks beside lockout protection's (the roles pass the allowlist).
    type: list
    elements: str
    default: []
'''

EXAMPLES = r'''
- name: Which sets hold 203.0.113.7 on this host
  fleetwall.blocklist.held_entries:
    address: 203.0.113.7
  register: held
'''

RETURN = r'''
held:
  description: Each set whose record holds the address, with the entries that hold it and when it was applied.
  returned: always
  type: list
  elements: dict
  sample: [{"backend": "nftables", "set": "fleetwall_v4_nets", "entries": ["203.0.113.0/24"], "applied_at": 1790000000}]
protected:
  description: Why lockout protection keeps the address reachable on this host (C(ADDRESS (why))); empty when it
    does not.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.addresses import AddressError, BITS, parse_query
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.held import held
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.module_support import (
    PROTECT_ARGUMENT_SPEC, host_protection,
)


def main():
    argument_spec = dict(
        address=dict(type='str', required=True),
        state_dir=dict(type='path', default='/var/lib/fleetwall'),
    )
    argument_spec.update(PROTECT_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        version, start, prefixlen = parse_query(module.params['address'])
        found = held(module.params['state_dir'], module.params['address'])
    except AddressError as exc:
        module.fail_json(msg=str(exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot read the records in %s: %s' % (module.params['state_dir'], exc))
    protection = host_protection(module)
    end = start + (1 << (BITS[version] - prefixlen)) - 1
    module.exit_json(changed=False, held=found, protected=protection.reasons(version, start, end))


if __name__ == '__main__':
    main()
