# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The XDP program and its maps, loaded through the bpf() system call, proved with packets between namespaces.

A host namespace bridges three peers: an attacker, a friend, and a peer inside a listed network. The program is
attached to the host's side of each peer's veth (native XDP), and a TCP connect or a count of UDP datagrams shows
what it drops.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
import uuid

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import bpf, xdp, xdp_program
from ansible_collections.fleetwall.blocklist.tests.helpers import ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='needs root for bpf() and network namespaces')

# Nothing of ansible-core is under test here: the kernel and our own code on the standard library.
CORE_INDEPENDENT = True

HOST4, HOST6 = '10.9.0.1', 'fd00:9::1'
PEERS = {'attacker': ('10.9.0.2', 'fd00:9::2'), 'friend': ('10.9.0.3', 'fd00:9::3'), 'inside': ('10.9.0.130', None)}
PORT = 8080
# One instruction, a jump to itself plus one: past the end, which the verifier refuses.
JUMP_INTO_NOTHING = struct.pack('<BBhi', 0x05, 0, 0, 0)
LISTENER = ('import socket, sys\n'
            'servers = [socket.socket(family) for family in (socket.AF_INET, socket.AF_INET6)]\n'
            'for server, address in zip(servers, ("0.0.0.0", "::")):\n'
            '    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
            '    if server.family == socket.AF_INET6:\n'
            '        server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)\n'
            '    server.bind((address, %d)); server.listen(64); server.setblocking(False)\n'
            'import select\n'
            'while True:\n'
            '    for ready in select.select(servers, [], [], 60)[0]:\n'
            '        ready.accept()[0].close()\n' % PORT)


def sh(*args):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=True)


@pytest.fixture(scope='module')
def pins(tmp_path_factory):
    """A private bpffs to pin in (bpf_fs is mountable anywhere; the machine's /sys/fs/bpf is left alone)."""
    mount = tmp_path_factory.mktemp('bpffs')
    sh('mount', '-t', 'bpf', 'bpf', str(mount))
    yield str(mount / 'fleetwall')
    subprocess.run(['umount', str(mount)], check=False)


@pytest.fixture(scope='module')
def lab():
    """{name: namespace} of the host and its three peers, a TCP listener on the host; torn down after."""
    tag = uuid.uuid4().hex[:6]
    names = dict((name, 'fwxdp-%s-%s' % (name, tag)) for name in ['host'] + list(PEERS))
    for ns in names.values():
        sh('ip', 'netns', 'add', ns)
        sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
    host = names['host']
    sh('ip', '-n', host, 'link', 'add', 'br0', 'type', 'bridge')
    sh('ip', '-n', host, 'addr', 'add', HOST4 + '/24', 'dev', 'br0')
    sh('ip', '-n', host, 'addr', 'add', HOST6 + '/64', 'dev', 'br0', 'nodad')
    sh('ip', '-n', host, 'link', 'set', 'br0', 'up')
    for name, (v4, v6) in PEERS.items():
        side = 'p-' + name[:8]
        sh('ip', 'link', 'add', side, 'netns', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', names[name])
        sh('ip', '-n', host, 'link', 'set', side, 'master', 'br0', 'up')
        sh('ip', '-n', names[name], 'addr', 'add', v4 + '/24', 'dev', 'eth0')
        if v6:
            sh('ip', '-n', names[name], 'addr', 'add', v6 + '/64', 'dev', 'eth0', 'nodad')
        sh('ip', '-n', names[name], 'link', 'set', 'eth0', 'up')
    listener = subprocess.Popen(['ip', 'netns', 'exec', host, sys.executable, '-c', LISTENER])
    time.sleep(0.5)
    yield names
    listener.kill()
    listener.wait(timeout=10)
    for ns in names.values():
        subprocess.run(['ip', 'netns', 'del', ns], check=False)


def served(lab, peer, family=socket.AF_INET):
    """Whether a TCP connect from ``peer`` to the host succeeds within a second."""
    target = HOST4 if family == socket.AF_INET else HOST6
    script = ('import socket\ntry:\n    socket.create_connection((%r, %d), timeout=1).close()\n    print("served")\n'
              'except OSError as exc:\n    print("refused", exc)' % (target, PORT))
    return subprocess.run(['ip', 'netns', 'exec', lab[peer], sys.executable, '-c', script], capture_output=True,
                          text=True, timeout=30, check=True).stdout.startswith('served')


def send_udp(lab, peer, count):
    script = ('import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n'
              'for _n in range(%d):\n    s.sendto(b"x" * 18, (%r, 9))\n' % (count, HOST4))
    subprocess.run(['ip', 'netns', 'exec', lab[peer], sys.executable, '-c', script], timeout=30, check=True)


@pytest.fixture(scope='module')
def attached(lab, pins):
    """The program with its maps, pinned, attached to the host's side of every peer; detached after."""
    maps = xdp.XdpMaps(pins)
    tries = {4: xdp.XdpMaps.new_trie(4, ['10.9.0.2', '10.9.0.128/25']), 6: xdp.XdpMaps.new_trie(6, ['fd00:9::2'])}
    maps.create(tries)
    maps.close(tries.values())
    for name in PEERS:
        sh('ip', '-n', lab['host'], 'link', 'set', 'dev', 'p-' + name[:8], 'xdpdrv', 'pinned', maps.program_path)
    yield maps
    for name in PEERS:
        subprocess.run(['ip', '-n', lab['host'], 'link', 'set', 'dev', 'p-' + name[:8], 'xdpdrv', 'off'], check=False)
    maps.close(maps.fds.values())
    maps.unpin()


def test_the_shipped_program_is_what_its_source_builds():
    # The module loads xdp_program.py on hosts with no compiler: it must be the committed source, compiled.
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'src', 'xdp', 'build.py'), '--check'],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(xdp_program.INSTRUCTIONS) % bpf.INSTRUCTION_SIZE == 0 and xdp_program.MAP_REFERENCES


