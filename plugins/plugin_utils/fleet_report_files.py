# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet report's files (fleet_report.json, a self-contained HTML page, and the history of the runs in
fleet_history.json), written on the controller.

Pure except for ``write_report``; the HTML has no script and no external resource, only inline SVG charts.
"""

from __future__ import annotations

import json
import os
from html import escape

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import open_regular, path_problem, write_atomic
from ansible_collections.fleetwall.blocklist.plugins.plugin_utils import fleet_history
from ansible_collections.fleetwall.blocklist.plugins.plugin_utils.fleet_charts import history_section

_STYLE = '''body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-top: 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
.FAILED, .REFUSED, .UNREACHABLE, .no-result, .stale { background: #fdd; font-weight: bold; }
.changed { background: #eef6ff; } td.reason { text-align: left; font-weight: normal; max-width: 40em; }
svg text { font-size: 12px; } figure.chart { display: inline-block; margin: 0.5em 1em 0.5em 0; }
figcaption { font-size: 13px; } div.host-charts { margin-bottom: 1em; } h4 { margin: 0.6em 0 0 0; }'''
# A host without a usable result this run: the page shows what it had in force at the last report.
_WITHOUT_RESULT = ('FAILED', 'UNREACHABLE', 'no result')
# A previous report larger than this is not read for the hosts' last known entries.
_PREVIOUS_MAX_BYTES = 64 * 1024 * 1024

_BAR = 260
_COLUMNS = ('entries', 'added', 'removed', 'drift', 'dropped_packets', 'dropped_bytes')


def _text(value):
    return escape('' if value is None else str(value), quote=True)


def _number(value):
    """A count as the table shows it: '-' where the backend has no counter."""
    return '-' if value is None else _text(value)


_TEXT_FIELDS = ('host', 'state', 'backend', 'reason')
# A host's counts by backend, by web tier and by the day its bans began.
_COUNTS_BY_NAME = ('drops_by_backend', 'web_requests', 'bans_by_day')
_FEED_TEXT_FIELDS = ('name', 'status', 'fetched_at', 'error', 'error_kind')


def _kind(value):
    """What ``value`` is, in the playbook's words (Ansible's own str and dict subclasses are text and mappings)."""
    for kind, name in ((bool, 'a boolean'), (str, 'a text'), ((int, float), 'a number'), (dict, 'a mapping'),
                       ((list, tuple), 'a list'), (type(None), 'null')):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _is_count(value):
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1e18)


def report_problem(report):
    """Why ``report`` is not what the fleet_report filter returns, or None.

    The page is drawn from it: a host list that is a string, a row that is not a mapping or a count that is text
    would end in a raw Python error halfway through, so the shape is checked first.
    """
    if not isinstance(report, dict):
        return 'report must be a mapping, got %s' % _kind(report)
    hosts, totals = report.get('hosts'), report.get('totals')
    if not isinstance(hosts, list):
        return 'report.hosts must be a list of per-host mappings, got %s' % _kind(hosts)
    if not isinstance(totals, dict):
        return 'report.totals must be a mapping, got %s' % _kind(totals)
    for index, row in enumerate(hosts):
        problem = _row_problem(row)
        if problem:
            return 'report.hosts[%d]: %s' % (index, problem)
    for key in ('hosts',) + _COLUMNS:
        if not _is_count(totals.get(key)):
            return 'report.totals.%s must be a count, got %r' % (key, totals.get(key))
    problem = (_feeds_problem(report.get('feeds')) or _feeds_problem(report.get('allow_feeds'), 'allow_feeds')
               or _counts_problem(report.get('tiers')))
    if problem:
        return problem if problem.startswith('report') else 'report.tiers %s' % problem
    if not isinstance(report.get('generation'), (int, str, type(None))) or isinstance(report.get('generation'), bool):
        return 'report.generation must be a number or a text, got %r' % (report.get('generation'),)
    try:
        json.dumps(report, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return 'report cannot be written as JSON: %s' % exc
    return None


def _row_problem(row):
    if not isinstance(row, dict):
        return 'a host row must be a mapping, got %s' % _kind(row)
    for key in _TEXT_FIELDS:
        if not isinstance(row.get(key), (str, int, type(None))) or isinstance(row.get(key), bool):
            return '%s must be a text, got %r' % (key, row.get(key))
    for key in _COLUMNS + ('bans_in_force',):
        if not _is_count(row.get(key)):
            return '%s must be a count or null, got %r' % (key, row.get(key))
    for key in _COUNTS_BY_NAME:
        problem = _counts_problem(row.get(key))
        if problem:
            return '%s %s' % (key, problem)
    return None


def _counts_problem(counts):
    """Why ``counts`` is not null or a mapping of names to counts, or None."""
    if counts is None:
        return None
    if not isinstance(counts, dict):
        return 'must be a mapping of names to counts, got %s' % _kind(counts)
    for name, value in counts.items():
        if not isinstance(name, str) or value is None or not _is_count(value):
            return 'must be a mapping of names to counts, got %r: %r' % (name, value)
    return None


def _feeds_problem(feeds, name='feeds'):
    if feeds is None:
        return None
    if not isinstance(feeds, list):
        return 'report.%s must be a list of per-feed mappings, got %s' % (name, _kind(feeds))
    for index, feed in enumerate(feeds):
        if not isinstance(feed, dict):
            return 'report.%s[%d] must be a mapping, got %s' % (name, index, _kind(feed))
        for key in _FEED_TEXT_FIELDS:
            if not isinstance(feed.get(key), (str, type(None))):
                return 'report.%s[%d].%s must be a text, got %r' % (name, index, key, feed.get(key))
        for key in ('age_seconds', 'max_age', 'addresses_removed'):
            if not _is_count(feed.get(key)):
                return 'report.%s[%d].%s must be a count or null, got %r' % (name, index, key, feed.get(key))
    return None


def carry_last_known(report, previous):
    """A host without a usable result keeps, as ``in_force``, the entries the previous report showed in force
    there (a failed or unreachable host's old sets are still loaded), and ``totals.in_force`` counts them with the
    entries of every other host: the page's "entries in force" undercounted by those hosts."""
    before = {}
    for row in (previous or {}).get('hosts') or []:
        if isinstance(row, dict) and _is_count(row.get('in_force')) and isinstance(row.get('host'), str):
            before[row['host']] = (row.get('in_force'), (previous or {}).get('generation'))
    total = 0
    for row in report['hosts']:
        if row.get('state') in _WITHOUT_RESULT and not row.get('entries'):
            row['in_force'], row['in_force_generation'] = before.get(row.get('host'), (None, None))
        else:
            row['in_force'], row['in_force_generation'] = row.get('entries'), report.get('generation')
        total += row['in_force'] or 0
    report['totals']['in_force'] = total
    return report


def read_previous(directory):
    """The report last written in ``directory``, or None (none, unreadable, too large or not a report)."""
    path = os.path.join(directory, 'fleet_report.json')
    try:
        # A FIFO put there would hold the run for ever: only a regular file is read.
        with open_regular(path) as handle:
            data = handle.read(_PREVIOUS_MAX_BYTES + 1)
        if len(data) > _PREVIOUS_MAX_BYTES:
            return None
        previous = json.loads(data.decode('utf-8'))
    except (IOError, OSError, ValueError):
        return None
    return previous if isinstance(previous, dict) else None


def directory_problem(directory):
    """Why no directory can be at ``directory`` (files.path_problem), or None."""
    problem = path_problem(directory)
    return 'dir: %s' % problem if problem else None


def render_json(report):
    return json.dumps(report, indent=4, sort_keys=True) + '\n'


def render_html(report, written_at, history=None):
    """The report as one page; ``written_at`` is the UTC time shown (a datetime); with ``history``
    (fleet_history), its runs as time series."""
    rows = report.get('hosts') or []
    totals = report.get('totals') or {}
    generation = _text(report.get('generation'))
    max_entries = max([row.get('entries') or 0 for row in rows] + [1])
    max_drops = max([row.get('dropped_packets') or 0 for row in rows] + [1])
    out = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
           '<title>fleetwall.blocklist fleet report, generation %s</title>' % generation,
           '<style>', _STYLE, '</style>', '</head>', '<body>', '<h1>Fleet report</h1>',
           '<p>Generation <b>%s</b>, written %s UTC.' % (generation, written_at.strftime('%Y-%m-%d %H:%M:%S')),
           '%s hosts, %s entries in force,' % (_text(totals.get('hosts')),
                                               _text(totals.get('in_force', totals.get('entries')))),
           '+%s -%s this run,' % (_text(totals.get('added')), _text(totals.get('removed'))),
           'drift %s, %s packets dropped.</p>' % (_text(totals.get('drift')), _text(totals.get('dropped_packets'))),
           '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img"'
           ' aria-label="Entries and dropped packets per host">' % (2 * _BAR + 260, 30 + 22 * len(rows)),
           '  <text x="120" y="14">entries (max %d)</text>' % max_entries,
           '  <text x="%d" y="14">dropped packets (max %d)</text>' % (140 + _BAR, max_drops)]
    for index, row in enumerate(rows):
        y = 24 + 22 * index
        host = _text(row.get('host'))
        drops = row.get('dropped_packets')
        out += ['  <text x="0" y="%d">%s</text>' % (y + 13, host),
                '  <rect x="120" y="%d" width="%.1f" height="16" fill="#4a7bd0"><title>%s: %s entries</title></rect>'
                % (y, _BAR * (row.get('entries') or 0) / max_entries, host, _text(row.get('entries'))),
                '  <rect x="%d" y="%d" width="%.1f" height="16" fill="#d0704a"><title>%s: %s packets dropped</title></rect>'
                % (140 + _BAR, y, _BAR * (drops or 0) / max_drops, host,
                   'no counters' if drops is None else _text(drops))]
    out += ['</svg>', '<table>',
            '<tr><th>host</th><th>state</th><th>backend</th><th>entries</th><th>added</th><th>removed</th>'
            '<th>drift</th><th>dropped packets</th><th>dropped bytes</th><th>web requests answered</th>'
            '<th>reason</th></tr>']
    for row in rows:
        out.append('<tr class="%s"><td>%s</td><td class="text">%s</td><td class="text">%s</td>%s%s'
                   '<td class="text">%s</td><td class="text reason">%s</td></tr>' % (
                       _text(row.get('state')).replace(' ', '-'), _text(row.get('host')), _text(row.get('state')),
                       _text(row.get('backend')), _entries_cell(row),
                       ''.join('<td>%s</td>' % _number(row.get(key)) for key in _COLUMNS[1:]),
                       _web_requests_cell(row.get('web_requests')), _text(row.get('reason'))))
    out.append('</table>')
    out += _feeds_table(report.get('feeds'))
    out += _feeds_table(report.get('allow_feeds'), 'Allow sources', 'allow source')
    out += history_section(history or fleet_history.empty())
    out += ['</body>', '</html>', '']
    return '\n'.join(out)


