import random
from array import array

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
    keys = [A.network_key(4, s, p) for s, p in nets]
    merged = A.merge_keys(list(keys))
    # The compact (array) columns an IPv4 merge makes hold what the list columns hold.
    compact = A.merge_keys(list(keys), 4)
    assert isinstance(compact.starts, array) and compact == merged and len(compact) == len(merged)
    assert A.merge_ranges([(s, s + (1 << (32 - p)) - 1) for s, p in nets]) == merged
    holes = A.merge_ranges([(s, s + (1 << (32 - p)) - 1) for s, p in _random_networks(rng, rng.randrange(0, 20))])
    # Bisection windows (from either side: few holes or few ranges) and the plain sweep agree.
    want_rest = A._subtract_sweep(merged, holes)
    assert A.subtract_ranges(merged, holes) == want_rest
    assert A.subtract_ranges(compact, holes) == want_rest
    assert A.subtract_ranges(holes, merged) == A._subtract_sweep(holes, merged)
    # networks_text is ranges_to_networks, formatted; networks_file the same lines, in chunks.
    want = [A.format_network(4, s, p) for s, p in A.ranges_to_networks(merged, 32)]
    lines = A.networks_text(merged, 4)
    assert '\n'.join(lines).split('\n') == (want or [''])
    assert A.networks_file(compact, 4, chunk=rng.randrange(1, 8)) == ''.join(line + '\n' for line in want).encode()
    assert A.count_addresses(compact) == A.count_addresses(list(merged))


def test_merge_of_nothing():
    assert A.merge_keys([]) == []
    assert A.subtract_ranges([], [(1, 2)]) == ([], 0)


_small_ranges = st.lists(st.tuples(st.integers(0, 400), st.integers(0, 40)).map(lambda t: (t[0], t[0] + t[1])),
                         max_size=40)


@given(_small_ranges, _small_ranges)
def test_inserting_a_few_ranges_equals_merging_everything(base, extra):
    merged = A.merge_ranges(base)
    assert A.insert_ranges(merged, extra) == A.merge_ranges(base + extra)
    compact = A.RangeList(compact=True)
    for start, end in merged:
        compact.append(start, end)
    assert A.insert_ranges(compact, extra) == A.merge_ranges(base + extra)


@given(_small_ranges, st.sampled_from([4, 6]))
def test_count_networks_matches_the_written_lines(raw, version):
    ranges = A.merge_ranges(raw)
    lines = '\n'.join(A.networks_text(ranges, version)).split('\n') if ranges else []
    assert A.count_networks(ranges, A.BITS[version]) == len(lines)


# -- IPv4 inside IPv6: 6to4, NAT64, IPv4-compatible and Teredo entries are judged by the IPv4 they embed

def _teredo(server, client, flags_port=0x800063bf):
    """A Teredo address: server IPv4 in bits 32-63, client IPv4 inverted in the last 32 bits."""
    return A.format_address(6, (0x20010000 << 96) | (server << 64) | (flags_port << 32) | (client ^ 0xffffffff))


_TEREDO_SERVER = A.parse_network('65.54.227.120')[1]


