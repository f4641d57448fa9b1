"""The address-plan formats (rir_delegated, ip2asn) and the ASN lists of asns_from, against the real files (APNIC's
delegation file, an iptoasn.com extract, Spamhaus ASN-DROP) and the fixtures make_geo_fixtures.py writes.

Every expectation is computed here from the raw text with the ipaddress module, never by the code under test.
"""
import ipaddress
import json
import os

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist import addresses as A
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.feed_options import feed_problem
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.feeds import (
    FeedError, ProviderError, parse_asn_list, parse_feed,
)

from ansible_collections.fleetwall.blocklist.tests.helpers import FEEDS, tally


def read(*parts):
    with open(os.path.join(FEEDS, *parts), 'rb') as handle:
        return handle.read()


def labelled(result):
    """{network text: label} of a result, both families; a network listed twice must carry one label."""
    found = {}
    for version in (4, 6):
        bits = A.BITS[version]
        for key, label in zip(result.keys[version], result.labels[version]):
            # As the ipaddress module writes it (a /32 with its prefix length).
            text = str(ipaddress.ip_network(A.format_network(version, key >> 8, bits - (key & 0xff))))
            assert found.setdefault(text, label) == label, text
    return found


def rir_rows(body):
    """The data rows of an RIR statistics file, as field lists (version line, summaries and comments skipped)."""
    rows = []
    for line in body.decode().splitlines():
        fields = line.split('|')
        if not line or line.startswith('#') or len(fields) < 7 or fields[5] == 'summary':
            continue
        if not rows and fields[0][:1].isdigit():
            continue        # the version line: 2|apnic|20141224|records|startdate|enddate|UTCoffset
        rows.append(fields)
    return rows


def rir_expected(body, countries):
    """{network: country} the rows of ``countries`` in use (allocated, assigned) cover."""
    expected = {}
    for fields in rir_rows(body):
        if fields[1] not in countries or fields[6] not in ('allocated', 'assigned'):
            continue
        if fields[2] == 'ipv4':
            first = ipaddress.IPv4Address(fields[3])
            networks = ipaddress.summarize_address_range(first, first + int(fields[4]) - 1)
        elif fields[2] == 'ipv6':
            networks = [ipaddress.IPv6Network('%s/%s' % (fields[3], fields[4]))]
        else:
            continue
        for network in networks:
            expected[str(network)] = fields[1]
    return expected


# -- rir_delegated -----------------------------------------------------------------------------------------------

def test_the_real_apnic_file_gives_the_networks_of_the_countries_selected():
    body = read('rir', 'delegated-apnic-latest')
    result = parse_feed(body, name='apnic', fmt='rir_delegated', countries=['cn', 'JP'])
    expected = rir_expected(body, {'CN', 'JP'})
    assert labelled(result) == expected
    # Every IPv4 count in this file is a power of two, at an aligned start: one network a row.
    rows = rir_rows(body)
    selected = [f for f in rows if f[1] in ('CN', 'JP') and f[2] in ('ipv4', 'ipv6')]
    assert result.accepted == len(selected) == len(expected)
    assert result.invalid == 0 and result.refused_total == 0
    # What was not selected is counted, not lost: the asn rows and the other countries' rows.
    assert result.not_selected == len(rows) - len(selected)
    # The version line, the three summaries and the 27 comment lines.
    assert result.comments == 1 + 3 + 27
    assert len(result.keys[4]) > 5000 and len(result.keys[6]) > 500
    assert sorted(result.keys[4]) == result.keys[4]


def test_a_delegated_file_without_a_selection_is_refused():
    body = read('rir', 'delegated-apnic-latest')
    for selection in ({}, {'countries': []}, {'countries': None}):
        with pytest.raises(FeedError, match='whole Internet.*select what to block with countries'):
            parse_feed(body, name='apnic', fmt='rir_delegated', **selection)
    with pytest.raises(FeedError, match='does not say which AS holds a network'):
        parse_feed(body, name='apnic', fmt='rir_delegated', countries=['CN'], asns=[4134])


