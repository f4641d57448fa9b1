"""A parser never crashes a build: hostile bodies for every format and option, built to reach deep into each
(valid-looking structure, hostile values), through parse_feed and through a whole build.

parse_feed may refuse a body only with FeedError (ProviderError included); whatever it returns holds valid,
allowed networks and finite scores.  In a build, the same body is that feed's failure at worst: it keeps its
last good copy (``cached``) or parses (``fresh``), and the next feed of the same build is still refreshed.
"""
import datetime
import hashlib
import itertools
import json
import math
import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.addresses import (
    BITS, V4, V6, RefusalTable,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.feeds import (
    SAMPLE_SIZE, FeedError, parse_feed,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.fetch import (
    MAX_RETRY_AFTER_SECONDS, FetchError, FetchResponse, retry_after_seconds,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import build_shadow_copy

from ansible_collections.fleetwall.blocklist.tests.helpers import tally

# Nothing of ansible-core is under test here (the kernel, the tools, our own code on the standard library):
# the suite's second pass, with another ansible-core, leaves this file out (tests/conftest.py, scripts/test.sh).
CORE_INDEPENDENT = True

# -- hostile values

# Digits to str.isdigit() (and some to int() and float()), none of them ASCII.
FOREIGN_DIGITS = ['\u00b2', '\u0663', '\uff11', '\u07c3', '\u0bef', '\U0001d7d9']
LONG_DIGITS = '9' * 5000          # int() raises past 4300 digits; float() makes it inf
LONG_TOKEN = 'x' * 140000         # past the csv module's field limit (128 KiB)


def _half(first, second):
    """``first`` half the time, ``second`` the other half.  st.one_of flattens a nested one_of and weighs every
    branch alike, so nesting cannot make the values a test needs common enough."""
    return st.booleans().flatmap(lambda pick: first if pick else second)


def _foreign(text, digit):
    """``text`` with its first ASCII digit replaced by a non-ASCII one."""
    for index, char in enumerate(text):
        if char.isascii() and char.isdigit():
            return text[:index] + digit + text[index + 1:]
    return text + digit


_v4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda octets: '%d.%d.%d.%d' % octets)
_v6 = st.one_of(
    st.sampled_from(['2001:db8::1', '2a01:4f8::', '::', '::1', 'fe80::1', 'ff02::1', '2a00:1450:4001:80b::200e',
                     '::ffff:45.33.0.9', '::ffff:10.0.0.1', '64:ff9b::a00:1', '64:ff9b::2d21:9', '2002:c0a8:101::1',
                     '2002:2d21:9::', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '::45.33.0.9', '2001::']),
    st.integers(0, (1 << 128) - 1).map(lambda value: ':'.join('%x' % (value >> s & 0xffff)
                                                              for s in range(112, -16, -16))),
)
_prefix = st.one_of(st.integers(0, 140).map(str),
                    st.sampled_from(['', '08', '032', '-1', '+8', ' 24', '24 ', '0x18', '1e1', '9' * 40]
                                    + FOREIGN_DIGITS + ['3' + d for d in FOREIGN_DIGITS]))
_address = st.one_of(_v4, _v6)
_network = st.builds(lambda address, prefix: '%s/%s' % (address, prefix), _address, _prefix)
# Ranges in order, reversed, cross-family, degenerate, with spaces, and broad enough to be refused.
_range = st.builds(lambda first, last, sep: first + sep + last, _address, _address,
                   st.sampled_from(['-', ' - ', '--', '-\t']))
_odd_address = st.sampled_from([
    '', '-', '/', '//', '.', '::', ':::', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.4%eth0', 'fe80::1%eth0',
    '0.0.0.0/0', '::/0', '0.0.0.0-255.255.255.255', '::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
    '45.33.0.9-45.33.0.1', '45.33.0.9-2001:db8::1', '2001:db8::9-2001:db8::1', '45.33.0.0-45.33.255.255',
    '1.0.0.0-223.255.255.255', '45.33.0.9-', '-45.33.0.9', '45.33.0.9-45.33.0.10-45.33.0.11',
    '45.33.0.9/' + LONG_DIGITS, LONG_DIGITS, LONG_TOKEN, '\ud800', '45.33.0.9\ud800', '\ufeff45.33.0.9',
    '45.33.0.9\x00', '\x0045.33.0.9', '45.33.0.9\x85', '45.33.0.9\u2028', '\u00a045.33.0.9',
    'NaN', 'Infinity', 'null', 'true', '[45.33.0.9]', '{}', '4\u0665.33.0.9', '\uff14\uff15.33.0.9',
    '45.33.0.9\t\u00b2', '2001:db8::\u0663', '\u0661.\u0662.\u0663.\u0664',
])
# An address every refusal lets through: half the entries are one, so that the count or score beside them
# is read rather than the line refused first.
_usable = st.integers(0, 65535).map(lambda n: '45.33.%d.%d' % (n >> 8, n & 255))
_entry = _half(_usable, st.one_of(
    _address, _network, _range, _odd_address,
    st.builds(_foreign, st.one_of(_address, _network, _range), st.sampled_from(FOREIGN_DIGITS)),
))
# Counts and scores as text: half of them from the hostile list.
_number_text = _half(
    st.sampled_from(['', '0', '3', '95', '100', '-0', '+5', '3.5', '1_0', '0x10', '1e3', '1e999', '-1e999', 'nan',
                     'NaN', 'inf', 'Infinity', '-Infinity', 'true', 'null', LONG_DIGITS, '9' * 400, ' 95 ']
                    + FOREIGN_DIGITS + ['9' + d for d in FOREIGN_DIGITS] + [_foreign('95', d) for d in FOREIGN_DIGITS]),
    st.one_of(st.integers(-10 ** 30, 10 ** 30).map(str), st.floats().map(repr)),
)


def _deep(depth, inner='"45.33.0.9"'):
    return '[' * depth + inner + ']' * depth


# JSON values as text, so that what json.dumps would refuse to write (NaN, 1e999, 400-digit integers,
# nesting past the interpreter's recursion limit, lone surrogates) reaches the parser as a provider sends it.
_json_scalar = _half(
    # Numbers float() reads wrong or not at all (half of them),
    st.sampled_from(['NaN', '-NaN', 'Infinity', '-Infinity', '1e999', '-1e999', '9' * 400, '-' + '9' * 400, '1e-999',
                     '"nan"', '"inf"', '"1_0"', '"0x10"', '"\\ud800"', '" 95 "']
                    + [json.dumps(text) for text in FOREIGN_DIGITS + [_foreign('95', d) for d in FOREIGN_DIGITS]]),
    # values that are no number, and ordinary ones.
    st.one_of(st.sampled_from(['true', 'false', 'null', '[]', '{}', '[95]', '[[95]]', '{"score": 95}', '""',
                               '"\\u0000"', _deep(20, '95'), _deep(5000, '95')]),
              st.integers(-10 ** 20, 10 ** 20).map(str), st.floats(allow_nan=False, allow_infinity=False).map(repr),
              _number_text.map(json.dumps)),
)
_json_address = _half(_usable.map(json.dumps), st.one_of(
    _entry.map(json.dumps),
    st.sampled_from(['null', 'true', '45', '1e999', '["45.33.0.9"]', '["45.33.0.9", 95]', '{"ip": "45.33.0.9"}',
                     _deep(3), _deep(5000), '"45.33.0.9\\u0000"', '"\\udc80"']),
))


@st.composite
def _json_object(draw, address_keys, score_key='score', extra=()):
    """An object with an address under one of ``address_keys`` (or none), a hostile score, maybe more keys.

    Three in four have an address and a score: what is under the keys a reader looks for is what gets read.
    """
    members = []
    if draw(st.integers(0, 3)):
        for key in draw(st.lists(st.sampled_from(address_keys), min_size=1, max_size=2)):
            members.append((key, draw(_json_address)))
    if draw(st.integers(0, 3)):
        members.append((score_key, draw(_json_scalar)))
    for key in draw(st.lists(st.sampled_from(list(extra) + ['type', 'note']), max_size=2)):
        members.append((key, draw(st.one_of(_json_scalar, st.just('"metadata"')))))
    members = draw(st.permutations(members))
    return '{' + ', '.join('%s: %s' % (json.dumps(key), value) for key, value in members) + '}'


def _lines_body(lines, line_end, bom):
    """Lines joined with one line end (LF, CRLF or CR only), maybe after a BOM, maybe without a final one."""
    body = line_end.join(lines)
    if lines and bom[1]:
        body += line_end
    return ('\ufeff' if bom[0] else '') + body


_line_end = st.sampled_from(['\n', '\r\n', '\r'])
_bom = st.tuples(st.booleans(), st.booleans())


def _good_lines(count=20, score=True, sep='\t'):
    # Addresses no refusal category holds, so that the good copy is accepted whole.
    return ['45.33.%d.%d%s' % (n // 200, n % 200 + 1, ('%s%d' % (sep, 90 + n % 10)) if score else '')
            for n in range(count)]


class FeedCase(object):
    """One hostile body and the feed settings to read it with, plus a good body for those settings."""

    def __init__(self, hostile, good, fmt, **options):
        self.hostile = hostile
        self.good = good
        self.options = dict(options, fmt=fmt)

    def spec(self, name, path):
        """The feed as the build is given it."""
        spec = {'name': name, 'path': path, 'format': self.options['fmt']}
        spec.update((key, value) for key, value in self.options.items() if key != 'fmt' and value is not None)
        return spec

    def __repr__(self):
        return 'FeedCase(%r, %r)' % (self.options, self.hostile[:300])


# -- one strategy per format, each with its options

# A count: often one that str.isdigit() or int() gets wrong.
_count = _half(st.sampled_from([LONG_DIGITS, '9' * 19, '0' * 30] + FOREIGN_DIGITS), _number_text)
_comment = st.sampled_from(['', ' # c', '# c', ' ; SBL123', ';', ' #', '\t#\u00b2', ' ; \ud800'])
_count_sep = st.sampled_from([' ', '\t', '  \t', '\t\t'])


@st.composite
def text_cases(draw, fmt=None):
    """plain / netset / spamhaus_drop / ipsum lines: an entry, maybe a count, maybe a comment."""
    fmt = fmt or draw(st.sampled_from(['plain', 'netset', 'spamhaus_drop', 'ipsum', 'ipsum']))
    lines = []
    for _line in range(draw(st.integers(0, 12))):
        line = draw(_entry)
        if draw(st.booleans()):
            line += draw(_count_sep) + draw(_count)
        line = draw(st.sampled_from(['', ' ', '\t'])) + line + draw(_comment)
        lines.append(line)
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(['#', ';', '', '\x00', '\ufeff'])))
    # The good copy's counts are 90 to 99: every min_count here keeps some of it.
    min_count = draw(st.sampled_from([None, 0, 1, 3, 99])) if fmt == 'ipsum' else None
    good = '\n'.join(_good_lines(score=fmt == 'ipsum')) + '\n'
    return FeedCase(_lines_body(lines, draw(_line_end), draw(_bom)), good, fmt, min_count=min_count,
                    min_score=None, max_invalid_fraction=draw(st.sampled_from([None, 1.0])))


# JSON: the document, its query, and what a good document for the query is.
JSON_QUERIES = {
    # query: (wrapped in {"data": ...}, item kind of a good document)
    'data[*]': (True, 'object'),
    'data[].ip': (True, 'object'),
    'data[].[ip, score]': (True, 'object'),
    'data[].{address: ip, score: score}': (True, 'object'),
    '[*]': (False, 'pair'),
    '[].address': (False, 'object'),
    '@': (False, 'string'),
}


def _good_json(wrapped, kind):
    items = []
    for n, line in enumerate(_good_lines(score=False)):
        if kind == 'object':
            items.append({'ip': line, 'address': line, 'score': 90 + n % 10})
        elif kind == 'pair':
            items.append([line, 90 + n % 10])
        else:
            items.append(line)
    return json.dumps({'data': items} if wrapped else items)


@st.composite
def json_cases(draw):
    """A JSON document of strings, [address, score] pairs or objects, with hostile values at every level."""
    query = draw(st.sampled_from(sorted(JSON_QUERIES)))
    wrapped, kind = JSON_QUERIES[query]
    pair = st.builds(lambda address, score: '[%s, %s]' % (address, score), _json_address, _json_scalar)
    # Half the items of the shape the query reads (so that their values are read), half of any shape.
    item = _half({'object': _json_object(['ip', 'address']), 'pair': pair, 'string': _json_address}[kind],
                 st.one_of(_json_object(['ip', 'address']), pair, _json_address, _json_scalar))
    items = '[' + ', '.join(draw(st.lists(item, max_size=10))) + ']'
    document = draw(_half(st.just('{"data": %s}' if wrapped else '%s'), st.sampled_from([
        '{"data": %s, "error": null}' if wrapped else '%s',
        '{"error": %s}', '{"errors": [%s]}', '{"errors": %s, "data": []}', '{"data": {"ip": %s}}',
        '{"data": %s' if wrapped else '%s,',          # truncated
    ]))) % items
    return FeedCase(document, _good_json(wrapped, kind), draw(st.sampled_from(['json', 'auto'])), query=query,
                    min_score=draw(st.sampled_from([None, 0, 50, 90])),
                    max_invalid_fraction=draw(st.sampled_from([None, 1.0])))


@st.composite
def jsonl_cases(draw):
    """One JSON object a line (Spamhaus), hostile values, junk lines and metadata records that lie."""
    field = draw(st.sampled_from([None, 'cidr', 'ip']))
    score_field = draw(st.sampled_from([None, 'score']))
    key = field or 'cidr'
    line = _half(_json_object([key], extra=['records', 'other']), st.one_of(
        st.builds(lambda records: '{"type": "metadata", "records": %s}' % records,
                  st.one_of(st.integers(-2, 14).map(str), _json_scalar)),
        _json_scalar, _json_address,
        st.sampled_from(['{', '}', '{"cidr": ', _deep(5000, '{}'), '{"a": %s}' % _deep(5000), '# c', '', '\x00']),
    ))
    lines = draw(st.lists(line, max_size=10))
    good_lines = ['{"%s": "%s", "score": %d}' % (key, address, 95) for address in _good_lines(score=False)]
    return FeedCase(_lines_body(lines, draw(_line_end), draw(_bom)), '\n'.join(good_lines) + '\n',
                    draw(st.sampled_from(['jsonl', 'jsonl', 'auto'])), field=field, score_field=score_field,
                    min_score=draw(st.sampled_from([None, 50])) if score_field else None,
                    max_invalid_fraction=draw(st.sampled_from([None, 1.0])))


# csv: (field, score_field) that can read a header 'id,ip,score' and rows 'n,address,score'.
CSV_COLUMNS = [('ip', None), ('ip', 'score'), ('ip', '2'), ('1', None), ('1', '2')]


def _csv_field(text, quoting):
    if quoting == 'quoted':
        return '"%s"' % text.replace('"', '""')
    if quoting == 'broken':
        return '"' + text                      # a quote that never closes: the row runs on
    return text


# Column settings no body can satisfy (a non-ASCII 'digit', a column number of 30 digits): only parse_feed
# is given these, as the build's first, good generation could not be read with them either.
CSV_ODD_COLUMNS = [('\u00b2', None), ('1', '\u0663'), ('0' * 30, None), ('ip', '\uff12')]


@st.composite
def csv_cases(draw, odd_columns=False):
    """A header, then rows with hostile addresses and scores, quoted, short, long and past the field limit."""
    field, score_field = draw(st.sampled_from(CSV_COLUMNS + (CSV_ODD_COLUMNS if odd_columns else [])))
    quoting = st.sampled_from(['plain'] * 4 + ['quoted', 'broken'])
    header = draw(st.sampled_from(['id,ip,score', 'ip', 'id,IP,score', ' id , ip , score ', 'id,ip,ip,score', '']))
    rows = [header]
    for _row in range(draw(st.integers(0, 10))):
        # Mostly whole rows (id, address, score), so that the address and score are what gets read.
        cells = [draw(_number_text), draw(_entry), draw(_number_text)][:draw(st.sampled_from([3, 3, 3, 2, 1, 0]))]
        if not draw(st.integers(0, 4)):
            cells += draw(st.lists(st.sampled_from(['', 'x', LONG_TOKEN, '\x00']), min_size=1, max_size=2))
        rows.append(','.join(_csv_field(cell, draw(quoting)) for cell in cells))
    if draw(st.booleans()):
        rows.insert(draw(st.integers(0, len(rows))), draw(st.sampled_from(['# comment', '#', ',,,', '"'])))
    good = '\n'.join(['id,ip,score'] + ['%d,%s' % (n, line) for n, line in enumerate(_good_lines(sep=','))]) + '\n'
    return FeedCase(_lines_body(rows, draw(_line_end), draw(_bom)), good, 'csv', field=field, score_field=score_field,
                    min_score=draw(st.sampled_from([None, 50])) if score_field else None,
                    max_invalid_fraction=draw(st.sampled_from([None, 1.0])))


@st.composite
def tor_cases(draw):
    """An exit-addresses document with hostile ExitAddress values and stray lines."""
    fingerprint = st.sampled_from(['0011BD2485AD45D984EC4159C88FC066E5E3300E', '', '\u00b2' * 40])
    when = st.sampled_from(['2026-11-23 12:00:00', '', '2026-13-99 99:99:99', '\u0662\u0660\u0662\u0666-01-01'])
    line = st.one_of(
        st.builds(lambda f: 'ExitNode ' + f, fingerprint),
        st.builds(lambda w: 'Published ' + w, when),
        st.builds(lambda w: 'LastStatus ' + w, when),
        st.builds(lambda a, w: ('ExitAddress %s %s' % (a, w)).rstrip(), _entry, when),
        st.sampled_from(['ExitAddress', 'ExitAddress  ', 'exitaddress 45.33.0.9', '@type tordnsel 1.0', '#', '\x00']),
    )
    lines = draw(st.lists(line, max_size=12))
    good = ''.join('ExitNode %040d\nPublished 2026-11-23 12:00:00\nLastStatus 2026-11-23 12:00:00\n'
                   'ExitAddress %s 2026-11-23 12:00:00\n' % (n, address)
                   for n, address in enumerate(_good_lines(score=False)))
    return FeedCase(_lines_body(lines, draw(_line_end), draw(_bom)), good, draw(st.sampled_from(['tor_exits', 'auto'])),
                    max_invalid_fraction=draw(st.sampled_from([None, 1.0])))


@st.composite
def auto_cases(draw):
    """Any format's body read by ``auto``, which picks the format from the first data line."""
    case = draw(st.one_of(text_cases(), json_cases(), jsonl_cases(), csv_cases(), tor_cases()))
    if case.options['fmt'] == 'csv':
        # auto never picks csv: read as a plain list, with no column settings.
        for option in ('field', 'score_field', 'min_score'):
            case.options.pop(option, None)
        case.good = '\n'.join(_good_lines(score=False)) + '\n'
    case.options['fmt'] = 'auto'
    return case


@st.composite
def range_cases(draw):
    """Range lines (plain, json and csv): in order, reversed, cross-family, broad, malformed."""
    ranges = draw(st.lists(st.one_of(_range, _odd_address.filter(lambda text: '-' in text),
                                     st.builds(_foreign, _range, st.sampled_from(FOREIGN_DIGITS))),
                           min_size=1, max_size=10))
    fmt = draw(st.sampled_from(['plain', 'json', 'csv']))
    good = '\n'.join('45.33.%d.0-45.33.%d.9' % (n, n) for n in range(20)) + '\n'
    if fmt == 'json':
        return FeedCase(json.dumps(ranges), json.dumps(good.split()), fmt, query='@')
    if fmt == 'csv':
        return FeedCase('\n'.join(['ip'] + ['"%s"' % r.replace('"', '""') for r in ranges]),
                        'ip\n' + good, fmt, field='ip')
    return FeedCase(_lines_body(ranges, draw(_line_end), draw(_bom)), good, fmt)


ALL_CASES = st.one_of(text_cases(), json_cases(), jsonl_cases(), csv_cases(), tor_cases(), auto_cases(),
                      range_cases())


# -- what must hold

def _as_given(case, as_bytes):
    """The hostile body as text, or as the bytes a provider would send (a lone surrogate becomes bad UTF-8)."""
    return case.hostile.encode('utf-8', 'surrogatepass') if as_bytes else case.hostile


def parse_hostile(case, as_bytes):
    """parse_feed on the hostile body: a result, or None for a FeedError; any other exception fails the test."""
    tally('bad inputs tried: feed parser')
    options = dict((key, value) for key, value in case.options.items() if value is not None)
    try:
        result = parse_feed(_as_given(case, as_bytes), name='hostile', **options)
    except FeedError as exc:
        assert str(exc)
        return None
    assert_sound(result, case.options.get('min_score'))
    return result


def assert_sound(result, min_score):
    """Whatever a parse returns: valid networks that no refusal holds, one finite score for each when scored."""
    refusals = RefusalTable()
    for version in (V4, V6):
        bits = BITS[version]
        for key in result.keys[version]:
            start, host_bits = key >> 8, key & 0xff
            assert host_bits <= bits and start >> bits == 0 and not start & ((1 << host_bits) - 1)
            assert refusals.reason(version, start, bits - host_bits) is None
        if result.scores is not None:
            scores = result.scores[version]
            assert len(scores) == len(result.keys[version])
            assert all(isinstance(score, float) and math.isfinite(score) for score in scores)
            assert min_score is None or all(score >= min_score for score in scores)
    assert result.invalid <= result.lines
    assert len(result.invalid_samples) == min(result.invalid, SAMPLE_SIZE)


# -- parse_feed: nothing but FeedError escapes, for each format and option combination

PARSE_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PARSE_SETTINGS
@given(text_cases(), st.booleans())
def test_text_formats_raise_only_feed_errors(case, as_bytes):
    """plain, netset, spamhaus_drop and ipsum (with and without min_count)."""
    parse_hostile(case, as_bytes)


@PARSE_SETTINGS
@given(json_cases(), st.booleans())
def test_json_raises_only_feed_errors(case, as_bytes):
    """Queries yielding strings, pairs and objects, with and without min_score."""
    parse_hostile(case, as_bytes)


@PARSE_SETTINGS
@given(jsonl_cases(), st.booleans())
def test_jsonl_raises_only_feed_errors(case, as_bytes):
    """field and score_field, metadata records with hostile counts."""
    parse_hostile(case, as_bytes)


@PARSE_SETTINGS
@given(csv_cases(odd_columns=True), st.booleans())
def test_csv_raises_only_feed_errors(case, as_bytes):
    """Named and indexed address and score columns."""
    parse_hostile(case, as_bytes)


@PARSE_SETTINGS
@given(tor_cases(), st.booleans())
def test_tor_exits_raise_only_feed_errors(case, as_bytes):
    parse_hostile(case, as_bytes)


@PARSE_SETTINGS
@given(auto_cases(), st.booleans())
def test_auto_raises_only_feed_errors(case, as_bytes):
    parse_hostile(case, as_bytes)


@PARSE_SETTINGS
@given(range_cases(), st.booleans())
def test_ranges_raise_only_feed_errors(case, as_bytes):
    parse_hostile(case, as_bytes)


@pytest.mark.parametrize('options, body, reason', [
    # Each of these escaped parse_feed as something other than a FeedError: only the build's catch-all kept
    # it from aborting the build, and the feed's status said 'cannot read the body (OverflowError: ...)'.
    ({'fmt': 'ipsum', 'min_count': 3}, '45.33.0.9\t%s\n' % LONG_DIGITS, 'count column is not a number'),
    ({'fmt': 'json', 'query': '[*]'}, '[["45.33.0.9", %s]]' % ('9' * 400), 'score is not a number'),
    ({'fmt': 'json', 'query': '[*]'}, '[{"ip": "45.33.0.9", "score": %s}]' % ('9' * 400), 'score is not a number'),
    ({'fmt': 'jsonl', 'score_field': 's'}, '{"cidr": "45.33.0.9", "s": %s}\n' % ('9' * 400), 'score is not a number'),
    ({'fmt': 'jsonl'}, '{"cidr": "45.33.0.9"}\n%s\n' % ('[' * 5000), 'not a JSON object'),
    ({'fmt': 'jsonl'}, '{"a": %s\n' % ('[' * 5000), 'not a JSON object'),
    ({'fmt': 'csv', 'field': 'ip'}, 'ip\n45.33.0.9\n%s\n' % LONG_TOKEN, 'not a csv row: field larger than'),
    # Read as numbers by float(), none of them one: NaN passed every threshold test as false.
    ({'fmt': 'json', 'query': '[*]'}, '[["45.33.0.9", NaN]]', 'score is not a finite number'),
    ({'fmt': 'json', 'query': '[*]'}, '[["45.33.0.9", 1e999]]', 'score is not a finite number'),
    ({'fmt': 'csv', 'field': 'ip', 'score_field': 's'}, 'ip,s\n45.33.0.9,\u0663\n', 'score is not a number'),
    ({'fmt': 'csv', 'field': 'ip', 'score_field': 's'}, 'ip,s\n45.33.0.9,1_0\n', 'score is not a number'),
])
def test_each_crash_found_is_one_invalid_entry(options, body, reason):
    tally('bad inputs tried: feed parser')
    result = parse_feed(body, max_invalid_fraction=1.0, **options)
    assert [sample['reason'] for sample in result.invalid_samples][-1].startswith(reason)
    assert result.invalid == 1


def test_a_column_number_is_ascii_digits():
    """field '²' passed str.isdigit() and failed int(): it is a column name like any other."""
    tally('bad inputs tried: feed parser')
    with pytest.raises(FeedError, match="no column '\u00b2'"):
        parse_feed('ip\n45.33.0.9\n', fmt='csv', field='\u00b2')
    assert parse_feed('\u00b2\n45.33.0.9\n', fmt='csv', field='\u00b2').accepted == 1


# -- the whole build: the hostile feed keeps its last good copy, the next feed is refreshed

_steady_numbers = itertools.count(1)
# A build fsyncs every file it writes: on tmpfs that costs nothing, and the examples time the parser, not the disk.
SCRATCH = '/dev/shm' if os.access('/dev/shm', os.W_OK) else None


def _write(path, text):
    with open(path, 'wb') as handle:
        handle.write(text.encode('utf-8', 'surrogatepass'))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ALL_CASES)
