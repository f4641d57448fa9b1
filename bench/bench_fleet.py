"""Fleet cost: wall time of the push beside 'ansible -m ping' on the same lab hosts, in one run.

Builds a lab of N hosts, serves a feed of E entries on loopback, and per round times:
  ping cold   ansible lab -m ping on the fresh lab: every SSH connection is opened (ControlPersist)
  ping        ansible lab -m ping with the connections open, as the runs below have them (after the
              full push and after the 1% push; both kept): the baseline of the ratios
  full        playbooks/blocklist.yml on fresh hosts (every set loaded), a controller that never pushed
  noop        playbooks/blocklist.yml again: the feed fetched (304), nothing to change
  noop push   playbooks/push.yml: the push alone (no fetch, no build)
  detect      playbooks/push.yml without fleetwall_backend: each host first probes its tools
  1%          blocklist.yml with 1% of the feed's entries replaced
Each round starts from a fresh lab; the table gives the median of the rounds and the ratio of each
median to the median ping.

Every run is also split by where its CPU went: the controller (ansible-playbook and what it waited for:
its workers and their ssh clients) and the lab hosts (every process of the hosts' namespaces, counted by
a cpuacct cgroup the hosts are put in). The hosts share this machine's cores with the controller, so a
host's own work also lengthens the wall time here, where on a fleet each host does it on its own CPU at
the same time: the host CPU a host pays per run is shown beside ping's, not added to the ratio.

With several sizes (--hosts 20,50,100) the lab is built at each, and the slope (seconds per added host)
and a chart (--chart, SVG) show how each run grows with the fleet.
Usage: .venv/bin/python bench/bench_fleet.py [--hosts 20[,50,100]] [--entries 100000] [--rounds 3]
       [--rounds-after-first 1] [--backend nftables] [--out FILE] [--chart FILE.svg]
Settings used: ansible.cfg of this repository (forks 20, pipelining, SSH ControlPersist).
"""
import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'lab'))
sys.path.insert(0, os.path.join(ROOT, 'bench'))

import feed_server  # noqa: E402
import fleet  # noqa: E402
from bench_ipset import make_entries, median, report  # noqa: E402

VENV = os.path.join(ROOT, '.venv', 'bin')
RUNS = ('ping_cold', 'ping', 'full', 'noop', 'noop_push', 'detect', 'one_pct')
LABELS = {'ping_cold': '`ansible lab -m ping`, connections opened (not a baseline)',
          'ping': '`ansible lab -m ping`, connections open', 'full': 'full push, fresh hosts (`blocklist.yml`)',
          'noop': 'no-op run (`blocklist.yml`: fetch, build, push)', 'noop_push': 'no-op push (`push.yml`)',
          'detect': 'no-op push, backend not named (`push.yml` + detection)',
          'one_pct': '1% push (`blocklist.yml`)'}


CGROUP = '/sys/fs/cgroup/cpuacct/fleetwall-bench-lab'


class HostCpu(object):
    """The lab hosts' CPU time, from a cpuacct cgroup holding every process of their namespaces (the children
    sshd starts for each task inherit it). None where the machine has no cgroup v1 cpuacct hierarchy."""

    def __init__(self):
        self.path = CGROUP if os.path.isdir(os.path.dirname(CGROUP)) else None

    def adopt(self, namespaces):
        if self.path is None:
            return
        os.makedirs(self.path, exist_ok=True)
        for ns in namespaces:
            for pid in fleet.run(['ip', 'netns', 'pids', ns], check=False).stdout.split():
                try:
                    with open(os.path.join(self.path, 'cgroup.procs'), 'w') as handle:
                        handle.write(pid)
                except OSError:
                    pass  # gone meanwhile

    def seconds(self):
        if self.path is None:
            return None
        with open(os.path.join(self.path, 'cpuacct.usage')) as handle:
            return int(handle.read()) / 1e9

    def remove(self):
        if self.path is not None and os.path.isdir(self.path):
            try:
                os.rmdir(self.path)
            except OSError:
                pass  # a process is still in it; the next run reuses it


