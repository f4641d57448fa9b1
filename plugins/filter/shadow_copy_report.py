# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: shadow_copy_report
short_description: A few readable lines about a shadow copy build
version_added: 0.2.0
author:
  - fleetwall.blocklist contributors (@fleetwall)
description:
  - Turns the result of C(fleetwall.blocklist.shadow_copy_build) into one line for the generation and one
    line per feed, saying whether it was fetched, revalidated (HTTP 304), reused from cache (and why), or
    failed (and why), with its counts per tier; when the allowlist kept listed addresses out, how many; with
    harvested fail2ban bans, one line about them.
  - A withheld build says that the previous generation stays in force, and that the counts are the refused
    copy's.
options:
  _input:
    description: The registered result of C(fleetwall.blocklist.shadow_copy_build).
    type: dict
    required: true
'''

EXAMPLES = r'''
- name: Report the shadow copy
  ansible.builtin.debug:
    msg: "{{ shadow_copy_build_result | fleetwall.blocklist.shadow_copy_report }}"
'''

RETURN = r'''
_value:
  description: The lines.
  type: list
  elements: str
'''


def _feed_line(feed):
    status = feed.get('status', '?')
    if status == 'fresh':
        how = 'fresh (not modified, HTTP 304)' if feed.get('not_modified') else 'fresh'
    elif status == 'cached':
        how = 'cached, %s s old (%s)' % (feed.get('age_seconds'), feed.get('reason'))
        if feed.get('error'):
            how += ': %s' % feed['error']
    else:
        return 'feed %s: FAILED (%s): %s' % (feed.get('name'), feed.get('error_kind') or 'error', feed.get('error'))
    counts = '%s accepted, %s block, %s challenge' % (feed.get('accepted', 0), feed.get('block', 0),
                                                      feed.get('challenge', 0))
    if feed.get('scope'):
        counts += ', %s in scope %s' % (feed.get('scoped', 0), feed['scope'])
    return 'feed %s: %s; %s; %s request(s)' % (feed.get('name'), how, counts, feed.get('requests', 0))


def _allow_source_line(source):
    """An allow source's status and what it kept reachable; the one that fell back on its copy says why."""
    if source.get('status') == 'failed':
        return 'allow source %s: FAILED (%s): %s; built without it (required: false)' % (
            source.get('name'), source.get('error_kind') or 'error', source.get('error'))
    how = 'fresh' if source.get('status') == 'fresh' else 'cached, %s s old (%s)%s' % (
        source.get('age_seconds'), source.get('reason'), ': %s' % source['error'] if source.get('error') else '')
    stale = '; STALE: older than its max_age of %s s' % source.get('max_age') if source.get('stale') else ''
    return 'allow source %s: %s; %s network(s), kept %s listed address(es) in %s network(s) reachable%s' % (
        source.get('name'), how, source.get('networks', 0), source.get('addresses_removed', 0),
        source.get('networks_removed', 0), stale)


def _allowlist_line(allowlist):
    """What the allowlist unblocked, when it unblocked anything: an operator who allowlists a range sees it work."""
    removed = (allowlist or {}).get('addresses_removed') or {}
    challenge = (allowlist or {}).get('challenge_addresses_removed') or {}
    if not any(removed.values()) and not any(challenge.values()):
        return []
    return ['allowlist: kept %s IPv4 + %s IPv6 listed address(es) out of the block tier, %s IPv4 + %s IPv6 out of '
            'the challenge tier' % (removed.get('v4', 0), removed.get('v6', 0), challenge.get('v4', 0),
                                    challenge.get('v6', 0))]


def _scope_line(scope):
    """A feed scope's ports and size: an operator who wrote "port 22 only from NO" sees what the hosts get."""
    entries = scope.get('entries') or {}
    what = ('only these may reach %s port(s) %s' if scope.get('kind') == 'admit' else 'dropped on %s port(s) %s') % (
        scope.get('protocol'), ','.join(str(port) for port in scope.get('ports') or []))
    return 'scope %s: %s IPv4 + %s IPv6 entries from %s; %s' % (
        scope.get('name'), entries.get('v4', 0), entries.get('v6', 0), ', '.join(scope.get('feeds') or []), what)


def shadow_copy_report(result):
    entries = result.get('entries') or {}
    counts = 'block %s IPv4 + %s IPv6, challenge %s IPv4 + %s IPv6' % (
        entries.get('v4', 0), entries.get('v6', 0), entries.get('challenge_v4', 0), entries.get('challenge_v6', 0))
    if result.get('withheld'):
        # The counts are the refused copy's, not the kept generation's: say which is which.
        kept = ('generation %s stays in force' % result['generation'] if result.get('generation') is not None
                else 'no generation exists yet')
        lines = ['%s; the new copy was WITHHELD (%s): it would %s' % (kept, result['withheld'], counts)]
    else:
        state = ('new' if result.get('published') else 'preview (check mode)' if result.get('changed')
                 else 'unchanged')
        lines = ['generation %s (%s): %s' % (result.get('generation'), state, counts)]
    lines.extend(_feed_line(feed) for feed in result.get('feeds') or [])
    fleet = result.get('fleet_local')
    if fleet:
        harvested = ('harvested from %s host(s)' % fleet['hosts_harvested'] if fleet.get('hosts_harvested') is not None
                     else 'no harvest this run')
        line = ('fleet-local bans: %s enforced (%s accepted, %s kept out by the allowlist or an allow source), '
                '%s below min_hosts %s, '
                '%s new, %s unbanned, %s expired; %s'
                % (fleet.get('entries'), fleet.get('accepted'), fleet.get('allowlisted', 0), fleet.get('pending_min_hosts'),
                   fleet.get('min_hosts'), fleet.get('new'), fleet.get('unbanned', 0), fleet.get('expired'), harvested))
        if fleet.get('hosts_unavailable'):
            line += '; not readable on %s' % ', '.join(fleet['hosts_unavailable'])
        lines.append(line)
        lines.extend('fleet-local ban of %s (on %s) not pushed: the %s keeps it reachable'
                     % (kept.get('address'), ', '.join(kept.get('hosts') or []) or '?', kept.get('by'))
                     for kept in fleet.get('kept_out') or [])
    lines.extend(_allowlist_line(result.get('allowlist')))
    lines.extend(_allow_source_line(source) for source in result.get('allow_feeds') or [])
    lines.extend(_scope_line(scope) for scope in result.get('scopes') or [])
    return lines


class FilterModule(object):
    def filters(self):
        return {'shadow_copy_report': shadow_copy_report}
