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
  - Looks for C(nft), C(ipset), C(iptables) (and which variant, C(nf_tables) or C(legacy)), whether firewalld
    is running (its name on the system bus) and UFW is active, and whether nginx is installed, and recommends a
    kernel-tier backend.
    Sets the fact C(fleetwall_backend_facts).
  - The recommendation is V(firewalld) when firewalld is running, because firewalld replaces rules and sets
    it did not make when it reloads. Otherwise V(nftables) when C(nft) is present and iptables is absent or
    the C(nf_tables) variant; V(ipset) when iptables is the C(legacy) variant and C(ipset) is present (mixing
    legacy iptables and native nftables rules works, but is hard to reason about); V(ufw) when UFW is active
    and neither of those is installed. The C(ipset) and C(nftables) backends work beside an active UFW,
    and scale further (UFW keeps one rule per entry), so UFW is chosen by name (C(fleetwall_backend=ufw)).
  - nginx is never chosen automatically, because the web tier needs the enforcement snippet in your server blocks
    (C(fleetwall_web_backend=nginx)).
author:
  - fleetwall.blocklist contributors (@fleetwall)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - fleetwall.blocklist.read_only
options:
  required:
    description:
      - Fail when no backend can be recommended, saying what to install. A play that needs a backend then
        spends no second task on the check.
    type: bool
    default: false
    version_added: 0.5.0
'''

EXAMPLES = r'''
- name: Pick the backend per host, unless the inventory says; fail where there is none
  fleetwall.blocklist.backend_facts:
    required: true
  when: fleetwall_backend is not defined

- name: Use it
  ansible.builtin.include_role:
    name: "fleetwall.blocklist.{{ fleetwall_backend | default(fleetwall_backend_facts.recommended) }}"
'''

RETURN = r'''
ansible_facts:
  description: C(fleetwall_backend_facts) with C(nft), C(ipset), C(iptables), C(ufw), C(firewall-cmd), C(nginx)
    (paths or null), C(iptables_variant) (V(nf_tables), V(legacy) or null), C(firewalld_running), C(ufw_active)
    and C(recommended) (V(firewalld), V(nftables), V(ipset), V(ufw) or null).
  returned: always
  type: dict
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.command_runner import run_tool


def recommend(nft, ipset, iptables, variant, firewalld_running=False, ufw_active=False):
    if firewalld_running:
        return 'firewalld'
    if nft and (not iptables or variant == 'nf_tables' or not ipset):
        return 'nftables'
    if ipset and iptables:
        return 'ipset'
    if nft:
        return 'nftables'
    return 'ufw' if ufw_active else None


def system_bus_socket(environ):
    """The system bus's socket path, or None when its address is not a plain socket path."""
    address = environ.get('DBUS_SYSTEM_BUS_ADDRESS') or 'unix:path=/run/dbus/system_bus_socket'
    for part in address.split(';'):
        if part.startswith('unix:path='):
            return part[len('unix:path='):].split(',')[0]
    return None


def firewalld_is_running(run, get_bin_path, firewall_cmd):
    """Whether firewalld holds its name on the system bus.

    ``firewall-cmd --state`` answers that too, but it is a Python program:
    0.2 s a host, most of what detection costs a fleet. firewalld cannot run
    without the system bus, so no bus socket means no firewalld; with one,
    dbus-send asks the bus who owns firewalld's name. firewall-cmd remains the
    fallback where dbus-send is missing or the bus cannot be asked.
    """
    socket_path = system_bus_socket(os.environ)
    if socket_path and not os.path.exists(socket_path):
        return False
    dbus_send = get_bin_path('dbus-send')
    if dbus_send:
        rc, out, _err = run([dbus_send, '--system', '--print-reply', '--dest=org.freedesktop.DBus',
                             '/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner',
                             'string:org.fedoraproject.FirewallD1'])
        if rc == 0 and 'boolean' in out:
            return 'boolean true' in out
    return run([firewall_cmd, '--state'])[0] == 0


def main():
    module = AnsibleModule(argument_spec=dict(required=dict(type='bool', default=False)), supports_check_mode=True)
    found = {tool: module.get_bin_path(tool) for tool in ('nft', 'ipset', 'iptables', 'ufw', 'firewall-cmd', 'nginx')}
    variant = None
    ufw_active = False
    if found['iptables']:
        rc, out, err = run_tool([found['iptables'], '-V'])
        text = (out + err) if rc == 0 else ''
        variant = 'nf_tables' if 'nf_tables' in text else ('legacy' if 'legacy' in text or text else None)
        # UFW's own test for "active": its user chain is loaded.
        ufw_active = bool(found['ufw']) and run_tool(
            [found['iptables'], '-w', '-n', '-L', 'ufw-user-input', '1'])[0] == 0
    firewalld_running = bool(found['firewall-cmd']) and firewalld_is_running(run_tool, module.get_bin_path, found['firewall-cmd'])
    facts = dict(found, iptables_variant=variant, firewalld_running=firewalld_running, ufw_active=ufw_active,
                 recommended=recommend(found['nft'], found['ipset'], found['iptables'], variant,
                                       firewalld_running, ufw_active))
    if module.params['required'] and facts['recommended'] is None:
        module.fail_json(msg='Neither nft nor ipset with iptables was found (nor a running firewalld or an active UFW). '
                             'Install nftables (or ipset and iptables), or set fleetwall_backend for this host.')
    module.exit_json(changed=False, ansible_facts={'fleetwall_backend_facts': facts})


if __name__ == '__main__':
    main()
