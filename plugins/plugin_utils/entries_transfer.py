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

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import write_atomic
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.module_support import combine_set_results
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (
    file_sha256, manifest_beside, manifest_min_prefix, manifest_sha256)


def run_with_entries_transfer(action, module_name, task_vars):
    """Run ``module_name``; with ``src`` (of the task or of its ``sets``), send a file only if the target lacks it."""
    result = super(type(action), action).run(None, task_vars)
    args = dict(action._task.args)
    if args.get('sets') is not None:
        result.update(_run_sets(action, module_name, task_vars, args))
        return result
    src = args.pop('src', None)
    if src is None:
        result.update(action._execute_module(module_name=module_name, module_args=args, task_vars=task_vars))
        return result
    pending = _prepare(action, task_vars, module_name, args, src, args)
    if pending['attach']:
        _attach(args, pending['local'])
    res = action._execute_module(module_name=module_name, module_args=args, task_vars=task_vars)
    if res.get('upload_required'):
        _attach(args, pending['local'])
        res = action._execute_module(module_name=module_name, module_args=args, task_vars=task_vars)
    if 'entries_zlib' in args:
        res['transferred'] = True
    if not res.get('failed') and not res.get('upload_required') and not action._task.check_mode:
        _write(pending['cache'], args['entries_sha256'])
    result.update(res)
    return result


def _prepare(action, task_vars, module_name, args, src, target):
    """Name ``src``'s entries by sha256 in ``target`` (the args, or one set of them); ``attach`` says
    whether to send them with the first call (this controller has not seen the host accept them)."""
    if any(target.get(key) is not None for key in ('entries_file', 'entries')):
        raise AnsibleActionFail('src is mutually exclusive with entries_file and entries')
    try:
        local = action._find_needle('files', src)
        target['entries_sha256'] = file_sha256(local)
    except (IOError, OSError) as exc:
        raise AnsibleActionFail('cannot read src %s: %s' % (src, to_text(exc)))
    except AnsibleError as exc:
        raise AnsibleActionFail('cannot find src %s: %s' % (src, to_text(exc)))
    manifest = manifest_beside(local)
    published = manifest_sha256(manifest, local)
    if published is not None and published != target['entries_sha256']:
        # The play verified the generation before the push (verified_generation); this catches an edit since.
        raise AnsibleActionFail('%s has sha256 %s, but its manifest says %s: the file changed after the build '
                                'published it; nothing sent' % (local, target['entries_sha256'], published))
    for version, prefix in manifest_min_prefix(manifest).items():
        # The host refuses what the build that wrote this generation refused, unless the task says otherwise.
        args.setdefault('min_prefix_v%d' % version, prefix)
    # What this controller last saw the host accept. When the file differs
    # from it, the host cannot have these entries yet (unless another
    # controller pushed them), so they go with the first call: one round
    # trip instead of two. A missing or stale cache costs one extra call.
    cache = _push_cache_path(action, task_vars, module_name, args, target.get('name'))
    return {'local': local, 'cache': cache, 'attach': _read(cache) != target['entries_sha256']}


