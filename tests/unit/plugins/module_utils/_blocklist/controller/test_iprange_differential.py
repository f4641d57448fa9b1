"""The shadow copy's published lists against independent oracles: FireHOL's iprange for IPv4, netaddr for IPv6.

iprange (the Debian package, installed by scripts/setup.sh) is the tool FireHOL aggregates its own netsets
with; ``iprange --optimize FEEDS --except ALLOW`` prints the minimal CIDR list of the feeds' union minus the
allowlist, one line a CIDR, host addresses bare: the format blocklist_v4.txt is written in, so the two are
compared byte for byte, with nothing normalized. iprange knows nothing of the refusals (bogons, special-purpose
ranges, entries broader than min_prefix), so the oracle applies them from the refusal table's data
(addresses.SPECIAL_RANGES, filtered by the categories and min_prefix the manifest says the build used), with
its own code: an entry that reaches into a refused range, or whose CIDRs include one broader than min_prefix,
is refused whole, as the build documents. On the real feeds no entry straddles a refused range, so there the
oracle is literally ``--except refused`` (and the test checks that the whole-entry rule gives the same).

iprange is IPv4 only: the IPv6 lists are checked against netaddr's IPSet (a controller dependency), whose
``iter_cidrs`` is the minimal CIDR list of a set.
"""
import datetime
import ipaddress
import json
import os
import random
import shutil
import subprocess

