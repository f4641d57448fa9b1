"""Fleet cost: wall time of the push beside 'ansible -m ping' on the same lab hosts, in one run.

Builds a lab of N hosts, serves a feed of E entries on loopback, and times:
  ping      ansible all -m ping
  full      playbooks/blocklist.yml on fresh hosts (every set loaded)
  noop      the same again (nothing to change)
  1%        1% of the entries replaced
Usage: .venv/bin/python bench/bench_fleet.py [--hosts 20] [--entries 100000]
Settings used: ansible.cfg of this repository (forks 20, pipelining, SSH ControlPersist).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'lab'))
sys.path.insert(0, os.path.join(ROOT, 'bench'))

import feed_server  # noqa: E402
import fleet  # noqa: E402
from bench_ipset import make_entries, report  # noqa: E402


def timed_ansible(args, extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'))
    start = time.perf_counter()
    proc = subprocess.run(args + ['-e', '@' + extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit('bench: %s failed:\n%s' % (' '.join(args), proc.stdout[-3000:]))
    return took


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--hosts', type=int, default=20)
    parser.add_argument('--entries', type=int, default=100000)
    parser.add_argument('--out')
    args = parser.parse_args()
    venv = os.path.join(ROOT, '.venv', 'bin')
    with tempfile.TemporaryDirectory() as work:
        served = os.path.join(work, 'served')
        os.makedirs(served)
        entries = make_entries(args.entries, 7)
        feed = os.path.join(served, 'big.txt')
        with open(feed, 'w') as handle:
            handle.write('\n'.join(entries) + '\n')
        server = feed_server.serve(served)
        extra = os.path.join(work, 'vars.json')
        with open(extra, 'w') as handle:
            # A fresh controller push cache, as on a controller that has not
            # pushed to these (new) hosts before.
            json.dump({'shadow_copy_dir': os.path.join(work, 'copy'),
                       'fleetwall_push_cache_dir': os.path.join(work, 'push-cache'),
                       'shadow_copy_feeds': [{'name': 'big', 'url': 'http://127.0.0.1:%d/big.txt' % server.server_address[1]}]},
                      handle)
        fleet.up(args.hosts)
        try:
            ping = timed_ansible([os.path.join(venv, 'ansible'), 'lab', '-m', 'ansible.builtin.ping'], extra)
            play = [os.path.join(venv, 'ansible-playbook'), 'playbooks/blocklist.yml']
            full = timed_ansible(play, extra)
            noop = timed_ansible(play, extra)
            other = make_entries(args.entries, 8)
            n = args.entries // 100
            with open(feed, 'w') as handle:
                handle.write('\n'.join(other[:n] + entries[n:]) + '\n')
            one_pct = timed_ansible(play, extra)
        finally:
            fleet.down(verbose=False)
            server.shutdown()
    rows = ['%d lab hosts, %s entries each; forks 20, pipelining, ControlPersist.' % (args.hosts, format(args.entries, ',')), '',
            '| run | wall time | x ping |', '| --- | ---: | ---: |',
            '| `ansible lab -m ping` | %.1f s | 1.00 |' % ping]
    for label, value in (('full push (fresh hosts)', full), ('no-op push', noop), ('1% push', one_pct)):
        rows.append('| %s | %.1f s | %.2f |' % (label, value, value / ping))
    report(rows, args.out)


if __name__ == '__main__':
    main()