def test_a_hostile_body_is_one_feed_failure_in_a_build(case):
    tally('bad inputs tried: feed parser')
    number = next(_steady_numbers)
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        root = os.path.join(scratch, 'copy')
        hostile_path, steady_path = os.path.join(scratch, 'hostile.txt'), os.path.join(scratch, 'steady.txt')
        feeds = [case.spec('hostile', hostile_path), {'name': 'steady', 'path': steady_path}]
        _write(hostile_path, case.good)
        _write(steady_path, '45.34.0.1\n')
        first = build_shadow_copy(root, feeds)
        assert first['published'] and [f['status'] for f in first['feeds']] == ['fresh', 'fresh'], first['feeds']

        _write(hostile_path, case.hostile)
        steady_body = '45.34.%d.%d\n' % (number // 250 % 250, number % 250 + 1)
        _write(steady_path, steady_body)
        second = build_shadow_copy(root, feeds)
        hostile, steady = second['feeds']
        assert hostile['status'] in ('cached', 'fresh'), hostile
        # A cached copy is used because of something this body did, and the build says what.
        assert hostile['status'] == 'fresh' or hostile['error'], hostile
        assert steady['status'] == 'fresh'
        assert steady['body_sha256'] == hashlib.sha256(steady_body.encode()).hexdigest()


# -- a provider's rate-limit headers: a bounded number of seconds, or None

_header_value = st.one_of(
    _number_text, st.text(max_size=40),
    st.sampled_from(['Wed, 21 Oct 2015 07:28:00 GMT', 'Fri, 31 Dec 9999 23:59:59 GMT', 'Mon, 01 Jan 0001 00:00:00 GMT',
                     'Mon, 01 Jan 2026 00:00:00 +9999', 'Mon, 01 Jan 99999 00:00:00 GMT', '1445412480', '1e400',
                     '9' * 30, '1.5', '-5']),
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(['Retry-After', 'X-RateLimit-Reset', 'RateLimit-Reset']), _header_value))
def test_rate_limit_headers_give_bounded_seconds_or_none(headers):
    """'²', 'nan', 'inf' and 5000 digits raised; 10^20 seconds made the next build fail to show the date."""
    tally('bad inputs tried: rate-limit headers')
    seconds = retry_after_seconds(headers, 1.8e9)
    assert seconds is None or (isinstance(seconds, int) and 0 <= seconds <= MAX_RETRY_AFTER_SECONDS)


