"""Hostile feed bodies against the fetcher and the shadow-copy build (lab/feed_server.py's hostile faults).

Every case builds a good generation from two feeds, points one of them ("hostile") at a hostile variant of
its URL and builds again in a child process, so that a build that hangs is killed and its peak memory can be
read: the hostile feed must fall back to its last good copy with an error of the right kind, the published
generation must keep what that feed contributed, and the other feed must still be refreshed.  The last
tests call fetch_response directly: max_bytes and deadline, with nothing of the build around them.
"""
import collections
import datetime
import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.fetch import (
    FetchError, fetch_response, redact_url,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import build_shadow_copy

import feed_server
from ansible_collections.fleetwall.blocklist.tests.helpers import COLLECTIONS, tally

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.timezone.utc)
LATER = NOW + datetime.timedelta(hours=1)
MB = 1000 * 1000

# The hostile feed's good list: every other address of 203.0.113.0/24, so that nothing aggregates and each
# published line is one entry.  The other feed gains an address between the two builds, so its refresh shows.
GOOD = ['203.0.113.%d' % n for n in range(1, 255, 2)]
OTHER_BEFORE = ['198.51.100.%d' % n for n in range(1, 41, 2)]
OTHER_NEW = '198.51.100.101'

DEADLINE = 3
# What "within the deadline" allows on top of it: the other feed, the build, and a loaded 2-core machine.
DEADLINE_SLACK = 3
# Any other hostile build ends well within this; the child is killed 10 s after it.
BUILD_SECONDS = 30
# The child's address space: far above every bound asserted here, so it never decides a case by itself, but
# low enough that a fetcher expanding a 2 GiB bomb fails inside the child rather than exhausting the machine.
CHILD_ADDRESS_SPACE = 4 << 30
# max_bytes for the 200 MB line: a quarter of it, so that reading the line whole shows in the peak memory.
LONG_LINE_MAX_BYTES = 50 * MB

# A child process: build_shadow_copy once, then report on stdout (JSON, one line) what it returned or what
# escaped it, how long it took, its peak RSS before and after, and whether anything opened a watched file.
# The peak is the child's own VmHWM: on Linux a spawned child's ru_maxrss starts at its parent's RSS (the
# high-water mark of the parent's memory, shared until exec, is carried over), so the pytest process's size
# would show as the child's. ru_maxrss is the fallback where there is no /proc.
CHILD = r'''
import datetime, json, os, resource, sys, time, traceback
args = json.loads(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (args['address_space'], args['address_space']))
sys.path.insert(0, args['collections'])
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import build_shadow_copy
def peak_kb():
    try:
        with open('/proc/self/status') as handle:
            return int(next(line for line in handle if line.startswith('VmHWM:')).split()[1])
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
opened = []
def watch(event, hook_args):
    if event == 'open' and isinstance(hook_args[0], (str, bytes)) and os.fsdecode(hook_args[0]) in args['watch']:
        opened.append(os.fsdecode(hook_args[0]))
sys.addaudithook(watch)
report = {'escaped': None, 'result': None, 'baseline_kb': peak_kb()}
start = time.monotonic()
try:
    result = build_shadow_copy(args['root'], args['feeds'], now=datetime.datetime.fromisoformat(args['now']))
    report['result'] = {key: result.get(key) for key in ('feeds', 'generation', 'published', 'withheld', 'warnings')}
except BaseException as exc:
    report['escaped'] = ''.join(traceback.format_exception_only(type(exc), exc)).strip()[-2000:]
report['elapsed'] = time.monotonic() - start
report['peak_kb'] = peak_kb()
report['opened'] = opened
print(json.dumps(report, default=repr))
'''

Case = collections.namedtuple('Case', 'fault kinds says options source seconds peak_mb growth_mb')


def case(fault, kinds, says=(), options=None, source='list.txt', seconds=BUILD_SECONDS, peak_mb=None,
         growth_mb=None):
    """A hostile case: the error kinds accepted, words of which the error must hold one, the feed's options,
    the time the hostile build may take, and bounds on its peak RSS (absolute, and over the interpreter's)."""
    return Case(fault, kinds, says, options or {}, source, seconds, peak_mb, growth_mb)


