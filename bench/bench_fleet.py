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
Usage: .venv/bin/python bench/bench_fleet.py [--hosts 20] [--entries 100000] [--rounds 3] [--backend nftables]
Settings used: ansible.cfg of this repository (forks 20, pipelining, SSH ControlPersist).
"""
import argparse
import json
import os
import re
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


def timed_ansible(args, extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'))
    start = time.perf_counter()
    proc = subprocess.run(args + ['-e', '@' + extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False, timeout=1800)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit('bench: %s failed:\n%s' % (' '.join(args), proc.stdout[-3000:]))
    return took, proc.stdout


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


def one_round(args, work, feed, port):
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
    times = {'ping': []}
    ping = [os.path.join(VENV, 'ansible'), 'lab', '-m', 'ansible.builtin.ping']
    fleet.up(args.hosts)
    try:
        times['ping_cold'] = timed_ansible(ping, named)[0]
        times['full'], _out = timed_ansible([play, 'playbooks/blocklist.yml'], named)
        times['ping'].append(timed_ansible(ping, named)[0])
        times['noop'], out = timed_ansible([play, 'playbooks/blocklist.yml'], named)
        if re.search(r'changed=[1-9]', out):
            sys.exit('bench: the no-op run changed something:\n%s' % out[-3000:])
        times['noop_push'] = timed_ansible([play, 'playbooks/push.yml'], named)[0]
        times['detect'] = timed_ansible([play, 'playbooks/push.yml'], unnamed)[0]
        other = make_entries(args.entries, 8, half=1)
        n = args.entries // 100
        with open(feed, 'w') as handle:
            handle.write('\n'.join(other[:n] + entries[n:]) + '\n')
        times['one_pct'], _out = timed_ansible([play, 'playbooks/blocklist.yml'], named)
        times['ping'].append(timed_ansible(ping, named)[0])
    finally:
        fleet.down(verbose=False)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--hosts', type=int, default=20)
    parser.add_argument('--entries', type=int, default=100000)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--backend', default='nftables', choices=['nftables', 'ipset'])
    parser.add_argument('--out')
    args = parser.parse_args()
    collected = dict((run, []) for run in RUNS)
    with tempfile.TemporaryDirectory() as work:
        served = os.path.join(work, 'served')
        os.makedirs(served)
        feed = os.path.join(served, 'big.txt')
        with open(feed, 'w') as handle:
            handle.write('')
        server = feed_server.serve(served)
        try:
            for round_number in range(args.rounds):
                times = one_round(args, work, feed, server.server_address[1])
                print('round %d: %s' % (round_number + 1, ', '.join(
                    '%s %s' % (run, ' '.join('%.1f' % t for t in times[run]) if run == 'ping' else '%.1f' % times[run])
                    for run in RUNS)), flush=True)
                for run in RUNS:
                    collected[run].extend(times[run] if run == 'ping' else [times[run]])
        finally:
            server.shutdown()
    ping = median(collected['ping'])
    heading = ('%d lab hosts, %s entries each, backend %s; forks 20, pipelining, ControlPersist; median of %d rounds '
               '(ping: of %d runs).' % (args.hosts, format(args.entries, ','), args.backend, args.rounds,
                                        len(collected['ping'])))
    rows = [heading, '',
            '| run | wall time, median (min-max) | x ping |', '| --- | ---: | ---: |']
    for run in RUNS:
        values = collected[run]
        rows.append('| %s | %.1f s (%.1f-%.1f) | %.2f |' % (LABELS[run], median(values), min(values), max(values),
                                                            median(values) / ping))
    report(rows, args.out)


if __name__ == '__main__':
    main()
