# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The backend-neutral set synchronisation engine.

A backend adapter (a SetAdapter, adapter.py) knows how to look at its kernel object cheaply (``probe``,
and ``identity`` where a count is not cheap), how to list it fully
(``read_entries``) and how to apply a batch atomically (``apply_full``,
``apply_incremental``).  This engine decides what to apply.  An adapter
whose backend cannot replace a whole set at once (firewalld) says so with
``replaces_whole = False``: its ``apply_full`` only creates, and every change
to an existing object is incremental.  An adapter whose first creation has an
effect beyond the set (firewalld's one reload) says what it would be in check
mode, with ``preview_creation``, among its ``warnings``.

Listing a million-entry set costs about a second with ipset and about a
minute with nft, so the engine keeps a record of what it applied (the entries
and a fingerprint of the live object).  When the live object still matches
that record -- same type, same element count -- the record stands in for the
live listing.  Any mismatch, or ``verify``, falls back to the full listing, so
drift is always found by count and on request by content.
"""

from __future__ import annotations

import copy

import hashlib
import heapq
import json
import os
import socket
import time
from collections import deque
from itertools import filterfalse, repeat

from .addresses import AddressError, BITS, parse_network, format_network
from .files import acquire_lock, lock_holder, open_regular, remove_leftovers, remove_write_leftovers, write_atomic

DEFAULT_DIFF_SAMPLE = 20
DEFAULT_FULL_RELOAD_FRACTION = 0.2


class SyncError(Exception):
    """A sync that cannot proceed; the live object has been left as it was."""


class LiveInfo(object):
    def __init__(self, exists, count=0, fingerprint=None, capacity=None, detail=None):
        self.exists = exists
        self.count = count
        self.fingerprint = fingerprint or {}
        self.capacity = capacity
        self.detail = detail or {}


def read_entries_source(entries_file=None, entries=None, raw=None):
    """Return (lines, sha256, raw_bytes) of the desired entries.

    The entries come as ``raw`` bytes, from ``entries_file``, or as a list.

    Blank lines and ``#`` comments are allowed in an entries file; the sha256
    is over the file's bytes, so it matches what the controller computed.
    """
    if raw is None and entries_file is not None:
        try:
            with open_regular(entries_file) as handle:
                raw = handle.read()
        except (IOError, OSError) as exc:
            raise SyncError('cannot read entries_file %s: %s' % (entries_file, exc.strerror or exc))
    elif raw is None:
        raw = ('\n'.join(str(e).strip() for e in entries) + '\n').encode('utf-8') if entries else b''
    sha = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise SyncError('entries are not UTF-8 text (byte %d); refusing to apply them' % exc.start)
    if '#' not in text and ' ' not in text and '\t' not in text and '\r' not in text:
        # The common case, the shadow copy's output: one bare entry per
        # line.  Splitting on newlines alone (never on other whitespace, so
        # '1.2.3.4 5.6.7.8' stays one invalid line rather than two entries)
        # is several times faster than a Python loop over a million lines.
        lines = text.split('\n')
        if lines[-1] == '':
            lines.pop()     # the final newline
        if '' in lines:
            # Blank lines (rare): one more pass drops them; a clean file costs a scan, not a second list.
            lines = list(filter(None, lines))
        return lines, sha, raw
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            lines.append(line)
    return lines, sha, raw


class Entries(object):
    """The desired entries of one set: their source's sha256 at once, their lines only when they are needed.

    On a host that holds them applied already (the usual no-op) the record's sha256 is the whole check, and
    reading a million lines would be wasted: ``load`` then stands in for the lines and is called the first
    time they are asked for. ``raw`` is the source's bytes, which can stand in for the record's entries file
    when every line is canonical; ``canonical`` says the lines were all found canonical already.
    """

    def __init__(self, sha256, lines=None, raw=None, load=None, canonical=False):
        self.sha256 = sha256
        self._lines = lines
        self.raw = raw
        self._load = load
        self.canonical = canonical

    @classmethod
    def read(cls, entries_file=None, entries=None, raw=None):
        """The entries of a file, a list or bytes (read_entries_source), read now."""
        lines, sha256, raw = read_entries_source(entries_file, entries, raw)
        return cls(sha256, lines, raw)

    @property
    def lines(self):
        if self._lines is None:
            self._lines, self.raw = self._load()
        return self._lines

    def without(self, lines):
        """These entries with ``lines`` in place of theirs (protected ones carved out): the source's bytes no
        longer describe them."""
        return Entries(self.sha256, lines, None, canonical=self.canonical)


class SyncPolicy(object):
    """How a sync goes, the same for every set of a task: the options every set module shares, read once.

    ``protection`` (protect.Protection) takes the protected addresses out of the entries first, and the result
    lists what covered them under ``protected``; entries already applied under the same protection are not
    checked again, so a 1% change costs 1% of a scan. With ``max_change_percent``, a change (added plus removed)
    larger than that share of the entries in place is refused unless ``force_change``, and emptying what holds
    entries is refused unless ``allow_empty``: ``refusal`` says why. With ``admit`` (an admit-only set, whose entries
    are the only sources its ports answer), the protected addresses are added instead, under ``admitted``.
    """

    def __init__(self, check_mode=False, want_diff=False, verify=False,
                 full_reload_fraction=DEFAULT_FULL_RELOAD_FRACTION, diff_sample=DEFAULT_DIFF_SAMPLE,
                 verify_interval=None, max_change_percent=None, force_change=False, allow_empty=True,
                 protection=None):
        self.check_mode = check_mode
        self.want_diff = want_diff
        self.verify = verify
        self.full_reload_fraction = full_reload_fraction
        self.diff_sample = diff_sample
        self.verify_interval = verify_interval
        self.max_change_percent = max_change_percent
        self.force_change = force_change
        self.allow_empty = allow_empty
        self.protection = protection
        self.admit = False

    def admitting(self):
        """This policy for an admit-only set."""
        policy = copy.copy(self)
        policy.admit = True
        return policy

    def refusal(self, changes, before, after=None):
        """Why the change guard refuses this change, or None (change_refusal)."""
        return change_refusal(changes, before, self.max_change_percent, self.force_change, after, self.allow_empty)


def _bulk_canonical(candidates, version, host_only):
    """True when every candidate is canonical and valid, checked in bulk.

    At a million entries the per-entry parser costs more than the kernel
    load itself, so the common case is checked with as few Python steps per
    entry as possible; the parser stays the fallback and the source of the
    error messages.  For IPv4, glibc's inet_pton accepts exactly the
    canonical dotted quad (no leading zeros, no shorthand), so a successful
    parse is proof of canonical text; IPv6 needs the inet_ntop round trip.
    """
    family = socket.AF_INET6 if version == 6 else socket.AF_INET
    pton, ntop = socket.inet_pton, socket.inet_ntop
    bits = BITS[version]
    # A set of single addresses takes no line with a slash, and inet_pton refuses one: its lines need no filter.
    hosts = candidates if host_only and isinstance(candidates, list) else [t for t in candidates if '/' not in t]
    try:
        if version == 4:
            deque(map(pton, repeat(family), hosts), maxlen=0)
        elif [ntop(family, pton(family, t)) for t in hosts] != hosts:
            return False
        if len(hosts) == len(candidates):
            return True
        if host_only:
            return False
        for text in candidates:
            if '/' not in text:
                continue
            addr, _sep, prefix = text.partition('/')
            packed = pton(family, addr)
            if version == 6 and ntop(family, packed) != addr:
                return False
            # Only ASCII digits: int() also reads '２４' (fullwidth) as 24, which firewalld would then store.
            if not (prefix.isascii() and prefix.isdigit()) or prefix[0] == '0' or not 0 < int(prefix) < bits:
                return False
            if int.from_bytes(packed, 'big') & ((1 << (bits - int(prefix))) - 1):
                return False
    except (OSError, ValueError):
        return False
    return True


def canonicalize(candidates, version, host_only=False, max_errors=5):
    """Validate entries for one family; return the set of canonical texts.

    Any invalid entry aborts the sync before anything is applied: an entries
    file is the output of the shadow copy, so a bad line means corruption or a
    hand edit, and applying the rest would silently weaken protection.
    """
    if _bulk_canonical(candidates, version, host_only):
        return candidates if isinstance(candidates, set) else set(candidates)
    out = set()
    errors = []
    bits = BITS[version]
    for text in candidates:
        try:
            v, start, prefixlen = parse_network(text)
            if v != version:
                raise AddressError('is IPv%d, the set is IPv%d' % (v, version))
            if prefixlen == 0:
                raise AddressError('a default route cannot be blocked')
            if host_only and prefixlen != bits:
                raise AddressError('is a network; this set type holds single addresses only')
        except AddressError as exc:
            errors.append('%r: %s' % (text[:80], exc))
            if len(errors) >= max_errors:
                break
            continue
        out.add(format_network(version, start, prefixlen))
    if errors:
        raise SyncError('invalid entries, nothing applied: %s' % '; '.join(errors))
    return out


def entries_are_canonical(lines, version, host_only=False):
    """True when every line is a canonical entry, False when all are valid but some are not canonical; SyncError
    (canonicalize's message) when any is invalid."""
    if _bulk_canonical(lines, version, host_only):
        return True
    canonicalize(lines, version, host_only)
    return False


class StateStore(object):
    """What this engine last applied to one kernel object, on the target."""

    def __init__(self, state_dir, backend, name):
        self.state_dir = state_dir
        base = os.path.join(state_dir, '%s-%s' % (backend, name))
        self.record_path = base + '.json'
        self.entries_path = base + '.entries'
        self.lock_path = base + '.lock'
        # Where an adapter writes its batch files (files.scratch_file): beside the record, under the lock.
        self.scratch = (state_dir, os.path.basename(base) + '.scratch-')
        self._lock = None

    def lock(self, timeout):
        """Two runs against one set serialise here instead of interleaving.

        Holding the lock, nothing else writes this set's files, so whatever
        temporary files are there were left by a killed run: removed now
        (``leftovers_removed`` says how many).
        """
        self.ensure_dir()
        self._lock = acquire_lock(self.lock_path, timeout)
        if self._lock is None:
            raise SyncError('%s; waited %ss' % (lock_holder(self.lock_path), timeout))
        self.leftovers_removed = (remove_leftovers(*self.scratch)
                                  + remove_write_leftovers(self.record_path, self.entries_path))

    def unlock(self):
        if self._lock:
            self._lock.close()
            self._lock = None

    def ensure_dir(self):
        if not os.path.isdir(self.state_dir):
            os.makedirs(self.state_dir, 0o700)

    def load(self):
        try:
            with open(self.record_path) as handle:
                record = json.load(handle)
        except (IOError, OSError, ValueError):
            return None
        if not os.path.exists(self.entries_path):
            return None
        return record

    def load_entries(self):
        return set(self.load_lines())

    def load_lines(self):
        """The recorded entries as a list, in the record's order; each once (save writes unique lines)."""
        return read_entries_source(entries_file=self.entries_path)[0]

    def save(self, record, entries=None, raw=None):
        """Write entries first, then the record that vouches for them."""
        self.ensure_dir()
        data = raw if raw is not None else ('\n'.join(entries) + '\n' if entries else '').encode()
        write_atomic(self.entries_path, data, 0o600)
        write_atomic(self.record_path, json.dumps(record, sort_keys=True).encode(), 0o600)

    def invalidate(self):
        """Withdraw the record (keep the entries file): the next run compares the live object."""
        try:
            os.unlink(self.record_path)
        except OSError:
            pass

    def clear(self):
        for path in (self.record_path, self.entries_path):
            try:
                os.unlink(path)
            except OSError:
                pass


# Lines a step when a first load builds the set of its lines (_set_in_steps).
SET_STEP = 65536


def _set_in_steps(lines):
    """set(lines), built a slice at a time.

    A first load builds it while another thread starts the kernel's load: one
    C call over a million lines holds the GIL for about 0.1 s, and the load
    would start that much later.  Between slices the other thread gets its turn.
    """
    if not isinstance(lines, list):
        return set(lines)
    out = set()
    for start in range(0, len(lines), SET_STEP):
        out.update(lines[start:start + SET_STEP])
    return out


def _sample(items, size):
    return heapq.nsmallest(size, items) if size else []


def compact_diff(label, before_count, after_count, removed, added, sample_size):
    """A diff Ansible can render: counts and a sample, never the whole set."""
    before = ['%s: %d entries' % (label, before_count)]
    after = ['%s: %d entries' % (label, after_count)]
    removed_sample = _sample(removed, sample_size)
    added_sample = _sample(added, sample_size)
    before.extend(removed_sample)
    after.extend(added_sample)
    if len(removed) > len(removed_sample):
        before.append('... and %d more removed' % (len(removed) - len(removed_sample)))
    if len(added) > len(added_sample):
        after.append('... and %d more added' % (len(added) - len(added_sample)))
    return {'before': '\n'.join(before) + '\n', 'after': '\n'.join(after) + '\n',
            'before_header': label, 'after_header': label}


class _Plan(object):
    """What to change, worked out from the raw lines first.

    The raw difference is exact whenever every new line is canonical, which
    is the shadow copy's output; ``canonical()`` confirms that, and on the
    rare input that is valid but not canonical (``1.2.3.4/32``, upper-case
    IPv6) replans from the canonical forms.  No set of all desired entries is
    built unless it is needed: at a million entries building it costs more
    than the kernel update of a 1% change.
    """

    def __init__(self, lines, baseline, version, host_only, canonical_lines=False):
        self.lines = lines
        self.baseline = baseline
        self.version = version
        self.host_only = host_only
        # Every line was found canonical before the lock was taken (entries_are_canonical): nothing to check again.
        self.canonical_lines = canonical_lines

    def prepare(self):
        baseline, lines = self.baseline, self.lines
        self.before = len(baseline)
        self.added = set(filterfalse(baseline.__contains__, lines)) if baseline else _set_in_steps(lines)
        self.removed = set()
        if baseline:
            self.removed = baseline.copy()
            self.removed.difference_update(lines)
        self.count = self.before - len(self.removed) + len(self.added)
        self.desired = None if baseline else self.added
        self.same_text = self.count == len(lines)

    def canonical(self):
        """Validate the new entries; True if the plan stands, False if it was redone."""
        if self.canonical_lines:
            return True
        canonical_new = canonicalize(self.added, self.version, self.host_only)
        if canonical_new is self.added or canonical_new == self.added:
            return True
        self.desired = (set(self.lines) & self.baseline) | canonical_new
        self.added = canonical_new - self.baseline
        self.removed = self.baseline - self.desired
        self.count = len(self.desired)
        self.same_text = False
        return False

    def desired_entries(self):
        if self.desired is None:
            self.desired = set(self.lines)
        return self.desired

    def loaded_lines_are_the_plan(self):
        """prepare() and canonical() for a first load: True when the lines as the kernel loaded them are the plan
        exactly (all canonical, none twice)."""
        self.prepare()
        return self.canonical() and self.same_text


def change_refusal(changes, before, max_change_percent, force_change, after=None, allow_empty=True):
    """Why a change may not be applied (too large without force, or emptying what holds entries), or None.

    A host whose object is empty takes any change: there is nothing to protect.
    """
    if after == 0 and before and changes and not allow_empty:
        return ('the change would remove all %d entries in place and leave none; nothing applied (an empty or '
                'truncated list is more likely a fault on the way than the intent; allow_empty applies it)' % before)
    if max_change_percent is None or force_change or not before or not changes:
        return None
    share = changes * 100.0 / before
    if share <= max_change_percent:
        return None
    # Named as both the module's option and the roles' variable: the message reaches role users too.
    return ('the change (%d entries added or removed) is %.1f%% of the %d entries in place, above '
            'max_change_percent %s (fleetwall_max_change_percent); nothing applied (force_change, '
            'or fleetwall_force_change with the roles, applies it)'
            % (changes, share, before, max_change_percent))


class _Sync(object):
    """One sync_set call: the adapter and its store, what the live object and the record say, the result so far.

    The steps fill it in as they go: _probe_live the live object, _load_record
    and _judge_record what the record is worth and the first result; the steps
    after them add to the result and, once the object holds the plan, ``applied``.
    """

    def __init__(self, adapter, store, policy):
        self.adapter = adapter
        self.store = store
        self.policy = policy
        self.live = None
        self.record = None
        self.previous_verified_at = 0
        self.fingerprint = None
        self.identity = None
        self.trusted = False
        self.protection_digest = None
        self.result = None
        # The object already holds the plan (a first load validated as it loaded): nothing left to apply.
        self.applied = False


def sync_set(adapter, store, entries, policy=None):
    """Make the adapter's kernel object hold exactly ``entries`` (an Entries), as ``policy`` (a SyncPolicy) says.

    Returns the common result shape of every sync module: changed, added,
    removed, total, and diff when asked for; ``refused`` when the change guard
    refused the change, and then nothing is applied.

    The steps: probe the live object, load and judge the record (done if it
    shows this source applied), carve out the protected entries, plan (a first
    load applies as it validates; any other change passes the change guard),
    report, apply, then probe again and write the record.
    """
    policy = policy or SyncPolicy()
    sync = _Sync(adapter, store, policy)
    _probe_live(sync)
    verify = _load_record(sync)
    _judge_record(sync, verify)
    if _source_already_applied(sync, entries.sha256):
        return _unchanged_result(sync)
    baseline = _baseline(sync)
    entries = _carve_protected(sync, entries, baseline)
    plan = _Plan(entries.lines, baseline, adapter.version, adapter.host_only, entries.canonical)
    if not sync.live.exists and not policy.check_mode:
        _first_load(sync, plan)
    else:
        refusal = _plan_existing(sync, plan)
        if refusal:
            return _refused_result(sync, plan, refusal)
    changes, full = _reload_decision(sync, plan)
    _report_plan(sync, plan, changes, full)
    if policy.check_mode:
        return _previewed_result(sync)
    _apply_plan(sync, plan, full)
    after = _probe_applied(sync, plan)
    if after is None:
        return sync.result
    return _save_record(sync, plan, after, entries)


def _probe_live(sync):
    """The live object as it is now; SyncError when it exists in a form the adapter cannot manage."""
    # The adapter's batch files go beside the record, where the next run removes what a kill left.
    sync.store.ensure_dir()
    sync.adapter.scratch = sync.store.scratch
    sync.live = sync.adapter.probe()
    if sync.live.exists:
        problem = sync.adapter.incompatible(sync.live)
        if problem:
            raise SyncError(problem)


def _load_record(sync):
    """Read the record of the last apply; whether to compare with the live listing (``verify``, or the last full
    comparison is older than ``verify_interval``)."""
    sync.record = sync.store.load()
    sync.previous_verified_at = (sync.record or {}).get('verified_at', 0)
    interval = sync.policy.verify_interval
    if interval and sync.record is not None and time.time() - sync.previous_verified_at > interval:
        # The periodic full comparison: drift made by hand cannot hide for
        # longer than verify_interval, whatever the record says.
        return True
    return sync.policy.verify


def _judge_record(sync, verify):
    """Whether the record may stand in for the live listing; the result starts from what that says."""
    live, record = sync.live, sync.record
    sync.fingerprint = sync.adapter.fingerprint()
    # A backend that cannot count cheaply (nft) vouches for its object by
    # identity instead (a handle that changes when the object is recreated).
    sync.identity = sync.adapter.identity
    sync.trusted = (not verify and live.exists and record is not None
                    and record.get('fingerprint') == sync.fingerprint
                    and (live.count is None or record.get('count') == live.count)
                    and record.get('identity') == sync.identity(live))
    sync.result = {'changed': False, 'added': 0, 'removed': 0,
                   'total': live.count if live.count is not None else (record or {}).get('count'),
                   'full_reload': False, 'verified': not sync.trusted and live.exists}


def _source_already_applied(sync, source_sha):
    """True when the trusted record shows this very source applied under this very protection."""
    sync.protection_digest = sync.policy.protection.digest if sync.policy.protection else None
    return bool(sync.trusted and sync.record.get('source_sha256') == source_sha
                and sync.record.get('protection') == sync.protection_digest)


def _unchanged_result(sync):
    """The result when the record shows the object holding this source already: nothing listed, nothing applied."""
    result = sync.result
    if sync.policy.want_diff:
        result['diff'] = compact_diff(sync.adapter.label, result['total'], result['total'], (), (), 0)
    return result


def _baseline(sync):
    """What the object holds now: the recorded entries when the record is trusted, else the live listing."""
    if sync.trusted:
        return sync.store.load_entries()
    if sync.live.exists:
        return sync.adapter.read_entries()
    return set()


def _carve_protected(sync, entries, baseline):
    """The entries without the protected addresses; what covered them goes in the result.  An admit-only set's
    entries with them added instead."""
    protection = sync.policy.protection
    if not protection:
        return entries
    if sync.policy.admit:
        lines, findings = protection.admit(entries.lines, sync.adapter.version)
        if findings:
            sync.result['admitted'] = findings
            return entries.without(lines)
        return entries
    lines = entries.lines
    checked_before = sync.trusted and sync.record.get('protection') == sync.protection_digest
    candidates = list(filterfalse(baseline.__contains__, lines)) if checked_before and baseline else lines
    lines, findings = protection.carve(lines, candidates)
    if not findings:
        return entries
    # All of them: the module reports a sample and warns with the count (report_protected).
    sync.result['protected'] = findings
    sync.result['protected_count'] = len(findings)
    return entries.without(lines)


def _first_load(sync, plan):
    """Create and fill the object from the lines as they are; ``applied`` when it went live holding the plan."""
    # A first load dominates the run's time, so the kernel fills the new
    # set from the lines as they are while they are validated here; the
    # set goes live only if validation passed (IpsetAdapter.apply_full).
    # Duplicate or non-canonical lines make it retry (_apply_plan).
    sync.applied = sync.adapter.apply_full(plan.lines, sync.live, validate=plan.loaded_lines_are_the_plan)


def _plan_existing(sync, plan):
    """Plan the change to an existing object (to any in check mode); the change guard's refusal, or None.

    A change that replaces the object whole is applied here, validated as it loads.
    """
    plan.prepare()
    changes, full = _reload_decision(sync, plan)
    refusal = sync.policy.refusal(changes, plan.before, plan.count)
    if refusal:
        return refusal
    if full and not sync.policy.check_mode:
        # The record is withdrawn first, as in _apply_plan: a kill mid-load leaves the next run comparing.
        sync.store.invalidate()
        sync.applied = sync.adapter.apply_full(plan.desired_entries(), sync.live, validate=plan.canonical)
    else:
        plan.canonical()
    return None


def _reload_decision(sync, plan):
    """``(changes, full)``: how many entries change, and whether the object is loaded whole rather than edited."""
    live = sync.live
    changes = len(plan.added) + len(plan.removed)
    full = (not live.exists
            or (sync.adapter.replaces_whole
                and ((live.capacity is not None and plan.count > live.capacity)
                     or changes > sync.policy.full_reload_fraction * max(plan.count, 1))))
    return changes, full


def _refused_result(sync, plan, refusal):
    """The result of a change the guard refused: what it would have been, against the entries in place."""
    plan.canonical()
    sync.result.update(added=len(plan.added), removed=len(plan.removed), total=plan.before, refused=refusal)
    _add_diff(sync, plan)
    return sync.result


def _report_plan(sync, plan, changes, full):
    """The result of the planned change, applied or (in check mode) not."""
    sync.result.update(added=len(plan.added), removed=len(plan.removed), total=plan.count,
                       full_reload=bool(changes and full), changed=bool(changes) or not sync.live.exists)
    _add_diff(sync, plan)


def _add_diff(sync, plan):
    """The diff, when asked for: counts and a sample (compact_diff)."""
    if sync.policy.want_diff:
        sync.result['diff'] = compact_diff(sync.adapter.label, plan.before, plan.count, plan.removed, plan.added,
                                           sync.policy.diff_sample)


def _previewed_result(sync):
    """The check mode result; an adapter whose first creation has an effect beyond the set warns of it."""
    if not sync.live.exists:
        sync.adapter.preview_creation()
    return sync.result


def _apply_plan(sync, plan, full):
    """Apply the change, unless there is none or it is applied already (validated as it loaded)."""
    if not sync.result['changed'] or sync.applied:
        return
    # Until the new record is written, the old one no longer describes the kernel: a run killed
    # between the kernel's update and the record must leave the next run comparing the live set,
    # not trusting a record of the generation before (nft vouches by identity, not by count).
    sync.store.invalidate()
    if full:
        sync.adapter.apply_full(plan.desired_entries(), sync.live)
    else:
        sync.adapter.apply_incremental(plan.added, plan.removed)


def _probe_applied(sync, plan):
    """The object after the update; None when its count is not the plan's (the record cleared, a warning said)."""
    count = plan.count
    after = sync.adapter.probe()
    if after.count is not None and after.count != count:
        # Something else is writing this object, or the kernel folded
        # entries: do not vouch for a state we cannot see.
        sync.store.clear()
        sync.result['warnings'] = ['%s holds %d entries after the update, expected %d; '
                                   'the next run will compare the full live set'
                                   % (sync.adapter.label, after.count, count)]
        return None
    return after


def _save_record(sync, plan, after, entries):
    """Write the record that vouches for the object as ``after`` shows it, and the entries it holds."""
    verified = sync.result['verified'] or not sync.live.exists
    record = {'fingerprint': sync.fingerprint, 'count': plan.count, 'source_sha256': entries.sha256,
              'protection': sync.protection_digest, 'applied_at': int(time.time()),
              'identity': sync.identity(after),
              'verified_at': int(time.time()) if verified else sync.previous_verified_at}
    # The source bytes can stand in for the entries when every line was
    # already canonical and unique, which saves a join of a million strings.
    if plan.same_text and entries.raw is not None:
        sync.store.save(record, raw=entries.raw)
    else:
        sync.store.save(record, entries=plan.desired_entries())
    sync.result['state_saved'] = True
    return sync.result
