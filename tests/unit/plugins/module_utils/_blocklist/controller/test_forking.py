import subprocess
import sys

from ansible_collections.fleetwall.blocklist.tests.helpers import COLLECTIONS

# In a fresh interpreter: fork_child (rightly) forks only in a single-threaded process.
CHECK = r"""
import os, sys, time
sys.path.insert(0, %r)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.forking import fork_child, read_child

def run(work, timeout=10):
    read_end, write_end = os.pipe()
    pid = fork_child(lambda: work(write_end), write_end)
    assert pid is not None, 'no fork'
    os.close(write_end)
    started = time.monotonic()
    got = read_child(pid, read_end, timeout)
    try:
        os.kill(pid, 0)
        raise AssertionError('the child was not reaped')
    except ProcessLookupError:
        pass
    return got, time.monotonic() - started

assert run(lambda out: os.write(out, b'x' * 3000000))[0] == b'x' * 3000000      # more than a pipe holds
def interrupted(out):
    raise KeyboardInterrupt
assert run(interrupted)[0] is None
def exits(out):
    sys.exit(0)
assert run(exits)[0] is None
got, took = run(lambda out: time.sleep(60), timeout=0.5)
assert got is None and took < 5, took
print('the parent, once')
"""


def test_a_child_returns_its_bytes_or_nothing_and_never_runs_its_parents_code():
    # An exception in the child (an interrupt, SystemExit) ends the child: it never returns into the code
    # that forked it, which would print this script's last line twice. A late child is killed and reaped.
    proc = subprocess.run([sys.executable, '-c', CHECK % COLLECTIONS], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == 'the parent, once\n'
