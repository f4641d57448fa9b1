# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):
    # Modules that only read the host (facts, harvests): safe in check mode, nothing to diff.
    DOCUMENTATION = r'''
attributes:
  check_mode:
    support: full
    details:
      - Reads only.
  diff_mode:
    support: none
  platform:
    platforms: linux
'''
