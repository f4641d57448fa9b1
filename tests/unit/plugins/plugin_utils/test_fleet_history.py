"""The fleet report's history: one point per run, bounded, read back safely, and the series the page draws."""
import datetime
import json
import os

from ansible_collections.fleetwall.blocklist.plugins.plugin_utils import fleet_history
from ansible_collections.fleetwall.blocklist.plugins.plugin_utils.fleet_report_files import write_report

CORE_INDEPENDENT = True
DAY = 86400
START = int(datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc).timestamp())


def report(generation, drops, bans_by_day=None, web=None):
    """A report of two hosts: h1 with ``drops`` dropped packets so far, h2 without counters."""
    hosts = [{'host': 'h1', 'state': 'ok', 'entries': 10, 'in_force': 10, 'added': 1, 'removed': 0,
              'dropped_packets': drops, 'bans_by_day': bans_by_day or {}, 'web_requests': web},
             {'host': 'h2', 'state': 'ok', 'entries': 10, 'in_force': 10, 'added': 1, 'removed': 0,
              'dropped_packets': None}]
    return {'generation': generation, 'hosts': hosts, 'tiers': {'block': 9, 'challenge': 1},
            'totals': {'hosts': 2, 'entries': 20, 'in_force': 20, 'added': 2, 'removed': 0, 'dropped_packets': drops}}


def test_a_run_is_one_point_and_a_rerun_of_the_same_run_replaces_it():
    history = fleet_history.empty()
    history = fleet_history.add_run(history, report(1, 5), START, 200, run_id='a')
    history = fleet_history.add_run(history, report(1, 7), START + 60, 200, run_id='a')    # the next canary batch
    history = fleet_history.add_run(history, report(2, 9), START + 120, 200, run_id='b')
    assert [(run['run'], run['totals']['dropped_packets']) for run in history['runs']] == [('a', 7), ('b', 9)]
    assert history['runs'][1]['hosts']['h1']['dropped_packets'] == 9
    assert 'dropped_packets' not in history['runs'][1]['hosts']['h2']      # no counters: absent, not 0
    # Without an id every write is a run.
    history = fleet_history.add_run(history, report(2, 9), START + 180, 200)
    history = fleet_history.add_run(history, report(2, 9), START + 240, 200)
    assert len(history['runs']) == 4


def test_the_history_is_bounded_in_runs_and_in_bytes(monkeypatch):
    history = fleet_history.empty()
    for index in range(30):
        history = fleet_history.add_run(history, report(index, index), START + index, 10, run_id=str(index))
    assert [run['generation'] for run in history['runs']] == list(range(20, 30))
    one_run = len(json.dumps(history['runs'][-1], sort_keys=True)) + 2
    monkeypatch.setattr(fleet_history, 'MAX_BYTES', one_run * 3)
    history = fleet_history.add_run(history, report(30, 30), START + 30, 10, run_id='30')
    assert [run['generation'] for run in history['runs']] == [28, 29, 30]
    assert fleet_history.add_run(history, report(31, 31), START + 31, 0)['runs'] == []