def test_the_extended_fixture_converts_counts_that_are_not_powers_of_two_exactly():
    body = read('delegated-fixture-extended')
    countries = {'ZA', 'KE', 'NG', 'EG', 'MA', 'CN', 'DE', 'BR'}
    result = parse_feed(body, name='fixture', fmt='rir_delegated', countries=sorted(countries))
    expected = rir_expected(body, countries)
    assert labelled(result) == expected
    rows = rir_rows(body)
    odd = [f for f in rows if f[2] == 'ipv4' and f[6] in ('allocated', 'assigned') and int(f[4]) & (int(f[4]) - 1)]
    assert len(odd) >= 20, 'the fixture must hold counts that are not powers of two'
    for fields in odd:
        first = ipaddress.IPv4Address(fields[3])
        pieces = list(ipaddress.summarize_address_range(first, first + int(fields[4]) - 1))
        assert len(pieces) > 1 and all(expected[str(piece)] == fields[1] for piece in pieces)
    # available and reserved rows (no country, or ZZ) and asn rows are never networks.
    unused = [f for f in rows if f[6] in ('available', 'reserved')]
    assert unused and not any(f[1] for f in unused if f[1] != 'ZZ')
    assert result.invalid == 0 and result.refused_total == 0
    in_use = [f for f in rows if f[2] != 'asn' and f[6] in ('allocated', 'assigned')]
    assert result.not_selected == len(rows) - len(in_use)
    # One country of several: only its networks, each labelled with it.
    za = parse_feed(body, name='fixture', fmt='rir_delegated', countries=['za'])
    assert labelled(za) == {network: cc for network, cc in expected.items() if cc == 'ZA'} != {}


def test_a_country_selection_is_checked():
    body = read('delegated-fixture-extended')
    for bad in (['China'], ['C1'], [''], ['ZA', 'south africa'], [86]):
        with pytest.raises(FeedError, match='is not a two-letter country code'):
            parse_feed(body, name='fixture', fmt='rir_delegated', countries=bad)
        assert 'is not a two-letter country code' in feed_problem({'countries': bad})
    assert feed_problem({'countries': ['cn', 'De']}) is None
    # A selection on a feed that is not an address plan is a mistake, not a filter that silently does nothing.
    with pytest.raises(FeedError, match='select the rows of an address plan'):
        parse_feed(b'198.51.100.7\n', name='list', countries=['CN'])


HOSTILE_ROWS = [
    ('fixture|ZA|ipv4|41.0.0.0|99999999999|20200101|allocated|X', 'runs past the end of the IPv4 space'),
    ('fixture|ZA|ipv4|255.255.255.0|512|20200101|allocated|X', 'runs past the end of the IPv4 space'),
    ('fixture|ZA|ipv4|41.0.0.0|%s|20200101|allocated|X' % ('9' * 5000), 'not a positive number'),
    ('fixture|ZA|ipv4|41.0.0.0|0|20200101|allocated|X', 'not a positive number'),
    ('fixture|ZA|ipv4|41.0.0.0|-256|20200101|allocated|X', 'not a positive number'),
    ('fixture|ZA|ipv4|41.0.0.0|٣|20200101|allocated|X', 'not a positive number'),
    ('fixture|ZA|ipv4|41.0.0|256|20200101|allocated|X', 'not an IPv4 address'),
    ('fixture|ZA|ipv4|2c0f::|256|20200101|allocated|X', 'not an IPv4 address'),
    ('fixture|ZA|ipv6|2c0f:f000::|129|20200101|allocated|X', 'prefix length is not a number from 0 to 128'),
    ('fixture|ZA|ipv6|2c0f:f000::|4096|20200101|allocated|X', 'prefix length is not a number from 0 to 128'),
    ('fixture|ZA|ipv6|2c0f:f001::|16|20200101|allocated|X', 'host bits set'),
    ('fixture|ZA|ipv6|41.0.0.0|32|20200101|allocated|X', 'not an IPv6 address'),
    ('fixture|ZA|ipv4|41.0.0.0|256|20200101|stolen|X', 'status'),
    ('fixture|ZA|ipv5|41.0.0.0|256|20200101|allocated|X', 'type'),
    ('fixture|ZA|ipv4|41.0.0.0', 'not a row of the RIR statistics format'),
]


@pytest.mark.parametrize('row, reason', HOSTILE_ROWS, ids=[r[1][:20] + str(i) for i, r in enumerate(HOSTILE_ROWS)])
def test_a_hostile_row_is_one_invalid_row_with_a_clear_reason(row, reason):
    tally('bad inputs tried: feed parser')
    good = read('delegated-fixture-extended')
    result = parse_feed(good + row.encode() + b'\n', name='fixture', fmt='rir_delegated', countries=['ZA'])
    assert result.invalid == 1
    assert reason in result.invalid_samples[0]['reason']
    assert labelled(result) == rir_expected(good, {'ZA'})


def test_ranges_past_what_may_be_blocked_are_refused_whole_and_bounded():
    # The whole IPv4 space as one row of one country: 32 bits of count, refused once (a range is one entry), and
    # an IPv6 /0: both within the size of their space, both named in the refusals.
    body = (b'fixture|ZA|ipv4|0.0.0.0|4294967296|20200101|allocated|X\n'
            b'fixture|ZA|ipv4|41.0.0.0|50331648|20200101|allocated|X\n'
            b'fixture|ZA|ipv6|::|0|20200101|allocated|X\n'
            b'fixture|ZA|ipv4|41.64.0.0|768|20200101|allocated|X\n')
    result = parse_feed(body, name='fixture', fmt='rir_delegated', countries=['ZA'])
    assert result.refused_total == 3 and result.invalid == 0
    assert sorted(e['entry'] for e in result.refused_entries) == ['0.0.0.0/0', '41.0.0.0-43.255.255.255', '::/0']
    assert labelled(result) == {'41.64.0.0/23': 'ZA', '41.64.2.0/24': 'ZA'}


