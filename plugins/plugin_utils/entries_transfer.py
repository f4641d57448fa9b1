# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of the checksum-first entries transfer, for every sync module."""

from __future__ import annotations

import base64
import hashlib
import zlib

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text


def _sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def run_with_entries_transfer(action, module_name, task_vars):
    """Run ``module_name``; with ``src``, send the file only if the target lacks it."""
    result = super(type(action), action).run(None, task_vars)
    args = dict(action._task.args)
    src = args.pop('src', None)
    if src is None:
        result.update(action._execute_module(module_name=module_name, module_args=args, task_vars=task_vars))
        return result
    if args.get('entries_file') is not None or args.get('entries') is not None:
        raise AnsibleActionFail('src is mutually exclusive with entries_file and entries')
    try:
        local = action._find_needle('files', src)
        args['entries_sha256'] = _sha256_of(local)
    except (IOError, OSError) as exc:
        raise AnsibleActionFail('cannot read src %s: %s' % (src, to_text(exc)))
    except Exception as exc:  # _find_needle raises AnsibleError subclasses
        raise AnsibleActionFail('cannot find src %s: %s' % (src, to_text(exc)))

    first = action._execute_module(module_name=module_name, module_args=args, task_vars=task_vars)
    if not first.get('upload_required'):
        result.update(first)
        return result

    # The entries travel inside the second module call, compressed: one
    # round trip, where a file transfer costs a temporary directory, the
    # transfer and its clean-up on top of the call.
    with open(local, 'rb') as handle:
        args['entries_zlib'] = to_text(base64.b64encode(zlib.compress(handle.read(), 6)))
    result.update(action._execute_module(module_name=module_name, module_args=args, task_vars=task_vars))
    result['transferred'] = True
    return result