@pytest.mark.parametrize('text, reason', [
    # The two examples.
    ('2002:c0a8:101::1', '6to4 of private 192.168.0.0/16'),
    ('64:ff9b::/96', 'whole NAT64 prefix 64:ff9b::/96'),
    # 6to4, 2002::/16: the IPv4 is bits 16-47.
    ('2002:7f00:1::/48', '6to4 of loopback 127.0.0.0/8'),
    ('2002:a9fe::/32', '6to4 of link_local 169.254.0.0/16'),
    ('2002:c000::/20', '6to4 of IPv4 broader than /8'),
    ('2002::/20', '6to4 of IPv4 broader than /8'),
    ('2002::/16', 'broader than /19'),
    # NAT64's well-known prefix: the IPv4 is the last 32 bits.
    ('64:ff9b::a00:1', 'NAT64 of private 10.0.0.0/8'),
    ('64:ff9b::e000:0/104', 'NAT64 of multicast 224.0.0.0/4'),
    ('64:ff9b::/100', 'NAT64 of IPv4 broader than /8'),
    ('64:ff9b:1::/48', 'private 64:ff9b:1::/48'),
    # IPv4-compatible, ::/96; its own special addresses keep their reasons.
    ('::7f00:1', 'IPv4-compatible of loopback 127.0.0.0/8'),
    ('::a00:0/104', 'IPv4-compatible of private 10.0.0.0/8'),
    ('::/96', 'whole IPv4-compatible prefix ::/96'),
    ('::2', 'IPv4-compatible of unspecified 0.0.0.0/8'),
    ('::1', 'loopback ::1/128'),
    ('::', 'unspecified ::/128'),
    ('::ffff:0:0/96', 'ipv4_mapped ::ffff:0:0/96'),
    # Teredo, 2001::/32: the server's IPv4 and the client's, inverted.
    ('2001::/32', 'whole Teredo prefix 2001::/32'),
    (_teredo(A.parse_network('10.0.0.1')[1], A.parse_network('8.8.8.8')[1]), 'Teredo server of private 10.0.0.0/8'),
    (_teredo(_TEREDO_SERVER, A.parse_network('10.1.2.3')[1]), 'Teredo client of private 10.0.0.0/8'),
    (_teredo(_TEREDO_SERVER, A.parse_network('192.168.1.1')[1]), 'Teredo client of private 192.168.0.0/16'),
    ('2001:0:4136:e378::/64', 'Teredo client of IPv4 default route'),
    ('2001:0:4136:e378:8000:63bf:f600:0/103', 'Teredo client of IPv4 broader than /8'),
])
def test_ipv4_embedded_in_ipv6_is_judged_by_the_ipv4_rules(text, reason):
    assert A.RefusalTable().reason(*A.parse_network(text)) == reason


@pytest.mark.parametrize('text', [
    '2002:808:808::/48', '2002:808:808::1', '2002:808:800::/40', '64:ff9b::808:808', '64:ff9b::808:800/120',
    '::808:808', _teredo(_TEREDO_SERVER, A.parse_network('8.8.8.8')[1]), '2001:0:4136:e378:8000:63bf:f700:0/104',
    # Documentation is not refused by default, in IPv4 or embedded (RFC 4380's own example address).
    '2002:c000:200::/40', '2001:0:4136:e378:8000:63bf:3fff:fdd2',
    # Neighbours of the prefixes are plain IPv6.
    '2001:1::/32', '2003::/19', '64:ff9b:0:0:1::/80', '::1:0:0/96',
])
def test_embedded_public_ipv4_is_an_ordinary_ipv6_entry(text):
    assert A.RefusalTable().reason(*A.parse_network(text)) is None


@pytest.mark.parametrize('text, reason', [
    ('2002::/16', 'whole 6to4 prefix 2002::/16'),
    ('2002::/15', 'whole 6to4 prefix 2002::/16'),
    ('2000::/14', 'whole 6to4 prefix 2002::/16'),
    ('2001::/28', 'whole Teredo prefix 2001::/32'),       # broader would cover ORCHID 2001:10::/28 too
    ('::/88', 'whole IPv4-compatible prefix ::/96'),
    ('64:ff9b::/64', 'whole NAT64 prefix 64:ff9b::/96'),
])
def test_an_entry_covering_an_embedding_prefix_is_refused_whole(text, reason):
    """With the IPv6 minimum prefix lowered, an entry is refused for covering the prefix, not judged inside it."""
    assert A.RefusalTable(min_prefix={6: 8}).reason(*A.parse_network(text)) == reason


