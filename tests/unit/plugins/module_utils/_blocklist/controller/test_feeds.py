"""The parser against real third-party feeds (tests/data/feeds, copied from shared/feeds)."""
import os

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist import addresses as A
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.feeds import FeedError, ProviderError, parse_feed

from ansible_collections.fleetwall.blocklist.tests.helpers import FEEDS, tally


def read(*parts):
    with open(os.path.join(FEEDS, *parts), 'rb') as handle:
        return handle.read()


def texts(result, version=4):
    bits = A.BITS[version]
    return {A.format_network(version, k >> 8, bits - (k & 0xff)) for k in result.keys[version]}


def test_firehol_level1_counts_and_bogons():
    body = read('firehol', 'firehol_level1.netset')
    result = parse_feed(body, name='firehol')
    lines = body.decode().splitlines()
    data_lines = [line for line in lines if line and not line.startswith('#')]
    assert result.comments == len(lines) - len(data_lines) == 33
    assert result.invalid == 0
    # Every data line is either accepted or refused, never dropped silently.
    assert result.accepted + result.refused_total == len(data_lines) == 2892
    assert result.refused == {
        'unspecified 0.0.0.0/8': 1, 'private 10.0.0.0/8': 1, 'shared 100.64.0.0/10': 1,
        'loopback 127.0.0.0/8': 1, 'link_local 169.254.0.0/16': 1, 'private 172.16.0.0/12': 1,
        'private 192.168.0.0/16': 1, 'reserved 192.0.0.0/24': 1, 'broader than /8': 1,
    }
    assert {r['entry'] for r in result.refused_entries} >= {'10.0.0.0/8', '127.0.0.0/8', '224.0.0.0/3'}
    assert '198.18.0.0/15' in texts(result)


@pytest.mark.parametrize('level, filename', [(3, 'levels_3.txt'), (8, 'levels_8.txt')])
def test_ipsum_min_count_matches_published_levels(level, filename):
    result = parse_feed(read('ipsum', 'ipsum.txt'), fmt='ipsum', min_count=level)
    published = set(read('ipsum', filename).decode().split())
    assert texts(result) == published
    assert result.below_min_count == 120437 - 7 - len(published)


def test_ipsum_without_min_count_takes_every_address():
    result = parse_feed(read('ipsum', 'ipsum.txt'), fmt='ipsum')
    assert result.accepted == 120437 - 7
    assert result.invalid == 0


@pytest.mark.parametrize('filename, v4, v6', [
    ('drop.txt', 989, 0), ('edrop.txt', 322, 0), ('drop_ipv6.txt', 0, 51),
])
def test_spamhaus_mirror_with_trailing_spaces(filename, v4, v6):
    body = read('spamhaus', filename)
    assert body.splitlines()[0].endswith(b' ')
    result = parse_feed(body)
    assert (len(result.keys[4]), len(result.keys[6]), result.invalid) == (v4, v6, 0)


def test_spamhaus_raw_format_with_comments():
    # The publisher's own format: ';' header lines and inline SBL references.
    body = (b'; Spamhaus DROP List 2026/11/22 - (c) 2026 The Spamhaus Project SLU\r\n'
            b'; Last-Modified: Sun, 22 Nov 2026 13:31:09 GMT\r\n'
            b'; Expires: Mon, 23 Nov 2026 00:33:33 GMT\r\n'
            b'1.10.16.0/20 ; SBL256894\r\n'
            b'1.19.0.0/16 ; SBL434604\r\n')
    result = parse_feed(body, fmt='spamhaus_drop')
    assert texts(result) == {'1.10.16.0/20', '1.19.0.0/16'}
    assert result.comments == 3


def test_plain_list_quirks():
    body = ('\ufeff# header\r\n'
            '198.51.100.7   # inline comment\r\n'
            '\t203.0.113.0/24 ; semicolon comment \r\n'
            '\r\n'
            '2001:DB8:1::/48\n'
            '192.0.2.1-192.0.2.6\n'
            '1.2.3.4/24\n').encode()
    result = parse_feed(body, max_invalid_fraction=0.5)
    assert texts(result) == {'198.51.100.7', '203.0.113.0/24', '192.0.2.1', '192.0.2.2/31', '192.0.2.4/31', '192.0.2.6'}
    assert texts(result, 6) == {'2001:db8:1::/48'}
    assert result.invalid == 1
    assert result.invalid_samples == [{'line': 7, 'text': '1.2.3.4/24', 'reason': 'host bits set (did you mean 1.2.3.0/24?)'}]


