#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: ipset_sync
short_description: Make a kernel ipset hold exactly a list of addresses and networks
version_added: 0.1.0
description:
  - Computes the exact difference between the desired entries and the live ipset and applies it
    in one C(ipset restore) batch, never one process per address.
  - A full reload builds a new set and swaps it in; a small change adds, then deletes. The live set
    is never partly loaded or empty.
  - Sizes C(maxelem) and C(hashsize) from the entry count, so the set never fills up.
  - Optionally keeps the iptables or ip6tables rules that enforce the set at the top of their chains,
    in the same task, so a host with nothing to change costs one round trip.
  - With O(src), the entries file is read on the controller and sent only when it changed.
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
      persist_file:
        description: The set's O(persist_file).
        type: path
      family:
        description: The set's O(family).
        type: str
        choices: [inet, inet6]
      set_type:
        description: The set's O(set_type).
        type: str
        choices: ['hash:net', 'hash:ip']
      timeout:
        description: The set's O(timeout).
        type: int
  name:
    description:
      - Name of the ipset, at most 31 characters.
    type: str
  state:
    description:
      - V(present) makes the set hold exactly the entries.
      - V(absent) removes the rules this module manages for the set, then the set, its records, its save file and
        the boot unit once no other set's save file is left (C(removed_files)). It warns when a ruleset the host
        restores at boot (C(/etc/iptables/rules.v4) of netfilter-persistent) still names the set.
    type: str
    choices: [present, absent]
    default: present
  family:
    description:
      - Address family of the set.
    type: str
    choices: [inet, inet6]
    default: inet
  set_type:
    description:
      - V(hash:net) holds addresses and CIDRs; V(hash:ip) holds single addresses only.
    type: str
    choices: ['hash:net', 'hash:ip']
    default: 'hash:net'
  timeout:
    description:
      - Default per-entry timeout in seconds. Entries that expire are added again by the next run.
      - A set's timeout support cannot change in place; changing it needs O(state=absent) first.
    type: int
  rules:
    description:
      - Rules that enforce the set, kept at the top of their chains and tagged with a comment
        C(fleetwall:NAME). Rules of others are never touched.
      - An empty list removes the tagged rules. Omit the option to leave rules alone.
    type: list
    elements: dict
    suboptions:
      chain:
        description: Chain of the C(filter) table.
        type: str
        choices: [INPUT, OUTPUT, FORWARD, DOCKER-USER]
        default: INPUT
      target:
        description: What to do with matching packets.
        type: str
        choices: [DROP, REJECT]
        default: DROP
      direction:
        description: Match the set against the source or destination address. Defaults to C(dst) for OUTPUT, else C(src).
        type: str
        choices: [src, dst]
      ports:
        description: Limit the rule to these destination ports (for example only SSH).
        type: list
        elements: int
      protocol:
        description: Protocol for O(rules[].ports).
        type: str
        choices: [tcp, udp]
        default: tcp
      log:
        description: Add a rate-limited LOG rule before the rule.
        type: bool
        default: false
      log_prefix:
        description: Prefix of log lines, at most 29 characters.
        type: str
        default: 'fleetwall-drop: '
      log_limit:
        description: Rate limit of the LOG rule.
        type: str
        default: 5/min
  restore_unit:
    description:
      - Install this systemd unit, which restores every save file in the directory of O(persist_file) at boot, and
        enable it (the link C(systemctl enable) makes, written directly, so it works where systemd is not
        running). Written with the save file, in the same call; rewritten only when it differs.
      - The unit restores the sets, then the rules of O(rules) saved beside each (C(<set>.rules)); each rule is
        added where it is missing, never twice. A drop-in in the same directory runs those rules again after
        C(docker.service) starts (C(docker.service.d/fleetwall-ipset.conf)), since Docker creates DOCKER-USER when
        it starts. Where netfilter-persistent is installed, its plugin
        C(/usr/share/netfilter-persistent/plugins.d/45-fleetwall-ipset) runs them after netfilter-persistent's
        C(start), C(restart) and C(reload), from its unit or by hand, since the rulesets it restores replace the
        chains they name.
      - The roles pass C(/etc/systemd/system/fleetwall-ipset-restore.service).
    type: path
    version_added: 0.5.0
  persist_file:
    description:
      - After a change, save the set to this file, for restore at boot (see the C(ipset) role's unit).
    type: path
notes:
  - Requires the C(ipset) command, and C(iptables)/C(ip6tables) with C(iptables-restore) when O(rules) is set.
  - Entries must be canonical one-per-line addresses or CIDRs, as the C(shadow_copy) role writes them;
    a single invalid entry fails the task before anything is applied.
seealso:
  - module: fleetwall.blocklist.shadow_copy_build
  - module: ansible.builtin.iptables
'''

EXAMPLES = r'''
- name: Block the shadow copy's IPv4 entries on every host, SSH only
  fleetwall.blocklist.ipset_sync:
    name: fleetwall-v4
    family: inet
    src: /var/lib/fleetwall/shadow_copy/current/blocklist_v4.txt
    rules:
      - chain: INPUT
        target: DROP
        ports: [22]

- name: A small hand-made set, without rules
  fleetwall.blocklist.ipset_sync:
    name: scanners
    set_type: 'hash:ip'
    entries:
      - 198.51.100.7
      - 203.0.113.9

- name: Remove the set and its rules
  fleetwall.blocklist.ipset_sync:
    name: scanners
    state: absent
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
    - With O(state=absent), the files removed with the set (its record and entries, its save file, and the boot unit
      of O(restore_unit) once no other set's save file is beside it; its C(multi-user.target.wants) link with it).
      The lock file and the state directory, if then empty, go too.
  returned: with O(state=absent)
  type: list
  elements: str
  version_added: 0.5.0
restore_unit_changed:
  description: The unit of O(restore_unit) was installed or updated (or would be, in check mode).
  returned: when it was
  type: bool
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
added:
  description: Entries added to the set.
  returned: success
  type: int
  sample: 120
removed:
  description: Entries removed from the set.
  returned: success
  type: int
  sample: 3
total:
  description: Entries in the set after the run (or that it would hold, in check mode).
  returned: success
  type: int
  sample: 14217
full_reload:
  description: Whether the set was rebuilt and swapped in rather than patched.
  returned: success
  type: bool
verified:
  description: Whether the change was computed against a full listing of the live set.
  returned: success
  type: bool
rules_changed:
  description: Human-readable list of rule changes.
  returned: when O(rules) is set
  type: list
  elements: str
persist_created:
  description: The save file of O(persist_file) did not exist before this run and was written.
  returned: when O(persist_file) is set and the set changed or had no save file
  type: bool
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
    SET_OPTIONS, SYNC_ARGUMENT_SPEC, SYNC_MUTUALLY_EXCLUSIVE, rules_argument_spec, run_sync, sets_argument_spec,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.adapter import NoRules
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ipset import IpsetAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.iptables_rules import IptablesSetRules
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import SyncError


def main():
    argument_spec = dict(
        name=dict(type='str'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        family=dict(type='str', default='inet', choices=['inet', 'inet6']),
        set_type=dict(type='str', default='hash:net', choices=['hash:net', 'hash:ip']),
        timeout=dict(type='int'),
        persist_file=dict(type='path'),
        restore_unit=dict(type='path'),
        rules=rules_argument_spec(('INPUT', 'OUTPUT', 'FORWARD', 'DOCKER-USER'), ('DROP', 'REJECT'), '5/min'),
    )
    argument_spec.update(SYNC_ARGUMENT_SPEC)
    argument_spec['sets'] = sets_argument_spec(argument_spec, SET_OPTIONS + ('family', 'set_type', 'timeout'))
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=SYNC_MUTUALLY_EXCLUSIVE + [('name', 'sets')],
                           required_one_of=[('name', 'sets')], supports_check_mode=True)
    ipset_bin = module.get_bin_path('ipset', required=True)

    def build(params):
        for rule in params['rules'] or []:
            if len(rule['log_prefix']) > 29 or '"' in rule['log_prefix']:
                raise SyncError('log_prefix must be at most 29 characters and contain no double quote')
        adapter = IpsetAdapter(run_tool, ipset_bin, params['name'], family=params['family'],
                               set_type=params['set_type'], timeout=params['timeout'])
        if params['rules'] is None and params['state'] == 'present':
            return adapter, NoRules(), None
        prefix = 'ip6tables' if params['family'] == 'inet6' else 'iptables'
        # Rules to keep need their tools; a removal takes out what it finds, and a host without them has none.
        required = params['rules'] is not None
        binaries = tuple(module.get_bin_path(tool, required=required) for tool in (prefix, prefix + '-restore'))
        return adapter, IptablesSetRules(run_tool, binaries, adapter) if all(binaries) else NoRules(), None

    run_sync(module, build)


if __name__ == '__main__':
    main()
