# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What every sync module does around the engine.

A sync module declares its backend options and builds an adapter; this file
handles the shared options (documented in the ``sync`` doc fragment), the
cached-entries protocol of the action plugin, locking, rules, persistence and
the common result shape.
"""

from __future__ import annotations

import base64
import errno
import os
import time

from ..backends import KERNEL_BACKENDS, backend_of_record
from .command_runner import run_tool
from ..decode import CorruptBody, TooLarge, decode_bounded
from ..files import (
    ensure_dropins, ensure_plugins, ensure_unit, path_problem, remove_empty_dirs_under, remove_unit, remove_write_leftovers,
    write_atomic,
)
from .metrics import read_records, write_textfile
from ..addresses import AddressError
from .protect import Protection, findings_warning, host_addresses, ssh_client_addresses, ssh_connections
from ..sync import Entries, SyncError, StateStore, SyncPolicy, entries_are_canonical, read_entries_source, sync_set

# When the module's code started (imported at its start): ``elapsed`` is the call's own time, as the host pays it,
# under load too (tests/integration/test_under_load.py), without Ansible's transfer and interpreter start.
STARTED = time.monotonic()

SYNC_ARGUMENT_SPEC = dict(
    entries_file=dict(type='path'),
    entries=dict(type='list', elements='str'),
    src=dict(type='path'),
    entries_sha256=dict(type='str'),
    entries_zlib=dict(type='str', no_log=True),
    verify=dict(type='bool', default=False),
    verify_interval=dict(type='int'),
    full_reload_fraction=dict(type='float', default=0.2),
    diff_sample=dict(type='int', default=20),
    state_dir=dict(type='path', default='/var/lib/fleetwall'),
    lock_timeout=dict(type='int', default=120),
)
# The host's node_exporter metrics, written in the same call (see write_metrics).
METRICS_ARGUMENT_SPEC = dict(
    metrics_textfile=dict(type='path'),
    metrics_create_dir=dict(type='bool', default=False),
    metrics_generation=dict(type='int'),
)
SYNC_ARGUMENT_SPEC.update(METRICS_ARGUMENT_SPEC)
# The change-size guard's options, shared by every module that makes something hold a list of entries.
CHANGE_GUARD_ARGUMENT_SPEC = dict(
    max_change_percent=dict(type='float'),
    force_change=dict(type='bool', default=False),
    allow_empty=dict(type='bool', default=False),
    min_prefix_v4=dict(type='int', default=8),
    min_prefix_v6=dict(type='int', default=19),
)
SYNC_ARGUMENT_SPEC.update(CHANGE_GUARD_ARGUMENT_SPEC)
# Lockout protection's options, shared by every module that makes something hold a list of entries.
PROTECT_ARGUMENT_SPEC = dict(
    lockout_protection=dict(type='bool', default=True),
    protect=dict(type='list', elements='str', default=[]),
)
SYNC_ARGUMENT_SPEC.update(PROTECT_ARGUMENT_SPEC)
PROTECTED_SAMPLE = 20
# An admit-only set (a backend that enforces rules by port offers it): its entries are the only sources its rules'
# ports answer, and lockout protection adds to it what it would otherwise take out.
ADMIT_ARGUMENT_SPEC = dict(admit=dict(type='bool', default=False))
# Sets that come and go with the shadow copy (one per port scope): those a call no longer names are removed.
REMOVE_OTHER_SETS_ARGUMENT_SPEC = dict(remove_other_sets=dict(type='str'))
# The entries the controller sends compressed are expanded as a stream, never past this.
ENTRIES_MAX_BYTES = 256 * 1024 * 1024
ENTRIES_SOURCES = ('entries_file', 'entries', 'src', 'entries_zlib')
SYNC_MUTUALLY_EXCLUSIVE = [ENTRIES_SOURCES]


def rules_argument_spec(chains, targets, log_limit):
    """The ``rules`` option of a sync module; each backend names its chains and targets its own way."""
    return dict(type='list', elements='dict', options=dict(
        chain=dict(type='str', default=chains[0], choices=list(chains)),
        target=dict(type='str', default=targets[0], choices=list(targets)),
        direction=dict(type='str', choices=['src', 'dst']),
        ports=dict(type='list', elements='int'),
        protocol=dict(type='str', default='tcp', choices=['tcp', 'udp']),
        log=dict(type='bool', default=False),
        log_prefix=dict(type='str', default='fleetwall-drop: '),
        log_limit=dict(type='str', default=log_limit),
    ))


def check_common_params(module):
    """Checks every sync module makes of its timeout and rules before touching anything."""
    params = module.params
    if params.get('timeout') is not None and not 0 < params['timeout'] <= 2147483:
        module.fail_json(msg='timeout must be between 1 and 2147483 seconds, got %d' % params['timeout'])
    set_rules = [rule for item in params.get('sets') or [] for rule in item.get('rules') or []]
    for rule in (params.get('rules') or []) + set_rules:
        for port in rule.get('ports') or []:
            if not 0 < port < 65536:
                module.fail_json(msg='port %d is out of range 1-65535' % port)


# Options that name a file this module writes or removes.
FILE_OPTIONS = ('persist_file', 'restore_unit', 'metrics_textfile', 'dest')


def check_paths(module):
    """Fail, before any lock or directory is made, on a path option no file can have (files.path_problem), the
    options of each of ``sets`` included."""
    named = [(name, spec, module.params.get(name)) for name, spec in module.argument_spec.items()]
    set_options = (module.argument_spec.get('sets') or {}).get('options') or {}
    for index, item in enumerate(module.params.get('sets') or []):
        named += [('sets[%d].%s' % (index, name), spec, item.get(name)) for name, spec in set_options.items()]
    for name, spec, value in named:
        if spec.get('type') == 'path' and isinstance(value, str) and path_problem(value):
            module.fail_json(msg='%s: %s' % (name, path_problem(value)))
        if name.rpartition('.')[2] in FILE_OPTIONS and isinstance(value, str) and os.path.lexists(value) \
                and not os.path.isfile(value):
            # A removal unlinked the set's save file after the set was gone: a directory there failed it half-way.
            module.fail_json(msg='%s: %s exists and is not a regular file' % (name, value))


# The longest wait for another run's lock: a day.  A larger number is a mistake (1e400 overflowed the clock).
MAX_LOCK_TIMEOUT = 86400


def check_sample_and_lock(module):
    """The checks every locking sync module makes of its paths, diff_sample and lock_timeout."""
    check_paths(module)
    if module.params['diff_sample'] < 0:
        module.fail_json(msg='diff_sample must not be negative')
    check_lock_timeout(module)


def check_lock_timeout(module):
    if not 0 <= module.params['lock_timeout'] <= MAX_LOCK_TIMEOUT:
        module.fail_json(msg='lock_timeout must be between 0 and %d seconds' % MAX_LOCK_TIMEOUT)


def desired_entries(module, params, store, carried=None, protection=None):
    """The desired entries (sync.Entries) of a set with these options, or None to ask for an upload.

    When they are the ones the host already holds (``entries_sha256`` names
    them), their lines are read only if the engine needs them.  ``carried``
    maps sha256 to the ``entries_zlib`` another set of the same call brought.
    """
    entries_zlib = params['entries_zlib']
    if (entries_zlib is None and params['entries_sha256'] and params['entries_file'] is None
            and params['entries'] is None):
        # Named by sha256 alone: the host holds them already, another set of
        # this call brought them, or the action plugin must send them.
        record = store.load()
        if record and record.get('source_sha256') == params['entries_sha256'] \
                and not _admitted_under_other_protection(params, record, protection):
            # Read only if the engine needs them: on a host that has them
            # applied already (the usual no-op) the record alone proves it.
            return Entries(params['entries_sha256'], load=lambda: read_entries_source(store.entries_path)[::2])
        entries_zlib = (carried or {}).get(params['entries_sha256'])
        if entries_zlib is None:
            return None
    if entries_zlib is not None or params['entries_file'] is not None or params['entries'] is not None:
        if entries_zlib is not None:
            try:
                raw = decode_bounded(base64.b64decode(entries_zlib), ENTRIES_MAX_BYTES, 'zlib')
            except (ValueError, CorruptBody) as exc:
                raise SyncError('entries_zlib is not base64 of zlib data: %s; nothing applied' % exc)
            except TooLarge:
                raise SyncError('entries_zlib expands to more than %d bytes (a million IPv6 entries take about '
                                '40 MB); nothing applied' % ENTRIES_MAX_BYTES)
            entries = Entries.read(raw=raw)
        else:
            entries = Entries.read(params['entries_file'], params['entries'])
        if params['entries_sha256'] and params['entries_sha256'] != entries.sha256:
            raise SyncError('the entries have sha256 %s, expected %s (truncated transfer?); nothing applied'
                            % (entries.sha256, params['entries_sha256']))
        return entries
    if params['src']:
        raise SyncError('src is handled by the action plugin; call the module by its full name '
                        'fleetwall.blocklist.%s so that the action plugin runs' % module._name.split('.')[-1])
    if params.get('state', 'present') == 'present':
        raise SyncError('one of entries_file, entries or src is required with state=present')
    return None


def _admitted_under_other_protection(params, record, protection):
    """True for an admit-only set applied under other lockout protection: what the host recorded holds what that
    protection added (an SSH client of before), which is not the source; the action plugin sends the source again."""
    return bool(params.get('admit')) and record.get('protection') != (protection.digest if protection else None)


def sets_argument_spec(argument_spec, names):
    """The ``sets`` option: several sets in one module call, each overriding ``names`` of the module's options.

    Every task is a round trip per host, and on a fleet the round trips are
    the cost: the two families (nft: four sets) of a host go in one call.
    An option a set leaves out is the task's own.
    """
    options = {}
    for name in names:
        if name not in argument_spec:
            continue  # a per-set option this backend does not have (firewalld keeps no save file)
        spec = dict(argument_spec[name])
        spec.pop('default', None)
        spec.pop('required', None)
        options[name] = spec
    options['name']['required'] = True
    return dict(type='list', elements='dict', options=options,
                mutually_exclusive=[tuple(n for n in ENTRIES_SOURCES if n in options)])


# What a sync module's per-set ``sets`` elements can say; each module adds its own (family, type...).
SET_OPTIONS = ('name', 'entries_file', 'entries', 'src', 'entries_sha256', 'entries_zlib', 'persist_file')


def combine_set_results(results):
    """One result of several sets' results: sums, any change, the per-set results as ``sets``.

    The module returns it; the action plugin makes it again when it sent some
    sets' entries in a second call.
    """
    combined = {'changed': any(r.get('changed') for r in results), 'sets': results}
    for key in ('added', 'removed', 'total'):
        combined[key] = sum(r.get(key) or 0 for r in results)
    if any(r.get('upload_required') for r in results):
        combined['upload_required'] = True
    if any(r.get('transferred') for r in results):
        combined['transferred'] = True
    diffs = [r['diff'] for r in results if isinstance(r.get('diff'), dict)]
    if diffs:
        combined['diff'] = {'before': ''.join(d.get('before', '') for d in diffs),
                            'after': ''.join(d.get('after', '') for d in diffs)}
    failed = [r for r in results if r.get('failed')]
    if failed:
        combined['failed'] = True
        combined['msg'] = '%d of %d sets failed: %s' % (
            len(failed), len(results), '; '.join('%s: %s' % (r.get('name'), r.get('msg')) for r in failed))
    return combined


def run_sync(module, build):
    """Sync the module's set, or each of its ``sets``, and exit with the common result shape.

    ``build(params)`` returns ``(adapter, rules, entry_filter)`` for one
    set's options; see sync_one.  With ``sets``, every set is synced (one
    failing does not stop the others, as with a loop) and the result holds
    the sums and each set's result under ``sets``.
    """
    params = module.params
    check_common_params(module)
    policy = sync_policy(module)
    if params.get('sets') is None:
        result = sync_one(module, params, build, policy)
    else:
        # A file's entries travel once a call (the action plugin): sets with the same source find them here.
        carried = dict((item['entries_sha256'], item['entries_zlib']) for item in params['sets']
                       if item.get('entries_sha256') and item.get('entries_zlib'))
        results = [sync_one(module, set_options(params, overrides), build, policy, carried)
                   for overrides in params['sets']]
        removed = [sync_one(module, set_options(params, overrides), build, policy)
                   for overrides in other_sets_to_remove(params, results)]
        result = combine_set_results(results)
        if removed:
            # Beside the sets, not among them: the action plugin matches the sets' results to the sets it sent.
            result['removed_sets'] = removed
            result['changed'] = result['changed'] or any(r.get('changed') for r in removed)
            if any(r.get('failed') for r in removed):
                result.update(failed=True, msg='; '.join('%s: %s' % (r['name'], r.get('msg')) for r in removed
                                                         if r.get('failed')))
    own = set(r['backend'] for r in result.get('sets', [result]) if r.get('backend'))
    note_other_backends(module, result, own)
    write_metrics(module, result)
    finish(module, result)


def other_sets_to_remove(params, results):
    """With ``remove_other_sets`` (a name prefix): the sets this module recorded in the state directory, whose names
    begin with it, that the call does not name, as removals (``state: absent``), each with the save file the others
    keep beside theirs.

    Only once every set the call names is in place (none failed, was refused or waits for its entries): a set
    removed beside a replacement that did not go in (an admit-only port's new list refused) would leave its ports
    open to everyone.
    """
    prefix = params.get('remove_other_sets')
    own = set(backend_of_record(result['backend']) for result in results if result.get('backend'))
    if not prefix or not own or any(r.get('failed') or r.get('refused') or r.get('upload_required') for r in results):
        return []
    named = set(item['name'] for item in params['sets'])
    persist = next((item.get('persist_file') for item in params['sets'] if item.get('persist_file')), None)
    suffix = os.path.splitext(persist)[1] if persist else ''
    return [{'name': name, 'state': 'absent',
             'persist_file': os.path.join(os.path.dirname(persist), name + suffix) if persist else None}
            for backend, name, _record in read_records(params['state_dir'])
            if backend in own and name.startswith(prefix) and name not in named]


def set_options(task_params, overrides):
    """One set's options: the task's, with what the set gives of its own (SET_OPTIONS) over them."""
    given = dict((k, v) for k, v in overrides.items() if v is not None)
    options = dict(task_params, **given)
    options['sets'] = None
    if any(k in given for k in ENTRIES_SOURCES):
        # A set that names its entries does not also take the task's.
        options.update((k, given.get(k)) for k in ENTRIES_SOURCES)
    return options


def sync_policy(module):
    """The task's SyncPolicy: the options every set shares, checked and read once; lockout protection's ranges
    are worked out here, once for all the sets."""
    params = module.params
    if not 0 <= params['full_reload_fraction'] <= 1:
        module.fail_json(msg='full_reload_fraction must be between 0 and 1')
    check_sample_and_lock(module)
    check_change_guard(module)
    return SyncPolicy(check_mode=module.check_mode, want_diff=module._diff, verify=params['verify'],
                      full_reload_fraction=params['full_reload_fraction'], diff_sample=params['diff_sample'],
                      verify_interval=params['verify_interval'], max_change_percent=params['max_change_percent'],
                      force_change=params['force_change'], allow_empty=params['allow_empty'],
                      protection=host_protection(module) if params['state'] == 'present' else None)


# The kernel backends (backends.py) by the id their records give (metrics.read_records).  The web tier (nginx)
# sits beside one of them, and is never a host's previous backend.


def note_other_backends(module, result, own):
    """``other_backends``: the other kernel backends whose records are in the state directory, which a switch of the
    host's backend left behind.  The push play removes what they installed once this backend's block is in force
    (docs/backends.md, "Switching backends")."""
    # Only behind a block in force: not on a removal (UFW's is a sync to no entries), a failure or an empty set.
    if module.params.get('state', 'present') != 'present' or result.get('failed') or not result.get('total'):
        return
    own = set(backend_of_record(backend) for backend in own)
    # A record of no entries blocks nothing (UFW's removal keeps one, of 0).
    found = set(backend for backend, _set, record in read_records(module.params['state_dir']) if record['count'])
    others = sorted(found & set(KERNEL_BACKENDS) - own)
    if others:
        result['other_backends'] = others


def finish(module, result):
    """Exit with ``result``: its warnings said, failed when it failed, and the call's own time (``elapsed``)."""
    result['elapsed'] = round(time.monotonic() - STARTED, 3)
    for warning in result.pop('warnings', []):
        module.warn(warning)
    for item in result.get('sets') or []:
        for warning in item.pop('warnings', []):
            module.warn(warning)
    if result.get('failed'):
        result.pop('failed')
        module.fail_json(**result)
    module.exit_json(**result)


def sync_one(module, params, build, policy, carried=None):
    """One set's sync under its lock, with its options ``params``; returns its result, ``failed`` with ``msg`` on
    error.

    ``rules`` (an adapter.SetRules) keeps the backend's enforcing rules in
    place; rules go in after the set exists and come out before it is
    destroyed, so a rule never points at nothing.
    ``entry_filter(lines)`` keeps part of the entries (nft's hosts/networks
    split); the record still names the source by its sha256, so the
    checksum-first transfer works the same.
    """
    result = {'changed': False, 'name': params['name']}
    try:
        adapter, rules, entry_filter = build(params)
    except SyncError as exc:
        result.update(failed=True, msg=str(exc))
        return result
    result['backend'] = adapter.backend
    store = StateStore(params['state_dir'], adapter.backend, params['name'])

    def sync():
        if params['state'] == 'absent':
            remove_set(module, params, adapter, store, rules, result)
        elif desired is None:
            result['upload_required'] = True
        else:
            apply_set(module, params, adapter, store, rules, desired, policy, result)

    try:
        desired = _desired_before_lock(module, params, store, carried, adapter, entry_filter, policy.protection)
    except SyncError as exc:
        result.update(failed=True, msg=str(exc))
        return result
    _locked(module, store, result, sync)
    if params['state'] == 'absent' and not result.get('failed') and not module.check_mode:
        remove_state_files(store, params.get('persist_file'))
    return result


def apply_set(module, params, adapter, store, rules, entries, policy, result):
    """``state: present``, under the set's lock: the set, then its rules, then what a boot restores."""
    if params.get('admit'):
        policy = policy.admitting()
        refuse_admit_lockout(params, adapter, entries, policy.protection)
    result.update(sync_set(adapter, store, entries, policy))
    if result.get('admitted'):
        result['admitted'] = result['admitted'][:PROTECTED_SAMPLE]
    report_protected(module, result, adapter.label, result.pop('protected', None))
    if adapter.warnings:
        result.setdefault('warnings', []).extend(adapter.warnings)
    if result.get('refused'):
        module.warn('%s: %s' % (adapter.label, result['refused']))
    if params.get('rules') is not None:
        changes = rules.ensure(params['rules'], module.check_mode, result.get('verified', False))
        if getattr(changes, 'warnings', None):
            result.setdefault('warnings', []).extend(changes.warnings)
        result['rules_changed'] = list(changes)
        result.update(rules.report())
        if changes:
            result['changed'] = True
            if module._diff and 'diff' in result:
                rules_diff(result['diff'], changes)
    save_for_boot(module, params, adapter, store, result)


def save_for_boot(module, params, adapter, store, result):
    """With ``persist_file``: what the boot unit restores (the set, and what save_paths adds), written after a
    change or when missing; with ``restore_unit`` too: the unit and the adapter's drop-ins.  A failure here is a
    warning beside the applied set, never a failure that hides it."""
    persist, unit = params.get('persist_file'), params.get('restore_unit')
    saved = _save_paths(adapter, persist)
    if saved and not module.check_mode and (result['changed'] or not all(os.path.exists(p) for p in saved)):
        result['persist_created'] = not os.path.exists(persist)
        try:
            if not os.path.isdir(os.path.dirname(persist)):
                os.makedirs(os.path.dirname(persist), 0o700)
            remove_write_leftovers(persist)  # the set's lock is held: a leftover is a killed run's
            adapter.save_to(persist, write_atomic, store)
        except (IOError, OSError) as exc:
            result.setdefault('warnings', []).append(
                'could not write %s: %s; the live set is in place but will not survive a reboot'
                % (persist, exc.strerror or exc))
    if unit and persist:
        # In the same call as the save file: a copy task and a link task
        # would cost every host three more round trips on a first push.
        save_dir = os.path.dirname(persist)
        try:
            installed = ensure_unit(unit, adapter.restore_unit(save_dir), module.check_mode)
            installed = ensure_dropins(os.path.dirname(unit), adapter.restore_dropins(save_dir),
                                       module.check_mode) or installed
            installed = ensure_plugins(adapter.restore_plugins(save_dir), module.check_mode) or installed
        except (IOError, OSError) as exc:
            result.setdefault('warnings', []).append(
                'could not install %s: %s; the live set is in place but will not be restored at boot'
                % (unit, exc.strerror or exc))
        else:
            if installed:
                result.update(changed=True, restore_unit_changed=True)


def rules_diff(diff, changes):
    """The rules' changes in the diff: a removal as a ``-`` line (before), anything that adds or replaces as a
    ``+`` line (after); every change was a ``-`` line, so a first run showed the rules it added as removed."""
    for change in changes:
        side = 'before' if change.startswith('remove') else 'after'
        diff[side] += '# rules: %s\n' % change


def remove_set(module, params, adapter, store, rules, result):
    """``state: absent``, under the set's lock: its rules, the set (and nft's table once empty), its record, its
    save file, and the boot unit once no save file is left beside it; the result says what went."""
    changes = list(rules.remove(module.check_mode))
    live = adapter.probe()
    # nft and firewalld cannot count cheaply; the record says how many we put there.
    count = live.count if live.count is not None else (store.load() or {}).get('count') or 0
    result.update(changed=bool(changes) or live.exists, removed=count if live.exists else 0, added=0,
                  total=0, rules_changed=changes, removed_files=[])
    if module._diff:
        result['diff'] = {'before': '%s: %d entries\n' % (adapter.label, count) if live.exists else '',
                          'after': ''}
    persist, unit = params.get('persist_file'), params.get('restore_unit')
    saved = _save_paths(adapter, persist, every=True)
    files = [path for path in [store.record_path, store.entries_path] + saved if os.path.exists(path)]
    dropins = sorted(adapter.restore_dropins(os.path.dirname(persist))) if persist and unit else []
    plugins = sorted(adapter.restore_plugins(os.path.dirname(persist))) if persist and unit else []
    if persist and unit and not _other_save_files(persist):
        files += remove_unit(unit, dropins, plugins, check_mode=True)
    result['removed_files'] = files
    result['changed'] = result['changed'] or bool(files)
    naming = adapter.saved_rulesets_naming()
    if naming:
        result.setdefault('warnings', []).append(
            '%s is removed, but is still named in %s: restoring that saved ruleset at boot (netfilter-persistent) '
            'will fail as a whole; save the ruleset again (netfilter-persistent save) or edit it'
            % (adapter.label, ' and '.join(naming)))
    if module.check_mode:
        return
    if adapter.destroy():
        result['changed'] = True
    store.clear()
    for path in saved:
        if os.path.exists(path):
            os.unlink(path)
    if persist and unit and not _other_save_files(persist):
        remove_unit(unit, dropins, plugins)
        remove_empty_dirs_under(os.path.dirname(persist), plugins)


def _save_paths(adapter, persist, every=False):
    """The files the adapter's save_to writes beside ``persist`` (the adapter says which; the set's save file by
    default), or none without ``persist``."""
    if not persist:
        return []
    return adapter.save_paths(persist, every=every)


def _other_save_files(persist):
    """The save files beside ``persist`` of the other sets the boot unit still restores."""
    directory, extension = os.path.dirname(persist), os.path.splitext(persist)[1]
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [name for name in names if name.endswith(extension) and name != os.path.basename(persist)]


def remove_state_files(store, persist):
    """After a removal, once the lock is let go: the lock file, and the state and save directories if nothing
    else is in them.  A run that waited on this lock goes on with the file it opened, and writes a new one."""
    for path in (store.lock_path,):
        try:
            os.unlink(path)
        except OSError:
            pass
    for directory in filter(None, (os.path.dirname(persist) if persist else None, store.state_dir)):
        try:
            os.rmdir(directory)
        except OSError:
            pass        # not empty: another set's files, or the operator's


def _desired_before_lock(module, params, store, carried, adapter, entry_filter, protection=None):
    """The entries (sync.Entries) for sync_set, read before the lock; None when there are none to apply
    (``state: absent``) or the action plugin must upload them.

    Their lines are read only when the engine needs them (see desired_entries), except on a host where this set
    has no lock file yet: a call whose entries are refused must leave nothing behind there (no state_dir, no
    lock), so they are read and validated now, and the engine need not check them again (``canonical``).
    Elsewhere the engine validates only what is new, under the lock.
    """
    if params['state'] == 'absent':
        return None
    given = desired_entries(module, params, store, carried, protection)
    if given is None:
        return None

    def wanted():
        lines, kept_raw = given.lines, given.raw
        refuse_broad_entries(module, lines)
        if entry_filter is not None:
            kept = entry_filter(lines)
            if len(kept) != len(lines):
                lines = kept
                kept_raw = ('\n'.join(lines) + '\n').encode() if lines else b''
        return lines, kept_raw
    if os.path.exists(store.lock_path):
        return Entries(given.sha256, load=wanted)
    lines, kept_raw = wanted()
    return Entries(given.sha256, lines, kept_raw, canonical=entries_are_canonical(lines, adapter.version,
                                                                                  adapter.host_only))


def _locked(module, store, result, body):
    """Run ``body()`` holding the store's lock; an error marks ``result`` failed.

    Every sync module fails the same way: a SyncError is its message, an
    I/O error names the file; both with what ``result`` holds so far.
    """
    try:
        store.lock(module.params['lock_timeout'])
        try:
            body()
        finally:
            store.unlock()
    except SyncError as exc:
        result.update(failed=True, msg=str(exc))
    except (IOError, OSError) as exc:
        result.update(failed=True, msg=io_failure(exc, 'I/O error'))


def io_failure(exc, what):
    """The message of an I/O error: the file and why; and where it is a permission refused to a user other than
    root, that the modules change the host's firewall and its state as root (a run without become failed with
    "...lock: Permission denied" and nothing more)."""
    message = '%s: %s' % (getattr(exc, 'filename', '') or what, exc.strerror or exc)
    if getattr(exc, 'errno', None) in (errno.EACCES, errno.EPERM) and os.geteuid() != 0:
        message += ('; this module changes the host\'s firewall and its state files, which takes root: run it as '
                    'root (become: true on the play or the task)')
    return message


# The options of a module that rewrites a whole file (UFW's rules, nginx's geo
# file) rather than patching a kernel set: no listing to trust or verify.
FILE_SYNC_ARGUMENT_SPEC = dict((key, SYNC_ARGUMENT_SPEC[key]) for key in (
    'entries_file', 'entries', 'src', 'entries_sha256', 'entries_zlib', 'diff_sample', 'state_dir',
    'lock_timeout', 'lockout_protection', 'protect', 'metrics_textfile', 'metrics_create_dir',
    'metrics_generation') + tuple(CHANGE_GUARD_ARGUMENT_SPEC))


def host_protection(module):
    """What this host must never block (protect.Protection), from the module's options.

    With ``lockout_protection``: the client of the SSH session the module runs
    under, the host's own addresses and its default gateways; always: the
    ``protect`` entries (the roles pass the shadow copy's allowlist).
    """
    params = module.params
    items = [(text, 'protect') for text in params['protect'] or []]
    if params['lockout_protection']:
        items.extend((address, 'SSH client') for address in ssh_client_addresses())
        ip_bin = module.get_bin_path('ip', required=True, opt_dirs=['/sbin', '/usr/sbin'])
        try:
            own, gateways = host_addresses(run_tool, ip_bin)
        except AddressError as exc:
            module.fail_json(msg='lockout protection: %s (lockout_protection=false turns it off)' % exc)
        items.extend((address, 'own address') for address in own)
        items.extend((address, 'default gateway') for address in gateways)
    try:
        return Protection(items)
    except AddressError as exc:
        module.fail_json(msg='lockout protection: %s' % exc)


def check_admit_rules(params):
    """SyncError unless an admit-only set's rules each name ports on the input hook: admitting only its entries to
    all traffic, or to what the host sends, would cut the host off from everyone else."""
    if not params.get('admit') or params['state'] != 'present':
        return
    rules = params.get('rules')
    if not rules or any(not rule.get('ports') or (rule.get('chain') or 'input') != 'input' for rule in rules):
        raise SyncError('set %s: an admit-only set needs rules, each on the input chain with ports: only those ports '
                        'refuse the sources it does not hold' % params['name'])


def refuse_admit_lockout(params, adapter, entries, protection):
    """SyncError when an admit-only set would leave the SSH connection this module runs under outside, on a port its
    rules close: the managing connection is the last thing a change may cut (lockout_protection=false took the
    session's client out of what is added)."""
    ports = set(port for rule in params.get('rules') or [] for port in rule.get('ports') or [])
    for client, server_port in ssh_connections():
        if server_port is not None and server_port not in ports:
            continue
        if protection and protection.covered([client]):
            continue
        if adapter.version != (6 if ':' in client else 4):
            continue
        if Protection((line, 'admitted') for line in entries.lines).covered([client]):
            continue
        raise SyncError('set %s: admit-only on port %s, it would not hold %s, the client of the SSH session this runs '
                        'under, and that session would be cut; nothing applied. Put the address in protect, or turn '
                        'lockout_protection on, which admits it' % (params['name'], server_port, client))


def report_protected(module, result, label, findings):
    """What lockout protection carved out: a sample and the count in the result, and one warning."""
    if findings:
        result.update(protected=findings[:PROTECTED_SAMPLE], protected_count=len(findings))
        module.warn(findings_warning(label, findings))


def check_change_guard(module):
    """Fail on change guard options that cannot be meant."""
    params = module.params
    if params['max_change_percent'] is not None and params['max_change_percent'] < 0:
        module.fail_json(msg='max_change_percent must not be negative')
    if not 0 <= params['min_prefix_v4'] <= 32 or not 0 <= params['min_prefix_v6'] <= 128:
        module.fail_json(msg='min_prefix_v4 must be 0-32 and min_prefix_v6 0-128')


def change_guard(module):
    """The module's change guard: ``guard(changes, before, after)`` gives why a change is refused, or None.

    The host repeats the build's cheap guards (the size of a change, and never
    emptying what holds entries) whatever arrives: a file truncated or
    replaced after the build must not empty every host's set.
    """
    check_change_guard(module)
    params = module.params
    return SyncPolicy(max_change_percent=params['max_change_percent'], force_change=params['force_change'],
                      allow_empty=params['allow_empty']).refusal


def refuse_broad_entries(module, lines):
    """SyncError when an entry is a network broader than the module's min_prefix_v4/v6; nothing is applied.

    The build refuses them; one arriving here was added on the way (a hand edit, a tampered file). Only
    lines with a prefix are looked at, so a million bare addresses cost one pass in C.
    """
    minimum = {4: module.params['min_prefix_v4'], 6: module.params['min_prefix_v6']}
    broad = []
    for line in [line for line in lines if '/' in line]:
        prefix = line.rpartition('/')[2].strip()
        version = 6 if ':' in line else 4
        if prefix.isascii() and prefix.isdigit() and int(prefix) < minimum[version]:
            broad.append(line)
    if broad:
        raise SyncError('%d entries are broader than the minimum prefix (/%d for IPv4, /%d for IPv6; the build '
                        'refuses them), first %s; nothing applied (min_prefix_v4/min_prefix_v6 allow them)'
                        % (len(broad), minimum[4], minimum[6], ', '.join(repr(b) for b in broad[:5])))


def run_file_sync(module, backend, name, sync):
    """Lock, read the desired entries, run ``sync(lines)`` and exit with its result.

    ``sync(lines, guard, vouched, withdraw)`` returns the common result shape and raises SyncError to
    fail with nothing changed; ``guard`` is the module's change-size guard
    (change_guard), and a refused change comes back as ``refused``.  ``vouched``
    says the record names these entries (the last apply of them finished);
    ``withdraw()`` takes the record back before anything is written, so that
    an apply killed half-way is redone by the next run.  The entries are recorded by sha256 after a
    successful run, so the action plugin's checksum-first transfer works as
    for the set backends.
    """
    check_sample_and_lock(module)
    guard = change_guard(module)
    protection = host_protection(module)
    store = StateStore(module.params['state_dir'], backend, name)
    result = {'changed': False, 'name': name}

    def body():
        if desired is None:
            result['upload_required'] = True
            return
        lines, sha, raw = desired
        lines, findings = protection.carve(lines)
        record = store.load()
        result.update(sync(lines, guard, bool(record) and record.get('source_sha256') == sha, store.invalidate))
        report_protected(module, result, '%s %s' % (backend, name), findings)
        if result.get('refused'):
            module.warn('%s %s: %s' % (backend, name, result['refused']))
            return
        if not module.check_mode:
            record = store.load()
            if not record or record.get('source_sha256') != sha:
                store.save({'source_sha256': sha, 'count': result.get('total')}, raw=raw)

    try:
        desired = _file_entries_before_lock(module, store)
    except SyncError as exc:
        result.update(failed=True, msg=str(exc))
    else:
        _locked(module, store, result, body)
    note_other_backends(module, result, {backend})
    write_metrics(module, result)
    finish(module, result)


def _file_entries_before_lock(module, store):
    """``(lines, sha, raw)`` of a file backend's entries, read before the lock, or None to ask for an upload.

    Where this file has no lock yet, they are validated now too (both families), so that a call whose entries are
    refused leaves no state_dir and no lock behind; the backend validates them again as it writes.
    """
    entries = desired_entries(module, module.params, store)
    if entries is None:
        return None
    lines, sha, raw = entries.lines, entries.sha256, entries.raw
    refuse_broad_entries(module, lines)
    if not os.path.exists(store.lock_path):
        for version in (4, 6):
            entries_are_canonical([line for line in lines if (':' in line) == (version == 6)], version)
    return lines, sha, raw


def write_metrics(module, result):
    """With ``metrics_textfile``, rewrite the host's metrics file in the same call, after a successful sync.

    A separate metrics task would cost the fleet one more round trip per
    host; the file covers every set the state directory records, so the
    last module of the run to write it leaves the whole picture.  A failed
    sync leaves the previous file, whose last-sync time then grows old.
    """
    path = module.params.get('metrics_textfile')
    if not path or module.check_mode or result.get('failed'):
        return
    try:
        result['metrics'] = write_textfile(
            run_tool, module.get_bin_path, path, module.params['state_dir'],
            generation=module.params.get('metrics_generation'),
            create_dir=module.params.get('metrics_create_dir'))
        result.setdefault('warnings', []).extend(result['metrics'].pop('warnings', []))
    except (IOError, OSError) as exc:
        # The sync is done; metrics that cannot be written must not undo that.
        result.setdefault('warnings', []).append('could not write the metrics file %s: %s'
                                                 % (path, exc.strerror or exc))
