# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: backends
short_description: The collection's backends, as the one table that lists them declares them
version_added: 0.5.0
author:
  - fleetwall.blocklist contributors (@fleetwall)
description:
  - Returns one dict per backend with C(id) (the value of C(fleetwall_backend), the role's name and the
    C(backend) the metrics and reports show), C(kind) (V(kernel) or V(web)), C(module), C(record_names),
    C(binaries), C(drop_counters), C(result_variable) (what its role registers) and C(fail2ban_action) (the
    name and the two forms of fail2ban's ban action beside it, or null).
  - The push play reads the registered variables from it, and the fail2ban role its ban actions, so that adding
    a backend adds one entry to C(plugins/module_utils/_blocklist/backends.py) and nothing here.
options:
  _terms:
    description: Backend ids to return; none returns every backend.
    type: list
    elements: str
    required: false
'''

EXAMPLES = r'''
- name: What every role registers
  ansible.builtin.debug:
    msg: "{{ query('fleetwall.blocklist.backends') | map(attribute='result_variable') }}"

- name: fail2ban's ban action beside nftables
  ansible.builtin.debug:
    msg: "{{ lookup('fleetwall.blocklist.backends', 'nftables')['fail2ban_action']['name'] }}"
'''

RETURN = r'''
_raw:
  description: One dict per backend, in the table's order (or the terms').
  type: list
  elements: dict
'''

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.backends import BACKENDS, as_dicts


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        table = dict((item['id'], item) for item in as_dicts())
        if not terms:
            return [table[backend] for backend in BACKENDS]
        unknown = [term for term in terms if term not in table]
        if unknown:
            raise AnsibleLookupError('no backend named %s; the backends are %s'
                                     % (', '.join(map(str, unknown)), ', '.join(BACKENDS)))
        return [table[term] for term in terms]
