"""playbooks/blocklist.yml with fleetwall_backend: xdp on the lab fleet, proven with packets.

Each lab host has its own bpffs (lab/fleet.py mounts one in its mount namespace), so every host pins its own
program and tries, and the program runs on the host's side of its veth (eth0): native XDP, as a veth has it.
The tests run in order and share the fleet.
"""
import json
import re
import subprocess
import sys

import pytest

from .conftest import ADDR, HOSTS, ansible, host_sh, listen, reachable, rejected_at_once

import fleet

ATTACKER, ATTACKER_EXTRA, FRIEND = fleet.ATTACKER, fleet.ATTACKER_EXTRA, fleet.FRIEND
PINS = '/sys/fs/bpf/fleetwall'
PROM = '/var/lib/fleetwall/xdp-test/fleetwall.prom'
UNIT = '/etc/systemd/system/fleetwall-xdp-restore.service'


@pytest.fixture(scope='module')
def xdpvars(lab, feeds, tmp_path_factory):
    (feeds.root / 'xdp_attackers.txt').write_text(
        '# attackers\n%s\n%s\n198.18.0.208/29\n' % (ATTACKER[0], ATTACKER[1]))
    state = tmp_path_factory.mktemp('xdp-shadow')
    return {'tmp': tmp_path_factory.mktemp('xdp-vars'), 'vars': {
        'shadow_copy_dir': str(state / 'copy'),
        'shadow_copy_feeds': [
            {'name': 'attackers', 'url': feeds.url + '/xdp_attackers.txt'},
            {'name': 'drop', 'url': feeds.url + '/spamhaus/drop.txt'},
            {'name': 'drop6', 'url': feeds.url + '/spamhaus/drop_ipv6.txt'},
        ],
        'fleetwall_backend': 'xdp',
        'xdp_interfaces': ['eth0'],
        'fleetwall_metrics_textfile': PROM,
        'fleetwall_metrics_create_dir': True}}


def play(env, *args, **extra):
    variables = dict(env['vars'], **extra)
    return ansible('ansible-playbook', ['playbooks/blocklist.yml'] + list(args), extra_vars=variables,
                   tmp_path=env['tmp'])


def xdp_on(host):
    """(mode, program name) of the XDP program on the host's eth0, or None."""
    rc, out, err = host_sh(host, 'ip -j link show dev eth0')
    assert rc == 0, err
    xdp = json.loads(out)[0].get('xdp')
    return (xdp['mode'], xdp['prog']['name']) if xdp else None


def pinned(host):
    rc, out, _err = host_sh(host, 'ls %s' % PINS)
    return sorted(out.split()) if rc == 0 else []


def xdp_drops(host):
    """{set: packets} of the XDP sets in the host's metrics textfile."""
    rc, out, err = host_sh(host, 'cat %s' % PROM)
    assert rc == 0, err
    return dict((m.group(1), int(m.group(2))) for m in re.finditer(
        r'^fleetwall_dropped_packets_total\{backend="xdp",set="([^"]+)"\} (\d+)$', out, re.M))


def send_udp(source, host, count):
    """``count`` UDP datagrams from the attacker namespace, from ``source`` to ``host``."""
    family = 'socket.AF_INET6' if ':' in source else 'socket.AF_INET'
    target = ADDR[host][1 if ':' in source else 0]
    script = ('import socket\ns = socket.socket(%s, socket.SOCK_DGRAM)\ns.bind((%r, 0))\n'
              'for _n in range(%d):\n    s.sendto(b"x" * 18, (%r, 9))\n' % (family, source, count, target))
    subprocess.run(['ip', 'netns', 'exec', fleet.NS_PREFIX + 'attacker', sys.executable, '-c', script],
                   timeout=60, check=True)


def assert_blocked_everywhere():
    for host in HOSTS:
        assert not reachable('attacker', host, ATTACKER[0], 4), host
        assert not reachable('attacker', host, ATTACKER_EXTRA[0], 4), host     # through the listed /29
        assert not reachable('attacker', host, ATTACKER[1], 6), host
        assert reachable('friend', host, FRIEND[0], 4), host
        assert reachable('friend', host, FRIEND[1], 6), host


def test_01_check_mode_shows_the_counts_and_changes_nothing(xdpvars):
    # What earlier tests left in the kernel's other backends goes with the switch below; XDP starts clean.
    for host in HOSTS:
        host_sh(host, 'ip link set dev eth0 xdpdrv off; ip link set dev eth0 xdpgeneric off; rm -rf %s' % PINS)
    run = play(xdpvars, '--check', '--diff')
    assert run.rc == 0, run.out[-3000:]
    assert re.search(r'^-XDP IPv4 trie fleetwall_v4: 0 entries$', run.out, re.M), run.out[-3000:]
    assert re.search(r'^\+XDP IPv4 trie fleetwall_v4: 9\d\d entries$', run.out, re.M), run.out[-3000:]
    assert re.search(r'^\+XDP IPv6 trie fleetwall_v6: \d+ entries$', run.out, re.M), run.out[-3000:]
    assert '+# rules: attach on eth0 (auto mode)' in run.out, run.out[-3000:]
    for host in HOSTS:
        assert pinned(host) == [] and xdp_on(host) is None


