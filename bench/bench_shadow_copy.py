"""Benchmark: building the shadow copy from 1M raw entries, beside netaddr.cidr_merge.

One synthetic feed file of N raw lines as feeds look before aggregation:
90 % bare IPv4 addresses (with duplicates), 10 % CIDRs /20../28, some of them
overlapping.  Measured, in one run, on the same input:

  build        build_shadow_copy: read, parse, validate, refuse, merge, subtract
               a 100-entry allowlist, write the generation, with provenance
               (the default; forked beside the merge)
  build-noprov the same without provenance
  build-aws    the default build plus AWS's whole ip-ranges.json (10,666 IPv4 and 6,160 IPv6 prefixes, the real
               file of tests/data/feeds/allow) as an allow source, subtracted from every tier: the goal is at most
               10 % more than build
  build-fleet  the default build plus a fail2ban harvest: 1,000 bans from 100
               hosts merged as the fleet-local feed (which costs a second
               merge, of the feeds alone, for the shrink and empty guards)
  parse        parse_feed alone
  cidr_merge   netaddr.cidr_merge over the same lines (strings in, as a user
               would call it), which does only the merge
  collapse     ipaddress.collapse_addresses (only with --with-ipaddress: ~90 s)

Peak resident memory (MiB) is reported for both builds, and for the forked
provenance writer (whose pages are mostly shared with the build's).

Usage: .venv/bin/python bench/bench_shadow_copy.py [--size 1000000] [--repeat 3] [--out FILE]
       .venv/bin/python bench/bench_shadow_copy.py --size 10000000 --repeat 3 --build-only
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_feed(path, size, seed=1):
    rng = random.Random(seed)
    seen = []
    with open(path, 'w') as handle:
        for index in range(size):
            if seen and rng.random() < 0.02:
                handle.write(rng.choice(seen) + '\n')      # duplicates, as merged feeds have
                continue
            value = rng.randrange(1 << 24, 223 << 24)
            if rng.random() < 0.9:
                line = '%d.%d.%d.%d' % (value >> 24, value >> 16 & 255, value >> 8 & 255, value & 255)
            else:
                prefix = rng.choice((20, 22, 24, 26, 28))
                value &= ~((1 << (32 - prefix)) - 1) & 0xffffffff
                line = '%d.%d.%d.%d/%d' % (value >> 24, value >> 16 & 255, value >> 8 & 255, value & 255, prefix)
            if index % 1000 == 0:
                seen.append(line)
            handle.write(line + '\n')


# Each measurement runs in a fresh interpreter, as the module does: no heap
# left over from another measurement (netaddr's million objects, say) to
# slow the collector or a fork.
SNIPPETS = {
    'build': """
import resource
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import build_shadow_copy
start = time.perf_counter()
result = build_shadow_copy(root, [{'name': 'big', 'path': feed, 'max_entries': max_entries}], allowlist=allowlist,
                           provenance=provenance)
seconds = time.perf_counter() - start
# Peak resident memory of this process (the build) and of its forked provenance writer, in MiB.
print(json.dumps({'seconds': seconds, 'entries': result['entries']['v4'],
                  'peak_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                  'child_peak_mib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0}))
""",
    'build_aws': """
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import build_shadow_copy
start = time.perf_counter()
result = build_shadow_copy(root, [{'name': 'big', 'path': feed, 'max_entries': max_entries}], allowlist=allowlist,
                           provenance=True, allow_feeds=[{'name': 'aws', 'path': aws, 'format': 'json',
                           'query': '[prefixes[*].ip_prefix, ipv6_prefixes[*].ipv6_prefix][]'}])
print(json.dumps({'seconds': time.perf_counter() - start, 'entries': result['entries']['v4'],
                  'aws_removed': result['allow_feeds'][0]['addresses_removed'],
                  'aws_networks': result['allow_feeds'][0]['networks']}))
""",
    'build_fleet': """
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import build_shadow_copy
harvest = {'host%d' % h: [{'address': '198.51.%d.%d' % (h % 100, b), 'jail': 'sshd', 'banned_at': 1795440000}
                          for b in range(1, 11)] for h in range(100)}
start = time.perf_counter()
result = build_shadow_copy(root, [{'name': 'big', 'path': feed, 'max_entries': max_entries}], allowlist=allowlist,
                           fleet_local={'harvest': harvest})
print(json.dumps({'seconds': time.perf_counter() - start, 'entries': result['entries']['v4'],
                  'fleet_local': result['fleet_local']['accepted']}))
""",
    'parse': """
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.feeds import parse_feed
with open(feed, 'rb') as handle:
    body = handle.read()
