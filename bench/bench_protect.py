"""Benchmark: what lockout protection costs the ipset engine, against the engine without it, in one run.

In a private network namespace, for each size, with the same entries (bench_ipset's mix) and a
protection of a handful of addresses, as a host has (SSH client, own addresses, gateway):
  load     first load of an empty host, without and with protection
  noop     nothing to change (the record vouches for the carved set), without and with
  1%       1% of the entries replaced: only the new entries are checked, without and with
  recheck  the protected addresses changed: every entry is checked again (no kernel change)
Usage: .venv/bin/python bench/bench_protect.py [--sizes 100000,1000000] [--repeat 3] [--out FILE]
"""
import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_ipset import Netns, make_entries, report, timed  # noqa: E402

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ipset import IpsetAdapter  # noqa: E402
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.protect import Protection  # noqa: E402
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import (  # noqa: E402
    Entries, StateStore, SyncPolicy, sync_set,
)

PROTECTED = [('198.18.0.1', 'SSH client'), ('198.18.0.11', 'own address'), ('127.0.0.1', 'own address'),
             ('198.18.0.254', 'default gateway'), ('2001:db8:f1ee::11', 'own address')]
MOVED = PROTECTED[1:] + [('198.18.0.2', 'SSH client')]


def run_case(ns, workdir, entries, protection, name):
    store = StateStore(os.path.join(workdir, 'state-' + name), 'ipset', name)
    adapter = IpsetAdapter(ns.run, 'ipset', name)

    def apply(lines_list, prot):
        path = os.path.join(workdir, 'entries-%s.txt' % name)
        with open(path, 'w') as handle:
            handle.write('\n'.join(lines_list) + '\n')
        entries = Entries.read(path)
        return timed(lambda: sync_set(adapter, store, entries, SyncPolicy(protection=prot)))[0]

    times = {'load': apply(entries, protection), 'noop': apply(entries, protection)}
    step = max(1, len(entries) // 100)
    changed = entries[step:] + make_entries(step, seed=99, half=1)
    times['1%'] = apply(changed, protection)
    if protection is not None:
        times['recheck'] = apply(changed, Protection(MOVED))
    ns.run(['ipset', 'destroy', name])
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--sizes', default='100000,1000000')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--out')
    args = parser.parse_args()
    lines = ['| entries | load without | load with | ratio | no-op without | no-op with | 1% without | 1% with '
             '| ratio | recheck (all entries, no change) |', '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: '
             '| ---: | ---: |']
    ns = Netns()
    try:
        for size in [int(s) for s in args.sizes.split(',')]:
            entries = make_entries(size, seed=size)
            runs = {'without': [], 'with': []}
            for repeat in range(args.repeat):
                with tempfile.TemporaryDirectory() as workdir:
                    runs['without'].append(run_case(ns, workdir, entries, None, 'bw%d' % repeat))
                    runs['with'].append(run_case(ns, workdir, entries, Protection(PROTECTED), 'bp%d' % repeat))
            med = dict((kind, dict((key, statistics.median(r[key] for r in runs[kind])) for key in runs[kind][0]))
                       for kind in runs)
            w, p = med['without'], med['with']
            lines.append('| {:,} | {:.2f} s | {:.2f} s | {:.2f} | {:.3f} s | {:.3f} s | {:.2f} s | {:.2f} s | {:.2f} '
                         '| {:.2f} s |'.format(size, w['load'], p['load'], p['load'] / w['load'], w['noop'], p['noop'],
                                               w['1%'], p['1%'], p['1%'] / w['1%'], p['recheck']))
    finally:
        ns.close()
    report(lines, args.out)


if __name__ == '__main__':
    main()
