"""Benchmark: country and ASN sources (issue 22) against a plain list of as many lines, whole process.

Each case is one `python -c` process that builds a shadow copy (build_shadow_copy, provenance on, as the role
runs it) from one feed file of N rows, so that the time is what the controller pays: interpreter start, imports,
read, parse, select, merge, write. The baseline is the same build over a plain list of N lines (one address a
line, the format the other feeds' speed is measured with). Synthetic inputs, seeded:

  plain        N bare IPv4 addresses, one a line
  ip2asn-asns  an ip2asn table of N contiguous ranges over 40,000 ASNs and 200 countries, 200 ASNs selected
               (what asns_from gives with Spamhaus ASN-DROP's ~200 ASNs)
  ip2asn-cc    the same table, one country of 200 selected
  rir-cc       a delegated-extended file of N IPv4 rows (counts not powers of two), one country of 200 selected

Usage: .venv/bin/python bench/bench_geo.py [--rows 500000] [--repeat 3] [--out FILE]
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, '.collections')
COUNTRIES = [chr(65 + n // 26) + chr(65 + n % 26) for n in range(200)]      # AA .. HR

BUILD = '''
import sys
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import \\
    build_shadow_copy
feed = dict(name='bench', path=sys.argv[2], **__import__('json').loads(sys.argv[3]))
result = build_shadow_copy(sys.argv[1], [feed])
assert result['published'], result.get('withheld')
'''


def quad(value):
    return '%d.%d.%d.%d' % (value >> 24, value >> 16 & 255, value >> 8 & 255, value & 255)


def make_inputs(directory, rows, seed=22):
    """(plain, ip2asn, rir) paths; the ranges tile 1.0.0.0 upwards, each 1..2048 addresses long."""
    rng = random.Random(seed)
    plain, table, rir = [], [], ['2|bench|20261206|%d|19700101|20261206|+0000' % rows,
                                 'bench|*|ipv4|*|%d|summary' % rows]
    start = 1 << 24
    for _row in range(rows):
        size = rng.randint(1, 2048)
        asn, country = rng.randint(1, 40000), COUNTRIES[rng.randrange(len(COUNTRIES))]
        plain.append(quad(start))
        table.append('%s\t%s\t%d\t%s\tAS-%d' % (quad(start), quad(start + size - 1), asn, country, asn))
        rir.append('bench|%s|ipv4|%s|%d|20261206|allocated|x' % (country, quad(start), size))
        start += size
    paths = []
    for name, lines in (('plain.txt', plain), ('ip2asn.tsv', table), ('delegated.txt', rir)):
        path = os.path.join(directory, name)
        with open(path, 'w') as handle:
            handle.write('\n'.join(lines) + '\n')
        paths.append(path)
    return paths


def timed_build(directory, path, options):
    copy = tempfile.mkdtemp(dir=directory)
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    started = time.monotonic()
    subprocess.run([sys.executable, '-c', BUILD, copy, path, json.dumps(options)], check=True, env=env)
    elapsed = time.monotonic() - started
    shutil.rmtree(copy)
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--rows', type=int, default=500000)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--out')
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix='bench-geo-')
    try:
        plain, table, rir = make_inputs(directory, args.rows)
        asns = sorted(random.Random(7).sample(range(1, 40001), 200))
        cases = [('plain', plain, {'format': 'plain'}),
                 ('ip2asn-asns', table, {'format': 'ip2asn', 'asns': asns}),
                 ('ip2asn-cc', table, {'format': 'ip2asn', 'countries': [COUNTRIES[0]]}),
                 ('rir-cc', rir, {'format': 'rir_delegated', 'countries': [COUNTRIES[0]]})]
        times = {name: [] for name, _path, _options in cases}
        for _round in range(args.repeat):
            for name, path, options in cases:
                times[name].append(timed_build(directory, path, options))
        base = statistics.median(times['plain'])
        report = {'rows': args.rows, 'repeat': args.repeat, 'median_seconds': {}, 'ratio_to_plain': {}}
        for name, _path, _options in cases:
            median = statistics.median(times[name])
            report['median_seconds'][name] = round(median, 3)
            report['ratio_to_plain'][name] = round(median / base, 2)
            print('%-12s %7.3f s  %5.2fx the plain list' % (name, median, median / base))
        if args.out:
            with open(args.out, 'w') as handle:
                json.dump(report, handle, indent=1)
    finally:
        shutil.rmtree(directory)


if __name__ == '__main__':
    main()