def test_embedded_checks_follow_the_categories():
    # Opted out: the old behaviour; IPv4-mapped stays its own category.
    table = A.RefusalTable(categories=[c for c in A.DEFAULT_REFUSED_CATEGORIES if c != 'ipv4_embedded'])
    for text in ('2002:c0a8:101::1', '64:ff9b::/96', '2001::/32', '::7f00:1'):
        assert table.reason(*A.parse_network(text)) is None
    assert table.reason(*A.parse_network('::ffff:1.2.3.4')) == 'ipv4_mapped ::ffff:0:0/96'
    # The embedded IPv4 meets the same IPv4 categories: documentation refused in one is refused in the other.
    table = A.RefusalTable(categories=A.DEFAULT_REFUSED_CATEGORIES + ('documentation',))
    assert table.reason(*A.parse_network('2002:c000:200::/40')) == '6to4 of documentation 192.0.2.0/24'
    assert table.reason(*A.parse_network('2001:0:4136:e378:8000:63bf:3fff:fdd2')) \
        == 'Teredo client of documentation 192.0.2.0/24'


def test_a_special_range_inside_an_embedding_prefix_still_refuses():
    """::1 is cut out of ::/96's row; an entry reaching into it from the row is still refused."""
    table = A.RefusalTable(categories=('loopback', 'ipv4_embedded'))
    assert table.reason(*A.parse_network('::2')) is None  # 0.0.0.2: 'unspecified' is not refused here
    assert table.reason(*A.parse_network('::/126')) == 'loopback ::1/128'
    assert table.reason(*A.parse_network('::1')) == 'loopback ::1/128'


_ipv4_network = st.tuples(st.integers(0, 2 ** 32 - 1), st.integers(0, 32)).map(
    lambda t: (t[0] & ~((1 << (32 - t[1])) - 1), t[1]))
_categories = st.sets(st.sampled_from([c for c in A.ALL_CATEGORIES if c != 'ipv4_embedded'])).map(
    lambda chosen: tuple(chosen) + ('ipv4_embedded',))
_EMBEDDINGS = {
    # name: (label, the IPv6 network that embeds IPv4 network start/prefixlen)
    '6to4': ('6to4', lambda start, prefixlen: ((0x2002 << 112) | (start << 80), 16 + prefixlen)),
    'NAT64': ('NAT64', lambda start, prefixlen: ((0x64ff9b << 96) | start, 96 + prefixlen)),
    'IPv4-compatible': ('IPv4-compatible', lambda start, prefixlen: (start, 96 + prefixlen)),
}


def _overlaps_ipv6_special(categories, start, prefixlen):
    """Independently, with netaddr: does the IPv6 network meet one of the refused IPv6 special ranges?"""
    network = netaddr.IPSet([netaddr.IPNetwork('%s/%d' % (netaddr.IPAddress(start, 6), prefixlen))])
    specials = netaddr.IPSet(text for text, category in A.SPECIAL_RANGES[6] if category in categories)
    return bool(network & specials)


def _expected_embedded_reason(table, label, start, prefixlen):
    refused = table.reason(4, start, prefixlen)
    if refused is None:
        return None
    broad = prefixlen == 0 or prefixlen < table.min_prefix[4]
    return '%s of %s%s' % (label, 'IPv4 ' if broad else '', refused)


@settings(max_examples=500, deadline=None)
@given(_ipv4_network, st.sampled_from(sorted(_EMBEDDINGS)), _categories, st.sampled_from([0, 8, 12, 16]))
def test_an_embedded_network_gets_the_verdict_of_its_ipv4_network(network, embedding, categories, min_v4):
    """Refused iff the IPv4 network is refused (or the IPv6 network meets an IPv6 special range: ::1 in
    ::/96), and for the IPv4's reason.  The IPv6 minimum is lowered to /16 so that a 6to4 of an IPv4 /0-/2
    is judged as 6to4, not first as broader than /19."""
    tally('bad inputs tried: entry validation')
    table = A.RefusalTable(categories=categories, min_prefix={4: min_v4, 6: 16})
    label, embed = _EMBEDDINGS[embedding]
    v6_start, v6_prefixlen = embed(*network)
    got = table.reason(6, v6_start, v6_prefixlen)
    if _overlaps_ipv6_special(categories, v6_start, v6_prefixlen):
        assert got is not None
    elif network[1] == 0:
        assert got.startswith('whole %s prefix' % embedding)
    else:
        assert got == _expected_embedded_reason(table, label, *network)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), _ipv4_network, st.integers(0, 2 ** 32 - 1), _categories,
       st.sampled_from([0, 8, 12, 16]))