def test_invalid_lines_are_counted_until_the_feed_looks_broken():
    good = ''.join('198.51.100.%d\n' % i for i in range(1, 96))
    ok = parse_feed((good + 'junk\n' * 5).encode(), max_invalid_fraction=0.1)
    assert (ok.accepted, ok.invalid, len(ok.invalid_samples)) == (95, 5, 5)
    with pytest.raises(FeedError, match=r'looks broken: 20 of 115 entries are invalid'):
        parse_feed((good + 'junk\n' * 20).encode(), name='f', max_invalid_fraction=0.1)


def test_json_is_not_a_plain_list():
    with pytest.raises(FeedError, match='looks broken'):
        parse_feed(read('spamhaus', 'asn_drop.json'))


def test_html_error_page_is_refused():
    with pytest.raises(FeedError, match='HTML page'):
        parse_feed(b'\n  <!DOCTYPE html>\n<html><body>Please log in</body></html>')


def test_shell_and_nft_syntax_is_only_an_invalid_line():
    body = b'198.51.100.7\n1.2.3.4 }; flush ruleset; {\n$(reboot)\n`id`\n' + b'203.0.113.%d\n' * 0
    result = parse_feed(body, max_invalid_fraction=1.0)
    # An address followed by anything but a count or a comment is not a list line at all.
    assert texts(result) == {'198.51.100.7'}
    assert result.invalid == 3


def test_ipsum_count_column_required_in_ipsum_format():
    result = parse_feed(b'198.51.100.7\t5\n198.51.100.8\n198.51.100.9\tx\n' + b'203.0.113.1\t9\n' * 30,
                        fmt='ipsum', min_count=3)
    assert result.invalid == 2
    assert '198.51.100.7' in texts(result)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash(body):
    tally('bad inputs tried: feed parser')
    try:
        result = parse_feed(body, max_invalid_fraction=1.0)
    except FeedError:
        return
    # Every line is a comment, an invalid line or at least one network.
    assert result.comments + result.invalid <= result.lines
    assert result.lines - result.comments - result.invalid <= result.accepted + result.refused_total


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=500))
def test_random_text_never_crashes(text):
    tally('bad inputs tried: feed parser')
    try:
        parse_feed(text, max_invalid_fraction=1.0)
    except FeedError:
        pass


# -- formats beyond plain text, on fixtures built from the publishers' documented formats
# (tests/data/feeds/providers, written by make_fixtures.py from the real files above).

def test_spamhaus_json_lines_match_the_text_list():
    result = parse_feed(read('providers', 'drop_v4.json'))
    text = parse_feed(read('spamhaus', 'drop.txt'))
    assert texts(result) == texts(text) and len(result.keys[4]) == 989
    assert result.comments == 1  # the metadata record
    v6 = parse_feed(read('providers', 'drop_v6.json'), fmt='jsonl')
    assert len(v6.keys[6]) == 51


def test_spamhaus_json_lines_cut_short_is_an_error():
    lines = read('providers', 'drop_v4.json').splitlines(True)
    with pytest.raises(FeedError, match='announces 989 records but the body has 900'):
        parse_feed(b''.join(lines[:900] + lines[-1:]))


def test_spamhaus_json_lines_without_their_metadata_record():
    # Cut before the last line, the body has no count to check: only a feed that requires the record notices.
    lines = read('providers', 'drop_v4.json').splitlines(True)
    assert len(parse_feed(b''.join(lines[:538])).keys[4]) == 538
    with pytest.raises(FeedError, match='ends without its metadata record'):
        parse_feed(b''.join(lines[:538]), require_metadata=True)
    # A metadata record without an integer count is no count either.
    for record in (b'{"type": "metadata"}\n', b'{"type": "metadata", "records": "989"}\n',
                   b'{"type": "metadata", "records": true}\n'):
        with pytest.raises(FeedError, match='ends without its metadata record'):
            parse_feed(b''.join(lines[:-1]) + record, require_metadata=True)
    assert len(parse_feed(read('providers', 'drop_v4.json'), require_metadata=True).keys[4]) == 989


