"""Lockout protection: exact carving (netaddr as the oracle), the SSH client from /proc, the host's
addresses and gateways from a real namespace, and the engine keeping them out of a real ipset."""
import os
import subprocess
import sys

import netaddr
import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.addresses import AddressError
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.protect import (
    Protection, findings_warning, host_addresses, ssh_client_addresses,
)
from ansible_collections.fleetwall.blocklist.tests.helpers import COLLECTIONS

from ansible_collections.fleetwall.blocklist.tests.unit.plugins.module_utils._blocklist.host.test_backend_ipset import live, sync


def test_a_wide_entry_around_the_admin_is_carved_not_dropped():
    protection = Protection([('10.1.2.3', 'SSH client'), ('2001:db8::5', 'own address')])
    lines = ['10.0.0.0/8', '198.51.100.7', '2001:db8::/32', '203.0.113.0/24']
    kept, findings = protection.carve(lines)
    assert netaddr.IPSet(kept) == netaddr.IPSet(lines) - netaddr.IPSet(['10.1.2.3', '2001:db8::5'])
    assert len([k for k in kept if ':' not in k and k not in lines]) == 24      # a /8 less one address
    assert [(f['entry'], f['covers']) for f in findings] == [
        ('10.0.0.0/8', ['10.1.2.3 (SSH client)']), ('2001:db8::/32', ['2001:db8::5 (own address)'])]
    warning = findings_warning('ipset bl4', findings)
    assert '10.0.0.0/8 covers 10.1.2.3 (SSH client)' in warning and 'stay blocked' in warning


def test_an_exact_listing_of_a_protected_address_just_goes():
    protection = Protection([('198.18.0.1', 'default gateway'), ('192.0.2.0/24', 'protect')])
    kept, findings = protection.carve(['198.18.0.1', '192.0.2.128/25', '192.0.2.7', '198.51.100.1'])
    assert kept == ['198.51.100.1']
    assert sorted(f['replaced_by'] for f in findings) == [0, 0, 0]


def test_nothing_covered_returns_the_same_list_object():
    lines = ['198.51.100.%d' % i for i in range(100)]
    kept, findings = Protection([('10.0.0.1', 'x')]).carve(lines)
    assert kept is lines and findings == []


def test_only_the_candidates_are_checked():
    protection = Protection([('10.1.2.3', 'SSH client')])
    # The caller vouches for the applied entries: only the new one is looked at.
    kept, findings = protection.carve(['10.0.0.0/8', '192.0.2.1'], candidates=['192.0.2.1'])
    assert kept == ['10.0.0.0/8', '192.0.2.1'] and findings == []


def test_unparseable_lines_are_left_for_the_engine_to_refuse():
    protection = Protection([('10.1.2.3', 'x')])
    kept, findings = protection.carve(['10.1.2.3/8', 'junk', '10.1.2.4/33'])
    assert sorted(kept) == sorted(['10.1.2.3/8', 'junk', '10.1.2.4/33']) and findings == []


def test_bad_protect_entries_are_errors_and_zone_ids_are_dropped():
    with pytest.raises(AddressError, match="protect entry '10.0.0.1/33'"):
        Protection([('10.0.0.1/33', 'protect')])
    protection = Protection([('fe80::1%eth0', 'own address'), ('192.0.2.10-192.0.2.20', 'protect')])
    assert protection.covered(['fe80::/64', '192.0.2.16/28', '192.0.2.32/28']) == ['fe80::/64', '192.0.2.16/28']
    assert Protection([('10.0.0.1', 'a')]).digest != Protection([('10.0.0.2', 'a')]).digest
    assert not Protection([])


def _network(value, prefix):
    if prefix == 32:
        return str(netaddr.IPAddress(value))
    return '%s/%d' % (netaddr.IPAddress(value >> (32 - prefix) << (32 - prefix)), prefix)


NETWORK_V4 = st.builds(_network, st.integers(0, 2 ** 32 - 1), st.integers(1, 32))


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(NETWORK_V4, max_size=30, unique=True), protected=st.lists(NETWORK_V4, min_size=1, max_size=5))
def test_carving_is_exact(lines, protected):
    kept, findings = Protection([(p, 'p') for p in protected]).carve(lines)
    want = netaddr.IPSet(lines) - netaddr.IPSet(protected)
    assert netaddr.IPSet(kept) == want
    assert not netaddr.IPSet(kept) & netaddr.IPSet(protected)
    assert {f['entry'] for f in findings} == {line for line in lines
                                              if netaddr.IPSet([line]) & netaddr.IPSet(protected)}


