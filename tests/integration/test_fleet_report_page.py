"""The fleet report's page, rendered by a real browser (Debian's headless Chromium): its charts draw the history
they were given. The values are worked out here from the runs' inputs, not read back from the code that drew them."""
import datetime

import pytest

from ansible_collections.fleetwall.blocklist.plugins.plugin_utils.fleet_report_files import write_report

from . import browser

CORE_INDEPENDENT = True

if browser.chromium_path() is None:
    pytest.skip('Chromium is not installed (scripts/setup.sh installs it)', allow_module_level=True)

START = datetime.datetime(2026, 12, 1, 6, 0, tzinfo=datetime.timezone.utc)
HOSTS = ('web1', 'web2', 'db1')
# Per run: each host's drop counter (web2's was reset before run 4: its rules were reloaded), web1's nginx request
# counters, the generation's tiers, and the bans web1 and db1 have in force by the day they began.
DROPS = {'web1': [0, 40, 90, 150, 160, 400], 'web2': [0, 10, 30, 5, 25, 45], 'db1': [0, 0, 0, 0, 0, 0]}
WEB = [(0, 0), (3, 1), (8, 1), (8, 4), (20, 6), (21, 6)]
TIERS = [(1000, 50), (1010, 50), (1010, 60), (990, 60), (990, 61), (1200, 61)]
BANS = {'web1': {'2026-12-01': 4, '2026-12-02': 7, '2026-12-03': 2}, 'db1': {'2026-12-02': 1}}
RUNS = len(TIERS)
PLOT_HEIGHT = 180 - 24 - 12          # fleet_charts: HEIGHT - BOTTOM - TOP


def write_runs(directory):
    for index in range(RUNS):
        rows = []
        for host in HOSTS:
            row = {'host': host, 'state': 'ok', 'backend': 'nftables', 'entries': TIERS[index][0] + 5,
                   'added': index, 'removed': 1, 'drift': 0, 'dropped_packets': DROPS[host][index],
                   'dropped_bytes': 60 * DROPS[host][index]}
            if host == 'web1':
                row['web_requests'] = {'block': WEB[index][0], 'challenge': WEB[index][1]}
            if host in BANS:
                # Each run sees the bans that began up to its own day (12 h apart: two runs a day).
                seen_until = (START + datetime.timedelta(hours=12 * index)).strftime('%Y-%m-%d')
                row.update(bans_by_day=dict((day, n) for day, n in BANS[host].items() if day <= seen_until),
                           bans_in_force=1)
            rows.append(row)
        report = {'generation': 40 + index, 'hosts': rows, 'tiers': {'block': TIERS[index][0], 'challenge': TIERS[index][1]},
                  'totals': {'hosts': 3, 'entries': sum(r['entries'] for r in rows), 'added': 3 * index, 'removed': 3,
                             'drift': 0, 'dropped_packets': sum(r['dropped_packets'] for r in rows), 'dropped_bytes': 0}}
        _paths, problem = write_report(str(directory), report, START + datetime.timedelta(hours=12 * index),
                                       run_id='run-%d' % index)
        assert problem is None
    return directory / 'fleet_report.html'


def expected_drop_deltas():
    """Per run after the first, the fleet's packets dropped since the run before; a counter that went down was
    reset and counts from zero."""
    deltas = []
    for index in range(1, RUNS):
        total = 0
        for host in HOSTS:
            now, before = DROPS[host][index], DROPS[host][index - 1]
            total += now - before if now >= before else now
        deltas.append(total)
    return deltas


@pytest.fixture(scope='module')
def page(tmp_path_factory):
    html = write_runs(tmp_path_factory.mktemp('report'))
    with browser.open_page(str(html), width=1400, height=1000) as opened:
        opened.shot = str(tmp_path_factory.mktemp('shot') / 'report.png')
        opened.screenshot(opened.shot)
        yield opened


def drawn(page, chart, kind, series):
    """[(data-value, rendered height, title text)] of the chart's drawn elements of one series, in order."""
    return page.evaluate('''Array.from(document.querySelectorAll('#%s %s[data-series="%s"]')).map(e => [
        Number(e.getAttribute('data-value')), e.getBoundingClientRect().height, e.querySelector('title').textContent])'''
                         % (chart, 'circle.point' if kind == 'line' else 'rect.bar', series))


def test_the_page_is_self_contained_and_raises_nothing(page):
    assert page.console_errors() == []
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    # Nothing was fetched: no external resource, the page opens anywhere.
    assert page.evaluate("performance.getEntriesByType('resource').length") == 0
    assert page.evaluate("document.title") == 'fleetwall.blocklist fleet report, generation %d' % (40 + RUNS - 1)


