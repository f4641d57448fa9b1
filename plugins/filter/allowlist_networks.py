# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: allowlist_networks
short_description: An allowlist as the fewest CIDR networks, for tools that take no ranges
version_added: 0.4.0
author:
  - fleetwall.blocklist contributors (@fleetwall)
description:
  - Reads allowlist entries the way the shadow copy does (addresses, CIDR networks and C(FIRST-LAST)
    ranges; a bad entry is an error) and returns the fewest CIDR networks that cover exactly the same
    addresses, IPv4 first. fail2ban's C(ignoreip), for one, takes no ranges.
options:
  _input:
    description: The allowlist entries.
    type: list
    elements: str
    required: true
'''

EXAMPLES = r'''
- name: The shadow copy's allowlist as fail2ban's ignoreip
  ansible.builtin.debug:
    msg: "{{ ['192.0.2.10-192.0.2.20', '2001:db8::1'] | fleetwall.blocklist.allowlist_networks | join(' ') }}"
    # 192.0.2.10/31 192.0.2.12/30 192.0.2.16/30 192.0.2.20 2001:db8::1
'''

RETURN = r'''
_value:
  description: The networks; single addresses without a prefix length.
  type: list
  elements: str
'''

from ansible.errors import AnsibleFilterError


def allowlist_networks(entries):
    # Imported here, not above: to resolve any of the collection's filters, Ansible imports every filter file of
    # it, in every worker of a push, and the shadow copy's code is most of the cost of that (docs/performance.md).
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.addresses import (
        V4, V6, networks_text)
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (
        ShadowCopyError, parse_allowlist)

    if isinstance(entries, str) or not isinstance(entries, (list, tuple)):
        raise AnsibleFilterError('allowlist_networks expects a list of entries, got %s' % type(entries).__name__)
    try:
        ranges = parse_allowlist(entries)
    except ShadowCopyError as exc:
        raise AnsibleFilterError(str(exc))
    networks = []
    for version in (V4, V6):
        for lines in networks_text(ranges[version], version):
            networks.extend(lines.split('\n'))
    return networks


class FilterModule(object):
    def filters(self):
        return {'allowlist_networks': allowlist_networks}
