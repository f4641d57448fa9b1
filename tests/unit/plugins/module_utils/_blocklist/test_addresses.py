import random

import netaddr
import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist import addresses as A
from ansible_collections.fleetwall.blocklist.tests.helpers import tally


@pytest.mark.parametrize('text, expected', [
    ('1.2.3.4', (4, 0x01020304, 32)),
    ('1.2.3.0/24', (4, 0x01020300, 24)),
    ('2001:DB8::/32', (6, 0x20010db8 << 96, 32)),
    ('::ffff:1.2.3.4', (6, 0xffff01020304, 128)),
])
def test_parse_network_valid(text, expected):
    assert A.parse_network(text) == expected


@pytest.mark.parametrize('text, reason', [
    ('1.2.3.4/24', 'host bits set (did you mean 1.2.3.0/24?)'),
    ('01.2.3.4', 'not an IPv4 address'),
    ('1.2.3', 'not an IPv4 address'),
    ('1.2.3.4/33', 'prefix length /33 out of range for IPv4'),
    ('1.2.3.4/-1', 'invalid prefix length'),
    ('1.2.3.4/ 8', 'invalid prefix length'),
    ('fe80::1%eth0', 'zone ids are not allowed'),
    ('1.2.3.4\x00', 'not an IPv4 address'),
    ('', 'empty or overlong entry'),
    ('1' * 100, 'empty or overlong entry'),
    ('1.2.3.4 }; flush ruleset; {', 'not an IPv4 address'),
])
def test_parse_network_invalid(text, reason):
    with pytest.raises(A.AddressError) as exc:
        A.parse_network(text)
    assert str(exc.value) == reason


def test_host_prefix_is_printed_bare_like_ipset():
    assert A.canonical('1.2.3.4/32') == (4, '1.2.3.4')
    assert A.canonical('2001:0db8:0000::0001/128') == (6, '2001:db8::1')
    assert A.canonical('10.0.0.0/8') == (4, '10.0.0.0/8')


def _networks(ranges, bits=32, version=4):
    return [A.format_network(version, s, p) for s, p in A.ranges_to_networks(ranges, bits)]


def test_slash16_minus_one_address_is_minimal():
    _v, start, p = A.parse_network('203.0.0.0/16')
    ranges = [(start, start + (1 << 16) - 1)]
    hole = A.parse_network('203.0.113.7')[1]
    remaining, removed = A.subtract_ranges(ranges, [(hole, hole)])
    nets = _networks(remaining)
    assert removed == 1
    assert len(nets) == 16
    expected = netaddr.IPSet(['203.0.0.0/16']) - netaddr.IPSet(['203.0.113.7'])
    assert nets == [str(c) if c.prefixlen != 32 else str(c.ip) for c in expected.iter_cidrs()]


def test_merge_joins_overlapping_and_adjacent():
    keys = [A.network_key(*A.parse_network(t)) for t in
            ['10.0.0.0/25', '10.0.0.128/25', '10.0.1.0/24', '10.0.0.5', '192.0.2.0/24', '192.0.2.9']]
    assert _networks(A.merge_keys(keys)) == ['10.0.0.0/23', '192.0.2.0/24']


def _random_networks(rng, count):
    out = []
    for _index in range(count):
        prefix = rng.choice([8, 12, 16, 20, 23, 24, 24, 28, 30, 31, 32, 32, 32])
        addr = rng.getrandbits(32) & ~((1 << (32 - prefix)) - 1)
        out.append((addr, prefix))
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2 ** 32), st.integers(min_value=1, max_value=300))
def test_aggregate_and_subtract_match_netaddr(seed, count):
    rng = random.Random(seed)
    nets = _random_networks(rng, count)
    holes = _random_networks(rng, max(1, count // 5))
    keys = [A.network_key(4, s, p) for s, p in nets]
    merged = A.merge_keys(keys)
    hole_ranges = A.merge_ranges([(s, s + (1 << (32 - p)) - 1) for s, p in holes])
    remaining, removed = A.subtract_ranges(merged, hole_ranges)
    ours = [netaddr.IPNetwork('%s/%d' % (netaddr.IPAddress(s), p)) for s, p in A.ranges_to_networks(remaining, 32)]

    want_set = netaddr.IPSet(['%s/%d' % (netaddr.IPAddress(s), p) for s, p in nets])
    before = want_set.size
    want_set -= netaddr.IPSet(['%s/%d' % (netaddr.IPAddress(s), p) for s, p in holes])
    assert ours == list(want_set.iter_cidrs())
    assert removed == before - want_set.size


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2 ** 128 - 1), st.integers(19, 128)), min_size=1, max_size=80))
def test_ipv6_aggregate_matches_netaddr(raw):
    nets = [(a & ~((1 << (128 - p)) - 1), p) for a, p in raw]
    merged = A.merge_keys([A.network_key(6, s, p) for s, p in nets])
    ours = [netaddr.IPNetwork('%s/%d' % (netaddr.IPAddress(s, 6), p)) for s, p in A.ranges_to_networks(merged, 128)]
    theirs = netaddr.cidr_merge([netaddr.IPNetwork('%s/%d' % (netaddr.IPAddress(s, 6), p)) for s, p in nets])
    assert ours == theirs


