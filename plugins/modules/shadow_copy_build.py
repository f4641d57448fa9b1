#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: shadow_copy_build
short_description: Build the fleet's validated, versioned blocklist from threat feeds
version_added: 0.1.0
description:
  - Fetches every feed once, parses and validates it, refuses dangerous entries, merges all feeds,
    subtracts the allowlist exactly, aggregates into the fewest CIDRs and publishes a new generation
    (C(blocklist_v4.txt), C(blocklist_v6.txt), C(manifest.json)) under O(dest)/C(current).
  - Fail-safe. A feed that fails is replaced by its last good copy, and the task says so. A new copy that
    shrank by more than O(max_shrink_percent) is not published unless O(force). An empty copy never
    replaces a non-empty one. In each case the previous generation stays current.
  - Normally run once per play on the controller (C(delegate_to=localhost), C(run_once=true)), which is
    what the C(fleetwall.blocklist.shadow_copy) role does.
author:
  - fleetwall.blocklist contributors (@fleetwall)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  # The feeds option: a feed's settings are documented once, with the threat_feed lookup's.
  - fleetwall.blocklist.feed.build_feeds
  - fleetwall.blocklist.feed.build_allow_feeds
attributes:
  check_mode:
    support: full
    details:
      - Fetches and reports what would be published. The would-be generation is written to the scratch
        directory O(dest)/C(preview) so that a C(--check --diff) push can show each host its exact diff;
        C(current) and the generations are not touched.
      - What a preview downloads goes to the feed cache, as a real run's would, so that a run within the feed's
        C(min_interval) after it uses that copy and spends no more of the provider's quota.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  dest:
    description: Directory of the shadow copy.
    type: path
    required: true
  allowlist:
    description:
      - Addresses, CIDRs or C(first-last) ranges never to block. They are subtracted exactly
        (a /16 minus one /32 becomes the 16 CIDRs that cover the rest).
    type: list
    elements: str
    default: []
  refused_categories:
    description:
      - Special-purpose ranges that are refused, with every refusal counted in the manifest.
      - Add V(documentation) or V(benchmarking) to refuse those too.
      - V(ipv4_embedded) judges an entry in an IPv6 prefix that carries an IPv4 address (6to4 C(2002::/16),
        NAT64 C(64:ff9b::/96), IPv4-compatible C(::/96), Teredo C(2001::/32)) by the IPv4 rules on the network
        it embeds, with O(min_prefix_v4) and these categories, and refuses an entry covering such a prefix
        whole; C(2002:c0a8:101::1) is refused as C(6to4 of private 192.168.0.0/16).
    type: list
    elements: str
    default: [unspecified, private, shared, loopback, link_local, multicast, reserved, ipv4_mapped, ipv4_embedded]
  min_prefix_v4:
    description: IPv4 networks broader than this prefix length are refused.
    type: int
    default: 8
  min_prefix_v6:
    description: IPv6 networks broader than this prefix length are refused.
    type: int
    default: 19
  max_shrink_percent:
    description: A new generation with this much fewer entries than the current one is not published unless O(force).
    type: float
    default: 50
  force:
    description: Publish despite the shrink guard. An empty copy still never replaces a non-empty one.
    type: bool
    default: false
  keep_generations:
    description: How many generations to keep for rollback.
    type: int
    default: 10
  file_mode:
    description:
      - Mode of the published files, as a string of octal digits (V('0644')), or as an integer taken as the mode
        itself (what YAML makes of an unquoted V(0644)).
    type: raw
    default: '0644'
  presets:
    description:
      - Extra provider presets by name, in the shape of the built-in ones (see C(docs/presets/README.md));
        they win over built-in presets of the same name.
    type: dict
    default: {}
  tiers:
    description: Score thresholds of the two tiers, for scored feeds with O(feeds[].tier=auto).
    type: dict
    default: {block: 90, challenge: 50}
    suboptions:
      block:
        description: Entries scored at least this go to the block tier (C(blocklist_v*.txt)), which every backend enforces.
        type: float
        default: 90
      challenge:
        description:
          - Entries scored at least this (and below O(tiers.block)) go to the challenge tier
            (C(challenge_v*.txt)), which web backends may challenge and kernel backends ignore.
        type: float
        default: 50
  provenance:
    description:
      - Write C(provenance.tsv.gz) into each generation, listing every network the feeds gave with the
        feeds that listed it and its best score. It is written in a child process beside the merge.
    type: bool
    default: true
  mirror_dir:
    description:
      - Also publish the current generation to this directory (same layout, same atomic C(current) switch,
        the last two generations kept), for other tools to read.
    type: path
  signing_key:
    description:
      - A secret kept outside the shadow directory (an Ansible Vault variable, an AWX credential). Each published
        generation then carries C(manifest.sig), the HMAC-SHA256 of its manifest, which lists every file's
        sha256; the push (the C(verified_generation) filter) refuses a generation whose signature does not match.
      - It protects against whoever can write the shadow directory but does not hold the key. It does not protect
        against a build host or controller that holds the key, nor against a feed that is itself wrong.
      - A current generation without a valid signature (the key was just set) is signed by the next build, once
        its files match its manifest.
    type: str
    version_added: 0.5.0
  fleet_local:
    description:
      - Add the fleet's own fail2ban bans as the feed C(fleet_local), with the same refusals and allowlist as
        every other feed. Its sightings (address, host, jail, when) are remembered in C(fleet_local.json) under
        O(dest), and each generation carries the enforced ones, with their provenance, in its own
        C(fleet_local.json).
      - Fleet-local entries expire by design, so the empty and shrink guards count only the other feeds' share.
      - Unset, no fleet-local feed is built (and remembered sightings are left alone).
    type: dict
    version_added: 0.4.0
    suboptions:
      harvest:
        description:
          - The bans in force on each host, a dictionary from host name to what C(fleetwall.blocklist.fail2ban_bans)
            returned there (or just its list of bans, each with C(address), C(jail) and C(banned_at)). Bans that
            are not a valid address or network are counted and ignored; a host whose result says it could not
            read fail2ban is named in RV(fleet_local) (as C(hosts_unavailable)).
          - Null when no harvest ran this time. Remembered sightings are then used, and still expire.
        type: dict
      expiry:
        description:
          - Seconds after which a sighting that no harvest has seen again is forgotten. An address stays
            in the copy while any of its sightings lasts.
          - A sighting goes sooner, at the first harvest that reads its host and finds the ban no longer in force
            there (fail2ban's ban ended, or it was lifted by hand), so an unban on the host that banned lifts the
            block fleet-wide. A host that could not be read, or is missing from O(fleet_local.harvest)
            (unreachable), keeps its sightings until this expiry.
        type: int
        default: 86400
      min_hosts:
        description:
          - Block an address fleet-wide only when this many distinct hosts have banned it. Sightings below it
            are remembered (and expire) but not enforced; see the C(pending_min_hosts) count.
        type: int
        default: 1
      tier:
        description: The tier fleet-local entries go to.
        type: str
        choices: [block, challenge]
        default: block
      jails:
        description: Only bans from these jails. By default every jail.
        type: list
        elements: str
        default: []
  operator_request:
    description:
      - An operator's own time-limited entry, added (or extended, or ended early with O(operator_request.ttl=0))
        before the build. An V(unblock) keeps the entry out of every tier, as the allowlist does; a V(block) adds it
        to the block tier as the feed C(operator), with the refusals every feed meets.
      - Entries live in C(operator_entries.json) under O(dest), with a log of every change (who, when, why, until
        when). Every build, with or without a request, applies the entries in force and drops the expired ones, so
        an entry ends at the first build after its expiry. C(playbooks/unblock.yml) and C(block.yml) set it.
    type: dict
    version_added: 0.5.0
    suboptions:
      action:
        description: V(unblock) or V(block).
        type: str
        required: true
        choices: [block, unblock]
      entry:
        description: An address or a CIDR network.
        type: str
        required: true
      ttl:
        description: How long it lasts - seconds, or a number with V(s), V(m), V(h), V(d) or V(w) (V(24h)); at most a
          year. V(0) ends the entry of that action now.
        type: str
        required: true
      reason:
        description: Why, for the log and for C(playbooks/explain.yml).
        type: str
        required: true
      by:
        description: Who asked; by default the user the build runs as. The playbooks pass AWX's C(awx_user_name).
        type: str
  offline:
    description:
      - Answer every feed from its cached copy and ask no provider, so that an operator's entry is published at
        once and no rate limit is spent. A feed without a cached copy counts as failed.
    type: bool
    default: false
    version_added: 0.5.0
seealso:
  - module: fleetwall.blocklist.ipset_sync
  - plugin: fleetwall.blocklist.threat_feed
    plugin_type: lookup
  - module: fleetwall.blocklist.fail2ban_bans
'''

EXAMPLES = r'''
- name: Build the shadow copy once, on the controller
  fleetwall.blocklist.shadow_copy_build:
    dest: /var/lib/fleetwall/shadow_copy
    feeds:
      - name: spamhaus_drop
        url: https://mirror.example.internal/drop.txt
      - name: ipsum
        url: https://mirror.example.internal/ipsum.txt
        format: ipsum
        min_count: 3
    allowlist:
      - 192.0.2.10
  delegate_to: localhost
  run_once: true
'''

RETURN = r'''
stale_feeds:
  description:
    - The feeds whose copy is older than their O(feeds[].max_age), or that have no copy at all, each with C(name),
      C(status), C(age_seconds) (null without a copy), C(max_age) and C(error). The module does not fail for them;
      the C(fleetwall.blocklist.shadow_copy) role fails the run at its end.
  returned: success
  type: list
  elements: dict
  version_added: 0.5.0
published:
  description: Whether a new generation was published by this run.
  returned: always
  type: bool
generation:
  description: The current generation after this run (new or previous); null when none was ever published.
  returned: always
  type: int
scopes:
  description:
    - The feeds scoped to ports (C(docs/scopes.md)), as the manifest lists them; each with C(name), C(kind)
      (V(block) or V(admit)), C(protocol), C(ports), C(feeds), C(files) and C(entries) per family.
  returned: always
  type: list
  elements: dict
  version_added: 0.5.0
withheld:
  description: Why a new generation was not published (shrink guard, empty copy, no usable feed), or null.
  returned: always
  type: str
path:
  description: Path of the C(current) link, holding C(blocklist_v4.txt), C(blocklist_v6.txt) and C(manifest.json).
  returned: always
  type: str
entries:
  description: Entries of the copy built by this run, per family.
  returned: always
  type: dict
  sample: {v4: 14120, v6: 51, challenge_v4: 830, challenge_v6: 0}
generation_path:
  description:
    - The directory of the generation that hosts should receive (C(generations/N) resolved, or C(preview) in
      check mode); unlike O(dest)/C(current) it does not move if another build publishes meanwhile.
  returned: when a generation exists
  type: str
mirrored:
  description: Whether the mirror directory was updated by this run.
  returned: always
  type: bool
feeds:
  description:
    - Per-feed status (V(fresh), V(cached) or V(failed)), the reason a cached copy was used, the error and
      its kind (V(auth), V(rate_limited), V(http), V(truncated), V(network), V(content)), age, requests sent,
      and counts per tier.
  returned: always
  type: list
  elements: dict
refused:
  description: Refused entries counted by reason.
  returned: always
  type: dict
  sample: {"private 10.0.0.0/8": 1}
allowlist:
  description:
    - What the allowlist kept out of this run's copy, in addresses per family (C(v4), C(v6)) of the block tier
      (C(addresses_removed)) and the challenge tier (C(challenge_addresses_removed)), and how many ranges the
      allowlist is once merged (C(ranges)).
  returned: always
  type: dict
  sample: {ranges: 3, addresses_removed: {v4: 256, v6: 0}, challenge_addresses_removed: {v4: 0, v6: 0}}
  version_added: 0.5.0
allow_feeds:
  description:
    - Per allow source, its status as O(feeds) has it (V(fresh), V(cached) or V(failed), the reason, the error, the
      copy's C(age_seconds) and C(max_age), C(stale) when older than that), C(networks) (the ranges it lists, once
      merged), and what it kept out of this run's copy - C(addresses_removed) and C(entries_removed) (the feeds'
      networks it overlapped), counted over both tiers.
  returned: always
  type: list
  elements: dict
  version_added: 0.5.0
