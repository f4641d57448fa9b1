#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: xdp_set_sync
short_description: Drop listed sources in XDP, before the kernel's network stack, fast at a million entries
version_added: 0.5.0
description:
  - Makes one family's LPM trie of the collection's XDP program hold exactly the given entries (addresses and
    networks alike), pinning the program and its maps under O(pin_dir) when they are missing, and attaches the
    program to O(interfaces). A packet whose source address the trie holds is dropped at the driver (C(XDP_DROP)),
    before the kernel allocates anything for it; every other packet passes untouched.
  - A full load fills a new trie while the old one serves, then switches it in with one map update; an edit goes
    into the live trie, adds before deletes. A packet sees one generation or the other, never a half-filled trie.
  - The host needs the kernel's BPF support, iproute2 and Python's standard library; the program ships compiled in
    the collection (its C source is C(src/xdp/fleetwall_xdp.c)), and the maps are written through the C(bpf()) system
    call. No compiler, no C(bpftool).
  - XDP sees incoming packets only, and drops them whatever their port; it cannot reject, log, or block output.
    Beside it, any other backend or the host's own ruleset does what it cannot (docs/choose-backend.md).
  - The program is never put over an XDP program that another tool attached; the module fails naming it.
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
      - Both families in one call, each element giving the options that differ per set; an option an element
        leaves out is the task's. Mutually exclusive with O(name), one of which is required.
      - Each set is synced under its own lock; one that fails does not stop the others, and the task fails naming
        it. The result sums RV(added), RV(removed) and RV(total) and lists each set's result in RV(sets).
    type: list
    elements: dict
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
  name:
    description: The set's name, which its records and metrics carry; one set per family.
    type: str
  type:
    description: The family of the entries, and so which of the program's two tries the set is.
    type: str
    default: ipv4_addr
    choices: [ipv4_addr, ipv6_addr]
  pin_dir:
    description:
      - Where the program, its two outer maps and its drop counters are pinned, in a mounted bpffs. A later run
        opens them by path. Objects of another kind pinned under the same names are refused, not used.
    type: path
    default: /sys/fs/bpf/fleetwall
  interfaces:
    description:
      - The interfaces the program runs on. It is detached from any other interface it ran on.
      - Default, the interfaces that carry the host's default routes (IPv4 and IPv6). An empty list is refused
        with O(state=present).
      - Each must carry Ethernet frames, which the program parses; an interface without them (WireGuard, tun, PPP)
        is refused, naming it.
    type: list
    elements: str
  attach_mode:
    description:
      - V(auto) attaches in native mode where the driver has it and in generic mode otherwise; V(native) fails
        where the driver lacks it; V(generic) runs after the driver has built a socket buffer (slower, but
        everywhere). RV(attached) says which mode each interface got. A program of ours already attached stays in
        its mode.
    type: str
    default: auto
    choices: [auto, native, generic]
  state:
    description:
      - V(absent) empties the set's trie, detaches the program once neither family holds an entry, unpins
        everything once both tries are empty, and removes the set's records, its save file and (once no other
        save file is left) the boot unit and its library.
    type: str
    default: present
    choices: [present, absent]
  persist_file:
    description:
      - Write the set's save file for the boot unit, a C(*.xdp) file that holds a header line naming the family,
        O(pin_dir), O(interfaces) and O(attach_mode), then the entries. Written from the record of the apply. Beside it, in
        C(lib/), the boot unit's restore program (the collection's own files, standard library only).
    type: path
  restore_unit:
    description:
      - Install this systemd unit, which pins the program and its tries again from every save file in the directory
        of O(persist_file) and attaches it, before C(network-pre.target); and enable it (the link C(systemctl
        enable) makes, written directly). Written with the save file, in the same call.
      - The role passes C(/etc/systemd/system/fleetwall-xdp-restore.service).
    type: path
notes:
  - Needs a kernel with BPF LPM tries and batch map operations (5.6 or later) and a bpffs mounted at
    O(pin_dir)'s parent; little-endian CPUs only.
seealso:
  - module: fleetwall.blocklist.nft_set_sync
"""

EXAMPLES = r"""
- name: Drop the shadow copy's sources in XDP on eth0, both families in one call
  fleetwall.blocklist.xdp_set_sync:
    sets:
      - name: fleetwall_v4
        type: ipv4_addr
        src: /var/lib/fleetwall/shadow_copy/current/blocklist_v4.txt
        persist_file: /var/lib/fleetwall/xdp/fleetwall_v4.xdp
      - name: fleetwall_v6
        type: ipv6_addr
        src: /var/lib/fleetwall/shadow_copy/current/blocklist_v6.txt
        persist_file: /var/lib/fleetwall/xdp/fleetwall_v6.xdp
    interfaces: [eth0]
    restore_unit: /etc/systemd/system/fleetwall-xdp-restore.service
