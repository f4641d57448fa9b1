# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: fleet_addresses
short_description: The addresses the fleet's hosts are managed at, for lockout protection
version_added: 0.5.0
author:
  - fleetwall.blocklist contributors (@fleetwall)
description:
  - For each host, its C(ansible_host), or its inventory name, when that is an IPv4 or IPv6 address. A name is
    not resolved (the controller's DNS is not the hosts'); give such a host its address in C(ansible_host) to
    have it protected.
  - The roles add these to what each host never blocks (lockout protection, O(fleetwall.blocklist.ipset_sync#module:protect)),
    so that a feed covering the fleet's own range does not cut the hosts off from each other
    (C(fleetwall_protect_fleet), true by default).
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  hosts:
    description: The hosts (the play's, C(ansible_play_hosts_all)).
    type: list
    elements: str
    required: true
'''

EXAMPLES = r'''
- name: Protect the fleet's own hosts
  ansible.builtin.debug:
    msg: "{{ hostvars | fleetwall.blocklist.fleet_addresses(ansible_play_hosts_all) }}"
'''

RETURN = r'''
_value:
  description: The addresses, sorted, each once.
  type: list
  elements: str
'''

import ipaddress


def _address(value):
    try:
        return str(ipaddress.ip_address(str(value).strip('[]')))
    except ValueError:
        return None


def fleet_addresses(hostvars, hosts):
    found = set()
    for host in hosts:
        try:
            variables = hostvars[host]
        except KeyError:
            continue
        address = _address(variables.get('ansible_host') or host)
        if address:
            found.add(address)
    return sorted(found, key=lambda text: (':' in text, ipaddress.ip_address(text)))


class FilterModule(object):
    def filters(self):
        return {'fleet_addresses': fleet_addresses}