def test_a_teredo_network_gets_the_verdict_of_its_server_and_client(server, client, flags_port, categories, min_v4):
    """A Teredo network naming one server and a client network is refused iff either IPv4 is, for its reason."""
    tally('bad inputs tried: entry validation')
    table = A.RefusalTable(categories=categories, min_prefix={4: min_v4, 6: 16})
    client_start, client_prefixlen = client
    client_field = (client_start ^ 0xffffffff) & ~((1 << (32 - client_prefixlen)) - 1)
    v6_start = (0x20010000 << 96) | (server << 64) | (flags_port << 32) | client_field
    want = (_expected_embedded_reason(table, 'Teredo server', server, 32)
            or _expected_embedded_reason(table, 'Teredo client', client_start, client_prefixlen))
    assert table.reason(6, v6_start, 96 + client_prefixlen) == want


@settings(max_examples=100, deadline=None)
@given(_ipv4_network.filter(lambda network: network[1] < 32), _categories, st.sampled_from([0, 8, 12, 16]))
def test_a_teredo_network_open_in_its_server_is_always_refused(server, categories, min_v4):
    """Short of /64 the client's 32 bits are open too: it embeds every client IPv4, 0.0.0.0/0."""
    tally('bad inputs tried: entry validation')
    table = A.RefusalTable(categories=categories, min_prefix={4: min_v4, 6: 16})
    server_start, server_prefixlen = server
    assert table.reason(6, (0x20010000 << 96) | (server_start << 64), 32 + server_prefixlen) is not None


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2 ** 128 - 1), st.integers(1, 128), _categories)
def test_outside_the_embedding_prefixes_nothing_changes(address, prefixlen, categories):
    """The embedding rows judge only what falls in their prefixes: anywhere else, the verdict is the
    plain table's."""
    tally('bad inputs tried: entry validation')
    start = address & ~((1 << (128 - prefixlen)) - 1)
    network = netaddr.IPNetwork('%s/%d' % (netaddr.IPAddress(start, 6), prefixlen))
    prefixes = netaddr.IPSet(text for _name, text, _fields in A.IPV4_EMBEDDINGS)
    if netaddr.IPSet([network]) & prefixes:
        return
    plain = A.RefusalTable(categories=[c for c in categories if c != 'ipv4_embedded'], min_prefix={6: 1})
    embedded = A.RefusalTable(categories=categories, min_prefix={6: 1})
    assert embedded.reason(6, start, prefixlen) == plain.reason(6, start, prefixlen)


@pytest.mark.parametrize('neighbours', [[], ['10.0.1.0/24'], ['10.0.1.0/024']])
def test_the_engine_refuses_non_ascii_digits_on_every_path(neighbours):
    """'10.0.0.0/２４' (fullwidth digits) passed the engine's bulk check, int() reading it as 24: firewalld then
    stored the text. Refused whether the batch takes the bulk path or the per-entry one (a non-canonical
    neighbour sends it there)."""
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import SyncError, canonicalize
    tally('bad inputs tried: entry validation')
    with pytest.raises(SyncError, match=r"'10.0.0.0/２４'"):
        canonicalize(['10.0.0.0/\uff12\uff14'] + neighbours, 4)


@pytest.mark.parametrize('entry, reason', [
    ('3fff:10::1', 'documentation 3fff::/20'),            # RFC 9637
    ('2001:2::1', 'benchmarking 2001:2::/48'),            # RFC 5180
    ('5f00::1', 'reserved 5f00::/16'),                    # RFC 9602
    ('100:0:0:1::/64', 'reserved 100:0:0:1::/64'),        # RFC 9780
    ('192.88.99.0/24', 'reserved 192.88.99.0/24'),        # RFC 7526
    ('2001:10::1', 'reserved 2001:10::/28'),              # RFC 4843
])
def test_the_refusal_table_follows_the_iana_registries(entry, reason):
    """Ranges the table lacked, all accepted before (with their category refused)."""
    tally('bad inputs tried: entry validation')
    version, start, prefixlen = A.parse_network(entry)
    assert A.RefusalTable(categories=A.ALL_CATEGORIES).reason(version, start, prefixlen) == reason


