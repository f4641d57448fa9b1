"""Faults injected into the engine on the real kernel (private network namespaces).

- The apply process and its children are killed (SIGKILL to the process group) at random points of
  large updates, many times over, while a monitor watches the set: every entry of both generations is
  present the whole time, nothing outside the two ever appears, the set is never empty, and the next
  run converges. nftables applies in one transaction, so there the set is always exactly one
  generation; ipset's incremental batch is not a transaction (docs/faults.md). XDP (an LPM trie in a
  private bpffs) switches a full load in with one map update, so a reader outside the run finds one
  generation whole at every look; its edits go into the live trie, adds before deletes.
- Two runs on one set at once: the lock serialises them, or the second reports who holds it.
- The disk is full when the state is written: reported, and the live set stays whole.
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

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ipset import IpsetAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nft import NftAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_xdp import XdpAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import bpf, xdp
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import (
    Entries, StateStore, SyncError, SyncPolicy, sync_set,
)
from ansible_collections.fleetwall.blocklist.tests.helpers import (
    COLLECTIONS, child_env, generation, kill_while_watched, next_generation, set_problem, tally, temporary_files,
    tmpfs)

# Nothing of ansible-core is under test here (the kernel, the tools, our own code on the standard library):
# the suite's second pass, with another ansible-core, leaves this file out (tests/conftest.py, scripts/test.sh).
CORE_INDEPENDENT = True

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='needs root for a network namespace')

KILLS = 12
SIZE = 40000
# The child's full_reload_fraction: a change of more than this share of the entries replaces the set whole.
FRACTION = 0.2

# The child: one engine run against the namespace's set, as the module would make it.
CHILD = r'''
import sys
sys.path.insert(0, %(collections)r)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ipset import IpsetAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nft import NftAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_xdp import XdpAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import (
    Entries, StateStore, SyncPolicy, sync_set)
import subprocess
def run(args, data=None, check_rc=False):
    proc = subprocess.run(['ip', 'netns', 'exec', %(ns)r] + list(args), input=data, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr
if %(backend)r == 'ipset':
    adapter = IpsetAdapter(run, 'ipset', 'bl4')
elif %(backend)r == 'xdp':
    adapter = XdpAdapter('bl4', 'ipv4_addr', %(pins)r, lock_dir=%(state)r)
else:
    adapter = NftAdapter(run, 'nft', 'fleetwall', 'bl4', interval=False)
store = StateStore(%(state)r, %(backend)r, 'bl4')
store.lock(%(lock_timeout)s)
entries = Entries.read(%(entries)r)
print('locked', flush=True)
sync_set(adapter, store, entries, SyncPolicy(full_reload_fraction=%(fraction)s))
store.unlock()
print('done', flush=True)
'''


def adapter_for(run, backend, tmp_path=None):
    if backend == 'ipset':
        return IpsetAdapter(run, 'ipset', 'bl4')
    if backend == 'xdp':
        # No interfaces: the adapter only pins and fills (attaching is XdpRules', which sync_set does not use).
        return XdpAdapter('bl4', 'ipv4_addr', pin_dir(tmp_path), lock_dir=str(tmp_path / 'state'))
    return NftAdapter(run, 'nft', 'fleetwall', 'bl4', interval=False)


def pin_dir(tmp_path):
    """Where the XDP case pins: under the private bpffs of the ``bpffs`` fixture."""
    return str(tmp_path / 'bpffs' / 'fleetwall')


def read_trie(pins):
    """The entries of the IPv4 trie the slot names, through pins opened here as another reader would open them;
    None when nothing is pinned (BpfError when the pins are not whole)."""
    maps = xdp.XdpMaps(pins)
    if not maps.open():
        return None
    try:
        return maps.entries(4)
    finally:
        maps.close(maps.fds.values())


def live_entries(run, backend, tmp_path):
    """What the set holds now."""
    if backend == 'xdp':
        return read_trie(pin_dir(tmp_path))
    return adapter_for(run, backend, tmp_path).read_entries()


@pytest.fixture
def bpffs(tmp_path):
    """A private bpffs for the XDP case's pins (test_backend_xdp.py): nothing shared with the host's."""
    mount = tmp_path / 'bpffs'
    mount.mkdir()
    subprocess.run(['mount', '-t', 'bpf', 'bpf', str(mount)], check=True, timeout=30)
    yield mount
    subprocess.run(['umount', str(mount)], check=False, timeout=30)


def engine(run, tmp_path, backend, entries, **kwargs):
    """One run as the module makes it: under the set's lock, which also clears what killed runs left."""
    path = tmp_path / 'entries.txt'
    path.write_text('\n'.join(entries) + '\n')
    entries = Entries.read(str(path))
    store = StateStore(str(tmp_path / 'state'), backend, 'bl4')
    store.lock(60)
    try:
        return sync_set(adapter_for(run, backend, tmp_path), store, entries, SyncPolicy(**kwargs))
    finally:
        store.unlock()