HOST_CPU = HostCpu()


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_ansible(args, extra):
    """(wall seconds, output, controller CPU seconds, hosts' CPU seconds or None)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'))
    hosts_before, controller_before = HOST_CPU.seconds(), children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(args + ['-e', '@' + extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False, timeout=1800)
    took = time.perf_counter() - start
    controller = children_cpu() - controller_before
    hosts_after = HOST_CPU.seconds()
    if proc.returncode != 0:
        sys.exit('bench: %s failed:\n%s' % (' '.join(args), proc.stdout[-3000:]))
    return took, proc.stdout, controller, (hosts_after - hosts_before) if hosts_before is not None else None


def write_vars(path, work, port, backend):
    settings = {'shadow_copy_dir': os.path.join(work, 'copy'),
                # A fresh controller push cache, as on a controller that has not
                # pushed to these (new) hosts before.
                'fleetwall_push_cache_dir': os.path.join(work, 'push-cache'),
                'shadow_copy_feeds': [{'name': 'big', 'url': 'http://127.0.0.1:%d/big.txt' % port}]}
    if backend:
        settings['fleetwall_backend'] = backend
    with open(path, 'w') as handle:
        json.dump(settings, handle)


def one_round(hosts, args, work, feed, port):
    """{run: [(wall, controller CPU, hosts' CPU)]} of one round on a fresh lab of ``hosts`` hosts."""
    for leftover in ('copy', 'push-cache'):
        shutil.rmtree(os.path.join(work, leftover), ignore_errors=True)
    entries = make_entries(args.entries, 7)
    with open(feed, 'w') as handle:
        handle.write('\n'.join(entries) + '\n')
    named = os.path.join(work, 'vars.json')
    unnamed = os.path.join(work, 'vars-detect.json')
    write_vars(named, work, port, args.backend)
    write_vars(unnamed, work, port, None)
    play = os.path.join(VENV, 'ansible-playbook')
    times = dict((run, []) for run in RUNS)
    ping = [os.path.join(VENV, 'ansible'), 'lab', '-m', 'ansible.builtin.ping']

    def timed(run, command, extra=named):
        took, out, controller, on_hosts = timed_ansible(command, extra)
        times[run].append((took, controller, on_hosts))
        return out

    fleet.up(hosts)
    HOST_CPU.adopt(fleet.lab_namespaces())
    try:
        timed('ping_cold', ping)
        timed('full', [play, 'playbooks/blocklist.yml'])
        timed('ping', ping)
        out = timed('noop', [play, 'playbooks/blocklist.yml'])
        if re.search(r'changed=[1-9]', out):
            sys.exit('bench: the no-op run changed something:\n%s' % out[-3000:])
        timed('noop_push', [play, 'playbooks/push.yml'])
        timed('detect', [play, 'playbooks/push.yml'], unnamed)
        other = make_entries(args.entries, 8, half=1)
        n = args.entries // 100
        with open(feed, 'w') as handle:
            handle.write('\n'.join(other[:n] + entries[n:]) + '\n')
        timed('one_pct', [play, 'playbooks/blocklist.yml'])
        timed('ping', ping)
    finally:
        fleet.down(verbose=False)
    return times


def size_table(hosts, rounds, collected, backend, entries):
    """The markdown table of one fleet size: wall time, its ratio to ping, and where the CPU went."""
    ping = median([t[0] for t in collected['ping']])
    heading = ('%d lab hosts, %s entries each, backend %s; forks 20, pipelining, ControlPersist; median of %d '
               'round(s) (ping: of %d runs). CPU: the controller\'s (ansible and its workers and ssh clients), '
               'and the lab hosts\' per host.' % (hosts, format(entries, ','), backend, rounds, len(collected['ping'])))
    rows = [heading, '',
            '| run | wall time, median (min-max) | x ping | controller CPU | host CPU per host |',
            '| --- | ---: | ---: | ---: | ---: |']
    for run in RUNS:
        walls = [t[0] for t in collected[run]]
        host_cpu = [t[2] for t in collected[run] if t[2] is not None]
        rows.append('| %s | %.1f s (%.1f-%.1f) | %.2f | %.1f s | %s |' % (
            LABELS[run], median(walls), min(walls), max(walls), median(walls) / ping,
            median([t[1] for t in collected[run]]),
            '%.2f s' % (median(host_cpu) / hosts) if host_cpu else 'n/a'))
    return rows


def slope_table(by_size):
    """Seconds each run takes at each size, and what each added host costs between sizes."""
    sizes = sorted(by_size)
    rows = ['Wall time by fleet size (median), and the cost of each added host between sizes:', '',
            '| run | ' + ' | '.join('%d hosts' % n for n in sizes) + ' | '
            + ' | '.join('per host, %d-%d' % pair for pair in zip(sizes, sizes[1:])) + ' |',
            '| --- |' + ' ---: |' * (2 * len(sizes) - 1)]
    for run in ('ping', 'noop_push', 'noop', 'full', 'one_pct'):
        walls = [median([t[0] for t in by_size[n][run]]) for n in sizes]
        pairs = zip(zip(sizes, walls), zip(sizes[1:], walls[1:]))
        per_host = ['%.3f s' % ((b - a) / (m - n)) for (n, a), (m, b) in pairs]
        rows.append('| %s | %s | %s |' % (LABELS[run], ' | '.join('%.1f s' % w for w in walls), ' | '.join(per_host)))
    return rows


CHART_RUNS = (('full', 'full push, fresh hosts', '#c0392b'), ('one_pct', '1% push', '#e67e22'),
              ('noop', 'no-op run (fetch, build, push)', '#2980b9'), ('noop_push', 'no-op push', '#27ae60'),
              ('ping', 'ansible -m ping', '#7f8c8d'))


def chart_svg(by_size):
    """A line chart (SVG, no script): wall seconds against lab hosts, one line per run."""
    sizes = sorted(by_size)
    series = [(label, colour, [median([t[0] for t in by_size[n][run]]) for n in sizes])
              for run, label, colour in CHART_RUNS]
    top = max(max(values) for _l, _c, values in series)
    step = 10 if top > 40 else 5
    ymax = step * (int(top / step) + 1)
    left, right, y0, y1, width, height = 60, 420, 30, 330, 640, 380

    def x(n):
        return left + (right - left) * (n - sizes[0]) / float(max(sizes[-1] - sizes[0], 1))

    def y(value):
        return y1 - (y1 - y0) * value / float(ymax)

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="sans-serif" font-size="12">' % (width, height, width, height),
           '<title>Fleet cost by lab size (bench/bench_fleet.py)</title>',
           '<rect width="100%" height="100%" fill="white"/>']
    for tick in range(0, ymax + 1, step):
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (left, y(tick), right, y(tick)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%d s</text>' % (left - 6, y(tick) + 4, tick))
    for n in sizes:
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (x(n), y1 + 18, n))
    out.append('<text x="%d" y="%d" text-anchor="middle">lab hosts</text>' % ((left + right) // 2, y1 + 38))
    for index, (label, colour, values) in enumerate(series):
        points = ' '.join('%.1f,%.1f' % (x(n), y(v)) for n, v in zip(sizes, values))
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s</title></polyline>'
                   % (colour, points, label))
        for n, v in zip(sizes, values):
            out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s, %d hosts: %.1f s</title></circle>'
                       % (x(n), y(v), colour, label, n, v))
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>' % (right + 20, y0 + 20 * index, colour))
        out.append('<text x="%d" y="%d">%s</text>' % (right + 38, y0 + 20 * index + 10, label))
    out.append('</svg>')
    return '\n'.join(out) + '\n'


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--hosts', default='20', help='a size, or sizes separated by commas (20,50,100)')
    parser.add_argument('--entries', type=int, default=100000)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--rounds-after-first', type=int,
                        help='rounds at each size after the first (default: --rounds)')
    parser.add_argument('--backend', default='nftables', choices=['nftables', 'ipset'])
    parser.add_argument('--out')
    parser.add_argument('--chart', help='write the chart of wall time by size here (SVG)')
    args = parser.parse_args()
    sizes = [int(size) for size in args.hosts.split(',')]
    by_size = {}
    rows = []
    with tempfile.TemporaryDirectory() as work:
        served = os.path.join(work, 'served')
        os.makedirs(served)
        feed = os.path.join(served, 'big.txt')
        with open(feed, 'w') as handle:
            handle.write('')
        server = feed_server.serve(served)
        try:
            for index, hosts in enumerate(sizes):
                rounds = args.rounds if index == 0 or args.rounds_after_first is None else args.rounds_after_first
                collected = dict((run, []) for run in RUNS)
                for round_number in range(rounds):
                    times = one_round(hosts, args, work, feed, server.server_address[1])
                    print('%d hosts, round %d: %s' % (hosts, round_number + 1, ', '.join(
                        '%s %s' % (run, ' '.join('%.1f' % t[0] for t in times[run])) for run in RUNS)), flush=True)
                    for run in RUNS:
                        collected[run].extend(times[run])
                by_size[hosts] = collected
                rows += size_table(hosts, rounds, collected, args.backend, args.entries) + ['']
        finally:
            server.shutdown()
            HOST_CPU.remove()
    if len(sizes) > 1:
        rows += slope_table(by_size)
        if args.chart:
            with open(args.chart, 'w') as handle:
                handle.write(chart_svg(by_size))
    report(rows, args.out)


if __name__ == '__main__':
    main()