def test_a_mostly_garbage_delegated_body_is_refused():
    body = b'2|fixture|20200101|9|19830101|20200101|+0000\n' + b'garbage|line\n' * 40 + \
        b'fixture|ZA|ipv4|41.64.0.0|768|20200101|allocated|X\n'
    # 768 addresses are two networks (a /23 and a /24): 40 invalid of 42 entries.
    with pytest.raises(FeedError, match='looks broken: 40 of 42 entries are invalid'):
        parse_feed(body, name='fixture', fmt='rir_delegated', countries=['ZA'])


# -- ip2asn ------------------------------------------------------------------------------------------------------

def ip2asn_expected(body, asns=(), countries=()):
    """{network: label} of the rows of ``asns`` (ints) or ``countries``, AS0 never."""
    expected = {}
    for line in body.decode().splitlines():
        start, end, asn, cc = line.split('\t')[:4]
        if asn == '0' or not (int(asn) in asns or cc.upper() in countries):
            continue
        label = 'AS%s %s' % (asn, cc) if len(cc) == 2 else 'AS%s' % asn
        for network in ipaddress.summarize_address_range(ipaddress.ip_address(start), ipaddress.ip_address(end)):
            expected[str(network)] = label
    return expected


def test_the_real_ip2asn_extract_gives_the_networks_of_the_asns_selected():
    body = read('ip2asn', 'ip2asn-v4.tsv')
    result = parse_feed(body, name='ip2asn', fmt='ip2asn', asns=[13335, '15169', 'as41264'])
    expected = ip2asn_expected(body, {13335, 15169, 41264})
    assert labelled(result) == expected
    assert set(expected.values()) == {'AS13335 US', 'AS15169 US', 'AS41264 CH'}
    lines = body.decode().splitlines()
    selected = [line for line in lines if line.split('\t')[2] in ('13335', '15169', '41264')]
    assert result.not_selected == len(lines) - len(selected)
    assert result.invalid == 0
    # By country: the one CN row (AS7497), with its AS in its label.
    china = parse_feed(body, name='ip2asn', fmt='ip2asn', countries=['cn'])
    assert labelled(china) == ip2asn_expected(body, countries={'CN'}) == {'1.1.1.1/32': 'AS7497 CN'}


def test_an_ip2asn_table_selects_by_asn_or_country_and_never_the_unrouted_rows():
    body = read('ip2asn-fixture.tsv')
    lines = body.decode().splitlines()
    assert any(':' in line for line in lines) and any(line.split('\t')[2] == '0' for line in lines)
    result = parse_feed(body, name='fixture', fmt='ip2asn', asns=['AS4134'], countries=['us', 'None'[:2]])
    expected = ip2asn_expected(body, {4134}, {'US', 'NO'})
    assert labelled(result) == expected
    assert any(':' in network for network in expected) and 'AS4134 CN' in expected.values()
    # Ranges that are not one CIDR became several, exactly.
    assert len(expected) > len([line for line in lines if line.split('\t')[2] != '0' and
                                (line.split('\t')[2] == '4134' or line.split('\t')[3] == 'US')])


def test_an_ip2asn_table_without_a_selection_or_with_a_bad_asn_is_refused():
    body = read('ip2asn-fixture.tsv')
    with pytest.raises(FeedError, match='whole Internet.*countries, asns or asns_from'):
        parse_feed(body, name='fixture', fmt='ip2asn')
    for bad in (['ASX'], ['AS'], [0], ['AS0'], [-5], [4294967296], [True], ['13335.5'], [[13335]]):
        with pytest.raises(FeedError, match='is not an AS number'):
            parse_feed(body, name='fixture', fmt='ip2asn', asns=bad)
        assert 'is not an AS number' in feed_problem({'asns': bad})
    assert feed_problem({'asns': [13335, '15169', 'AS4134', 'as3320']}) is None


