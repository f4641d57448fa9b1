"""playbooks/blocklist.yml on lab hosts that run firewalld (with their own system D-Bus), proven with packets.

Nothing names the backend: backend_facts sees firewalld running and picks it. The tests run in order;
the module's teardown stops firewalld so later tests find the hosts as they were.
"""
import os
import re
import signal
import time

import pytest

from .conftest import HOSTS, ansible, host_sh, reachable

import fleet

ATTACKER, ATTACKER_EXTRA, FRIEND = fleet.ATTACKER, fleet.ATTACKER_EXTRA, fleet.FRIEND
# The pid file a stopped bus left (stop_firewalld) would stop the next module's start.
START = ('rm -f /run/dbus/pid; dbus-daemon --system --fork && (firewalld --nofork --nopid > /var/log/firewalld.out 2>&1 &) ; '
         'for i in $(seq 1 150); do firewall-cmd --state >/dev/null 2>&1 && exit 0; sleep 0.1; done; exit 1')


def firewalld_pids(host):
    ns = fleet.NS_PREFIX + host
    out = fleet.run(['ip', 'netns', 'pids', ns], check=False).stdout.split()
    pids = []
    for pid in out:
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                cmdline = handle.read()
        except OSError:
            continue
        if b'firewalld' in cmdline or b'dbus-daemon' in cmdline:
            pids.append((int(pid), b'dbus-daemon' in cmdline))
    return pids


@pytest.fixture(scope='module')
def fwvars(lab, feeds, tmp_path_factory):
    (feeds.root / 'fwd_attackers.txt').write_text('%s\n%s\n198.18.0.208/29\n' % (ATTACKER[0], ATTACKER[1]))
    state = tmp_path_factory.mktemp('fwd-shadow')
    env = {'tmp': tmp_path_factory.mktemp('fwd-vars'), 'vars': {
        'shadow_copy_dir': str(state / 'copy'),
        'shadow_copy_feeds': [
            {'name': 'attackers', 'url': feeds.url + '/fwd_attackers.txt'},
            {'name': 'drop', 'url': feeds.url + '/spamhaus/drop.txt'},
            {'name': 'drop6', 'url': feeds.url + '/spamhaus/drop_ipv6.txt'},
        ]}}
    for backend, var in (('ipset', 'ipset_state'), ('nftables', 'nftables_state')):
        run = play(env, '-e', 'fleetwall_backend=%s' % backend, '-e', '%s=absent' % var)
        assert run.rc == 0, run.out[-3000:]
    try:
        for host in HOSTS:
            start_firewalld(host)
            assert reachable('attacker', host, ATTACKER[0], 4)        # the public zone allows ssh
        yield env
    finally:
        for host in HOSTS:
            stop_firewalld(host)


def start_firewalld(host):
    """firewalld on the host's own system D-Bus, returned once it answers."""
    rc, _out, err = host_sh(host, START)
    assert rc == 0, err + host_sh(host, 'cat /var/log/firewalld.out')[1]


def stop_firewalld(host):
    """SIGTERM (firewalld removes its rules when it exits), then whatever it left, so later tests find the host clean."""
    for pid, is_dbus in sorted(firewalld_pids(host), key=lambda p: p[1]):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + 15
    while firewalld_pids(host) and time.monotonic() < deadline:
        time.sleep(0.1)
    host_sh(host, 'nft delete table inet firewalld 2>/dev/null; rm -rf /etc/firewalld/ipsets/* '
                  '/etc/firewalld/zones/* /run/dbus/pid')


def play(env, *args):
    return ansible('ansible-playbook', ['playbooks/blocklist.yml'] + list(args),
                   extra_vars=env['vars'], tmp_path=env['tmp'])


def entries(host, name, permanent=False):
    rc, out, err = host_sh(host, 'firewall-cmd %s--ipset=%s --get-entries' % ('--permanent ' if permanent else '', name))
    assert rc == 0, err
    return set(out.split())


def test_01_check_mode_changes_nothing(fwvars):
    run = play(fwvars, '--check', '--diff')
    assert run.rc == 0, run.out[-3000:]
    assert 'firewalld ipset fleetwall_v4: 0 entries' in run.out
    for host in HOSTS:
        rc, out, _err = host_sh(host, 'firewall-cmd --permanent --get-ipsets')
        assert 'fleetwall' not in out


