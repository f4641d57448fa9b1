"""Benchmark: what a blocked packet costs the host that drops it, per set type and size (issue 18, part 1).

Two private network namespaces joined by a veth pair: an attacker (dp-atk-*) and a host (dp-host-*),
nothing else; the shared lab's fw-* namespaces are never touched. The attacker sends bounded floods
(a packet count and a time cap) of small UDP packets to a closed port on the host, from one source
address at a time: an address listed as a /32, an address inside a listed CIDR, and an unlisted one
(a friend, whose packets pay the lookup and then reach the closed port).

The sender is a small C program (sendmmsg, 64 packets a call, pinned to one CPU, --cpu), compiled here
with gcc: CPython 3.11 has no socket.sendmmsg. Without gcc it falls back to a Python sendto loop, which
is slower but costs the receiving side the same.

Per flood it records packets sent, the host's veth RX count, the drop rules' counters (iptables rule
counters; the nft rule's named counter, read over netlink because nft's CLI lists every set element
first) and the UDP NoPorts count (packets that passed), and these CPU figures:
  cpu       the sender's own CPU time (CLOCK_PROCESS_CPUTIME_ID, ns-exact) plus the ksoftirqd threads'.
            veth hands each packet to the receiving stack in the sender's own context (the softirq runs
            when the transmit path re-enables bottom halves), so this is send + receive, exactly; the
            send part is the same in every configuration, so differences between rows are receive cost.
  softirq   the delta of softirq time in /proc/stat, over all CPUs and on the sender's CPU: the
            receiving side alone, but this kernel has no IRQ_TIME_ACCOUNTING, so it is sampled by the
            250 Hz tick, and other work's softirqs on the machine land in it too.
perf stat has no hardware counters on this VM (cycles: not supported), and its task-clock is the
sender's CPU time above, so perf is not used.

Configurations (entries: /32s with a realistic share of CIDRs /16-/28; hash:ip and the plain nft set
hold /32s only, so the CIDR source is n/a for them):
  no rules (closed port)         the kernel answers (ICMP port unreachable, rate limited)
  iptables -s DROP, no set       two rules (the listed /32 and the listed CIDR): the cost without a set
  nft ip saddr drop, no set      the same in nftables
  ipset hash:net + iptables      -m set --match-set S src -j DROP, as the ipset backend writes it
  ipset hash:ip + iptables       /32s only
  nft plain set                  type ipv4_addr, a base chain at priority -10, as the nftables backend
  nft interval set               flags interval, every entry in it
  nft hosts + networks           the role's layout: /32s in a plain set, CIDRs in an interval set, two chains
  UFW-style, one rule per entry  -A INPUT -s X -j DROP per entry, the listed entries in the middle
  IPv6                           ipset hash:net inet6 + ip6tables, and the role's nft layout, at one size
  XDP                            the XDP program (src/xdp) with an LPM trie per family, attached natively to the
                                 host's end of the veth, as the XDP backend loads it (host/xdp.py)

Every configuration is measured once per round and the rounds repeat (--repeat), so the other load on
this machine spreads over all of them; the tables give medians and min-max. /proc/loadavg is printed at
the start and the end.

Usage: .venv/bin/python bench/bench_droppath.py [--sizes 10000,100000,1000000] [--packets 500000]
           [--cap 5] [--repeat 3] [--v6-size 100000] [--ufw-sizes 1000,10000] [--only TEXT]
           [--iptables iptables] [--cpu 1] [--settle 1] [--quick] [--out FILE.json]
Needs root. --quick: 10k entries, 100k packets, UFW-style at 1k, about a minute.
"""
import argparse
import ipaddress
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, '.collections'))

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import xdp  # noqa: E402
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ipset import size_for  # noqa: E402

ENV = dict(os.environ, LC_ALL='C', PATH='/usr/local/sbin:/usr/sbin:/sbin:' + os.environ.get('PATH', ''))
TOOL_TIMEOUT = 120
LOAD_TIMEOUT = 900      # a 1M-entry interval set takes nft tens of seconds on this machine
PORT = 9                # nothing listens: a passed packet meets the closed port

HOST = {4: '198.18.0.1', 6: '2001:db8:ffff::1'}
ATTACKER = {4: '198.18.0.2', 6: '2001:db8:ffff::2'}
PREFIX = {4: 24, 6: 64}
SOURCES = {4: {'listed': '198.51.100.7', 'cidr': '203.0.113.9', 'unlisted': '192.0.2.5'},
           6: {'listed': '2001:db8:1::7', 'cidr': '2001:db8:2::9', 'unlisted': '2001:db8:3::5'}}
# The entries the listed sources hit; the random entries never come near these documentation ranges.
LISTED = {4: ('198.51.100.7', '203.0.113.0/24'), 6: ('2001:db8:1::7', '2001:db8:2::/48')}
SOURCE_LABELS = (('listed', 'listed /32'), ('cidr', 'in a listed CIDR'), ('unlisted', 'unlisted (passes)'))

