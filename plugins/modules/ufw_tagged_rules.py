#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: ufw_tagged_rules
short_description: Make the UFW rules carrying a comment tag match a list of addresses exactly, fast at 10k
version_added: 0.3.0
description:
  - Makes the set of UFW rules whose comment is O(tag) hold exactly one C(deny) (or C(reject)) rule per entry,
    for IPv4 and IPv6, and visible in C(ufw status). Rules without the tag are never touched, nor is their order.
  - Instead of one C(ufw insert) per address (each rewrites the rules file and reloads the chains, about 0.2 s
    a rule and growing), the module writes UFW's own rule files (C(user.rules), C(user6.rules)) as UFW writes
    them, loads each with one C(iptables-restore --noflush) (the chains are flushed and refilled in one commit),
    and checks that C(ufw status) reads every tagged rule back.
  - A rules file that UFW would not have written is reported and never overwritten. If loading fails, the
    previous files are put back and the running firewall is as it was.
  - When UFW is inactive the rules are written, nothing is loaded, and the module warns, unless O(enable=true).
author:
  - fleetwall.blocklist contributors (@fleetwall)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - fleetwall.blocklist.sync.entries
  - fleetwall.blocklist.sync.change_guard
  - fleetwall.blocklist.sync.protect
  - fleetwall.blocklist.sync.attributes
  - fleetwall.blocklist.sync.action
  - fleetwall.blocklist.sync.metrics
