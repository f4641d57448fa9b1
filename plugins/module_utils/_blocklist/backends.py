# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The backends, listed once.

Each backend declares here what the rest of the collection needs to know
about it: its id (the name ``fleetwall_backend`` takes, its role's name, the
``backend`` its metrics and reports show), its module, the names its state
records carry, the binaries that detect it, where its drop counters come
from, the variable its role registers, and fail2ban's ban action beside it.
The metrics, the fleet report, the backend-switch check and the policy
filter read this table; adding a backend adds one entry.
"""

from __future__ import annotations

import collections

Backend = collections.namedtuple('Backend', [
    'id',                 # fleetwall_backend's value, the role's name, the metrics' backend label
    'kind',               # 'kernel' (blocks packets; one per host) or 'web' (beside one, in the web server)
    'module',             # the module its role calls
    'record_names',       # the backend names in its state records (<name>-<set>.json); the first is current
    'binaries',           # what backend_facts looks for to detect it
    'drop_counters',      # where its drops are read: 'iptables' (tagged rules), 'nft' (named counters), 'xdp' (the
                          # program's per-CPU counters) or None
    'result_variable',    # what its role registers
    'fail2ban_action',    # fail2ban's ban action beside it: its name and its two forms, or None
])

_IPTABLES_IPSET = {
    'name': 'iptables-ipset',
    'ports': 'iptables-ipset[name={name}, port="{ports}", protocol=tcp, type=multiport]',
    'all': 'iptables-ipset[name={name}, protocol=all, type=allports]',
}

BACKENDS = collections.OrderedDict((backend.id, backend) for backend in (
    Backend('ipset', 'kernel', 'ipset_sync', ('ipset',), ('ipset', 'iptables'), 'iptables', 'ipset_sync_results',
            _IPTABLES_IPSET),
    Backend('nftables', 'kernel', 'nft_set_sync', ('nft', 'nftables'), ('nft',), 'nft', 'nftables_sync_results', {
        'name': 'nftables',
        'ports': 'nftables[name={name}, port="{ports}", protocol=tcp, type=multiport]',
        # type custom with no match: one rule that rejects every protocol from the set.
        'all': 'nftables[name={name}, type=custom]'}),
    # UFW hosts use the ipset action beside UFW's chains: one rule per jail, never one per ban.
    Backend('ufw', 'kernel', 'ufw_tagged_rules', ('ufw',), ('ufw',), None, 'ufw_sync_results', _IPTABLES_IPSET),
    Backend('firewalld', 'kernel', 'firewalld_ipset_sync', ('firewalld',), ('firewall-cmd',), None,
            'firewalld_sync_results', {
                'name': 'firewallcmd-ipset',
                'ports': 'firewallcmd-ipset[name={name}, port="{ports}", protocol=tcp]',
                'all': 'firewallcmd-ipset[name={name}, actiontype=""]'}),
    # Drops in the driver, before the network stack (host/backend_xdp.py); fail2ban has no XDP action.
    Backend('xdp', 'kernel', 'xdp_set_sync', ('xdp',), ('ip',), 'xdp', 'xdp_sync_results', None),
    Backend('nginx', 'web', 'nginx_geo_file', ('nginx',), ('nginx',), None, 'nginx_geo_result', None),
))

KERNEL_BACKENDS = tuple(b.id for b in BACKENDS.values() if b.kind == 'kernel')
# The backends that enforce the shadow copy's port scopes (controller/scopes.py): a drop on some ports, and an
# admit-only port. The others enforce a rule on all ports or a port list set for the whole fleet.
PORT_SCOPE_BACKENDS = ('nftables',)


def backend_of_record(name):
    """The backend id of a state record's backend name (``nft`` records are the nftables backend's), or None."""
    for backend in BACKENDS.values():
        if name in backend.record_names:
            return backend.id
    return None


def record_names():
    """Every backend name a state record can carry."""
    return tuple(name for backend in BACKENDS.values() for name in backend.record_names)


def by_result_variable():
    """{registered variable: backend id}."""
    return dict((backend.result_variable, backend.id) for backend in BACKENDS.values())


def as_dicts():
    """The table as plain data, for the playbooks and roles (the ``fleetwall.blocklist.backends`` lookup)."""
    return [dict((field, list(value) if isinstance(value, tuple) else value)
                 for field, value in backend._asdict().items()) for backend in BACKENDS.values()]
