"""Paths and oracles the tests share, importable under plain pytest and under ansible-test units
as ansible_collections.fleetwall.blocklist.tests.helpers (tests/conftest.py sets up the path)."""
import collections
import contextlib
import os
import subprocess

# This file is imported as COLLECTIONS/ansible_collections/fleetwall/blocklist/tests/helpers.py, whether
# the tree is reached through scripts/setup.sh's link or is ansible-test's copy. ROOT is the real
# directory: Ansible finds nothing when started from inside the link.
COLLECTIONS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))))
ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
FEEDS = os.path.join(ROOT, 'tests', 'data', 'feeds')


def provider_oracle(block_score=90, challenge_score=50, extra_block=()):
    """What the abuseipdb + spamhaus_drop (v4, v6) + ipsum level 3 presets must publish, computed
    independently with netaddr from the fixture files: (abuseipdb records, block IPSet, challenge IPSet)."""
    import json
    import netaddr
    with open(os.path.join(FEEDS, 'providers', 'abuseipdb_blacklist.json')) as handle:
        records = json.load(handle)['data']
    block = netaddr.IPSet(r['ipAddress'] for r in records if r['abuseConfidenceScore'] >= block_score)
    block.update(netaddr.IPSet(extra_block))
    challenge = netaddr.IPSet(r['ipAddress'] for r in records
                              if challenge_score <= r['abuseConfidenceScore'] < block_score)
    for filename in ('drop.txt', 'drop_ipv6.txt'):
        with open(os.path.join(FEEDS, 'spamhaus', filename)) as handle:
            block.update(netaddr.IPSet(line.split()[0] for line in handle if line.strip()))
    with open(os.path.join(FEEDS, 'ipsum', 'levels_3.txt')) as handle:
        block.update(netaddr.IPSet(handle.read().split()))
    return records, block, challenge - block


# What the fault, property and lockout tests did, for the summary at the end of the run (tests/conftest.py):
# 'faults injected: <kind>', 'bad inputs tried: <where>', 'lockout checks', 'lockouts', 'protection checks',
# 'lost protection'. Plain pytest only: under xdist (ansible-test units) each worker counts for itself.
TALLY = collections.Counter()


# Where the lab's tools are, whatever PATH the runner was given (a non-login shell may lack sbin).
SEARCH_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'


def lab_tools(*names):
    """(path of each tool, pytest marks that skip a module without root or without one of the tools)."""
    import shutil
    import pytest
    tools = dict((name, shutil.which(name, path=SEARCH_PATH)) for name in names)
    missing = [name for name, path in tools.items() if not path]
    return tools, [pytest.mark.skipif(os.geteuid() != 0, reason='needs root for namespaces'),
                   pytest.mark.skipif(bool(missing), reason='needs %s' % ', '.join(missing))]


def tally(what, count=1):
    TALLY[what] += count


# The kill tests (test_faults.py for ipset and nftables, test_faults_ufw.py for UFW).

def generation(seed, size):
    """``size`` distinct addresses of 10.0.0.0/10, the same for the same seed."""
    import random
    rng = random.Random(seed)
    return ['10.%d.%d.%d' % (n >> 16, (n >> 8) & 255, n & 255) for n in rng.sample(range(1 << 22), size)]


def next_generation(applied, attempt, size):
    """Alternately a patch (a tenth of ``applied`` replaced) and a rebuild (a tenth of it kept)."""
    if attempt % 2:
        return applied[size // 10:] + generation(100 + attempt, size // 10)
    return applied[:size // 10] + generation(1 + attempt, size - size // 10)


def kill_while_watched(start, monitor, rng, window, settle=0.0):
    """Start a run (``start()`` returns its Popen, a session leader) while ``monitor`` (a thread with a
    ``stop`` event) watches, and SIGKILL its process group at a random moment within ``window`` seconds.
    Returns whether the run was killed, rather than finished first."""
    import signal
    import time
    monitor.start()
    proc = start()
    time.sleep(rng.uniform(0, window))
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    time.sleep(settle)
    monitor.stop.set()
    monitor.join(timeout=60)
    return killed


def temporary_files(*directories):
    """The files in ``directories`` that a run writes only for a while (batch files, atomic-write candidates,
    anything named like a temporary file): after a killed run and the next one, there must be none."""
    found = []
    for directory in directories:
        for name in os.listdir(str(directory)):
            if '.scratch-' in name or '.tmp-' in name or name.startswith(('fleetwall-', 'tmp')):
                found.append(os.path.join(str(directory), name))
    return sorted(found)


def child_env(tmpdir):
    """The environment of a child run whose TMPDIR is ``tmpdir``: what it leaves in a temporary directory shows."""
    os.makedirs(str(tmpdir), exist_ok=True)
    return dict(os.environ, TMPDIR=str(tmpdir))


# Lab hosts and bookkeeping of the kill tests that run a real daemon (test_faults_firewalld.py); nothing here is
# particular to one backend.

# A host as lab/fleet.py makes one: private /run (so its own system bus), overlays on /etc, /var/lib and /var/log whose
# upper and work dirs are under the directory given as $0. The holder sleeps, keeping the mount namespace alive.
PRIVATE_HOST_INIT = r'''set -e
mount --make-rprivate /
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/dbus /run/lock
for d in etc var/lib var/log; do
  mkdir -p "$0/upper/$d" "$0/work/$d"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$0/upper/$d,workdir=$0/work/$d" "/$d"
done
exec sleep 3600
'''


def wait_until(ready, seconds, failure):
    """Poll ``ready()`` every 0.1 s; RuntimeError(``failure``) once ``seconds`` have passed."""
    import time
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.1)


def kill_namespace(ns, seconds=15):
    """SIGKILL every process in the network namespace ``ns`` until none is left (at most ``seconds``), then delete
    it. Works after a failed run too: whatever the namespace holds (daemons, buses, mounts of its processes) goes."""
    import signal
    import subprocess
    import time
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pids = subprocess.run(['ip', 'netns', 'pids', ns], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, check=False).stdout.split()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.1)
    subprocess.run(['ip', 'netns', 'del', ns], check=False)