options:
  tag:
    description: The comment that marks the rules this module owns (C(ufw status) shows it after C(#)).
    type: str
    default: fleetwall
  rule:
    description: V(deny) drops silently; V(reject) answers (a TCP reset for TCP).
    type: str
    default: deny
    choices: [deny, reject]
  port:
    description: Block only this destination port (for example V(22)). Omit to block all traffic from the entries.
    type: int
  proto:
    description: Protocol of the blocked traffic. With O(port) and V(any), UFW makes a TCP and a UDP rule.
    type: str
    default: any
    choices: [any, tcp, udp]
  position:
    description:
      - Where the tagged rules go among the user rules. V(first) puts them before every other rule, so an
        C(allow 22/tcp) of the operator's does not let a listed address in; V(last) after them.
    type: str
    default: first
    choices: [first, last]
  families:
    description: Which rule files this task manages. The rules of a family not listed are left alone.
    type: list
    elements: str
    default: [v4, v6]
    choices: [v4, v6]
  enable:
    description:
      - Enable UFW if it is inactive. Refused when the default incoming policy is not ACCEPT and no rule allows
        the TCP port of the SSH session that runs the module (the lockout guard).
    type: bool
    default: false
  allow_ssh:
    description:
      - With O(enable), when UFW is inactive, first add UFW's C(allow <port>/tcp) rule for the port of the SSH
        session that runs the module (or O(ssh_port)), so enabling cannot lock the play out.
    type: bool
    default: false
  ssh_port:
    description: The SSH port for O(allow_ssh) and the lockout guard, when the module does not run over SSH.
    type: int
  apply_with:
    description:
      - V(restore) loads each changed rules file with one C(iptables-restore --noflush), in one commit.
      - V(reload) runs C(ufw reload), which disables and re-enables the whole firewall (open for the duration).
    type: str
    default: restore
    choices: [restore, reload]
  rules_dir:
    description: UFW's directory.
    type: path
    default: /etc/ufw
seealso:
  - module: fleetwall.blocklist.ipset_sync
'''

EXAMPLES = r'''
- name: The shadow copy's IPv4 entries as UFW deny rules, before the operator's allow rules
  fleetwall.blocklist.ufw_tagged_rules:
    tag: fleetwall
    families: [v4]
    src: /var/lib/fleetwall/shadow_copy/current/blocklist_v4.txt

- name: Only SSH, answered with a reset
  fleetwall.blocklist.ufw_tagged_rules:
    tag: fleetwall-ssh
    rule: reject
    port: 22
    proto: tcp
    entries: [203.0.113.7, 2001:db8::/48]
'''

RETURN = r'''
other_backends:
  description:
    - The other kernel backends (V(ipset), V(nftables), V(ufw), V(firewalld)) whose records this host's state
      directory holds, with entries in force, which a switch of the host's backend left behind. The push play
      removes what they installed once this task succeeded (docs/backends.md, "Switching backends").
  returned: when there are any, and the task applied entries
  type: list
  elements: str
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
  description: Whether the tagged rules changed (or would, in check mode).
  returned: always
  type: bool
added:
  description: Rules added.
  returned: success
  type: int
removed:
  description: Rules removed.
  returned: success
  type: int
total:
  description: Tagged rules after the run.
  returned: success
  type: int
ufw_active:
  description: Whether UFW was enforcing rules after the run.
  returned: success
  type: bool
rules_files:
  description: The rule files that were (or would be) rewritten.
  returned: success
  type: list
  elements: str
reloaded:
  description:
    - The rule files already held the entries but no record showed that the last apply finished (it was
      interrupted, or the state directory is new), so they were loaded into the running firewall again.
  returned: when it happened
  type: bool
  version_added: 0.5.0
transferred:
  description: The action plugin sent the entries of O(src) to the target in this run.
  returned: with O(src)
  type: bool
upload_required:
  description: The entries named by O(entries_sha256) are not on the target; the action plugin sends them.
  returned: when O(entries_sha256) is set alone and does not match
  type: bool
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.command_runner import run_tool
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.module_support import (
    FILE_SYNC_ARGUMENT_SPEC, SYNC_MUTUALLY_EXCLUSIVE, run_file_sync,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ufw import UfwTaggedRules


def main():
    argument_spec = dict(
        tag=dict(type='str', default='fleetwall'),
        rule=dict(type='str', default='deny', choices=['deny', 'reject']),
        port=dict(type='int'),
        proto=dict(type='str', default='any', choices=['any', 'tcp', 'udp']),
        position=dict(type='str', default='first', choices=['first', 'last']),
        families=dict(type='list', elements='str', default=['v4', 'v6'], choices=['v4', 'v6']),
        enable=dict(type='bool', default=False),
        allow_ssh=dict(type='bool', default=False),
        ssh_port=dict(type='int'),
        apply_with=dict(type='str', default='restore', choices=['restore', 'reload']),
        rules_dir=dict(type='path', default='/etc/ufw'),
    )
    argument_spec.update(FILE_SYNC_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=SYNC_MUTUALLY_EXCLUSIVE,
                           supports_check_mode=True)
    params = module.params
    tag = params['tag']
    if not tag or len(tag) > 200 or any(c in tag for c in '\'"\\') or not tag.isprintable():
        module.fail_json(msg='tag must be 1-200 printable characters without quotes or backslashes')
    # bool is an int to Python and to Ansible's check: port true would be written as 'True'.
    if params['port'] is not None and (isinstance(params['port'], bool) or not 0 < params['port'] < 65536):
        module.fail_json(msg='port %r is out of range 1-65535' % (params['port'],))
    bins = dict((tool, module.get_bin_path(tool, required=True))
                for tool in ('ufw', 'iptables', 'iptables-restore', 'ip6tables-restore'))
    families = sorted(set(int(f[1]) for f in params['families']))
    rules = UfwTaggedRules(run_tool, bins, rules_dir=params['rules_dir'], tag=tag,
                           action=params['rule'], proto=params['proto'], port=params['port'],
                           position=params['position'], families=families, apply_with=params['apply_with'])
    # The server port of the SSH session running this module, for the lockout guard.
    ssh_connection = os.environ.get('SSH_CONNECTION', '').split()
    ssh_port = ssh_connection[3] if len(ssh_connection) == 4 else params['ssh_port']

    def sync(lines, guard, vouched, withdraw):
        return rules.sync(lines, check_mode=module.check_mode, want_diff=module._diff,
                          diff_sample=params['diff_sample'], enable=params['enable'], ssh_port=ssh_port,
                          allow_ssh=params['allow_ssh'], guard=guard, vouched=vouched, withdraw=withdraw)

    run_file_sync(module, 'ufw', '%s-%s' % (tag.replace('/', '_'), ''.join(params['families'])), sync)


if __name__ == '__main__':
    main()
