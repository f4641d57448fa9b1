"""Benchmark: nft_set_sync's engine against raw nft, in one run, on this machine.

Everything runs in a private network namespace, and every measurement in a
fresh interpreter (as the module does), so peak memory is that of one run:
the Python process (its own maxrss) plus the largest nft process it starts
(GNU time's maximum resident set size of each nft call).

For each size, with the same pre-merged entries (single addresses, as the
shadow copy's hosts set holds them; the role puts networks in a separate,
much smaller interval set):

  raw load     nft -f of 'add table/set' and one 'add element' of every entry
  load         the engine loading an empty host (read file, validate, nft -f)
  noop         the engine with nothing to change (record + 'nft -t list sets')
  1% raw       nft -f adding and deleting 1% of the entries, one call
  1%           the engine replacing 1% of the entries
  full reload  the engine replacing every entry of the live set (one transaction)
and, for context, raw loads of the same count into an interval set.

With --mode process (the default runs both), the module as a host runs it:
whole 'python -m' processes of nft_set_sync with their arguments file (see
whole_process.py), the plain set of single addresses the role makes (interval
false, select hosts), interleaved with raw nft processes of the same elements
into the same kind of set:
  raw load         one nft -f of the whole list (one transaction)
  raw in parts     nft -f of 20,000 elements at a time, one process each, as
                   the module fills a new plain set (context: the tool's floor)
  first load       nft_set_sync on a host without the set or a record
  no-op            nft_set_sync with nothing to change
  1% raw / 1%      the same 1% of deletes and adds, raw in one nft -f

Usage: .venv/bin/python bench/bench_nft.py [--sizes 100000,1000000] [--mode engine,process] [--repeat 3] [--persist] [--out FILE]
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import uuid

import whole_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The module fills a new plain set this many elements a transaction (backend_nft.LOAD_CHUNK).
LOAD_CHUNK = 20000

# Peak memory of each nft process comes from GNU time (%%M): RUSAGE_CHILDREN
# would count the forked copy of this Python process before it execs nft.
MEASURE = """
import os, subprocess, tempfile
NFT_PEAK = [0]

