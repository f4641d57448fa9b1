# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Send the entries only when they changed, and apply them in the same task.

Each task is a round trip per host, and on a fleet the round trips are the
cost.  A copy task plus a sync task is two of them (three with a stat), even
when nothing changed.  Here the first module call carries only the sha256 of
the controller's file; the target answers from its record of the last apply.
Only when the target does not have those entries are they sent, compressed
in the arguments of a second module call.
"""

from __future__ import annotations

from ansible_collections.fleetwall.blocklist.plugins.plugin_utils.entries_transfer import run_with_entries_transfer
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        return run_with_entries_transfer(self, 'fleetwall.blocklist.ipset_sync', task_vars)