def test_abuseipdb_json_with_scores():
    import json
    body = read('providers', 'abuseipdb_blacklist.json')
    records = json.loads(body)['data']
    result = parse_feed(body, fmt='json', query='data[].[ipAddress, abuseConfidenceScore]')
    assert result.scores is not None
    assert result.accepted == len(records) == 2005
    assert sorted(result.scores[4] + result.scores[6]) == sorted(r['abuseConfidenceScore'] for r in records)
    high = parse_feed(body, fmt='json', query='data[].[ipAddress, abuseConfidenceScore]', min_score=90)
    assert high.accepted == sum(1 for r in records if r['abuseConfidenceScore'] >= 90)
    assert high.below_min_score == len(records) - high.accepted
    # Addresses only (no score): the same addresses, unscored.
    bare = parse_feed(body, fmt='json', query='data[].ipAddress')
    assert bare.scores is None and texts(bare) == texts(result)


def test_wayscloud_objects_and_query_errors():
    body = read('providers', 'wayscloud_threats.json')
    result = parse_feed(body, query='threats[].{address: ip_address, score: threat_score}')
    assert result.accepted == 300 and result.scores is not None
    with pytest.raises(FeedError, match='not valid JMESPath'):
        parse_feed(body, fmt='json', query='threats[')
    with pytest.raises(FeedError, match='yields dict, not a list'):
        parse_feed(body, fmt='json', query='threats[0]')
    with pytest.raises(FeedError, match='needs query'):
        parse_feed(body, fmt='json')


@pytest.mark.parametrize('body', [
    b'{"errors": [{"detail": "Authentication failed. Your API key is either missing", "status": 401}]}',
    b'{"error": "Your API key is either missing"}',
])
def test_json_error_document_is_a_provider_error(body):
    with pytest.raises(ProviderError, match='provider answered with an error: .*API key is either missing'):
        parse_feed(body, fmt='json', query='data[].ipAddress')
    with pytest.raises(ProviderError):
        parse_feed(body)


def test_tor_exit_addresses():
    body = read('providers', 'exit-addresses')
    result = parse_feed(body)
    exits = [line.split()[1] for line in body.decode().splitlines() if line.startswith('ExitAddress')]
    assert len(exits) == 40 and texts(result) == set(exits)
    assert result.invalid == 0 and result.comments == 120


def test_csv_named_columns():
    body = read('providers', 'threats.csv')
    result = parse_feed(body, fmt='csv', field='ip', score_field='score', min_score=70)
    rows = [line.split(',') for line in body.decode().splitlines()[2:]]
    assert result.accepted == sum(1 for r in rows if int(r[2]) >= 70)
    assert result.below_min_score == len(rows) - result.accepted
    by_index = parse_feed(body, fmt='csv', field='1')
    assert texts(by_index) == {r[1] for r in rows}
    with pytest.raises(FeedError, match="no column 'address'"):
        parse_feed(body, fmt='csv', field='address')


_octet = st.sampled_from(['0', '1', '7', '10', '100', '127', '169', '172', '192', '198', '203', '224', '255',
                          '01', '256', '45', '185'])
_line = st.one_of(
    st.builds(lambda a, b, c, d: '.'.join((a, b, c, d)), _octet, _octet, _octet, _octet),
    st.builds(lambda a, b, c, d, p: '%s.%s.%s.%s/%s' % (a, b, c, d, p), _octet, _octet, _octet, _octet,
              st.sampled_from(['0', '4', '7', '8', '08', '12', '16', '24', '28', '31', '32', '33', '', 'x', '²'])),
    st.sampled_from(['2001:db8::1', '::1', 'fe80::/10', '  1.2.3.4  ', '1.2.3.4 # c', '# c', '', '1.2.3.4\t5']),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_line, max_size=40))
