# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):
    # The filters that read the sync modules' registered results from hostvars.
    DOCUMENTATION = r'''
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  hosts:
    description: The hosts, usually those of the play or of the batch.
    type: list
    elements: str
    required: true
  variable:
    description:
      - Name of the registered variable, or a list of names (every one a host has counts, so hosts on
        different backends, or with a web tier beside the kernel tier, share one report).
    type: raw
    required: true
'''