SENDER_C = r'''
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* usage: sender NETNS_PATH SRC DST PORT COUNT CAP_SECONDS PAYLOAD_BYTES CPU */
int main(int argc, char **argv)
{
    if (argc != 9)
        return 2;
    /* One CPU: the host's receive path runs on it too, so its softirq time can be read apart. */
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(atoi(argv[8]), &cpus);
    if (sched_setaffinity(0, sizeof cpus, &cpus) != 0) {
        perror("sched_setaffinity");
        return 1;
    }
    int nsfd = open(argv[1], O_RDONLY);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) {
        perror("setns");
        return 1;
    }
    int v6 = strchr(argv[2], ':') != NULL;
    long count = atol(argv[5]);
    double cap = atof(argv[6]);
    struct sockaddr_storage src, dst;
    socklen_t len;
    memset(&src, 0, sizeof src);
    memset(&dst, 0, sizeof dst);
    if (v6) {
        struct sockaddr_in6 *s = (void *)&src, *d = (void *)&dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, argv[2], &s->sin6_addr) != 1 || inet_pton(AF_INET6, argv[3], &d->sin6_addr) != 1)
            return 2;
        d->sin6_port = htons(atoi(argv[4]));
        len = sizeof *s;
    } else {
        struct sockaddr_in *s = (void *)&src, *d = (void *)&dst;
        s->sin_family = d->sin_family = AF_INET;
        if (inet_pton(AF_INET, argv[2], &s->sin_addr) != 1 || inet_pton(AF_INET, argv[3], &d->sin_addr) != 1)
            return 2;
        d->sin_port = htons(atoi(argv[4]));
        len = sizeof *s;
    }
    /* Unconnected, so the host's ICMP unreachables never turn into send errors. */
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (void *)&src, len) != 0) {
        perror("bind");
        return 1;
    }
    static char payload[1500];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = payload;
        iov[i].iov_len = atoi(argv[7]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &dst;
        msgs[i].msg_hdr.msg_namelen = len;
    }
    long sent = 0, errors = 0;
    double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    while (sent < count && errors < 100000) {
        int n = count - sent < BATCH ? count - sent : BATCH;
        int r = sendmmsg(fd, msgs, n, 0);
        if (r < 0)
            errors++;
        else
            sent += r;
        if ((sent & 4095) < BATCH && clock_s(CLOCK_MONOTONIC) - t0 > cap)
            break;
    }
    printf("{\"sent\": %ld, \"errors\": %ld, \"seconds\": %.6f, \"cpu\": %.6f}\n", sent, errors,
           clock_s(CLOCK_MONOTONIC) - t0, clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0);
    return 0;
}
'''

# Used only without gcc: one sendto per packet, run inside the attacker namespace by ip netns exec.
SENDER_PY = r'''
import json, os, socket, sys, time
src, dst, port, count, cap, size, cpu = sys.argv[1:8]
os.sched_setaffinity(0, {int(cpu)})
family = socket.AF_INET6 if ':' in src else socket.AF_INET
sock = socket.socket(family, socket.SOCK_DGRAM)
sock.bind((src, 0))
payload, target, sent, errors = bytes(int(size)), (dst, int(port)), 0, 0
t0, c0, count, cap = time.monotonic(), time.process_time(), int(count), float(cap)
while sent < count and errors < 100000:
    try:
        sock.sendto(payload, target)
        sent += 1
    except OSError:
        errors += 1
    if sent % 4096 == 0 and time.monotonic() - t0 > cap:
        break
print(json.dumps({'sent': sent, 'errors': errors, 'seconds': time.monotonic() - t0, 'cpu': time.process_time() - c0}))
'''


# One NFT_MSG_GETOBJ request over netlink: the packets of named counter argv[2] in inet table argv[1].
NFT_COUNTER_PY = r'''
import socket, struct, sys


def attr(kind, data):
    return struct.pack('=HH', 4 + len(data), kind) + data + bytes(-len(data) % 4)


def attrs(buf):
    while len(buf) >= 4:
        length, kind = struct.unpack_from('=HH', buf)
        yield kind & 0x3fff, buf[4:length]
        buf = buf[(length + 3) & ~3:]


NETLINK_NETFILTER, NFPROTO_INET, NFT_MSG_GETOBJ, SUBSYS, OBJ_COUNTER, NLMSG_ERROR = 12, 1, 19, 10, 1, 2
body = (struct.pack('=BBH', NFPROTO_INET, 0, 0) + attr(1, sys.argv[1].encode() + bytes(1))
        + attr(2, sys.argv[2].encode() + bytes(1)) + attr(3, struct.pack('>I', OBJ_COUNTER)))
sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
sock.sendto(struct.pack('=IHHII', 16 + len(body), (SUBSYS << 8) | NFT_MSG_GETOBJ, 1, 1, 0) + body, (0, 0))
msg = sock.recv(65536)
length, kind = struct.unpack_from('=IH', msg)
if kind == NLMSG_ERROR:
    sys.exit('netlink error %d' % struct.unpack_from('=i', msg, 16)[0])
data = dict(attrs(dict(attrs(msg[20:length]))[4]))
print(struct.unpack('>Q', data[2])[0])
'''