"""

RETURN = r"""
other_backends:
  description:
    - The other kernel backends (V(ipset), V(nftables), V(ufw), V(firewalld), V(xdp)) whose records this host's state
      directory holds, with entries in force, which a switch of the host's backend left behind. The push play
      removes what they installed once this task succeeded (docs/backends.md, "Switching backends").
  returned: with O(state=present), when there are any
  type: list
  elements: str
removed_files:
  description:
    - With O(state=absent), the files removed with the set (its record and entries, its save file, and the boot unit
      of O(restore_unit) once no other set's save file is beside it; its C(multi-user.target.wants) link with it).
      The lock file and the state directory, if then empty, go too.
  returned: with O(state=absent)
  type: list
  elements: str
restore_unit_changed:
  description: The unit of O(restore_unit) was installed or updated (or would be, in check mode).
  returned: when it was
  type: bool
sets:
  description: With O(sets), each set's result (C(name), C(changed), C(added), C(removed), C(total) and the rest).
  returned: with O(sets)
  type: list
  elements: dict
elapsed:
  description:
    - The call's own time in seconds, from the module's start on the host to its result, under whatever load the
      host had; the per-host summary of the push play shows it.
  returned: always
  type: float
  sample: 0.42
metrics:
  description:
    - With O(metrics_textfile), whether it was written (C(written)), where (C(path)), why not (C(skipped), its
      directory missing) and per set its entries and drops (C(sets)).
  returned: when O(metrics_textfile) is set and the sync succeeded
  type: dict
protected:
  description:
    - The entries that covered an address lockout protection keeps reachable (at most 20), each with what it
      covered and how many networks replaced it.
  returned: when an entry covered a protected address
  type: list
  elements: dict
protected_count:
  description: How many entries covered a protected address.
  returned: when an entry covered a protected address
  type: int
refused:
  description: Why a change larger than O(max_change_percent) was not applied.
  returned: when the change was refused
  type: str
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
  description: Whether a new trie was filled and switched in, rather than the live trie edited.
  returned: success
  type: bool
verified:
  description: Whether the change was computed against a full listing of the live set.
  returned: success
  type: bool
rules_changed:
  description: What changed in where the program runs (C(attach on eth0 (native mode)), C(detach from eth1 ...)).
  returned: with O(state=present), or when the program was detached
  type: list
  elements: str
attached:
  description:
    - Per interface the program runs on, its mode after the run (V(native) where the driver has XDP, V(generic)
      otherwise); in check mode, what it would be.
  returned: with O(state=present)
  type: dict
persist_created:
  description: The save file of O(persist_file) did not exist before this run and was written.
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
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.command_runner import run_tool
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.module_support import (
    SET_OPTIONS, SYNC_ARGUMENT_SPEC, SYNC_MUTUALLY_EXCLUSIVE, run_sync, sets_argument_spec,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_xdp import XdpAdapter, XdpRules
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.xdp_attach import default_route_interfaces


def main():
    argument_spec = dict(
        name=dict(type='str'),
        type=dict(type='str', default='ipv4_addr', choices=['ipv4_addr', 'ipv6_addr']),
        pin_dir=dict(type='path', default='/sys/fs/bpf/fleetwall'),
        interfaces=dict(type='list', elements='str'),
        attach_mode=dict(type='str', default='auto', choices=['auto', 'native', 'generic']),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        persist_file=dict(type='path'),
        restore_unit=dict(type='path'),
    )
    argument_spec.update(SYNC_ARGUMENT_SPEC)
    argument_spec['sets'] = sets_argument_spec(argument_spec, SET_OPTIONS + ('type',))
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=SYNC_MUTUALLY_EXCLUSIVE + [('name', 'sets')],
                           required_one_of=[('name', 'sets')], supports_check_mode=True)
    ip_bin = module.get_bin_path('ip', required=True)
    interfaces = module.params['interfaces']
    if interfaces == [] and module.params['state'] == 'present':
        # An empty list would detach the program everywhere and call it success.
        module.fail_json(msg='interfaces is empty: list the interfaces to attach the XDP program to, or leave it out '
                             'for those of the default routes')
    if interfaces is None:
        interfaces = default_route_interfaces(run_tool, ip_bin)
        if not interfaces and module.params['state'] == 'present':
            module.fail_json(msg='the host has no default route, so no interface to attach the XDP program to: '
                                 'set interfaces (xdp_interfaces with the role)')

    def build(params):
        adapter = XdpAdapter(params['name'], params['type'], params['pin_dir'], interfaces, params['attach_mode'],
                             lock_dir=params['state_dir'])
        # Where the program runs is the set's rules: attached after its trie exists, detached before it goes.
        params['rules'] = [{'interface': name} for name in interfaces] if params['state'] == 'present' else None
        return adapter, XdpRules(run_tool, ip_bin, adapter), None

    run_sync(module, build)


if __name__ == '__main__':
    main()
