# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet report's time series, as inline SVG: no script, no external resource, so the page opens anywhere.

Each drawn value is an element of class ``point`` (a line's circle) or ``bar`` (a rect), with ``data-series`` and
``data-value`` attributes and a ``<title>`` a reader sees on hover, so that what the page claims can be read back.
"""

from __future__ import annotations

import datetime
import functools
from html import escape

from ansible_collections.fleetwall.blocklist.plugins.plugin_utils import fleet_history

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 180, 70, 24, 12
SMALL_WIDTH, SMALL_HEIGHT = 300, 110
# Hosts drawn one by one (the most drops first); a fleet of thousands is read fleet-wide and in the JSON.
MAX_HOST_CHARTS = 24
RUNS_SHOWN = 60
COLORS = {'in force': '#4a7bd0', 'block tier': '#333333', 'challenge tier': '#c9a227', 'dropped packets': '#d0704a',
          'web requests answered': '#8a4ad0', 'added': '#3c9a5f', 'removed': '#b03a48', 'fail2ban bans': '#2a9d8f',
          'entries': '#4a7bd0', 'web tier block': '#8a4ad0', 'web tier challenge': '#c9a227'}


def _text(value):
    return escape('' if value is None else str(value), quote=True)


def run_label(run):
    at = datetime.datetime.fromtimestamp(run['at'], datetime.timezone.utc).strftime('%Y-%m-%d %H:%M')
    return 'generation %s, %s UTC' % (run.get('generation'), at)


def _scale(series):
    return max([v for _name, values in series for v in values if v is not None] + [1])


def _frame(chart_id, title, width, height, top_value):
    return ['<figure id="%s" class="chart">' % _text(chart_id), '<figcaption>%s</figcaption>' % _text(title),
            '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="%s">'
            % (width, height, _text(title)),
            '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>' % (LEFT, height - BOTTOM, width - 4, height - BOTTOM),
            '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>' % (LEFT, TOP, LEFT, height - BOTTOM),
            '<text x="%d" y="%d" text-anchor="end">%s</text>' % (LEFT - 4, TOP + 10, _text(top_value)),
            '<text x="%d" y="%d" text-anchor="end">0</text>' % (LEFT - 4, height - BOTTOM)]


def _legend(series, width, height):
    out, x = [], LEFT
    for name, _values in series:
        out.append('<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>'
                   % (x, height - 10, COLORS.get(name, '#666'), x + 14, height - 1, _text(name)))
        x += 24 + 7 * len(name)
    return out


def line_chart(chart_id, title, labels, series, unit, width=WIDTH, height=HEIGHT):
    """A line per series over the runs; a value of None breaks the line."""
    top = _scale(series)
    plot_w, plot_h = width - LEFT - 8, height - BOTTOM - TOP
    step = plot_w / max(len(labels) - 1, 1)
    out = _frame(chart_id, title, width, height, top)
    for name, values in series:
        color, segment = COLORS.get(name, '#666'), []
        points = []
        for index, value in enumerate(values):
            if value is None:
                segment = _flush(out, segment, color)
                continue
            x, y = LEFT + index * step, TOP + plot_h * (1 - value / top)
            segment.append('%.1f,%.1f' % (x, y))
            points.append('<circle class="point" data-series="%s" data-value="%s" cx="%.1f" cy="%.1f" r="3" fill="%s">'
                          '<title>%s: %s %s (%s)</title></circle>'
                          % (_text(name), value, x, y, color, _text(labels[index]), value, _text(unit), _text(name)))
        _flush(out, segment, color)
        out += points
    out += _legend(series, width, height) + ['</svg>', '</figure>']
    return out


def _flush(out, segment, color):
    if len(segment) > 1:
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (color, ' '.join(segment)))
    return []


def bar_chart(chart_id, title, labels, series, unit, width=WIDTH, height=HEIGHT):
    """Grouped bars: per label, one bar per series; None draws no bar (unknown, not zero)."""
    top = _scale(series)
    plot_w, plot_h = width - LEFT - 8, height - BOTTOM - TOP
    group = plot_w / max(len(labels), 1)
    bar_width = max(group * 0.8 / max(len(series), 1), 1)
    out = _frame(chart_id, title, width, height, top)
    for offset, (name, values) in enumerate(series):
        color = COLORS.get(name, '#666')
        for index, value in enumerate(values):
            if value is None:
                continue
            h = plot_h * value / top
            out.append('<rect class="bar" data-series="%s" data-value="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" '
                       'fill="%s"><title>%s: %s %s (%s)</title></rect>'
                       % (_text(name), value, LEFT + index * group + group * 0.1 + offset * bar_width, TOP + plot_h - h, bar_width,
                          h, color, _text(labels[index]), value, _text(unit), _text(name)))
    out += _legend(series, width, height) + ['</svg>', '</figure>']
    return out


def history_section(history):
    """The page's "Over time" section: fleet-wide series, fail2ban's bans per day beside the drops, and per host."""
    runs = history['runs'][-RUNS_SHOWN:]
    if not runs:
        return []
    labels = [run_label(run) for run in runs]
    totals = [run['totals'] for run in runs]
    tiers = [run.get('tiers') or {} for run in runs]
    out = ['<h2>Over time</h2>', '<p>The last %d runs (of %d kept in fleet_history.json).</p>'
           % (len(runs), len(history['runs'])), '<div class="fleet-charts">']
    out += line_chart('chart-entries', 'Entries of the generation pushed, per tier', labels, [
        ('block tier', [t.get('block') for t in tiers]), ('challenge tier', [t.get('challenge') for t in tiers])],
        'entries')
    out += line_chart('chart-in-force', 'Entries in force, summed over the hosts', labels, [
        ('in force', [t.get('in_force', t.get('entries')) for t in totals])], 'entries')
    out += bar_chart('chart-changes', 'Added and removed per run, summed over the hosts', labels, [
        ('added', [t.get('added') for t in totals]), ('removed', [t.get('removed') for t in totals])], 'entries')
    out += bar_chart('chart-drops', 'Packets dropped since the run before, fleet-wide', labels,
                     [('dropped packets', fleet_history.fleet_deltas(runs, fleet_history.drops_of))], 'packets')
    web = _web_series(runs, lambda counter: fleet_history.fleet_deltas(runs, counter))
    if web:
        out += bar_chart('chart-web', 'Web requests answered since the run before, fleet-wide, per web tier', labels,
                         web, 'requests')
    out += _bans_charts('chart-bans', 'fleet-wide', history.get('bans_by_day') or {}, None,
                        fleet_history.drops_per_day(history['runs']))
    out.append('</div>')
    out += _hosts_section(runs, labels, history.get('bans_by_day') or {})
    return out


def _web_series(runs, deltas_of):
    """One series per web tier (its set, as nginx_geo_file's record names it), of ``deltas_of(counter)``."""
    tiers = sorted(set(name for run in runs for host in run['hosts'].values()
                       for name in (host.get('web_requests') or {})))
    return [('web tier %s' % tier, deltas_of(lambda point, tier=tier: ((point or {}).get('web_requests') or {}).get(tier)))
            for tier in tiers]


def _bans_charts(chart_id, whose, bans_by_day, host, drops):
    """fail2ban's bans per day beside the packets dropped those days (two charts over the same days), where
    fail2ban's bans were read."""
    days_with_bans = sorted(day for day, hosts in bans_by_day.items() if host is None or host in hosts)
    if not days_with_bans:
        return []
    days = sorted(set(days_with_bans) | set(day for day in drops if day >= days_with_bans[0]))[-31:]
    bans = [_bans_on(bans_by_day.get(day) or {}, host) for day in days]
    width, height = (WIDTH, HEIGHT) if host is None else (SMALL_WIDTH, SMALL_HEIGHT)
    return (bar_chart(chart_id, 'fail2ban bans per day (by the day each began), %s' % whose, days,
                      [('fail2ban bans', bans)], 'bans', width, height)
            + bar_chart(chart_id + '-drops', 'beside the packets dropped those days, %s' % whose, days,
                        [('dropped packets', [drops.get(day) for day in days])], 'packets', width, height))


def _bans_on(hosts, host):
    """The bans of a day: the host's, or with ``host`` None the fleet's."""
    return sum(hosts.values()) if host is None else hosts.get(host, 0)


def _hosts_section(runs, labels, bans_by_day):
    names = sorted(set(host for run in runs for host in run['hosts']))
    drops = dict((host, sum(d for d in fleet_history.counter_deltas(fleet_history.host_series(runs, host, 'dropped_packets'))
                            if d is not None)) for host in names)
    shown = sorted(names, key=lambda host: (-drops[host], host))[:MAX_HOST_CHARTS]
    out = ['<h3>Per host</h3>']
    if len(names) > len(shown):
        out.append('<p>The %d hosts with the most drops; all %d are in fleet_history.json.</p>' % (len(shown), len(names)))
    for host in sorted(shown):
        slug = 'host-%d' % names.index(host)
        host_deltas = functools.partial(_host_deltas, runs, host)
        out.append('<div class="host-charts" data-host="%s"><h4>%s</h4>' % (_text(host), _text(host)))
        out += line_chart('%s-entries' % slug, 'entries in force', labels,
                          [('entries', fleet_history.host_series(runs, host, 'in_force'))], 'entries',
                          SMALL_WIDTH, SMALL_HEIGHT)
        out += bar_chart('%s-drops' % slug, 'packets dropped since the run before', labels,
                         [('dropped packets', host_deltas(fleet_history.drops_of))], 'packets', SMALL_WIDTH, SMALL_HEIGHT)
        web = _web_series(runs, host_deltas)
        if any(value is not None for _name, values in web for value in values):
            out += bar_chart('%s-web' % slug, 'web requests answered since the run before', labels, web, 'requests',
                             SMALL_WIDTH, SMALL_HEIGHT)
        out += _bans_charts('%s-bans' % slug, host, bans_by_day, host, _host_drops_per_day(runs, host))
        out.append('</div>')
    return out


def _host_deltas(runs, host, counter):
    return fleet_history.counter_deltas([counter(run['hosts'].get(host)) for run in runs])


def _host_drops_per_day(runs, host):
    return fleet_history.drops_per_day([dict(run, hosts={host: run['hosts'][host]} if host in run['hosts'] else {})
                                        for run in runs])
