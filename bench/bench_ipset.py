"""Benchmark: ipset_sync's engine against raw ipset, in one run, on this machine.

Runs in a private network namespace. For each size it measures, with the
same entries:
  raw     ipset restore of create + add lines into a new set (the floor)
  load    the sync engine loading an empty host (read file, validate, restore)
  reload  the engine replacing every entry of an existing set (temp set + swap)
  noop    the engine with nothing to change
  1%      the engine with 1% of the entries replaced
  naive   one 'ipset add' process per address, 1,000 of them, extrapolated
and, with --mode process (the default runs both), the module as a host runs it:
whole 'python -m' processes of ipset_sync with their arguments file (see
whole_process.py), interleaved with raw 'ipset restore' processes of the same
entries into the same kind of set:
  raw load     ipset restore of create + add lines (the floor)
  first load   ipset_sync on a host without the set or a record
  no-op        ipset_sync with nothing to change
  raw 1%       ipset -exist restore of the same 1% of adds and deletes
  1%           ipset_sync with 1% of the entries replaced
Usage: .venv/bin/python bench/bench_ipset.py [--sizes 100000,1000000] [--mode engine,process] [--persist] [--out FILE]
"""
import argparse
import os
import shutil
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, '.collections'))

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ipset import IpsetAdapter, size_for  # noqa: E402
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import (  # noqa: E402
    Entries, StateStore, sync_set,
)
import whole_process  # noqa: E402


def make_entries(count, seed, half=0):
    """Unique, non-overlapping entries: /32s with every 20th a /28, as feeds look after aggregation.

    ``half`` picks one of two disjoint halves of the address space, so two
    lists drawn from different halves share no entry.
    """
    rng = random.Random(seed)
    low, high = 1 << 20, (223 << 24) >> 4
    mid = (low + high) // 2
    blocks = rng.sample(range(low, mid) if half == 0 else range(mid, high), count)
    out = []
    for i, block in enumerate(blocks):
        base = block << 4
        if i % 20 == 0:
            out.append('%d.%d.%d.%d/28' % (base >> 24, (base >> 16) & 255, (base >> 8) & 255, base & 255))
        else:
            addr = base + rng.randrange(16)
            out.append('%d.%d.%d.%d' % (addr >> 24, (addr >> 16) & 255, (addr >> 8) & 255, addr & 255))
    return out