# What the sync modules used to leave in /tmp (their batch files now go to the state directory); not the
# /tmp/fleetwall-ansible-test.* or fleetwall-bench-* of a test run or benchmark going on beside.
OLD_BATCH_PREFIXES = ('fleetwall-ipset-', 'fleetwall-nft-', 'fleetwall-firewalld-', 'fleetwall-mem-')


def fleetwall_in_tmp():
    return set(name for name in os.listdir('/tmp') if name.startswith(OLD_BATCH_PREFIXES))


def leftover_files(directory, kept, tmpdir, tmp_before):
    """Temporary files runs left: in ``directory`` anything not named in ``kept``, anything in the child's own
    ``tmpdir``, and ``fleetwall-*`` in /tmp that was not in ``tmp_before``."""
    found = ['%s/%s' % (directory, name) for name in sorted(os.listdir(str(directory)))
             if name not in kept] if os.path.isdir(str(directory)) else []
    found += ['%s/%s' % (tmpdir, name) for name in sorted(os.listdir(str(tmpdir)))]
    found += ['/tmp/%s' % name for name in sorted(fleetwall_in_tmp() - tmp_before)]
    return found


def child_result(proc, timeout=300):
    """The JSON a child run printed, once it has ended with status 0."""
    import json
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, (out[-2000:], err[-2000:])
    return json.loads(out)


def set_problem(seen, old, new):
    """What is wrong with ``seen``, a look at a set while it changes from ``old`` to ``new`` (sets): None if it holds
    every entry the two share and nothing of neither, and is not empty."""
    if seen is None:
        return 'could not be read'
    if not seen:
        return 'empty'
    missing, foreign = (old & new) - seen, seen - old - new
    if missing or foreign:
        return '%d entries: %d of the %d shared entries missing, %d of neither generation' % (
            len(seen), len(missing), len(old & new), len(foreign))
    return None


class PrivateHost(object):
    """A network namespace and a private mount namespace (PRIVATE_HOST_INIT), named ``prefix`` and a random tail;
    ``run`` runs a command inside both. ``close`` works after a failed start too."""

    def __init__(self, root, prefix):
        import uuid
        self.root = root
        self.ns = prefix + uuid.uuid4().hex[:8]
        self.holder = None

    def start(self, unshare='unshare'):
        import subprocess
        subprocess.run(['ip', 'netns', 'add', self.ns], check=True)
        self.holder = subprocess.Popen(['ip', 'netns', 'exec', self.ns, unshare, '--mount', '--propagation',
                                        'private', 'sh', '-c', PRIVATE_HOST_INIT, os.path.join(str(self.root), 'host')],
                                       start_new_session=True)
        wait_until(self._overlays_mounted, 10, 'the namespace did not come up')

    def _overlays_mounted(self):
        try:
            with open('/proc/%d/mountinfo' % self.holder.pid) as handle:
                return ' /etc ' in handle.read() and self.holder.poll() is None
        except OSError:
            return False

    def enter(self, nsenter='nsenter'):
        return [nsenter, '-t', str(self.holder.pid), '-n', '-m', '--']

    def run(self, args, timeout=120):
        import subprocess
        proc = subprocess.run(self.enter() + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def close(self):
        kill_namespace(self.ns)
        if self.holder is not None:
            self.holder.wait(timeout=15)


class Watcher(object):
    """Looks at what a run changes, over and over, while it runs: ``looks`` maps a name to ``(look, pause)``, where
    ``look()`` returns a problem or None; each name looks in its own thread, ``pause`` seconds apart, until ``stop``
    is set. ``counts`` and ``problems`` are per name. It has the ``start``, ``stop`` and ``join`` that
    kill_while_watched uses."""

    def __init__(self, looks):
        import threading
        self.looks = looks
        self.counts = collections.Counter()
        self.problems = collections.defaultdict(list)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._watch, args=(name,), daemon=True) for name in looks]

    def _watch(self, name):
        look, pause = self.looks[name]
        while not self.stop.is_set():
            self.counts[name] += 1
            problem = look()
            if problem:
                self.problems[name].append(problem)
            self.stop.wait(pause)

    def start(self):
        for thread in self.threads:
            thread.start()

    def join(self, timeout=None):
        for thread in self.threads:
            thread.join(timeout)


