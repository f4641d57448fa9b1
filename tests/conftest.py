# Shared test setup: make the working tree importable as
# ansible_collections.fleetwall.blocklist (scripts/setup.sh makes the link).
# Under ansible-test units the tree already is ansible_collections/fleetwall/blocklist
# and ansible-test has put its parent on the path.
import os
import subprocess
import sys
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT.split(os.sep)[-3:] == ['ansible_collections', 'fleetwall', 'blocklist']:
    COLLECTIONS = os.path.dirname(os.path.dirname(os.path.dirname(ROOT)))
else:
    COLLECTIONS = os.path.join(ROOT, '.collections')
if not os.path.isdir(os.path.join(COLLECTIONS, 'ansible_collections', 'fleetwall', 'blocklist')):
    raise RuntimeError('run scripts/setup.sh first: %s is missing the collection link' % COLLECTIONS)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
sys.path.insert(0, os.path.join(ROOT, 'lab'))


@pytest.fixture
def netns():
    """A private network namespace for the backend tests: real kernel state, nothing shared with the host."""
    if os.geteuid() != 0:
        pytest.skip('needs root for a network namespace')
    name = 'fwtest-' + uuid.uuid4().hex[:8]
    subprocess.run(['ip', 'netns', 'add', name], check=True)

    def run(args, data=None, check_rc=False):
        proc = subprocess.run(['ip', 'netns', 'exec', name] + list(args), input=data,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300, check=False)
        return proc.returncode, proc.stdout, proc.stderr
    run.ns = name
    yield run
    subprocess.run(['ip', 'netns', 'del', name], check=False)


def pytest_terminal_summary(terminalreporter):
    _time_per_part(terminalreporter)
    from ansible_collections.fleetwall.blocklist.tests.helpers import TALLY
    if not TALLY:
        return
    terminalreporter.write_sep('-', 'faults injected, bad inputs tried, and what they broke')
    groups = (('faults injected', 'faults injected: '), ('bad inputs tried', 'bad inputs tried: '))
    for title, prefix in groups:
        kinds = sorted((k[len(prefix):], v) for k, v in TALLY.items() if k.startswith(prefix))
        terminalreporter.write_line('%s: %d (%s)' % (title, sum(v for _k, v in kinds),
                                                     ', '.join('%s %d' % kv for kv in kinds) or 'none'))
    terminalreporter.write_line('lockouts: %d (of %d hosts checked for reachability after a hostile push)'
                                % (TALLY['lockouts'], TALLY['lockout checks']))
    terminalreporter.write_line('lost protection: %d (of %d looks at a set while its apply was killed, and '
                                '%d feed faults that had to keep the last good copy)'
                                % (TALLY['lost protection'], TALLY['protection checks'], TALLY['feed fallbacks']))


def _time_per_part(terminalreporter):
    """Where the suite's time goes, per part (the unit tests, then each integration file; setup and teardown
    included, so a file's lab fixtures count against it): what to make faster before adding tests (docs/testing.md)."""
    seconds = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            nodeid = getattr(report, 'nodeid', '')
            duration = getattr(report, 'duration', None)
            if not nodeid or duration is None:
                continue
            path = nodeid.split('::')[0]
            part = 'unit tests' if path.startswith('tests/unit/') else path
            seconds[part] = seconds.get(part, 0.0) + duration
    if not seconds:
        return
    terminalreporter.write_sep('-', 'time per part (s)')
    for part, took in sorted(seconds.items(), key=lambda item: -item[1]):
        terminalreporter.write_line('%8.1f  %s' % (took, part))


def pytest_collection_modifyitems(config, items):
    """The suite's second pass (scripts/test.sh, with ansible-core 2.21) leaves out the files that say
    ``CORE_INDEPENDENT = True``: they test the kernel, the tools and our own code on the standard library,
    the same under any ansible-core, and they are the slowest (the kill campaigns). Deselected, not skipped."""
    if os.environ.get('FLEETWALL_SECOND_PASS') != '1':
        return
    kept, left_out = [], []
    for item in items:
        module = getattr(item, 'module', None)
        (left_out if getattr(module, 'CORE_INDEPENDENT', False) else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