def test_ssh_client_from_the_environment_or_an_ancestor():
    assert ssh_client_addresses({'SSH_CONNECTION': '192.0.2.9 50000 192.0.2.1 22'}) == ['192.0.2.9']
    assert ssh_client_addresses({}) == []
    # As under become: the module's own environment lost the variable, the session's shell has it.
    code = ('import sys; sys.path.insert(0, %r); from ansible_collections.fleetwall.blocklist.plugins.module_utils.'
            '_blocklist.host.protect import ssh_client_addresses; print(ssh_client_addresses())' % COLLECTIONS)
    proc = subprocess.run(['sh', '-c', 'env -u SSH_CONNECTION -u SSH_CLIENT "$0" -c "$1"; true', sys.executable, code],
                          env=dict(os.environ, SSH_CONNECTION='203.0.113.77 41000 198.18.0.11 22'),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['203.0.113.77']"


def test_host_addresses_and_gateways_of_a_real_namespace(netns):
    for args in (['ip', 'link', 'add', 'fw0', 'type', 'veth', 'peer', 'name', 'fw1'],
                 ['ip', 'link', 'set', 'fw0', 'up'], ['ip', 'link', 'set', 'fw1', 'up'], ['ip', 'link', 'set', 'lo', 'up'],
                 ['ip', 'addr', 'add', '198.18.5.2/24', 'dev', 'fw0'],
                 ['ip', 'addr', 'add', '2001:db8:5::2/64', 'dev', 'fw0', 'nodad'],
                 ['ip', 'route', 'add', 'default', 'via', '198.18.5.1'],
                 ['ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:5::1'],
                 # Policy routing: another table's default, over two next hops.
                 ['ip', 'route', 'add', 'default', 'table', '100', 'nexthop', 'via', '198.18.5.3',
                  'nexthop', 'via', '198.18.5.4']):
        rc, _out, err = netns(args)
        assert rc == 0, (args, err)
    own, gateways = host_addresses(netns, 'ip')
    assert {'127.0.0.1', '::1', '198.18.5.2', '2001:db8:5::2'} <= set(own)
    assert not set(own) & set(gateways)
    assert sorted(gateways) == ['198.18.5.1', '198.18.5.3', '198.18.5.4', '2001:db8:5::1']


def test_host_addresses_without_batch_mode_and_when_ip_fails():
    calls = []

    def busybox(args, data=None):
        calls.append(args[1:])
        if '-batch' in args:
            return 1, '', 'ip: invalid option -- \'f\'\n'
        if args[1:] == ['-o', 'addr', 'show']:
            return 0, '1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet 192.0.2.7/24 scope global eth0\n', ''
        if args[1] == '-4':
            return 0, 'default via 192.0.2.1 dev eth0\n', ''
        return 1, '', 'ip: RTNETLINK answers: Address family not supported by protocol\n'
    assert host_addresses(busybox, 'ip') == (['127.0.0.1', '192.0.2.7'], ['192.0.2.1'])
    assert len(calls) == 4

    def failing(args, data=None):
        return 1, '', 'Cannot open netlink socket: Operation not permitted\n'
    with pytest.raises(AddressError, match='Operation not permitted'):
        host_addresses(failing, 'ip')


def test_the_engine_keeps_protected_addresses_out_of_a_real_set(netns, tmp_path):
    protection = Protection([('10.1.2.3', 'SSH client')])
    entries = ['10.0.0.0/8', '198.51.100.7']
    r = sync(netns, tmp_path, entries, protection=protection)
    assert r['changed'] and r['protected_count'] == 1 and r['protected'][0]['entry'] == '10.0.0.0/8'
    assert netns(['ipset', 'test', 'bl4', '10.1.2.3'])[0] != 0
    assert netns(['ipset', 'test', 'bl4', '10.1.2.2'])[0] == 0 and netns(['ipset', 'test', 'bl4', '10.255.0.1'])[0] == 0
    assert netaddr.IPSet(live(netns, 'bl4')) == netaddr.IPSet(entries) - netaddr.IPSet(['10.1.2.3'])
    # The same source under the same protection is a no-op; the record vouches for the carved set.
    r = sync(netns, tmp_path, entries, protection=protection)
    assert (r['changed'], r.get('protected')) == (False, None)
    # The admin moved: a different protection rechecks everything, including entries applied before.
    moved = Protection([('10.9.9.9', 'SSH client')])
    r = sync(netns, tmp_path, entries, protection=moved)
    assert r['changed'] and r['protected'][0]['covers'] == ['10.9.9.9 (SSH client)']
    assert netns(['ipset', 'test', 'bl4', '10.1.2.3'])[0] == 0 and netns(['ipset', 'test', 'bl4', '10.9.9.9'])[0] != 0
    # Without protection the whole /8 is back.
    r = sync(netns, tmp_path, entries)
    assert live(netns, 'bl4') == set(entries)