CASES = [
    # The default max_bytes (256 MiB, 268 MB) may be held decoded, with one transient copy of it (a join),
    # on top of the interpreter (~40 MB): under 600 MB. Expanding the 2 GiB, or a quarter of it, does not fit.
    case('bomb_gzip', ('too_large',), ('max_bytes', 'large'), peak_mb=600),
    case('bomb_zlib', ('too_large',), ('max_bytes', 'large'), peak_mb=600),
    # A byte every 0.5 s never trips the feed's 30 s socket timeout, and the stall trips it only after 30 s,
    # three times with the retries: only the deadline ends them in time.
    case('trickle', ('deadline',), ('deadline',), {'deadline': DEADLINE}, seconds=DEADLINE + DEADLINE_SLACK),
    case('stall', ('deadline',), ('deadline',), {'deadline': DEADLINE}, seconds=DEADLINE + DEADLINE_SLACK),
    case('overlong', ('truncated',), ('truncated',), {'retries': 0}),
    # Redirects are followed by the fetcher itself: http(s) only (urllib followed ftp://), no loops.
    case('redirect_loop', ('http',), ('redirect loop',), options={'retries': 0}),
    case('redirect_scheme', ('http',), ('not http(s); not followed',), options={'retries': 0}),
    case('redirect_ftp', ('http',), ('not http(s); not followed',), options={'retries': 0}),
    case('redirect_gopher', ('http',), ('not http(s); not followed',), options={'retries': 0}),
    # 134 MB of lines, under max_bytes, refused by max_entries before it is parsed: the body and its text,
    # even with three more copies of either, fit in 800 MB with the interpreter (5 x 134 + 40). A Python
    # string for each of its 10,000,000 lines (about 70 bytes each, 700 MB) on top of body and text does not.
    case('lines_10m', ('content',), ('max_entries',), peak_mb=800),
    # With max_bytes at 50 MB the fetch holds at most that, once joined and once in pieces, with the
    # decoder's buffers: 3 x 50 MB over the interpreter. Reading the 200 MB line whole does not fit.
    case('long_line', ('too_large',), ('max_bytes', 'large'), {'max_bytes': LONG_LINE_MAX_BYTES},
         peak_mb=1000, growth_mb=3 * LONG_LINE_MAX_BYTES // MB),
    case('bad_bytes', ('content',), ('invalid',)),
    case('deep_json', ('content',), ('json',), {'format': 'json', 'query': 'data'}, source='list.json'),
]


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp('hostile_feeds')
    (data / 'list.txt').write_text(''.join(address + '\n' for address in GOOD))
    (data / 'list.json').write_text(json.dumps({'data': GOOD}))
    srv = feed_server.serve(str(data))
    yield 'http://127.0.0.1:%d' % srv.server_address[1], data
    srv.shutdown()


@pytest.fixture(scope='module')
def passwd_line():
    """A line of /etc/passwd, which no feed status or published file may ever hold."""
    try:
        with open('/etc/passwd') as handle:
            return next((line.strip() for line in handle if len(line.strip()) > 8), 'root:x:0:0:')
    except OSError:
        return 'root:x:0:0:'


def write_list(path, addresses):
    path.write_text(''.join(address + '\n' for address in addresses))


def published(root):
    """The entries of the current generation's IPv4 block list."""
    with open(os.path.join(root, 'current', 'blocklist_v4.txt')) as handle:
        return set(handle.read().split())


def everything_written(root):
    """The text of every file under the shadow copy (the published ones and the feed cache)."""
    texts = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), 'rb') as handle:
                texts.append(handle.read().decode('utf-8', 'replace'))
    return '\n'.join(texts)


def good_generation(root, url, data, other_name, source, options):
    """Build generation 1 from the good feeds and check it: the last good copy every case relies on."""
    write_list(data / other_name, OTHER_BEFORE)
    feeds = [dict(options, name='hostile', url='%s/%s' % (url, source)),
             {'name': 'other', 'url': '%s/%s' % (url, other_name)}]
    result = build_shadow_copy(root, feeds, now=NOW)
    assert result['published'] and result['generation'] == 1
    assert [f['status'] for f in result['feeds']] == ['fresh', 'fresh']
    assert published(root) == set(GOOD + OTHER_BEFORE)


