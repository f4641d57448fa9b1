#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: firewalld_ipset_sync
short_description: Make a firewalld ipset hold exactly a list of addresses and networks, permanent and runtime
version_added: 0.3.0
description:
  - Makes one firewalld ipset (C(hash:net)) hold exactly the given entries, in both the permanent and the runtime
    configuration, and keeps the rule that enforces it, a source of the C(drop) zone or a rich rule.
  - A change goes to the permanent ipset first, in bulk from files (C(--permanent --add-entries-from-file), which
    only rewrites firewalld's XML), then to the runtime ipset one entry at a time (C(--add-entry),
    C(--remove-entry)), new entries before old ones go, so no entry of either generation is unblocked while the
    change runs. firewalld's bulk runtime path would flush the kernel set and refill it in parts; its per-entry
    path never does, and costs more as the set grows (tens of milliseconds an entry at 10,000 entries, about half
    a second at 50,000).
  - The runtime set is changed without a reload. Only the first creation reloads firewalld, because firewalld
    creates runtime ipsets only from its permanent configuration. Services (SSH among them) are never touched
    and firewalld is never restarted.
  - A record of the last apply, checked against the permanent ipset file, stands in for listing the set;
    O(verify) compares with the runtime listing and repairs drift. Whenever the runtime ipset is compared (no
    record, as after an interrupted run, or O(verify)), the permanent ipset is compared too and made the same.
author:
  - fleetwall.blocklist contributors (@fleetwall)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - fleetwall.blocklist.sync.entries
  - fleetwall.blocklist.sync
  - fleetwall.blocklist.sync.change_guard
  - fleetwall.blocklist.sync.protect
  - fleetwall.blocklist.sync.attributes
  - fleetwall.blocklist.sync.action
  - fleetwall.blocklist.sync.metrics
options:
  sets:
    description:
      - Several sets in one call, each element giving the options that differ per set; an option an element
        leaves out is the task's. Mutually exclusive with O(name), one of which is required.
      - One call costs one round trip per host where a loop costs one per set, so the roles sync every set of a
        host this way. Each set is synced under its own lock; one that fails does not stop the others, and the
        task fails naming it. The result sums RV(added), RV(removed) and RV(total) and lists each set's
        result in RV(sets).
    type: list
    elements: dict
    version_added: 0.5.0
    suboptions:
      name:
        description: The set's name.
        type: str
        required: true
      entries_file:
        description: The set's O(entries_file).
        type: path
      entries:
        description: The set's O(entries).
        type: list
        elements: str
      src:
        description: The set's O(src), sent by the action plugin only when the host lacks it.
        type: path
      entries_sha256:
        description: The set's O(entries_sha256); the action plugin sets it.
        type: str
      entries_zlib:
        description: The set's O(entries_zlib); the action plugin sets it.
        type: str
      family:
        description: The set's O(family).
        type: str
        choices: [inet, inet6]
      maxelem:
        description: The set's O(maxelem).
        type: int
  name:
    description: Name of the firewalld ipset.
    type: str
  family:
    description: Address family of the ipset.
    type: str
    default: inet
    choices: [inet, inet6]
  state:
    description: V(absent) removes the enforcing rules and the ipset (one firewalld reload).
    type: str
    default: present
    choices: [present, absent]
  maxelem:
    description: Capacity given to a new ipset; defaults to twice the entries, at least 65536.
    type: int
  rules:
    description:
      - How the ipset is enforced. Omit to leave rules alone; an empty list removes every binding of the ipset
        that this module makes.
      - At most one element.
    type: list
    elements: dict
    suboptions:
      mode:
        description:
          - V(zone_source) binds the ipset as a source of O(rules[].zone) (by default the C(drop) zone, which drops
            everything from its sources).
          - V(rich_rule) adds a rich rule C(source ipset=NAME drop) (or C(reject)) to O(rules[].zone).
        type: str
        default: zone_source
        choices: [zone_source, rich_rule]
      target:
        description: Verdict of the rich rule. A zone source takes the zone's own target.
        type: str
        default: drop
        choices: [drop, reject]
      zone:
        description: The zone. Defaults to C(drop) for V(zone_source) and to the default zone for V(rich_rule).
        type: str
seealso:
  - module: fleetwall.blocklist.ipset_sync
  - module: fleetwall.blocklist.nft_set_sync
'''

EXAMPLES = r'''
- name: The shadow copy's IPv4 entries, dropped through the drop zone
  fleetwall.blocklist.firewalld_ipset_sync:
    name: fleetwall_v4
    family: inet
    src: /var/lib/fleetwall/shadow_copy/current/blocklist_v4.txt
    rules:
      - mode: zone_source

