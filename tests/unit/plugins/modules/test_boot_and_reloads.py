"""The block outlives a reboot and the host's own firewall reloads, without an Ansible run; proven with packets.

A host with a private /etc and /var/lib (PrivateHost) and a client namespace on a veth: the attacker's address is
listed, the friend's is not. The modules run as Ansible runs them and install their boot unit and drop-ins in the
host's /etc. systemd is not PID 1 here, so what it would run is replayed from those files, in its order: a
"reboot" recreates the network namespace (every set, rule and table gone) over the same /etc and /var/lib and
runs the enabled units' ExecStart lines; a reload runs the service's own ExecReload or ExecStart (what Debian's
nftables.service and netfilter-persistent do), then the ExecStartPost / ExecReload lines our drop-ins add.

Before: after a reboot the ipset host had its sets and no rule (the attacker reached it over IPv4 and IPv6), and
after `systemctl reload nftables` the table was gone until the next run.
"""
import os
import shlex
import subprocess
import sys

import pytest

from ansible_collections.fleetwall.blocklist.tests.helpers import ROOT, PrivateHost, lab_tools, run_module

_TOOLS, pytestmark = lab_tools('nft', 'ipset', 'iptables', 'iptables-restore', 'unshare', 'nsenter', 'run-parts')

HOST, ATTACKER, FRIEND = '10.202.0.1', '10.202.0.2', '10.202.0.3'
PORT = 2222
STATE = '/var/lib/fwboot'
UNITS = '/etc/systemd/system'
# Debian 12's /etc/nftables.conf as the package installs it: it begins by flushing the whole ruleset.
NFTABLES_CONF = ('#!/usr/sbin/nft -f\n'
                 '\n'
                 'flush ruleset\n'
                 '\n'
                 'table inet filter {\n'
                 '\tchain input {\n'
                 '\t\ttype filter hook input priority filter;\n'
                 '\t}\n'
                 '\tchain forward {\n'
                 '\t\ttype filter hook forward priority filter;\n'
                 '\t}\n'
                 '\tchain output {\n'
                 '\t\ttype filter hook output priority filter;\n'
                 '\t}\n'
                 '}\n')
# A host's own saved ruleset (netfilter-persistent's rules.v4), saved before the blocklist came.
RULES_V4 = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n'
# Debian 12's netfilter-persistent (tests/data/netfilter-persistent): the script, run as its unit and operators run
# it, and its two plugins, installed in the host's /usr/share as the package installs them.
NETFILTER_PERSISTENT = os.path.join(ROOT, 'tests', 'data', 'netfilter-persistent')
PLUGINS = '/usr/share/netfilter-persistent/plugins.d'


