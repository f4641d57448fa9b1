#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: nft_set_sync
short_description: Make an nftables set hold exactly a list of addresses and networks, fast at a million
version_added: 0.2.0
description:
  - Makes one nftables set hold exactly the given entries, creating its table and the set when missing,
    and optionally keeps the rules that enforce it in base chains of the set's own (C(<set>_input), ...).
  - Every change is one C(nft -f) transaction, so no packet sees a half-filled or empty set.
  - Never lists the set on the normal path, because the C(nft) CLI needs about a minute to list a million
    elements. A record of the last apply, checked against the set's handle, stands in for the listing;
    O(verify) or O(verify_interval) does the full comparison and repairs drift.
  - Single addresses are best kept in a plain set (O(interval=false)) and networks in an interval set.
    Changes to a plain set are instant at any size, while every change to an interval set makes the CLI
    fetch all its elements first. O(select) takes the addresses or the networks of one entries file.
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
      type:
        description: The set's O(type).
        type: str
        choices: [ipv4_addr, ipv6_addr]
      interval:
        description: The set's O(interval).
        type: bool
      select:
        description: The set's O(select).
        type: str
        choices: [all, hosts, networks]
      timeout:
        description: The set's O(timeout).
        type: int
      admit:
        description: The set's O(admit).
        type: bool
        version_added: 0.5.0
      rules:
        description: The set's O(rules), in place of the task's (an admit-only set or a port-scoped one has its own).
        type: list
        elements: dict
        version_added: 0.5.0
        suboptions:
          chain:
            description: O(rules[].chain).
            type: str
            default: input
            choices: [input, output, forward]
          target:
            description: O(rules[].target).
            type: str
            default: drop
            choices: [drop, reject]
          direction:
            description: O(rules[].direction).
            type: str
            choices: [src, dst]
          ports:
            description: O(rules[].ports).
            type: list
            elements: int
          protocol:
            description: O(rules[].protocol).
            type: str
            default: tcp
            choices: [tcp, udp]
          log:
            description: O(rules[].log).
            type: bool
            default: false
          log_prefix:
            description: O(rules[].log_prefix).
            type: str
            default: 'fleetwall-drop: '
          log_limit:
            description: O(rules[].log_limit).
            type: str
            default: 5/minute
  name:
    description: Name of the set (letters, digits, C(_); starts with a letter).
    type: str
  table:
    description: The table that holds the set and its chains; created when missing. Nothing else in it is touched.
    type: str
    default: fleetwall
  family:
    description: Family of the table. V(inet) serves IPv4 and IPv6 in one table.
    type: str
    default: inet
    choices: [inet, ip, ip6]
  type:
    description: Element type.
    type: str
    default: ipv4_addr
    choices: [ipv4_addr, ipv6_addr]
  interval:
    description: An interval set, which holds networks (CIDRs) as well as addresses. V(false) makes a plain set of addresses.
    type: bool
    default: true
  select:
    description: Take all entries, only single addresses (V(hosts)) or only networks (V(networks)) from the entries.
    type: str
    default: all
    choices: [all, hosts, networks]
  timeout:
    description: Seconds after which the kernel removes each element; set at creation (it cannot change later).
    type: int
  state:
    description:
      - V(absent) removes the set's chains, its drop counter and the set, the table once nothing else is in it, the
        set's records, its save file and the boot unit once no other set's save file is left (C(removed_files)).
    type: str
    default: present
    choices: [present, absent]
  admit:
    description:
      - An admit-only set. Its entries are the only sources that may reach the ports of its O(rules), which drop
        every other source (C(ip saddr != @set tcp dport { 22 } drop)); the shadow copy writes such a set for a feed
        with C(tier=admit_only) (C(docs/scopes.md)).
      - Lockout protection adds what it would otherwise take out of a blocklist (the SSH client of this session,
        the host's own addresses and gateways, O(protect)), listed in C(admitted). With O(lockout_protection=false),
        a set that would not hold this session's SSH client, on a port the rules close, is refused.
      - Needs an interval set holding every entry (O(select=all)), and O(rules) each on the V(input) chain with ports.
    type: bool
    default: false
    version_added: 0.5.0
  remove_other_sets:
    description:
      - A set name prefix. After the sets of O(sets) are synced, every other set whose name begins with it, which this
        module applied (its record is in O(state_dir)), is removed as with O(state=absent), with its chains, record
        and the save file beside those of O(sets) (C(<name>.nft)).
      - The role passes its port-scoped sets' prefix (C(fleetwall_scope_)), so that a scope the shadow copy no longer has
        leaves no set behind on the hosts.
    type: str
    version_added: 0.5.0
  restore_unit:
    description:
      - Install this systemd unit, which restores every save file in the directory of O(persist_file) at boot, and
        enable it (the link C(systemctl enable) makes, written directly, so it works where systemd is not
        running). Written with the save file, in the same call; rewritten only when it differs.
      - A drop-in in the same directory (C(nftables.service.d/fleetwall-nft.conf)) loads the save files again after
        C(nftables.service)'s ExecStart and ExecReload, whose C(/etc/nftables.conf) begins with C(flush ruleset).
      - The roles pass C(/etc/systemd/system/fleetwall-nft-restore.service).
    type: path
    version_added: 0.5.0
  persist_file:
    description:
      - Write an C(nft -f) script that recreates the set, its elements and its chains, for loading at boot
        (the C(fleetwall.blocklist.nftables) role installs a unit that does). Written from the record of the
        apply, not from a listing.
    type: path
  rules:
    description:
      - The rules that enforce the set, kept in base chains of their own (C(<set>_input), C(<set>_output),
        C(<set>_forward)) at priority C(filter - 10), before firewalld's, Docker's and iptables-nft's chains.
        Each drop counts in the named counter C(<set>_drops).
      - Omit to leave rules alone; an empty list removes them.
    type: list
    elements: dict
    suboptions:
      chain:
        description: The hook.
        type: str
        default: input
        choices: [input, output, forward]
      target:
        description: What to do with a match.
        type: str
        default: drop
        choices: [drop, reject]
      direction:
        description: Match the source (V(src)) or destination (V(dst)) address. Defaults to V(dst) for output.
        type: str
        choices: [src, dst]
      ports:
        description: Only these destination ports. Empty means all traffic.
        type: list
        elements: int
      protocol:
        description: Protocol of O(rules[].ports).
        type: str
        default: tcp
        choices: [tcp, udp]
      log:
        description: Log matches (rate-limited) before dropping them.
        type: bool
        default: false
      log_prefix:
        description: Log prefix.
        type: str
        default: 'fleetwall-drop: '
      log_limit:
        description: Rate limit of the log rule, in nft syntax.
        type: str
        default: 5/minute
seealso:
  - module: fleetwall.blocklist.ipset_sync
'''

EXAMPLES = r'''
- name: Single addresses of the shadow copy in a plain set, with the drop rule
  fleetwall.blocklist.nft_set_sync:
    name: fleetwall_v4_hosts
    type: ipv4_addr
    interval: false
    select: hosts
    src: /var/lib/fleetwall/shadow_copy/current/blocklist_v4.txt
    rules:
      - chain: input

- name: Its networks in an interval set
  fleetwall.blocklist.nft_set_sync:
    name: fleetwall_v4_nets
    select: networks
    src: /var/lib/fleetwall/shadow_copy/current/blocklist_v4.txt
    rules:
      - chain: input
        ports: [22]
        log: true
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
admitted:
  description:
    - With O(admit), the networks lockout protection added to the set (at most 20), each with what it keeps
      reachable (C(192.0.2.9 (SSH client))).
  returned: when protection added any
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
  description: Whether the set or its rules changed (or would, in check mode).
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
  description: Entries in the set after the run (or that it would hold, in check mode).
  returned: success
  type: int
full_reload:
  description: Whether the set was flushed and refilled in one transaction rather than patched.
  returned: success
  type: bool
verified:
  description: Whether the change was computed against a full listing of the live set.
  returned: success
  type: bool
rules_changed:
  description: Human-readable list of chain changes.
  returned: when O(rules) is set
  type: list
  elements: str
persist_created:
  description: The script of O(persist_file) did not exist before this run and was written.
  returned: when O(persist_file) is set and the set changed or had no script
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
    ADMIT_ARGUMENT_SPEC, REMOVE_OTHER_SETS_ARGUMENT_SPEC, SET_OPTIONS, SYNC_ARGUMENT_SPEC, SYNC_MUTUALLY_EXCLUSIVE, check_admit_rules, rules_argument_spec,
    run_sync, sets_argument_spec,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nft import NftAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.nft_rules import RuleManager
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import SyncError


def main():
    argument_spec = dict(
        name=dict(type='str'),
        table=dict(type='str', default='fleetwall'),
        family=dict(type='str', default='inet', choices=['inet', 'ip', 'ip6']),
        type=dict(type='str', default='ipv4_addr', choices=['ipv4_addr', 'ipv6_addr']),
        interval=dict(type='bool', default=True),
        select=dict(type='str', default='all', choices=['all', 'hosts', 'networks']),
        timeout=dict(type='int'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        persist_file=dict(type='path'),
        restore_unit=dict(type='path'),
        rules=rules_argument_spec(('input', 'output', 'forward'), ('drop', 'reject'), '5/minute'),
    )
    argument_spec.update(SYNC_ARGUMENT_SPEC)
    argument_spec.update(ADMIT_ARGUMENT_SPEC)
    argument_spec.update(REMOVE_OTHER_SETS_ARGUMENT_SPEC)
    per_set = ('type', 'interval', 'select', 'timeout', 'admit', 'rules')
    argument_spec['sets'] = sets_argument_spec(argument_spec, SET_OPTIONS + per_set)
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=SYNC_MUTUALLY_EXCLUSIVE + [('name', 'sets')],
                           required_one_of=[('name', 'sets')], supports_check_mode=True)
    nft_bin = module.get_bin_path('nft', required=True)

    def build(params):
        if not params['interval'] and params['select'] == 'networks':
            raise SyncError('select=networks needs an interval set (interval=true)')
        if params['admit'] and (not params['interval'] or params['select'] != 'all'):
            # Split in two, a source would have to be in both halves to pass.
            raise SyncError('set %s: an admit-only set holds every entry in one interval set (interval=true, '
                            'select=all)' % params['name'])
        check_admit_rules(params)
        adapter = NftAdapter(run_tool, nft_bin, params['table'], params['name'], family=params['family'],
                             elem_type=params['type'], interval=params['interval'], timeout=params['timeout'],
                             select=params['select'], keep_listing=True)
        adapter.admit = params['admit']
        rules = RuleManager(adapter, params['state_dir'])
        adapter.rule_manager = rules

        want_networks = params['select'] == 'networks'

        def select_entries(lines):
            # The shadow copy writes one canonical entry a line: a network is
            # exactly a line with a slash.  One test a line, not a comparison of two: a million lines cost less.
            if want_networks:
                return [line for line in lines if '/' in line]
            return [line for line in lines if '/' not in line]

        return adapter, rules, select_entries if params['select'] != 'all' else None

    run_sync(module, build)


if __name__ == '__main__':
    main()