- name: IPv6, answered with a reject from the public zone
  fleetwall.blocklist.firewalld_ipset_sync:
    name: fleetwall_v6
    family: inet6
    src: /var/lib/fleetwall/shadow_copy/current/blocklist_v6.txt
    rules:
      - mode: rich_rule
        target: reject
        zone: public
'''

RETURN = r'''
other_backends:
  description:
    - The other kernel backends (V(ipset), V(nftables), V(ufw), V(firewalld)) whose records this host's state
      directory holds, with entries in force, which a switch of the host's backend left behind. The push play
      removes what they installed once this task succeeded (docs/backends.md, "Switching backends").
  returned: with O(state=present), when there are any
  type: list
  elements: str
  version_added: 0.5.0
removed_files:
  description:
    - With O(state=absent), the files removed with the set (its record and entries). The lock file and the state
      directory, if then empty, go too.
  returned: with O(state=absent)
  type: list
  elements: str
  version_added: 0.5.0
sets:
  description: With O(sets), each set's result (C(name), C(changed), C(added), C(removed), C(total) and the rest).
  returned: with O(sets)
  type: list
  elements: dict
  version_added: 0.5.0
elapsed:
  description:
    - The call's own time in seconds, from the module's start on the host to its result, under whatever load the
      host had; the per-host summary of the push play shows it.
  returned: always
  type: float
  sample: 0.42
  version_added: 0.5.0
metrics:
  description:
    - With O(metrics_textfile), whether it was written (C(written)), where (C(path)), why not (C(skipped), its
      directory missing) and per set its entries and drops (C(sets)).
  returned: when O(metrics_textfile) is set and the sync succeeded
  type: dict
  version_added: 0.5.0
protected:
  description:
    - The entries that covered an address lockout protection keeps reachable (at most 20), each with what it
      covered and how many networks replaced it.
  returned: when an entry covered a protected address
  type: list
  elements: dict
  version_added: 0.5.0
protected_count:
  description: How many entries covered a protected address.
  returned: when an entry covered a protected address
  type: int
  version_added: 0.5.0
refused:
  description: Why a change larger than O(max_change_percent) was not applied.
  returned: when the change was refused
  type: str
  version_added: 0.5.0
changed:
  description: Whether the ipset or its rules changed (or would, in check mode).
  returned: always
  type: bool
added:
  description: Entries added.
  returned: success
  type: int
removed:
  description: Entries removed.
  returned: success
  type: int
total:
  description: Entries in the ipset after the run.
  returned: success
  type: int
rules_changed:
  description: The rule changes made.
  returned: when O(rules) is set
  type: list
  elements: str
transferred:
  description: The action plugin sent the entries of O(src) to the target in this run.
  returned: with O(src)
  type: bool
upload_required:
  description: The entries named by O(entries_sha256) are not on the target; the action plugin sends them.
  returned: when O(entries_sha256) is set alone and does not match
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.command_runner import run_tool
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.module_support import (
    SET_OPTIONS, SYNC_ARGUMENT_SPEC, SYNC_MUTUALLY_EXCLUSIVE, run_sync, sets_argument_spec,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_firewalld import (
    FirewalldAdapter, FirewalldRules,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import SyncError


def main():
    argument_spec = dict(
        name=dict(type='str'),
        family=dict(type='str', default='inet', choices=['inet', 'inet6']),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        maxelem=dict(type='int'),
        rules=dict(type='list', elements='dict', options=dict(
            mode=dict(type='str', default='zone_source', choices=['zone_source', 'rich_rule']),
            target=dict(type='str', default='drop', choices=['drop', 'reject']),
            zone=dict(type='str'),
        )),
    )
    argument_spec.update(SYNC_ARGUMENT_SPEC)
    argument_spec['sets'] = sets_argument_spec(argument_spec, SET_OPTIONS + ('family', 'maxelem'))
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=SYNC_MUTUALLY_EXCLUSIVE + [('name', 'sets')],
                           required_one_of=[('name', 'sets')], supports_check_mode=True)
    firewall_cmd = module.get_bin_path('firewall-cmd', required=True)
    # Either shows a firewalld reload (FirewalldAdapter.kernel_generation); firewalld needs only the one its
    # FirewallBackend uses.
    kernel_tools = dict((tool, module.get_bin_path(tool)) for tool in ('nft', 'ipset'))

    def build(params):
        if params['rules'] and len(params['rules']) > 1:
            raise SyncError('rules takes at most one element: one binding enforces the ipset')
        adapter = FirewalldAdapter(run_tool, firewall_cmd, params['name'], family=params['family'],
                                   maxelem=params['maxelem'], nft=kernel_tools['nft'], ipset=kernel_tools['ipset'])
        adapter.running()
        return adapter, FirewalldRules(adapter), None

    run_sync(module, build)


if __name__ == '__main__':
    main()
