#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: fail2ban_bans
short_description: List the bans fail2ban has in force on a host
version_added: 0.4.0
description:
  - Reads which addresses fail2ban has banned on the host, in which jail, since when and for how long, so that
    the C(fleetwall.blocklist.shadow_copy) role can merge them into the shadow copy as the fleet-local feed.
  - Reads fail2ban's SQLite database (read-only) when there is one, because it records when each ban began;
    otherwise asks C(fail2ban-client banned), which knows only what is banned now.
  - A host without fail2ban, or whose fail2ban is not running and keeps no database, answers with no bans and
    C(available=false) instead of failing, so that a harvest over a mixed fleet goes on.
author:
  - fleetwall.blocklist contributors (@fleetwall)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - fleetwall.blocklist.read_only
options:
  source:
    description:
      - Where to read the bans. V(auto) reads the database the running server names (or O(database)), and asks
        the client when there is none.
    type: str
    choices: [auto, database, client]
    default: auto
  database:
    description:
      - The fail2ban database. By default the one the running server names (C(fail2ban-client get dbfile)),
        else C(/var/lib/fail2ban/fail2ban.sqlite3).
    type: path
  jails:
    description:
      - Only these jails. By default every jail.
    type: list
    elements: str
    default: []
'''

EXAMPLES = r'''
- name: Collect the bans of every host
  fleetwall.blocklist.fail2ban_bans:
  register: fail2ban_bans

- name: Only the SSH jails
  fleetwall.blocklist.fail2ban_bans:
    jails: [sshd, recidive]
'''

RETURN = r'''
bans:
  description: The bans in force, sorted by jail and address.
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: The banned address (or network) as fail2ban wrote it.
      type: str
    jail:
      description: The jail that banned it.
      type: str
    banned_at:
      description: When the ban began (epoch seconds); null when read from the client.
      type: int
    ban_seconds:
      description: How long the ban lasts; negative for ever; null when read from the client.
      type: int
    ban_count:
      description: How many times fail2ban has banned the address (with C(bantime.increment)); null from the client.
      type: int
  sample: [{address: 198.51.100.7, jail: sshd, banned_at: 1795445478, ban_seconds: 600, ban_count: 1}]
available:
  description: Whether fail2ban's bans could be read at all on this host.
  returned: always
  type: bool
source:
  description: Where the bans were read, V(database) or V(client); null when not available.
  returned: always
  type: str
now:
  description: The host's clock (epoch seconds) when the bans were read.
  returned: always
  type: int
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.command_runner import run_tool, tool_message
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.module_support import check_paths
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.fail2ban import (
    DEFAULT_DATABASE, Fail2banError, active_bans_from_database, parse_client_banned, parse_client_dbfile,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=dict(type='str', default='auto', choices=['auto', 'database', 'client']),
            database=dict(type='path'),
            jails=dict(type='list', elements='str', default=[]),
        ),
        supports_check_mode=True,
    )
    check_paths(module)
    source, jails = module.params['source'], module.params['jails']
    client = module.get_bin_path('fail2ban-client')
    now = int(time.time())
    result = dict(changed=False, bans=[], available=False, source=None, now=now)

    def ask(*args):
        # fail2ban-client has no machine-readable output; its answers are short and fixed.
        return run_tool([client] + list(args))

    running = False
    if client:
        rc, _out, _err = ask('ping')
        running = rc == 0
    database = module.params['database']
    if database is None and running and source != 'client':
        rc, out, _err = ask('get', 'dbfile')
        database = parse_client_dbfile(out) if rc == 0 else None
        if rc == 0 and database is None and source == 'database':
            module.fail_json(msg='the running fail2ban keeps no database (dbfile is disabled); use source=client',
                             **result)
    if database is None and not running and source != 'client':
        database = DEFAULT_DATABASE
    try:
        if source != 'client' and database and os.path.exists(database):
            result.update(bans=active_bans_from_database(database, now, jails), available=True, source='database')
        elif source == 'database':
            module.fail_json(msg='the fail2ban database %s does not exist' % database, **result)
        elif running:
            rc, out, err = ask('banned')
            if rc != 0:
                module.fail_json(msg='fail2ban-client banned failed: %s' % tool_message(err, out), **result)
            result.update(bans=parse_client_banned(out, jails), available=True, source='client')
        elif source == 'client':
            module.fail_json(msg='fail2ban is not running on this host (fail2ban-client ping failed)'
                             if client else 'fail2ban-client is not installed on this host', **result)
    except Fail2banError as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
