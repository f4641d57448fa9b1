"""The firewalld apply killed (SIGKILL to its process group) at random points, against a real firewalld on its own
system D-Bus, in a private network and mount namespace (its own /run, and overlays on /etc, /var/lib and /var/log, as
lab/fleet.py makes a host).

A change to an existing ipset goes to the permanent ipset first (``firewall-cmd --permanent
--add-entries-from-file``, then ``--remove-entries-from-file``: firewalld's XML only), then to the runtime ipset one
entry at a time (``--add-entry``, then ``--remove-entry``: firewalld's addEntry and removeEntry, each one element of
the kernel set). Not a transaction, so a kill may leave part of it done. What must hold: the kernel set that
firewalld's rules match holds every entry both generations share the whole time and nothing of neither, so it is never
empty (firewalld's bulk runtime path, setEntries, flushed it and refilled it in transactions of 1,000 elements on every
change); the permanent ipset, which a reload or reboot makes live, holds the same after any kill; the next run makes
runtime, permanent and kernel the new generation, also when only the permanent ipset is wrong. No temporary file of a
killed run may outlive the next run.

The child that is killed is the module itself (firewalld_ipset_sync, run as Ansible runs it on a host: a Python
process inside the host's namespaces), so its run is exactly the module's. The campaign of kills runs once per module
(the ``campaign`` fixture); each guarantee is its own test, so a broken one does not hide the others.
"""
import collections
import json
import os
import random
import subprocess
import sys
import time

import pytest

from ansible_collections.fleetwall.blocklist.tests.helpers import (
    COLLECTIONS, KillCampaign, PrivateHost, Watcher, child_result, fleetwall_in_tmp, generation, kill_while_watched,
    SEARCH_PATH, lab_tools, leftover_files, set_problem, tally, wait_until)

# Nothing of ansible-core is under test here (the kernel, the tools, our own code on the standard library):
# the suite's second pass, with another ansible-core, leaves this file out (tests/conftest.py, scripts/test.sh).
CORE_INDEPENDENT = True

TOOLS, pytestmark = lab_tools('firewalld', 'firewall-cmd', 'dbus-daemon', 'nsenter', 'unshare', 'nft')

KILLS = 6
# More than the 1,000 elements of one setEntries transaction, so that a flush and refill would show as a partial set.
SIZE = 1200
# Entries replaced per attempt. Each runtime entry is one D-Bus call (about 10 ms at this size, more as the set grows:
# docs/performance.md), so a change of this size keeps one run near 3 s here.
CHANGE = 60
NAME = 'fleetwall_v4'
MODULE = 'ansible_collections.fleetwall.blocklist.plugins.modules.firewalld_ipset_sync'
# What a state directory may hold once a run has finished: the record, its entries and the lock.
KEPT_IN_STATE_DIR = ('firewalld-%s.json', 'firewalld-%s.entries', 'firewalld-%s.lock')
# Where a kill left the change: judged from the runtime and permanent ipsets right after it.
PHASES = ('before the change', 'in the permanent part', 'in the runtime part', 'after the change')