def test_02_push_drops_the_attacker_over_both_families_and_through_a_network(xdpvars):
    run = play(xdpvars)
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        assert pinned(host) == ['fleetwall_drops', 'fleetwall_v4', 'fleetwall_v6', 'fleetwall_xdp']
        # mode 1 is native (XDP_ATTACHED_DRV): a veth has it.
        assert xdp_on(host) == (1, 'fleetwall_xdp')
        rc, out, _err = host_sh(host, 'nft -t list table inet fleetwall; ipset list -n')
        assert 'fleetwall' not in out, out      # the switch took back what an earlier backend installed
    assert_blocked_everywhere()


def test_03_second_run_changes_nothing_and_the_counter_counts_every_drop(xdpvars):
    run = play(xdpvars)
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        assert run.changed(host) == 0, run.out[-3000:]
    before = xdp_drops('h1')
    send_udp(ATTACKER[0], 'h1', 500)
    # The attacker's neighbour solicitations come from its listed address and are dropped too, so it could never
    # learn h1's MAC: tell it, so that every datagram is sent (ARP is not IP, and passes).
    rc, mac, err = host_sh('h1', 'cat /sys/class/net/eth0/address')
    assert rc == 0, err
    neighbour = ['ip', '-n', fleet.NS_PREFIX + 'attacker', 'neigh', 'replace', ADDR['h1'][1], 'lladdr', mac.strip(),
                 'dev', 'eth0', 'nud', 'permanent']
    subprocess.run(neighbour, check=True, timeout=10)
    try:
        send_udp(ATTACKER[1], 'h1', 300)
    finally:
        subprocess.run(['ip', '-n', fleet.NS_PREFIX + 'attacker', 'neigh', 'del', ADDR['h1'][1], 'dev', 'eth0'],
                       check=False, timeout=10)
    run = play(xdpvars)
    assert run.rc == 0, run.out[-3000:]
    after = xdp_drops('h1')
    assert after['fleetwall_v4'] - before['fleetwall_v4'] == 500
    assert after['fleetwall_v6'] - before['fleetwall_v6'] == 300


def test_04_after_a_reboot_the_boot_unit_restores_the_block(xdpvars):
    rc, unit, err = host_sh('h2', 'cat %s; readlink /etc/systemd/system/multi-user.target.wants/%s'
                            % (UNIT, UNIT.rsplit('/', 1)[1]))
    assert rc == 0, err
    assert unit.strip().endswith(UNIT)
    exec_start = [line[len('ExecStart='):] for line in unit.splitlines() if line.startswith('ExecStart=')]
    assert len(exec_start) == 1
    # A reboot, as far as XDP is concerned: nothing attached, nothing pinned.
    rc, _out, err = host_sh('h2', 'ip link set dev eth0 xdpdrv off && rm -rf %s' % PINS)
    assert rc == 0, err
    assert reachable('attacker', 'h2', ATTACKER[0], 4)
    rc, out, err = host_sh('h2', exec_start[0])
    assert rc == 0, out + err
    assert 'restored' in out
    assert xdp_on('h2') == (1, 'fleetwall_xdp')
    assert not reachable('attacker', 'h2', ATTACKER[0], 4)
    assert not reachable('attacker', 'h2', ATTACKER_EXTRA[0], 4)
    assert not reachable('attacker', 'h2', ATTACKER[1], 6)
    assert reachable('friend', 'h2', FRIEND[0], 4)


def test_05_beside_nftables_each_keeps_its_part(xdpvars):
    """XDP drops the feeds' sources as they arrive; nftables, beside it, does what XDP cannot: the host's own
    connections out to a listed address are rejected at once (OUTPUT)."""
    outside = listen('fw-attacker', ATTACKER_EXTRA[0], 9000)
    try:
        run = play(xdpvars, fleetwall_backend='nftables', fleetwall_xdp=True, fleetwall_block_output=True)
        assert run.rc == 0, run.out[-3000:]
        for host in HOSTS:
            assert xdp_on(host) == (1, 'fleetwall_xdp'), host
            rc, out, err = host_sh(host, 'nft -t list sets inet')
            assert rc == 0 and 'fleetwall_v4_hosts' in out, out + err
        assert rejected_at_once('h1', ATTACKER_EXTRA[0], 9000)
        assert reachable('friend', 'h1', FRIEND[0], 4)
    finally:
        outside.kill()
        outside.wait()
    assert_blocked_everywhere()


def test_06_turning_xdp_off_takes_it_back_once_the_kernel_backend_blocks(xdpvars):
    run = play(xdpvars, fleetwall_backend='nftables')
    assert run.rc == 0, run.out[-3000:]
    assert 'Take back what the host' in run.out and "item=xdp" in run.out, run.out[-3000:]
    for host in HOSTS:
        assert xdp_on(host) is None
        assert pinned(host) == []
        rc, _out, _err = host_sh(host, 'test -e %s || test -e /var/lib/fleetwall/xdp/lib' % UNIT)
        assert rc != 0
    assert_blocked_everywhere()     # by nftables now
    run = play(xdpvars, fleetwall_backend='nftables', nftables_state='absent')
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        assert reachable('attacker', host, ATTACKER[0], 4)
