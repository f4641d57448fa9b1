import netaddr
import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetwall.blocklist.plugins.filter.allowlist_networks import allowlist_networks


def test_ranges_become_the_fewest_networks_covering_exactly_the_same_addresses():
    entries = ['198.18.0.1', '198.18.0.10-198.18.0.99', '198.18.0.201', '2001:db8:f1ee::10-2001:db8:f1ee::99',
               '203.0.113.0/24', '203.0.113.7']
    networks = allowlist_networks(entries)
    expected = netaddr.IPSet()
    for entry in entries:
        expected.add(netaddr.IPRange(*entry.split('-')) if '-' in entry else netaddr.IPNetwork(entry))
    assert netaddr.IPSet(networks) == expected
    assert len(networks) == len(list(expected.iter_cidrs()))
    assert networks[0] == '198.18.0.1' and '198.18.0.10/31' in networks and networks[-1].startswith('2001:db8')


def test_bad_entries_are_errors():
    with pytest.raises(AnsibleFilterError, match='invalid'):
        allowlist_networks(['198.18.0.1', 'localhost'])
    with pytest.raises(AnsibleFilterError, match='list'):
        allowlist_networks('198.18.0.1')
    assert allowlist_networks([]) == []