def run(args, data=None):
    fd, path = tempfile.mkstemp()
    os.close(fd)
    proc = subprocess.run(['/usr/bin/time', '-f', '%%M', '-o', path] + list(args), input=data,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with open(path) as handle:
        NFT_PEAK[0] = max(NFT_PEAK[0], int(handle.read().split()[-1]))
    os.unlink(path)
    return proc.returncode, proc.stdout, proc.stderr
"""

ENGINE = MEASURE + """
import json, resource, sys, time
sys.path.insert(0, %(collections)r)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nft import NftAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import (
    Entries, StateStore, sync_set)

start = time.perf_counter()
adapter = NftAdapter(run, 'nft', 'bench', 'hosts', interval=%(interval)r)
store = StateStore(%(state)r, 'nft', 'hosts')
result = sync_set(adapter, store, Entries.read(%(path)r))
seconds = time.perf_counter() - start
print(json.dumps({'seconds': seconds, 'result': {k: result.get(k) for k in ('changed', 'added', 'removed', 'total')},
                  'self_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  'children_kb': NFT_PEAK[0]}))
"""

RAW = MEASURE + """
import json, sys, time
start = time.perf_counter()
rc, out, err = run(['nft', '-f', %(path)r])
seconds = time.perf_counter() - start
assert rc == 0, err[:500]
print(json.dumps({'seconds': seconds, 'self_kb': 0, 'children_kb': NFT_PEAK[0]}))
"""


def make_hosts(count, seed):
    rng = random.Random(seed)
    values = rng.sample(range(1 << 24, 223 << 24), count)
    return ['%d.%d.%d.%d' % (v >> 24, v >> 16 & 255, v >> 8 & 255, v & 255) for v in values]


class Netns(object):
    def __init__(self):
        self.name = 'fwbnft-' + uuid.uuid4().hex[:6]
        subprocess.run(['ip', 'netns', 'add', self.name], check=True)

    def python(self, code):
        out = subprocess.run(['ip', 'netns', 'exec', self.name, sys.executable, '-c', code],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        return json.loads(out)

    def nft(self, *args):
        subprocess.run(['ip', 'netns', 'exec', self.name, 'nft'] + list(args), check=True)

    def close(self):
        subprocess.run(['ip', 'netns', 'del', self.name], check=False)


def write(path, text):
    with open(path, 'w') as handle:
        handle.write(text)


def elements(verb, ref, entries):
    return ''.join('%s element %s { %s }\n' % (verb, ref, ', '.join(entries[i:i + 50000]))
                   for i in range(0, len(entries), 50000))


def bench_size(count, workdir):
    entries = make_hosts(count, seed=count)
    entries_file = os.path.join(workdir, 'entries.txt')
    state = os.path.join(workdir, 'state-%d' % count)
    collections = os.path.join(ROOT, '.collections')
    out = {'count': count}
    ns = Netns()
    try:
        raw_file = os.path.join(workdir, 'raw.nft')
        write(raw_file, 'add table inet raw\nadd set inet raw hosts { type ipv4_addr; }\n'
              + elements('add', 'inet raw hosts', entries))
        out['raw_load'] = ns.python(RAW % {'path': raw_file})

        write(entries_file, '\n'.join(entries) + '\n')
        params = {'collections': collections, 'state': state, 'path': entries_file, 'interval': False}
        out['load'] = ns.python(ENGINE % params)
        assert out['load']['result']['added'] == count, out['load']
        out['noop'] = ns.python(ENGINE % params)
        assert not out['noop']['result']['changed'], out['noop']

        n = count // 100
        present = set(entries)
        fresh = [e for e in make_hosts(2 * n, seed=count + 7) if e not in present][:n]
        changed = entries[n:] + fresh
        # Raw: the same 1% as one nft call on the raw set.
        one_pct = os.path.join(workdir, 'one_pct.nft')
        write(one_pct, elements('delete', 'inet raw hosts', entries[:n]) + elements('add', 'inet raw hosts', fresh))
        out['one_pct_raw'] = ns.python(RAW % {'path': one_pct})
        write(entries_file, '\n'.join(changed) + '\n')
        out['one_pct'] = ns.python(ENGINE % params)
        assert (out['one_pct']['result']['added'], out['one_pct']['result']['removed']) == (len(fresh), n)
        # A full reload of the live set (every entry replaced): one transaction, by design.
        write(entries_file, '\n'.join(make_hosts(count, seed=count + 11)) + '\n')
        out['reload'] = ns.python(ENGINE % params)
        assert out['reload']['result']['changed'], out['reload']
        ns.nft('delete', 'table', 'inet', 'raw')
        ns.nft('delete', 'table', 'inet', 'bench')

        # Context: the same count as a single interval set, raw.
        interval_file = os.path.join(workdir, 'interval.nft')
        write(interval_file, 'add table inet iv\nadd set inet iv s { type ipv4_addr; flags interval; }\n'
              + elements('add', 'inet iv s', sorted(entries, key=lambda e: tuple(int(x) for x in e.split('.')))))
        out['raw_load_interval'] = ns.python(RAW % {'path': interval_file})
    finally:
        ns.close()
    return out


def process_size(count, workdir, repeat, persist=False, collections=None):
    """The module as a host runs it, beside raw nft, ``repeat`` rounds in one namespace.

    Each round: raw load (one transaction), raw load in parts, the module's
    first load, its no-op, the raw 1%, the module's 1%; raw and module
    alternate, so a busy spell of the machine falls on both.
    """
    entries = make_hosts(count, seed=count)
    n = count // 100
    present = set(entries)
    fresh = [e for e in make_hosts(2 * n, seed=count + 7) if e not in present][:n]
    files = {'load': os.path.join(workdir, 'entries.txt'), 'one_pct': os.path.join(workdir, 'changed.txt')}
    write(files['load'], '\n'.join(entries) + '\n')
    write(files['one_pct'], '\n'.join(entries[n:] + fresh) + '\n')
    head = 'add table inet raw\nadd set inet raw hosts { type ipv4_addr; }\n'
    raw_file = os.path.join(workdir, 'raw.nft')
    write(raw_file, head + elements('add', 'inet raw hosts', entries))
    parts = [os.path.join(workdir, 'raw-part-%d.nft' % i) for i in range(0, count, LOAD_CHUNK)]
    for index, path in enumerate(parts):
        start = index * LOAD_CHUNK
        write(path, (head if index == 0 else '') + elements('add', 'inet raw hosts', entries[start:start + LOAD_CHUNK]))
    one_pct = os.path.join(workdir, 'one_pct.nft')
    write(one_pct, elements('delete', 'inet raw hosts', entries[:n]) + elements('add', 'inet raw hosts', fresh))
    state_dir = os.path.join(workdir, 'state-process')
    runs = {key: [] for key in ('raw', 'raw_parts', 'load', 'noop', 'raw_one_pct', 'one_pct')}
    ns = Netns()
    prefix = ['ip', 'netns', 'exec', ns.name]

    base_args = {'name': 'hosts', 'table': 'bench', 'interval': False, 'select': 'hosts', 'state_dir': state_dir}
    module = whole_process.module_runner(prefix, 'nft_set_sync', base_args, workdir, collections,
                                         os.path.join(state_dir, 'save', 'hosts.nft') if persist else None)
    try:
        for _round in range(repeat):
            shutil.rmtree(state_dir, ignore_errors=True)
            runs['raw_parts'].append(raw_in_parts(prefix, parts))
            ns.nft('delete', 'table', 'inet', 'raw')
            runs['raw'].append(whole_process.run_raw(prefix, ['nft', '-f', raw_file]))
            whole_process.first_load_and_noop(runs, module, files['load'], count)
            runs['raw_one_pct'].append(whole_process.run_raw(prefix, ['nft', '-f', one_pct]))
            runs['one_pct'].append(module(files['one_pct']))
            result = runs['one_pct'][-1]['result']
            assert (result['added'], result['removed']) == (len(fresh), n), result
            ns.nft('delete', 'table', 'inet', 'raw')
            ns.nft('delete', 'table', 'inet', 'bench')
    finally:
        ns.close()
        shutil.rmtree(state_dir, ignore_errors=True)
    return runs


def raw_in_parts(prefix, parts):
    """One nft process per part, one after the other, as the module loads a new plain set: wall time of all,
    and the largest process tree seen."""
    runs = [whole_process.run_raw(prefix, ['nft', '-f', path]) for path in parts]
    return {'seconds': sum(run['seconds'] for run in runs), 'cpu': sum(run['cpu'] for run in runs),
            'peak_kb': max(run['peak_kb'] for run in runs)}


def process_table(rows, repeat, persist=False):
    """The whole-process rows: medians (min-max) of ``repeat`` rounds, ratios of the medians."""
    lines = ['Whole `python -m` processes of nft_set_sync (plain set, select hosts%s), medians (min-max) of %d rounds; '
             'raw and module runs interleaved; peak is the resident set of the process tree, sampled every %d ms.'
             % (', persist_file' if persist else '', repeat, whole_process.SAMPLE_SECONDS * 1000), '',
             '| entries | raw `nft -f`, one transaction | raw in parts of %d | first load | ratio to raw | ratio to '
             'raw in parts | CPU s raw / in parts / first load | peak MB raw / module | no-op | raw 1%% | 1%% change |'
             % LOAD_CHUNK,
             '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    for count, runs in rows:
        cell = dict((key, '%.2f s (%.2f-%.2f)' % whole_process.summary(runs[key], 'seconds')) for key in runs)
        raw, parts, load = (whole_process.summary(runs[key], 'seconds')[0] for key in ('raw', 'raw_parts', 'load'))
        peaks = [whole_process.summary(runs[key], 'peak_kb')[0] / 1024.0 for key in ('raw', 'load')]
        cpu = '%.2f / %.2f / %.2f' % tuple(whole_process.summary(runs[key], 'cpu')[0] for key in ('raw', 'raw_parts', 'load'))
        lines.append('| {:,} | {raw} | {raw_parts} | {load} | **{:.2f}x** | {:.2f}x | {} | {:.0f} / {:.0f} | {noop} | '
                     '{raw_one_pct} | {one_pct} |'.format(count, load / raw, load / parts, cpu, peaks[0], peaks[1], **cell))
    return '\n'.join(lines)


def table(results):
    lines = ['| entries | raw nft -f load | engine load | ratio (time) | raw peak MB | engine peak MB '
             '(python + nft) | ratio (memory) | no-op | 1% raw nft | 1% engine | full reload (peak MB) | '
             'raw interval-set load |',
             '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for r in results:
        raw_mb = r['raw_load']['children_kb'] / 1024.0
        engine_mb = (r['load']['self_kb'] + r['load']['children_kb']) / 1024.0
        lines.append('| {:,} | {:.2f} s | {:.2f} s | {:.2f} | {:.0f} | {:.0f} ({:.0f} + {:.0f}) | {:.2f} | {:.3f} s | '
                     '{:.2f} s | {:.2f} s | {:.2f} s ({:.0f}) | {:.2f} s |'.format(
                         r['count'], r['raw_load']['seconds'], r['load']['seconds'],
                         r['load']['seconds'] / r['raw_load']['seconds'], raw_mb, engine_mb,
                         r['load']['self_kb'] / 1024.0, r['load']['children_kb'] / 1024.0, engine_mb / raw_mb,
                         r['noop']['seconds'], r['one_pct_raw']['seconds'], r['one_pct']['seconds'],
                         r['reload']['seconds'], (r['reload']['self_kb'] + r['reload']['children_kb']) / 1024.0,
                         r['raw_load_interval']['seconds']))
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', default='100000,1000000')
    parser.add_argument('--mode', default='engine,process',
                        help='engine (in a fresh interpreter), process (whole module processes), or both')
    parser.add_argument('--repeat', type=int, default=3, help='process mode: rounds per size, medians shown')
    parser.add_argument('--persist', action='store_true', help='process mode: with persist_file, as the role runs it')
    parser.add_argument('--collections', help='process mode: time the modules of this directory (holding '
                        'ansible_collections/fleetwall/blocklist), e.g. a checkout of the commit before a change')
    parser.add_argument('--out')
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit('bench_nft.py needs root (network namespaces)')
    modes = args.mode.split(',')
    before = whole_process.loadavg()
    workdir = tempfile.mkdtemp(prefix='fleetwall-bench-nft-')
    try:
        sizes = [int(size) for size in args.sizes.split(',')]
        process = [(size, process_size(size, workdir, args.repeat, args.persist, args.collections))
                   for size in sizes] if 'process' in modes else []
        results = [bench_size(size, workdir) for size in sizes] if 'engine' in modes else []
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    parts = [process_table(process, args.repeat, args.persist)] if process else []
    parts += [table(results)] if results else []
    parts.append('/proc/loadavg before: %s, after: %s' % (before, whole_process.loadavg()))
    text = '\n\n'.join(parts)
    print(text)
    if args.out:
        with open(args.out, 'w') as handle:
            json.dump({'results': results, 'process': process, 'table': text}, handle, indent=1)


if __name__ == '__main__':
    main()
