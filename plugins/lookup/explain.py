# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: explain
short_description: Why the shadow copy blocks an address or a network, or does not
version_added: 0.5.0
author:
  - fleetwall.blocklist contributors (@fleetwall)
description:
  - Answers from the controller's shadow copy, by containment (an address inside a listed network is found), for
    the current generation - whether the address is blocked, challenged, partly (a network) or not listed; the
    tiers' entries that hold it; the networks the feeds listed that contain it or lie inside it, with their feeds
    and best score (the provenance); the fleet-local bans behind it (host, jail, when); what kept it out (the
    allowlist entries that overlap it, the feeds' entries the build refused, the refusal policy); and since which
    generation, of those kept, it has been in force.
  - Every file is searched by bisection, never scanned; at a million provenance lines an answer costs about a
    tenth of a second (docs/performance.md).
  - C(playbooks/explain.yml) serves it, and adds which hosts hold it in force (module M(fleetwall.blocklist.held_entries)).
options:
  _terms:
    description: Addresses or CIDR networks.
    type: list
    elements: str
    required: true
  shadow_copy_dir:
    description: The shadow copy's directory on the controller.
    type: path
    default: /var/lib/fleetwall/shadow_copy
    vars:
      - name: shadow_copy_controller_dir
      - name: shadow_copy_dir
  allowlist:
    description: The allowlist the copy was built with, to say which entry kept an address out.
    type: list
    elements: str
    default: []
    vars:
      - name: shadow_copy_allowlist
'''

EXAMPLES = r'''
- name: Why is 203.0.113.7 blocked
  ansible.builtin.debug:
    msg: "{{ lookup('fleetwall.blocklist.explain', '203.0.113.7')['summary'] }}"
'''

RETURN = r'''
_raw:
  description:
    - One answer per term, with C(query), C(generation), C(created), C(verdict) (V(blocked), V(challenged),
      V(partly blocked), V(partly challenged), V(kept out) (a feed lists it, something kept it out) or
      V(not listed)), C(block) and C(challenge) (the tiers' entries that contain or lie inside the query),
      C(listed) and C(listed_inside) (provenance rows - C(network), C(feeds),
      C(best_score), C(labels), the country or AS each address-plan feed gave, by feed)
      with C(listed_inside_count), C(fleet_bans), C(kept_out) (each with C(by) - V(allow source),
      V(unblock), V(allowlist), V(refusal) or V(refusal policy) - and the C(entry), C(source), C(reason) and C(feed)
      where known), C(listed_since)
      (C(generation), C(created), C(oldest_kept)) and C(summary), the answer as lines.
  type: list
  elements: dict
'''

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.explain import (
    ExplainError, explain,
)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        root, allowlist = self.get_option('shadow_copy_dir'), self.get_option('allowlist')
        try:
            return [explain(root, term, allowlist) for term in terms]
        except ExplainError as exc:
            raise AnsibleLookupError(str(exc))
