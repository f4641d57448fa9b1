"""The UFW apply killed (SIGKILL to its process group) at random points, against the real ufw, iptables and
kernel in a private network and mount namespace (test_backend_ufw's ufw_host).

A change writes the rules files (each atomically), then loads each family with one
``iptables-restore --noflush``, one table commit, then reads the rules back with ``ufw status``. So at
any moment the running firewall holds exactly the old rules or exactly the new ones, never a mix and
never none; and the next run converges, also when the kill fell between writing the files and loading
them (the record of the last finished apply is withdrawn before anything is written, and a run without it
loads the files again even where they already hold the entries).
"""
import functools
import os
import random
import re
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ufw import UfwTaggedRules
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import StateStore
from ansible_collections.fleetwall.blocklist.tests.helpers import (
    COLLECTIONS, child_env, generation, kill_while_watched, next_generation, tally, temporary_files)
# ufw_host is a fixture: pytest finds it by its name in this module.
# pylint: disable=unused-import
from ansible_collections.fleetwall.blocklist.tests.unit.plugins.module_utils._blocklist.host.test_backend_ufw import (  # noqa: F401
    BINS, enable, ufw_host)
# pylint: enable=unused-import

# Nothing of ansible-core is under test here (the kernel, the tools, our own code on the standard library):
# the suite's second pass, with another ansible-core, leaves this file out (tests/conftest.py, scripts/test.sh).
CORE_INDEPENDENT = True

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason='needs root for namespaces'),
              pytest.mark.skipif(not os.path.exists(BINS['ufw']), reason='ufw is not installed')]

KILLS = 10
SIZE = 1500

# One run as ufw_tagged_rules makes it (module_support.run_file_sync): the record vouches for a finished
# apply, and is withdrawn before anything is written.
CHILD = r'''
import subprocess, sys
sys.path.insert(0, %(collections)r)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ufw import UfwTaggedRules
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import StateStore, read_entries_source
def run(args, data=None, check_rc=False):
    proc = subprocess.run(['nsenter', '-t', %(pid)r, '-n', '-m', '--'] + list(args), input=data,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr
store = StateStore(%(state)r, 'ufw', 'fleetwall-4')
store.lock(60)
lines, sha, raw = read_entries_source(%(entries)r)
record = store.load()
rules = UfwTaggedRules(run, %(bins)r, rules_dir=%(rules_dir)r, families=(4,))
result = rules.sync(lines, vouched=bool(record) and record.get('source_sha256') == sha, withdraw=store.invalidate)
if not record or record.get('source_sha256') != sha:
    store.save({'source_sha256': sha, 'count': result['total']}, raw=raw)
store.unlock()
print(result.get('reloaded', False), flush=True)
'''
DROP = re.compile(r'^-A ufw-user-input -s (\S+)/32 -j DROP$', re.M)


def live(run):
    rc, out, err = run(['iptables', '-w', '-S', 'ufw-user-input'])
    assert rc == 0, err
    return set(DROP.findall(out))


def child(run, rules_dir, tmp_path, entries):
    path = tmp_path / ('entries-%d.txt' % random.getrandbits(32))
    path.write_text('\n'.join(entries) + '\n')
    code = CHILD % {'collections': COLLECTIONS, 'pid': str(run.pid), 'state': str(tmp_path / 'state'),
                    'entries': str(path), 'bins': BINS, 'rules_dir': str(rules_dir)}
    return subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=child_env(tmp_path / 'tmpdir'))


def finish(proc):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    return out.strip()


class Monitor(threading.Thread):
    """Lists the running firewall's tagged rules over and over: each listing must be one generation whole."""

    def __init__(self, run, old, new):
        super().__init__(daemon=True)
        self.run_in_ns, self.old, self.new = run, old, new
        self.problems, self.samples = [], 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.samples += 1
            seen = live(self.run_in_ns)
            if seen not in (self.old, self.new):
                self.problems.append('a mix: %d of the old, %d of the new, %d of neither'
                                     % (len(seen & self.old), len(seen & self.new), len(seen - self.old - self.new)))