class Netns(object):
    def __init__(self):
        self.name = 'fwbench-' + uuid.uuid4().hex[:6]
        subprocess.run(['ip', 'netns', 'add', self.name], check=True)

    def run(self, args, data=None, check_rc=False):
        proc = subprocess.run(['ip', 'netns', 'exec', self.name] + list(args), input=data,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def close(self):
        subprocess.run(['ip', 'netns', 'del', self.name], check=False)


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def report(lines, out=None):
    """Print the table, and write it to ``out`` for docs/performance.md."""
    text = '\n'.join(lines)
    print(text)
    if out:
        with open(out, 'w') as handle:
            handle.write(text + '\n')


def median(values):
    # The mean of the middle two for an even count (statistics.median).
    return statistics.median(values)


def engine(ns, state_dir, path):
    adapter = IpsetAdapter(ns.run, 'ipset', 'bench')
    store = StateStore(state_dir, 'ipset', 'bench')
    return sync_set(adapter, store, Entries.read(path))


def bench_size(count, workdir):
    entries = make_entries(count, seed=count)
    other = make_entries(count, seed=count + 1, half=1)
    path = os.path.join(workdir, 'entries.txt')

    def write(lines):
        with open(path, 'w') as handle:
            handle.write('\n'.join(lines) + '\n')

    ns = Netns()
    try:
        maxelem, hashsize = size_for(count)
        raw_file = os.path.join(workdir, 'raw.restore')
        with open(raw_file, 'w') as handle:
            handle.write('create raw hash:net family inet hashsize %d maxelem %d\n' % (hashsize, maxelem))
            handle.write(''.join('add raw %s\n' % e for e in entries))
        raw, _peak = timed(lambda: ns.run(['ipset', 'restore', '-file', raw_file]))
        ns.run(['ipset', 'destroy', 'raw'])

        state_dir = os.path.join(workdir, 'state')
        write(entries)
        load, r = timed(lambda: engine(ns, state_dir, path))
        assert r['total'] == count and r['added'] == count, r
        noop, r = timed(lambda: engine(ns, state_dir, path))
        assert not r['changed'], r
        changed = entries[:]
        n = count // 100
        changed[:n] = other[:n]
        write(changed)
        one_pct, r = timed(lambda: engine(ns, state_dir, path))
        assert (r['added'], r['removed'], r['full_reload']) == (n, n, False), r
        write(other)
        reload_, r = timed(lambda: engine(ns, state_dir, path))
        assert r['full_reload'] and r['total'] == count, r

        sample = entries[:1000]
        ns.run(['ipset', 'create', 'naive', 'hash:net', 'maxelem', str(maxelem)])
        naive, _peak = timed(lambda: [ns.run(['ipset', 'add', 'naive', e]) for e in sample])
        naive_total = naive / len(sample) * count
    finally:
        ns.close()
    return {'count': count, 'raw': raw, 'load': load, 'reload': reload_, 'noop': noop,
            'one_pct': one_pct, 'naive_1000': naive, 'naive_total': naive_total}


def process_size(count, workdir, repeat, persist=False, collections=None):
    """The module as a host runs it, beside raw ipset, ``repeat`` rounds in one namespace.

    Each round: raw load, the module's first load, its no-op, the raw 1%,
    the module's 1%; raw and module alternate, so a busy spell of the
    machine falls on both.  Returns each figure's runs.
    """
    entries = make_entries(count, seed=count)
    other = make_entries(count, seed=count + 1, half=1)
    n = count // 100
    changed = other[:n] + entries[n:]
    files = {'load': os.path.join(workdir, 'entries.txt'), 'one_pct': os.path.join(workdir, 'changed.txt')}
    for key, lines in (('load', entries), ('one_pct', changed)):
        with open(files[key], 'w') as handle:
            handle.write('\n'.join(lines) + '\n')
    maxelem, hashsize = size_for(count)
    raw_load = os.path.join(workdir, 'raw.restore')
    with open(raw_load, 'w') as handle:
        handle.write('create raw hash:net family inet hashsize %d maxelem %d\n' % (hashsize, maxelem))
        handle.write(IpsetAdapter._batch('add', 'raw', entries))
    raw_change = os.path.join(workdir, 'raw-change.restore')
    with open(raw_change, 'w') as handle:
        handle.write(IpsetAdapter._batch('add', 'raw', other[:n]) + IpsetAdapter._batch('del', 'raw', entries[:n]))
    state_dir = os.path.join(workdir, 'state-process')
    runs = {key: [] for key in ('raw', 'load', 'noop', 'raw_one_pct', 'one_pct')}
    ns = Netns()
    prefix = ['ip', 'netns', 'exec', ns.name]

    module = whole_process.module_runner(prefix, 'ipset_sync', {'name': 'bench', 'state_dir': state_dir}, workdir,
                                         collections, os.path.join(state_dir, 'save', 'bench.save') if persist else None)
    try:
        for _round in range(repeat):
            shutil.rmtree(state_dir, ignore_errors=True)
            runs['raw'].append(whole_process.run_raw(prefix, ['ipset', 'restore', '-file', raw_load]))
            whole_process.first_load_and_noop(runs, module, files['load'], count)
            runs['raw_one_pct'].append(whole_process.run_raw(prefix, ['ipset', '-exist', 'restore', '-file', raw_change]))
            runs['one_pct'].append(module(files['one_pct']))
            result = runs['one_pct'][-1]['result']
            assert (result['added'], result['removed'], result['full_reload']) == (n, n, False), result
            for name in ('raw', 'bench'):
                ns.run(['ipset', 'destroy', name])
    finally:
        ns.close()
        shutil.rmtree(state_dir, ignore_errors=True)
    return runs


def process_table(rows, repeat, persist):
    """The whole-process rows: medians (min-max) of ``repeat`` rounds, ratios of the medians."""
    lines = ['Whole `python -m` processes of ipset_sync%s, medians (min-max) of %d rounds; raw and module runs '
             'interleaved; peak is the resident set of the process tree, sampled every %d ms.'
             % (' with persist_file' if persist else '', repeat, whole_process.SAMPLE_SECONDS * 1000), '',
             '| entries | raw `ipset restore` | first load | ratio | CPU s raw / first load | peak MB raw / module | no-op '
             '| raw 1% (`ipset -exist restore`) | 1% change |',
             '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    for count, runs in rows:
        cell = {}
        for key in runs:
            cell[key] = '%.2f s (%.2f-%.2f)' % whole_process.summary(runs[key], 'seconds')
        raw, load = (whole_process.summary(runs[key], 'seconds')[0] for key in ('raw', 'load'))
        peaks = [whole_process.summary(runs[key], 'peak_kb')[0] / 1024.0 for key in ('raw', 'load')]
        cpu = [whole_process.summary(runs[key], 'cpu')[0] for key in ('raw', 'load')]
        lines.append('| {:,} | {raw} | {load} | **{:.2f}x** | {:.2f} / {:.2f} | {:.0f} / {:.0f} | {noop} | {raw_one_pct} '
                     '| {one_pct} |'.format(count, load / raw, cpu[0], cpu[1], peaks[0], peaks[1], **cell))
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', default='100000,1000000')
    parser.add_argument('--repeat', type=int, default=3, help='runs per size; the median of each figure is shown')
    parser.add_argument('--mode', default='engine,process',
                        help='engine (in this process), process (whole module processes), or both')
    parser.add_argument('--persist', action='store_true', help='process mode: with persist_file, as the roles run it')
    parser.add_argument('--collections', help='process mode: time the modules of this directory (holding '
                        'ansible_collections/fleetwall/blocklist), e.g. a checkout of the commit before a change')
    parser.add_argument('--out')
    args = parser.parse_args()
    modes = args.mode.split(',')
    sizes = [int(s) for s in args.sizes.split(',')]
    before = whole_process.loadavg()
    rows, process_rows = [], []
    with tempfile.TemporaryDirectory() as workdir:
        for size in sizes:
            if 'engine' in modes:
                runs = [bench_size(size, workdir) for _repeat in range(args.repeat)]
                rows.append({k: median([r[k] for r in runs]) for k in runs[0]})
            if 'process' in modes:
                runs = process_size(size, workdir, args.repeat, args.persist, args.collections)
                process_rows.append((size, runs))
    lines = []
    if process_rows:
        lines += process_table(process_rows, args.repeat, args.persist) + ['']
    lines += ['/proc/loadavg before: %s, after: %s' % (before, whole_process.loadavg()), '']
    if not rows:
        report(lines, args.out)
        return
    lines += ['Median of %d runs each; ratios are against raw `ipset restore` in the same run.' % args.repeat, '',
              '| entries | raw `ipset restore` | engine: load | ratio | engine: full reload (swap) | ratio '
              '| no-op | 1% change | naive `ipset add` loop (1,000 measured, extrapolated) |',
              '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    for r in rows:
        lines.append('| {count:,} | {raw:.2f} s | {load:.2f} s | {lr:.2f}x | {reload:.2f} s | {rr:.2f}x | '
                     '{noop:.3f} s | {one_pct:.3f} s | {naive_1000:.2f} s per 1,000 -> {naive_total:,.0f} s |'
                     .format(lr=r['load'] / r['raw'], rr=r['reload'] / r['raw'], **r))
    report(lines, args.out)


if __name__ == '__main__':
    main()