operator_entries:
  description:
    - The operators' entries in force after this build (C(in_force) - C(action), C(entry), C(by), C(reason), C(at),
      C(expires), epoch seconds) and what this run changed (C(events) - C(added), C(extended), C(ended) or
      C(expired), with who, when and why).
  returned: success
  type: dict
  version_added: 0.5.0
fleet_local:
  description:
    - With O(fleet_local), what the harvest did; the feed's own status is the C(fleet_local) item of RV(feeds).
    - C(entries) addresses the copy enforces (the generation's C(fleet_local.json) lists them), C(accepted)
      addresses the refusal table let through, C(refused) the others, C(allowlisted) accepted ones the allowlist
      kept out entirely, C(pending_min_hosts) below O(fleet_local.min_hosts), C(sightings) remembered, C(new)
      this run, C(unbanned) sightings dropped because their host, read this run, no longer bans them,
      C(expired) sightings not seen for O(fleet_local.expiry), C(hosts_harvested) (null without a harvest),
      C(hosts_unavailable) where fail2ban could not be read, C(invalid) bans ignored, C(feeds_entries) what the
      other feeds alone publish (what the guards compare).
  returned: when O(fleet_local) is set
  type: dict
  version_added: 0.4.0
'''

import os

from typing import NoReturn

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.fetch import SHORT_SECRET, Redactor
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import path_problem
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.presets import (
    PresetError, preset_secrets, resolve_feed, spec_secrets,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (
    ShadowCopyError, build_shadow_copy,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy_options import (
    ARGUMENT_SPEC, file_mode_of, option_problem,
)


def feed_secrets(feeds, presets):
    """Every secret of the feeds (presets.resolve_feed says which) and the literal tokens of the operator's presets."""
    secrets = preset_secrets(presets)
    for feed in feeds:
        try:
            secrets.extend(resolve_feed(feed, presets)[1])
        except PresetError:
            # The build refuses this feed and says why; what the operator wrote in it is secret all the same.
            secrets.extend(spec_secrets(feed))
    return secrets


def check_paths(params, fail):
    """Before anything is fetched or written: every path must be one a file can have, and the mirror a directory
    or nothing yet (a FIFO or a link loop there failed after the generation was published)."""
    named = [('dest', params['dest']), ('mirror_dir', params['mirror_dir'])]
    named += [('feed %s: path' % feed['name'], feed['path']) for feed in params['feeds']]
    for name, path in named:
        if path is not None and path_problem(path):
            fail('%s: %s' % (name, path_problem(path)))
    for name in ('dest', 'mirror_dir'):
        path = params[name]
        if path and os.path.lexists(path) and not os.path.isdir(path):
            fail('%s %s exists and is not a directory (or is a link that leads to none)' % (name, path))


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    # Unset options must not mask a preset's defaults.
    feeds = [{key: value for key, value in feed.items() if value is not None} for feed in p['feeds']]
    allow_feeds = [{key: value for key, value in feed.items() if value is not None} for feed in p['allow_feeds']]
    secrets = feed_secrets(feeds + allow_feeds, p['presets'])
    redactor = Redactor(secrets)
    # Ansible masks these as substrings of everything the module returns, so only secrets long enough not to occur
    # by chance (a 3-character one would be masked inside paths the role reads); the statuses mask every secret
    # themselves, as whole tokens. api_key's and headers' values are Ansible's already (no_log).
    module.no_log_values.update(secret for secret in secrets if len(secret) >= SHORT_SECRET)
    # What -vvv shows of the arguments: url and params carry query keys and user info that no option's no_log
    # covers, and an operator's preset may carry a literal token.
    invocation = {'module_args': dict(p, feeds=redactor.data(p['feeds']), allow_feeds=redactor.data(p['allow_feeds']),
                                      presets=redactor.data(p['presets']))}

    def fail(msg) -> NoReturn:
        module.fail_json(msg=redactor(msg), invocation=invocation)

    problem = option_problem(p)
    if problem:
        fail(problem)
    check_paths(p, fail)
    try:
        result = build_shadow_copy(
            p['dest'], feeds, allowlist=p['allowlist'], refused_categories=p['refused_categories'],
            min_prefix={4: p['min_prefix_v4'], 6: p['min_prefix_v6']},
            max_shrink_percent=p['max_shrink_percent'], force=p['force'],
            keep_generations=p['keep_generations'], check_mode=module.check_mode,
            file_mode=file_mode_of(p['file_mode']),
            presets=p['presets'], tiers=p['tiers'], provenance=p['provenance'], mirror_dir=p['mirror_dir'],
            fleet_local=p['fleet_local'], signing_key=p['signing_key'], operator_request=p['operator_request'],
            offline=p['offline'], allow_feeds=allow_feeds)
    except ShadowCopyError as exc:
        fail(str(exc))
    except OSError as exc:
        # Everything after the publish that can fail is a warning (the mirror), so this came before it.
        fail('the shadow copy in %s was not written: %s: %s; the previous generation is still current'
             % (p['dest'], exc.filename or 'I/O error', exc.strerror or exc))
    for warning in result.pop('warnings'):
        module.warn(redactor(warning))
    module.exit_json(invocation=invocation, **result)


if __name__ == '__main__':
    main()
