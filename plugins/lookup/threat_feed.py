# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: threat_feed
short_description: Read a threat feed and return its validated, aggregated entries
version_added: 0.1.0
author:
  - fleetwall.blocklist contributors
description:
  - Fetches each term (an HTTP(S) URL, a C(file://) URL or a path on the controller), parses it with the
    same parser as the C(shadow_copy) role, refuses dangerous entries and returns the entries as CIDR strings.
  - For big feeds prefer the C(fleetwall.blocklist.shadow_copy) role, which writes files instead of
    carrying a million strings through templating.
  - A failure (unreachable, HTTP error, HTML instead of a list, too many invalid lines) raises a clear error.
options:
  _terms:
    description: URLs or paths of feeds.
    required: true
    type: list
    elements: str
  format:
    description: Feed format; V(ipsum) requires the count column.
    type: str
    default: auto
    choices: [auto, plain, netset, ipsum, spamhaus_drop]
  min_count:
    description: For ipsum-style lines, skip entries with a lower count.
    type: int
  headers:
    description: Extra HTTP headers (for example an API key).
    type: dict
    default: {}
  timeout:
    description: Seconds per HTTP attempt.
    type: int
    default: 30
  retries:
    description: Extra attempts after a server error or a connection failure.
    type: int
    default: 2
  validate_certs:
    description: Verify TLS certificates.
    type: bool
    default: true
  max_invalid_fraction:
    description: Share of invalid lines above which the feed is an error.
    type: float
    default: 0.1
  family:
    description: Return only IPv4 (V(v4)), only IPv6 (V(v6)) or both (V(any)).
    type: str
    default: any
    choices: [any, v4, v6]
  aggregate:
    description: Merge overlapping and adjacent networks into the fewest CIDRs.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Block the ipsum level 3 list on a few hosts
  fleetwall.blocklist.ipset_sync:
    name: ipsum
    entries: "{{ lookup('fleetwall.blocklist.threat_feed', 'https://mirror.example.internal/ipsum.txt',
                        format='ipsum', min_count=3, family='v4') }}"
'''

RETURN = r'''
_raw:
  description: The feed's entries as canonical addresses and CIDRs, IPv4 first.
  type: list
  elements: str
'''

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.addresses import (
    V4, V6, BITS, merge_keys, ranges_to_networks, format_network,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.feeds import FeedError, parse_feed
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.fetch import FetchError, fetch


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        versions = {'any': (V4, V6), 'v4': (V4,), 'v6': (V6,)}[self.get_option('family')]
        keys = {V4: [], V6: []}
        for term in terms:
            is_url = '://' in term
            try:
                body = fetch(url=term if is_url else None, path=None if is_url else term,
                             headers=self.get_option('headers'), timeout=self.get_option('timeout'),
                             retries=self.get_option('retries'),
                             validate_certs=self.get_option('validate_certs'))
                parsed = parse_feed(body, name=term if not is_url else term.split('?')[0],
                                    fmt=self.get_option('format'), min_count=self.get_option('min_count'),
                                    max_invalid_fraction=self.get_option('max_invalid_fraction'))
            except (FetchError, FeedError) as exc:
                raise AnsibleLookupError('threat_feed: %s' % exc)
            for version in versions:
                keys[version].extend(parsed.keys[version])
        out = []
        for version in versions:
            if self.get_option('aggregate'):
                ranges = merge_keys(keys[version])
                out.extend(format_network(version, start, prefixlen)
                           for start, prefixlen in ranges_to_networks(ranges, BITS[version]))
            else:
                bits = BITS[version]
                out.extend(format_network(version, key >> 8, bits - (key & 0xff))
                           for key in sorted(set(keys[version])))
        return out
