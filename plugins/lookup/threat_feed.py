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
  - fleetwall.blocklist contributors (@fleetwall)
description:
  - Fetches each term (an HTTP(S) URL, a C(file://) URL or a path on the controller), parses it with the
    same parser as the C(shadow_copy) role, refuses dangerous entries and returns the entries as CIDR strings.
  - With O(preset), the provider's URL, auth header, format and query come from the preset and the terms may be
    omitted (a term then overrides the preset's URL, e.g. an internal mirror).
  - It has no cache, quota memory or fallback. Anything run on a schedule, or against a provider with a quota,
    belongs in the C(fleetwall.blocklist.shadow_copy) role, which fetches once and remembers.
  - For big feeds prefer the C(fleetwall.blocklist.shadow_copy) role, which writes files instead of
    carrying a million strings through templating.
  - A failure (unreachable, HTTP error, HTML instead of a list, too many invalid lines) raises a clear error.
extends_documentation_fragment:
  - fleetwall.blocklist.feed
options:
  _terms:
    description: URLs or paths of feeds. May be omitted with O(preset).
    type: list
    elements: str
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
- name: AbuseIPDB's blacklist, score 90 and up, as a list
  ansible.builtin.set_fact:
    abuse_entries: "{{ lookup('fleetwall.blocklist.threat_feed', preset='abuseipdb', api_key=vault_abuseipdb_key,
                              min_score=90) }}"

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
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.feed_options import (
    FETCH_AND_PARSE_OPTIONS, feed_problem,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.feeds import FeedError, parse_feed
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.fetch import (
    FetchError, fetch, redact, redact_url,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.presets import (
    PresetError, resolve_feed, spec_secrets,
)


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        versions = {'any': (V4, V6), 'v4': (V4,), 'v6': (V6,)}[self.get_option('family')]
        keys = {V4: [], V6: []}
        preset = self.get_option('preset')
        if not terms and not preset:
            raise AnsibleLookupError('threat_feed: give a feed URL or path, or a preset')
        # The lookup's settings are a feed's (feed_options): the fragment documents them with the defaults that
        # get_option applies, and feed_problem refuses what the build refuses.
        settings = {name: self.get_option(name) for name in FETCH_AND_PARSE_OPTIONS}
        problem = feed_problem(settings)
        if problem:
            raise AnsibleLookupError('threat_feed: %s' % problem)
        for term in terms or [None]:
            spec = dict(settings, name='threat_feed')
            if term is not None:
                spec['url' if '://' in term else 'path'] = term
            spec = {k: v for k, v in spec.items() if v is not None}
            # What the operator wrote, until the resolved feed says more (the preset's query, its headers).
            secrets = spec_secrets(spec)
            try:
                feed, secrets = resolve_feed(spec)
                body = fetch(url=feed.get('url'), path=feed.get('path'), headers=feed.get('headers'),
                             timeout=feed['timeout'], retries=feed['retries'], validate_certs=feed['validate_certs'],
                             secrets=secrets, deadline=feed['deadline'], max_bytes=feed['max_bytes'])
                shown = redact(redact_url(feed['url']), secrets) if feed.get('url') else feed.get('path')
                parsed = parse_feed(body, name=shown, fmt=feed.get('format') or 'auto',
                                    min_count=feed.get('min_count'), query=feed.get('query'),
                                    field=feed.get('field'), score_field=feed.get('score_field'),
                                    min_score=feed.get('min_score'),
                                    max_invalid_fraction=feed['max_invalid_fraction'],
                                    max_entries=feed['max_entries'],
                                    require_metadata=bool(feed.get('require_metadata')),
                                    countries=feed.get('countries'), asns=feed.get('asns'))
            except (FetchError, FeedError, PresetError) as exc:
                # from None: the exception under this one (urllib's HTTPError) may quote the provider's echo.
                raise AnsibleLookupError('threat_feed: %s' % redact(str(exc), secrets)) from None
            except Exception as exc:  # pylint: disable=broad-except
                # Anything else may quote the URL or a header; its message is shown, redacted, never its chain.
                raise AnsibleLookupError('threat_feed: %s: %s' % (type(exc).__name__, redact(str(exc), secrets))
                                         ) from None
            for version in versions:
                keys[version].extend(parsed.keys[version])
        out = []
        for version in versions:
            if self.get_option('aggregate'):
                ranges = merge_keys(keys[version], version)
                out.extend(format_network(version, start, prefixlen)
                           for start, prefixlen in ranges_to_networks(ranges, BITS[version]))
            else:
                bits = BITS[version]
                out.extend(format_network(version, key >> 8, bits - (key & 0xff))
                           for key in sorted(set(keys[version])))
        return out