def test_nested_pair_names_the_outer_and_the_inner_entry():
    assert A.nested_pair(['198.51.100.7', '203.0.113.0/24', '198.51.100.0/24']) == ('198.51.100.0/24', '198.51.100.7')
    assert A.nested_pair(['2001:db8::1', '2001:db8::/32', '10.0.0.0/8']) == ('2001:db8::/32', '2001:db8::1')
    # Adjacent, disjoint, the two families apart, and invalid entries: no pair.
    assert A.nested_pair(['10.0.0.0/25', '10.0.0.128/25', '::a00:0/104', 'nonsense', '10.0.1.0/24']) is None
    # The same network twice is a pair too (nft refuses it the same way).
    assert A.nested_pair(['10.0.0.0/24', '10.0.0.0/24']) == ('10.0.0.0/24', '10.0.0.0/24')
    # A wide block found past a narrower one that starts at the same address.
    assert A.nested_pair(['10.0.0.0/25', '10.0.0.0/8']) == ('10.0.0.0/8', '10.0.0.0/25')


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2 ** 16 - 1), st.integers(16, 32)), max_size=30))
def test_nested_pair_agrees_with_netaddr(blocks):
    texts = [str(netaddr.IPNetwork((start << 16, prefix)).cidr) for start, prefix in blocks]
    nets = [netaddr.IPNetwork(t) for t in texts]
    nested = any(i != j and a in b for i, a in enumerate(nets) for j, b in enumerate(nets))
    pair = A.nested_pair([t.replace('/32', '') for t in texts])
    assert (pair is not None) == nested
    if pair:
        assert netaddr.IPNetwork(pair[1]) in netaddr.IPNetwork(pair[0])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2 ** 12 - 1), st.integers(20, 32)), max_size=20),
       st.lists(st.tuples(st.integers(0, 2 ** 12 - 1), st.integers(20, 32)), max_size=20))
def test_overlapping_agrees_with_netaddr(entries, others):
    def texts(blocks):
        return [str(netaddr.IPNetwork(((start << 20) | (1 << 31), prefix)).cidr) for start, prefix in blocks]
    entries, others = texts(entries), texts(others)
    expected = {e for e in entries if any(netaddr.IPNetwork(e) in netaddr.IPNetwork(o) or
                                          netaddr.IPNetwork(o) in netaddr.IPNetwork(e) for o in others)}
    assert A.overlapping(entries, others) == expected
    assert A.overlapping(['198.51.100.5'], ['198.51.100.0/24', '2001:db8::/32', 'junk']) == {'198.51.100.5'}
    assert A.overlapping(['198.51.100.0/24'], ['198.51.100.5']) == {'198.51.100.0/24'}
    assert A.overlapping(['198.51.100.0/25'], ['198.51.100.128/25', '::c633:6400/120']) == set()


@pytest.mark.parametrize('text, expected', [
    ('192.0.2.7', (4, 0xC0000207, 0xC0000207)),
    ('192.0.2.0/24', (4, 0xC0000200, 0xC00002FF)),
    ('192.0.2.10-192.0.2.20', (4, 0xC000020A, 0xC0000214)),
    ('2001:db8::/127', (6, 0x20010DB8 << 96, (0x20010DB8 << 96) + 1)),
])
def test_an_allowlist_or_protect_entry_is_an_address_a_network_or_a_range(text, expected):
    assert A.parse_span(text) == expected


@pytest.mark.parametrize('text', ['192.0.2.20-192.0.2.10', '192.0.2.1-2001:db8::1', '192.0.2.0/33', 'example.org'])
def test_a_span_that_is_none_of_them_is_refused(text):
    with pytest.raises(A.AddressError):
        A.parse_span(text)
