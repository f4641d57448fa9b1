# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet report's history: one point per run (its generation, entries per tier, added and removed, and per
host its entries, drop counters and web tier request counters), and fail2ban's bans per day, in
``fleet_history.json`` beside the report.

Bounded (the last ``max_runs`` runs, at most ``MAX_BYTES`` of JSON, ``BAN_DAYS`` days of bans), written atomically
by the caller. A history that cannot be read is moved aside and reported, and a new one begins: the run never fails
for it, and the old file is kept for the operator to look at.
"""

from __future__ import annotations

import datetime
import json
import os
import re

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import open_regular

HISTORY = 'fleet_history.json'
# Beside it, the last history that could not be read (one: a later corrupt file replaces it).
CORRUPT = HISTORY + '.corrupt'
FORMAT = 1
MAX_BYTES = 16 * 1024 * 1024
# Days of fail2ban's bans kept, and at most this many (day, host) counts: a fleet of 10,000 hosts banning every
# day would otherwise keep 900,000.
BAN_DAYS = 90
MAX_BAN_COUNTS = 100000
# The latest time a history may hold (9999-12-31): past it no date can be drawn.
MAX_EPOCH = 253402300799
DAY = re.compile(r'\A\d{4}-\d{2}-\d{2}\Z')
# Per host, per run: what the charts draw.
HOST_FIELDS = ('state', 'entries', 'in_force', 'added', 'removed', 'dropped_packets', 'drops_by_backend',
               'web_requests', 'bans_in_force')
TOTAL_FIELDS = ('hosts', 'entries', 'in_force', 'added', 'removed', 'dropped_packets')


def empty():
    return {'format': FORMAT, 'runs': [], 'bans_by_day': {}}


def read(directory):
    """``(history, problem)``: the history in ``directory`` (an empty one when there is none), and why a file that
    is there could not be used, or None.  An unusable file is moved aside (CORRUPT) so that the next write does not
    lose it."""
    path = os.path.join(directory, HISTORY)
    try:
        with open_regular(path) as handle:
            data = handle.read(MAX_BYTES * 2 + 1)
        if len(data) > MAX_BYTES * 2:
            raise ValueError('it is larger than a history is ever written')
        history = json.loads(data.decode('utf-8'))
        problem = shape_problem(history)
        if problem:
            raise ValueError(problem)
    except (IOError, OSError) as exc:
        if not os.path.lexists(path):
            return empty(), None
        return empty(), _set_aside(path, exc.strerror or str(exc))
    except (ValueError, UnicodeDecodeError) as exc:
        return empty(), _set_aside(path, str(exc))
    return history, None


def set_aside(directory, why):
    """Move the history in ``directory`` aside (CORRUPT) and say why; the next write begins a new one."""
    return _set_aside(os.path.join(directory, HISTORY), why)


def _set_aside(path, why):
    aside = os.path.join(os.path.dirname(path), CORRUPT)
    try:
        os.replace(path, aside)
        kept = 'moved to %s' % aside
    except OSError as exc:
        kept = 'could not be moved aside (%s); it will be replaced' % (exc.strerror or exc)
    return 'the fleet history %s could not be read (%s): %s, and a new history begins' % (path, why, kept)


def shape_problem(history):
    """Why ``history`` is not one this module wrote, or None: every value the charts read is checked, so that a
    file edited by hand or half-corrupted is set aside rather than failing the run that draws it."""
    if not isinstance(history, dict) or history.get('format') != FORMAT:
        return 'not a fleet history of format %d' % FORMAT
    if not isinstance(history.get('runs'), list) or not isinstance(history.get('bans_by_day'), dict):
        return 'runs must be a list and bans_by_day a mapping'
    for index, run in enumerate(history['runs']):
        problem = _run_problem(run)
        if problem:
            return 'runs[%d]: %s' % (index, problem)
    for day, hosts in history['bans_by_day'].items():
        if not DAY.match(str(day)) or not isinstance(hosts, dict) or not all(_is_count(n) for n in hosts.values()):
            return 'bans_by_day[%s] is not a count per host' % day
    return None


def _run_problem(run):
    if not isinstance(run, dict) or not isinstance(run.get('hosts'), dict) or not isinstance(run.get('totals'), dict):
        return 'not a run'
    at = run.get('at')
    if not isinstance(at, (int, float)) or isinstance(at, bool) or not 0 <= at <= MAX_EPOCH:
        return 'at is not a time'
    if not isinstance(run.get('generation'), (int, str, type(None))) or not isinstance(run.get('run'), (str, type(None))):
        return 'generation or run is not a number or a text'
    if not _counts_or_none(run['totals']) or not (run.get('tiers') is None or _counts_or_none(run['tiers'])):
        return 'totals and tiers must be counts'
    for host, point in run['hosts'].items():
        if not isinstance(point, dict) or not isinstance(point.get('state'), (str, type(None))):
            return 'hosts[%s] is not a host\'s point' % host
        for key, value in point.items():
            if key in ('drops_by_backend', 'web_requests'):
                if not isinstance(value, dict) or not _counts_or_none(value):
                    return 'hosts[%s].%s must be counts' % (host, key)
            elif key != 'state' and not (value is None or _is_count(value)):
                return 'hosts[%s].%s must be a count' % (host, key)
    return None


def _counts_or_none(mapping):
    return isinstance(mapping, dict) and all(value is None or _is_count(value) for value in mapping.values())


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def point(report, at, run_id=None):
    """The run's point: what the charts need of the report, per host and in total."""
    hosts = {}
    for row in report.get('hosts') or []:
        hosts[row['host']] = dict((key, row.get(key)) for key in HOST_FIELDS if row.get(key) is not None)
    totals = dict((key, (report.get('totals') or {}).get(key)) for key in TOTAL_FIELDS)
    return {'at': at, 'run': run_id, 'generation': report.get('generation'), 'tiers': report.get('tiers'),
            'totals': totals, 'hosts': hosts}


