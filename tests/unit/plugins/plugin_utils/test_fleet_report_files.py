"""The fleet report's files: what the page shows, escaping, and atomic writes with the asked mode."""
import datetime
import json
import copy
import os
import random
import stat
from html.parser import HTMLParser

import pytest

from ansible_collections.fleetwall.blocklist.plugins.plugin_utils.fleet_report_files import (
    directory_problem, render_html, render_json, report_problem, write_report)
from ansible_collections.fleetwall.blocklist.tests.helpers import tally

WHEN = datetime.datetime(2026, 12, 3, 7, 0, 5, tzinfo=datetime.timezone.utc)
REPORT = {
    'generation': 41,
    'hosts': [
        {'host': 'h1', 'state': 'changed', 'backend': 'nftables', 'generation': 41, 'entries': 200, 'added': 3,
         'removed': 1, 'drift': 0, 'dropped_packets': 7, 'dropped_bytes': 420},
        {'host': '<script>alert(1)</script>', 'state': 'FAILED', 'backend': None, 'generation': 41, 'entries': 0,
         'added': 0, 'removed': 0, 'drift': 0, 'dropped_packets': None, 'dropped_bytes': None},
    ],
    'totals': {'hosts': 2, 'entries': 200, 'added': 3, 'removed': 1, 'drift': 0, 'dropped_packets': 7,
               'dropped_bytes': 420},
}


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.cells, self.rects = [], [], []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ('td', 'th'):
            self._cell = ''
        if tag == 'rect':
            self.rects.append(dict(attrs))

    def handle_endtag(self, tag):
        if tag in ('td', 'th') and self._cell is not None:
            self.cells.append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def test_page_shows_every_host_and_escapes_names():
    page = render_html(REPORT, WHEN)
    parsed = _Page()
    parsed.feed(page)
    assert 'script' not in parsed.tags
    assert '<script>' not in page and '&lt;script&gt;alert(1)&lt;/script&gt;' in page
    # The header row, then per host: host, state, backend and the six counts.
    assert parsed.cells[9:18] == ['h1', 'changed', 'nftables', '200', '3', '1', '0', '7', '420']
    assert parsed.cells[18:27] == ['<script>alert(1)</script>', 'FAILED', '', '0', '0', '0', '0', '-', '-']
    # Bars scale to the largest host: h1 is full width, the failed host has none.
    assert [r['width'] for r in parsed.rects] == ['260.0', '260.0', '0.0', '0.0']
    assert 'written 2026-12-03 07:00:05 UTC' in page and 'generation 41' in page
    assert 'http' not in page.replace('http://www.w3.org/2000/svg', '')


def test_empty_fleet_renders():
    page = render_html({'generation': None, 'hosts': [], 'totals': {}}, WHEN)
    assert '<table>' in page and page.count('<tr') == 1


def test_files_are_written_whole_with_the_mode(tmp_path):
    target = tmp_path / 'reports' / 'nested'
    paths = write_report(str(target), REPORT, WHEN, 0o640)
    assert sorted(os.path.basename(p) for p in paths) == ['fleet_report.html', 'fleet_report.json']
    assert json.loads((target / 'fleet_report.json').read_text()) == REPORT
    assert (target / 'fleet_report.json').read_text() == render_json(REPORT)
    for path in paths:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert sorted(os.listdir(str(target))) == ['fleet_report.html', 'fleet_report.json']


def test_a_failed_write_leaves_the_previous_report(tmp_path, monkeypatch):
    write_report(str(tmp_path), REPORT, WHEN)
    before = (tmp_path / 'fleet_report.json').read_text()

    def refuse(_path, _mode):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(os, 'chmod', refuse)
    changed = dict(REPORT, generation=42)
    with pytest.raises(OSError):
        write_report(str(tmp_path), changed, WHEN)
    assert (tmp_path / 'fleet_report.json').read_text() == before
    assert sorted(os.listdir(str(tmp_path))) == ['fleet_report.html', 'fleet_report.json']


HOSTILE_VALUES = ['x', '', ['a'], {'a': 1}, None, True, -1, 10 ** 30, 1.5, float('nan'), float('inf'), 3, object(),
                  {1: 'mixed', 'key': 'types'}, [[[]]], '<b>', '\x00']


def hostile_report(rng):
    """The filter's result with one to three values put where they do not belong: at the top, in totals, in a
    row, or a row itself."""
    report = copy.deepcopy(REPORT)
    for _change in range(rng.randint(1, 3)):
        where = rng.choice(['top', 'totals', 'row', 'rows', 'report'])
        value = rng.choice(HOSTILE_VALUES)
        if not isinstance(report, dict):
            break
        if where == 'top':
            report[rng.choice(['hosts', 'totals', 'generation'])] = value
        elif where == 'totals' and isinstance(report.get('totals'), dict):
            report['totals'][rng.choice(list(REPORT['totals']))] = value
        elif where == 'row' and isinstance(report.get('hosts'), list) and report['hosts'] \
                and isinstance(report['hosts'][0], dict):
            report['hosts'][0][rng.choice(list(REPORT['hosts'][0]))] = value
        elif where == 'rows' and isinstance(report.get('hosts'), list):
            report['hosts'].append(value)
        elif where == 'report':
            report = value
    return report


def test_a_report_of_any_shape_is_refused_or_rendered():
    """Before, 21 of 150 hostile reports ended in a raw Python error ("'str' object has no attribute 'get'"):
    now each is refused with a message naming the bad part, or rendered whole."""
    assert report_problem(REPORT) is None and report_problem({'generation': None, 'hosts': [], 'totals': {}}) is None
    assert report_problem({'hosts': 'x', 'totals': {}}) == 'report.hosts must be a list of per-host mappings, got a text'
    rng = random.Random(int(os.environ.get('FLEETWALL_REPORT_SEED', '28')))
    refused = 0
    for _case in range(300):
        report = hostile_report(rng)
        tally('bad inputs tried: fleet report')
        problem = report_problem(report)
        if problem:
            refused += 1
            assert problem.startswith('report'), problem
            continue
        json.loads(render_json(report))
        _Page().feed(render_html(report, WHEN))
    assert 100 < refused < 300      # the generator makes both kinds


def test_a_report_directory_no_file_can_have_is_refused():
    assert directory_problem('/tmp/reports') is None
    assert directory_problem('/tmp/re\x00ports') == 'dir: the path contains a NUL byte'
    assert 'deeper than 64 directories' in directory_problem('/tmp' + '/d' * 2000)
