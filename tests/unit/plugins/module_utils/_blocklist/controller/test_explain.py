"""explain: why the shadow copy blocks an address, or does not, by containment over the files it publishes.

Built from real feeds (FireHOL level 1, Spamhaus DROP, ipsum with scores) and from a harvest of fail2ban bans, as
the build makes them; every answer is checked against a brute-force reading of the same files.
"""
import gzip
import ipaddress
import os

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.explain import (
    ExplainError, SortedNetworks, explain,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (
    build_shadow_copy,
)
from ansible_collections.fleetwall.blocklist.tests.helpers import FEEDS

CORE_INDEPENDENT = True
T0 = 1790000000


def at(epoch):
    import datetime
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)


@pytest.fixture(scope='module')
def copy(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('explain')
    root = str(tmp / 'copy')
    attackers = tmp / 'attackers.txt'
    attackers.write_text('8.8.4.4\n9.9.9.0/24\n2001:db8:bad::/48\n10.9.9.9\n')
    feeds = [
        {'name': 'firehol', 'path': os.path.join(FEEDS, 'firehol', 'firehol_level1.netset')},
        {'name': 'drop', 'path': os.path.join(FEEDS, 'spamhaus', 'drop.txt')},
        {'name': 'attackers', 'path': str(attackers)},
    ]
    build_shadow_copy(root, feeds[:2], now=at(T0))
    harvest = {'h1': [{'address': '8.8.8.8', 'jail': 'sshd', 'banned_at': T0 - 5}]}
    result = build_shadow_copy(root, feeds, allowlist=['9.9.9.128/25'], now=at(T0 + 60),
                               fleet_local={'harvest': harvest, 'expiry': 3600})
    assert result['published'] and result['generation'] == 2
    return root


def brute_provenance(root, query):
    """Every provenance row whose network overlaps the query, read line by line."""
    wanted = ipaddress.ip_network(query)
    with gzip.open(os.path.join(root, 'current', 'provenance.tsv.gz'), 'rt') as handle:
        rows = [line.rstrip('\n').split('\t') for line in handle if not line.startswith('#')]
    return sorted(row[0] for row in rows if ipaddress.ip_network(row[0]).version == wanted.version
                  and ipaddress.ip_network(row[0]).overlaps(wanted))


def test_an_address_inside_a_listed_network_is_blocked_and_the_feeds_named(copy):
    answer = explain(copy, '8.8.4.4')
    assert answer['verdict'] == 'blocked' and answer['generation'] == 2
    assert answer['block'] == ['8.8.4.4']
    assert [(row['network'], row['feeds']) for row in answer['listed']] == [('8.8.4.4', ['attackers'])]
    assert answer['listed_since']['generation'] == 2        # generation 1 did not list it


def test_containment_not_string_matching(copy):
    # 1.10.16.0/20 is on DROP: an address inside it is not a string of that file.
    answer = explain(copy, '1.10.20.30')
    assert answer['verdict'] == 'blocked'
    assert '1.10.16.0/20' in [row['network'] for row in answer['listed']]
    assert sorted(row['network'] for row in answer['listed']) == brute_provenance(copy, '1.10.20.30/32')
    assert answer['listed_since']['generation'] == 1 and answer['listed_since']['oldest_kept'] == 1


@pytest.mark.parametrize('query', ['1.10.16.0/20', '1.0.0.0/8', '2001:db8::/32', '5.0.0.0/8', '185.0.0.0/8'])
def test_every_overlapping_network_is_found_as_a_scan_would_find_it(copy, query):
    answer = explain(copy, query)
    found = sorted(row['network'] for row in answer['listed'] + answer['listed_inside'])
    brute = brute_provenance(copy, query)
    assert answer['listed_inside_count'] + len(answer['listed']) == len(brute)
    if answer['listed_inside_count'] <= 50:
        assert found == brute


def test_the_allowlist_and_a_refusal_say_what_kept_a_listed_network_out(copy):
    answer = explain(copy, '9.9.9.200', allowlist=['9.9.9.128/25', '192.0.2.0/24'])
    assert answer['verdict'] == 'kept out'
    assert [row['network'] for row in answer['listed']] == ['9.9.9.0/24']
    assert answer['kept_out'] == [{'by': 'allowlist', 'entry': '9.9.9.128/25'}]
    assert explain(copy, '9.9.9.5')['verdict'] == 'blocked'       # the other half of the /24
    refused = explain(copy, '10.9.9.9')
    assert refused['verdict'] == 'not listed'
    assert [k['by'] for k in refused['kept_out']] == ['refusal', 'refusal', 'refusal policy'], refused['kept_out']
    assert {(k.get('entry'), k.get('feed')) for k in refused['kept_out'][:2]} == {('10.0.0.0/8', 'firehol'),
                                                                                  ('10.9.9.9', 'attackers')}
    assert 'private' in refused['kept_out'][2]['reason']


def test_a_fleet_local_ban_names_its_host_and_jail(copy):
    answer = explain(copy, '8.8.8.8')
    assert answer['verdict'] == 'blocked'
    assert [(h['host'], h['jail']) for ban in answer['fleet_bans'] for h in ban['hosts']] == [('h1', 'sshd')]


def test_a_network_partly_listed_says_so(copy):
    assert explain(copy, '9.9.9.0/24')['verdict'] == 'partly blocked'
    assert explain(copy, '2001:db8:bad::1')['verdict'] == 'blocked'
    assert explain(copy, '2001:db8:b00::/40')['verdict'] == 'partly blocked'
    assert explain(copy, '1.1.1.1')['verdict'] == 'not listed'


@pytest.mark.parametrize('query, message', [
    ('8.8.4.4/24', 'host bits set'),
    ('example.com', 'not an address or a network'),
    ('', 'not an address or a network'),
])
def test_a_bad_query_is_a_clear_error(copy, query, message):
    with pytest.raises(ExplainError, match=message):
        explain(copy, query)


def test_a_copy_that_was_never_built_says_so(tmp_path):
    with pytest.raises(ExplainError, match='has no current generation'):
        explain(str(tmp_path), '192.0.2.1')


def test_the_bisection_skips_the_header_and_finds_the_first_and_last_lines():
    data = b'# entry\tfeeds\n1.0.0.0/24\ta\n1.0.0.5\tb\n9.9.9.9\tc\n2001:db8::/32\td\n'
    networks = SortedNetworks(data)
    assert list(networks.containing(4, 0x01000005, 32)) == [b'1.0.0.0/24\ta', b'1.0.0.5\tb']
    assert list(networks.containing(4, 0x09090909, 32)) == [b'9.9.9.9\tc']
    assert list(networks.containing(6, 0x20010db8 << 96, 128)) == [b'2001:db8::/32\td']
    assert list(networks.containing(4, 0x0a000000, 32)) == []
