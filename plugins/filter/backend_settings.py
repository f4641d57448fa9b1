# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: backend_settings
short_description: The settings that do nothing on each host's backend, as warnings
version_added: 0.5.0
author:
  - fleetwall.blocklist contributors (@fleetwall)
description:
  - For each host, the backend it uses (C(fleetwall_backend), or what C(fleetwall.blocklist.backend_facts)
    recommended) and the variables set for it. A variable of another backend's role (C(ipset_ports) on a host that
    uses nftables) does nothing there, and a policy setting (C(fleetwall_ports)) that the host's backend cannot
    honour blocks more than it says. Each is returned as one warning naming the variable, the host and its backend,
    and is also shown as an Ansible warning.
  - A C(fleetwall_backend) that names no backend (a typo) fails, listing the names it takes.
  - The push play includes the roles without their own argument check (a round of workers on every host); this
    filter checks instead, on the controller, what each host sets for the roles it runs (its backend's, and C(xdp),
    C(fail2ban) or C(nginx) beside it) against their C(meta/argument_specs.yml), each distinct set of values once.
    Where a role's default reads a policy variable (C(fleetwall_ports)), that variable is checked as the option it
    fills. Any refusal fails the filter, naming the host, the role and the option, before any host is changed.
  - Feeds scoped to ports (C(docs/scopes.md)), which the shadow copy to push lists (C(shadow_copy_to_push.scopes)
    on C(localhost)), are enforced by the V(nftables) backend only. On a host with another backend, a port-scoped
    block is a warning (its networks are not blocked there), and an admit-only port fails the filter, naming the
    hosts, before any host is changed, as the port would stay open to every source.
  - The fleet's policy is the C(fleetwall_*) variables (C(fleetwall_ports), C(fleetwall_protocol),
    C(fleetwall_target), C(fleetwall_block_output), C(fleetwall_block_forward), C(fleetwall_log),
    C(fleetwall_families)); each backend's role reads them unless its own variable is set (docs/policy.md).
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  hosts:
    description: The hosts to look at (the play's batch).
    type: list
    elements: str
    required: true
'''

EXAMPLES = r'''
- name: Settings that do nothing on a host's backend
  ansible.builtin.debug:
    msg: "{{ hostvars | fleetwall.blocklist.backend_settings(ansible_play_batch) }}"
  run_once: true
'''

RETURN = r'''
_value:
  description: One warning per variable and host; empty when every setting takes effect.
  type: list
  elements: str
'''

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.fleetwall.blocklist.plugins.plugin_utils.role_arguments import RoleArgumentCheck
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.backends import (
    KERNEL_BACKENDS, PORT_SCOPE_BACKENDS,
)

# The roles of the kernel backends, by the name fleetwall_backend takes; each role's variables start with it.
BACKEND_ROLES = KERNEL_BACKENDS
# What each role registers: set by the role, never by the operator.
REGISTERED = ('_sync_results', '_sync_result')
# The policy settings a backend cannot honour, and what happens instead.
UNSUPPORTED = {
    'firewalld': {
        'fleetwall_ports': 'firewalld blocks every port of a listed source',
        'fleetwall_protocol': 'firewalld blocks every protocol of a listed source',
        'fleetwall_block_output': 'firewalld blocks inbound only',
        'fleetwall_block_forward': 'firewalld blocks inbound only',
        'fleetwall_log': 'firewalld logs by its own LogDenied setting',
    },
    'xdp': {
        'fleetwall_ports': 'XDP drops every port of a listed source',
        'fleetwall_protocol': 'XDP drops every protocol of a listed source',
        'fleetwall_block_output': 'XDP sees inbound packets only',
        'fleetwall_block_forward': 'XDP drops at the interface, forwarded or not; fleetwall_block_forward adds nothing',
        'fleetwall_log': 'XDP does not log; its drops are counted in the metrics',
    },
    'ufw': {
        'fleetwall_block_output': 'UFW blocks inbound only here',
        'fleetwall_block_forward': 'UFW blocks inbound only here',
        'fleetwall_log': 'UFW logs by its own logging level',
    },
}


def host_backend(variables):
    """The backend the push play runs for a host: its fleetwall_backend, or backend_facts' recommendation."""
    backend = variables.get('fleetwall_backend')
    if backend is None:
        backend = (variables.get('fleetwall_backend_facts') or {}).get('recommended')
    return backend


# The policy every set backend reads (fleetwall_<setting>), where a role's own <role>_<setting> is set instead.
POLICY = ('ports', 'protocol', 'target', 'block_output', 'block_forward', 'log', 'families')


def _unused(name, variables, backend):
    """Why the variable ``name`` does nothing on this host, or None."""
    for role in BACKEND_ROLES:
        beside = role == 'xdp' and boolean(variables.get('fleetwall_xdp', False), strict=False)
        if name.startswith(role + '_') and role != backend and not beside and not name.endswith(REGISTERED):
            setting = name[len(role) + 1:]
            if setting in POLICY:
                return 'it is a setting of the %s role; fleetwall_%s applies to every backend' % (role, setting)
            return 'it is a setting of the %s role' % role
    reason = UNSUPPORTED.get(backend, {}).get(name)
    if reason and variables.get(name) not in (None, False, [], ''):
        return reason
    if backend == 'ufw' and name == 'fleetwall_ports' and len(variables.get(name) or []) > 1:
        return 'UFW takes one port here, so every port is blocked'
    return None


def _scopes_to_push(hostvars):
    controller = hostvars.get('localhost') or {}
    return list((controller.get('shadow_copy_to_push') or {}).get('scopes') or [])


def _unenforced_scopes(scopes, host, backend):
    """A warning for the port-scoped blocks a host's backend does not enforce, or None; AnsibleFilterError is left to
    the caller for admit-only ports."""
    blocks = [scope['name'] for scope in scopes if scope.get('kind') == 'block']
    if not blocks or backend in PORT_SCOPE_BACKENDS:
        return None
    return ('%s: the feeds scoped to ports (%s) are not enforced there: its backend (%s) blocks on all ports or not '
            'at all, and their networks are not in the block tier (docs/scopes.md)' % (host, ', '.join(blocks), backend))


def tier_roles(variables, backend):
    """The roles the push play includes for a host, in its order (playbooks/push_hosts.yml's loop)."""
    roles = [backend] if backend != 'none' else []
    if boolean(variables.get('fleetwall_xdp', False), strict=False) and backend != 'xdp':
        roles.append('xdp')
    if boolean(variables.get('fleetwall_fail2ban', False), strict=False):
        roles.append('fail2ban')
    if variables.get('fleetwall_web_backend') == 'nginx':
        roles.append('nginx')
    return roles


def _invalid_arguments(check, host, variables, backend, invalid):
    """Add what the roles' argument specs refuse in the host's inputs to ``invalid`` ({(role, error): [hosts]})."""
    for role in tier_roles(variables, backend):
        for error in check.errors(role, variables):
            invalid.setdefault((role, error), []).append(host)


def _hosts_text(hosts, shown=5):
    return ', '.join(hosts[:shown]) + (' and %d more' % (len(hosts) - shown) if len(hosts) > shown else '')


def backend_settings(hostvars, hosts):
    warnings = []
    invalid = {}
    check = RoleArgumentCheck()
    scopes = _scopes_to_push(hostvars)
    admit = [scope['name'] for scope in scopes if scope.get('kind') == 'admit']
    unenforced_admit = []
    for host in hosts:
        variables = hostvars[host]
        backend = host_backend(variables)
        if backend is None:
            continue
        if backend not in BACKEND_ROLES + ('none',):
            raise AnsibleFilterError('%s: fleetwall_backend %r is not a backend; it takes %s or none'
                                     % (host, backend, ', '.join(BACKEND_ROLES)))
        for name in sorted(variables.keys()):
            reason = _unused(name, variables, backend)
            if reason:
                uses = ('has no kernel backend (fleetwall_backend none)' if backend == 'none'
                        else 'uses the %s backend' % backend)
                warnings.append('%s: %s does nothing, because %s %s: %s' % (host, name, host, uses, reason))
        _invalid_arguments(check, host, variables, backend, invalid)
        unenforced = _unenforced_scopes(scopes, host, backend)
        if unenforced:
            warnings.append(unenforced)
        if admit and backend not in PORT_SCOPE_BACKENDS:
            unenforced_admit.append('%s (%s)' % (host, backend))
    if invalid:
        raise AnsibleFilterError('the roles\' inputs are not valid (their meta/argument_specs.yml); nothing was pushed '
                                 'to this batch:\n- %s' % '\n- '.join(
                                     '%s role: %s (%s)' % (role, error, _hosts_text(hosts))
                                     for (role, error), hosts in invalid.items()))
    if unenforced_admit:
        raise AnsibleFilterError('the shadow copy admits only some sources to ports (%s), which only the %s backend '
                                 'enforces; on %s the ports would stay open to everyone. Nothing was pushed to this '
                                 'batch. Use fleetwall_backend: nftables there, or push without the admit_only feeds '
                                 '(docs/scopes.md)'
                                 % (', '.join(admit), ' and '.join(PORT_SCOPE_BACKENDS), ', '.join(unenforced_admit)))
    display = Display()
    for warning in warnings:
        display.warning(warning)
    return warnings


class FilterModule(object):
    def filters(self):
        return {'backend_settings': backend_settings}