def test_fast_path_agrees_with_the_full_parser(lines):
    """The bare-IPv4 and IPv4-CIDR fast paths accept, refuse and reject exactly what the parser does."""
    tally('bad inputs tried: feed parser')
    refusals = A.RefusalTable()
    want, refused, invalid = [], 0, 0
    for line in lines:
        token = line.split('#')[0].split(';')[0].split()
        if not token:
            continue
        try:
            version, start, prefixlen = A.parse_network(token[0])
        except A.AddressError:
            invalid += 1
            continue
        if refusals.reason(version, start, prefixlen):
            refused += 1
        else:
            want.append((version, A.network_key(version, start, prefixlen)))
    result = parse_feed('\n'.join(lines), max_invalid_fraction=1.0)
    got = [(4, k) for k in result.keys[4]] + [(6, k) for k in result.keys[6]]
    assert sorted(got) == sorted(want)
    assert (result.refused_total, result.invalid) == (refused, invalid)


# -- a range line is one entry: judged whole, as a CIDR line is

def test_a_range_broader_than_the_limit_is_refused_whole():
    """'1.0.0.0-223.255.255.255' split into CIDRs has a /8 among pieces broader than /8: that /8 used to
    be accepted from a line that covers most of the IPv4 internet."""
    tally('bad inputs tried: feed parser')
    result = parse_feed('1.0.0.0-223.255.255.255\n198.51.100.7\n', max_invalid_fraction=1.0)
    assert texts(result) == {'198.51.100.7'}
    assert result.refused == {'broader than /8': 1}
    assert result.refused_entries[0]['entry'] == '1.0.0.0-223.255.255.255'
    # A range within the limit is accepted as its CIDRs.
    assert texts(parse_feed('5.0.0.0-6.0.0.255\n')) == {'5.0.0.0/8', '6.0.0.0/24'}


_v4 = st.integers(0, (1 << 32) - 1)


@settings(max_examples=400, deadline=None)
@given(_v4, st.integers(0, 1 << 26), st.sampled_from([8, 12, 16]))
def test_a_range_and_its_cidr_split_get_the_same_verdict(first, size, min_prefix):
    """Accepted whole exactly when every CIDR of its split is accepted on a line of its own; refused whole,
    once, under the reason of one of them, otherwise."""
    tally('bad inputs tried: feed parser')
    last = min(first + size, (1 << 32) - 1)
    refusals = A.RefusalTable(min_prefix={4: min_prefix})
    text = '%s-%s' % (A.format_address(4, first), A.format_address(4, last))
    pieces = list(A.ranges_to_networks([(first, last)], 32))
    whole = parse_feed(text, refusals=refusals, max_invalid_fraction=1.0)
    split = parse_feed('\n'.join(A.format_network(4, s, p) for s, p in pieces), refusals=refusals,
                       max_invalid_fraction=1.0)
    if split.refused_total:
        assert (whole.accepted, whole.refused_total) == (0, 1)
        assert set(whole.refused) <= set(split.refused)
    else:
        assert (whole.refused_total, sorted(whole.keys[4])) == (0, sorted(split.keys[4]))


def test_only_ascii_digits_are_an_ipsum_count():
    """'²' is a digit to str.isdigit() and not to int(): it aborted the whole build."""
    tally('bad inputs tried: feed parser')
    result = parse_feed('91.240.118.9\t\u00b2\n198.51.100.7\t3\n', fmt='ipsum', min_count=1, max_invalid_fraction=1.0)
    assert texts(result) == {'198.51.100.7'} and result.invalid == 1


def test_more_lines_than_max_entries_is_refused_before_parsing():
    tally('bad inputs tried: feed parser')
    body = b'198.51.100.7\n' * 1001
    with pytest.raises(FeedError, match=r'1001 lines, more than max_entries \(1000\)'):
        parse_feed(body, max_entries=1000)
    assert parse_feed(body[:-13 * 1], max_entries=1000).accepted == 1000
    # Lines ended by CR alone are lines too: they were not counted, and such a body passed any max_entries.
    with pytest.raises(FeedError, match=r'1001 lines, more than max_entries \(1000\)'):
        parse_feed(body.replace(b'\n', b'\r'), max_entries=1000)
    with pytest.raises(FeedError, match=r'3 entries, more than max_entries \(2\)'):
        parse_feed('["198.51.100.1", "198.51.100.2", "198.51.100.3"]', fmt='json', query='[]', max_entries=2)


