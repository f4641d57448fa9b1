from ansible_collections.fleetwall.blocklist.plugins.filter.fleet_addresses import fleet_addresses


def test_the_hosts_addresses_each_once_and_no_name_resolved():
    hostvars = {
        'web1': {'ansible_host': '198.51.100.12'},
        'web2': {'ansible_host': '2001:db8::7'},
        'web3': {'ansible_host': 'web3.example.internal'},      # a name: not resolved, not protected
        '192.0.2.9': {},                                        # an inventory name that is an address
        'db': {'ansible_host': '198.51.100.2'},
        'dup': {'ansible_host': '198.51.100.12'},
        'v6': {'ansible_host': '[2001:db8::8]'},
    }
    assert fleet_addresses(hostvars, sorted(hostvars) + ['gone']) == [
        '192.0.2.9', '198.51.100.2', '198.51.100.12', '2001:db8::7', '2001:db8::8']
