"""request_log: monotonic request counters from nginx's per-tier access logs, with real files, rotation and all."""
import hashlib
import itertools
import json
import os
import stat
import threading

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.request_log import count_requests

CORE_INDEPENDENT = True

# Each line its own, as nginx's are (times, addresses): a file is told from another by its first bytes.
SERIAL = itertools.count()
LINE_LENGTH = 64


@pytest.fixture
def log(tmp_path):
    return str(tmp_path / 'fleetwall-block.log')


@pytest.fixture
def state(tmp_path):
    return str(tmp_path / 'state' / '.nginx-requests.json')


@pytest.fixture(autouse=True)
def state_dir(tmp_path):
    os.mkdir(str(tmp_path / 'state'))


def append(path, count, line=None):
    """Append ``count`` lines: ``line`` each time, or LINE_LENGTH-byte lines of their own."""
    with open(path, 'ab') as handle:
        for _line in range(count):
            handle.write(line or ('203.0.113.9 GET /%d' % next(SERIAL)).encode().ljust(LINE_LENGTH - 1) + b'\n')


def read_state(path):
    with open(path) as handle:
        return json.load(handle)


def count(log, state, **kwargs):
    return count_requests({'block': log}, state, **kwargs)


def count_within(seconds, *args, **kwargs):
    """count_requests in a thread, so that a read that blocks (a FIFO) fails the test instead of hanging it."""
    result = []
    worker = threading.Thread(target=lambda: result.append(count_requests(*args, **kwargs)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), 'count_requests blocked'
    return result[0]


def test_the_first_count_counts_every_line_and_saves_where_it_stopped(log, state):
    append(log, 3)
    assert count(log, state) == ({'block': 3}, [])
    info = os.stat(log)
    with open(log, 'rb') as handle:
        head = hashlib.sha256(handle.read()).hexdigest()
    assert read_state(state) == {'version': 1, 'tiers': {'block': {
        'path': log, 'dev': info.st_dev, 'ino': info.st_ino, 'offset': 3 * LINE_LENGTH, 'total': 3, 'head': head}}}


def test_appended_lines_are_added_and_nothing_is_counted_twice(log, state):
    append(log, 3)
    count(log, state)
    append(log, 2)
    assert count(log, state) == ({'block': 5}, [])
    assert count(log, state) == ({'block': 5}, [])


def test_a_half_written_line_is_counted_once_it_is_complete(log, state):
    with open(log, 'wb') as handle:
        handle.write(b'one\ntw')
    assert count(log, state)[0] == {'block': 1}
    assert read_state(state)['tiers']['block']['offset'] == 4
    with open(log, 'ab') as handle:
        handle.write(b'o\nthr')
    assert count(log, state)[0] == {'block': 2}
    with open(log, 'ab') as handle:
        handle.write(b'ee\n')
    assert count(log, state)[0] == {'block': 3}
    assert count(log, state)[0] == {'block': 3}


def test_a_backlog_past_max_bytes_lags_then_catches_up_and_never_overcounts(log, state):
    append(log, 10, b'123456789\n')
    seen = []
    for _run in range(10):
        totals, problems = count(log, state, max_bytes=25)
        assert problems == []
        seen.append(totals['block'])
    assert seen[0] == 2           # 25 bytes hold two complete lines; the third is read again next time
    assert seen == sorted(seen) and max(seen) == 10
    assert seen[-1] == 10 and seen.count(10) > 1
    assert read_state(state)['tiers']['block']['offset'] == 100


def test_a_line_longer_than_max_bytes_does_not_stop_the_count(log, state):
    with open(log, 'wb') as handle:
        handle.write(b'x' * 100 + b'\nshort\n')
    totals = [count(log, state, max_bytes=30)[0]['block'] for _run in range(6)]
    assert totals[-1] == 2
    assert totals == sorted(totals)


def test_a_rotated_log_has_its_tail_counted_at_dot_1_before_the_new_file(log, state):
    append(log, 3)
    count(log, state)
    append(log, 2)                 # written after the last count, before the rotation
    os.rename(log, log + '.1')
    append(log, 4)                 # nginx reopened a new file
    assert count(log, state) == ({'block': 9}, [])
    assert read_state(state)['tiers']['block']['ino'] == os.stat(log).st_ino
    append(log, 1)
    assert count(log, state) == ({'block': 10}, [])


def test_a_rotated_tail_past_max_bytes_is_finished_before_the_new_file_is_counted(log, state):
    line = b'123456789\n'
    append(log, 1, line)
    count(log, state)
    append(log, 5, line)
    old_ino = os.stat(log).st_ino
    os.rename(log, log + '.1')
    append(log, 3, line)
    first = count(log, state, max_bytes=30)[0]['block']
    assert first == 4              # only the old file's 30 bytes were read
    assert read_state(state)['tiers']['block']['ino'] == old_ino
    totals = [count(log, state, max_bytes=30)[0]['block'] for _run in range(4)]
    assert totals[-1] == 9 and totals == sorted(totals)


def test_a_rotation_whose_old_file_is_gone_counts_the_new_file_and_reports_the_loss(log, state):
    append(log, 3)
    count(log, state)
    append(log, 2)                 # lost: its file was rotated on past .1 before the next count
    os.rename(log, log + '.2')
    append(log + '.1', 5)          # the rotation between, never counted
    append(log, 4)
    totals, problems = count(log, state)
    assert totals == {'block': 7}
    assert len(problems) == 1 and log in problems[0] and 'lost' in problems[0]
    assert count(log, state) == ({'block': 7}, [])


def test_a_new_log_that_may_get_the_removed_logs_inode_number_is_counted_from_its_start(log, state):
    append(log, 3)
    count(log, state)
    os.unlink(log)                 # a file system hands the freed inode number to the next file, often
    append(log, 4)
    assert count(log, state)[0] == {'block': 7}
    append(log, 1)
    assert count(log, state)[0] == {'block': 8}


def test_a_log_rewritten_past_the_offset_under_the_same_inode_is_counted_from_its_start(log, state):
    append(log, 2)
    count(log, state)
    with open(log, 'r+b') as handle:
        handle.truncate(0)         # copytruncate, then more lines than before before the next count
    append(log, 3)
    assert count(log, state) == ({'block': 5}, [])


def test_a_dot_1_of_another_file_is_not_counted_as_the_rotated_log(log, state):
    append(log, 3)
    count(log, state)
    os.rename(log, log + '.1')
    with open(log + '.1', 'r+b') as handle:
        handle.truncate(0)         # the counted inode, now holding another log (as a reused inode number would)
    append(log + '.1', 50)
    append(log, 1)
    totals, problems = count(log, state)
    assert totals == {'block': 4}
    assert len(problems) == 1 and 'lost' in problems[0]


def test_a_truncated_log_copytruncate_is_counted_from_its_start(log, state):
    append(log, 5)
    count(log, state)
    with open(log, 'r+b') as handle:
        handle.truncate(0)
    append(log, 2)
    assert count(log, state) == ({'block': 7}, [])
    assert read_state(state)['tiers']['block']['offset'] == 2 * LINE_LENGTH


def test_a_missing_log_is_no_problem_and_keeps_its_total(log, state):
    assert count(log, state) == ({'block': 0}, [])
    assert read_state(state)['tiers']['block']['dev'] is None
    append(log, 2)
    assert count(log, state) == ({'block': 2}, [])


def test_a_log_removed_without_a_dot_1_keeps_its_total(log, state):
    append(log, 2)
    count(log, state)
    os.unlink(log)
    totals, _problems = count(log, state)
    assert totals == {'block': 2}
    append(log, 1)
    assert count(log, state) == ({'block': 3}, [])


def _fifo(path, tmp_path):
    os.mkfifo(path)


def _symlink_to_file(path, tmp_path):
    target = str(tmp_path / 'elsewhere.log')
    append(target, 7)
    os.symlink(target, path)


def _symlink_to_fifo(path, tmp_path):
    target = str(tmp_path / 'pipe')
    os.mkfifo(target)
    os.symlink(target, path)


def _symlink_to_device(path, tmp_path):
    os.symlink('/dev/zero', path)


def _directory(path, tmp_path):
    os.mkdir(path)


@pytest.mark.parametrize('make, kind', [(_fifo, 'FIFO'), (_symlink_to_file, 'symlink'), (_symlink_to_fifo, 'symlink'),
                                        (_symlink_to_device, 'symlink'), (_directory, 'directory')])
def test_a_log_path_that_is_not_a_regular_file_is_skipped_reported_and_never_blocks(log, state, tmp_path, make, kind):
    append(log, 3)
    count(log, state)
    os.unlink(log)
    make(log, tmp_path)
    totals, problems = count_within(10, {'block': log, 'challenge': str(tmp_path / 'challenge.log')}, state)
    assert totals == {'block': 3, 'challenge': 0}
    assert len(problems) == 1 and log in problems[0] and kind in problems[0]
    assert read_state(state)['tiers']['block']['total'] == 3


def test_a_fifo_at_dot_1_is_never_opened(log, state):
    append(log, 3)
    count(log, state)
    os.rename(log, str(log) + '.old')
    os.mkfifo(log + '.1')
    append(log, 1)
    totals, problems = count_within(10, {'block': log}, state)
    assert totals == {'block': 4}
    assert len(problems) == 1 and 'lost' in problems[0]


def test_check_mode_reports_the_count_and_writes_no_state(log, state):
    append(log, 3)
    assert count(log, state, check_mode=True) == ({'block': 3}, [])
    assert not os.path.exists(state)
    count(log, state)
    with open(state, 'rb') as handle:
        before = handle.read()
    append(log, 2)
    assert count(log, state, check_mode=True) == ({'block': 5}, [])
    with open(state, 'rb') as handle:
        assert handle.read() == before
    assert count(log, state) == ({'block': 5}, [])


@pytest.mark.parametrize('corrupt', [b'{"tiers": {"block": ', b'\xff\xfe', b'[]', b'{"version": 1, "tiers": []}',
                                     b'{"version": 1, "tiers": {"block": {"path": "x", "dev": 1, "ino": 2, '
                                     b'"offset": -5, "total": 3}}}',
                                     b'{"version": 1, "tiers": {"block": {"path": "x", "dev": null, "ino": null, '
                                     b'"offset": 0, "total": true}}}'])
def test_a_corrupt_state_is_reported_and_restarts_at_0_without_counting_old_lines_again(log, state, corrupt):
    append(log, 3)
    count(log, state)
    append(log, 2)
    with open(state, 'wb') as handle:
        handle.write(corrupt)
    totals, problems = count(log, state)
    assert totals == {'block': 0}
    assert len(problems) == 1 and state in problems[0] and 'state reset' in problems[0]
    append(log, 1)
    assert count(log, state) == ({'block': 1}, [])


def test_a_state_path_that_is_a_fifo_is_reported_and_never_blocks(log, tmp_path):
    state = str(tmp_path / 'state' / 'fifo.json')
    os.mkfifo(state)
    append(log, 2)
    totals, problems = count_within(10, {'block': log}, state, check_mode=True)
    assert totals == {'block': 0}
    assert any('state reset' in problem for problem in problems)


def test_a_tier_no_longer_given_is_dropped_from_the_state(log, state, tmp_path):
    challenge = str(tmp_path / 'fleetwall-challenge.log')
    append(log, 3)
    append(challenge, 2)
    assert count_requests({'block': log, 'challenge': challenge}, state) == ({'block': 3, 'challenge': 2}, [])
    assert sorted(read_state(state)['tiers']) == ['block', 'challenge']
    assert count_requests({'challenge': challenge}, state) == ({'challenge': 2}, [])
    assert sorted(read_state(state)['tiers']) == ['challenge']


def test_a_tier_whose_log_path_changed_keeps_its_total_and_counts_the_new_file(log, state, tmp_path):
    append(log, 3)
    count(log, state)
    moved = str(tmp_path / 'moved.log')
    append(moved, 2)
    assert count(moved, state) == ({'block': 5}, [])
    assert read_state(state)['tiers']['block']['path'] == moved


def test_the_state_file_is_private(log, state):
    append(log, 1)
    old_umask = os.umask(0)
    try:
        count(log, state)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600


def test_a_state_that_cannot_be_saved_is_reported_not_raised(log, tmp_path):
    append(log, 2)
    state = str(tmp_path / 'no-such-dir' / 'state.json')
    totals, problems = count(log, state)
    assert totals == {'block': 2}
    assert len(problems) == 1 and 'could not be saved' in problems[0]


def test_max_bytes_below_1_is_refused(log, state):
    with pytest.raises(ValueError):
        count(log, state, max_bytes=0)