def build_in_child(root, feeds, seconds, watch=('/etc/passwd',)):
    """build_shadow_copy(root, feeds) in a fresh interpreter; (its report, None) or (None, what went wrong)."""
    args = {'root': root, 'feeds': feeds, 'now': LATER.isoformat(), 'collections': COLLECTIONS,
            'address_space': CHILD_ADDRESS_SPACE, 'watch': list(watch)}
    try:
        proc = subprocess.run([sys.executable, '-c', CHILD, json.dumps(args)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=seconds + 10, check=False)
    except subprocess.TimeoutExpired:
        return None, 'the build was still running after %d s and was killed' % (seconds + 10)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        return None, 'the child exited with %d: %s' % (proc.returncode, proc.stderr[-3000:])
    return json.loads(lines[-1]), None


def hostile_build(tmp_path, server, hostile):
    """Generation 1 from the good feeds, then the hostile one in a child: (root, hostile URL, report, failure)."""
    url, data = server
    root = str(tmp_path / 'copy')
    other_name = 'other-%s.txt' % tmp_path.name
    base_options = {k: v for k, v in hostile.options.items() if k in ('format', 'query')}
    good_generation(root, url, data, other_name, hostile.source, base_options)
    write_list(data / other_name, OTHER_BEFORE + [OTHER_NEW])
    hostile_url = '%s/fault/%s/%s' % (url, hostile.fault, hostile.source)
    feeds = [dict(hostile.options, name='hostile', url=hostile_url),
             {'name': 'other', 'url': '%s/%s' % (url, other_name)}]
    report, failure = build_in_child(root, feeds, hostile.seconds)
    tally('bad inputs tried: hostile feed bodies', 1)
    return root, hostile_url, report, failure


def statuses(report):
    return {status['name']: status for status in report['result']['feeds']}


def tally_outcome(report, now_published):
    """For the summary, whatever happened in the child: did the feed fall back, did the protection hold."""
    tally('lost protection', 0 if set(GOOD) <= now_published else 1)
    tally('feed fallbacks', bool(report and report['result']) and statuses(report)['hostile']['status'] == 'cached')


def check_fallback(report, hostile, hostile_url):
    """The hostile feed fell back to its last good copy and says what happened; returns its status."""
    feed = statuses(report)['hostile']
    error = feed.get('error') or ''
    assert feed['status'] == 'cached', (feed['status'], error)
    assert feed['error_kind'] in hostile.kinds, (feed['error_kind'], error)
    # A fetch error names the feed's URL (redacted); a content error names the feed.
    assert (redact_url(hostile_url) if feed['error_kind'] != 'content' else 'hostile') in error, error
    assert not hostile.says or any(word in error.lower() for word in hostile.says), error
    assert feed['accepted'] == len(GOOD)
    return feed


def check_others_refreshed(report, now_published):
    """The other feed was refreshed, and the generation published with it keeps the hostile feed's entries."""
    other = statuses(report)['other']
    assert other['status'] == 'fresh' and other['accepted'] == len(OTHER_BEFORE) + 1
    assert report['result']['published'] and report['result']['generation'] == 2
    assert now_published == set(GOOD + OTHER_BEFORE + [OTHER_NEW])


def check_bounds(report, hostile):
    peak_mb = report['peak_kb'] * 1024 / MB
    growth_mb = (report['peak_kb'] - report['baseline_kb']) * 1024 / MB
    print('hostile %s: %.1f s, peak RSS %.0f MB (%.0f MB over the interpreter)'
          % (hostile.fault, report['elapsed'], peak_mb, growth_mb))
    assert report['elapsed'] < hostile.seconds, 'the build took %.1f s' % report['elapsed']
    if hostile.peak_mb:
        assert peak_mb < hostile.peak_mb, 'peak RSS %.0f MB' % peak_mb
    if hostile.growth_mb:
        assert growth_mb < hostile.growth_mb, 'peak RSS %.0f MB over the interpreter' % growth_mb


def check_no_local_read(report, root, passwd_line):
    """No redirect, nor anything else, made the build open /etc/passwd or publish a line of it."""
    assert report['opened'] == []
    assert passwd_line not in json.dumps(report) and passwd_line not in everything_written(root)


@pytest.mark.parametrize('hostile', CASES, ids=[c.fault for c in CASES])
def test_hostile_feed_keeps_the_last_good_copy(tmp_path, server, passwd_line, hostile):
    root, hostile_url, report, failure = hostile_build(tmp_path, server, hostile)
    now_published = published(root)
    tally_outcome(report, now_published)
    assert failure is None, failure
    assert report['escaped'] is None, 'an exception escaped build_shadow_copy: %s' % report['escaped']
    missing = set(GOOD) - now_published
    assert not missing, 'the published generation lost %d of the feed\'s entries' % len(missing)
    check_fallback(report, hostile, hostile_url)
    check_others_refreshed(report, now_published)
    check_bounds(report, hostile)
    check_no_local_read(report, root, passwd_line)


def test_a_few_lines_of_bad_bytes_are_only_counted_invalid(tmp_path, server):
    """Under the invalid threshold the feed is used; each line with invalid UTF-8 or NUL bytes is one invalid
    line, and none of them becomes an entry (their addresses are all in 45.33.0.0/16)."""
    hostile = case('bad_bytes_few', ())
    root, _url, report, failure = hostile_build(tmp_path, server, hostile)
    assert failure is None, failure
    assert report['escaped'] is None, 'an exception escaped build_shadow_copy: %s' % report['escaped']
    feed = statuses(report)['hostile']
    bad_lines = len(GOOD) // 20
    replaced = set(GOOD[19::20])
    assert feed['status'] == 'fresh', feed.get('error')
    assert feed['invalid'] == bad_lines and feed['lines'] == len(GOOD)
    assert feed['accepted'] == len(GOOD) - bad_lines
    # The bad lines are lines 20, 40, ...: the invalid ones are exactly those.
    assert feed['invalid_samples'] and all(sample['line'] % 20 == 0 for sample in feed['invalid_samples'])
    now_published = published(root)
    assert now_published == set(GOOD) - replaced | set(OTHER_BEFORE + [OTHER_NEW])
    assert not any(entry.startswith('45.') for entry in now_published)


def test_the_file_watch_sees_a_read(tmp_path, passwd_line):
    """The control for the check above: a feed that names file:///etc/passwd itself (a file source, which an
    operator may configure) is seen opening it, and its text is seen in the report."""
    root = str(tmp_path / 'copy')
    report, failure = build_in_child(root, [{'name': 'local', 'url': 'file:///etc/passwd'}], BUILD_SECONDS)
    assert failure is None, failure
    assert '/etc/passwd' in report['opened']
    assert passwd_line in json.dumps(report)


@pytest.mark.parametrize('fault', ['bomb_gzip', 'bomb_zlib'])
def test_fetch_response_stops_decoding_at_max_bytes(server, fault):
    url, _data = server
    target = '%s/fault/%s/list.txt' % (url, fault)
    tally('bad inputs tried: hostile feed bodies', 1)
    with pytest.raises(FetchError) as caught:
        fetch_response(url=target, max_bytes=8 << 20, retries=0)
    assert caught.value.kind == 'too_large' and redact_url(target) in str(caught.value), str(caught.value)


def test_fetch_response_deadline_covers_retries_and_back_off(server):
    """Each attempt on a stalled body ends at the 1 s socket timeout; six of them with their back-off
    (1 + 2 + 4 + 8 + 16 s) would take 37 s. The deadline ends the whole fetch."""
    url, _data = server
    target = '%s/fault/stall/list.txt' % url
    tally('bad inputs tried: hostile feed bodies', 1)
    start = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetch_response(url=target, timeout=1, retries=5, deadline=DEADLINE)
    elapsed = time.monotonic() - start
    assert caught.value.kind == 'deadline' and redact_url(target) in str(caught.value), str(caught.value)
    assert elapsed < DEADLINE + 2, 'the fetch took %.1f s' % elapsed