def test_malformed_ip2asn_rows_are_counted_invalid_and_a_mostly_garbage_table_is_refused():
    good = read('ip2asn-fixture.tsv')
    bad = (b'45.0.0.0\t45.0.0.255\tAS4134\tCN\tnot a number\n'          # AS column not a number
           b'45.0.1.0 45.0.1.255 4134 CN spaces, not tabs\n'            # not the table's columns
           b'45.0.3.0\t45.0.2.0\t4134\tCN\tend before start\n'
           b'45.0.3.0\t2a0e::\t4134\tCN\tmixed families\n'
           b'45.0.4.0\t45.0.4.255\t4134\n'                             # three columns
           b'45.0.5.0\t45.0.5.255\t41=34,x\tCN\tselected by country, its AS not a number\n')
    result = parse_feed(good + bad, name='fixture', fmt='ip2asn', asns=[4134])
    assert result.invalid == 6
    with_country = parse_feed(good + bad, name='fixture', fmt='ip2asn', countries=['CN'])
    assert with_country.invalid == 6 and all('=' not in label for label in labelled(with_country).values())
    assert labelled(result) == ip2asn_expected(good, {4134})
    with pytest.raises(FeedError, match='looks broken'):
        parse_feed(b'x\ty\tz\tw\tgarbage\n' * 50 + good.splitlines(True)[0], name='fixture', fmt='ip2asn',
                   asns=[4134])


def test_a_500k_row_table_is_refused_past_max_entries_before_it_is_parsed():
    body = read('ip2asn-fixture.tsv') * 10
    with pytest.raises(FeedError, match='more than max_entries'):
        parse_feed(body, name='fixture', fmt='ip2asn', asns=[4134], max_entries=1000)


def test_labels_follow_their_keys_through_the_sort():
    body = b'45.8.9.0\t45.8.9.255\t3\tDE\tc\n45.8.1.0\t45.8.1.255\t1\tZA\ta\n45.8.5.0\t45.8.5.255\t2\tBR\tb\n'
    result = parse_feed(body, name='f', fmt='ip2asn', asns=[1, 2, 3])
    assert result.keys[4] == sorted(result.keys[4])
    assert labelled(result) == {'45.8.1.0/24': 'AS1 ZA', '45.8.5.0/24': 'AS2 BR', '45.8.9.0/24': 'AS3 DE'}


# -- ASN lists (asns_from) ---------------------------------------------------------------------------------------

def test_the_real_asn_drop_list_is_read_with_its_record_count_checked():
    body = read('spamhaus', 'asn_drop.json')
    records = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    numbers = {record['asn'] for record in records if 'asn' in record}
    result = parse_asn_list(body, name='asn_drop', fmt='jsonl', field='asn', require_metadata=True)
    assert result.asns == numbers and len(numbers) == 201
    assert parse_asn_list(body, name='asn_drop').asns == numbers        # auto: JSON lines
    # Cut short: the metadata record is missing, or it announces more records than came.
    cut = b''.join(body.splitlines(True)[:150])
    with pytest.raises(FeedError, match='without its metadata record'):
        parse_asn_list(cut, name='asn_drop', fmt='jsonl', require_metadata=True)
    with pytest.raises(FeedError, match='announces 201 records but the body has 200'):
        parse_asn_list(b''.join(body.splitlines(True)[1:]), name='asn_drop', fmt='jsonl')


def test_a_plain_asn_list_and_its_faults():
    result = parse_asn_list(b'# ASNs\nAS932\n6060 ; a comment\nas6134\n\n400506\n', name='plain')
    assert result.asns == {932, 6060, 6134, 400506} and result.invalid == 0
    with pytest.raises(FeedError, match='looks broken'):
        parse_asn_list(b'AS932\n' + b'not an asn\n' * 5, name='plain')
    with pytest.raises(ProviderError, match='quota exceeded'):
        parse_asn_list(b'{"error": "quota exceeded"}', name='json', fmt='jsonl')
    with pytest.raises(FeedError, match='HTML page'):
        parse_asn_list(b'<!DOCTYPE html><html><body>Just a moment...</body></html>', name='html')
    with pytest.raises(FeedError, match='an ASN list is read as'):
        parse_asn_list(b'AS1\n', name='csv', fmt='csv')


def test_max_entries_bounds_the_networks_the_rows_make_not_only_the_rows():
    """One IPv6 row from ::1 to ...:fffe is 190 networks: 20 such rows pass a bound of 1,000 lines and
    are refused at 1,000 networks, in bounded memory, with a clear message."""
    rows = ''.join('2a00:%x::1\t2a00:%x:ffff:ffff:ffff:ffff:ffff:fffe\t64500\tZZ\tEXAMPLE\n' % (n, n)
                   for n in range(1, 21))
    with pytest.raises(FeedError, match=r'more than max_entries \(1000\) networks'):
        parse_feed(rows, name='big', fmt='ip2asn', asns=[64500], max_entries=1000)
    expected = len(list(ipaddress.summarize_address_range(ipaddress.ip_address('2a00:1::1'), ipaddress.ip_address(
        '2a00:1:ffff:ffff:ffff:ffff:ffff:fffe'))))
    assert expected == 190
    assert parse_feed(rows[:rows.index('\n') + 1], name='one', fmt='ip2asn', asns=[64500], max_entries=1000).accepted \
        == expected