def run(args, timeout=TOOL_TIMEOUT, check=True, data=None):
    """A tool call: bounded, C locale, output captured; a failure names the command."""
    proc = subprocess.run(list(args), input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=ENV, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError('%s failed (%d): %s' % (' '.join(args[:6]), proc.returncode, proc.stderr.strip()[:500]))
    return proc.stdout


# ---- entries ---------------------------------------------------------------------------------------------

def _v4(value, plen=32):
    text = '%d.%d.%d.%d' % (value >> 24, value >> 16 & 255, value >> 8 & 255, value & 255)
    return text if plen == 32 else '%s/%d' % (text, plen)


def mix_v4(count, seed):
    """Non-overlapping IPv4 entries as a merged feed looks: about 89.5 % /32, 10 % /24-/28, 0.5 % /16-/23.

    Narrow entries come from distinct /24s with first octets 11-126, wide ones from distinct /16s with
    first octets 160-191, so nothing overlaps (nft interval sets refuse overlaps) and nothing touches the
    test sources. The two listed test entries replace two random ones.
    """
    rng = random.Random(seed)
    wide = count // 200
    narrow = count - wide - 2
    out = [_v4((160 << 24) + (block << 16), rng.randint(16, 23)) for block in rng.sample(range(32 << 8), wide)]
    for i, block in enumerate(rng.sample(range(11 << 16, 127 << 16), narrow)):
        if i % 10 == 9:
            out.append(_v4(block << 8, rng.randint(24, 28)))
        else:
            out.append(_v4((block << 8) + rng.randrange(1, 255)))
    return out + list(LISTED[4])


def hosts_v4(count, seed):
    """The same number of /32s only, for the set types that hold addresses (hash:ip, a plain nft set)."""
    rng = random.Random(seed)
    return [_v4((block << 8) + rng.randrange(1, 255)) for block in rng.sample(range(11 << 16, 127 << 16), count - 1)] \
        + [LISTED[4][0]]


def mix_v6(count, seed):
    """Non-overlapping IPv6 entries: 70 % /128, 20 % /64, 9.5 % /48 from distinct /48s of 2400::/12,
    0.5 % /32 from distinct /32s of 2a00::/16 (far from the 2001:db8:: test sources)."""
    rng = random.Random(seed)
    wide = count // 200
    out = ['%s/32' % ipaddress.IPv6Address((0x2a00 << 112) + (block << 96)) for block in rng.sample(range(1 << 16), wide)]
    for i, block in enumerate(rng.sample(range(1 << 36), count - wide - 2)):
        base = (0x240 << 116) + (block << 80)
        kind = i % 20
        if kind < 14:
            out.append(str(ipaddress.IPv6Address(base + (rng.getrandbits(16) << 64) + rng.getrandbits(63) + 1)))
        elif kind < 18:
            out.append('%s/64' % ipaddress.IPv6Address(base + (rng.getrandbits(16) << 64)))
        else:
            out.append('%s/48' % ipaddress.IPv6Address(base))
    return out + list(LISTED[6])


# ---- namespaces --------------------------------------------------------------------------------------------

def cleanup_stale():
    """Delete dp-* namespaces and dpv-* links left by an earlier run; nothing else (never the lab's fw-*)."""
    for line in run(['ip', 'netns', 'list'], check=False).splitlines():
        name = line.split()[0] if line.split() else ''
        if name.startswith('dp-'):
            delete_netns(name)
    for line in run(['ip', '-o', 'link', 'show'], check=False).splitlines():
        parts = line.split(':')
        if len(parts) > 1 and parts[1].strip().split('@')[0].startswith('dpv-'):
            run(['ip', 'link', 'del', parts[1].strip().split('@')[0]], check=False)


def delete_netns(name):
    for pid in run(['ip', 'netns', 'pids', name], check=False).split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    run(['ip', 'netns', 'del', name], check=False)


class Lab(object):
    """The attacker and host namespaces, the veth between them, and every address the floods use."""

    def __init__(self, iptables, settle):
        # Seconds to wait after a load or a teardown, so that its deferred kernel work is not measured.
        self.settle = settle
        tag = uuid.uuid4().hex[:6]
        self.atk, self.host = 'dp-atk-' + tag, 'dp-host-' + tag
        self.atk_if, self.host_if = 'dpv-a' + tag, 'dpv-h' + tag
        self.iptables = {4: iptables, 6: iptables.replace('iptables', 'ip6tables')}
        # The XDP configuration's pinned maps and its private bpffs, while it is loaded.
        self.xdp_maps = self.xdp_pins = None
        for name in (self.atk, self.host):
            run(['ip', 'netns', 'add', name])
        run(['ip', 'link', 'add', self.atk_if, 'netns', self.atk, 'type', 'veth', 'peer', 'name', self.host_if,
             'netns', self.host])
        for ns in (self.atk, self.host):
            run(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
        self._addresses()

    def _addresses(self):
        for version in (4, 6):
            # nodad: no 2 s of tentative IPv6 addresses before the first flood.
            extra = ['nodad'] if version == 6 else []
            run(['ip', '-n', self.host, 'addr', 'add', '%s/%d' % (HOST[version], PREFIX[version]),
                 'dev', self.host_if] + extra)
            run(['ip', '-n', self.atk, 'addr', 'add', '%s/%d' % (ATTACKER[version], PREFIX[version]),
                 'dev', self.atk_if] + extra)
            for source in SOURCES[version].values():
                run(['ip', '-n', self.atk, 'addr', 'add', source, 'dev', self.atk_if] + extra)
        for ns, dev in ((self.atk, self.atk_if), (self.host, self.host_if)):
            run(['ip', '-n', ns, 'link', 'set', dev, 'up'])
        # The host's replies (ICMP unreachable) to the sources go back over the veth.
        run(['ip', '-n', self.host, 'route', 'add', 'default', 'dev', self.host_if])
        run(['ip', '-n', self.host, '-6', 'route', 'add', 'default', 'dev', self.host_if])
        run(['ip', '-n', self.atk, '-6', 'route', 'add', 'default', 'dev', self.atk_if])

    def sh(self, args, **kwargs):
        """A command in the host namespace."""
        return run(['ip', 'netns', 'exec', self.host] + list(args), **kwargs)

    def rx_packets(self):
        info = json.loads(run(['ip', '-n', self.host, '-s', '-j', 'link', 'show', 'dev', self.host_if]))
        return info[0]['stats64']['rx']['packets']

    def udp_noports(self, version):
        # /proc/net is per namespace for the reading process, so cat runs in the host namespace.
        if version == 4:
            lines = [line.split() for line in self.sh(['cat', '/proc/net/snmp']).splitlines() if line.startswith('Udp:')]
            return int(lines[1][lines[0].index('NoPorts')])
        for line in self.sh(['cat', '/proc/net/snmp6']).splitlines():
            if line.startswith('Udp6NoPorts'):
                return int(line.split()[1])
        return 0

    def reset(self):
        """Remove every rule and set, so the next configuration starts on an empty host."""
        for version in (4, 6):
            self.sh([self.iptables[version], '-w', '-F', 'INPUT'], check=False)
        self.sh(['nft', 'flush', 'ruleset'])
        self.sh(['ipset', 'destroy'], check=False)
        if self.xdp_maps is not None:
            run(['ip', '-n', self.host, 'link', 'set', 'dev', self.host_if, 'xdpdrv', 'off'], check=False)
            self.xdp_maps.close(self.xdp_maps.fds.values())
            self.xdp_maps.unpin()
            run(['umount', self.xdp_pins], check=False)
            self.xdp_maps = self.xdp_pins = None
        time.sleep(self.settle)

    def close(self):
        for name in (self.atk, self.host):
            delete_netns(name)


# ---- configurations ----------------------------------------------------------------------------------------

def iptables_drops(lab, version):
    """The sum of the DROP rules' packet counters in INPUT."""
    out = lab.sh([lab.iptables[version], '-w', '-L', 'INPUT', '-v', '-x', '-n'])
    return sum(int(line.split()[0]) for line in out.splitlines()[2:] if line.split()[2:3] == ['DROP'])


def nft_drops(lab, _version):
    # nft's CLI fetches every set element before it lists even one counter (62 s next to a 1M interval set
    # here), so the counter is asked of the kernel directly, inside the host namespace.
    return int(lab.sh([sys.executable, '-c', NFT_COUNTER_PY, 'dp', 'drops']))


def no_drops(_lab, _version):
    return 0


def load_none(lab, version, entries, workdir):
    return no_drops


def load_iptables_plain(lab, version, entries, workdir):
    return load_per_rule(lab, version, list(LISTED[version]), workdir)


def load_per_rule(lab, version, entries, workdir):
    """UFW's way: one rule per entry, in order; the listed entries sit in the middle of the chain."""
    listed = [e for e in entries if e in LISTED[version]]
    rest = [e for e in entries if e not in LISTED[version]]
    ordered = rest[:len(rest) // 2] + listed + rest[len(rest) // 2:]
    path = os.path.join(workdir, 'rules')
    with open(path, 'w') as handle:
        handle.write('*filter\n' + ''.join('-A INPUT -s %s -j DROP\n' % e for e in ordered) + 'COMMIT\n')
    lab.sh([lab.iptables[version] + '-restore', '-w', '--noflush', path], timeout=LOAD_TIMEOUT)
    return iptables_drops


def load_ipset(lab, version, entries, workdir, set_type='hash:net'):
    """The ipset backend's shape: a set sized by size_for's rule, one -m set DROP rule at the top of INPUT."""
    maxelem, hashsize = size_for(len(entries))
    path = os.path.join(workdir, 'ipset')
    with open(path, 'w') as handle:
        handle.write('create dp %s family %s hashsize %d maxelem %d\n'
                     % (set_type, 'inet' if version == 4 else 'inet6', hashsize, maxelem))
        handle.write(''.join('add dp %s\n' % e for e in entries))
    lab.sh(['ipset', 'restore', '-file', path], timeout=LOAD_TIMEOUT)
    lab.sh([lab.iptables[version], '-w', '-I', 'INPUT', '1', '-m', 'set', '--match-set', 'dp', 'src', '-j', 'DROP'])
    return iptables_drops


def load_ipset_ip(lab, version, entries, workdir):
    return load_ipset(lab, version, entries, workdir, set_type='hash:ip')


def nft_ruleset(version, sets, literal=()):
    """Our own inet table as nft_rules builds it: per set a base chain <set>_input at priority -10 holding its one
    rule, every rule counting into one named counter; ``literal`` sources (no set) get a chain of their own."""
    proto, elem = ('ip', 'ipv4_addr') if version == 4 else ('ip6', 'ipv6_addr')
    lines, chains = ['add table inet dp\n', 'add counter inet dp drops\n'], []
    for name, entries, interval in sets:
        lines.append('add set inet dp %s { type %s;%s }\n' % (name, elem, ' flags interval;' if interval else ''))
        # Statements of 50,000 elements, as the backend writes them: nft's parser never holds the whole list.
        lines += ['add element inet dp %s { %s }\n' % (name, ', '.join(entries[i:i + 50000]))
                  for i in range(0, len(entries), 50000)]
        chains.append((name + '_input', ['%s saddr @%s' % (proto, name)]))
    if literal:
        chains.append(('input', ['%s saddr %s' % (proto, e) for e in literal]))
    for chain, matches in chains:
        lines.append('add chain inet dp %s { type filter hook input priority -10; policy accept; }\n' % chain)
        lines += ['add rule inet dp %s %s counter name "drops" drop\n' % (chain, match) for match in matches]
    return ''.join(lines)


def load_nft_plain_rules(lab, version, entries, workdir):
    return _nft_load(lab, workdir, nft_ruleset(version, [], LISTED[version]))


def load_nft_set(lab, version, entries, workdir, interval=False):
    return _nft_load(lab, workdir, nft_ruleset(version, [('s', entries, interval)]))


def load_nft_interval(lab, version, entries, workdir):
    return load_nft_set(lab, version, entries, workdir, interval=True)


def load_nft_split(lab, version, entries, workdir):
    """The nftables role's layout: single addresses in a plain set, networks in an interval set (two chains)."""
    hosts = [e for e in entries if '/' not in e]
    nets = [e for e in entries if '/' in e]
    return _nft_load(lab, workdir, nft_ruleset(version, [('hosts', hosts, False), ('nets', nets, True)]))


def _nft_load(lab, workdir, text):
    path = os.path.join(workdir, 'ruleset.nft')
    with open(path, 'w') as handle:
        handle.write(text)
    lab.sh(['nft', '-f', path], timeout=LOAD_TIMEOUT)
    return nft_drops


def load_xdp(lab, version, entries, workdir):
    """The XDP backend's shape: the program with a trie of the entries (the other family's empty), pinned in a
    private bpffs, attached natively to the host's end of the veth."""
    pins = os.path.join(workdir, 'bpffs')
    os.makedirs(pins, exist_ok=True)
    run(['mount', '-t', 'bpf', 'bpf', pins])
    maps = xdp.XdpMaps(os.path.join(pins, 'fleetwall'))
    tries = dict((family, xdp.XdpMaps.new_trie(family, entries if family == version else []))
                 for family in xdp.FAMILIES)
    maps.create(tries)
    maps.close(tries.values())
    run(['ip', '-n', lab.host, 'link', 'set', 'dev', lab.host_if, 'xdpdrv', 'pinned', maps.program_path])
    lab.xdp_maps, lab.xdp_pins = maps, pins
    return lambda _lab, family: maps.drops()[family][0]


# (label, loader, entry kind, sources it can be asked about)
ALL_SOURCES = ('listed', 'cidr', 'unlisted')
CONFIGS = {
    'none': ('no rules (closed port)', load_none, None, ('unlisted',)),
    'ipt-plain': ('iptables -s DROP, no set', load_iptables_plain, None, ALL_SOURCES),
    'nft-plain': ('nft ip saddr drop, no set', load_nft_plain_rules, None, ALL_SOURCES),
    'ipset-net': ('ipset hash:net + iptables', load_ipset, 'mix', ALL_SOURCES),
    'ipset-ip': ('ipset hash:ip + iptables (/32s only)', load_ipset_ip, 'hosts', ('listed', 'unlisted')),
    'nft-set': ('nft plain set (/32s only)', load_nft_set, 'hosts', ('listed', 'unlisted')),
    'nft-interval': ('nft interval set', load_nft_interval, 'mix', ALL_SOURCES),
    'nft-split': ('nft hosts plain set + networks interval set (the role)', load_nft_split, 'mix', ALL_SOURCES),
    'ufw': ('UFW-style, one iptables rule per entry', load_per_rule, 'mix', ALL_SOURCES),
    'xdp': ('XDP, LPM trie (the XDP backend)', load_xdp, 'mix', ALL_SOURCES),
}


def plan(args):
    """The (key, version, size) of every configuration, in the order each round measures them."""
    rows = [('none', 4, 0), ('ipt-plain', 4, 2), ('nft-plain', 4, 2)]
    for size in args.sizes:
        rows += [(key, 4, size) for key in ('ipset-net', 'ipset-ip', 'nft-set', 'nft-interval', 'nft-split', 'xdp')]
    rows += [('none', 6, 0), ('ipset-net', 6, args.v6_size), ('nft-split', 6, args.v6_size), ('xdp', 6, args.v6_size)]
    rows += [('ufw', 4, size) for size in args.ufw_sizes]
    if args.only:
        wanted = args.only.split(',')
        rows = [r for r in rows if any(text in '%s %s' % (CONFIGS[r[0]][0], r[1]) for text in wanted)
                or r[0] == 'none']
    return rows


def entries_for(kind, version, size, cache):
    if kind is None:
        return []
    if (kind, version, size) not in cache:
        make = {('mix', 4): mix_v4, ('hosts', 4): hosts_v4, ('mix', 6): mix_v6}[(kind, version)]
        cache[(kind, version, size)] = make(size, seed=size + version)
    return cache[(kind, version, size)]


# ---- measuring ---------------------------------------------------------------------------------------------

def ksoftirqd_pids():
    pids = []
    for pid in os.listdir('/proc'):
        try:
            with open('/proc/%s/comm' % pid) as handle:
                if handle.read().startswith('ksoftirqd/'):
                    pids.append(pid)
        except (OSError, ValueError):
            continue
    return pids


def cpu_snapshot(pids, cpu):
    """softirq seconds over all CPUs and on ``cpu`` (from /proc/stat), and ksoftirqd's exact run time (schedstat)."""
    with open('/proc/stat') as handle:
        lines = {line.split()[0]: line.split() for line in handle if line.startswith('cpu')}
    tick = float(os.sysconf('SC_CLK_TCK'))
    softirq = (int(lines['cpu'][7]) / tick, int(lines['cpu%d' % cpu][7]) / tick)
    run_ns = 0
    for pid in pids:
        try:
            with open('/proc/%s/schedstat' % pid) as handle:
                run_ns += int(handle.read().split()[0])
        except (OSError, ValueError):
            continue
    return softirq + (run_ns / 1e9,)


class Sender(object):
    """The flood: the compiled C sender, or the Python fallback when there is no gcc."""

    def __init__(self, workdir, cpu):
        self.cpu = cpu
        self.binary = None
        gcc = shutil.which('gcc', path=ENV['PATH'])
        if gcc:
            source = os.path.join(workdir, 'sender.c')
            with open(source, 'w') as handle:
                handle.write(SENDER_C)
            self.binary = os.path.join(workdir, 'sender')
            run([gcc, '-O2', '-Wall', '-o', self.binary, source])
        self.kind = 'C, sendmmsg (batches of 64)' if self.binary else 'Python sendto loop (no gcc)'

    def command(self, lab, source, version, packets, cap):
        target = [source, HOST[version], str(PORT), str(packets), str(cap), '18', str(self.cpu)]
        if self.binary:
            # The sender joins the namespace itself: no ip-netns-exec mount work inside the measured window.
            return [self.binary, '/run/netns/' + lab.atk] + target
        return ['ip', 'netns', 'exec', lab.atk, sys.executable, '-c', SENDER_PY] + target

    def flood(self, lab, source, version, packets, cap):
        out = run(self.command(lab, source, version, packets, cap), timeout=cap + 60)
        return json.loads(out)


def measure(lab, sender, drops, version, source, packets, cap, pids):
    """One flood from one source: counters before and after, CPU right around the sender."""
    before = (drops(lab, version), lab.rx_packets(), lab.udp_noports(version))
    cpu0 = cpu_snapshot(pids, sender.cpu)
    result = sender.flood(lab, source, version, packets, cap)
    cpu1 = cpu_snapshot(pids, sender.cpu)
    after = (drops(lab, version), lab.rx_packets(), lab.udp_noports(version))
    dropped, received, passed = [a - b for a, b in zip(after, before)]
    result.update(dropped=dropped, received=received, passed=passed, softirq=cpu1[0] - cpu0[0],
                  softirq_cpu=cpu1[1] - cpu0[1], ksoftirqd=cpu1[2] - cpu0[2])
    # What the host did with the packets: dropped ones for a listed source, passed ones for the friend.
    handled = dropped if dropped else passed
    result['softirq_ns'] = result['softirq'] / handled * 1e9 if handled else None
    result['softirq_cpu_ns'] = result['softirq_cpu'] / handled * 1e9 if handled else None
    result['cpu_ns'] = (result['cpu'] + result['ksoftirqd']) / result['sent'] * 1e9 if result['sent'] else None
    return result


def run_config(lab, sender, row, args, cache, workdir, pids):
    key, version, size = row
    label, loader, kind, sources = CONFIGS[key]
    entries = entries_for(kind, version, size, cache)
    started = time.perf_counter()
    drops = loader(lab, version, entries, workdir)
    load_s = time.perf_counter() - started
    time.sleep(lab.settle)
    # Warm-up: neighbour entries and caches, not measured.
    for source in sources:
        sender.flood(lab, SOURCES[version][source], version, 5000, 5)
    results = {}
    for source in sources:
        results[source] = measure(lab, sender, drops, version, SOURCES[version][source], args.packets, args.cap, pids)
    lab.reset()
    return load_s, results


# ---- reporting ---------------------------------------------------------------------------------------------

def loadavg():
    with open('/proc/loadavg') as handle:
        return ' '.join(handle.read().split()[:3])


def cell(values, fmt='{:,.0f}'):
    values = [v for v in values if v is not None]
    if not values:
        return 'n/a'
    if len(values) == 1:
        return fmt.format(values[0])
    return (fmt + ' ({}-{})').format(statistics.median(values), fmt.format(min(values)), fmt.format(max(values)))


def row_label(row):
    key, version, size = row
    label = CONFIGS[key][0] + (' IPv6' if version == 6 else '')
    if CONFIGS[key][2]:
        return label, '{:,}'.format(size)
    return label, '-' if key == 'none' else '%d rules' % size


def table(rows, results, field, title):
    lines = [title, '', '| configuration | entries | ' + ' | '.join(lbl for _k, lbl in SOURCE_LABELS) + ' |',
             '| --- | ---: | ---: | ---: | ---: |']
    for row in rows:
        label, entries = row_label(row)
        cells = [cell([r[source][field] for r in results[row] if source in r]) for source, _lbl in SOURCE_LABELS]
        lines.append('| %s | %s | %s |' % (label, entries, ' | '.join(cells)))
    return lines


def checks(rows, results):
    """Whether every listed flood was dropped whole and every unlisted one passed whole; packets sent."""
    lines = ['', '| configuration | entries | packets sent per flood, median (min-max) | dropped as expected | '
             'wall / CPU of the sender (preemption) |', '| --- | ---: | ---: | --- | ---: |']
    for row in rows:
        floods = [(source, r[source]) for r in results[row] for source in r]
        good = all((f['dropped'] == f['sent'] and f['passed'] == 0) if s != 'unlisted' else
                   (f['dropped'] == 0 and f['passed'] == f['sent']) for s, f in floods)
        ratio = [f['seconds'] / f['cpu'] for _s, f in floods if f['cpu']]
        label, entries = row_label(row)
        lines.append('| %s | %s | %s | %s | %s |' % (label, entries, cell([f['sent'] for _s, f in floods]),
                                                     'yes' if good else 'NO: see the JSON', cell(ratio, '{:.2f}')))
    return lines


def extra_cost(rows, results):
    """CPU per packet over the same source's packet with no set: the lookup (listed) and the friend's tax."""
    def med(row, source):
        values = [r[source]['cpu_ns'] for r in results.get(row, []) if source in r]
        return statistics.median(values) if values else None
    lines = ['', '| configuration | entries | listed: over `iptables -s DROP` | listed: over `nft ip saddr drop` | '
             'unlisted: over no rules |', '| --- | ---: | ---: | ---: | ---: |']
    bases = {'ipt': med(('ipt-plain', 4, 2), 'listed'), 'nft': med(('nft-plain', 4, 2), 'listed'),
             4: med(('none', 4, 0), 'unlisted'), 6: med(('none', 6, 0), 'unlisted')}
    for row in rows:
        if CONFIGS[row[0]][2] is None:
            continue
        listed, unlisted = med(row, 'listed'), med(row, 'unlisted')
        diff = [('%+.0f' % (listed - bases[b]) if listed is not None and bases[b] is not None and row[1] == 4
                 else 'n/a') for b in ('ipt', 'nft')]
        diff.append('%+.0f' % (unlisted - bases[row[1]]) if unlisted is not None and bases[row[1]] else 'n/a')
        label, entries = row_label(row)
        lines.append('| %s | %s | %s |' % (label, entries, ' | '.join(diff)))
    return lines


# ---- main --------------------------------------------------------------------------------------------------

def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', default='10000,100000,1000000')
    parser.add_argument('--packets', type=int, default=500000, help='packets per flood (the cap may end it sooner)')
    parser.add_argument('--cap', type=float, default=5.0, help='seconds per flood at most')
    parser.add_argument('--repeat', type=int, default=3, help='rounds; every figure is the median over them')
    parser.add_argument('--v6-size', type=int, default=100000)
    parser.add_argument('--ufw-sizes', default='1000,10000')
    parser.add_argument('--only', help='only configurations whose label (and size) contain this text (or one of '
                                       'these, comma-separated)')
    parser.add_argument('--iptables', default='iptables', help='iptables or iptables-legacy (ip6tables follows)')
    parser.add_argument('--cpu', type=int, default=1, help='the CPU the sender (and so the receive path) runs on')
    parser.add_argument('--settle', type=float, default=1.0, help='seconds of quiet after each load and teardown')
    parser.add_argument('--quick', action='store_true', help='10k entries, 100k packets, UFW-style at 1k')
    parser.add_argument('--out', help='write every flood\'s figures as JSON here')
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.packets, args.cap, args.v6_size, args.ufw_sizes = '10000', 100000, 2.0, 10000, '1000'
        args.settle = 0.3
    args.sizes = [int(s) for s in args.sizes.split(',') if s]
    args.ufw_sizes = [int(s) for s in args.ufw_sizes.split(',') if s]
    return args


def environment(args, sender):
    tools = (run([args.iptables, '-V']).strip(), run(['ipset', '-v']).strip().split(',')[0], run(['nft', '-v']).strip())
    return ['kernel %s, %d CPUs; %s; %s; %s' % ((os.uname().release, os.cpu_count()) + tools),
            'sender: %s, pinned to CPU %d; %d packets of 18 bytes of UDP payload per flood, cap %.0f s; %d rounds'
            % (sender.kind, sender.cpu, args.packets, args.cap, args.repeat)]


def main():
    args = parse_args()
    if os.geteuid() != 0:
        sys.exit('bench_droppath.py needs root (network namespaces)')
    # SIGTERM ends the run through the finally blocks, so the namespaces go too.
    signal.signal(signal.SIGTERM, lambda *_a: sys.exit(143))
    cleanup_stale()
    workdir = tempfile.mkdtemp(prefix='fleetwall-bench-droppath-')
    lab = None
    rows, results, loads, cache = None, {}, {}, {}
    start_load = loadavg()
    try:
        sender = Sender(workdir, args.cpu)
        header = environment(args, sender)
        print('\n'.join(header) + '\nloadavg at start: ' + start_load, flush=True)
        lab = Lab(args.iptables, args.settle)
        pids = ksoftirqd_pids()
        rows = plan(args)
        for round_ in range(args.repeat):
            for row in rows:
                load_s, res = run_config(lab, sender, row, args, cache, workdir, pids)
                results.setdefault(row, []).append(res)
                loads.setdefault(row, []).append(load_s)
                print('round %d %s %s: load %.1f s, %s' % (round_ + 1, row_label(row)[0], row[2], load_s, ', '.join(
                    '%s %s ns (softirq %s)' % (s, cell([r['cpu_ns']]), cell([r['softirq_ns']])) for s, r in res.items())),
                    flush=True)
    finally:
        if lab:
            lab.close()
        shutil.rmtree(workdir, ignore_errors=True)
    end_load = loadavg()
    report(args, header, rows, results, start_load, end_load)


def report(args, header, rows, results, start_load, end_load):
    lines = header + ['loadavg at start: %s; at the end: %s' % (start_load, end_load), '']
    lines += table(rows, results, 'cpu_ns', 'CPU per packet, sender + the host\'s receive path (exact), ns, '
                   'median (min-max) of %d:' % args.repeat)
    lines += [''] + table(rows, results, 'softirq_ns', 'softirq per handled packet (/proc/stat, all CPUs, '
                          'tick-sampled), ns, median (min-max) of %d:' % args.repeat)
    lines += [''] + table(rows, results, 'softirq_cpu_ns', 'softirq per handled packet on the sender\'s CPU (%d) '
                          'alone, the same way:' % args.cpu)
    lines += ['', 'Over the no-set baselines (medians of the first table, ns per packet):'] + extra_cost(rows, results)
    lines += checks(rows, results)
    print('\n'.join(lines))
    if args.out:
        with open(args.out, 'w') as handle:
            json.dump({'header': header, 'loadavg': [start_load, end_load], 'text': lines,
                       'floods': [{'row': list(row), 'rounds': results[row]} for row in rows]}, handle, indent=1)


if __name__ == '__main__':
    main()
