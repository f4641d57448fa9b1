"""The backends' table is the one list: what reads it agrees with it, and what cannot read it (static YAML,
the docs) is checked against it here."""
import os
import re

import pytest
import yaml

from ansible.errors import AnsibleLookupError

from ansible_collections.fleetwall.blocklist.plugins.filter.backend_settings import BACKEND_ROLES
from ansible_collections.fleetwall.blocklist.plugins.filter.fleet_report import BACKENDS as REPORTED
from ansible_collections.fleetwall.blocklist.plugins.lookup.backends import LookupModule
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.backends import (
    BACKENDS, KERNEL_BACKENDS, backend_of_record,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.metrics import read_records
from ansible_collections.fleetwall.blocklist.tests.helpers import ROOT

CORE_INDEPENDENT = True


def read_yaml(*path):
    with open(os.path.join(ROOT, *path)) as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize('backend', list(BACKENDS.values()), ids=list(BACKENDS))
def test_each_entry_names_a_module_and_a_role_that_registers_its_result(backend):
    assert os.path.isfile(os.path.join(ROOT, 'plugins', 'modules', backend.module + '.py'))
    tasks = read_yaml('roles', backend.id, 'tasks', 'main.yml')
    calls = [task for task in tasks if 'fleetwall.blocklist.' + backend.module in task]
    assert calls and calls[0].get('register') == backend.result_variable


def test_what_reads_the_table_agrees_with_it():
    assert KERNEL_BACKENDS == ('ipset', 'nftables', 'ufw', 'firewalld', 'xdp') == BACKEND_ROLES
    assert REPORTED == {'ipset_sync_results': 'ipset', 'nftables_sync_results': 'nftables', 'ufw_sync_results': 'ufw',
                        'firewalld_sync_results': 'firewalld', 'xdp_sync_results': 'xdp',
                        'nginx_geo_result': 'nginx'}
    # Records written before the ids were one name (nft) are the nftables backend's.
    assert backend_of_record('nft') == backend_of_record('nftables') == 'nftables'
    assert backend_of_record('xdp') == 'xdp' and backend_of_record('bpf') is None


def test_state_records_are_read_by_their_backend_id(tmp_path):
    for name in ('nft-fleetwall_v4', 'ipset-bl4', 'nginx-blocklist', 'other-thing'):
        (tmp_path / (name + '.json')).write_text('{"count": 3}')
        (tmp_path / (name + '.entries')).write_text('')
    assert [(b, s) for b, s, _r in read_records(str(tmp_path))] == [
        ('ipset', 'bl4'), ('nftables', 'fleetwall_v4'), ('nginx', 'blocklist')]


def test_the_lookup_serves_the_table_and_names_the_backends_on_a_typo():
    lookup = LookupModule()
    table = lookup.run([], {})
    assert [item['id'] for item in table] == list(BACKENDS)
    assert lookup.run(['nftables'], {})[0]['fail2ban_action']['name'] == 'nftables'
    with pytest.raises(AnsibleLookupError, match='no backend named nftabels; the backends are ipset, nftables'):
        lookup.run(['nftabels'], {})


def test_static_yaml_and_docs_list_the_same_backends():
    # The sync action group, for module_defaults: every backend's module.
    assert read_yaml('meta', 'runtime.yml')['action_groups']['sync'] == [b.module for b in BACKENDS.values()]
    # fail2ban's banaction choices: auto, and every backend with a ban action.
    spec = read_yaml('roles', 'fail2ban', 'meta', 'argument_specs.yml')
    choices = spec['argument_specs']['main']['options']['fail2ban_banaction']['choices']
    assert sorted(choices) == sorted(['auto'] + [b.id for b in BACKENDS.values() if b.fail2ban_action])
    # The docs' table of fleetwall_backend's values.
    with open(os.path.join(ROOT, 'docs', 'backends.md')) as handle:
        row = next(line for line in handle if line.startswith('| `fleetwall_backend` |'))
    assert re.findall(r'`(\w+)`', row.split('|')[2]) == list(KERNEL_BACKENDS) + ['none']
