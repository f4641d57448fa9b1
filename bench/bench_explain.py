"""Benchmark: explain's answer at a million provenance lines, as the lookup pays it.

A shadow copy is built from one feed of a million distinct addresses and networks (as bench_ipset.py makes them),
then ``explain`` is asked about a listed address, an address inside a listed network, an unlisted one, and a /8
(the most lines inside a query), each timed as the median of --repeat calls in this process. The brute force a
``zgrep -F`` stands for (decompress and test every line for containment) is timed beside it, in the same run.

Usage: .venv/bin/python bench/bench_explain.py [--size 1000000] [--repeat 5]
"""
import argparse
import gzip
import ipaddress
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, '.collections'))
sys.path.insert(0, os.path.join(ROOT, 'bench'))

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.explain import (  # noqa: E402
    explain,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (  # noqa: E402
    build_shadow_copy,
)
from bench_ipset import make_entries  # noqa: E402


def timed(fn, repeat):
    runs = []
    for _round in range(repeat):
        start = time.perf_counter()
        value = fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), value


def brute(root, query):
    wanted = ipaddress.ip_network(query)
    with gzip.open(os.path.join(root, 'current', 'provenance.tsv.gz'), 'rt') as handle:
        return [line for line in handle if not line.startswith('#')
                and ipaddress.ip_network(line.split('\t', 1)[0]).overlaps(wanted)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=int, default=1000000)
    parser.add_argument('--repeat', type=int, default=5)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix='fleetwall-bench-explain-')
    entries = make_entries(args.size, seed=args.size)
    feed = os.path.join(work, 'feed.txt')
    with open(feed, 'w') as handle:
        handle.write('\n'.join(entries) + '\n')
    root = os.path.join(work, 'copy')
    build_shadow_copy(root, [{'name': 'big', 'path': feed}])
    listed = next(e for e in entries if '/' not in e)
    network = next(e for e in entries if '/' in e)
    inside = str(ipaddress.ip_network(network)[5])
    queries = [('listed address', listed), ('inside a listed network', inside), ('unlisted', '9.9.9.9'),
               ('a /8', '%s.0.0.0/8' % listed.split('.')[0])]
    print('| query | explain | verdict | brute force (one pass over the provenance) |')
    print('| --- | ---: | --- | ---: |')
    for label, query in queries:
        seconds, answer = timed(lambda: explain(root, query), args.repeat)
        brute_seconds, _rows = timed(lambda: brute(root, query), 1)
        print('| %s (`%s`) | %.3f s | %s | %.1f s |' % (label, query, seconds, answer['verdict'], brute_seconds))
    with open('/proc/loadavg') as handle:
        print('\n/proc/loadavg after: %s' % ' '.join(handle.read().split()[:3]))
    import shutil
    shutil.rmtree(work)


if __name__ == '__main__':
    main()
