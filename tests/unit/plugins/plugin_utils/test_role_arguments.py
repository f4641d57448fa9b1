from ansible_collections.fleetwall.blocklist.plugins.plugin_utils import role_arguments
from ansible_collections.fleetwall.blocklist.plugins.plugin_utils.role_arguments import (
    RoleArgumentCheck, provided_arguments, role_spec)


def test_a_roles_policy_defaults_are_read_from_its_defaults_file():
    options, policy = role_spec('nftables')
    assert 'nftables_ports' in options and 'nftables_state' in options
    assert policy['nftables_ports'] == 'fleetwall_ports'
    assert policy['nftables_target'] == 'fleetwall_target'
    # A default that is not a policy variable (a plain value, a path of the controller) is not one.
    assert 'nftables_table' not in policy and 'nftables_source_dir' not in policy


def test_the_roles_own_variable_wins_over_the_policy_and_unset_options_are_not_provided():
    provided, from_policy = provided_arguments('nftables', {'fleetwall_ports': [22], 'nftables_target': 'reject',
                                                            'fleetwall_target': 'drop', 'unrelated': 1})
    assert provided == {'nftables_ports': [22], 'nftables_target': 'reject'}
    assert from_policy == {'nftables_ports': 'fleetwall_ports'}


def test_each_distinct_set_of_values_is_validated_once(monkeypatch):
    calls = []
    real = role_arguments.ArgumentSpecValidator

    class Counting(real):
        def validate(self, parameters, *args, **kwargs):
            calls.append(dict(parameters))
            return super(Counting, self).validate(parameters, *args, **kwargs)

    monkeypatch.setattr(role_arguments, 'ArgumentSpecValidator', Counting)
    check = RoleArgumentCheck()
    for _host in range(50):
        assert check.errors('nftables', {'fleetwall_ports': [22]}) == []
    errors = check.errors('nftables', {'fleetwall_ports': ['ssh']})
    assert len(calls) == 2
    assert len(errors) == 1 and "'nftables_ports' (set by fleetwall_ports)" in errors[0]
