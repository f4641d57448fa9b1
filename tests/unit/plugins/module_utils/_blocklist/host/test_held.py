"""held: which of a host's sets hold an address in force, read from the records of the last apply."""
import json

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.addresses import AddressError
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.held import containing_texts, held

CORE_INDEPENDENT = True


@pytest.fixture
def state(tmp_path):
    records = {
        'nft-fleetwall_v4_nets': ['203.0.113.0/24', '198.51.100.0/25'],
        'nft-fleetwall_v4_hosts': ['192.0.2.7', '192.0.2.9'],
        'xdp-fleetwall_v6': ['2001:db8::/32'],
        'ipset-bl4': ['198.51.100.64/26'],
    }
    for name, entries in records.items():
        (tmp_path / (name + '.json')).write_text(json.dumps({'count': len(entries), 'applied_at': 1790000000}))
        (tmp_path / (name + '.entries')).write_text(''.join(e + '\n' for e in entries))
    # A record without its entries (a killed run) and a file of no backend are not read.
    (tmp_path / 'nft-orphan.json').write_text('{"count": 1}')
    (tmp_path / 'other-thing.entries').write_text('192.0.2.7\n')
    return str(tmp_path)


def test_an_address_is_held_by_the_entries_that_contain_it_in_every_backend(state):
    found = held(state, '198.51.100.70')
    assert [(f['backend'], f['set'], f['entries']) for f in found] == [
        ('ipset', 'bl4', ['198.51.100.64/26']), ('nftables', 'fleetwall_v4_nets', ['198.51.100.0/25'])]
    assert found[0]['applied_at'] == 1790000000
    assert [f['entries'] for f in held(state, '192.0.2.7')] == [['192.0.2.7']]
    assert [f['set'] for f in held(state, '2001:db8:1::5')] == ['fleetwall_v6']
    assert held(state, '192.0.2.8') == []


def test_a_network_is_held_by_what_contains_it_and_what_lies_inside_it(state):
    found = held(state, '192.0.2.0/24')
    assert [(f['set'], f['entries']) for f in found] == [('fleetwall_v4_hosts', ['192.0.2.7', '192.0.2.9'])]
    found = held(state, '198.51.100.0/24')
    assert sorted(e for f in found for e in f['entries']) == ['198.51.100.0/25', '198.51.100.64/26']


def test_containing_texts_are_one_per_prefix_length():
    texts = containing_texts(4, 0xCB007107, 32)
    assert len(texts) == 33 and '203.0.113.7' in texts and '203.0.113.0/24' in texts and '0.0.0.0/0' in texts


def test_a_bad_query_is_a_clear_error(state):
    with pytest.raises(AddressError, match="'203.0.113.7/24' is not an address or a network: host bits set"):
        held(state, '203.0.113.7/24')


def test_no_state_directory_holds_nothing(tmp_path):
    assert held(str(tmp_path / 'missing'), '192.0.2.1') == []
