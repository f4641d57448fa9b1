"""The backend recommendation, for every combination of tools a host may have."""
import pytest

from ansible_collections.fleetwall.blocklist.plugins.modules.backend_facts import recommend


@pytest.mark.parametrize('nft, ipset, iptables, variant, expected', [
    ('/usr/sbin/nft', '/usr/sbin/ipset', '/usr/sbin/iptables', 'nf_tables', 'nftables'),   # Debian 11+, RHEL 9
    ('/usr/sbin/nft', '/usr/sbin/ipset', '/usr/sbin/iptables', 'legacy', 'ipset'),         # legacy iptables kept
    ('/usr/sbin/nft', None, '/usr/sbin/iptables', 'legacy', 'nftables'),                  # no ipset at all
    ('/usr/sbin/nft', None, None, None, 'nftables'),
    (None, '/usr/sbin/ipset', '/usr/sbin/iptables', 'nf_tables', 'ipset'),
    (None, '/usr/sbin/ipset', None, None, None),                                            # ipset without iptables
    (None, None, '/usr/sbin/iptables', 'legacy', None),
])
def test_recommendation(nft, ipset, iptables, variant, expected):
    assert recommend(nft, ipset, iptables, variant) == expected


@pytest.mark.parametrize('firewalld_running, ufw_active, nft, ipset, expected', [
    (True, False, '/usr/sbin/nft', '/usr/sbin/ipset', 'firewalld'),      # firewalld replaces what it did not make
    (True, True, None, None, 'firewalld'),
    (False, True, '/usr/sbin/nft', None, 'nftables'),                    # beside UFW, and scales further
    (False, True, None, None, 'ufw'),                                    # UFW is all there is
    (False, False, None, None, None),
])
def test_recommendation_with_running_firewalls(firewalld_running, ufw_active, nft, ipset, expected):
    iptables = '/usr/sbin/iptables'
    assert recommend(nft, ipset, iptables, 'nf_tables', firewalld_running, ufw_active) == expected
