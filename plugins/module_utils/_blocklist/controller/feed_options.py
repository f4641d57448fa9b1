# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A feed's options, defined once: their types, choices and defaults, and the checks a type cannot express.

Read by the shadow_copy_build module (its ``feeds`` suboptions, through shadow_copy_options), by the threat_feed
lookup (which settings it takes, and the same checks), and by the build itself (the default of a setting a feed
was given without). Documented once by the ``fleetwall.blocklist.feed`` doc fragment, for the lookup and for the
build's ``feeds``; tests/unit/plugins/doc_fragments checks that it says what this says, and
tests/unit/roles/shadow_copy that the role's argument spec and defaults do.
"""

from __future__ import annotations

from .feeds import DEFAULT_MAX_ENTRIES, DEFAULT_MAX_INVALID_FRACTION, FORMATS, FeedError, as_numbers, country_codes
from .fetch import DEFAULT_DEADLINE, DEFAULT_RETRIES, DEFAULT_TIMEOUT, MAX_BODY_BYTES

# Where a feed comes from besides its URL or path, and how one fetch reads it: what the threat_feed lookup
# takes too (its terms are the URL or path).
FETCH_AND_PARSE_OPTIONS = dict(
    preset=dict(type='str'),
    mode=dict(type='str'),
    api_key=dict(type='str', no_log=True),
    params=dict(type='dict'),
    format=dict(type='str', choices=list(FORMATS)),
    query=dict(type='str'),
    field=dict(type='str'),
    score_field=dict(type='str'),
    require_metadata=dict(type='bool'),
    # The rows of an address plan (format rir_delegated or ip2asn) to keep: without one, such a feed is refused.
    countries=dict(type='list', elements='str'),
    asns=dict(type='list', elements='raw'),
    min_score=dict(type='float'),
    min_count=dict(type='int'),
    headers=dict(type='dict', no_log=True),
    timeout=dict(type='int', default=DEFAULT_TIMEOUT),
    deadline=dict(type='int', default=DEFAULT_DEADLINE),
    max_bytes=dict(type='int', default=MAX_BODY_BYTES),
    max_entries=dict(type='int', default=DEFAULT_MAX_ENTRIES),
    retries=dict(type='int', default=DEFAULT_RETRIES),
    validate_certs=dict(type='bool', default=True),
    max_invalid_fraction=dict(type='float', default=DEFAULT_MAX_INVALID_FRACTION),
)

# What only a source of the build has: a name for its cache, and a memory of earlier fetches to pace requests and
# judge a new body by. The lookup has none of these.
SOURCE_OPTIONS = dict(
    name=dict(type='str', required=True),
    url=dict(type='str'),
    path=dict(type='path'),
    min_interval=dict(type='int'),
    max_age=dict(type='int'),
    max_wait=dict(type='int'),
    # Another source's AS numbers (a preset name, or a feed definition) for an ip2asn feed's selection: fetched and
    # cached as a feed is, under the name <name>.asns, which the lookup has no cache for.
    asns_from=dict(type='raw'),
    max_growth_factor=dict(type='float', default=10),
    allow_empty=dict(type='bool', default=False),
)

# Where a threat feed's entries go.
TIER_OPTIONS = dict(
    tier=dict(type='str', choices=['auto', 'block', 'challenge', 'admit_only']),
    level=dict(type='int'),
    # A feed scoped to ports (scopes.py): blocked on these ports only, or with admit_only the only sources they admit.
    ports=dict(type='list', elements='int'),
    protocol=dict(type='str', choices=['tcp', 'udp']),
)

BUILD_ONLY_OPTIONS = dict(SOURCE_OPTIONS, **TIER_OPTIONS)

# What only an allow source has: its fail-safe runs the other way (a source that shrank can cut off a CDN).
ALLOW_ONLY_OPTIONS = dict(
    required=dict(type='bool', default=True),
    max_shrink_percent=dict(type='float', default=10),
)

# One feed, as shadow_copy_build takes it (the shadow_copy role's shadow_copy_feeds items).
FEED_OPTIONS = dict(BUILD_ONLY_OPTIONS, **FETCH_AND_PARSE_OPTIONS)

# One allow source (allow_feeds, the role's shadow_copy_allow_feeds): a feed without a tier, with its own fail-safe.
ALLOW_FEED_OPTIONS = dict(SOURCE_OPTIONS, **dict(ALLOW_ONLY_OPTIONS, **FETCH_AND_PARSE_OPTIONS))

# A feed's settings given without them (a feed handed to the build by code, not through the module's spec) get these.
FEED_DEFAULTS = {name: option['default'] for name, option in FEED_OPTIONS.items() if 'default' in option}
# And an allow source given without its own settings gets these (a threat feed has no shrink limit of its own).
ALLOW_ONLY_DEFAULTS = {name: option['default'] for name, option in ALLOW_ONLY_OPTIONS.items()}


def feed_problem(feed):
    """The first of a feed's settings that its type let through but a fetch cannot take, or None.

    ``feed`` may lack settings (the lookup has no min_interval) or hold None for them: they then have their
    defaults, which are fine.
    """
    def setting(name):
        value = feed.get(name)
        return FEED_DEFAULTS.get(name, 0) if value is None else value

    if setting('min_interval') < 0 or setting('max_wait') < 0 or setting('max_age') < 0:
        return 'min_interval, max_wait and max_age must not be negative'
    if setting('timeout') <= 0 or setting('retries') < 0:
        return 'timeout must be positive and retries not negative'
    if setting('deadline') < 0 or setting('max_bytes') <= 0 or setting('max_entries') <= 0:
        return 'deadline must not be negative, max_bytes and max_entries must be positive'
    if not 0 <= setting('max_invalid_fraction') <= 1:
        return 'max_invalid_fraction must be between 0 and 1'
    if setting('max_growth_factor') < 0:
        return 'max_growth_factor must not be negative'
    if not 0 <= setting('max_shrink_percent') <= 100:
        return 'max_shrink_percent must be between 0 and 100'
    try:
        country_codes(feed.get('countries'))
        as_numbers(feed.get('asns'))
    except FeedError as exc:
        return str(exc).split(': ', 1)[1]
    asns_from = feed.get('asns_from')
    if asns_from is not None and not isinstance(asns_from, (str, dict)):
        return 'asns_from must be a preset name or a feed definition (url, path or preset, format, field, ...)'
    return None
