# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Send the entries only when they changed (see plugin_utils/entries_transfer.py)."""

from __future__ import annotations

from ansible_collections.fleetwall.blocklist.plugins.plugin_utils.entries_transfer import run_with_entries_transfer
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        return run_with_entries_transfer(self, 'fleetwall.blocklist.xdp_set_sync', task_vars)