def test_deeply_nested_json_is_a_feed_error():
    tally('bad inputs tried: feed parser')
    with pytest.raises(FeedError, match='nested too deeply'):
        parse_feed('[' * 100000 + ']' * 100000, fmt='json', query='[]')


@pytest.mark.parametrize('separator', ['\x0b', '\x0c', '\x1c', '\x1d', '\x1e', '\x85', '\u2028', '\u2029'])
def test_only_line_feeds_and_carriage_returns_end_a_line(separator):
    """str.splitlines() also splits at these: one line would silently become two entries."""
    tally('bad inputs tried: feed parser')
    result = parse_feed('45.33.0.9%s45.33.0.10\r\n198.51.100.7\r198.51.100.8\n' % separator, max_invalid_fraction=1.0)
    assert texts(result) == {'198.51.100.7', '198.51.100.8'}
    assert (result.lines, result.invalid) == (3, 1)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab\r\n', max_size=40), st.integers(min_value=1, max_value=6))
def test_lines_read_a_chunk_at_a_time_are_the_lines_split_at_once(text, chunk_chars):
    # The text formats read a big body a mebibyte at a time; a chunk may end anywhere, also inside a CRLF.
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller import feeds
    assert list(feeds._iter_lines(feeds._lf_only(text), chunk_chars=chunk_chars)) == feeds._split_lines(text)


def test_each_feeds_keys_come_sorted_with_their_scores():
    # Sorted, one feed's keys cost the merge one pass and the provenance no dictionary.
    result = parse_feed('198.51.100.9\n2001:db8::1\n198.51.100.7\n203.0.113.0/24\n198.51.100.9\n')
    assert result.keys[4] == sorted(result.keys[4]) and len(result.keys[4]) == 4
    result = parse_feed('[["198.51.100.9", 50], ["198.51.100.7", 90], ["198.51.100.8", 70]]', fmt='json', query='@')
    assert [(A.format_network(4, key >> 8, 32), score) for key, score in zip(result.keys[4], result.scores[4])] \
        == [('198.51.100.7', 90.0), ('198.51.100.8', 70.0), ('198.51.100.9', 50.0)]


# -- IPv4 inside IPv6 (6to4, NAT64, IPv4-compatible, Teredo): judged by the IPv4 it embeds, wherever a feed is read

def test_ipv4_embedded_in_ipv6_is_refused_by_what_it_embeds():
    tally('bad inputs tried: feed parser')
    body = '\n'.join([
        '2002:c0a8:101::1',                          # 6to4 of 192.168.1.1
        '64:ff9b::/96',                              # the whole NAT64 prefix
        '64:ff9b::7f00:1',                           # NAT64 of 127.0.0.1
        '2001:0:4136:e378:8000:63bf:f5fe:fdfc',      # Teredo client 10.1.2.3
        '::a9fe:101',                                # IPv4-compatible 169.254.1.1
        '2002:808:808::/48',                         # 6to4 of 8.8.8.8: an ordinary entry
        '64:ff9b::808:808',                          # NAT64 of 8.8.8.8
    ]) + '\n'
    result = parse_feed(body, max_invalid_fraction=1.0)
    assert texts(result, 6) == {'2002:808:808::/48', '64:ff9b::808:808'}
    assert result.refused == {
        '6to4 of private 192.168.0.0/16': 1, 'whole NAT64 prefix 64:ff9b::/96': 1,
        'NAT64 of loopback 127.0.0.0/8': 1, 'Teredo client of private 10.0.0.0/8': 1,
        'IPv4-compatible of link_local 169.254.0.0/16': 1,
    }
    assert {r['entry'] for r in result.refused_entries} >= {'2002:c0a8:101::1', '64:ff9b::/96'}
    # The JSON formats go through the same collector.
    result = parse_feed('["2002:c0a8:101::1", "2002:808:808::1"]', fmt='json', query='[]')
    assert texts(result, 6) == {'2002:808:808::1'} and result.refused == {'6to4 of private 192.168.0.0/16': 1}


