"""Paths and oracles the tests share, importable under plain pytest and under ansible-test units
as ansible_collections.fleetwall.blocklist.tests.helpers (tests/conftest.py sets up the path)."""
import collections
import os

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