def child(netns, tmp_path, backend, entries, fraction=FRACTION, lock_timeout=0):
    path = tmp_path / ('child-%d.txt' % random.getrandbits(32))
    path.write_text('\n'.join(entries) + '\n')
    code = CHILD % {'collections': COLLECTIONS, 'ns': netns.ns, 'backend': backend, 'state': str(tmp_path / 'state'),
                    'entries': str(path), 'fraction': fraction, 'lock_timeout': lock_timeout,
                    'pins': pin_dir(tmp_path)}
    return subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=child_env(tmp_path / 'tmpdir'))


class Monitor(threading.Thread):
    """Looks at the set over and over while the faults happen, and notes what breaks an invariant.

    ipset: the whole listing (a dump holds the set, so it is a true picture). nftables: a listing of a
    hash set that a transaction is resizing is not a snapshot (the kernel's table walk may skip
    elements), so the monitor asks per element instead: a sample of the entries both generations share
    is all there, and no address outside both is. Whether the set is exactly one generation is checked
    when nothing runs any more, right after the kill.

    XDP: the pins opened anew at every look, as another reader would, and the trie the slot names listed
    whole. A trie is listed key by key, so a listing of a trie being edited in place (``switched`` false:
    an incremental run, adds before deletes) is judged as ipset's is: every entry both generations share
    is there, nothing of neither is. A full load fills a new trie and switches it in with one map update:
    a look then finds exactly one generation, never a half-filled trie (``switched`` true).
    """

    def __init__(self, run, backend, old, new, tmp_path=None, switched=False):
        super().__init__(daemon=True)
        self.run_in_ns, self.backend = run, backend
        self.adapter = adapter_for(run, backend, tmp_path)
        self.old, self.new, self.switched = old, new, switched
        self.pins = pin_dir(tmp_path) if backend == 'xdp' else None
        rng = random.Random(len(old) ^ len(new))
        self.both = sorted(rng.sample(sorted(old & new), min(50, len(old & new))))
        self.outside = ['11.%d.%d.%d' % (rng.randrange(256), rng.randrange(256), rng.randrange(256))
                        for _index in range(2)]
        self.problems = []
        self.samples = 0
        self.stop = threading.Event()

    def _present(self, elements):
        rc, _out, err = self.run_in_ns(['nft', 'get', 'element', 'inet', 'fleetwall', 'bl4',
                                        '{ %s }' % ', '.join(elements)])
        # What nft said, for the report: a failed lookup is not always a missing element.
        self.last_error = err.strip()[:300]
        return rc == 0

    def _trie(self):
        """The live trie's entries as a reader outside the run finds them; None when the pins are not whole."""
        self.last_error = 'nothing pinned'
        try:
            return read_trie(self.pins)
        except bpf.BpfError as exc:
            self.last_error = str(exc)[:300]
            return None

    def run(self):
        while not self.stop.is_set():
            self.samples += 1
            if self.backend == 'xdp':
                sample = self._trie()
                problem = set_problem(sample, self.old, self.new)
                if problem is None and self.switched and sample not in (self.old, self.new):
                    problem = 'a mix of the two generations: %d of the old missing, %d of the new' % (
                        len(self.old - sample), len(self.new - sample))
                if problem:
                    self.problems.append('the trie: %s%s' % (problem, ' (%s)' % self.last_error if sample is None
                                                             else ''))
            elif self.backend == 'ipset':
                try:
                    sample = self.adapter.read_entries()
                except SyncError:
                    self.problems.append('the set disappeared')
                    continue
                if not sample:
                    self.problems.append('the set was empty')
                if not set(self.both) <= sample:
                    self.problems.append('%d shared entries missing' % len(set(self.both) - sample))
                if sample & set(self.outside):
                    self.problems.append('an address of neither generation appeared')
            else:
                if self.both and not self._present(self.both):
                    self.problems.append('shared entries missing (nft: %s)' % self.last_error)
                if any(self._present([address]) for address in self.outside):
                    self.problems.append('an address of neither generation appeared')


