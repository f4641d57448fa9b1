# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The push play's one check of the roles' inputs, on the controller.

Included on its own, a role checks its inputs against its ``meta/argument_specs.yml`` in a task of its own: a round
of workers on every host, which on a no-op push cost the controller as much as the sync call itself (docs/performance.md,
"Fleet cost"). The push play includes the roles without that task and checks every host's inputs here instead, once
per distinct set of values, before any host is changed.

What is checked is what the inventory sets: a role's own variable, or, where the role's default reads a policy
variable (``nftables_ports: "{{ fleetwall_ports | default([]) }}"``), that policy variable. The roles' own defaults
are the collection's, and its tests check them against the specs.
"""

from __future__ import annotations

import json
import os
import re

import yaml

from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'roles')
# A default that is a policy variable unless the policy leaves it unset.
POLICY_DEFAULT = re.compile(r'^\{\{\s*(fleetwall_\w+)\s*\|\s*default\(')

_SPECS = {}


def role_spec(role):
    """(the options of ``role``'s main entry point, {option: the policy variable its default reads})."""
    if role not in _SPECS:
        with open(os.path.join(ROLES_DIR, role, 'meta', 'argument_specs.yml')) as handle:
            options = yaml.safe_load(handle)['argument_specs']['main']['options']
        with open(os.path.join(ROLES_DIR, role, 'defaults', 'main.yml')) as handle:
            defaults = yaml.safe_load(handle) or {}
        policy = {}
        for name, default in defaults.items():
            match = POLICY_DEFAULT.match(default) if isinstance(default, str) else None
            if match and name in options:
                policy[name] = match.group(1)
        _SPECS[role] = (options, policy)
    return _SPECS[role]


def provided_arguments(role, variables):
    """({option: value} of the inputs of ``role`` that ``variables`` (a host's) set, {option: the policy variable
    that set it})."""
    options, policy = role_spec(role)
    provided = {}
    from_policy = {}
    for name in options:
        source = name if name in variables else policy.get(name)
        if source is None or source not in variables:
            continue
        try:
            provided[name] = variables[source]
        except AnsibleError:
            # A value that only templates inside the role (it reads the role's own variables) is checked there, by
            # the module that receives it.
            continue
        if source != name:
            from_policy[name] = source
    return provided, from_policy


class RoleArgumentCheck(object):
    """Checks hosts' inputs for the roles they run; each distinct set of values once."""

    def __init__(self):
        self._seen = {}

    def errors(self, role, variables):
        provided, from_policy = provided_arguments(role, variables)
        key = (role, json.dumps([provided, from_policy], sort_keys=True, default=str))
        if key not in self._seen:
            options = role_spec(role)[0]
            errors = ArgumentSpecValidator(options).validate(provided).error_messages
            self._seen[key] = [_name_the_policy(error, from_policy) for error in errors]
        return self._seen[key]


def _name_the_policy(error, from_policy):
    """The validator names the role's option; where a policy variable set it, name that too."""
    for name, source in from_policy.items():
        error = error.replace("'%s'" % name, "'%s' (set by %s)" % (name, source))
    return error