def test_a_range_line_in_an_embedding_prefix_is_judged_whole():
    tally('bad inputs tried: feed parser')
    # 6to4 of 172.31.255.255 (private) to 172.32.0.0 (public): one of its two /48s is refused, so all of it is.
    mixed = '2002:ac1f:ffff::-2002:ac20:0:ffff:ffff:ffff:ffff:ffff'
    result = parse_feed(mixed + '\n2002:808:808::-2002:808:809:ffff:ffff:ffff:ffff:ffff\n', max_invalid_fraction=1.0)
    assert texts(result, 6) == {'2002:808:808::/47'}
    assert result.refused == {'6to4 of private 172.16.0.0/12': 1}
    assert result.refused_entries[0]['entry'] == mixed
    # The whole of 2002::/16 as a range: broader than the IPv6 minimum, and with that lowered, the prefix whole.
    whole = '2002::-2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff\n'
    assert parse_feed(whole).refused == {'broader than /19': 1}
    assert parse_feed(whole, refusals=A.RefusalTable(min_prefix={6: 8})).refused == {'whole 6to4 prefix 2002::/16': 1}
    assert parse_feed('64:ff9b::-64:ff9b::ffff:ffff\n').refused == {'whole NAT64 prefix 64:ff9b::/96': 1}


def _embedded_range(embedding, first, last):
    """The IPv6 range line embedding IPv4 first..last (for Teredo, as clients of a public server)."""
    if embedding == '6to4':
        low, high = (0x2002 << 112) | (first << 80), (0x2002 << 112) | (last << 80) | ((1 << 80) - 1)
    elif embedding == 'NAT64':
        low, high = (0x64ff9b << 96) | first, (0x64ff9b << 96) | last
    else:
        # The client is stored inverted, so the range runs from the last client to the first.
        base = (0x20010000 << 96) | (A.parse_network('65.54.227.120')[1] << 64) | (0x800063bf << 32)
        low, high = base | (last ^ 0xffffffff), base | (first ^ 0xffffffff)
    return '%s-%s' % (A.format_address(6, low), A.format_address(6, high))


@settings(max_examples=300, deadline=None)
@given(_v4, st.integers(0, 1 << 26), st.sampled_from([8, 12, 16]), st.sampled_from(['6to4', 'NAT64', 'Teredo']))
def test_an_embedded_range_line_gets_the_verdict_of_its_ipv4_range(first, size, min_prefix, embedding):
    """Each CIDR of the IPv6 range's split embeds one CIDR of the IPv4 range's split, so the lines are
    refused together, or accepted as the same number of networks."""
    tally('bad inputs tried: feed parser')
    last = min(first + size, (1 << 32) - 1)
    refusals = A.RefusalTable(min_prefix={4: min_prefix})
    ipv4 = parse_feed('%s-%s' % (A.format_address(4, first), A.format_address(4, last)), refusals=refusals,
                      max_invalid_fraction=1.0)
    ipv6 = parse_feed(_embedded_range(embedding, first, last), refusals=refusals, max_invalid_fraction=1.0)
    assert (ipv6.refused_total, ipv6.accepted) == (ipv4.refused_total, ipv4.accepted)