@pytest.mark.parametrize('retry_after', ['9' * 30, LONG_DIGITS, 'Fri, 31 Dec 9999 23:59:59 GMT', '\u00b2', 'inf'])
def test_a_far_rate_limit_reset_leaves_the_next_build_working(tmp_path, retry_after):
    """The reset a 429 names is remembered and shown by the next run: past the year 9999 that run raised."""
    tally('bad inputs tried: rate-limit headers')
    now_epoch = 1795000000
    answers = [FetchResponse(b'45.33.0.9\n')]

    def fetcher(**_kwargs):
        answer = answers.pop(0) if answers else None
        if answer is None:
            delay = retry_after_seconds({'Retry-After': retry_after}, now_epoch)
            raise FetchError('rate limited', kind='rate_limited', status=429,
                             retry_at=now_epoch + (delay if delay is not None else 3600))
        return answer

    now = datetime.datetime.fromtimestamp(now_epoch, datetime.timezone.utc)
    feeds = [{'name': 'limited', 'url': 'https://feeds.example/list.txt'}]
    root = str(tmp_path / 'copy')
    fetched, limited, waiting = [build_shadow_copy(root, feeds, fetcher=fetcher, now=now)['feeds'][0]
                                 for _run in range(3)]
    assert (fetched['status'], limited['status'], limited['error_kind']) == ('fresh', 'cached', 'rate_limited')
    # The third run does not ask, and says until when it will not.
    assert waiting['status'] == 'cached' and waiting['requests'] == 0
    assert 'rate-limited this feed until 20' in waiting['reason']
