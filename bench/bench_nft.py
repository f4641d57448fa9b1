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

Usage: .venv/bin/python bench/bench_nft.py [--sizes 100000,1000000] [--out FILE]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.backend_nft import NftAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import (
    StateStore, read_entries_source, sync_set)

start = time.perf_counter()
adapter = NftAdapter(run, 'nft', 'bench', 'hosts', interval=%(interval)r)
store = StateStore(%(state)r, 'nft', 'hosts')
lines, sha, raw = read_entries_source(%(path)r)
result = sync_set(adapter, store, lines, sha, raw)
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
    parser.add_argument('--out')
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit('bench_nft.py needs root (network namespaces)')
    workdir = tempfile.mkdtemp(prefix='fleetwall-bench-nft-')
    results = [bench_size(int(size), workdir) for size in args.sizes.split(',')]
    text = table(results)
    print(text)
    if args.out:
        with open(args.out, 'w') as handle:
            json.dump({'results': results, 'table': text}, handle, indent=1)


if __name__ == '__main__':
    main()