start = time.perf_counter()
parse_feed(body, max_entries=max_entries)
print(json.dumps({'seconds': time.perf_counter() - start}))
""",
    'cidr_merge': """
import netaddr
with open(feed) as handle:
    lines = handle.read().split()
start = time.perf_counter()
merged = netaddr.cidr_merge(lines)
print(json.dumps({'seconds': time.perf_counter() - start, 'entries': len(merged)}))
""",
    'collapse': """
with open(feed) as handle:
    lines = handle.read().split()
start = time.perf_counter()
merged = list(ipaddress.collapse_addresses(ipaddress.ip_network(line) for line in lines))
print(json.dumps({'seconds': time.perf_counter() - start, 'entries': len(merged)}))
""",
}


def measure(what, **params):
    code = ('import json, sys, time\nsys.path.insert(0, %r)\n' % os.path.join(ROOT, '.collections')
            + ''.join('%s = %r\n' % item for item in params.items()) + SNIPPETS[what])
    out = subprocess.run([sys.executable, '-c', code], check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=int, default=1000000)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--with-ipaddress', action='store_true')
    parser.add_argument('--build-only', action='store_true',
                        help='only the two builds (with and without provenance): for sizes where cidr_merge '
                             'takes minutes and gigabytes')
    parser.add_argument('--out')
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix='fleetwall-bench-')
    try:
        feed = os.path.join(work, 'feed.txt')
        make_feed(feed, args.size)
        allowlist = ['%d.%d.0.0/16' % (10 + i, i) if i % 2 else '%d.%d.7.9' % (20 + i, i) for i in range(100)]
        allowlist = [a for a in allowlist if not a.startswith('10.')]
        # A feed this size is real here: its max_entries is raised, as the docs tell an operator to.
        max_entries = max(2 * args.size, 2000000)
        times = {'build': [], 'build-noprov': [], 'build-aws': [], 'build-fleet': [], 'parse': [], 'cidr_merge': [],
                 'collapse': []}
        aws = os.path.join(ROOT, 'tests', 'data', 'feeds', 'allow', 'aws-ip-ranges.json')
        aws_removed = None
        peaks = {'build': [], 'build-noprov': [], 'build-provenance-child': []}
        entries = merged = None
        for _repeat in range(args.repeat):
            for label, provenance in (('build', True), ('build-noprov', False)):
                root = os.path.join(work, 'copy')
                shutil.rmtree(root, ignore_errors=True)
                got = measure('build', root=root, feed=feed, allowlist=allowlist, provenance=provenance,
                              max_entries=max_entries)
                times[label].append(got['seconds'])
                peaks[label].append(got['peak_mib'])
                if provenance:
                    peaks['build-provenance-child'].append(got['child_peak_mib'])
                entries = got['entries']
            root = os.path.join(work, 'copy')
            shutil.rmtree(root, ignore_errors=True)
            got = measure('build_aws', root=root, feed=feed, allowlist=allowlist, aws=aws, max_entries=max_entries)
            times['build-aws'].append(got['seconds'])
            aws_removed = {'addresses': got['aws_removed'], 'aws_networks': got['aws_networks'],
                           'entries_after': got['entries']}
            if args.build_only:
                continue
            root = os.path.join(work, 'copy')
            shutil.rmtree(root, ignore_errors=True)
            times['build-fleet'].append(measure('build_fleet', root=root, feed=feed, allowlist=allowlist,
                                                max_entries=max_entries)['seconds'])
            times['parse'].append(measure('parse', feed=feed, max_entries=max_entries)['seconds'])
            got = measure('cidr_merge', feed=feed)
            times['cidr_merge'].append(got['seconds'])
            merged = got['entries']
            if args.with_ipaddress:
                times['collapse'].append(measure('collapse', feed=feed)['seconds'])
        report = {'size': args.size, 'repeat': args.repeat, 'entries_after_merge': entries,
                  'netaddr_cidrs': merged,
                  'median_seconds': {k: round(statistics.median(v), 3) for k, v in times.items() if v},
                  'runs': {k: [round(x, 3) for x in v] for k, v in times.items() if v},
                  'peak_mib': {k: round(max(v)) for k, v in peaks.items() if v}}
        report['aws_allow_source'] = aws_removed
        med = report['median_seconds']
        report['ratio_build_aws_to_build'] = round(med['build-aws'] / med['build'], 3)
        if not args.build_only:
            report['ratio_build_to_cidr_merge'] = round(med['build'] / med['cidr_merge'], 3)
            report['ratio_build_fleet_to_build'] = round(med['build-fleet'] / med['build'], 3)
        print(json.dumps(report, indent=1))
        if args.out:
            with open(args.out, 'w') as handle:
                json.dump(report, handle, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