def _run_sets(action, module_name, task_vars, args):
    """Every set in one module call; the sets the host lacks go again, with their entries, in a second."""
    sets = [dict(item) for item in args['sets']]
    pending = {}
    for index, item in enumerate(sets):
        src = item.pop('src', None)
        if src is not None:
            pending[index] = _prepare(action, task_vars, module_name, args, src, item)
    _attach_once(sets, [i for i in sorted(pending) if pending[i]['attach']], pending)
    args['sets'] = sets
    res = action._execute_module(module_name=module_name, module_args=args, task_vars=task_vars)
    results = res.get('sets')
    if not isinstance(results, list) or len(results) != len(sets):
        return res  # failed before syncing any set (bad arguments, a missing tool)
    again = [i for i, r in enumerate(results) if r.get('upload_required') and i in pending]
    warnings = list(res.get('warnings') or [])
    if again:
        for item in sets:
            item.pop('entries_zlib', None)
        _attach_once(sets, again, pending)
        # With remove_other_sets, the second call names every set: the module removes the sets a call does not name.
        # The sets the first call put in place are a record check each; their first result stands.
        resent = list(range(len(sets))) if args.get('remove_other_sets') else again
        retry = dict(args, sets=[sets[i] for i in resent])
        second = action._execute_module(module_name=module_name, module_args=retry, task_vars=task_vars)
        second_results = second.get('sets')
        if not isinstance(second_results, list) or len(second_results) != len(resent):
            return second
        warnings.extend(second.get('warnings') or [])
        for index, item in zip(resent, second_results):
            if index in again:
                results[index] = item
        # The second call ran after every set had its entries: what it says beyond the sets (metrics, the other
        # backends its sets' records sit beside) is the current word.
        res = dict(res, **dict((key, value) for key, value in second.items() if key != 'sets'))
    carried = set(sets[i]['entries_sha256'] for i in pending if 'entries_zlib' in sets[i])
    for index, item in enumerate(results):
        if index in pending and sets[index]['entries_sha256'] in carried:
            item['transferred'] = True
        if (index in pending and not item.get('failed') and not item.get('upload_required')
                and not action._task.check_mode):
            _write(pending[index]['cache'], sets[index]['entries_sha256'])
    combined = combine_set_results(results)
    removed = res.get('removed_sets') or []
    if any(r.get('changed') for r in removed):
        combined['changed'] = True
    if any(r.get('failed') for r in removed):
        combined['failed'] = True
        combined['msg'] = '; '.join(filter(None, [combined.get('msg')] + ['%s: %s' % (r.get('name'), r.get('msg'))
                                                                          for r in removed if r.get('failed')]))
    # What the module said beyond the sets (metrics, invocation, the sets it removed) stands.
    for key, value in res.items():
        if key not in combined and key not in ('msg', 'failed', 'warnings'):
            combined[key] = value
    if warnings:
        combined['warnings'] = warnings
    return combined


def _attach_once(sets, indexes, pending):
    """Attach the entries of the sets at ``indexes``, each file once a call: sets that share a
    source (the nftables role's hosts and networks sets) find it by sha256 in another set."""
    carried = set()
    for index in indexes:
        if sets[index]['entries_sha256'] not in carried:
            _attach(sets[index], pending[index]['local'])
            carried.add(sets[index]['entries_sha256'])


def _attach(target, local):
    # The entries travel inside the module call, compressed: a file transfer
    # would cost a temporary directory, the transfer and its clean-up.
    target['entries_zlib'] = _compressed(local, target['entries_sha256'])


def _compressed(local, sha):
    """base64 of the zlib of ``local``, compressed once a run for every host.

    Each host's task runs in a worker process of its own; the first to need
    a file leaves it in the run's local temporary directory (removed when the
    run ends) and the rest read it there: compressing 1.5 MB costs about as
    much as a host's whole no-op sync.
    """
    blob = os.path.join(C.DEFAULT_LOCAL_TMP, 'fleetwall-entries-%s.zlib' % sha)
    try:
        with open(blob) as handle:
            return handle.read()
    except (IOError, OSError):
        pass
    with open(local, 'rb') as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != sha:
        raise AnsibleActionFail('%s changed while it was being sent; run again' % local)
    text = to_text(base64.b64encode(zlib.compress(data, 6)))
    _write(blob, text)
    return text


def _push_cache_path(action, task_vars, module_name, args, name=None):
    configured = task_vars.get('fleetwall_push_cache_dir')
    if configured:
        configured = action._templar.template(configured)
    root = os.path.expanduser(configured or '~/.cache/fleetwall/pushed')
    key = '|'.join([to_text(task_vars.get('inventory_hostname', '')), module_name,
                    to_text(name or args.get('name', '')), to_text(args.get('state_dir', ''))])
    return os.path.join(root, hashlib.sha256(key.encode('utf-8')).hexdigest())


def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def _write(path, value):
    """Write ``path`` atomically; a candidate at a predictable name would let a planted symlink steer the write."""
    try:
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        write_atomic(path, to_bytes(value), 0o600)
    except (IOError, OSError):
        pass  # only an optimisation
