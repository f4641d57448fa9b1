# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: generation_manifest
short_description: What a shadow copy generation's manifest says, limited to the keys asked for
version_added: 0.5.0
author:
  - fleetwall.blocklist contributors (@fleetwall)
description:
  - Reads C(manifest.json) in a shadow copy generation's directory and returns a dict of the O(keys) asked for
    (a key the manifest lacks is null), or an empty dict when the directory has no manifest (a source directory
    that is not a generation).
  - Only the keys asked for become variables. A generation's manifest also lists every refused entry, and reading
    it whole with P(ansible.builtin.file#lookup) and P(ansible.builtin.from_json#filter) on every host of a push
    costs the controller more than the host's sync call does.
options:
  _terms:
    description: The generation's directory.
    type: list
    elements: path
    required: true
  keys:
    description: The top-level keys of the manifest to return.
    type: list
    elements: str
    required: true
notes:
  - A manifest that cannot be read or is not a JSON object is an error, never an empty answer.
'''

EXAMPLES = r'''
- name: The port scopes of the generation being pushed
  ansible.builtin.debug:
    msg: "{{ lookup('fleetwall.blocklist.generation_manifest', '/var/lib/fleetwall/shadow_copy/current',
                    keys=['scopes']).scopes | default([], true) }}"
'''

RETURN = r'''
_raw:
  description: One dict per directory, with the keys asked for; empty for a directory without a manifest.
  type: list
  elements: dict
'''

import json
import os

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.lookup import LookupBase

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import MANIFEST


def manifest_keys(directory, keys):
    """``keys`` of the manifest in ``directory``; {} when it has none."""
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path) as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        return {}
    except (IOError, OSError, ValueError) as exc:
        raise AnsibleLookupError('cannot read %s: %s' % (path, to_text(exc)))
    if not isinstance(manifest, dict):
        raise AnsibleLookupError('%s is not a JSON object' % path)
    return dict((key, manifest.get(key)) for key in keys)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        keys = self.get_option('keys')
        return [manifest_keys(to_text(term), keys) for term in terms]