def check_after_kill(state, old, new, backend, switched=False):
    assert state, 'the set was empty'
    assert old & new <= state, 'entries of both generations went missing: %d' % len(old & new - state)
    assert state <= old | new, 'entries of neither generation appeared: %d' % len(state - old - new)
    if backend == 'nft' or (backend == 'xdp' and switched):
        # One transaction (nft), one map update (an XDP full load): exactly one generation or the other.
        assert state in (old, new), (len(state - old), len(state - new))
    elif backend == 'xdp':
        # An edit of the live trie, adds before deletes: the old generation still whole, or the new one already.
        assert old <= state or new <= state, (len(old - state), len(new - state))


@pytest.mark.parametrize('backend', ['ipset', 'nft', pytest.param(
    'xdp', marks=pytest.mark.skipif(os.geteuid() != 0, reason='needs root for bpf() and a bpffs mount'))])
def test_sigkill_mid_apply_never_loses_protection(netns, tmp_path, backend, request):
    if backend == 'nft':
        assert netns(['nft', 'add', 'table', 'inet', 'fleetwall'])[0] == 0
    if backend == 'xdp':
        request.getfixturevalue('bpffs')
    applied = generation(0, SIZE)
    engine(netns, tmp_path, backend, applied)
    # How long one uninterrupted rebuild takes here: the kills land inside that window.
    started = time.monotonic()
    engine(netns, tmp_path, backend, generation(99, SIZE))
    engine(netns, tmp_path, backend, applied)
    window = (time.monotonic() - started) / 2 + 0.2
    rng = random.Random(7)
    killed = samples = left = 0
    for attempt in range(KILLS):
        new = next_generation(applied, attempt, SIZE)
        old = set(applied)
        # What the engine decides (sync._reload_decision): a rebuild replaces the set whole, a patch edits it.
        switched = len(old ^ set(new)) > FRACTION * len(new)
        monitor = Monitor(netns, backend, old, set(new), tmp_path, switched)
        killed += kill_while_watched(functools.partial(child, netns, tmp_path, backend, new), monitor, rng, window,
                                     settle=0.2)
        samples += monitor.samples
        after = live_entries(netns, backend, tmp_path)
        after_ok = bool(after) and old & set(new) <= after <= old | set(new)
        tally('protection checks', monitor.samples + 1)
        tally('lost protection', len(monitor.problems) + (0 if after_ok else 1))
        assert monitor.samples and not monitor.problems, (attempt, monitor.problems[:5])
        check_after_kill(after, old, set(new), backend, switched)
        if backend == 'xdp':
            # Nothing half-pinned or left beside the pins: the killed run's new trie went with its fds.
            assert sorted(os.listdir(pin_dir(tmp_path))) == sorted(xdp.PINNED)
        # Batch files go into the state directory, never the temporary directory, where the next run
        # (under the set's lock) removes what the kill left.
        assert not temporary_files(tmp_path / 'tmpdir')
        left += len(temporary_files(tmp_path / 'state'))
        # The next run converges, whatever the kill left (a half-filled temporary set, a stale record).
        engine(netns, tmp_path, backend, new)
        assert live_entries(netns, backend, tmp_path) == set(new), 'no convergence after attempt %d' % attempt
        assert not temporary_files(tmp_path / 'state'), 'the next run left the killed run\'s files'
        applied = new
    tally('faults injected: SIGKILL mid-apply (%s)' % backend, killed)
    # Most attempts were killed mid-way, not after they had finished.
    assert killed >= KILLS // 2, (killed, window)
    print('%s: %d kills in %d runs, %d looks at the set, %d temporary files left by kills and removed by the next run'
          % (backend, killed, KILLS, samples, left))


def test_two_runs_at_once_are_serialised_or_told_who_holds_the_lock(netns, tmp_path):
    engine(netns, tmp_path, 'ipset', ['198.51.100.1'])
    store = StateStore(str(tmp_path / 'state'), 'ipset', 'bl4')
    store.lock(5)
    tally('faults injected: concurrent run', 2)
    try:
        # A second run with no patience reports the holder, and changes nothing.
        proc = child(netns, tmp_path, 'ipset', ['198.51.100.2'], lock_timeout=1)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode != 0 and re.search(r'another run \(pid \d+\) holds \S*bl4.lock', err), err[-500:]
        assert adapter_for(netns, 'ipset').read_entries() == {'198.51.100.1'}
        # One that waits goes on when the first is done.
        proc = child(netns, tmp_path, 'ipset', ['198.51.100.3'], lock_timeout=60)
        time.sleep(1.0)
        assert proc.poll() is None and adapter_for(netns, 'ipset').read_entries() == {'198.51.100.1'}
    finally:
        store.unlock()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.split() == ['locked', 'done'], err
    assert adapter_for(netns, 'ipset').read_entries() == {'198.51.100.3'}


