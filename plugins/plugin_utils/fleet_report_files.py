# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet report's two files (fleet_report.json and a self-contained HTML page), written on the controller.

Pure except for ``write_report``; the HTML has no script and no external resource, one inline SVG chart.
"""

from __future__ import annotations

import json
import os
import tempfile
from html import escape

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import path_problem

_STYLE = '''body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-top: 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
.FAILED, .REFUSED { background: #fdd; } .changed { background: #eef6ff; }
svg text { font-size: 12px; }'''

_BAR = 260
_COLUMNS = ('entries', 'added', 'removed', 'drift', 'dropped_packets', 'dropped_bytes')


def _text(value):
    return escape('' if value is None else str(value), quote=True)


def _number(value):
    """A count as the table shows it: '-' where the backend has no counter."""
    return '-' if value is None else _text(value)


_TEXT_FIELDS = ('host', 'state', 'backend')


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
    for key in _COLUMNS:
        if not _is_count(row.get(key)):
            return '%s must be a count or null, got %r' % (key, row.get(key))
    return None


def directory_problem(directory):
    """Why no directory can be at ``directory`` (files.path_problem), or None."""
    problem = path_problem(directory)
    return 'dir: %s' % problem if problem else None


def render_json(report):
    return json.dumps(report, indent=4, sort_keys=True) + '\n'


def render_html(report, written_at):
    """The report as one page; ``written_at`` is the UTC time shown (a datetime)."""
    rows = report.get('hosts') or []
    totals = report.get('totals') or {}
    generation = _text(report.get('generation'))
    max_entries = max([row.get('entries') or 0 for row in rows] + [1])
    max_drops = max([row.get('dropped_packets') or 0 for row in rows] + [1])
    out = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
           '<title>fleetwall.blocklist fleet report, generation %s</title>' % generation,
           '<style>', _STYLE, '</style>', '</head>', '<body>', '<h1>Fleet report</h1>',
           '<p>Generation <b>%s</b>, written %s UTC.' % (generation, written_at.strftime('%Y-%m-%d %H:%M:%S')),
           '%s hosts, %s entries in force,' % (_text(totals.get('hosts')), _text(totals.get('entries'))),
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
            '<th>drift</th><th>dropped packets</th><th>dropped bytes</th></tr>']
    for row in rows:
        out.append('<tr class="%s"><td>%s</td><td class="text">%s</td><td class="text">%s</td>%s</tr>' % (
            _text(row.get('state')), _text(row.get('host')), _text(row.get('state')), _text(row.get('backend')),
            ''.join('<td>%s</td>' % _number(row.get(key)) for key in _COLUMNS)))
    out += ['</table>', '</body>', '</html>', '']
    return '\n'.join(out)


def write_report(directory, report, written_at, mode=0o644):
    """Write both files atomically (a reader never sees half a report); return their paths."""
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    written = []
    for name, text in (('fleet_report.json', render_json(report)),
                       ('fleet_report.html', render_html(report, written_at))):
        path = os.path.join(directory, name)
        handle, temporary = tempfile.mkstemp(prefix='.%s.' % name, dir=directory)
        try:
            with os.fdopen(handle, 'w') as out:
                out.write(text)
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
        written.append(path)
    return written
