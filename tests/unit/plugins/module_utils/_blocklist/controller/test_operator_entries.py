"""An operator's own time-limited block and unblock: applied by the build, logged, expired, and published offline."""
import datetime
import json
import os

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.explain import explain
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.fetch import FetchResponse
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.operator_entries import (
    OperatorEntryError, apply_request, load_state, parse_ttl, save_state,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (
    ShadowCopyError, build_shadow_copy,
)

CORE_INDEPENDENT = True
T0 = 1790000000


def at(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)


def read(root, name):
    with open(os.path.join(root, 'current', name)) as handle:
        return handle.read().split()


def never_asked(**_kwargs):
    raise AssertionError('an offline build asked a provider')


@pytest.fixture
def built(tmp_path):
    root = str(tmp_path / 'copy')
    feed = tmp_path / 'attackers.txt'
    # Forty more single addresses: the carving of an unblock then moves the entry count by far less than the shrink
    # guard's 50% (docs/operator-entries.md says what happens with a list of a handful of entries).
    feed.write_text('203.0.113.0/24\n198.51.100.7\n2001:db8:bad::/48\n'
                    + ''.join('198.51.100.%d\n' % (100 + 2 * n) for n in range(40)))
    feeds = [{'name': 'attackers', 'url': 'http://feeds.invalid/attackers.txt'}]

    def fetcher(**_kwargs):
        return FetchResponse(feed.read_bytes())
    build_shadow_copy(root, feeds, fetcher=fetcher, now=at(T0))
    return root, feeds


def unblock(entry, ttl='1h', reason='customer ticket 4711', by='alice'):
    return {'action': 'unblock', 'entry': entry, 'ttl': ttl, 'reason': reason, 'by': by}


def test_an_unblock_is_published_offline_carved_exactly_and_logged(built):
    root, feeds = built
    result = build_shadow_copy(root, feeds, fetcher=never_asked, now=at(T0 + 10), offline=True,
                               operator_request=unblock('203.0.113.7'))
    assert result['published'] and result['generation'] == 2
    assert all(status['status'] == 'cached' for status in result['feeds'])
    v4 = read(root, 'blocklist_v4.txt')
    assert '203.0.113.7' not in v4 and '203.0.113.6/32' not in v4 and '203.0.113.0/30' in v4
    event = result['operator_entries']['events'][0]
    assert (event['event'], event['by'], event['reason'], event['expires']) == (
        'added', 'alice', 'customer ticket 4711', T0 + 10 + 3600)
    answer = explain(root, '203.0.113.7')
    assert answer['verdict'] == 'kept out'                  # a feed lists it; the unblock keeps it out
    assert answer['kept_out'][0] == {'by': 'unblock', 'entry': '203.0.113.7', 'reason': 'customer ticket 4711',
                                     'operator': 'alice', 'expires': T0 + 10 + 3600}


def test_the_next_build_after_the_expiry_blocks_again(built):
    root, feeds = built
    build_shadow_copy(root, feeds, fetcher=never_asked, now=at(T0 + 10), offline=True,
                      operator_request=unblock('203.0.113.7', ttl='60'))
    result = build_shadow_copy(root, feeds, fetcher=never_asked, now=at(T0 + 71), offline=True)
    assert result['published'] and result['operator_entries']['in_force'] == []
    assert [e['event'] for e in result['operator_entries']['events']] == ['expired']
    assert '203.0.113.0/24' in read(root, 'blocklist_v4.txt')
    assert [e['event'] for e in load_state(root)['log']] == ['added', 'expired']


def test_a_block_is_the_operator_feed_with_its_provenance_and_refusals(built):
    root, feeds = built
    result = build_shadow_copy(root, feeds, fetcher=never_asked, now=at(T0 + 10), offline=True, operator_request={
        'action': 'block', 'entry': '192.0.2.66', 'ttl': '1d', 'reason': 'scanning us', 'by': 'bob'})
    assert '192.0.2.66' in read(root, 'blocklist_v4.txt')
    answer = explain(root, '192.0.2.66')
    assert answer['verdict'] == 'blocked' and answer['listed'][0]['feeds'] == ['operator']
    assert answer['operator_blocks'] == [{'entry': '192.0.2.66', 'reason': 'scanning us', 'operator': 'bob',
                                          'expires': T0 + 10 + 86400}]
    assert [s['name'] for s in result['feeds']] == ['attackers', 'operator']
    # A private network is refused as any feed's would be: lockout protection is not the only guard.
    result = build_shadow_copy(root, feeds, fetcher=never_asked, now=at(T0 + 20), offline=True, operator_request={
        'action': 'block', 'entry': '10.0.0.0/8', 'ttl': '1h', 'reason': 'typo', 'by': 'bob'})
    assert '10.0.0.0/8' not in read(root, 'blocklist_v4.txt')
    assert [s for s in result['feeds'] if s['name'] == 'operator'][0]['refused'] == {'private 10.0.0.0/8': 1}


def test_ttl_zero_ends_an_entry_early_and_extending_replaces_it(built):
    root, feeds = built
    build_shadow_copy(root, feeds, fetcher=never_asked, now=at(T0 + 10), offline=True,
                      operator_request=unblock('203.0.113.7'))
    result = build_shadow_copy(root, feeds, fetcher=never_asked, now=at(T0 + 20), offline=True,
                               operator_request=unblock('203.0.113.7', ttl='2h', reason='still checking', by='carol'))
    assert [(e['by'], e['expires']) for e in result['operator_entries']['in_force']] == [('carol', T0 + 20 + 7200)]
    assert result['operator_entries']['events'][0]['event'] == 'extended'
    result = build_shadow_copy(root, feeds, fetcher=never_asked, now=at(T0 + 30), offline=True,
                               operator_request=unblock('203.0.113.7', ttl='0', reason='checked: it is bad'))
    assert result['operator_entries']['in_force'] == [] and '203.0.113.0/24' in read(root, 'blocklist_v4.txt')
    assert [e['event'] for e in load_state(root)['log']] == ['added', 'extended', 'ended']


@pytest.mark.parametrize('request_, message', [
    (unblock('203.0.113.7/24'), 'host bits set'),
    (unblock('example.com'), 'not an address or a network'),
    (unblock('203.0.113.7', ttl='tomorrow'), 'is not a duration'),
    (unblock('203.0.113.7', ttl='400d'), 'longer than a year'),
    (unblock('203.0.113.7', reason='  '), 'say why'),
    (unblock('203.0.113.7', ttl='0'), 'no unblock of 203.0.113.7 is in force to end'),
    (dict(unblock('203.0.113.7'), action='allow'), 'action must be one of block, unblock'),
])
def test_a_bad_request_is_a_clear_error_and_changes_nothing(built, request_, message):
    root, feeds = built
    with pytest.raises(ShadowCopyError, match=message):
        build_shadow_copy(root, feeds, fetcher=never_asked, now=at(T0 + 10), offline=True, operator_request=request_)
    assert load_state(root)['log'] == [] and os.path.basename(os.path.realpath(os.path.join(root, 'current'))) == '1'


def test_ttls_are_read_as_operators_write_them():
    assert [parse_ttl(t) for t in ('3600', '90s', '30m', '24h', '7d', '2w', '0')] == [
        3600, 90, 1800, 86400, 604800, 1209600, 0]
    with pytest.raises(OperatorEntryError):
        parse_ttl('-5m')


def test_a_corrupt_state_is_named_not_overwritten(built):
    root, feeds = built
    with open(os.path.join(root, 'operator_entries.json'), 'w') as handle:
        handle.write('{not json')
    with pytest.raises(ShadowCopyError, match='operator entries .* are unreadable'):
        build_shadow_copy(root, feeds, fetcher=never_asked, now=at(T0 + 10), offline=True)
    with open(os.path.join(root, 'operator_entries.json')) as handle:
        assert handle.read() == '{not json'


def test_the_log_is_bounded(tmp_path, monkeypatch):
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller import operator_entries
    monkeypatch.setattr(operator_entries, 'LOG_LIMIT', 3)
    state = {'format': 1, 'entries': [], 'log': []}
    for n in range(5):
        state, _event = apply_request(state, unblock('192.0.2.%d' % n), T0 + n)
    save_state(str(tmp_path), state)
    saved = load_state(str(tmp_path))
    assert [e['entry'] for e in saved['log']] == ['192.0.2.2', '192.0.2.3', '192.0.2.4']
    assert len(saved['entries']) == 5 and json.dumps(saved)
