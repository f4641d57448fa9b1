import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetwall.blocklist.plugins.filter.backend_settings import backend_settings


def test_a_setting_of_another_backend_is_named_with_the_backend_in_use_and_the_policy_variable():
    """The example inventory's bastion policy in ipset's names did nothing on a host that got nftables."""
    hostvars = {
        'bastion': {'ipset_ports': [22], 'ipset_target': 'REJECT', 'ipset_docker_user': True,
                    'fleetwall_backend_facts': {'recommended': 'nftables'}, 'nftables_ports': [22]},
        'web': {'fleetwall_backend': 'ipset', 'ipset_ports': [80], 'ipset_sync_results': {'changed': False},
                'nftables_sync_results': {'changed': False}},
    }
    assert backend_settings(hostvars, ['bastion', 'web']) == [
        'bastion: ipset_docker_user does nothing, because bastion uses the nftables backend: it is a setting of '
        'the ipset role',
        'bastion: ipset_ports does nothing, because bastion uses the nftables backend: it is a setting of the '
        'ipset role; fleetwall_ports applies to every backend',
        'bastion: ipset_target does nothing, because bastion uses the nftables backend: it is a setting of the '
        'ipset role; fleetwall_target applies to every backend',
    ]


def test_a_policy_setting_the_backend_cannot_honour_is_named():
    hostvars = {
        'fw': {'fleetwall_backend': 'firewalld', 'fleetwall_ports': [22], 'fleetwall_log': False,
               'fleetwall_target': 'reject'},
        'u1': {'fleetwall_backend': 'ufw', 'fleetwall_ports': [22]},
        'u2': {'fleetwall_backend': 'ufw', 'fleetwall_ports': [22, 443], 'fleetwall_block_output': True},
        'web': {'fleetwall_backend': 'none', 'fleetwall_ports': [22], 'nftables_log': True},
    }
    assert backend_settings(hostvars, ['fw', 'u1', 'u2', 'web']) == [
        'fw: fleetwall_ports does nothing, because fw uses the firewalld backend: firewalld blocks every port of '
        'a listed source',
        'u2: fleetwall_block_output does nothing, because u2 uses the ufw backend: UFW blocks inbound only here',
        'u2: fleetwall_ports does nothing, because u2 uses the ufw backend: UFW takes one port here, so every '
        'port is blocked',
        'web: nftables_log does nothing, because web has no kernel backend (fleetwall_backend none): it is a '
        'setting of the nftables role; '
        'fleetwall_log applies to every backend',
    ]


def test_a_backend_name_with_a_typo_fails_listing_the_names():
    with pytest.raises(AnsibleFilterError, match=r"web1: fleetwall_backend 'nftabels' is not a backend; it takes "
                                                 r"ipset, nftables, ufw, firewalld, xdp or none"):
        backend_settings({'web1': {'fleetwall_backend': 'nftabels'}}, ['web1'])


def test_a_host_without_a_backend_yet_is_passed_over():
    assert backend_settings({'h': {'ipset_ports': [22]}}, ['h']) == []


def test_xdp_names_the_policy_it_cannot_honour_and_its_settings_count_beside_another_backend():
    hostvars = {
        'edge': {'fleetwall_backend': 'xdp', 'fleetwall_ports': [22], 'fleetwall_block_output': True},
        'both': {'fleetwall_backend': 'nftables', 'fleetwall_xdp': 'on', 'xdp_interfaces': ['eth0']},
        'nft': {'fleetwall_backend': 'nftables', 'xdp_interfaces': ['eth0']},
    }
    assert backend_settings(hostvars, ['edge', 'both', 'nft']) == [
        'edge: fleetwall_block_output does nothing, because edge uses the xdp backend: XDP sees inbound packets only',
        'edge: fleetwall_ports does nothing, because edge uses the xdp backend: XDP drops every port of a listed '
        'source',
        'nft: xdp_interfaces does nothing, because nft uses the nftables backend: it is a setting of the xdp role',
    ]


def scoped_copy(*kinds):
    return {'shadow_copy_to_push': {'scopes': [{'name': '%s_tcp_22' % kind, 'kind': kind} for kind in kinds]}}


def test_a_port_scoped_block_is_named_on_a_backend_that_cannot_scope_ports():
    hostvars = {'localhost': scoped_copy('block'), 'web1': {'fleetwall_backend': 'ipset'},
                'web2': {'fleetwall_backend': 'nftables'}}
    warnings = backend_settings(hostvars, ['web1', 'web2'])
    assert warnings == ['web1: the feeds scoped to ports (block_tcp_22) are not enforced there: its backend (ipset) '
                        'blocks on all ports or not at all, and their networks are not in the block tier '
                        '(docs/scopes.md)']


def test_an_admit_only_port_stops_the_push_where_a_backend_cannot_enforce_it():
    hostvars = {'localhost': scoped_copy('admit'), 'web1': {'fleetwall_backend': 'ufw'},
                'web2': {'fleetwall_backend': 'nftables'}, 'web3': {'fleetwall_backend_facts': {'recommended': 'xdp'}}}
    with pytest.raises(AnsibleFilterError, match=r'ports \(admit_tcp_22\).*on web1 \(ufw\), web3 \(xdp\) the ports '
                                                 r'would stay open to everyone. Nothing was pushed to this batch'):
        backend_settings(hostvars, ['web1', 'web2', 'web3'])
    assert backend_settings(hostvars, ['web2']) == []


def test_each_hosts_inputs_are_checked_against_the_specs_of_the_roles_it_runs():
    """The push includes the roles without their own check (a round of workers a host); the filter checks instead,
    naming the role, the option (and the policy variable that set it) and the hosts."""
    hostvars = dict(('web%d' % n, {'fleetwall_backend': 'nftables', 'fleetwall_ports': ['ssh'],
                                   'fleetwall_web_backend': 'nginx', 'nginx_diff_sample': 'many'})
                    for n in range(1, 8))
    hostvars['db'] = {'fleetwall_backend': 'ipset', 'ipset_state': 'gone'}
    with pytest.raises(AnsibleFilterError) as failed:
        backend_settings(hostvars, sorted(hostvars))
    message = str(failed.value)
    assert 'nothing was pushed to this batch' in message
    assert "- nftables role: Elements value for option 'nftables_ports' (set by fleetwall_ports)" in message
    assert "(web1, web2, web3, web4, web5 and 2 more)" in message
    assert "- nginx role: argument 'nginx_diff_sample' is of type str" in message
    assert "- ipset role: value of ipset_state must be one of: present, absent, got: gone (db)" in message
    # ipset's inputs are not nftables': db's state is checked against the ipset role only.
    assert message.count('ipset_state') == 1


def test_valid_inputs_pass_and_a_role_the_host_does_not_run_is_not_checked():
    hostvars = {'web': {'fleetwall_backend': 'nftables', 'fleetwall_ports': [22, 443], 'nftables_diff_sample': 5,
                        'fail2ban_bantime': 'not checked: fail2ban is not run here'}}
    assert backend_settings(hostvars, ['web']) == []
