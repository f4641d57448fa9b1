# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of the checksum-first entries transfer, for every sync module."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

from ansible.errors import AnsibleActionFail, AnsibleError
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
    except AnsibleError as exc:
        raise AnsibleActionFail('cannot find src %s: %s' % (src, to_text(exc)))

    # What this controller last saw the host accept. When the file differs
    # from it, the host cannot have these entries yet (unless another
    # controller pushed them), so they go with the first call: one round
    # trip instead of two. A missing or stale cache costs one extra call.
    cache = _push_cache_path(action, task_vars, module_name, args)
    if _read(cache) != args['entries_sha256']:
        _attach(args, local)
    res = action._execute_module(module_name=module_name, module_args=args, task_vars=task_vars)
    if res.get('upload_required'):
        _attach(args, local)
        res = action._execute_module(module_name=module_name, module_args=args, task_vars=task_vars)
    if 'entries_zlib' in args:
        res['transferred'] = True
    if not res.get('failed') and not res.get('upload_required') and not action._task.check_mode:
        _write(cache, args['entries_sha256'])
    result.update(res)
    return result


def _attach(args, local):
    # The entries travel inside the module call, compressed: a file transfer
    # would cost a temporary directory, the transfer and its clean-up.
    with open(local, 'rb') as handle:
        args['entries_zlib'] = to_text(base64.b64encode(zlib.compress(handle.read(), 6)))


def _push_cache_path(action, task_vars, module_name, args):
    configured = task_vars.get('fleetwall_push_cache_dir')
    if configured:
        configured = action._templar.template(configured)
    root = os.path.expanduser(configured or '~/.cache/fleetwall/pushed')
    key = '|'.join([to_text(task_vars.get('inventory_hostname', '')), module_name,
                    to_text(args.get('name', '')), to_text(args.get('state_dir', ''))])
    return os.path.join(root, hashlib.sha256(key.encode('utf-8')).hexdigest())


def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def _write(path, value):
    try:
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        tmp = '%s.%d' % (path, os.getpid())
        with open(tmp, 'w') as handle:
            handle.write(value)
        os.rename(tmp, path)
    except (IOError, OSError):
        pass  # only an optimisation
