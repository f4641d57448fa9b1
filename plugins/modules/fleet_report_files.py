#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: fleet_report_files
short_description: Write the fleet report (JSON and a self-contained HTML page) on the controller
version_added: 0.5.0
description:
  - Writes C(fleet_report.json) and C(fleet_report.html) into O(dir) on the controller, each atomically (a reader
    never sees half a file), from the result of the C(fleetwall.blocklist.fleet_report) filter.
  - Adds the run to C(fleet_history.json) beside them (the last O(history) runs, at most 16 MiB, and fail2ban's
    bans per day for 90 days), and the page draws it as time series - entries in force and per tier, added and
    removed, dropped packets and web requests answered since the run before, fleet-wide and per host, and where
    fail2ban runs its bans per day beside the packets dropped that day.
  - A history that cannot be read is moved aside to C(fleet_history.json.corrupt), reported as a warning and in
    RV(history_problem), and a new one begins; the report is written all the same.
  - The page has no script and no external resource; its charts are inline SVG.
  - An action that runs on the controller only, in one task; the report is the run's output, like its log, so
    writing it is never reported as a change.
author:
  - fleetwall.blocklist contributors (@fleetwall)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details:
      - Writes nothing.
  diff_mode:
    support: none
  platform:
    platforms: all
    details:
      - Runs on the controller only.
options:
  dir:
    description: The directory for both files; made (mode 0755) when missing.
    type: path
    required: true
  report:
    description: The C(fleetwall.blocklist.fleet_report) filter's result.
    type: dict
    required: true
  mode:
    description: The files' mode.
    type: raw
    default: '0644'
  history:
    description: How many runs C(fleet_history.json) keeps (the oldest go first); V(0) keeps no history.
    type: int
    default: 200
  run_id:
    description:
      - What identifies the run. A run that writes the report more than once (a canary rollout writes it after each
        batch) replaces its own point in the history instead of adding one per batch. Without it, every write adds one.
    type: str
'''

EXAMPLES = r'''
- name: Write the fleet report on the controller
  fleetwall.blocklist.fleet_report_files:
    dir: /var/lib/fleetwall/reports
    report: "{{ hostvars | fleetwall.blocklist.fleet_report(ansible_play_hosts_all, ['nftables_sync_results']) }}"
  run_once: true
'''

RETURN = r'''
written:
  description: Whether the files were written (false in check mode).
  returned: always
  type: bool
files:
  description: The paths written.
  returned: always
  type: list
  elements: path
history_problem:
  description: Why the history could not be read (it was moved aside, and a new one began).
  returned: when the history could not be read
  type: str
'''
