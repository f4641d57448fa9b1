#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: nginx_geo_file
short_description: Write the include file of an nginx geo block from blocklist tiers, validated before it goes live
version_added: 0.3.0
description:
  - Writes the include files of two nginx C(geo) blocks from one or more tiers of entries (for example the shadow
    copy's block tier as V(block) and its challenge tier as V(challenge)). O(dest) holds the IPv4 entries in the
    geo module's C(ranges) form (C(FIRST-LAST VALUE;) lines, sorted, disjoint, adjacent ranges of one value merged),
    for a geo block with C(ranges); O(dest_v6) holds the IPv6 entries as C(CIDR VALUE;) lines, for a geo block
    without. At a million IPv4 entries nginx holds the ranges in about a tenth of the memory of CIDR lines, and
    parses and reloads them about ten times faster.
  - Overlapping entries keep the CIDR form's meaning, the narrowest entry wins. The counts and the diff are in
    entries (CIDR notation), the fewest networks that cover what the files map.
  - A range cannot end at 255.255.255.255 in the C(ranges) form; when an entry covers that address it is written
    to O(dest_v6) as C(255.255.255.255 VALUE;) instead, so nothing listed is lost.
  - The new files are tested with C(nginx -t) inside the real configuration before they replace the old ones. Each
    is bind-mounted over its live path in a private mount namespace for the test, then renamed into place. A file
    that fails the test never reaches its path, and the old file stays.
  - With O(http_snippet) and O(http_snippet_content), the http-level snippet that declares the two geo blocks is
    tested and installed together with them. That is how a host moves in one step from the layout before 0.5.0
    (every entry as C(CIDR VALUE;) in O(dest), read by one geo block without C(ranges)), which this module reads as
    its own and rewrites.
  - A leftover C(DEST.bin) (nginx's cache of a large C(ranges) include, which it reads in place of a newer file) is
    removed at every run. The geo block of O(dest) should have a second include (C(include /dev/null;)), which
    keeps nginx from writing that cache.
  - With O(reload), the module reloads nginx itself after a change, under the file's lock. A marker beside the
    file (C(.NAME.reload-pending)), written before the new file goes live and removed once nginx took the reload,
    makes the next run reload again when a run was killed, or its reload failed, in between (the file is then
    already new, and nothing else would show that nginx still serves the old one). Without O(reload), reloading
    is the caller's (a handler on RV(changed)).
  - Two runs on one file wait for each other on a lock beside it (C(.NAME.lock)).
  - An existing O(dest) that is not all C(FIRST-LAST VALUE;) or C(CIDR VALUE;) lines, or an O(dest_v6) that is not
    all C(CIDR VALUE;) lines, is reported and the files left as they are.
author:
  - fleetwall.blocklist contributors (@fleetwall)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - fleetwall.blocklist.sync.change_guard
  - fleetwall.blocklist.sync.protect
  - fleetwall.blocklist.sync.attributes
options:
  dest:
    description: The include file of the IPv4 geo block, in the C(ranges) form.
    type: path
    required: true
  dest_v6:
    description:
      - The include file of the IPv6 geo block, in the CIDR form. Defaults to O(dest) with C(-v6) before its
        extension (C(blocklist.geo) gives C(blocklist-v6.geo)).
    type: path
    version_added: 0.5.0
  http_snippet:
    description:
      - The http-level snippet that declares the geo blocks, tested and installed with the geo files (O(http_snippet_content)
        is its text).
    type: path
    version_added: 0.5.0
  http_snippet_content:
    description: The text of O(http_snippet).
    type: str
    version_added: 0.5.0
  state_dir:
    description:
      - Where a record per tier (C(nginx-VALUE.json)) says what the tier holds, since when, and its O(tiers[].request_log),
        as the sync modules' records do for their sets. M(fleetwall.blocklist.metrics_textfile) reads them for the
        web tier's metrics (label C(tier="web")), and the fleet report shows them. A tier no longer given loses its
        record. Not written in check mode, nor when the change was refused.
    type: path
    default: /var/lib/fleetwall
    version_added: 0.5.0
  tiers:
    description:
      - The tiers in order of precedence; an entry listed by an earlier tier gets that tier's value.
    type: list
    elements: dict
    required: true
    suboptions:
      value:
        description: "The value of the geo variable for these entries (letters, digits, C(_ . : -))."
        type: str
        required: true
      entries_files:
        description:
          - Files on the target with one address or CIDR per line (C(#) comments and blank lines allowed),
            for example the tier's IPv4 and IPv6 files.
        type: list
        elements: path
      entries:
        description: The entries as a list.
        type: list
        elements: str
      request_log:
        description:
          - The access log to which the enforcement rules write one line per request this tier answers (the nginx
            role's enforcement snippet does). It is named in the tier's record in O(state_dir), and
            M(fleetwall.blocklist.metrics_textfile) counts its lines as C(fleetwall_web_requests_total).
        type: path
        version_added: 0.5.0
  validate:
    description: Test the new file with C(nginx -t) in the real configuration before installing it.
    type: bool
    default: true
  nginx_config:
    description: The main configuration file C(nginx -t) reads. Omit for nginx's compiled-in default.
    type: path
  mode:
    description: Mode of the files when they are created; an existing file keeps its mode.
    type: raw
    default: '0644'
  diff_sample:
    description: How many added and removed lines the diff shows.
    type: int
    default: 20
  reload:
    description:
      - Reload nginx (C(nginx -s reload), with O(nginx_config) when set) after the file changed, or when an
        earlier run's change has not reached nginx yet. Only where a master runs (O(pid_file)); a stopped nginx
        reads the file when it starts.
    type: bool
    default: false
    version_added: 0.5.0
  pid_file:
    description: The master's pid file, as the C(pid) directive of the configuration names it.
    type: path
    default: /run/nginx.pid
    version_added: 0.5.0
  lock_timeout:
    description: Seconds to wait for another run on the same file before failing.
    type: int
    default: 120
    version_added: 0.5.0
seealso:
  - module: fleetwall.blocklist.ufw_tagged_rules
'''

EXAMPLES = r'''
# In http context (the nginx role writes this snippet):
#   geo $fleetwall_tier_v4 { ranges; default ""; include /etc/nginx/fleetwall/blocklist.geo; include /dev/null; }
#   geo $fleetwall_tier_v6 { default ""; include /etc/nginx/fleetwall/blocklist-v6.geo; }
#   map $fleetwall_tier_v6 $fleetwall_tier { "" $fleetwall_tier_v4; default $fleetwall_tier_v6; }
- name: Block tier as "block", challenge tier as "challenge"
  fleetwall.blocklist.nginx_geo_file:
    dest: /etc/nginx/fleetwall/blocklist.geo
    tiers:
      - value: block
        entries_files: [/var/lib/fleetwall/nginx/blocklist_v4.txt, /var/lib/fleetwall/nginx/blocklist_v6.txt]
      - value: challenge
        entries_files: [/var/lib/fleetwall/nginx/challenge_v4.txt]
  notify: Reload nginx
'''

RETURN = r'''
protected:
  description:
    - The entries that covered an address lockout protection keeps reachable (at most 20), each with what it
      covered and how many networks replaced it.
  returned: when an entry covered a protected address
  type: list
  elements: dict
  version_added: 0.5.0
protected_count:
  description: How many entries covered a protected address.
  returned: when an entry covered a protected address
  type: int
  version_added: 0.5.0
refused:
  description: Why a change larger than O(max_change_percent) was not applied.
  returned: when the change was refused
  type: str
  version_added: 0.5.0
changed:
  description: Whether the file changed (or would, in check mode).
  returned: always
  type: bool
rewritten:
  description: The files that were (or in check mode would be) rewritten.
  returned: success
  type: list
  elements: str
  version_added: 0.5.0
dest_v6:
  description: The IPv6 file.
  returned: success
  type: str
  version_added: 0.5.0
added:
  description: Entries added (an entry whose value changed counts as added and removed).
  returned: success
  type: int
removed:
  description: Entries removed.
  returned: success
  type: int
total:
  description: Entries in the files after the run.
  returned: success
  type: int
tiers:
  description: Entries per value.
  returned: success
  type: dict
reloaded:
  description: Whether nginx was reloaded (with O(reload); false where no master runs).
  returned: when O(reload) and the file changed or a reload was pending
  type: bool
  version_added: 0.5.0
reload_pending:
  description: The file was already current, but an earlier run's change had not reached nginx; it was reloaded now.
  returned: when a reload was pending
  type: bool
  version_added: 0.5.0
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.command_runner import run_tool
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nginx import GeoFile, save_tier_records, v6_path
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.module_support import (
    CHANGE_GUARD_ARGUMENT_SPEC, PROTECT_ARGUMENT_SPEC, change_guard, check_lock_timeout, check_paths, host_protection, io_failure,
    refuse_broad_entries, report_protected,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import (
    SyncError, read_entries_source,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type='path', required=True),
            dest_v6=dict(type='path'),
            http_snippet=dict(type='path'),
            http_snippet_content=dict(type='str'),
            tiers=dict(type='list', elements='dict', required=True, options=dict(
                value=dict(type='str', required=True),
                entries_files=dict(type='list', elements='path'),
                entries=dict(type='list', elements='str'),
                request_log=dict(type='path'),
            ), required_one_of=[('entries_files', 'entries')]),
            validate=dict(type='bool', default=True),
            nginx_config=dict(type='path'),
            reload=dict(type='bool', default=False),
            pid_file=dict(type='path', default='/run/nginx.pid'),
            lock_timeout=dict(type='int', default=120),
            mode=dict(type='raw', default='0644'),
            diff_sample=dict(type='int', default=20),
            state_dir=dict(type='path', default='/var/lib/fleetwall'),
            **dict(CHANGE_GUARD_ARGUMENT_SPEC, **PROTECT_ARGUMENT_SPEC)
        ),
        required_together=[('http_snippet', 'http_snippet_content')],
        supports_check_mode=True,
    )
    params = module.params
    try:
        mode = int(str(params['mode']), 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        module.fail_json(msg='mode must be an octal mode such as 0644, got %r' % (params['mode'],))
    if params['diff_sample'] < 0:
        module.fail_json(msg='diff_sample must not be negative')
    paths = [params['dest'], params['dest_v6'] or v6_path(params['dest']), params['http_snippet']]
    if len(set(filter(None, paths))) != len(list(filter(None, paths))):
        module.fail_json(msg='dest, dest_v6 and http_snippet must be three different files')
    if not params['state_dir'] or (os.path.lexists(params['state_dir']) and not os.path.isdir(params['state_dir'])):
        # Checked before anything is written: the geo files must not go live in a call that then fails.
        module.fail_json(msg='state_dir: %r is not a directory' % params['state_dir'])
    guard = change_guard(module)
    protection = host_protection(module)
    check_paths(module)
    check_lock_timeout(module)
    config = params['nginx_config']
    if config and os.path.lexists(config) and not os.path.isfile(config):
        # nginx -t would wait for ever on a FIFO.
        module.fail_json(msg='nginx_config: %s is not a regular file' % config)
    nginx = {}
    if params['validate'] or params['reload']:
        nginx['nginx_bin'] = module.get_bin_path('nginx', required=True, opt_dirs=['/usr/sbin', '/usr/local/sbin'])
    if params['validate']:
        nginx.update(unshare_bin=module.get_bin_path('unshare', required=True),
                     mount_bin=module.get_bin_path('mount', required=True))
    geo = GeoFile(run_tool, params['dest'], nginx_config=params['nginx_config'], mode=mode,
                  reload=params['reload'], pid_file=params['pid_file'], lock_timeout=params['lock_timeout'],
                  dest_v6=params['dest_v6'], http_snippet=params['http_snippet'],
                  http_snippet_content=params['http_snippet_content'], **nginx)
    try:
        tiers, findings = [], []
        for tier in params['tiers']:
            lines = list(tier['entries'] or [])
            for path in tier['entries_files'] or []:
                lines.extend(read_entries_source(entries_file=path)[0])
            refuse_broad_entries(module, lines)
            lines, tier_findings = protection.carve(lines)
            findings.extend(tier_findings)
            tiers.append({'value': tier['value'], 'lines': lines, 'request_log': tier['request_log']})
        result = geo.sync(tiers, check_mode=module.check_mode, want_diff=module._diff,
                          diff_sample=params['diff_sample'], guard=guard)
        if not module.check_mode and not result.get('refused'):
            try:
                save_tier_records(params['state_dir'], tiers, result)
            except (IOError, OSError) as exc:
                # The geo files are in force: the metrics' records must not turn that into a failure.
                module.warn('the web tier records in %s were not written: %s' % (params['state_dir'], exc.strerror or exc))
        report_protected(module, result, 'nginx geo %s' % params['dest'], findings)
        if result.get('refused'):
            module.warn('nginx geo %s: %s' % (params['dest'], result['refused']))
    except SyncError as exc:
        module.fail_json(msg=str(exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg=io_failure(exc, params['dest']))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
