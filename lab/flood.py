# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A bounded UDP flood and a counting sink, for the lab's tests of protection under load.

    flood.py send --source ADDR --to ADDR[,ADDR...] --port P --rate PPS --seconds S [--count N]
        Sends small UDP datagrams from ADDR to each target in turn, at most PPS a second in total, and
        stops after S seconds or N datagrams, or at SIGTERM. Prints {"sent": n, "errors": n, "seconds": s}.
    flood.py sink --port P --seconds S
        Counts the datagrams that reach a UDP socket on port P, per source address, for at most S
        seconds or until SIGTERM, then prints {"by_source": {addr: n}, "seconds": s}.

Run each inside a namespace (ip netns exec fw-attacker ..., ip netns exec fw-h1 ...). The sink stands
for the application behind the firewall: a datagram it counts passed every filter the host has.
Everything is bounded: the sender by time and count, the sink by time.
"""
import argparse
import json
import signal
import socket
import sys
import time

PAYLOAD = b'fleetwall-flood'
# Datagrams per burst between rate checks: small enough to keep the rate smooth.
BURST = 64


class Stop(Exception):
    pass


def _stop(_signum, _frame):
    raise Stop()


def family_of(address):
    return socket.AF_INET6 if ':' in address else socket.AF_INET


def send(source, targets, port, rate, seconds, count):
    sock = socket.socket(family_of(source), socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.setblocking(False)
    sent = errors = 0
    start = time.monotonic()
    deadline = start + seconds
    try:
        while sent + errors < count:
            now = time.monotonic()
            if now >= deadline:
                break
            # Ahead of the rate: wait for it rather than spin, so the flood leaves CPU to the host.
            ahead = (sent + errors) / float(rate) - (now - start)
            if ahead > 0:
                time.sleep(min(ahead, deadline - now))
                continue
            for _datagram in range(BURST):
                try:
                    sock.sendto(PAYLOAD, (targets[(sent + errors) % len(targets)], port))
                    sent += 1
                except (BlockingIOError, ConnectionRefusedError, OSError):
                    # A full queue or an ICMP error from an earlier datagram: counted, never fatal.
                    errors += 1
    except Stop:
        pass
    return {'sent': sent, 'errors': errors, 'seconds': round(time.monotonic() - start, 3)}


def sink(port, seconds):
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(('::', port))
    sock.settimeout(0.2)
    by_source = {}
    start = time.monotonic()
    # Ready: the caller waits for this line before it starts sending.
    sys.stdout.write('ready\n')
    sys.stdout.flush()
    try:
        while time.monotonic() - start < seconds:
            try:
                _data, peer = sock.recvfrom(2048)
            except socket.timeout:
                continue
            address = peer[0][7:] if peer[0].startswith('::ffff:') else peer[0]
            by_source[address] = by_source.get(address, 0) + 1
    except Stop:
        pass
    return {'by_source': by_source, 'seconds': round(time.monotonic() - start, 3)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    sender = commands.add_parser('send')
    sender.add_argument('--source', required=True)
    sender.add_argument('--to', required=True, help='comma-separated target addresses')
    sender.add_argument('--port', type=int, required=True)
    sender.add_argument('--rate', type=int, default=10000)
    sender.add_argument('--seconds', type=float, default=60)
    sender.add_argument('--count', type=int, default=10 ** 7)
    counter = commands.add_parser('sink')
    counter.add_argument('--port', type=int, required=True)
    counter.add_argument('--seconds', type=float, default=300)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if args.command == 'send':
        result = send(args.source, args.to.split(','), args.port, max(args.rate, 1), min(args.seconds, 600),
                      args.count)
    else:
        result = sink(args.port, min(args.seconds, 900))
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