def test_entries_per_tier_are_one_point_per_run_with_the_generation_and_value_in_its_title(page):
    for series, column in (('block tier', 0), ('challenge tier', 1)):
        points = drawn(page, 'chart-entries', 'line', series)
        assert [value for value, _h, _t in points] == [tiers[column] for tiers in TIERS]
        for index, (value, _height, title) in enumerate(points):
            when = (START + datetime.timedelta(hours=12 * index)).strftime('%Y-%m-%d %H:%M')
            assert title == 'generation %d, %s UTC: %d entries (%s)' % (40 + index, when, value, series)
    # The line goes up where the entries do: the circles' centres are ordered as the values.
    heights = page.evaluate('''Array.from(document.querySelectorAll('#chart-entries circle[data-series="block tier"]'))
        .map(e => e.getBoundingClientRect().top)''')
    assert heights[-1] == min(heights) and heights[3] == max(heights)          # 1200 highest, 990 lowest


def test_drops_are_the_growth_since_the_run_before_and_the_bars_are_drawn_to_scale(page):
    bars = drawn(page, 'chart-drops', 'bar', 'dropped packets')
    # The first run has no run before it: no bar (unknown), not a bar of 0.
    assert [value for value, _h, _t in bars] == expected_drop_deltas() == [50, 70, 65, 30, 260]
    tallest = max(value for value, _h, _t in bars)
    for value, height, _title in bars:
        assert abs(height - PLOT_HEIGHT * value / tallest) < 0.6
    assert page.evaluate("document.querySelectorAll('#chart-drops rect.bar').length") == RUNS - 1


def test_the_web_tier_s_blocks_and_challenges_are_charted_per_tier(page):
    for series, column in (('web tier block', 0), ('web tier challenge', 1)):
        values = [value for value, _h, _t in drawn(page, 'chart-web', 'bar', series)]
        assert values == [WEB[i][column] - WEB[i - 1][column] for i in range(1, RUNS)]


def test_fail2ban_bans_per_day_stand_beside_the_drops_of_those_days(page):
    bans = drawn(page, 'chart-bans', 'bar', 'fail2ban bans')
    assert [(value, title.split(':')[0]) for value, _h, title in bans] == [
        (4, '2026-12-01'), (8, '2026-12-02'), (2, '2026-12-03')]
    drops = drawn(page, 'chart-bans-drops', 'bar', 'dropped packets')
    # Runs at 06:00 and 18:00: each day gets the growth its runs measured.
    deltas = expected_drop_deltas()
    assert [value for value, _h, _t in drops] == [deltas[0], deltas[1] + deltas[2], deltas[3] + deltas[4]]


def test_each_host_has_its_own_series(page):
    assert page.evaluate("Array.from(document.querySelectorAll('div.host-charts')).map(e => e.dataset.host)") == \
        sorted(HOSTS)
    web2 = page.evaluate('''Array.from(document.querySelectorAll('div.host-charts[data-host="web2"] rect.bar'))
        .map(e => Number(e.getAttribute('data-value')))''')
    assert web2 == [10, 20, 5, 20, 20]                    # the reset before run 4 counts from zero
    only_web1_has_web = page.evaluate("Array.from(document.querySelectorAll('div.host-charts')).map("
                                      "e => e.querySelectorAll('figure[id$=\"-web\"]').length)")
    assert only_web1_has_web == [0, 1, 0]                 # db1, web1, web2 in the page's order
    # db1's one ban began on 12-02; the days after it are drawn too, beside its drops (none: 0, not unknown).
    assert page.evaluate('''Array.from(document.querySelectorAll('div.host-charts[data-host="db1"] [id$="-bans"] rect.bar'))
        .map(e => [e.querySelector('title').textContent.split(':')[0], Number(e.getAttribute('data-value'))])''') == \
        [['2026-12-02', 1], ['2026-12-03', 0]]


def test_the_screenshot_shows_the_tallest_drop_bar_in_its_colour(page):
    box = page.evaluate('''(() => { const bars = Array.from(document.querySelectorAll('#chart-drops rect.bar'));
        const top = bars.reduce((a, b) => Number(a.getAttribute('data-value')) >= Number(b.getAttribute('data-value')) ? a : b);
        const r = top.getBoundingClientRect(); return [r.left + r.width / 2 + window.scrollX, r.top + r.height / 2 + window.scrollY]; })()''')
    width, height, rows = browser.png_pixels(page.shot)
    x, y = int(box[0]), int(box[1])
    assert 0 <= x < width and 0 <= y < height
    assert rows[y][x][:3] == (0xd0, 0x70, 0x4a)
