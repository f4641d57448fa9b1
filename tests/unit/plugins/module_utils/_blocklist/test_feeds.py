"""The parser against real third-party feeds (tests/data/feeds, copied from shared/feeds)."""
import os

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist import addresses as A
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.feeds import FeedError, parse_feed

from conftest import FEEDS


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
    published = {line for line in read('ipsum', filename).decode().split()}
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
    assert texts(result) == {'198.51.100.7', '1.2.3.4'}
    assert result.invalid == 2


def test_ipsum_count_column_required_in_ipsum_format():
    result = parse_feed(b'198.51.100.7\t5\n198.51.100.8\n198.51.100.9\tx\n' + b'203.0.113.1\t9\n' * 30,
                        fmt='ipsum', min_count=3)
    assert result.invalid == 2
    assert '198.51.100.7' in texts(result)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash(body):
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
    try:
        parse_feed(text, max_invalid_fraction=1.0)
    except FeedError:
        pass
