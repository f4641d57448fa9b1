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
    carry_last_known, directory_problem, render_html, render_json, report_problem, write_report)
from ansible_collections.fleetwall.blocklist.tests.helpers import tally

WHEN = datetime.datetime(2026, 12, 3, 7, 0, 5, tzinfo=datetime.timezone.utc)
REPORT = {
    'generation': 41,
    'hosts': [
        {'host': 'h1', 'state': 'changed', 'backend': 'nftables', 'generation': 41, 'entries': 200, 'added': 3,
         'removed': 1, 'drift': 0, 'dropped_packets': 7, 'dropped_bytes': 420,
         'web_requests': {'challenge': 2, 'block': 4}},
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
    # The header row, then per host: host, state, backend, the six counts, the web requests and the reason.
    assert parsed.cells[11:22] == ['h1', 'changed', 'nftables', '200', '3', '1', '0', '7', '420', 'block 4, challenge 2', '']
    assert parsed.cells[22:33] == ['<script>alert(1)</script>', 'FAILED', '', 'unknown', '0', '0', '0', '-', '-', '-', '']
    # Bars scale to the largest host: h1 is full width, the failed host has none.
    assert [r['width'] for r in parsed.rects] == ['260.0', '260.0', '0.0', '0.0']
    assert 'written 2026-12-03 07:00:05 UTC' in page and 'generation 41' in page
    assert 'http' not in page.replace('http://www.w3.org/2000/svg', '')


def test_empty_fleet_renders():
    page = render_html({'generation': None, 'hosts': [], 'totals': {}}, WHEN)
    assert '<table>' in page and page.count('<tr') == 1


def test_files_are_written_whole_with_the_mode(tmp_path):
    target = tmp_path / 'reports' / 'nested'
    paths, problem = write_report(str(target), REPORT, WHEN, 0o640)
    assert problem is None
    assert sorted(os.path.basename(p) for p in paths) == ['fleet_history.json', 'fleet_report.html', 'fleet_report.json']
    written = carry_last_known(copy.deepcopy(REPORT), None)
    assert json.loads((target / 'fleet_report.json').read_text()) == written
    assert (target / 'fleet_report.json').read_text() == render_json(written)
    for path in paths:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert sorted(os.listdir(str(target))) == ['fleet_history.json', 'fleet_report.html', 'fleet_report.json']


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
    assert sorted(os.listdir(str(tmp_path))) == ['fleet_history.json', 'fleet_report.html', 'fleet_report.json']


def test_a_host_without_a_result_is_marked_with_its_reason_and_what_it_still_has_in_force(tmp_path):
    """A failed host was a row of 0 entries, unhighlighted (its class matched no CSS rule), with no reason, and the
    page's "entries in force" undercounted: its old sets were still loaded."""
    write_report(str(tmp_path), dict(copy.deepcopy(REPORT), hosts=[dict(REPORT['hosts'][0]), dict(
        REPORT['hosts'][0], host='h2', entries=150)], totals=dict(REPORT['totals'], entries=350)), WHEN)
    now = copy.deepcopy(REPORT)
    now['generation'] = 42
    now['hosts'][1] = dict(REPORT['hosts'][1], host='h2', state='UNREACHABLE', reason='ssh: connection timed out')
    now['hosts'].append(dict(REPORT['hosts'][1], host='h3', state='no result', reason='no result: ...'))
    write_report(str(tmp_path), now, WHEN)
    written = json.loads((tmp_path / 'fleet_report.json').read_text())
    rows = dict((row['host'], row) for row in written['hosts'])
    assert (rows['h2']['in_force'], rows['h2']['in_force_generation']) == (150, 41)
    assert (rows['h1']['in_force'], rows['h1']['in_force_generation']) == (200, 42)
    assert rows['h3']['in_force'] is None                   # never reported before: unknown
    assert written['totals']['in_force'] == 350 and written['totals']['entries'] == 200
    page = (tmp_path / 'fleet_report.html').read_text()
    assert '350 entries in force' in page
    assert '<tr class="UNREACHABLE"><td>h2</td>' in page and '<tr class="no-result"><td>h3</td>' in page
    assert '150 in force (generation 41)' in page and 'ssh: connection timed out' in page
    # The page's own style highlights every such class.
    for css_class in ('FAILED', 'UNREACHABLE', 'no-result', 'stale'):
        assert '.%s' % css_class in page


def test_the_feeds_health_is_shown_with_the_stale_ones_marked():
    feeds = [{'name': 'spamhaus', 'status': 'fresh', 'fetched_at': '2026-12-03T06:00:00+00:00', 'age_seconds': 0,
              'max_age': 172800, 'error': None, 'error_kind': None, 'stale': False},
             {'name': 'abuse<ipdb>', 'status': 'cached', 'fetched_at': '2026-11-30T06:00:00+00:00',
              'age_seconds': 262800, 'max_age': 172800, 'error': 'HTTP 500', 'error_kind': 'http', 'stale': True},
             {'name': 'gone', 'status': 'failed', 'fetched_at': None, 'age_seconds': None, 'max_age': 0,
              'error': 'not found', 'error_kind': 'http', 'stale': False}]
    report = dict(copy.deepcopy(REPORT), feeds=feeds)
    assert report_problem(report) is None
    page = render_html(report, WHEN)
    parsed = _Page()
    parsed.feed(page)
    assert '<h2>Feeds</h2>' in page and 'abuse&lt;ipdb&gt;' in page
    start = parsed.cells.index('feed')
    assert parsed.cells[start + 6:start + 12] == ['spamhaus', 'fresh', '2026-12-03T06:00:00+00:00', '0 s', '48 h', '']
    assert parsed.cells[start + 12:start + 18] == ['abuse<ipdb>', 'cached', '2026-11-30T06:00:00+00:00', '73 h', '48 h',
                                                   'HTTP 500']
    assert parsed.cells[start + 18:start + 24] == ['gone', 'failed', 'never', '-', 'never', 'not found']
    assert '<tr class="stale"><td>abuse&lt;ipdb&gt;</td>' in page
    assert report_problem(dict(report, feeds=[{'name': 3}])) == "report.feeds[0].name must be a text, got 3"


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


def test_allow_sources_get_their_own_table_and_a_stale_one_is_marked():
    report = dict(copy.deepcopy(REPORT), allow_feeds=[
        {'name': 'cloudflare_v4', 'status': 'cached', 'fetched_at': '2026-12-01T00:00:00+00:00', 'age_seconds': 400000,
         'max_age': 259200, 'error': 'HTML <page>', 'stale': True, 'addresses_removed': 256}])
    assert report_problem(report) is None
    page = render_html(report, WHEN)
    assert '<h2>Allow sources</h2>' in page and '<th>kept reachable (addresses)</th>' in page
    assert '<tr class="stale"><td>cloudflare_v4</td>' in page and '<td>256</td>' in page and 'HTML &lt;page&gt;' in page
    assert report_problem(dict(report, allow_feeds=[{'name': 'x', 'addresses_removed': 'many'}])) == \
        "report.allow_feeds[0].addresses_removed must be a count or null, got 'many'"
