"""Lockout protection on the lab fleet: a real FireHOL level1 list, pushed with no allowlist at all.

FireHOL level1 lists 10.0.0.0/8, 127.0.0.0/8, 192.168.0.0/16 and 224.0.0.0/3, which the shadow copy
refuses, and 198.18.0.0/15, the benchmarking range the whole lab lives in, which it publishes (it is
not a range feeds list by mistake). So every host receives an entry that covers itself, the controller
it is managed from and its gateway. Lockout protection on each host takes exactly those addresses out
and says so: Ansible still reaches every host, the attacker (inside the same /15) is dropped, and so is
the friend, which only an allowlist protects.
"""
import ipaddress

import pytest

from ansible_collections.fleetwall.blocklist.tests.helpers import tally

from .conftest import HOSTS, ADDR, ansible, host_sh, reachable

import fleet

ATTACKER, FRIEND, CONTROLLER = fleet.ATTACKER, fleet.FRIEND, fleet.CONTROLLER


@pytest.fixture(scope='module', params=['ipset', 'nftables', 'ufw'])
def level1(request, lab, feeds, tmp_path_factory):
    state = tmp_path_factory.mktemp('lockout-shadow')
    env = {'tmp': tmp_path_factory.mktemp('lockout-vars'), 'backend': request.param, 'vars': {
        'fleetwall_backend': request.param,
        'shadow_copy_dir': str(state / 'copy'),
        'shadow_copy_feeds': [{'name': 'firehol_level1', 'url': feeds.url + '/firehol/firehol_level1.netset'},
                              {'name': 'lab_attackers', 'url': feeds.url + '/lab_attackers.txt'}],
        'shadow_copy_allowlist': [],
        # UFW on: its default policy drops everything not allowed, its rules carry the list.
        'ufw_enable': True,
    }}
    env['run'] = ansible('ansible-playbook', ['playbooks/blocklist.yml', '-v'], extra_vars=env['vars'],
                         tmp_path=env['tmp'])
    tally('faults injected: a feed covering the whole fleet (%s)' % request.param)
    yield env
    off = dict(env['vars'], ipset_state='absent', nftables_state='absent', ufw_state='absent')
    assert ansible('ansible-playbook', ['playbooks/blocklist.yml'], extra_vars=off, tmp_path=env['tmp']).rc == 0
    for host in HOSTS:
        host_sh(host, 'ufw --force disable')


def in_kernel(backend, host, address):
    if backend == 'ufw':
        # UFW's own listing of its rules; the carved networks are rules of their own.
        out = host_sh(host, 'ufw status')[1]
        return any(line.split()[2] == address or (line.split()[2].count('/') and _inside(address, line.split()[2]))
                   for line in out.splitlines() if '# fleetwall' in line and len(line.split()) > 2)
    if backend == 'ipset':
        return host_sh(host, 'ipset test fleetwall-v4 %s' % address)[0] == 0
    # Addresses sit in the plain set, networks in the interval set (which answers for any address inside).
    return any(host_sh(host, 'nft get element inet fleetwall fleetwall_v4_%s "{ %s }"' % (kind, address))[0] == 0
               for kind in ('hosts', 'nets'))


def _inside(address, network):
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(network)
    except ValueError:
        return False


def test_the_push_succeeds_and_names_what_it_kept_reachable(level1):
    run = level1['run']
    assert run.rc == 0, run.out[-4000:]
    for host in HOSTS:
        assert run.recap[host]['failed'] == 0 and run.recap[host]['unreachable'] == 0
    # The refusals happened centrally; the /15 reached the hosts and was carved there.
    assert 'lockout protection took' in run.out, run.out[-4000:]
    assert '198.18.0.0/15 covers %s (' % CONTROLLER[0] in run.out
    assert 'SSH client' in run.out and 'own address' in run.out
    for host in HOSTS:
        # Its own address, which every other host protects as a fleet address too.
        assert '%s (own address, protect)' % ADDR[host][0] in run.out


def test_every_host_is_still_managed_and_the_attacker_dropped(level1):
    ping = ansible('ansible', ['lab', '-m', 'ansible.builtin.ping', '-o'])
    tally('lockout checks', len(HOSTS))
    tally('lockouts', sum('%s | SUCCESS' % h not in ping.out for h in HOSTS))
    assert ping.rc == 0 and all('%s | SUCCESS' % h in ping.out for h in HOSTS), ping.out[-3000:]
    for host in HOSTS:
        assert not reachable('attacker', host, ATTACKER[0])
        # Nothing but an allowlist protects a third party inside a listed range.
        assert not reachable('friend', host, FRIEND[0])
        assert in_kernel(level1['backend'], host, ATTACKER[0])
        assert not in_kernel(level1['backend'], host, ADDR[host][0])
        assert not in_kernel(level1['backend'], host, CONTROLLER[0])
        # Everything else of the /15 stays blocked.
        assert in_kernel(level1['backend'], host, '198.19.200.1')
        # The fleet's own hosts still reach each other (each protects the others' addresses): before, only
        # each host's own address, the controller and the gateway were kept out, and h1 could not reach h2.
        for other in HOSTS:
            assert not in_kernel(level1['backend'], host, ADDR[other][0])
            if other != host:
                assert fleet.connect(host, ADDR[other][0], 22), '%s cannot reach %s' % (host, other)


def test_the_next_run_changes_nothing(level1):
    again = ansible('ansible-playbook', ['playbooks/blocklist.yml'], extra_vars=level1['vars'], tmp_path=level1['tmp'])
    assert again.rc == 0, again.out[-3000:]
    assert all(again.changed(h) == 0 for h in HOSTS), again.out[-3000:]