def test_02_push_blocks_through_the_drop_zone(fwvars):
    run = play(fwvars)
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        assert not reachable('attacker', host, ATTACKER[0], 4)
        assert not reachable('attacker', host, ATTACKER_EXTRA[0], 4)          # in the /29
        assert not reachable('attacker', host, ATTACKER[1], 6)
        assert reachable('friend', host, FRIEND[0], 4)
        assert reachable('friend', host, FRIEND[1], 6)
        for permanent in (False, True):
            assert {ATTACKER[0], '198.18.0.208/29'} <= entries(host, 'fleetwall_v4', permanent)
            assert ATTACKER[1] in entries(host, 'fleetwall_v6', permanent)
        rc, out, _err = host_sh(host, 'firewall-cmd --zone=drop --list-sources; '
                                      'firewall-cmd --permanent --zone=drop --list-sources')
        assert out.split() == ['ipset:fleetwall_v4', 'ipset:fleetwall_v6'] * 2
        rc, out, _err = host_sh(host, 'firewall-cmd --list-services')
        assert 'ssh' in out.split()                                          # never touched
    assert 'h1: changed  fleetwall_v4 +' in run.out


def test_03_second_run_changes_nothing(fwvars):
    run = play(fwvars)
    assert run.rc == 0, run.out[-3000:]
    assert {h: run.changed(h) for h in HOSTS} == dict.fromkeys(HOSTS, 0)


def test_04_change_is_bulk_without_reload_and_drift_is_repaired(fwvars, feeds):
    listed = (feeds.root / 'fwd_attackers.txt').read_text()
    (feeds.root / 'fwd_attackers.txt').write_text(listed.replace('198.18.0.208/29\n', '203.0.113.99\n'))
    # A runtime-only entry of the operator's would vanish with a reload; it must survive ours.
    host_sh('h1', 'firewall-cmd --zone=trusted --add-source=192.0.2.55')
    host_sh('h2', 'firewall-cmd --ipset=fleetwall_v4 --remove-entry=%s' % ATTACKER[0])      # drift
    run = play(fwvars, '-e', 'firewalld_verify=true')
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        v4 = entries(host, 'fleetwall_v4')
        assert '203.0.113.99' in v4 and '198.18.0.208/29' not in v4 and ATTACKER[0] in v4
        assert entries(host, 'fleetwall_v4', True) == v4
        assert not reachable('attacker', host, ATTACKER[0], 4)
        assert reachable('attacker', host, ATTACKER_EXTRA[0], 4)            # no longer listed
    rc, out, _err = host_sh('h1', 'firewall-cmd --zone=trusted --list-sources')
    assert '192.0.2.55' in out                                               # no reload happened
    assert 'h2: changed  fleetwall_v4 +2 -1' in run.out


def test_045_switch_to_a_rich_rule_with_reject(fwvars):
    run = play(fwvars, '-e', 'firewalld_mode=rich_rule', '-e', 'firewalld_target=reject')
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        rc, out, _err = host_sh(host, 'firewall-cmd --zone=drop --list-sources; '
                                      'firewall-cmd --permanent --zone=drop --list-sources')
        assert out.split() == []                                             # the zone sources are gone
        rc, out, _err = host_sh(host, 'firewall-cmd --list-rich-rules; firewall-cmd --permanent --list-rich-rules')
        assert out.count('source ipset="fleetwall_v4" reject type="icmp-port-unreachable"') == 2
        assert out.count('source ipset="fleetwall_v6" reject type="icmp6-port-unreachable"') == 2
        assert not reachable('attacker', host, ATTACKER[0], 4)
        assert not reachable('attacker', host, ATTACKER[1], 6)
        assert reachable('friend', host, FRIEND[0], 4)
    assert all(run.changed(h) >= 1 for h in HOSTS)


def test_05_absent_removes_ipsets_and_bindings(fwvars):
    run = play(fwvars, '--diff', '-e', 'firewalld_state=absent')
    assert run.rc == 0, run.out[-3000:]
    # Counted by the record of the last apply: firewalld cannot count without listing.
    assert re.search(r'firewalld ipset fleetwall_v4: [1-9][0-9]* entries', run.out), run.out[-3000:]
    for host in HOSTS:
        rc, out, _err = host_sh(host, 'firewall-cmd --permanent --get-ipsets; firewall-cmd --get-ipsets; '
                                      'firewall-cmd --zone=drop --list-sources')
        assert 'fleetwall' not in out
        rc, out, _err = host_sh(host, 'firewall-cmd --list-rich-rules; firewall-cmd --permanent --list-rich-rules')
        assert 'fleetwall' not in out
        assert reachable('attacker', host, ATTACKER[0], 4)


def test_06_nftables_backend_on_a_firewalld_host_survives_firewalld_reloads(fwvars):
    """For lists too large for firewalld's ipsets: our own nft table, which firewalld's reload leaves alone."""
    run = play(fwvars, '-e', 'fleetwall_backend=nftables')
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        rc, _out, err = host_sh(host, 'firewall-cmd --reload')
        assert rc == 0, err
        assert not reachable('attacker', host, ATTACKER[0], 4)
        assert not reachable('attacker', host, ATTACKER[1], 6)
        assert reachable('friend', host, FRIEND[0], 4)
    run = play(fwvars, '-e', 'fleetwall_backend=nftables', '-e', 'nftables_state=absent')
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        assert reachable('attacker', host, ATTACKER[0], 4)
