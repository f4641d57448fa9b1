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
  - fleetwall.blocklist contributors
attributes:
  check_mode:
    support: full
    details:
      - Fetches and reports what would be published. The would-be generation is written to the scratch
        directory O(dest)/C(preview) so that a C(--check --diff) push can show each host its exact diff;
        C(current), the generations and the feed cache are not touched.
  diff_mode:
    support: none
options:
  dest:
    description: Directory of the shadow copy.
    type: path
    required: true
  feeds:
    description: The feeds to merge.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Unique name of the feed (letters, digits, C(_ . -)); names its cache files.
        type: str
        required: true
      url:
        description: HTTP(S) or C(file://) URL. Mutually exclusive with O(feeds[].path).
        type: str
      path:
        description: Local file on the host that builds the copy.
        type: path
      format:
        description:
          - V(auto) reads plain lists, FireHOL netsets, Spamhaus DROP text and ipsum lines alike.
          - V(ipsum) requires the count column, so O(feeds[].min_count) applies to every line.
        type: str
        choices: [auto, plain, netset, ipsum, spamhaus_drop]
        default: auto
      min_count:
        description: For ipsum-style C(IP<TAB>count) lines, skip entries listed by fewer sources.
        type: int
      headers:
        description: Extra HTTP headers, for example an API key. Never logged.
        type: dict
      timeout:
        description: Seconds per HTTP attempt.
        type: int
        default: 30
      retries:
        description: Extra attempts after a server error or a connection failure, with exponential backoff.
        type: int
        default: 2
      validate_certs:
        description: Verify the server's TLS certificate.
        type: bool
        default: true
      max_invalid_fraction:
        description: Share of invalid lines above which the feed counts as broken (and its last good copy is used).
        type: float
        default: 0.1
      allow_empty:
        description: Accept a body with no entries. Otherwise an empty body is a failed fetch.
        type: bool
        default: false
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
    type: list
    elements: str
    default: [unspecified, private, shared, loopback, link_local, multicast, reserved, ipv4_mapped]
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
    description: Mode of the published files.
    type: raw
    default: '0644'
seealso:
  - module: fleetwall.blocklist.ipset_sync
  - plugin: fleetwall.blocklist.threat_feed
    plugin_type: lookup
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
published:
  description: Whether a new generation was published by this run.
  returned: always
  type: bool
generation:
  description: The current generation after this run (new or previous); null when none was ever published.
  returned: always
  type: int
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
  sample: {v4: 14120, v6: 51}
feeds:
  description: Per-feed status (V(fresh), V(cached) or V(failed)), error, age and counts.
  returned: always
  type: list
  elements: dict
refused:
  description: Refused entries counted by reason.
  returned: always
  type: dict
  sample: {"private 10.0.0.0/8": 1}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.shadow_copy import (
    ShadowCopyError, build_shadow_copy,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type='path', required=True),
            feeds=dict(type='list', elements='dict', required=True, options=dict(
                name=dict(type='str', required=True),
                url=dict(type='str'),
                path=dict(type='path'),
                format=dict(type='str', default='auto', choices=['auto', 'plain', 'netset', 'ipsum', 'spamhaus_drop']),
                min_count=dict(type='int'),
                headers=dict(type='dict', no_log=True),
                timeout=dict(type='int', default=30),
                retries=dict(type='int', default=2),
                validate_certs=dict(type='bool', default=True),
                max_invalid_fraction=dict(type='float', default=0.1),
                allow_empty=dict(type='bool', default=False),
            ), mutually_exclusive=[('url', 'path')], required_one_of=[('url', 'path')]),
            allowlist=dict(type='list', elements='str', default=[]),
            refused_categories=dict(type='list', elements='str',
                                    default=['unspecified', 'private', 'shared', 'loopback', 'link_local',
                                             'multicast', 'reserved', 'ipv4_mapped']),
            min_prefix_v4=dict(type='int', default=8),
            min_prefix_v6=dict(type='int', default=19),
            max_shrink_percent=dict(type='float', default=50),
            force=dict(type='bool', default=False),
            keep_generations=dict(type='int', default=10),
            file_mode=dict(type='raw', default='0644'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not 0 <= p['min_prefix_v4'] <= 32 or not 0 <= p['min_prefix_v6'] <= 128:
        module.fail_json(msg='min_prefix_v4 must be 0-32 and min_prefix_v6 0-128')
    if not 0 <= p['max_shrink_percent'] <= 100:
        module.fail_json(msg='max_shrink_percent must be between 0 and 100')
    if p['keep_generations'] < 1:
        module.fail_json(msg='keep_generations must be at least 1')
    for feed in p['feeds']:
        if feed['timeout'] <= 0 or feed['retries'] < 0:
            module.fail_json(msg='feed %s: timeout must be positive and retries not negative' % feed['name'])
        if not 0 <= feed['max_invalid_fraction'] <= 1:
            module.fail_json(msg='feed %s: max_invalid_fraction must be between 0 and 1' % feed['name'])
    try:
        file_mode = int(str(p['file_mode']), 8)
    except ValueError:
        module.fail_json(msg='file_mode must be an octal mode such as 0644')
    try:
        result = build_shadow_copy(
            p['dest'], p['feeds'], allowlist=p['allowlist'], refused_categories=p['refused_categories'],
            min_prefix={4: p['min_prefix_v4'], 6: p['min_prefix_v6']},
            max_shrink_percent=p['max_shrink_percent'], force=p['force'],
            keep_generations=p['keep_generations'], check_mode=module.check_mode, file_mode=file_mode)
    except ShadowCopyError as exc:
        module.fail_json(msg=str(exc))
    for warning in result.pop('warnings'):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