def test_counters_grow_by_their_deltas_and_a_reset_counts_from_zero():
    assert fleet_history.counter_deltas([None, 5, 8, 3, None, 4]) == [None, None, 3, 3, None, None]
    runs = [fleet_history.point(report(g, drops), START + g * 3600) for g, drops in enumerate([0, 10, 25, 4])]
    assert fleet_history.fleet_deltas(runs, fleet_history.drops_of) == [None, 10, 15, 4]
    two_days = [fleet_history.point(report(g, drops), START + g * DAY // 2) for g, drops in enumerate([0, 10, 25, 40])]
    assert fleet_history.drops_per_day(two_days) == {'2026-12-01': 10, '2026-12-02': 30}


def test_bans_per_day_keep_the_most_any_run_saw_and_only_ninety_days():
    history = fleet_history.empty()
    history = fleet_history.add_run(history, report(1, 0, {'2026-12-01': 3}), START, 200)
    history = fleet_history.add_run(history, report(1, 0, {'2026-12-01': 2, '2026-12-02': 4}), START + DAY, 200)
    assert history['bans_by_day'] == {'2026-12-01': {'h1': 3}, '2026-12-02': {'h1': 4}}
    later = fleet_history.add_run(history, report(1, 0), START + 91 * DAY, 200)
    assert later['bans_by_day'] == {'2026-12-02': {'h1': 4}}


def test_a_corrupt_history_is_set_aside_reported_and_begins_again(tmp_path):
    when = datetime.datetime.fromtimestamp(START, datetime.timezone.utc)
    for content in (b'{"format": 1, "runs": [', b'\xff\xfe', b'[]', b'{"format": 1, "runs": [{"at": "x"}], "bans_by_day": {}}',
                    b'{"format": 1, "runs": [], "bans_by_day": {"d": {"h": -1}}}'):
        (tmp_path / fleet_history.HISTORY).write_bytes(content)
        paths, problem = write_report(str(tmp_path), report(1, 0), when, run_id='r')
        assert problem.startswith('the fleet history %s could not be read' % (tmp_path / fleet_history.HISTORY))
        assert 'moved to %s' % (tmp_path / fleet_history.CORRUPT) in problem
        assert (tmp_path / fleet_history.CORRUPT).read_bytes() == content          # nothing lost
        history = json.loads((tmp_path / fleet_history.HISTORY).read_text())
        assert [run['run'] for run in history['runs']] == ['r']
        assert os.path.join(str(tmp_path), 'fleet_report.html') in paths


def test_a_fifo_in_the_history_s_place_does_not_hold_the_run(tmp_path):
    os.mkfifo(str(tmp_path / fleet_history.HISTORY))
    history, problem = fleet_history.read(str(tmp_path))
    assert history == fleet_history.empty() and 'could not be read' in problem


def test_no_history_is_kept_with_zero_runs(tmp_path):
    paths, problem = write_report(str(tmp_path), report(1, 0), datetime.datetime.now(datetime.timezone.utc),
                                  history_runs=0)
    assert problem is None and not (tmp_path / fleet_history.HISTORY).exists()
    assert sorted(os.path.basename(p) for p in paths) == ['fleet_report.html', 'fleet_report.json']


def test_a_fifo_in_the_previous_report_s_place_does_not_hold_the_run(tmp_path):
    os.mkfifo(str(tmp_path / 'fleet_report.json'))
    os.mkfifo(str(tmp_path / fleet_history.HISTORY))
    _paths, problem = write_report(str(tmp_path), report(1, 0), datetime.datetime.now(datetime.timezone.utc))
    assert 'could not be read' in problem and (tmp_path / 'fleet_report.json').is_file()


def test_a_history_with_values_the_charts_cannot_draw_is_set_aside(tmp_path):
    """Each of these passed the first shape check and then failed the report task at every run, writing nothing."""
    when = datetime.datetime.fromtimestamp(START, datetime.timezone.utc)
    good = fleet_history.add_run(fleet_history.empty(), report(1, 5), START - 60, 200, run_id='old')
    for path, value in ((('runs', 0, 'at'), 1e20), (('runs', 0, 'totals', 'entries'), 'many'),
                        (('runs', 0, 'tiers'), [1]), (('runs', 0, 'hosts', 'h1', 'dropped_packets'), '7'),
                        (('runs', 0, 'hosts', 'h1', 'web_requests'), [1]), (('bans_by_day',), {'x': {'h': 1}})):
        history = json.loads(json.dumps(good))
        target = history
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        (tmp_path / fleet_history.HISTORY).write_text(json.dumps(history))
        paths, problem = write_report(str(tmp_path), report(2, 9), when, run_id='r')
        assert problem and 'could not be read' in problem, path
        assert [run['run'] for run in json.loads((tmp_path / fleet_history.HISTORY).read_text())['runs']] == ['r']
        assert (tmp_path / 'fleet_report.json').is_file() and len(paths) == 3


def test_bans_from_a_clock_ahead_and_beyond_the_bound_are_not_kept():
    history = fleet_history.add_run(fleet_history.empty(), report(1, 0, {'2026-12-01': 1, '2027-06-01': 5}), START, 200)
    assert history['bans_by_day'] == {'2026-12-01': {'h1': 1}}
    many = fleet_history.merge_bans({}, [{'host': 'h%d' % n, 'bans_by_day': {'2026-12-01': 1, '2026-11-30': 1}}
                                         for n in range(60000)], START)
    assert list(many) == ['2026-12-01']                    # the newest day fits, the one before would pass the bound
