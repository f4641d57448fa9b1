# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The shadow copy build's options: its argument spec, and the checks Ansible's spec cannot express.

Kept beside the build rather than in the module, so that the module reads
as its steps (parse, redact, check, build, report).
"""

from __future__ import annotations

from .feeds import FORMATS

# One feed, as shadow_copy_build takes it (the shadow_copy role's shadow_copy_feeds items).
FEED_OPTIONS = dict(
    name=dict(type='str', required=True),
    preset=dict(type='str'),
    mode=dict(type='str'),
    api_key=dict(type='str', no_log=True),
    params=dict(type='dict'),
    url=dict(type='str'),
    path=dict(type='path'),
    format=dict(type='str', choices=list(FORMATS)),
    query=dict(type='str'),
    field=dict(type='str'),
    score_field=dict(type='str'),
    require_metadata=dict(type='bool'),
    min_score=dict(type='float'),
    tier=dict(type='str', choices=['auto', 'block', 'challenge']),
    min_count=dict(type='int'),
    level=dict(type='int'),
    headers=dict(type='dict', no_log=True),
    min_interval=dict(type='int'),
    max_age=dict(type='int'),
    max_wait=dict(type='int'),
    timeout=dict(type='int', default=30),
    deadline=dict(type='int', default=180),
    max_bytes=dict(type='int', default=268435456),
    max_entries=dict(type='int', default=2000000),
    retries=dict(type='int', default=2),
    validate_certs=dict(type='bool', default=True),
    max_invalid_fraction=dict(type='float', default=0.1),
    max_growth_factor=dict(type='float', default=10),
    allow_empty=dict(type='bool', default=False),
)

ARGUMENT_SPEC = dict(
    dest=dict(type='path', required=True),
    feeds=dict(type='list', elements='dict', default=[], options=FEED_OPTIONS,
               mutually_exclusive=[('url', 'path'), ('path', 'preset')]),
    allowlist=dict(type='list', elements='str', default=[]),
    refused_categories=dict(type='list', elements='str',
                            default=['unspecified', 'private', 'shared', 'loopback', 'link_local',
                                     'multicast', 'reserved', 'ipv4_mapped', 'ipv4_embedded']),
    min_prefix_v4=dict(type='int', default=8),
    min_prefix_v6=dict(type='int', default=19),
    max_shrink_percent=dict(type='float', default=50),
    force=dict(type='bool', default=False),
    keep_generations=dict(type='int', default=10),
    file_mode=dict(type='raw', default='0644'),
    presets=dict(type='dict', default={}),
    tiers=dict(type='dict', default=dict(block=90, challenge=50), options=dict(
        block=dict(type='float', default=90),
        challenge=dict(type='float', default=50),
    )),
    provenance=dict(type='bool', default=True),
    mirror_dir=dict(type='path'),
    signing_key=dict(type='str', no_log=True),
    fleet_local=dict(type='dict', options=dict(
        harvest=dict(type='dict'),
        expiry=dict(type='int', default=86400),
        min_hosts=dict(type='int', default=1),
        tier=dict(type='str', default='block', choices=['block', 'challenge']),
        jails=dict(type='list', elements='str', default=[]),
    )),
)


def option_problem(params):
    """The first option that Ansible's spec let through but the build cannot take, said as the user wrote it; or None."""
    if not 0 <= params['min_prefix_v4'] <= 32 or not 0 <= params['min_prefix_v6'] <= 128:
        return 'min_prefix_v4 must be 0-32 and min_prefix_v6 0-128'
    if not 0 <= params['max_shrink_percent'] <= 100:
        return 'max_shrink_percent must be between 0 and 100'
    if params['keep_generations'] < 1:
        return 'keep_generations must be at least 1'
    for feed in params['feeds']:
        problem = _feed_problem(feed)
        if problem:
            return 'feed %s: %s' % (feed['name'], problem)
    if file_mode_of(params['file_mode']) is None:
        return 'file_mode must be an octal mode such as 0644'
    return None


def _feed_problem(feed):
    if (feed['min_interval'] or 0) < 0 or (feed['max_wait'] or 0) < 0 or (feed['max_age'] or 0) < 0:
        return 'min_interval, max_wait and max_age must not be negative'
    if feed['timeout'] <= 0 or feed['retries'] < 0:
        return 'timeout must be positive and retries not negative'
    if feed['deadline'] < 0 or feed['max_bytes'] <= 0 or feed['max_entries'] <= 0:
        return 'deadline must not be negative, max_bytes and max_entries must be positive'
    if not 0 <= feed['max_invalid_fraction'] <= 1:
        return 'max_invalid_fraction must be between 0 and 1'
    if feed['max_growth_factor'] < 0:
        return 'max_growth_factor must not be negative'
    return None


def file_mode_of(value):
    """The octal mode the generations' files get, or None for a value that is not one.

    A string is octal digits ('0644'); an integer is the mode itself: YAML reads an unquoted 0644 as 420,
    and Ansible's file modules take it so.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        mode = value
    else:
        try:
            mode = int(str(value), 8)
        except ValueError:
            return None
    return mode if 0 <= mode <= 0o7777 else None