def add_run(history, report, at, max_runs, run_id=None):
    """``history`` with this run's point (replacing the point of the same ``run_id``: a canary rollout writes the
    report after each batch) and fail2ban's bans, trimmed to ``max_runs`` runs and MAX_BYTES."""
    new = point(report, at, run_id)
    runs = history['runs']
    if run_id is not None and runs and runs[-1].get('run') == run_id:
        runs = runs[:-1]
    runs = (runs + [new])[-max_runs:] if max_runs > 0 else []
    bans = merge_bans(history.get('bans_by_day') or {}, report.get('hosts') or [], at)
    return {'format': FORMAT, 'runs': _fit(runs), 'bans_by_day': bans}


def merge_bans(bans_by_day, rows, at):
    """{day: {host: bans}}: per day, the most bans that began that day any run saw in force on the host.

    fail2ban forgets a ban when it ends, so a count is kept per day rather than per ban: a ban that began and
    ended between two runs is not seen, and each run can only raise a day's count."""
    merged = dict((day, dict(hosts)) for day, hosts in bans_by_day.items())
    for row in rows:
        for day, count in (row.get('bans_by_day') or {}).items():
            day_hosts = merged.setdefault(day, {})
            day_hosts[row['host']] = max(day_hosts.get(row['host'], 0), int(count))
    now = datetime.datetime.fromtimestamp(at, datetime.timezone.utc)
    oldest = (now - datetime.timedelta(days=BAN_DAYS)).strftime('%Y-%m-%d')
    # A host whose clock runs ahead reports days to come: kept only up to tomorrow.
    newest = (now + datetime.timedelta(days=1)).strftime('%Y-%m-%d')
    kept, counts = {}, 0
    for day in sorted((day for day in merged if oldest <= day <= newest), reverse=True):
        counts += len(merged[day])
        if counts > MAX_BAN_COUNTS:
            break
        kept[day] = merged[day]
    return kept


def _fit(runs):
    """The newest runs whose JSON fits in MAX_BYTES."""
    size, kept = 0, []
    for run in reversed(runs):
        size += len(json.dumps(run, sort_keys=True)) + 2
        if size > MAX_BYTES:
            break
        kept.append(run)
    return list(reversed(kept))


def render(history):
    return json.dumps(history, sort_keys=True, separators=(',', ':')) + '\n'


def counter_deltas(values):
    """Per run, how much a cumulative counter grew since the run before; a counter that went down was reset (the
    rules or nginx's log began again) and counts from zero; None where either run has no value."""
    deltas = []
    for index, value in enumerate(values):
        before = values[index - 1] if index else None
        if value is None or before is None:
            deltas.append(None)
        else:
            deltas.append(value - before if value >= before else value)
    return deltas


def host_series(runs, host, field):
    """The value of ``field`` for ``host`` in each run (None where the host had none)."""
    return [(run['hosts'].get(host) or {}).get(field) for run in runs]


def requests_total(point_of_host):
    """The web tier's requests answered on a host (all its tiers), or None without a request log."""
    requests = (point_of_host or {}).get('web_requests')
    return sum(requests.values()) if isinstance(requests, dict) and requests else None


def fleet_deltas(runs, counter):
    """Per run, the fleet's growth of ``counter(point of a host)`` summed over the hosts that have it in both runs;
    None where no host does."""
    hosts = sorted(set(host for run in runs for host in run['hosts']))
    per_host = [counter_deltas([counter(run['hosts'].get(host)) for run in runs]) for host in hosts]
    totals = []
    for index in range(len(runs)):
        known = [deltas[index] for deltas in per_host if deltas[index] is not None]
        totals.append(sum(known) if known else None)
    return totals


def drops_of(point_of_host):
    return (point_of_host or {}).get('dropped_packets')


def drops_per_day(runs):
    """{day: packets dropped fleet-wide}, each run's growth counted on the day of the run."""
    days = {}
    for run, delta in zip(runs, fleet_deltas(runs, drops_of)):
        if delta is not None:
            day = datetime.datetime.fromtimestamp(run['at'], datetime.timezone.utc).strftime('%Y-%m-%d')
            days[day] = days.get(day, 0) + delta
    return days