class KillCampaign(object):
    """What a kill test's kills did and what broke, per guarantee: ``note`` a problem (None is no problem) under
    what it breaks, ``broken(whats)`` lists them."""

    def __init__(self):
        self.killed = 0
        self.looks = collections.Counter()
        self.problems = collections.defaultdict(list)
        self.left_by_kills = []
        self.window = None

    def note(self, what, attempt, problem):
        if problem:
            self.problems[what].append('attempt %d: %s' % (attempt, problem))

    def take(self, watcher, attempt, during):
        """A Watcher's looks and problems, each name's under '<name> <during>'."""
        for name, count in watcher.counts.items():
            self.looks[name] += count
        for name, problems in watcher.problems.items():
            for problem in problems:
                self.note('%s %s' % (name, during), attempt, problem)

    def broken(self, *whats):
        return [problem for what in whats for problem in self.problems[what]]


# The secrets of the echo tests (test_security.py, test_feeds_playbook.py): every kind, short ones included.
ECHO_TOKEN = 'hand-written-X7'           # X-Custom-Token, written by the operator
ECHO_KEY = 'Zq9'                         # a 3-character api_key (bearer_list: Authorization: Bearer Zq9)
ECHO_QUERY = 'Qk-5/x y'                  # a key in the URL's query
ECHO_USER, ECHO_PASSWORD = 'Usr7x', 'Pw:9/q'


def echo_secret_forms():
    """Each secret as it was configured, sent and could be echoed: raw, URL-encoded, Basic-encoded."""
    import base64
    from urllib.parse import quote, quote_plus
    raw = [ECHO_TOKEN, ECHO_KEY, ECHO_QUERY, ECHO_USER, ECHO_PASSWORD,
           base64.b64encode(('%s:%s' % (ECHO_USER, ECHO_PASSWORD)).encode()).decode()]
    return sorted({form for secret in raw for form in (secret, quote(secret, safe=''), quote_plus(secret))})


def pushed_generation(path, signing_key=None):
    """What the push does (the verified_generation filter, tests/unit/plugins/filter): trust, then verify."""
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (
        trusted_generation_dir, verify_generation)
    resolved = trusted_generation_dir(path)
    verify_generation(resolved, signing_key)
    return resolved


def run_module(module, args, workdir, prefix=(), counted_as='bad inputs tried: module arguments'):
    """(process, result) of one of the collection's modules run as Ansible runs it on a host: a Python process
    reading ``{"ANSIBLE_MODULE_ARGS": args}`` from a file, here in ``workdir``; ``prefix`` runs it elsewhere
    (``ip netns exec NS``, ``PrivateHost.enter()``)."""
    import json
    import subprocess
    import sys
    path = os.path.join(str(workdir), 'args.json')
    with open(path, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
    # The collection first; what the runner put on the path (ansible-test finds ansible there) after it.
    python_path = os.pathsep.join(filter(None, [COLLECTIONS, os.environ.get('PYTHONPATH')]))
    command = list(prefix) + [sys.executable, '-m', 'ansible_collections.fleetwall.blocklist.plugins.modules.' + module,
                              path]
    proc = subprocess.run(command, env=dict(os.environ, PYTHONPATH=python_path), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    if counted_as:
        tally(counted_as)
    assert proc.stdout.strip(), 'the module printed no result: %s' % proc.stderr[-2000:]
    return proc, json.loads(proc.stdout)


# Documentation (a DOCUMENTATION block, a doc fragment, a role's argument spec) against the argument spec it documents
# (tests/unit/plugins/doc_fragments/test_feed_fragment.py, tests/unit/roles/shadow_copy). A description is the
# documentation's own; these they must agree on.
SPEC_KEYS = ('type', 'default', 'choices', 'elements', 'required')


def spec_disagreements(documented, defined):
    """Every way the documented options differ from the defined ones, as lines a failure can show. A key left out
    means what Ansible takes it to mean (type str, default None, not required)."""
    def as_compared(option):
        seen = dict(type='str', default=None, choices=None, elements=None, required=False)
        seen.update((key, option[key]) for key in SPEC_KEYS if key in option)
        return seen

    found = ['%s: documented but not defined' % name for name in sorted(set(documented) - set(defined))]
    found += ['%s: defined but not documented' % name for name in sorted(set(defined) - set(documented))]
    for name in sorted(set(documented) & set(defined)):
        said, meant = as_compared(documented[name]), as_compared(defined[name])
        found += ['%s: %s is %r in the documentation, %r in the definition' % (name, key, said[key], meant[key])
                  for key in SPEC_KEYS if said[key] != meant[key]]
    return found


@contextlib.contextmanager
def tmpfs(path, size):
    """A tmpfs of ``size`` (``64k``, ``1m``) mounted on the new directory ``path`` for the block: a disk that fills,
    with the kernel's own ENOSPC. Grow it with ``mount -o remount,size=...``."""
    os.mkdir(str(path))
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%s,mode=0755' % size, 'fwtest-full', str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(['umount', str(path)], check=False)