def _web_requests_cell(requests):
    """Each web tier's requests answered since its count began ('-' without a web tier's request log)."""
    if not requests:
        return '-'
    return _text(', '.join('%s %s' % (tier, count) for tier, count in sorted(requests.items())))


def _entries_cell(row):
    """This run's entries; for a host without a result, what it still has in force, as of when."""
    if row.get('state') in _WITHOUT_RESULT and not row.get('entries'):
        if row.get('in_force') is None:
            return '<td>unknown</td>'
        return '<td>%s in force (generation %s)</td>' % (_text(row.get('in_force')), _text(row.get('in_force_generation')))
    return '<td>%s</td>' % _number(row.get('entries'))


def _age(seconds):
    if seconds is None:
        return '-'
    return '%d h' % (seconds // 3600) if seconds >= 7200 else '%d s' % seconds


def _feeds_table(feeds, title='Feeds', what='feed'):
    """Each feed's (or allow source's) health: its status, its last success, its copy's age against its max_age,
    its error; for an allow source, the listed addresses it kept reachable."""
    if not feeds:
        return []
    kept = what == 'allow source'
    out = ['<h2>%s</h2>' % title, '<table>',
           '<tr><th>%s</th><th>status</th><th>last success</th><th>age</th><th>max age</th>%s<th>error</th></tr>'
           % (what, '<th>kept reachable (addresses)</th>' if kept else '')]
    for feed in feeds:
        out.append('<tr class="%s"><td>%s</td><td class="text">%s</td><td class="text">%s</td><td>%s</td><td>%s</td>'
                   '%s<td class="text reason">%s</td></tr>' % (
                       'stale' if feed.get('stale') else _text(feed.get('status')), _text(feed.get('name')),
                       _text(feed.get('status')), _text(feed.get('fetched_at') or 'never'), _age(feed.get('age_seconds')),
                       _age(feed.get('max_age')) if feed.get('max_age') else 'never',
                       '<td>%s</td>' % _number(feed.get('addresses_removed')) if kept else '', _text(feed.get('error'))))
    out.append('</table>')
    return out


def write_report(directory, report, written_at, mode=0o644, history_runs=200, run_id=None):
    """Write the files atomically (a reader never sees half a file); return (their paths, why the history could
    not be read or None).  A host without a result keeps what the previous report showed in force there
    (carry_last_known); the run is added to the history (fleet_history), unless ``history_runs`` is 0."""
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    report = carry_last_known(json.loads(json.dumps(report)), read_previous(directory))
    history, problem = fleet_history.read(directory) if history_runs else (None, None)
    files = [('fleet_report.json', render_json(report))]
    if history is not None:
        history = fleet_history.add_run(history, report, int(written_at.timestamp()), history_runs, run_id)
        files.append((fleet_history.HISTORY, fleet_history.render(history)))
    try:
        page = render_html(report, written_at, history)
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
        # shape_problem checks what the charts read; should a history still not draw, the report is written
        # without it and the history set aside, as an unreadable one is.
        problem = fleet_history.set_aside(directory, 'it cannot be drawn: %s' % exc)
        history = fleet_history.add_run(fleet_history.empty(), report, int(written_at.timestamp()), history_runs, run_id)
        files[-1] = (fleet_history.HISTORY, fleet_history.render(history))
        page = render_html(report, written_at, history)
    files.append(('fleet_report.html', page))
    written = []
    for name, text in files:
        write_atomic(os.path.join(directory, name), text.encode('utf-8'), mode)
        written.append(os.path.join(directory, name))
    return written, problem