def test_sigkill_mid_apply_never_loses_protection(ufw_host, tmp_path):
    run, rules_dir = ufw_host
    enable(run)
    applied = generation(0, SIZE)
    assert finish(child(run, rules_dir, tmp_path, applied)) == 'False'   # the files changed: a plain load
    assert live(run) == set(applied)
    started = time.monotonic()
    finish(child(run, rules_dir, tmp_path, generation(99, SIZE)))
    finish(child(run, rules_dir, tmp_path, applied))
    window = (time.monotonic() - started) / 2
    rng = random.Random(11)
    killed = reloads = samples = 0
    for attempt in range(KILLS):
        new = next_generation(applied, attempt, SIZE)
        old = set(applied)
        monitor = Monitor(run, old, set(new))
        killed += kill_while_watched(functools.partial(child, run, rules_dir, tmp_path, new), monitor, rng, window)
        samples += monitor.samples
        after = live(run)
        tally('protection checks', monitor.samples + 1)
        tally('lost protection', len(monitor.problems) + (0 if after in (old, set(new)) else 1))
        assert monitor.samples and not monitor.problems, (attempt, monitor.problems[:5])
        assert after in (old, set(new)), (attempt, len(after - old), len(after - set(new)))
        # The next run converges, also where the files were already new and the firewall was not.
        reloads += finish(child(run, rules_dir, tmp_path, new)) == 'True'
        assert live(run) == set(new), 'no convergence after attempt %d' % attempt
        # What the kill left beside the rules files or the record, the next run removed under the lock.
        assert not temporary_files(rules_dir, tmp_path / 'state', tmp_path / 'tmpdir')
        rc, out, _err = run(['ufw', 'status'])
        assert out.count('# fleetwall') == SIZE
        applied = new
    tally('faults injected: SIGKILL mid-apply (ufw)', killed)
    assert killed >= KILLS // 2, (killed, window)
    # A reload: the kill fell after the files were written and before the record was; whether the
    # firewall lagged then depends on where (the window before the load is short: see the next test).
    print('ufw: %d kills in %d runs, %d looks at the firewall, %d next runs without a record loaded the files again'
          % (killed, KILLS, samples, reloads))


def test_a_run_without_the_record_loads_files_the_firewall_lags_behind(ufw_host, tmp_path):
    """The window the kill test may or may not hit, made on purpose: the files hold the new entries, the
    running firewall the old ones, and no record vouches for the files."""
    run, rules_dir = ufw_host
    enable(run)
    store = StateStore(str(tmp_path / 'state'), 'ufw', 'fleetwall-4')
    rules = UfwTaggedRules(run, BINS, rules_dir=str(rules_dir), families=(4,))
    old, new = ['203.0.113.%d' % i for i in range(1, 50)], ['198.51.100.%d' % i for i in range(1, 50)]
    assert rules.sync(old, vouched=False, withdraw=store.invalidate)['changed']
    saved = (rules_dir / 'user.rules').read_text()
    rules.sync(new)
    assert live(run) == set(new)
    # Put the old rules back into the kernel only, as an apply killed after writing the files leaves it.
    lagging = tmp_path / 'old.rules'
    lagging.write_text(saved)
    assert run(['iptables-restore', '-n', str(lagging)])[0] == 0
    assert live(run) == set(old)
    # With a record that vouches for the files, nothing is loaded (the normal no-op) ...
    result = rules.sync(new, vouched=True)
    assert not result['changed'] and live(run) == set(old)
    # ... without one, the files are loaded again.
    withdrawn = []
    result = rules.sync(new, vouched=False, withdraw=lambda: withdrawn.append(True))
    assert (result['changed'], result.get('reloaded'), withdrawn) == (True, True, [True])
    assert live(run) == set(new)