import netaddr
import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.addresses import (
    IPV4_EMBEDDINGS, SPECIAL_RANGES,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import build_shadow_copy
from ansible_collections.fleetwall.blocklist.tests.helpers import FEEDS, SEARCH_PATH, tally

# Our own code on the standard library against a Debian tool: the same under any ansible-core (tests/conftest.py).
CORE_INDEPENDENT = True

IPRANGE = shutil.which('iprange', path=SEARCH_PATH)
NOW = datetime.datetime(2026, 8, 23, 12, 0, tzinfo=datetime.timezone.utc)
# FLEETWALL_IPRANGE_SEED replays other trials (the IPv6 ones use the seed + 6); a failure names its seed and trial.
SEED = int(os.environ.get('FLEETWALL_IPRANGE_SEED', '4131'))
V4_TRIALS = 150
V6_TRIALS = 300
ALLOW = os.path.join(FEEDS, 'allow')
# The real IPv4 feeds: FireHOL level 1 (bogons included), Spamhaus DROP and EDROP, ipsum's addresses on 3 or
# more lists (ipsum.txt with min_count 3) and its level 8.
REAL_V4 = [
    {'name': 'firehol', 'path': os.path.join(FEEDS, 'firehol', 'firehol_level1.netset'), 'format': 'netset'},
    {'name': 'drop', 'path': os.path.join(FEEDS, 'spamhaus', 'drop.txt'), 'format': 'spamhaus_drop'},
    {'name': 'edrop', 'path': os.path.join(FEEDS, 'spamhaus', 'edrop.txt'), 'format': 'spamhaus_drop'},
    {'name': 'ipsum', 'path': os.path.join(FEEDS, 'ipsum', 'ipsum.txt'), 'format': 'ipsum', 'min_count': 3},
    {'name': 'ipsum8', 'path': os.path.join(FEEDS, 'ipsum', 'levels_8.txt'), 'format': 'plain'},
]
REAL_V6 = {'name': 'drop6', 'path': os.path.join(FEEDS, 'spamhaus', 'drop_ipv6.txt'), 'format': 'spamhaus_drop'}


@pytest.fixture
def iprange():
    if IPRANGE is None:
        pytest.skip('needs FireHOL\'s iprange (the Debian package iprange; scripts/setup.sh installs it)')
    return IPRANGE


def run_iprange(iprange, args):
    proc = subprocess.run([iprange] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                          check=False)
    assert proc.returncode == 0, (args, proc.stderr[-2000:])
    return proc.stdout


def iprange_addresses(iprange, path):
    """The unique addresses iprange counts in ``path`` (``iprange -C``: ``entries,unique_ips``)."""
    return int(run_iprange(iprange, ['-C', path]).decode().strip().split(',')[1])


def build(root, feeds, allowlist=()):
    """Build a shadow copy under ``root``; return (manifest, blocklist_v4 bytes, blocklist_v6 bytes)."""
    result = build_shadow_copy(str(root), feeds, allowlist=list(allowlist), now=NOW, provenance=False)
    assert result['published'], result
    files = {}
    for name in ('manifest.json', 'blocklist_v4.txt', 'blocklist_v6.txt', 'challenge_v4.txt', 'challenge_v6.txt'):
        with open(os.path.join(str(root), 'current', name), 'rb') as handle:
            files[name] = handle.read()
    manifest = json.loads(files['manifest.json'])
    # Unscored feeds: everything is in the block tier.
    assert files['challenge_v4.txt'] == files['challenge_v6.txt'] == b'', manifest['feeds']
    return manifest, files['blocklist_v4.txt'], files['blocklist_v6.txt']


class Policy(object):
    """What the build refuses, as the manifest says it refused it, judged with this file's own code."""

    def __init__(self, manifest):
        policy = manifest['policy']
        categories = set(policy['refused_categories'])
        self.min_prefix = {4: policy['min_prefix']['v4'], 6: policy['min_prefix']['v6']}
        self.refused = {}
        for version in (4, 6):
            self.refused[version] = [ipaddress.ip_network(text) for text, category in SPECIAL_RANGES[version]
                                     if category in categories]
        assert self.refused[4] and self.refused[6] and self.min_prefix[4] >= 1

    def refuses(self, version, first, last):
        """Whether the entry ``first``-``last`` (ints; a CIDR, an address or a range) is refused whole."""
        cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        if any(net.prefixlen < self.min_prefix[version]
               for net in ipaddress.summarize_address_range(cls(first), cls(last))):
            return True
        return any(first <= int(net.broadcast_address) and int(net.network_address) <= last
                   for net in self.refused[version])

    def refused_file(self, path):
        """The refused IPv4 ranges as an iprange input file (for ``--except``)."""
        with open(path, 'w') as handle:
            handle.write(''.join('%s\n' % net for net in self.refused[4]))
        return path


def span(entry):
    """(version, first, last) of an entry as the feeds write it: an address, a CIDR or FIRST-LAST."""
    if '-' in entry:
        first, last = (ipaddress.ip_address(part.strip()) for part in entry.split('-'))
        return first.version, int(first), int(last)
    net = ipaddress.ip_network(entry)
    return net.version, int(net.network_address), int(net.broadcast_address)


def iprange_line(entry):
    """An entry as iprange reads it: ranges with spaces around the dash (its documented form)."""
    return entry.replace('-', ' - ')


# The real feeds.

def allow_prefixes():
    """The IPv4 and IPv6 prefixes AWS, Google and Cloudflare publish, read with json and str.split only."""
    v4, v6 = [], []
    with open(os.path.join(ALLOW, 'aws-ip-ranges.json')) as handle:
        aws = json.load(handle)
    v4 += [p['ip_prefix'] for p in aws['prefixes']]
    v6 += [p['ipv6_prefix'] for p in aws['ipv6_prefixes']]
    with open(os.path.join(ALLOW, 'goog.json')) as handle:
        goog = json.load(handle)
    v4 += [p['ipv4Prefix'] for p in goog['prefixes'] if 'ipv4Prefix' in p]
    v6 += [p['ipv6Prefix'] for p in goog['prefixes'] if 'ipv6Prefix' in p]
    for name, out in (('cloudflare-ips-v4', v4), ('cloudflare-ips-v6', v6)):
        with open(os.path.join(ALLOW, name)) as handle:
            out += handle.read().split()
    return v4, v6


def real_v4_entries():
    """Each real IPv4 feed's entries as the oracle reads them: the first word of every line that is not a comment,
    ipsum's only where its count is 3 or more."""
    feeds = {}
    for feed in REAL_V4:
        entries = []
        with open(feed['path']) as handle:
            for line in handle:
                words = line.split()
                if not words or words[0][0] in '#;':
                    continue
                if feed.get('min_count') and int(words[1]) < feed['min_count']:
                    continue
                entries.append(words[0])
        feeds[feed['name']] = entries
    return feeds


@pytest.mark.parametrize('with_allowlist', [False, True], ids=['no-allowlist', 'aws-google-cloudflare'])
def test_real_feeds_publish_what_iprange_gives(tmp_path, iprange, with_allowlist):
    allow_v4, allow_v6 = allow_prefixes() if with_allowlist else ([], [])
    assert not with_allowlist or (len(allow_v4) > 10000 and len(allow_v6) > 6000)
    manifest, v4, v6 = build(tmp_path / 'copy', REAL_V4 + [REAL_V6], allow_v4 + allow_v6)
    policy = Policy(manifest)
    real_entries = real_v4_entries()

    # The oracle's inputs: the feeds as iprange reads them (ipsum.txt's lines are 'IP<TAB>count', which it does
    # not read: its addresses of count 3 or more), the allowlist, and the refused ranges.
    inputs = []
    for feed in REAL_V4:
        if feed['format'] == 'ipsum':
            path = str(tmp_path / 'ipsum-3.txt')
            with open(path, 'w') as handle:
                handle.write(''.join(e + '\n' for e in real_entries['ipsum']))
            inputs.append(path)
        else:
            inputs.append(feed['path'])
    allow_file = str(tmp_path / 'allow-v4.txt')
    with open(allow_file, 'w') as handle:
        handle.write(''.join(p + '\n' for p in allow_v4))
    refused_file = policy.refused_file(str(tmp_path / 'refused-v4.txt'))
    expected = run_iprange(iprange, ['--optimize'] + inputs + ['--except', allow_file, '--except', refused_file])
    assert v4 == expected, first_difference(v4, expected)

    # '--except refused' is the build's whole-entry refusal here: no entry of these feeds reaches into a refused
    # range without lying inside it, and none is broader than min_prefix outside one.
    kept_file = str(tmp_path / 'kept-v4.txt')
    refused_entries = 0
    with open(kept_file, 'w') as handle:
        for entries in real_entries.values():
            for entry in entries:
                if policy.refuses(*span(entry)):
                    refused_entries += 1
                else:
                    handle.write(entry + '\n')
    assert run_iprange(iprange, ['--optimize', kept_file, '--except', allow_file]) == expected
    assert sum(manifest['refusals']['by_reason'].values()) == refused_entries

    # The counts: addresses as iprange counts them, and the fewest CIDRs (iprange's optimized count).
    published, oracle = tmp_path / 'published-v4.txt', tmp_path / 'expected-v4.txt'
    published.write_bytes(v4)
    oracle.write_bytes(expected)
    info = manifest['files']['blocklist_v4.txt']
    assert info['addresses'] == iprange_addresses(iprange, str(published)) == iprange_addresses(iprange, str(oracle))
    assert info['entries'] == v4.count(b'\n') == expected.count(b'\n')
    union = tmp_path / 'union-v4.txt'
    union.write_bytes(run_iprange(iprange, ['--optimize'] + inputs + ['--except', refused_file]))
    assert manifest['allowlist']['addresses_removed']['v4'] == iprange_addresses(iprange, str(union)) - info['addresses']
    if not with_allowlist:
        # What the issue measured on these files: a fixture that changed shows here first.
        assert (info['entries'], info['addresses']) == (14801, 28099464)
    print('real feeds, %s: %d CIDRs, %d addresses, %d refused entries, %d allowlist addresses removed'
          % ('with the AWS, Google and Cloudflare allowlist' if with_allowlist else 'no allowlist',
             info['entries'], info['addresses'], refused_entries, manifest['allowlist']['addresses_removed']['v4']))

    # IPv6 (Spamhaus DROPv6): netaddr's minimal CIDR list of the feed minus the allowlist.
    with open(REAL_V6['path']) as handle:
        drop6 = [line.split()[0] for line in handle if line.strip() and line.split()[0][0] not in '#;']
    assert not [e for e in drop6 if policy.refuses(*span(e))]
    oracle6 = netaddr.IPSet(drop6) - netaddr.IPSet(allow_v6)
    assert v6 == netaddr_text(oracle6), first_difference(v6, netaddr_text(oracle6), 'netaddr')
    assert manifest['files']['blocklist_v6.txt']['addresses'] == oracle6.size
    assert manifest['files']['blocklist_v6.txt']['entries'] == len(oracle6.iter_cidrs())


def first_difference(ours, theirs, oracle='iprange'):
    """Where the published file first differs from the oracle's, for the failure message."""
    a, b = ours.decode().splitlines(), theirs.decode().splitlines()
    for index, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return 'line %d: ours %r, %s %r (ours %d lines, %s %d)' % (index + 1, x, oracle, y, len(a), oracle, len(b))
    return 'ours %d lines, %s %d' % (len(a), oracle, len(b))


def netaddr_span(entry):
    """An entry as netaddr's own range, its family given (netaddr would take a small integer for IPv4)."""
    version, first, last = span(entry)
    return netaddr.IPRange(netaddr.IPAddress(first, version), netaddr.IPAddress(last, version))


def netaddr_text(ipset):
    """netaddr's minimal CIDR list as the build writes one: a line a CIDR, a host address bare."""
    return ''.join('%s\n' % (cidr.ip if cidr.size == 1 else cidr) for cidr in ipset.iter_cidrs()).encode()


# Random trials.

# Places the random feeds crowd into, so that entries nest, overlap and touch: public space, the edges of
# refused ranges, refused ranges themselves, documentation ranges (not refused by default), the ends of the
# address space.
V4_ANCHORS = ['1.0.0.0', '9.255.0.0', '11.0.0.0', '45.0.0.0', '100.63.0.0', '100.128.0.0', '126.255.0.0',
              '128.0.0.0', '172.15.0.0', '172.32.0.0', '192.0.0.0', '192.0.2.0', '192.88.99.0', '192.167.0.0',
              '198.18.0.0', '198.51.100.0', '203.0.113.0', '223.255.0.0', '10.20.0.0', '224.0.0.0',
              '255.255.0.0', '0.0.0.0', '169.254.0.0']


def random_block(rng, base, bits, min_size, max_size):
    """A random aligned block of 2**size addresses (min_size <= size <= max_size) near ``base``."""
    size = rng.randint(min_size, max_size)
    start = (base + rng.randrange(1 << 18)) & ~((1 << size) - 1)
    return start & ((1 << bits) - 1), size


def random_entries(rng, version, anchors, count):
    """``count`` entries (addresses, CIDRs, FIRST-LAST ranges) around ``anchors``, many of them nested in, next
    to or overlapping an earlier one."""
    bits = 32 if version == 4 else 128
    cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    blocks = []
    for _index in range(count):
        roll = rng.random()
        if blocks and roll < 0.25:
            # Next to an earlier block (its sibling or the block after it): the merge must join them.
            start, size = rng.choice(blocks)
            start = start + (1 << size) if rng.random() < 0.5 else start ^ (1 << size)
        elif blocks and roll < 0.45:
            # Inside an earlier block.
            outer, outer_size = rng.choice(blocks)
            size = rng.randint(0, outer_size)
            start = outer + (rng.randrange(1 << outer_size) & ~((1 << size) - 1))
        else:
            start, size = random_block(rng, rng.choice(anchors), bits, 0, rng.choice((2, 8, 12, 16)))
        start &= (1 << bits) - 1
        start &= ~((1 << size) - 1)
        blocks.append((start, size))
    entries = []
    for start, size in blocks:
        roll = rng.random()
        if roll < 0.15:
            # A range that is not one CIDR: cut at random inside the block.
            last = start + (1 << size) - 1
            first = start + rng.randrange(1 << size) // 3
            end = last - rng.randrange(1 << size) // 3
            entries.append('%s-%s' % (cls(first), cls(max(first, end))))
        elif size == 0 and roll < 0.6:
            entries.append(str(cls(start)))
        else:
            entries.append('%s/%d' % (cls(start), bits - size))
    return entries


def random_cuts(rng, version, feeds, count):
    """``count`` allowlist entries that cut into the feeds' entries: inside one, or across one of its ends."""
    cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    top = (1 << (32 if version == 4 else 128)) - 1
    entries = [e for f in feeds for e in f]
    cuts = []
    for _index in range(count):
        _version, first, last = span(rng.choice(entries))
        size = last - first + 1
        roll = rng.random()
        if roll < 0.4:
            # An aligned block inside the entry.
            align = (first & -first).bit_length() - 1 if first else size.bit_length()
            bits = rng.randint(0, min(align, size.bit_length() - 1))
            start = first + (rng.randrange(size >> bits) << bits)
            cuts.append('%s/%d' % (cls(start), (32 if version == 4 else 128) - bits))
        elif roll < 0.7:
            low = first + rng.randrange(size)
            cuts.append('%s-%s' % (cls(low), cls(min(top, low + rng.randrange(size)))))
        else:
            # Across the start or the end of the entry.
            reach = max(1, size // 2)
            if rng.random() < 0.5:
                cuts.append('%s-%s' % (cls(max(0, first - rng.randint(1, reach))), cls(first + rng.randrange(reach))))
            else:
                cuts.append('%s-%s' % (cls(last - rng.randrange(reach)), cls(min(top, last + rng.randint(1, reach)))))
    return cuts


V4_EXTRA = ['4.0.0.0/7', '11.0.0.0/8', '100.0.0.0/9', '172.0.0.0/11', '9.255.255.250-10.0.0.5',
            '4.0.0.0-7.255.255.255', '223.255.255.255', '224.0.0.1', '192.168.1.0/24', '1.0.0.0-1.255.255.255']


def v4_trial(rng):
    anchors = [int(ipaddress.IPv4Address(a)) for a in rng.sample(V4_ANCHORS, rng.randint(1, 4))]
    feeds = [random_entries(rng, 4, anchors, rng.randint(1, 40)) for _feed in range(rng.randint(1, 4))]
    for entries in feeds:
        if rng.random() < 0.2:
            entries.append(rng.choice(V4_EXTRA))
    allow = random_entries(rng, 4, anchors, rng.randint(0, 4)) + random_cuts(rng, 4, feeds, rng.randint(0, 6))
    return feeds, allow


def write_feeds(directory, feeds):
    directory.mkdir()
    specs = []
    for index, entries in enumerate(feeds):
        path = directory / ('feed%d.txt' % index)
        path.write_text('# a random feed\n' + ''.join(e + '\n' for e in entries))
        specs.append({'name': 'feed%d' % index, 'path': str(path), 'format': 'plain'})
    return specs


def build_trial(tmp_path, trial, feeds, allow):
    """(directory, manifest, v4 bytes, v6 bytes, refusal policy) of one trial's build, in its own directory."""
    where = tmp_path / ('trial%d' % trial)
    where.mkdir()
    manifest, v4, v6 = build(where / 'copy', write_feeds(where / 'feeds', feeds), allow)
    return where, manifest, v4, v6, Policy(manifest)


def test_random_v4_trials_match_iprange(tmp_path, iprange):
    rng = random.Random(SEED)
    refused_file = None
    for trial in range(V4_TRIALS):
        feeds, allow = v4_trial(rng)
        where, manifest, v4, _v6, policy = build_trial(tmp_path, trial, feeds, allow)
        refused_file = refused_file or policy.refused_file(str(tmp_path / 'refused-v4.txt'))
        kept, refused = [], 0
        for entries in feeds:
            for entry in entries:
                if policy.refuses(*span(entry)):
                    refused += 1
                else:
                    kept.append(iprange_line(entry))
        (where / 'kept.txt').write_text(''.join(e + '\n' for e in kept))
        (where / 'allow.txt').write_text(''.join(iprange_line(e) + '\n' for e in allow))
        expected = run_iprange(iprange, ['--optimize', str(where / 'kept.txt'), '--except', str(where / 'allow.txt'),
                                         '--except', refused_file])
        context = 'seed %d trial %d: feeds %r allow %r' % (SEED, trial, feeds, allow)
        assert v4 == expected, '%s; %s' % (first_difference(v4, expected), context)
        assert sum(manifest['refusals']['by_reason'].values()) == refused, context
        (where / 'published.txt').write_bytes(v4)
        if v4:
            assert manifest['files']['blocklist_v4.txt']['addresses'] == iprange_addresses(
                iprange, str(where / 'published.txt')), context
        tally('bad inputs tried: iprange differential (IPv4)')
        shutil.rmtree(str(where))


# IPv6: around the edges of the refused ranges, outside the prefixes that embed IPv4 addresses (6to4, Teredo,
# NAT64, IPv4-compatible), whose entries are judged by the IPv4 they embed, a rule this oracle leaves alone.
V6_ANCHORS = ['2400::', '2600:1f00::', '27ff:ffff:ffff::', '2001:db8::', '3fff::', 'fbff:ffff:ffff:ffff::',
              'fc00::', 'fe80::', 'ff02::', '5f00::', '5eff:ffff:ffff:ffff::', '2001:10::', '2001:20::',
              '64:ff9b:1::', '100::', '100:0:0:2::', '2a00:1450::']
V6_EXTRA = ['2400::/18', '2400::/19', '::1', '::', '::ffff:1.2.3.4', 'fbff:ffff:ffff:ffff:ffff:ffff:ffff:fff0-fc00::5',
            'fe80::1', '2001:db8::/32', '3fff::/20', '100::/63', '2001:10::/29', '2001:20::/28']


EMBEDDING_PREFIXES = [ipaddress.ip_network(text) for _name, text, _fields in IPV4_EMBEDDINGS]


def outside_embeddings(entry):
    """Whether the entry stays out of every prefix that embeds IPv4 addresses."""
    _version, first, last = span(entry)
    return not any(first <= int(net.broadcast_address) and int(net.network_address) <= last
                   for net in EMBEDDING_PREFIXES)


def v6_trial(rng):
    anchors = [int(ipaddress.IPv6Address(text)) for text in rng.sample(V6_ANCHORS, rng.randint(1, 4))]
    # Blocks of 2**0 to 2**16 addresses, or (scaled up) of whole /80s or /64s.
    shift = rng.choice((0, 0, 48, 64))

    def entries(count):
        made = random_entries(rng, 6, [a >> shift for a in anchors], count)
        return [shifted(e, shift) for e in made] if shift else made

    feeds = []
    for _feed in range(rng.randint(1, 4)):
        # The IPv4-embedding prefixes' rule is not this oracle's: their entries are left out (an allowlist may
        # reach into them: it is never refused).
        feed = [e for e in entries(rng.randint(1, 40)) if outside_embeddings(e)] or ['2a00:1450::1']
        if rng.random() < 0.2:
            feed.append(rng.choice(V6_EXTRA))
        feeds.append(feed)
    return feeds, entries(rng.randint(0, 4)) + random_cuts(rng, 6, feeds, rng.randint(0, 6))


def shifted(entry, shift):
    """An entry of the scaled-down space scaled back up: every address is a /(128 - shift) block."""
    version, first, last = span(entry)
    assert version == 6
    low, high = ipaddress.IPv6Address(first << shift), ipaddress.IPv6Address(((last + 1) << shift) - 1)
    nets = list(ipaddress.summarize_address_range(low, high))
    if len(nets) == 1:
        return str(nets[0])
    return '%s-%s' % (low, high)


def test_random_v6_trials_match_netaddr(tmp_path):
    rng = random.Random(SEED + 6)
    for trial in range(V6_TRIALS):
        feeds, allow = v6_trial(rng)
        where, manifest, _v4, v6, policy = build_trial(tmp_path, trial, feeds, allow)
        oracle, refused = netaddr.IPSet(), 0
        for entries in feeds:
            for entry in entries:
                if policy.refuses(*span(entry)):
                    refused += 1
                else:
                    oracle.add(netaddr_span(entry) if '-' in entry else netaddr.IPNetwork(entry))
        for entry in allow:
            oracle.remove(netaddr_span(entry) if '-' in entry else netaddr.IPNetwork(entry))
        expected = netaddr_text(oracle)
        context = 'seed %d trial %d: feeds %r allow %r' % (SEED + 6, trial, feeds, allow)
        assert v6 == expected, '%s; %s' % (first_difference(v6, expected, 'netaddr'), context)
        assert sum(manifest['refusals']['by_reason'].values()) == refused, context
        assert manifest['files']['blocklist_v6.txt']['addresses'] == oracle.size, context
        assert manifest['files']['blocklist_v6.txt']['entries'] == len(oracle.iter_cidrs()), context
        tally('bad inputs tried: netaddr differential (IPv6)')
        shutil.rmtree(str(where))