@pytest.mark.parametrize('backend', ['ipset', 'nft'])
def test_two_runs_started_together_leave_one_generation_whole(netns, tmp_path, backend):
    """Two runs of the same module on the same set at the same moment (two cron jobs, a cron job and an
    operator): both succeed one after the other, and the set ends as exactly one of the two generations,
    with a record that vouches for it."""
    if backend == 'nft':
        assert netns(['nft', 'add', 'table', 'inet', 'fleetwall'])[0] == 0
    engine(netns, tmp_path, backend, generation(0, 5000))
    first, second = generation(1, 5000), generation(2, 5000)
    tally('faults injected: concurrent run', 2)
    runs = [child(netns, tmp_path, backend, entries, lock_timeout=60) for entries in (first, second)]
    for proc in runs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and out.split() == ['locked', 'done'], err
    live = adapter_for(netns, backend).read_entries()
    assert live in (set(first), set(second))
    # The record names what is live: the next run of the same generation trusts it and changes nothing.
    r = engine(netns, tmp_path, backend, sorted(live))
    assert (r['changed'], r['verified']) == (False, False)
    assert not temporary_files(tmp_path / 'state', tmp_path / 'tmpdir')


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs for the state directory: real ENOSPC from the kernel."""
    with tmpfs(tmp_path / 'state', '64k') as mount:
        yield mount


def test_disk_full_in_the_state_directory_keeps_the_live_set(netns, tmp_path, tiny_disk):
    """The batch file goes into the state directory (where the next run removes a killed run's), so a full
    state directory stops the run before the kernel is touched: the old generation stays whole."""
    small = ['198.51.100.%d' % i for i in range(1, 50)]
    engine(netns, tmp_path, 'ipset', small)
    big = generation(1, 20000)
    tally('faults injected: disk full')
    with pytest.raises(SyncError, match='No space left on device') as failure:
        engine(netns, tmp_path, 'ipset', big)
    assert str(tiny_disk) in str(failure.value)     # names the file
    assert adapter_for(netns, 'ipset').read_entries() == set(small)
    assert not temporary_files(tiny_disk)
    subprocess.run(['mount', '-o', 'remount,size=16m', str(tiny_disk)], check=True)
    r = engine(netns, tmp_path, 'ipset', big)
    assert (r['changed'], r['total']) == (True, len(big))
    assert adapter_for(netns, 'ipset').read_entries() == set(big)
    assert engine(netns, tmp_path, 'ipset', big)['changed'] is False


def test_disk_full_when_writing_the_record_keeps_the_live_set(netns, tmp_path, tiny_disk):
    """The disk fills up (another writer) after the kernel took the new generation and before the record is
    written: the module fails naming the file, the live set holds the new generation whole, and the next
    run compares the live set rather than trusting a record of the old one."""
    subprocess.run(['mount', '-o', 'remount,size=2m', str(tiny_disk)], check=True)   # room for the batch
    small = ['198.51.100.%d' % i for i in range(1, 50)]
    engine(netns, tmp_path, 'ipset', small)
    big = generation(1, 20000)
    filler = tiny_disk / 'filler'

    class FillsTheDiskAfterApplying(IpsetAdapter):
        def apply_full(self, *args, **kwargs):
            applied = super().apply_full(*args, **kwargs)
            with open(str(filler), 'wb', buffering=0) as handle:
                try:
                    for _chunk in range(64):
                        handle.write(b'x' * (64 << 10))
                except OSError:
                    pass        # full: what we wanted
            return applied

    tally('faults injected: disk full')
    store = StateStore(str(tiny_disk), 'ipset', 'bl4')
    with pytest.raises(OSError) as failure:
        sync_set(FillsTheDiskAfterApplying(netns, 'ipset', 'bl4'), store, Entries.read(entries=big))
    assert failure.value.errno == 28 and str(tiny_disk) in str(failure.value.filename)
    assert adapter_for(netns, 'ipset').read_entries() == set(big)
    assert not (tiny_disk / 'ipset-bl4.json').exists()
    filler.unlink()
    r = engine(netns, tmp_path, 'ipset', big)
    assert (r['changed'], r['verified'], r['total']) == (False, True, len(big))
    assert not temporary_files(tiny_disk)
