# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The shadow copy build's options: its argument spec, and the checks Ansible's spec cannot express.

Kept beside the build rather than in the module, so that the module reads
as its steps (parse, redact, check, build, report). A feed's own options and
checks are feed_options', which the threat_feed lookup shares.
"""

from __future__ import annotations

from .feed_options import ALLOW_FEED_OPTIONS, FEED_OPTIONS, feed_problem

ARGUMENT_SPEC = dict(
    dest=dict(type='path', required=True),
    feeds=dict(type='list', elements='dict', default=[], options=FEED_OPTIONS,
               mutually_exclusive=[('url', 'path'), ('path', 'preset')]),
    allowlist=dict(type='list', elements='str', default=[]),
    allow_feeds=dict(type='list', elements='dict', default=[], options=ALLOW_FEED_OPTIONS,
                     mutually_exclusive=[('url', 'path'), ('path', 'preset')]),
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
    operator_request=dict(type='dict', options=dict(
        action=dict(type='str', required=True, choices=['block', 'unblock']),
        entry=dict(type='str', required=True),
        ttl=dict(type='str', required=True),
        reason=dict(type='str', required=True),
        by=dict(type='str'),
    )),
    offline=dict(type='bool', default=False),
)


def option_problem(params):
    """The first option that Ansible's spec let through but the build cannot take, said as the user wrote it; or None."""
    if not 0 <= params['min_prefix_v4'] <= 32 or not 0 <= params['min_prefix_v6'] <= 128:
        return 'min_prefix_v4 must be 0-32 and min_prefix_v6 0-128'
    if not 0 <= params['max_shrink_percent'] <= 100:
        return 'max_shrink_percent must be between 0 and 100'
    if params['keep_generations'] < 1:
        return 'keep_generations must be at least 1'
    for kind, feeds in (('feed', params['feeds']), ('allow source', params.get('allow_feeds') or [])):
        for feed in feeds:
            problem = feed_problem(feed)
            if problem:
                return '%s %s: %s' % (kind, feed['name'], problem)
    if file_mode_of(params['file_mode']) is None:
        return 'file_mode must be an octal mode such as 0644'
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