def test_a_netset_cut_short_of_its_declared_entries_is_a_failed_fetch():
    """FireHOL declares '# Entries : 2892 subnets'; a body cut at a line boundary (a closed connection, no
    Content-Length) published 470 of 898 entries before."""
    body = read('firehol', 'firehol_level1.netset')
    assert parse_feed(body).accepted > 2800                # the whole file holds what it declares
    tally('bad inputs tried: feed parser')
    cut = body[:len(body) // 2]
    cut = cut[:cut.rindex(b'\n') + 1]
    with pytest.raises(FeedError, match=r'declares 2892 entries but the body has \d+; the download was cut short'):
        parse_feed(cut)


# -- A big line-format body is parsed in two processes: the result is the one a single process gives

PARALLEL_CHECK = r"""
import random, sys, threading, time
sys.path.insert(0, %r)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller import feeds
assert threading.active_count() == 1
rng = random.Random(7)
lines = ['# Entries         : 1 subnets', '']
for index in range(8000):   # 1,200 refused: past REFUSED_LIST_LIMIT, across both halves
    kind = rng.random()
    if kind < 0.5:
        lines.append('%%d.%%d.%%d.%%d' %% (rng.randrange(1, 223), rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    elif kind < 0.6:
        lines.append('%%d.%%d.%%d.0/24' %% (rng.randrange(1, 223), rng.randrange(256), rng.randrange(256)))
    elif kind < 0.75:
        lines.append('10.%%d.%%d.%%d' %% (rng.randrange(256), rng.randrange(256), rng.randrange(256)))   # refused
    elif kind < 0.8:
        lines.append('2001:db8:%%x::/48' %% rng.randrange(65536))
    elif kind < 0.83:
        lines.append('not an address %%d' %% index)                                                    # invalid
    elif kind < 0.9:
        lines.append('# a comment')
    else:
        lines.append('198.51.100.%%d' %% rng.randrange(4))                                            # repeats
body = '\r\n'.join(lines[:3000]) + '\n' + '\n'.join(lines[3000:]) + '\n'
ipsum = ''.join('%%d.%%d.%%d.%%d\t%%d\n' %% (rng.randrange(1, 223), rng.randrange(256), rng.randrange(256),
                                         rng.randrange(256), rng.randrange(1, 9)) for _ in range(3000))

fallbacks = []
def parse(text, **options):
    result = feeds.parse_feed(text, max_invalid_fraction=0.5, **options)
    summary = result.summary()
    fallbacks.append(summary.pop('parse_fallback', None))
    return (summary, result.keys, result.refused_entries, result.refused_truncated)

forks = []
fork_child = feeds.fork_child
def counting_fork(*args):
    pid = fork_child(*args)
    forks.append(pid)
    return pid
feeds.fork_child = counting_fork

for text, options in ((body, {}), (ipsum, {'fmt': 'ipsum', 'min_count': 3})):
    feeds.PARALLEL_MIN_LINES = 10 ** 9
    alone = parse(text, **options)
    feeds.PARALLEL_MIN_LINES = 10
    assert parse(text, **options) == alone, 'two processes disagree with one'
    assert forks and forks[-1] is not None, 'the fork path was not taken'
    assert fallbacks[-1] is None, fallbacks[-1]
    assert options or (alone[0]['invalid'] and alone[3] and len(alone[2]) == feeds.REFUSED_LIST_LIMIT)

# A child that fails, or hangs past the timeout, leaves the parent to parse its half: the same result.
feeds.PARALLEL_MIN_LINES = 10 ** 9
alone = parse(body)
feeds.PARALLEL_MIN_LINES = 10
def failing(self):
    raise RuntimeError('the child fails')
feeds.FeedParseResult.transferable = failing
assert parse(body) == alone
assert 'failed or took longer' in fallbacks[-1], fallbacks[-1]
def hanging(self):
    time.sleep(120)
feeds.FeedParseResult.transferable = hanging
feeds.PARALLEL_MIN_WAIT = feeds.PARALLEL_TIMEOUT = 1
started = time.monotonic()
assert parse(body) == alone
assert time.monotonic() - started < 30 and 'took longer than 1 s' in fallbacks[-1], fallbacks[-1]
print(len(forks))
"""


def test_a_big_body_parsed_in_two_processes_gives_what_one_gives(tmp_path):
    # In a fresh interpreter: the fork is (rightly) taken only in a single-threaded process.
    import subprocess
    import sys
    from ansible_collections.fleetwall.blocklist.tests.helpers import COLLECTIONS
    tally('bad inputs tried: feed parser')
    proc = subprocess.run([sys.executable, '-c', PARALLEL_CHECK % COLLECTIONS], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '4'