@pytest.mark.parametrize('text, reason', [
    ('0.0.0.0/0', 'default route'),
    ('::/0', 'default route'),
    ('4.0.0.0/6', 'broader than /8'),
    ('2000::/3', 'broader than /19'),
    ('10.1.2.3', 'private 10.0.0.0/8'),
    ('192.168.0.0/16', 'private 192.168.0.0/16'),
    ('127.0.0.1', 'loopback 127.0.0.0/8'),
    ('169.254.1.1', 'link_local 169.254.0.0/16'),
    ('224.0.0.0/8', 'multicast 224.0.0.0/4'),
    ('224.0.0.0/4', 'broader than /8'),
    ('8.0.0.0/7', 'broader than /8'),
    ('::1', 'loopback ::1/128'),
    ('fe80::/64', 'link_local fe80::/10'),
    ('::ffff:1.2.3.4', 'ipv4_mapped ::ffff:0:0/96'),
    ('ff02::1', 'multicast ff00::/8'),
    ('100.64.0.1', 'shared 100.64.0.0/10'),
])
def test_refusals(text, reason):
    table = A.RefusalTable()
    assert table.reason(*A.parse_network(text)) == reason


@pytest.mark.parametrize('text', ['1.2.3.4', '198.18.0.200', '192.0.2.1', '2001:db8::1', '9.0.0.0/8', '2a00::/19'])
def test_not_refused_by_default(text):
    assert A.RefusalTable().reason(*A.parse_network(text)) is None


def test_refusal_partial_overlap_and_opt_in_categories():
    table = A.RefusalTable(categories=A.DEFAULT_REFUSED_CATEGORIES + ('benchmarking',), min_prefix={4: 6})
    # 8.0.0.0/6 covers 10.0.0.0/8: refused as a whole, not silently carved.
    assert table.reason(*A.parse_network('8.0.0.0/6')) == 'private 10.0.0.0/8'
    assert table.reason(*A.parse_network('198.18.0.200')) == 'benchmarking 198.18.0.0/15'
    with pytest.raises(ValueError):
        A.RefusalTable(categories=['nonsense'])


def test_parse_range():
    version, start, end = A.parse_range('1.2.3.4-1.2.3.10')
    assert _networks([(start, end)]) == ['1.2.3.4/30', '1.2.3.8/31', '1.2.3.10']
    with pytest.raises(A.AddressError):
        A.parse_range('1.2.3.10-1.2.3.4')
    with pytest.raises(A.AddressError):
        A.parse_range('1.2.3.4-::1')


# The sync engine validates entries in bulk for speed; it must accept
# exactly what the careful per-entry parser accepts as canonical.
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist import sync as S  # noqa: E402

_entry_text = st.one_of(
    st.builds(lambda a, p: '%d.%d.%d.%d%s' % (a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255, p),
              st.integers(0, 2 ** 32 - 1), st.sampled_from(['', '/0', '/8', '/24', '/31', '/32', '/33', '/024'])),
    st.builds(lambda a, p: '%s%s' % (netaddr.IPAddress(a, 6), p),
              st.integers(0, 2 ** 128 - 1), st.sampled_from(['', '/0', '/48', '/64', '/128', '/129'])),
    st.sampled_from(['01.2.3.4', '1.2.3', '2001:DB8::1', '2001:db8::01', '::ffff:1.2.3.4', '1.2.3.4/', '/24',
                     '1.2.3.4/ 8', 'fe80::1%eth0', '1.2.3.4\x00', '١.2.3.4', '1.2.3.0/24', '::']),
)


def _careful(candidates, version, host_only):
    for text in candidates:
        try:
            v, start, prefixlen = A.parse_network(text)
        except A.AddressError:
            return False
        if v != version or prefixlen == 0 or A.format_network(v, start, prefixlen) != text:
            return False
        if host_only and prefixlen != A.BITS[v]:
            return False
    return True


@settings(max_examples=400, deadline=None)
@given(st.lists(_entry_text, max_size=6), st.sampled_from([4, 6]), st.booleans())
def test_bulk_validation_agrees_with_the_parser(candidates, version, host_only):
    tally('bad inputs tried: entry validation')
    assert S._bulk_canonical(candidates, version, host_only) == _careful(candidates, version, host_only)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2 ** 32), st.integers(min_value=0, max_value=300))
def test_fast_paths_match_the_plain_algorithms(seed, count):
    rng = random.Random(seed)
    nets = _random_networks(rng, count) + [(rng.getrandbits(32), 32) for _index in range(count)]
    merged = A.merge_keys([A.network_key(4, s, p) for s, p in nets])
    holes = A.merge_ranges([(s, s + (1 << (32 - p)) - 1) for s, p in _random_networks(rng, rng.randrange(0, 20))])
    # Bisection windows and the plain sweep agree.
    assert A.subtract_ranges(merged, holes) == A._subtract_sweep(merged, holes)
    # networks_text is ranges_to_networks, formatted.
    want = [A.format_network(4, s, p) for s, p in A.ranges_to_networks(merged, 32)]
    lines = A.networks_text(merged, 4)
    assert '\n'.join(lines).split('\n') == (want or [''])


def test_merge_of_nothing():
    assert A.merge_keys([]) == []
    assert A.subtract_ranges([], [(1, 2)]) == ([], 0)


_small_ranges = st.lists(st.tuples(st.integers(0, 400), st.integers(0, 40)).map(lambda t: (t[0], t[0] + t[1])),
                         max_size=40)


@given(_small_ranges, _small_ranges)
def test_inserting_a_few_ranges_equals_merging_everything(base, extra):
    merged = A.merge_ranges(base)
    assert A.insert_ranges(merged, extra) == A.merge_ranges(base + extra)


@given(_small_ranges, st.sampled_from([4, 6]))
def test_count_networks_matches_the_written_lines(raw, version):
    ranges = A.merge_ranges(raw)
    lines = '\n'.join(A.networks_text(ranges, version)).split('\n') if ranges else []
    assert A.count_networks(ranges, A.BITS[version]) == len(lines)