class FirewalldHost(PrivateHost):
    """A private host running dbus-daemon and firewalld; ``run`` runs a command inside it."""

    def __init__(self, root):
        super().__init__(root, 'fwfwd-')
        self.firewalld = None
        self.entries_dir = root / 'entries'
        self.entries_dir.mkdir()
        # The child's own TMPDIR, so that a temporary file it leaves is found here and nowhere else.
        self.tmpdir = root / 'child-tmp'
        self.tmpdir.mkdir()
        self.state_dir = root / 'state'
        self.tmp_before = fleetwall_in_tmp()

    def start(self):
        super().start(TOOLS['unshare'])
        rc, _out, err = self.run([TOOLS['dbus-daemon'], '--system', '--fork'])
        assert rc == 0, err
        with open(str(self.root / 'firewalld.log'), 'w') as log:
            self.firewalld = subprocess.Popen(self.enter() + [TOOLS['firewalld'], '--nofork', '--nopid'],
                                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: self.run([TOOLS['firewall-cmd'], '--state'])[0] == 0, 30,
                   'firewalld did not start: %s' % (self.root / 'firewalld.log'))

    def enter(self):
        return super().enter(TOOLS['nsenter'])

    def start_module(self, entries, name=NAME, state_dir=None, check_mode=False, rules=False):
        """The module as Ansible runs it on the host (a Python process in the host's namespaces); its Popen, a
        session leader, so that its process group is the run with every firewall-cmd it started.

        With ``rules``, the ipset is bound as a source of the drop zone, as the role does. The binding is made once:
        after the set's change the rules step only asks firewalld whether each binding is there (six firewall-cmd
        calls), so the runs that change the set leave it out and the kills land in the change itself."""
        path = self.entries_dir / ('entries-%d.txt' % random.getrandbits(32))
        path.write_text('\n'.join(entries) + '\n')
        args = self.entries_dir / ('args-%d.json' % random.getrandbits(32))
        options = {'name': name, 'entries_file': str(path), 'state_dir': str(state_dir or self.state_dir),
                   '_ansible_check_mode': check_mode}
        if rules:
            options['rules'] = [{'mode': 'zone_source', 'target': 'drop'}]
        args.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': options}))
        # The collection first; what the runner put on the path (ansible-test finds ansible there) after it.
        python_path = os.pathsep.join(filter(None, [COLLECTIONS, os.environ.get('PYTHONPATH')]))
        environment = ['PATH=' + SEARCH_PATH, 'PYTHONPATH=' + python_path, 'TMPDIR=%s' % self.tmpdir,
                       'LANG=C.UTF-8']
        return subprocess.Popen(self.enter() + ['env', '-i'] + environment + [sys.executable, '-m', MODULE, str(args)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def apply(self, entries, **kwargs):
        """One run to its end; the module's result."""
        return child_result(self.start_module(entries, **kwargs))

    def entries(self, permanent=False, name=NAME):
        """The ipset's entries as firewalld holds them (runtime or permanent), or None if it cannot say."""
        rc, out, _err = self.run([TOOLS['firewall-cmd']] + (['--permanent'] if permanent else [])
                                 + ['--ipset=' + name, '--get-entries'])
        return set(out.split()) if rc == 0 else None

    def firewall_cmd(self, args):
        rc, out, err = self.run([TOOLS['firewall-cmd']] + list(args))
        assert rc == 0, err
        return out

    def kernel_listing(self, name=NAME):
        """(entries, error) of the nftables set firewalld made for the ipset, the one its rules match."""
        rc, out, err = self.run([TOOLS['nft'], '-j', 'list', 'set', 'inet', 'firewalld', name])
        if rc != 0:
            return None, 'nft: ' + err.strip()[:200]
        for item in json.loads(out)['nftables']:
            if 'set' in item:
                return set(element_text(element) for element in item['set'].get('elem', [])), None
        return None, 'nft listed no set'

    def kernel_entries(self, name=NAME):
        return self.kernel_listing(name)[0]

    def kernel_lookup(self, elements):
        """(whether the kernel's set holds every one of ``elements``, what nft said): a lookup, which a running
        transaction cannot make look partial (a listing of a set being changed may skip elements). nft reads the
        set to look up in an interval set, and the kernel interrupts that read when a change commits meanwhile
        ("Interrupted system call"): that says nothing of the elements, so the lookup is made again."""
        for _attempt in range(20):
            rc, _out, err = self.run([TOOLS['nft'], 'get', 'element', 'inet', 'firewalld', NAME,
                                      '{ %s }' % ', '.join(elements)])
            if 'Interrupted system call' not in err:
                break
        return rc == 0, err.strip().splitlines()[0][:120] if err.strip() else ''

    def set_permanent(self, wanted, name=NAME, permanent=None):
        """Make the permanent ipset hold ``wanted`` by hand (added and removed from files, as the module does);
        ``permanent``: what it holds, if just listed."""
        permanent = self.entries(permanent=True, name=name) if permanent is None else permanent
        for verb, entries in (('add', wanted - permanent), ('remove', permanent - wanted)):
            if entries:
                path = self.entries_dir / ('fix-%s.txt' % verb)
                path.write_text('\n'.join(sorted(entries)) + '\n')
                rc, _out, err = self.run([TOOLS['firewall-cmd'], '--permanent', '--ipset=' + name,
                                          '--%s-entries-from-file=%s' % (verb, path)])
                assert rc == 0, err
        assert self.entries(permanent=True, name=name) == wanted

    def leftovers(self, state_dir=None, name=NAME):
        """Temporary files a run left: in the state directory (anything but the record, its entries and the lock),
        in the child's TMPDIR, and ``fleetwall-*`` in /tmp that was not there before these tests."""
        kept = [pattern % name for pattern in KEPT_IN_STATE_DIR]
        return leftover_files(state_dir or self.state_dir, kept, self.tmpdir, self.tmp_before)


def element_text(element):
    """nft's JSON form of an element as the text firewall-cmd uses."""
    if isinstance(element, dict) and 'prefix' in element:
        return '%s/%d' % (element['prefix']['addr'], element['prefix']['len'])
    if isinstance(element, dict) and 'range' in element:
        return '%s-%s' % tuple(element['range'])
    return str(element)


def next_change(applied, attempt):
    """``applied`` with CHANGE entries replaced by new ones, a different CHANGE each attempt."""
    start = (attempt * CHANGE) % (SIZE - CHANGE)
    return applied[:start] + applied[start + CHANGE:] + generation(100 + attempt, CHANGE)


def watch(host, old, new, gone):
    """A Watcher of a change from ``old`` to ``new`` (sets), in two places.

    The kernel's set that firewalld's rules match, per element: a sample of the entries both generations share must
    all be there (so the set is not empty either), and no entry of an earlier generation (``gone``) or an address
    never listed may be. firewalld's runtime view (``firewall-cmd --get-entries``, over D-Bus: what it believes and
    reports), whole each time, less often: each look is a Python start, and the machine has two cores.
    """
    rng = random.Random(len(old ^ new))
    shared_sample = sorted(rng.sample(sorted(old & new), min(50, len(old & new))))
    never = ['11.%d.%d.%d' % (rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _index in range(2)]
    gone = gone - old - new
    outside = sorted(rng.sample(sorted(gone), min(8, len(gone)))) + never

    def kernel():
        held, said = host.kernel_lookup(shared_sample)
        if not held:
            # The listing only says how much was there, for the message; the lookup is the evidence.
            listed, error = host.kernel_listing()
            return 'shared entries missing (nft: %s; a listing right after: %s)' % (
                said, error or set_problem(listed, old, new) or 'whole again')
        present = [address for address in outside if host.kernel_lookup([address])[0]]
        if present:
            return '%s of neither generation present' % ', '.join(present)
        return None
    return Watcher({'kernel': (kernel, 0.02), 'runtime': (lambda: set_problem(host.entries(), old, new), 0.3)})


def phase(runtime, permanent, old, new):
    """Where the kill left the change (PHASES), from the runtime and permanent ipsets."""
    if runtime == new:
        return PHASES[3]
    if runtime != old:
        return PHASES[2]
    return PHASES[1] if permanent != old else PHASES[0]


class Campaign(KillCampaign):
    """What the kills did and what broke, and where each kill left the change (PHASES)."""

    def __init__(self):
        super().__init__()
        self.phases = collections.Counter()
        self.seconds = None


class Stratified(object):
    """The kill moments, as kill_while_watched draws them (``uniform``): the i-th of ``count`` falls in the i-th
    ``count``-th of the window past its first ``skip`` share, at random within it. The first third of a run is the
    module's start and its look at the ipset, where a kill changes nothing; the rest is spread evenly over the
    permanent part, the runtime part and the end."""

    def __init__(self, rng, count, skip=0.3):
        self.rng, self.count, self.skip, self.drawn = rng, count, skip, 0

    def uniform(self, low, high):
        share = (high - low) * (1 - self.skip) / self.count
        moment = low + (high - low) * self.skip + share * (self.drawn % self.count + self.rng.random())
        self.drawn += 1
        return moment


@pytest.fixture(scope='module')
def firewalld_host(tmp_path_factory):
    host = FirewalldHost(tmp_path_factory.mktemp('fwd-kill'))
    try:
        host.start()
        yield host
    finally:
        host.close()


def one_attempt(host, campaign, moments, attempt, applied, gone):
    """Kill a run from ``applied`` to the next generation, look at what it left, run again; the new generation."""
    new = next_change(applied, attempt)
    old, wanted = set(applied), set(new)
    started = []

    def start():
        started.append(host.start_module(new))
        return started[0]
    watcher = watch(host, old, wanted, gone)
    campaign.killed += kill_while_watched(start, watcher, moments, campaign.window, settle=0.3)
    started[0].communicate(timeout=60)
    campaign.take(watcher, attempt, 'while killed')
    # Once the kill is over (firewalld finishes a call it was given), the same guarantees, on the whole set.
    runtime, permanent = host.entries(), host.entries(permanent=True)
    campaign.phases[phase(runtime, permanent, old, wanted)] += 1
    campaign.note('runtime after the kill', attempt, set_problem(runtime, old, wanted))
    campaign.note('kernel after the kill', attempt, set_problem(host.kernel_entries(), old, wanted))
    campaign.note('permanent after the kill', attempt, set_problem(permanent, old, wanted))
    campaign.left_by_kills.append(host.leftovers())
    # The next run converges, wherever the kill fell, under the same watch: it too goes from the old to the new.
    watcher = watch(host, old, wanted, gone)
    watcher.start()
    try:
        host.apply(new)
    finally:
        watcher.stop.set()
        watcher.join(timeout=60)
    campaign.take(watcher, attempt, 'during the next run')
    permanent = host.entries(permanent=True)
    for what, seen in (('runtime', host.entries()), ('permanent', permanent), ('kernel', host.kernel_entries())):
        if seen != wanted:
            campaign.note('%s after the next run' % what, attempt, '%d of the new generation missing, %d other' % (
                len(wanted - (seen or set())), len((seen or set()) - wanted)))
    campaign.note('leftovers after the next run', attempt, ', '.join(host.leftovers()))
    # The next attempt starts from a permanent ipset that is right, so that each attempt shows what its own kill did.
    host.set_permanent(wanted, permanent=permanent)
    return new


@pytest.fixture(scope='module')
def campaign(firewalld_host):
    host = firewalld_host
    result = Campaign()
    began = time.monotonic()
    applied = generation(0, SIZE)
    assert host.apply(applied, rules=True)['changed']
    assert host.entries() == set(applied) == host.entries(permanent=True) == host.kernel_entries()
    # How long one uninterrupted change takes here: the kills land inside that window.
    started = time.monotonic()
    applied, earlier = next_change(applied, KILLS), applied
    host.apply(applied)
    result.window = time.monotonic() - started
    moments = Stratified(random.Random(13), KILLS)
    gone = set(earlier) - set(applied)
    for attempt in range(KILLS):
        new = one_attempt(host, result, moments, attempt, applied, gone)
        gone |= set(applied) - set(new)
        applied = new
    result.seconds = time.monotonic() - began
    looks = sum(result.looks.values()) + 3 * KILLS
    lost = sum(len(problems) for what, problems in result.problems.items() if 'after the next run' not in what)
    tally('faults injected: SIGKILL mid-apply (firewalld)', result.killed)
    tally('protection checks', looks)
    tally('lost protection', lost)
    print('\nfirewalld: %d kills in %d runs (window %.1f s; %s), %d looks at the kernel set, %d at firewalld\'s '
          'runtime ipset, in %.0f s; temporary files the kills left: %s' % (
              result.killed, KILLS, result.window, ', '.join('%s %d' % (name, result.phases[name]) for name in PHASES),
              result.looks['kernel'], result.looks['runtime'], result.seconds, result.left_by_kills))
    for what in sorted(result.problems):
        print('firewalld: %s: %d, e.g. %s' % (what, len(result.problems[what]), result.problems[what][:2]))
    return result


def test_most_runs_were_killed_mid_change(campaign):
    """Killed, and at least once inside the runtime part, where the set the rules match changes."""
    assert campaign.killed >= KILLS // 2 and campaign.phases[PHASES[2]] >= 1, (
        campaign.killed, campaign.phases, campaign.window)


def test_kernel_set_always_holds_the_shared_entries_and_nothing_else(campaign):
    """The set firewalld's rules match: what protection is made of. Never empty, never partial, nothing foreign:
    while a run is killed, after the kill, and while the next run finishes the change."""
    assert campaign.looks['kernel'] >= 10 * KILLS
    broken = campaign.broken('kernel while killed', 'kernel after the kill', 'kernel during the next run')
    assert not broken, broken[:5]


def test_firewalld_runtime_ipset_always_holds_the_shared_entries_and_nothing_else(campaign):
    assert campaign.looks['runtime'] >= KILLS
    broken = campaign.broken('runtime while killed', 'runtime after the kill', 'runtime during the next run')
    assert not broken, broken[:5]


def test_permanent_ipset_after_a_kill_holds_the_shared_entries_and_nothing_else(campaign):
    """A reload or a reboot makes the permanent ipset the runtime one."""
    broken = campaign.broken('permanent after the kill')
    assert not broken, broken[:5]


def test_next_run_makes_runtime_permanent_and_kernel_the_new_generation(campaign):
    broken = campaign.broken('runtime after the next run', 'permanent after the next run',
                             'kernel after the next run')
    assert not broken, broken[:5]


def test_no_temporary_file_of_a_killed_run_outlives_the_next_run(campaign):
    broken = campaign.broken('leftovers after the next run')
    assert not broken, broken[:5]


# Ipsets of the tests after the campaign, each with its entries and its own state directory.
SPARE = {'fleetwall_lag': generation(7, 300), 'fleetwall_drift': generation(8, 300),
         'fleetwall_refuse': generation(9, 300), 'fleetwall_overlap': generation(12, 300) + ['10.253.0.5'],
         'fleetwall_reloaded': generation(15, 300)}


@pytest.fixture(scope='module')
def spare(firewalld_host):
    """The SPARE ipsets, made by hand runtime and permanent with one reload, as a module's first run makes one but
    without its record: each test below starts from a run that left none (killed, or a record withdrawn)."""
    host = firewalld_host
    for name, entries in SPARE.items():
        host.firewall_cmd(['--permanent', '--new-ipset=' + name, '--type=hash:net'])
        path = host.entries_dir / (name + '.txt')
        path.write_text('\n'.join(entries) + '\n')
        host.firewall_cmd(['--permanent', '--ipset=' + name, '--add-entries-from-file=%s' % path])
    host.firewall_cmd(['--reload'])
    for name, entries in SPARE.items():
        assert host.entries(name=name) == set(entries) == host.entries(permanent=True, name=name)
    return dict((name, host.root / ('state-' + name)) for name in SPARE)


def test_a_run_after_permanent_lagged_behind_runtime_repairs_permanent(firewalld_host, spare):
    """The order the module had, runtime then permanent, killed in between: the run before added the new entries to
    the runtime ipset and died before it added them to the permanent one (it had withdrawn its record first, as every
    apply does). The next run must leave runtime and permanent both the new generation."""
    host, name = firewalld_host, 'fleetwall_lag'
    old = SPARE[name]
    new = next_change(old, 0)
    added = host.root / 'lag-added.txt'
    added.write_text('\n'.join(sorted(set(new) - set(old))) + '\n')
    host.firewall_cmd(['--ipset=' + name, '--add-entries-from-file=%s' % added])
    host.apply(new, name=name, state_dir=spare[name])
    runtime, permanent = host.entries(name=name), host.entries(permanent=True, name=name)
    assert runtime == set(new) == host.kernel_entries(name), (len(set(new) - runtime), len(runtime - set(new)))
    assert permanent == set(new), ('permanent lacks %d entries of the new generation and holds %d others: the run '
                                   'compared only the runtime ipset' % (len(set(new) - permanent),
                                                                        len(permanent - set(new))))
    assert not host.leftovers(spare[name], name)


def test_a_run_that_compares_repairs_permanent_drift_when_runtime_is_right_and_check_mode_only_looks(
        firewalld_host, spare):
    """The runtime ipset already holds the generation, the permanent one does not (a hand edit, or a run killed in
    its permanent part followed by a run of the generation before): nothing changes at runtime, so the engine applies
    nothing. A run that compares (no record, or verify) must still make the permanent ipset right; one in check mode
    must change nothing."""
    host, name = firewalld_host, 'fleetwall_drift'
    entries, state_dir = SPARE[name], spare[name]
    record = state_dir / ('firewalld-%s.json' % name)
    drifted = set(entries[1:] + ['10.250.0.1'])
    host.set_permanent(drifted, name=name)
    for check_mode in (True, False):
        result = host.apply(entries, name=name, state_dir=state_dir, check_mode=check_mode)
        assert (result['added'], result['removed'], result['total']) == (0, 0, len(entries)), result
        permanent = host.entries(permanent=True, name=name)
        assert permanent == (drifted if check_mode else set(entries)), (check_mode, len(permanent ^ set(entries)))
        assert host.entries(name=name) == set(entries) == host.kernel_entries(name)
        assert record.exists() is not check_mode
    # The record vouches for the permanent ipset as it is now. A hand edit of it alone changes its file, so the
    # record no longer vouches: the next run compares, and repairs it.
    assert host.apply(entries, name=name, state_dir=state_dir)['changed'] is False
    host.set_permanent(drifted, name=name)
    host.apply(entries, name=name, state_dir=state_dir)
    assert host.entries(permanent=True, name=name) == set(entries)


def test_an_entry_firewalld_refuses_at_runtime_fails_the_run(firewalld_host, spare):
    """firewall-cmd goes on past an entry that fails and exits 0 when another succeeded: the module reads its
    warnings. Here an operator's runtime-only address overlaps a network of the new generation, which firewalld's
    addEntry refuses; the run must fail saying so, not report the generation applied."""
    host, name = firewalld_host, 'fleetwall_refuse'
    entries, state_dir = SPARE[name], spare[name]
    # A run that leaves a record the next one trusts: that one does not list the runtime ipset, so it does not know
    # of the operator's entry, and does not take it out before the network that overlaps it goes in (as it does
    # with the old entries it compared: test_a_change_between_overlapping_generations_applies).
    assert not host.apply(entries, name=name, state_dir=state_dir).get('failed')
    host.firewall_cmd(['--ipset=' + name, '--add-entry=10.251.0.1'])
    proc = host.start_module(entries + ['10.251.0.0/24', '10.252.0.1'], name=name, state_dir=state_dir)
    out, err = proc.communicate(timeout=120)
    result = json.loads(out)
    assert result.get('failed') and 'overlaps' in result['msg'] and '1 of them' in result['msg'], result
    assert '10.252.0.1' in host.entries(name=name)
    assert not (state_dir / ('firewalld-%s.json' % name)).exists()      # no record vouches for it


def test_a_change_between_overlapping_generations_applies(firewalld_host, spare):
    """Aggregation makes a listed host part of a listed network between generations (10.253.0.5, then
    10.253.0.0/24), and back: firewalld refused the new entry (INVALID_ENTRY: overlaps), nothing changed, and every
    later run failed the same way, leaving the host on the old generation."""
    host, name = firewalld_host, 'fleetwall_overlap'
    base, state_dir = SPARE[name], spare[name]
    assert not host.apply(base, name=name, state_dir=state_dir).get('failed')
    for wanted in (base[:-1] + ['10.253.0.0/24'], base, base[1:-1] + ['10.253.0.0/24']):
        result = host.apply(wanted, name=name, state_dir=state_dir)
        assert result['changed'] and not result.get('failed'), result
        assert host.entries(name=name) == set(wanted) == host.entries(permanent=True, name=name)
        assert host.kernel_entries(name) == set(wanted)


def test_the_first_creation_warns_of_the_runtime_settings_its_reload_dropped(firewalld_host):
    """A new ipset takes one firewalld reload, which drops what the operator added without --permanent: the friend
    of a runtime-only port then got 'No route to host', and nothing said why."""
    host, name = firewalld_host, 'fleetwall_warned'
    host.firewall_cmd(['--zone=public', '--add-port=9090/tcp'])
    # The preview says it before anything is dropped.
    result = host.apply(generation(13, 50), name=name, state_dir=host.root / ('state-' + name), check_mode=True)
    warnings = json.dumps(result.get('warnings'))
    assert 'will drop runtime settings that are not permanent: public ports: 9090/tcp' in warnings, warnings
    assert '9090/tcp' in host.firewall_cmd(['--zone=public', '--list-ports'])
    assert name not in host.firewall_cmd(['--permanent', '--get-ipsets']).split()
    result = host.apply(generation(13, 50), name=name, state_dir=host.root / ('state-' + name))
    warnings = json.dumps(result.get('warnings'))
    assert 'dropped runtime settings that are not permanent: public ports: 9090/tcp' in warnings, warnings
    assert '9090/tcp' not in host.firewall_cmd(['--zone=public', '--list-ports'])
    # A later change needs no reload, and says nothing of the kind.
    result = host.apply(generation(14, 50), name=name, state_dir=host.root / ('state-' + name))
    assert 'runtime settings' not in json.dumps(result.get('warnings')), result


# Put one entry of an ipset's permanent XML in place of another of the same length, keeping the file's size and mtime.
SAME_STAT_SWAP = """
import os, sys
path, old, new = sys.argv[1:]
st = os.stat(path)
with open(path) as handle:
    text = handle.read()
with open(path, 'w') as handle:
    handle.write(text.replace('>%s<' % old, '>%s<' % new))
os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
"""


def test_a_run_after_a_firewalld_reload_compares_and_finds_any_gap(firewalld_host, spare):
    """The record vouched for the runtime ipset by the permanent file's size and mtime alone, which a reload leaves
    as they are. Anything that set that file apart from the record and kept both (a restore that keeps times, a hand
    edit put back with touch -r, a run of the old order killed between its two halves) stayed hidden, and once a
    reload made the file live, every run said changed=false with a listed address let through. firewalld's reload
    makes its kernel table again; the record now notes which, so the run after a reload compares."""
    host, name = firewalld_host, 'fleetwall_reloaded'
    entries, state_dir = SPARE[name], spare[name]
    assert not host.apply(entries, name=name, state_dir=state_dir).get('failed')
    assert host.apply(entries, name=name, state_dir=state_dir)['changed'] is False
    listed, stranger = entries[0], '11.' + entries[0][3:]
    rc, _out, err = host.run([sys.executable, '-c', SAME_STAT_SWAP, '/etc/firewalld/ipsets/%s.xml' % name, listed,
                              stranger])
    assert rc == 0, err
    assert host.apply(entries, name=name, state_dir=state_dir)['changed'] is False     # nothing shows yet
    host.firewall_cmd(['--reload'])
    assert listed not in host.kernel_entries(name) and stranger in host.entries(name=name)
    result = host.apply(entries, name=name, state_dir=state_dir)
    assert result['verified'] and (result['added'], result['removed']) == (1, 1), result
    assert host.entries(name=name) == set(entries) == host.entries(permanent=True, name=name)
    assert host.kernel_entries(name) == set(entries)
    # A reload with nothing apart: the run compares once more, finds nothing, and the one after it trusts its record.
    host.firewall_cmd(['--reload'])
    result = host.apply(entries, name=name, state_dir=state_dir)
    assert result['verified'] and not result['changed'], result
    assert host.apply(entries, name=name, state_dir=state_dir)['verified'] is False


def test_a_first_creation_killed_before_its_reload_leaves_nothing_stale(firewalld_host):
    """A first run makes the permanent ipset, fills it and reloads firewalld, which makes the runtime one. Killed
    before the reload, it leaves a permanent ipset that no runtime one matches; the next run, with another generation,
    must not let the reload make the killed run's entries live."""
    host, name = firewalld_host, 'fleetwall_new'
    killed_runs, wanted = generation(10, 300), generation(11, 300)
    host.firewall_cmd(['--permanent', '--new-ipset=' + name, '--type=hash:net'])
    path = host.entries_dir / (name + '.txt')
    path.write_text('\n'.join(killed_runs) + '\n')
    host.firewall_cmd(['--permanent', '--ipset=' + name, '--add-entries-from-file=%s' % path])
    state_dir = host.root / ('state-' + name)
    assert host.apply(wanted, name=name, state_dir=state_dir)['changed']
    assert host.entries(name=name) == set(wanted) == host.entries(permanent=True, name=name)
    assert host.kernel_entries(name) == set(wanted)
