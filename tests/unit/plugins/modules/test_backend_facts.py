"""The backend recommendation, for every combination of tools a host may have."""
import pytest

from ansible_collections.fleetwall.blocklist.plugins.modules.backend_facts import (
    firewalld_is_running, recommend, system_bus_socket)


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


@pytest.mark.parametrize('address, expected', [
    (None, '/run/dbus/system_bus_socket'),
    ('unix:path=/var/run/dbus/system_bus_socket,guid=0123', '/var/run/dbus/system_bus_socket'),
    ('unix:abstract=/tmp/dbus-x;unix:path=/run/bus', '/run/bus'),
    ('tcp:host=localhost,port=7000', None),
])
def test_system_bus_socket(address, expected):
    environ = {'DBUS_SYSTEM_BUS_ADDRESS': address} if address else {}
    assert system_bus_socket(environ) == expected


class _Host(object):
    """What firewalld_is_running asks of the host: which tools exist and what they answer."""

    def __init__(self, dbus_send_out=None, state_rc=252):
        self.dbus_send_out, self.state_rc, self.ran = dbus_send_out, state_rc, []

    def get_bin_path(self, name):
        return '/usr/bin/dbus-send' if name == 'dbus-send' and self.dbus_send_out is not None else None

    def run_command(self, args):
        self.ran.append(args[0])
        if args[0].endswith('dbus-send'):
            return (0, self.dbus_send_out, '') if self.dbus_send_out else (1, '', 'Failed to open connection')
        return self.state_rc, 'running\n' if self.state_rc == 0 else 'not running\n', ''


def test_firewalld_is_asked_for_only_where_it_can_run(tmp_path, monkeypatch):
    bus = tmp_path / 'system_bus_socket'
    monkeypatch.setenv('DBUS_SYSTEM_BUS_ADDRESS', 'unix:path=%s' % bus)
    # No system bus: firewalld cannot be running, and nothing is run to find that out.
    host = _Host(dbus_send_out='   boolean true\n', state_rc=0)
    assert firewalld_is_running(host.run_command, host.get_bin_path, '/usr/bin/firewall-cmd') is False and host.ran == []
    bus.write_text('')
    # The bus says who owns firewalld's name; firewall-cmd (a Python program) is not started.
    for answer, expected in (('method return time=1 sender=org.freedesktop.DBus\n   boolean true\n', True),
                             ('method return time=1 sender=org.freedesktop.DBus\n   boolean false\n', False)):
        host = _Host(dbus_send_out=answer, state_rc=0 if not expected else 252)
        assert firewalld_is_running(host.run_command, host.get_bin_path, '/usr/bin/firewall-cmd') is expected
        assert host.ran == ['/usr/bin/dbus-send']
    # Without dbus-send, or when the bus cannot be asked, firewall-cmd --state decides.
    for host, expected in ((_Host(dbus_send_out=None, state_rc=0), True), (_Host(dbus_send_out='', state_rc=252), False)):
        assert firewalld_is_running(host.run_command, host.get_bin_path, '/usr/bin/firewall-cmd') is expected
        assert host.ran[-1] == '/usr/bin/firewall-cmd'
