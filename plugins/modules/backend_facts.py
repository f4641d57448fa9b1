#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: backend_facts
short_description: Tell which firewall backend a host can use for its blocklist
version_added: 0.2.0
description:
  - Looks for C(nft), C(ipset) and C(iptables) and which iptables variant is installed (C(nf_tables) or
    C(legacy)), and recommends a backend, C(nftables) or C(ipset). Sets the fact C(fleetwall_backend_facts).
  - The recommendation is V(nftables) when C(nft) is present and iptables is absent or the C(nf_tables)
    variant; V(ipset) when iptables is the C(legacy) variant and C(ipset) is present (mixing legacy
    iptables and native nftables rules works, but is hard to reason about); otherwise whichever exists.
author:
  - fleetwall.blocklist contributors
attributes:
  check_mode:
    support: full
    details:
      - Reads only.
  diff_mode:
    support: none
options: {}
'''

EXAMPLES = r'''
- name: Pick the backend per host, unless the inventory says
  fleetwall.blocklist.backend_facts:

- name: Use it
  ansible.builtin.include_role:
    name: "fleetwall.blocklist.{{ fleetwall_backend | default(fleetwall_backend_facts.recommended) }}"
'''

RETURN = r'''
ansible_facts:
  description: C(fleetwall_backend_facts) with C(nft), C(ipset), C(iptables) (paths or null),
    C(iptables_variant) (V(nf_tables), V(legacy) or null) and C(recommended) (V(nftables), V(ipset) or null).
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule


def recommend(nft, ipset, iptables, variant):
    if nft and (not iptables or variant == 'nf_tables' or not ipset):
        return 'nftables'
    if ipset and iptables:
        return 'ipset'
    return 'nftables' if nft else None


def main():
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    found = {tool: module.get_bin_path(tool) for tool in ('nft', 'ipset', 'iptables')}
    variant = None
    if found['iptables']:
        rc, out, err = module.run_command([found['iptables'], '-V'])
        text = (out + err) if rc == 0 else ''
        variant = 'nf_tables' if 'nf_tables' in text else ('legacy' if 'legacy' in text or text else None)
    facts = dict(found, iptables_variant=variant,
                 recommended=recommend(found['nft'], found['ipset'], found['iptables'], variant))
    module.exit_json(changed=False, ansible_facts={'fleetwall_backend_facts': facts})


if __name__ == '__main__':
    main()