class Host(object):
    """A PrivateHost with a client namespace wired to it and a TCP listener; ``reboot`` keeps /etc and /var/lib."""

    def __init__(self, root):
        self.root = root
        self.private = self.client = self.listener = None

    def boot(self):
        self.private = PrivateHost(self.root, 'fwboot-')
        self.private.start()
        # /usr/share is the host's own too (an overlay whose upper directory outlives a reboot, as /etc's does), with
        # netfilter-persistent's plugins in it as its package installs them.
        upper, work = self.root / 'usr-share' / 'upper', self.root / 'usr-share' / 'work'
        self.sh('mkdir -p %s %s && mount -t overlay overlay -o lowerdir=/usr/share,upperdir=%s,workdir=%s /usr/share '
                '&& mkdir -p %s && for p in 15-ip4tables 25-ip6tables; do install -m 755 %s/$p %s/$p; done'
                % (upper, work, upper, work, PLUGINS, NETFILTER_PERSISTENT, PLUGINS))
        self.client = self.private.ns + 'c'
        veth = 'vb' + self.private.ns[-8:]
        for args in (['ip', 'netns', 'add', self.client],
                     ['ip', 'link', 'add', veth + 'a', 'type', 'veth', 'peer', 'name', veth + 'b'],
                     ['ip', 'link', 'set', veth + 'a', 'netns', self.private.ns],
                     ['ip', 'link', 'set', veth + 'b', 'netns', self.client]):
            subprocess.run(args, check=True)
        for ns, dev, addresses in ((self.private.ns, veth + 'a', [HOST]), (self.client, veth + 'b', [ATTACKER, FRIEND])):
            for address in addresses:
                subprocess.run(['ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', address + '/24', 'dev', dev], check=True)
            subprocess.run(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', dev, 'up'], check=True)
            subprocess.run(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up'], check=True)
        self.listener = subprocess.Popen(['ip', 'netns', 'exec', self.private.ns, sys.executable, '-c',
                                          'import socket,time\ns=socket.socket()\ns.bind(("%s", %d))\ns.listen(50)\n'
                                          'time.sleep(300)' % (HOST, PORT)])
        for _attempt in range(100):
            if self.reaches(FRIEND):
                return
        raise RuntimeError('the listener never answered')

    def shutdown(self):
        """The machine goes down: the namespace and all its kernel state go; the overlays' upper dirs stay."""
        if self.listener is not None:
            self.listener.kill()
            self.listener.wait()
        subprocess.run(['ip', 'netns', 'del', self.client], check=False)
        if self.private is not None:
            self.private.close()

    def reboot(self):
        self.shutdown()
        self.boot()

    def sh(self, command):
        rc, out, err = self.private.run(['sh', '-c', command])
        assert rc == 0, (command, out, err)
        return out

    def reaches(self, source):
        code = ('import socket,sys\ns=socket.socket()\ns.settimeout(1.5)\ns.bind((%r,0))\n'
                'try:\n s.connect((%r,%d))\nexcept OSError:\n sys.exit(1)\n' % (source, HOST, PORT))
        return subprocess.run(['ip', 'netns', 'exec', self.client, sys.executable, '-c', code],
                              check=False, timeout=30).returncode == 0

    def blocked(self):
        return not self.reaches(ATTACKER) and self.reaches(FRIEND)

    def replay(self, unit_file, *keys):
        """Run the lines ``keys`` (ExecStart, ExecStartPost, ExecReload) of a unit or drop-in in this host, as
        systemd would: in order, '$$' as '$', a leading '-' letting the command fail."""
        text = self.sh('cat %s' % shlex.quote(unit_file))
        for line in text.splitlines():
            key, _sep, command = line.partition('=')
            if key not in keys:
                continue
            tolerant = command.startswith('-')
            rc, out, err = self.private.run(['sh', '-c', command.lstrip('-').replace('$$', '$')])
            assert rc == 0 or tolerant, (unit_file, command, out, err)

    def netfilter_persistent(self, verb):
        """netfilter-persistent ``verb`` as its unit (start) or an operator (reload) runs it: its plugins in order."""
        return self.sh('sh %s/netfilter-persistent %s 2>&1' % (NETFILTER_PERSISTENT, verb))

    def boot_units(self):
        """The enabled units of multi-user.target that are ours, as a reboot runs them."""
        return self.sh('ls %s/multi-user.target.wants/' % UNITS).split()


@pytest.fixture
def host(tmp_path):
    machine = Host(tmp_path / 'machine')
    try:
        machine.boot()
        yield machine
    finally:
        machine.shutdown()


def sync(host, tmp_path, module, **args):
    args = dict({'lockout_protection': False, 'state_dir': STATE}, **args)
    _proc, result = run_module(module, args, tmp_path, prefix=host.private.enter(), counted_as=None)
    assert not result.get('failed'), result
    return result


def test_ipset_block_comes_back_after_a_reboot_and_a_netfilter_persistent_restore(host, tmp_path):
    # Docker's chain as dockerd makes it when it starts (tests/unit/.../test_docker_ports.py proves its rules with
    # packets through Docker's DNAT; here: that they come back once Docker has started after a reboot).
    docker_starts = 'iptables -N DOCKER-USER && iptables -A DOCKER-USER -j RETURN'
    host.sh(docker_starts)
    # The host's own saved rulesets, which netfilter-persistent restores at boot and on every reload (its package
    # saves both when it is installed; Debian 12's 25-ip6tables fails without rules.v6).
    host.sh('mkdir -p /etc/iptables && printf %s > /etc/iptables/rules.v4 && printf %s > /etc/iptables/rules.v6'
            % (shlex.quote(RULES_V4), shlex.quote(RULES_V4)))
    result = sync(host, tmp_path, 'ipset_sync', name='fwboot-v4', entries=[ATTACKER],
                  rules=[{'chain': 'INPUT'}, {'chain': 'DOCKER-USER'}],
                  persist_file=STATE + '/ipset/fwboot-v4.save', restore_unit=UNITS + '/fleetwall-ipset-restore.service')
    assert host.blocked()
    assert result['restore_unit_changed'] and '45-fleetwall-ipset' in host.sh('ls %s' % PLUGINS)

    host.reboot()
    assert not host.blocked()                                   # a new kernel state: nothing is loaded
    assert 'fleetwall-ipset-restore.service' in host.boot_units()
    host.replay(UNITS + '/fleetwall-ipset-restore.service', 'ExecStart')
    assert host.blocked()                                       # sets and their rule, before any Ansible run
    # netfilter-persistent.service starts after our unit (ExecStart: netfilter-persistent start) and restores the
    # host's rules.v4, which replaces INPUT: our plugin runs after its restore.
    said = host.netfilter_persistent('start')
    assert 'fleetwall.blocklist:' not in said and host.sh('iptables -S INPUT').count('-i lo -j ACCEPT') == 1, said
    assert host.blocked()
    # Docker starts later in the boot, and makes DOCKER-USER then: its drop-in puts our rule in it.
    host.sh(docker_starts)
    host.replay(UNITS + '/docker.service.d/fleetwall-ipset.conf', 'ExecStartPost')
    assert host.sh('iptables -S DOCKER-USER').splitlines()[1] == (
        '-A DOCKER-USER -m set --match-set fwboot-v4 src -m comment --comment "fleetwall:fwboot-v4" -j DROP')

    # `netfilter-persistent reload` by hand, which no unit of systemd's runs: the restore replaced INPUT, and the
    # attacker reached the host until the next Ansible run.
    host.sh('iptables-restore < /etc/iptables/rules.v4')
    assert not host.blocked()
    host.netfilter_persistent('reload')
    assert host.blocked()
    # Again (a restart), or over a rules.v4 that was saved with our rule in it: never a duplicate.
    host.netfilter_persistent('save')
    host.netfilter_persistent('reload')
    assert host.sh('iptables -S INPUT').count('fleetwall:fwboot-v4') == 1
    assert host.blocked()

    # Removal takes the plugin back with the unit, and netfilter-persistent then runs as it did before.
    result = sync(host, tmp_path, 'ipset_sync', name='fwboot-v4', state='absent', rules=[{'chain': 'INPUT'}],
                  persist_file=STATE + '/ipset/fwboot-v4.save', restore_unit=UNITS + '/fleetwall-ipset-restore.service')
    assert PLUGINS + '/45-fleetwall-ipset' in result['removed_files'], result
    assert host.sh('ls %s' % PLUGINS).split() == ['15-ip4tables', '25-ip6tables']


def test_nft_table_comes_back_after_a_reload_a_restart_and_a_reboot(host, tmp_path):
    saved = {'name': 'fwboot_v4', 'entries': [ATTACKER], 'persist_file': STATE + '/nft/fwboot_v4.nft'}
    sync(host, tmp_path, 'nft_set_sync', sets=[saved], rules=[{'chain': 'input'}],
         restore_unit=UNITS + '/fleetwall-nft-restore.service')
    assert host.blocked()
    host.sh('printf %s > /etc/nftables.conf' % shlex.quote(NFTABLES_CONF))
    dropin = UNITS + '/nftables.service.d/fleetwall-nft.conf'

    # systemctl reload nftables: Debian's ExecReload, then the drop-in's.
    host.sh('nft -f /etc/nftables.conf')
    assert not host.blocked()
    host.replay(dropin, 'ExecReload')
    assert host.blocked()

    # systemctl restart nftables: ExecStop flushes, ExecStart loads the host's file, then the drop-in's
    # ExecStartPost.
    host.sh('nft flush ruleset && nft -f /etc/nftables.conf')
    assert not host.blocked()
    host.replay(dropin, 'ExecStartPost')
    assert host.blocked()

    # A reboot: nftables.service (and its drop-in), then our unit, which is ordered after it.
    host.reboot()
    assert not host.blocked()
    host.sh('nft -f /etc/nftables.conf')
    host.replay(dropin, 'ExecStartPost')
    host.replay(UNITS + '/fleetwall-nft-restore.service', 'ExecStart')
    assert host.blocked()
    assert os.path.basename(dropin) in host.sh('ls %s/nftables.service.d/' % UNITS)