def test_listed_sources_are_dropped_over_both_families_and_through_a_network(attached, lab):
    assert not served(lab, 'attacker') and not served(lab, 'attacker', socket.AF_INET6)
    assert not served(lab, 'inside')            # 10.9.0.130 lies in the listed 10.9.0.128/25
    assert served(lab, 'friend') and served(lab, 'friend', socket.AF_INET6)


def test_the_drop_counter_counts_every_dropped_packet(attached, lab):
    before = attached.drops()[4]
    served(lab, 'attacker')     # the neighbour is resolved (ARP is not IP, and passes)
    middle = attached.drops()[4]
    send_udp(lab, 'attacker', 200)
    after = attached.drops()[4]
    assert middle[0] > before[0]
    assert after[0] - middle[0] == 200 and after[1] - middle[1] == 200 * (14 + 20 + 8 + 18)


def test_a_new_generation_goes_live_in_one_switch_and_edits_go_into_the_live_trie(attached, lab):
    assert attached.entries(4) == {'10.9.0.2', '10.9.0.128/25'}
    new = xdp.XdpMaps.new_trie(4, ['10.9.0.128/25'])
    try:
        attached.switch(4, new)
    finally:
        os.close(new)
    assert attached.entries(4) == {'10.9.0.128/25'} and served(lab, 'attacker') and not served(lab, 'inside')
    attached.edit(4, ['10.9.0.2'], ['10.9.0.128/25'])
    assert attached.entries(4) == {'10.9.0.2'} and not served(lab, 'attacker') and served(lab, 'inside')
    attached.edit(4, ['10.9.0.128/25'], [])
    assert attached.entries(4) == {'10.9.0.2', '10.9.0.128/25'}


def test_a_later_run_opens_what_is_pinned(attached, pins):
    again = xdp.XdpMaps(pins)
    assert again.open()
    try:
        assert again.entries(6) == {'fd00:9::2'}
        assert bpf.object_id(again.fds[xdp.PROGRAM]) == bpf.object_id(attached.fds[xdp.PROGRAM])
    finally:
        again.close(again.fds.values())
    assert not xdp.XdpMaps(pins + '-none').open()


def test_a_program_the_verifier_refuses_says_why():
    with pytest.raises(bpf.BpfError) as refused:
        bpf.load_xdp(JUMP_INTO_NOTHING, 'fw_bad')
    assert 'verifier' in str(refused.value)


XDP_DROP, XDP_PASS = 1, 2


