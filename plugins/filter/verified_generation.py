# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: verified_generation
short_description: A shadow copy generation's directory, once every file matches its manifest
version_added: 0.5.0
author:
  - fleetwall.blocklist contributors (@fleetwall)
description:
  - Resolves the directory (following C(current), which must point at one of its own C(generations/)), refuses it
    when it or any directory above it belongs to another user (not this one, not root) or is writable by others
    (as ssh's StrictModes), and checks every file that its C(manifest.json) lists against the sha256 the build
    recorded. Returns the resolved directory; fails naming the file and both
    hashes when one was edited, truncated or replaced after the build published it, so that nothing is pushed.
  - The push entry points of the C(shadow_copy) role use it before any host is touched.
options:
  _input:
    description: A generation directory, or the shadow copy's C(current) link.
    type: path
    required: true
  signing_key:
    description:
      - The key the build signs manifests with (its O(fleetwall.blocklist.shadow_copy_build#module:signing_key)).
        When set, the manifest's signature (C(manifest.sig), HMAC-SHA256) must match, or nothing is pushed.
    type: str
'''

EXAMPLES = r'''
- name: The generation to push, verified
  ansible.builtin.set_fact:
    generation_dir: "{{ '/var/lib/fleetwall/shadow/current' | fleetwall.blocklist.verified_generation }}"
'''

RETURN = r'''
_value:
  description: The resolved generation directory.
  type: path
'''

from ansible.errors import AnsibleFilterError


def verified_generation(path, signing_key=None):
    # Imported here, not above: see allowlist_networks.py.
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (
        ShadowCopyError, trusted_generation_dir, verify_generation)

    try:
        resolved = trusted_generation_dir(str(path))
        verify_generation(resolved, signing_key or None)
    except ShadowCopyError as exc:
        raise AnsibleFilterError(str(exc))
    return resolved


class FilterModule(object):
    def filters(self):
        return {'verified_generation': verified_generation}
