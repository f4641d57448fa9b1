# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):

    # The entries options of every module that makes something hold exactly a list of
    # entries, kernel set or file (fleetwall.blocklist.sync.entries).
    ENTRIES = r'''
options:
  entries_file:
    description:
      - Path on the target of a file with one address or CIDR per line.
      - Blank lines and lines starting with C(#) are ignored.
      - Mutually exclusive with O(entries) and O(src).
    type: path
  entries:
    description:
      - The entries as a list, for small sets.
      - Mutually exclusive with O(entries_file) and O(src).
    type: list
    elements: str
  src:
    description:
      - Path on the B(controller) of the entries file, handled by the action plugin.
      - The file is sent to the target only when its sha256 differs from what the target last applied,
        so a run with no change costs one round trip and no transfer.
      - Mutually exclusive with O(entries_file) and O(entries).
    type: path
  entries_sha256:
    description:
      - Expected sha256 of the entries. The action plugin sets this for O(src); you rarely need it.
      - Without O(entries_file) or O(entries), the module reuses the entries it last applied if their sha256 matches,
        and otherwise returns RV(upload_required=true) without changing anything.
    type: str
  entries_zlib:
    description:
      - The entries file's bytes, zlib-compressed and base64-encoded. The action plugin sends O(src) this way
        when the target lacks it; you rarely need it.
      - Mutually exclusive with O(entries_file), O(entries) and O(src).
    type: str
  diff_sample:
    description:
      - How many added and removed entries the diff shows. The diff always shows the counts.
    type: int
    default: 20
  state_dir:
    description:
      - Directory on the target for the record of what was applied, and the lock that serialises runs.
    type: path
    default: /var/lib/fleetwall
  lock_timeout:
    description:
      - Seconds to wait for another run on the same set to finish before failing.
    type: int
    default: 120
'''

    # Options shared by every module that syncs a kernel set with the engine; those modules
    # take fleetwall.blocklist.sync.entries too. (A plain string: ansible-test reads these
    # assignments without running them.)
    DOCUMENTATION = r'''
options:
  verify:
    description:
      - Compare against a full listing of the live kernel object even when the record of the last apply
        matches it (same type and element count).
      - Without this, a change is still computed against the live object whenever the record does not match it.
    type: bool
    default: false
  verify_interval:
    description:
      - Seconds. Do the O(verify) comparison anyway when the last one is older than this, so drift made by hand
        is found and repaired within that time. Useful where a full listing is expensive (nftables).
    type: int
  full_reload_fraction:
    description:
      - When added plus removed entries exceed this fraction of the new total, the whole set is rebuilt
        and swapped in atomically instead of being patched.
    type: float
    default: 0.2
'''

    # The change-size guard, for every module that makes something hold exactly a list of entries.
    CHANGE_GUARD = r'''
options:
  max_change_percent:
    description:
      - Refuse to apply a change (entries added plus removed) larger than this percentage of the entries the
        set holds now, unless O(force_change). The module then applies nothing, warns, and returns
        RV(refused) with the reason; the counts and the diff show what would have changed. A set that is
        empty or does not exist yet takes any change.
      - A guard against a generation that is wrong in a way the shadow copy's own guards cannot see, applied
        per host (a canary batch with a small value, say).
    type: float
    version_added: 0.4.0
  force_change:
    description: Apply a change larger than O(max_change_percent).
    type: bool
    default: false
    version_added: 0.4.0
  allow_empty:
    description:
      - Let a change empty what holds entries now. Without it such a change is refused (RV(refused)), whatever
        the size of the set and whether or not O(max_change_percent) is set. The shadow copy never publishes an
        empty generation over a non-empty one; an empty or truncated file arriving here means something
        went wrong on the way.
    type: bool
    default: false
    version_added: 0.5.0
  min_prefix_v4:
    description:
      - Refuse the entries, and apply none of them, when one is an IPv4 network broader than this prefix
        length, as the shadow copy's build refuses it
        (its O(fleetwall.blocklist.shadow_copy_build#module:min_prefix_v4)).
        With C(src), the action plugin takes the value the generation's manifest records unless the task sets it.
    type: int
    default: 8
    version_added: 0.5.0
  min_prefix_v6:
    description: The same for IPv6 networks.
    type: int
    default: 19
    version_added: 0.5.0
'''

    # Lockout protection, for every module that makes something hold exactly a list of entries.
    PROTECT = r'''
options:
  lockout_protection:
    description:
      - Never block this host's lifelines. Before applying, the module takes out of the entries the client
        address of the SSH session it runs under (the controller or the AWX execution node; found in the
        module's environment, or in the login session's when become reset it), every address of the host
        (C(ip addr)) and its default gateways (C(ip route)), as well as O(protect).
      - An entry that covers one of them is replaced by the fewest networks covering the rest of it, so
        everything else in it stays blocked; the module warns, naming the entries and what they covered, and
        returns them as RV(protected).
      - Entries already applied under the same protected addresses are not checked again, so a small change
        costs a small check.
    type: bool
    default: true
    version_added: 0.5.0
  protect:
    description:
      - Addresses, CIDR networks or C(FIRST-LAST) ranges never to block on this host, whatever the entries
        say; applied even with O(lockout_protection=false). The roles pass the shadow copy's allowlist.
    type: list
    elements: str
    default: []
    version_added: 0.5.0
'''

    # The metrics written in the same call, for every module that makes something hold a list of entries.
    METRICS = r'''
options:
  metrics_textfile:
    description:
      - After a successful sync, rewrite this node_exporter textfile in the same call, as
        M(fleetwall.blocklist.metrics_textfile) writes it (every set O(state_dir) records, and the drops of the
        rules that enforce them), and return it as RV(metrics). A separate metrics task would cost every host
        one more round trip.
      - Not written in check mode or when the sync failed, so the last-sync time in the file grows old.
    type: path
    version_added: 0.5.0
  metrics_create_dir:
    description: Create the directory of O(metrics_textfile) when it is missing; otherwise nothing is written there.
    type: bool
    default: false
    version_added: 0.5.0
  metrics_generation:
    description: The shadow copy generation this run pushed, for the C(fleetwall_generation) metric.
    type: int
    version_added: 0.5.0
'''

    ATTRIBUTES = r'''
attributes:
  check_mode:
    support: full
    details:
      - The diff is computed against the live state (the kernel set, or the rules or include file); nothing is
        changed.
  diff_mode:
    support: full
    details:
      - The diff shows counts and a sample of added and removed entries, never the whole list.
  platform:
    platforms: linux
'''

    # Every module whose entries the action plugin can send from the controller (O(src)).
    ACTION = r'''
attributes:
  action:
    support: full
    description: The action plugin handles O(src).
'''