def frame(source, tags=(), payload=b'x' * 18):
    """An Ethernet frame from ``source`` (IPv4 or IPv6) to the host, behind ``tags``: (TPID, VLAN id) pairs."""
    version = 6 if ':' in source else 4
    head = b'\x02' * 6 + b'\x04' * 6
    for tpid, vlan in tags:
        head += struct.pack('!HH', tpid, vlan)
    if version == 4:
        ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + 8 + len(payload), 0, 0, 64, 17, 0,
                         socket.inet_aton(source), socket.inet_aton(HOST4))
        return head + struct.pack('!H', 0x0800) + ip + struct.pack('!HHHH', 1234, 9, 8 + len(payload), 0) + payload
    ip6 = struct.pack('!IHBB16s16s', 6 << 28, 8 + len(payload), 17, 64, socket.inet_pton(socket.AF_INET6, source),
                      socket.inet_pton(socket.AF_INET6, HOST6))
    return head + struct.pack('!H', 0x86DD) + ip6 + struct.pack('!HHHH', 1234, 9, 8 + len(payload), 0) + payload


@pytest.mark.parametrize('source, tags, expected', [
    ('10.9.0.2', (), XDP_DROP),
    ('10.9.0.3', (), XDP_PASS),
    ('10.9.0.200', (), XDP_DROP),                               # inside 10.9.0.128/25
    ('10.9.0.2', ((0x8100, 100),), XDP_DROP),                   # 802.1Q
    ('10.9.0.2', ((0x88A8, 10), (0x8100, 100)), XDP_DROP),      # 802.1ad over 802.1Q (QinQ)
    ('10.9.0.3', ((0x8100, 100),), XDP_PASS),
    ('fd00:9::2', ((0x8100, 7),), XDP_DROP),
    ('fd00:9::3', (), XDP_PASS),
])
def test_the_program_parses_vlan_tags_and_both_families(attached, source, tags, expected):
    # BPF_PROG_TEST_RUN: the program's decision on a crafted frame (the test's veths carry no tags).
    assert bpf.test_run(attached.fds[xdp.PROGRAM], frame(source, tags))[0] == expected


def test_a_frame_cut_short_passes_rather_than_being_read_past_its_end(attached):
    # The kernel test-runs no frame shorter than an Ethernet header: from there, the end of Ethernet, inside IPv4,
    # one byte short of IPv4's header, and a tag cut in half.
    whole = frame('10.9.0.2')
    for length in (14, 20, 33):
        assert bpf.test_run(attached.fds[xdp.PROGRAM], whole[:length])[0] == XDP_PASS, length
    assert bpf.test_run(attached.fds[xdp.PROGRAM], frame('10.9.0.2', ((0x8100, 1),))[:16])[0] == XDP_PASS
    # Three tags: the program reads two, and the third is not IPv4 to it.
    three = frame('10.9.0.2', ((0x88A8, 1), (0x8100, 2), (0x8100, 3)))
    assert bpf.test_run(attached.fds[xdp.PROGRAM], three)[0] == XDP_PASS


def test_an_edit_removes_every_listed_entry_even_past_one_that_is_not_there(pins):
    # A batch delete stops at the first key that is not there; the entries after it must not stay listed.
    fd = xdp.XdpMaps.new_trie(4, ['10.0.0.1', '10.0.0.2', '10.0.0.3'])
    try:
        xdp.remove(fd, 4, ['10.0.0.1', '10.0.0.99', '10.0.0.2'])
        assert [xdp.entry_of(4, key) for key in bpf.keys(fd, 8)] == ['10.0.0.3']
    finally:
        os.close(fd)


def test_a_full_trie_says_so_and_how_far_it_got():
    fd = bpf.create_map(bpf.MAP_TYPE_LPM_TRIE, 8, 1, 4, 'fw_tiny', bpf.F_NO_PREALLOC)
    try:
        with pytest.raises(bpf.BpfError, match='IPv4 trie is full after 4 of 6 entries'):
            xdp.fill(fd, 4, ['10.0.0.%d' % n for n in range(1, 7)])
    finally:
        os.close(fd)


def test_pins_of_another_kind_under_our_names_are_refused_not_trusted(pins):
    # Another tool's maps pinned where ours go: open() must not take them for ours.
    strange = xdp.XdpMaps(pins + '-strange')
    os.makedirs(strange.pin_dir)
    fds = [bpf.create_map(bpf.MAP_TYPE_PERCPU_ARRAY, 4, 16, 2, 'other') for _name in xdp.PINNED[:-1]]
    try:
        for fd, name in zip(fds, xdp.PINNED[:-1]):
            bpf.pin(fd, strange.path(name))
        bpf.pin(fds[0], strange.path(xdp.PROGRAM))
        with pytest.raises(bpf.BpfError, match='is not the XDP backend'):
            strange.open()
        assert strange.fds == {}
    finally:
        strange.close(fds)
        strange.unpin()
