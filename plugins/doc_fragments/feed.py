# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A feed's options, documented once (their definition is module_utils/_blocklist/controller/feed_options.py).

Ansible merges a fragment into a plugin's top-level options only, so the settings are written here once, as YAML, and
placed twice: at the top level for the threat_feed lookup (DOCUMENTATION, ``fleetwall.blocklist.feed``), and as the
suboptions of shadow_copy_build's whole ``feeds`` option (BUILD_FEEDS, ``fleetwall.blocklist.feed.build_feeds``).
``O(feed.NAME)`` in a text names another setting of the same feed: it becomes ``O(NAME)`` for the lookup and
``O(feeds[].NAME)`` for the build. tests/unit/plugins/doc_fragments/test_feed_fragment.py holds both to the
definition.
"""

from __future__ import annotations

import textwrap

# How one fetch finds and reads a feed besides its URL or path (feed_options.FETCH_AND_PARSE_OPTIONS): the lookup's
# settings, and the build's.
FETCH_AND_PARSE_DOCS = r'''
preset:
  description:
    - A named provider preset that sets the URL, auth header, format, score query and the provider's recommended
      limits (the build's C(min_interval), C(max_age)). Settings given beside it win over the preset's.
    - Built in are V(abuseipdb), V(spamhaus_drop), V(firehol_level1), V(ipsum), V(bearer_list), V(sikkerapi),
      V(wayscloud) and V(tor_exits); the address plans V(rir_afrinic), V(rir_apnic), V(rir_arin), V(rir_lacnic),
      V(rir_ripencc) and V(ip2asn), with the ASN list V(spamhaus_asn_drop) for C(asns_from); and for allow sources
      V(cloudflare), V(aws), V(google), V(google_cloud) and V(github_meta); the build's
      O(fleetwall.blocklist.shadow_copy_build#module:presets) adds more.
      See C(docs/presets/).
  type: str
mode:
  description:
    - A variant of the preset, e.g. V(plaintext) for V(abuseipdb), V(v6) or V(text) for V(spamhaus_drop), V(v6) for
      V(cloudflare).
  type: str
api_key:
  description:
    - The provider's API key, put where the preset says (a header, usually). Never logged by the build, and replaced
      by C(********) in every message, status and file, however short it is, also where the provider echoes it.
  type: str
params:
  description:
    - Query parameters, merged over the preset's (null drops one). Parameters named in the URL as
      C({placeholder}) fill it instead, e.g. C(list_id) for V(bearer_list).
    - A preset's C(filters) and C(selects) are parameters that shape its JMESPath query instead, and are never
      sent, e.g. C(services) and C(regions) for V(aws), C(scopes) for V(google_cloud), C(keys) for V(github_meta)
      (a name or a list of names).
    - A query value that is not a plain number or boolean is treated as a secret and redacted from every
      message (see C(docs/feeds.md), Secrets); numbers and booleans (V(90), V(true)) are shown.
  type: dict
format:
  description:
    - Unset, the preset's format, else V(auto).
    - V(auto) reads plain lists, FireHOL netsets, Spamhaus DROP text and ipsum lines, and recognises
      JSON lines and Tor C(exit-addresses).
    - V(ipsum) requires the count column, so O(feed.min_count) applies to every line.
    - V(jsonl) reads one JSON object a line (Spamhaus C(drop_v4.json)); O(feed.field) names the
      address key (default C(cidr)). A metadata record (C(type) C(metadata)) is skipped and its record count checked.
    - V(json) applies the JMESPath O(feed.query) to the document.
    - V(csv) reads the column named by O(feed.field) (a header name, or a 0-based number).
    - V(rir_delegated) reads a Regional Internet Registry's statistics exchange file (plain or extended), the
      networks of the O(feed.countries) selected, C(allocated) and C(assigned) only; V(ip2asn) reads iptoasn.com's
      table, the networks of the O(feed.asns) (or O(feed.countries)) selected. Both need a selection, and are never
      guessed by V(auto). See C(docs/feeds.md), Countries and ASNs.
  type: str
  choices: [auto, plain, netset, ipsum, spamhaus_drop, jsonl, json, csv, tor_exits, rir_delegated, ip2asn]
query:
  description:
    - For V(json), a JMESPath expression yielding the addresses, or C([address, score]) pairs, or
      objects with C(address) (or C(ip)) and C(score). Example C(data[].[ipAddress, abuseConfidenceScore]).
  type: str
field:
  description: For V(csv) and V(jsonl), the address column or key.
  type: str
score_field:
  description: For V(csv) and V(jsonl), the score column or key.
  type: str
require_metadata:
  description:
    - For V(jsonl), the body must end with its metadata record (C(type) C(metadata), with the count of
      records in C(records)), as Spamhaus's files do, and hold that many records; a body without it was cut
      short and is a failed fetch.
    - The C(spamhaus_drop) preset sets it. A record count is checked whenever the record is there.
  type: bool
  version_added: 0.5.0
countries:
  description:
    - For V(rir_delegated) and V(ip2asn), the countries whose networks the feed gives (ISO 3166 codes, V(CN), any
      case). A feed of either format without a selection is refused, as it would block the whole Internet.
    - For V(ip2asn), the table's country column; a row is kept when its country or its AS is selected.
    - Blocking a country also blocks everyone travelling there, its VPN exits and its clouds. Never block countries
      on public-facing content; prefer the challenge tier (the build's C(tier) V(challenge)) or port scoping.
  type: list
  elements: str
  version_added: 0.5.0
asns:
  description:
    - For V(ip2asn), the AS numbers whose networks the feed gives, as V(13335), V("13335") or V(AS13335).
    - The build's C(asns_from) adds the AS numbers of another source (Spamhaus ASN-DROP) to them.
  type: list
  elements: raw
  version_added: 0.5.0
min_score:
  description: Drop scored entries below this score.
  type: float
min_count:
  description: For ipsum-style C(IP<TAB>count) lines, skip entries listed by fewer sources.
  type: int
headers:
  description:
    - Extra HTTP headers, sent only to the URL's origin (not after a redirect to another host).
    - Every value is a secret, whatever the header's name (V(X-Custom-Token) as much as V(Authorization)), and
      so is the token after a scheme (V(Bearer), V(Basic) decoded). Never logged by the build, and replaced by
      C(********) in every message, status and file.
  type: dict
timeout:
  description: Seconds each socket operation of an HTTP attempt may wait (connecting, each read).
  type: int
  default: 30
deadline:
  description:
    - Seconds the whole fetch of this feed may take (connecting, headers, the body, every retry and
      back-off together). A provider that sends a byte at a time cannot hold the run for longer; the
      fetch then fails (error kind C(deadline)).
    - V(0) turns the deadline off (then only O(feed.timeout) bounds each read).
  type: int
  default: 180
  version_added: 0.5.0
max_bytes:
  description:
    - The most bytes the body may have once decoded (gzip and deflate are expanded as a stream, never
      past this), for HTTP bodies and feed files alike. A larger body is a failed fetch (error kind
      C(too_large)). A 2 MB gzip body that expands to 2 GiB costs no more memory than this.
  type: int
  default: 268435456
  version_added: 0.5.0
max_entries:
  description:
    - The most entries a body may hold (lines, for the line-oriented formats; the query's results, for
      V(json)). A larger body is refused whole before it is parsed (error kind C(content)). The default is
      ten times the largest real feeds.
  type: int
  default: 2000000
  version_added: 0.5.0
retries:
  description: Extra attempts after a server error, a truncated body or a connection failure, with exponential backoff.
  type: int
  default: 2
validate_certs:
  description: Verify the server's TLS certificate.
  type: bool
  default: true
max_invalid_fraction:
  description: Share of invalid lines (V(0) to V(1)) above which the feed counts as broken, a failed fetch.
  type: float
  default: 0.1
'''

# What only a source of the build has (feed_options.SOURCE_OPTIONS): a name for its cache, its URL or path (the
# lookup's terms), and a memory of earlier fetches.
SOURCE_DOCS = r'''
name:
  description: Unique name of the feed (letters, digits, C(_ . -)); names its cache files.
  type: str
  required: true
url:
  description:
    - HTTP(S) or C(file://) URL. Overrides a preset's URL (e.g. to use an internal mirror).
    - Its user info (user and password) and its query values that are not plain numbers or booleans are
      secrets, and messages show the URL without them. They are logged to the building host's journal at the
      module's start, as every module argument that is not C(no_log); prefer O(feed.api_key) or
      O(feed.headers) for a key.
  type: str
path:
  description: Local file on the host that builds the copy. Mutually exclusive with O(feed.url).
  type: path
min_interval:
  description:
    - Seconds. A run sooner than this after the last successful contact reuses the cached copy and
      sends no request. Presets set the provider's recommendation.
  type: int
max_age:
  description:
    - Seconds. A feed whose copy is older than this (every fetch failed since), or that has no copy at all,
      is listed in RV(stale_feeds), and the C(fleetwall.blocklist.shadow_copy) role fails the run for it once
      the rest is published and pushed, so that a scheduled job alerts rather than only warns.
    - Two days by default (three for a preset fetched once a day); V(0) never fails for it. Keep it above
      O(feed.min_interval).
  type: int
  version_added: 0.5.0
max_wait:
  description:
    - Seconds a 429 may be waited out within this run. A longer reset falls back to the last good
      copy, and no request is sent before the reset on later runs.
  type: int
asns_from:
  description:
    - For an V(ip2asn) feed, another source whose AS numbers select the table's rows, with O(feed.asns) - a preset
      name (V(spamhaus_asn_drop)) or a feed definition (C(url), C(path) or C(preset), C(format) V(jsonl) or
      V(plain), C(field), C(headers), C(min_interval), ...).
    - It is fetched and cached as a feed is, under the name C(<name>.asns) (conditional requests, its own
      C(min_interval)); read as JSON lines (C(field), default C(asn), as Spamhaus ASN-DROP) or as lines of V(AS123)
      or V(123). A list that fails keeps its last good copy; without one the feed fails as a failed fetch does.
    - The feed's age (O(feed.max_age)) is that of the older of its two copies.
  type: raw
  version_added: 0.5.0
max_growth_factor:
  description:
    - A fetched body with more than this many times the entries of the feed's last good copy counts as
      broken (a list that suddenly carries a hundred times its usual size is an upstream fault or an
      attack), and the last good copy is used, with a warning; the other feeds are not held back.
    - V(0) turns the check off. A feed's first fetch has nothing to compare with and is accepted.
  type: float
  default: 10
  version_added: 0.5.0
allow_empty:
  description: Accept a body with no entries. Otherwise an empty body is a failed fetch.
  type: bool
  default: false
'''

# Where a threat feed's entries go (feed_options.TIER_OPTIONS).
TIER_DOCS = r'''
tier:
  description:
    - V(auto) puts scored entries in the block tier at or above O(tiers.block), in the challenge tier
      at or above O(tiers.challenge), and drops the rest; unscored entries go to the block tier.
    - V(block) or V(challenge) puts every entry of the feed in that tier.
    - V(admit_only) makes the feed's networks the only sources that may reach its O(feed.ports) (with the
      allowlist, and on each host what lockout protection keeps reachable). Admit-only feeds that share a port must
      name the same ports; they are then one list, their union. See C(docs/scopes.md).
  type: str
  choices: [auto, block, challenge, admit_only]
level:
  description: For the V(ipsum) preset, the same as O(feed.min_count).
  type: int
ports:
  description:
    - Scope the feed to these destination ports (at most 5), on the kernel backends that enforce rules by port
      (nftables). What it would block is then dropped on these ports only, in sets of its own, and the rest of the
      host's services still answer its networks. Meant for country and ASN feeds, which are too broad to drop whole.
    - Not with O(feed.tier=challenge), which the web tier enforces.
  type: list
  elements: int
protocol:
  description: The protocol of O(feed.ports). V(tcp) when not given.
  type: str
  choices: [tcp, udp]
'''

BUILD_ONLY_DOCS = SOURCE_DOCS + TIER_DOCS

# What only an allow source has (feed_options.ALLOW_ONLY_OPTIONS).
ALLOW_ONLY_DOCS = r'''
required:
  description:
    - An allow source that has never been fetched successfully stops the build - nothing is published (fail
      closed), because a CDN the source would keep reachable could otherwise be blocked by the first generation.
    - V(false) lets the build go on without it, with a warning.
  type: bool
  default: true
max_shrink_percent:
  description:
    - A fetched body with this much fewer entries (percent) than the source's last good copy counts as broken,
      and the last good copy is used, with a warning naming the source. A shrunk allow source unblocks nothing
      but can block a CDN, so the check is strict. V(0) refuses any shrink, V(100) accepts every one.
  type: float
  default: 10
'''

FEEDS_OPTION = r'''
options:
  feeds:
    description:
      - The feeds to merge. At least one, unless O(fleet_local) is set.
      - A feed that fails (any failed fetch below) is replaced by its last good copy, and the task says so.
    type: list
    elements: dict
    default: []
    suboptions:
'''

ALLOW_FEEDS_OPTION = r'''
options:
  allow_feeds:
    description:
      - Allow sources - the ranges that must stay reachable, published by their owners (CDNs, clouds, monitors) and
        kept current like the feeds. What they list is subtracted exactly from every tier, as O(allowlist) is, and
        both can be used together.
      - Each is a feed definition (a preset, a URL or a path, a format, a JMESPath query, headers and key,
        O(allow_feeds[].min_interval)), fetched and cached as a feed is. Their fail-safe runs the other way - a
        source that fails, answers an HTML page, cannot be parsed or shrank past its
        O(allow_feeds[].max_shrink_percent) keeps its last good copy, with a warning naming it; one never fetched
        successfully stops the build unless it says O(allow_feeds[].required=false).
      - A source whose copy is older than its O(allow_feeds[].max_age) is a warning in the run, never a failure.
      - docs/presets/ has presets for Cloudflare, AWS, Google, Google Cloud and GitHub's meta API.
    type: list
    elements: dict
    default: []
    version_added: 0.5.0
    suboptions:
'''


def placed(docs, indent, prefix):
    """``docs`` as options ``indent`` spaces deep, with each ``O(feed.NAME)`` naming the setting as ``prefix`` says."""
    return textwrap.indent(docs.strip('\n').replace('O(feed.', 'O(' + prefix), ' ' * indent) + '\n'


class ModuleDocFragment(object):

    # Annotated rather than plain assignments: ansible-test's yamllint reads a fragment's plain assignments as string
    # literals, and these are built above. ansible-doc, validate-modules and the unit test read them as Ansible does.

    # The threat_feed lookup's options (fleetwall.blocklist.feed).
    DOCUMENTATION: str = 'options:\n' + placed(FETCH_AND_PARSE_DOCS, 2, '')

    # shadow_copy_build's feeds option, the settings as its suboptions (fleetwall.blocklist.feed.build_feeds).
    BUILD_FEEDS: str = FEEDS_OPTION.lstrip('\n') + placed(BUILD_ONLY_DOCS + FETCH_AND_PARSE_DOCS, 6, 'feeds[].')

    # shadow_copy_build's allow_feeds option (fleetwall.blocklist.feed.build_allow_feeds).
    BUILD_ALLOW_FEEDS: str = (ALLOW_FEEDS_OPTION.lstrip('\n')
                              + placed(SOURCE_DOCS + ALLOW_ONLY_DOCS + FETCH_AND_PARSE_DOCS, 6, 'allow_feeds[].'))
