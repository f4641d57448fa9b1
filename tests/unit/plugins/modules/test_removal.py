"""state: absent takes back everything the module made, says so, and is changed=0 the second time.

Each module runs as Ansible runs it, inside a host with a private /etc and /var/lib (PrivateHost): the boot
unit, its link and the state directory it writes are that host's own. Before, the nftables table stayed with
its counters, and the ipset boot unit, its link, the state directory and the lock files stayed.
"""

import json

import pytest

from ansible_collections.fleetwall.blocklist.tests.helpers import PrivateHost, lab_tools, run_module

_TOOLS, pytestmark = lab_tools('nft', 'ipset', 'iptables', 'unshare', 'nsenter')

STATE = '/var/lib/fleetwall-removal'
UNIT_DIR = '/etc/systemd/system'
BACKENDS = {
    'nft_set_sync': dict(unit='fleetwall-nft-restore.service', extension='nft', rules=[{'chain': 'input'}],
                         sets=[{'name': 'fwrm_v4'}, {'name': 'fwrm_v6', 'type': 'ipv6_addr'}],
                         entries={'fwrm_v4': ['198.51.100.7', '203.0.113.0/24'], 'fwrm_v6': ['2001:db8::7']}),
    'ipset_sync': dict(unit='fleetwall-ipset-restore.service', extension='save', rules=[{'chain': 'INPUT'}],
                       sets=[{'name': 'fwrm-v4'}, {'name': 'fwrm-v6', 'family': 'inet6'}],
                       entries={'fwrm-v4': ['198.51.100.7', '203.0.113.0/24'], 'fwrm-v6': ['2001:db8::7']}),
}


@pytest.fixture
def host(tmp_path):
    private = PrivateHost(tmp_path, 'fwrm-')
    try:
        private.start()
        yield private
    finally:
        private.close()


def call(host, tmp_path, module, state):
    backend = BACKENDS[module]
    sets = [dict(item, entries=backend['entries'][item['name']] if state == 'present' else None,
                 persist_file='%s/%s/%s.%s' % (STATE, module, item['name'], backend['extension']))
            for item in backend['sets']]
    args = {'sets': sets, 'state': state, 'state_dir': STATE, 'rules': backend['rules'] if state == 'present' else None,
            'restore_unit': '%s/%s' % (UNIT_DIR, backend['unit']), 'lockout_protection': False}
    _proc, result = run_module(module, args, tmp_path, prefix=host.enter(), counted_as=None)
    return result


def listing(host, module):
    """What the module could have left: the kernel's objects and the files, as the host sees them."""
    kernel = host.run(['nft', 'list', 'ruleset'])[1] if module == 'nft_set_sync' else \
        host.run(['ipset', 'list', '-n'])[1] + host.run(['iptables', '-S'])[1] + host.run(['ip6tables', '-S'])[1]
    files = host.run(['sh', '-c', 'ls -A %s %s %s/multi-user.target.wants 2>/dev/null; true'
                      % (STATE, UNIT_DIR, UNIT_DIR)])[1]
    return kernel, files


@pytest.mark.parametrize('module', sorted(BACKENDS))
def test_absent_takes_back_everything_and_is_a_no_op_the_second_time(host, tmp_path, module):
    backend = BACKENDS[module]
    present = call(host, tmp_path, module, 'present')
    assert present['changed'] and not present.get('failed'), present
    kernel, files = listing(host, module)
    assert 'fwrm' in kernel and backend['unit'] in files

    removed = call(host, tmp_path, module, 'absent')
    assert removed['changed'] and not removed.get('failed'), removed
    gone = [path for item in removed['sets'] for path in item['removed_files']]
    assert '%s/%s' % (UNIT_DIR, backend['unit']) in gone
    assert sum(1 for path in gone if path.endswith('.' + backend['extension'])) == 2
    kernel, files = listing(host, module)
    assert 'fwrm' not in kernel and 'fleetwall' not in kernel, kernel       # nft: no table, no counter
    assert backend['unit'] not in files, files                               # the unit and its link
    rc, _out, _err = host.run(['test', '-e', STATE])
    assert rc != 0, 'the state directory is still there'                   # records, locks, save files

    again = call(host, tmp_path, module, 'absent')
    assert again['changed'] is False and not again.get('failed'), again


def test_absent_warns_when_a_saved_ruleset_still_names_the_set(host, tmp_path):
    """netfilter-persistent restores rules.v4 as a whole at boot: one rule naming a removed set loses them all."""
    assert call(host, tmp_path, 'ipset_sync', 'present')['changed']
    rc, _out, err = host.run(['sh', '-c', 'mkdir -p /etc/iptables && iptables-save > /etc/iptables/rules.v4'])
    assert rc == 0, err
    removed = call(host, tmp_path, 'ipset_sync', 'absent')
    # ansible-core 2.19 returns each warning as a structure around its message, older ones as text.
    warnings = json.dumps(removed.get('warnings'))
    assert 'ipset fwrm-v4 is removed, but is still named in /etc/iptables/rules.v4' in warnings, warnings
    assert 'fwrm-v6' not in warnings
