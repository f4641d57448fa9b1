"""A port Docker publishes (-p 8080:80) is blocked by its published port, proven with packets.

Three namespaces: a client side (an attacker address, listed, and a friend's, not), a host with Docker's
chains built as dockerd 20.10+ builds them (nat PREROUTING to DOCKER, a DNAT of 8080 to the container's 80,
FORWARD through DOCKER-USER with policy DROP), and a container that listens on :80. Before, the port limit was
`--dports 8080` / `tcp dport 8080` on every chain: FORWARD and DOCKER-USER see the packet after the DNAT, with
port 80, so the attacker reached the container.
"""
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ipset import IpsetAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nft import NftAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.iptables_rules import ensure_rules
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.nft_rules import RuleManager

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason='needs root for namespaces'),
              pytest.mark.skipif(any(shutil.which(tool, path='/usr/sbin:/sbin:/usr/bin') is None
                                     for tool in ('iptables', 'ipset', 'nft')),
                                 reason='iptables, ipset and nft are needed (scripts/setup.sh installs them)')]

ATTACKER, FRIEND, HOST, CONTAINER = '10.201.0.2', '10.201.0.3', '10.201.0.1', '172.31.0.2'
PUBLISHED, CONTAINER_PORT = 8080, 80

DOCKER_RULES = '''*nat
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.31.0.0/24 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.31.0.2:80
COMMIT
*filter
:FORWARD DROP [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER -d 172.31.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
COMMIT
'''


def sh(*args, data=None):
    proc = subprocess.run(list(args), input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=60, check=False)
    return proc.returncode, proc.stdout, proc.stderr


class DockerHost(object):
    """The client, host and container namespaces, wired as Docker wires a bridge network."""

    def __init__(self):
        tail = uuid.uuid4().hex[:6]
        self.client, self.host, self.container = ('fwdk%s-%s' % (role, tail) for role in ('c', 'h', 'k'))
        self.listener = None

    def start(self):
        for ns in (self.client, self.host, self.container):
            self.check('ip', 'netns', 'add', ns)
        self.wire(self.client, 'vcli', self.host, 'vhost', ['%s/24' % ATTACKER, '%s/24' % FRIEND], HOST)
        self.wire(self.container, 'eth0', self.host, 'docker0', ['%s/24' % CONTAINER], '172.31.0.1')
        self.check('ip', 'netns', 'exec', self.host, 'sysctl', '-qw', 'net.ipv4.ip_forward=1')
        self.check('ip', 'netns', 'exec', self.host, 'iptables-restore', data=DOCKER_RULES)
        self.listener = subprocess.Popen(['ip', 'netns', 'exec', self.container, sys.executable, '-c',
                                          'import socket,time\ns=socket.socket()\ns.bind(("0.0.0.0", %d))\n'
                                          's.listen(50)\ntime.sleep(300)' % CONTAINER_PORT])
        for _attempt in range(100):
            if self.connect(FRIEND):
                return
        raise RuntimeError('the published port never answered the friend')

    def wire(self, inner, inner_name, outer, outer_name, inner_addresses, outer_address):
        self.check('ip', 'link', 'add', inner_name + self.host[-6:], 'type', 'veth', 'peer', 'name',
                   outer_name + self.host[-6:])
        for ns, name in ((inner, inner_name), (outer, outer_name)):
            self.check('ip', 'link', 'set', name + self.host[-6:], 'netns', ns)
            self.check('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', name + self.host[-6:], 'name', name)
            self.check('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', name, 'up')
            self.check('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up')
        for address in inner_addresses:
            self.check('ip', 'netns', 'exec', inner, 'ip', 'addr', 'add', address, 'dev', inner_name)
        self.check('ip', 'netns', 'exec', outer, 'ip', 'addr', 'add', outer_address + '/24', 'dev', outer_name)
        self.check('ip', 'netns', 'exec', inner, 'ip', 'route', 'add', 'default', 'via', outer_address)

    @staticmethod
    def check(*args, data=None):
        rc, _out, err = sh(*args, data=data)
        assert rc == 0, (args, err)

    def run(self, args, data=None, check_rc=False):
        return sh('ip', 'netns', 'exec', self.host, *args, data=data)

    def connect(self, source):
        """A TCP connect to the host's published port from ``source``: True if the container answered."""
        code = ('import socket,sys\ns=socket.socket()\ns.settimeout(1.5)\ns.bind((%r,0))\n'
                'try:\n s.connect((%r,%d))\nexcept OSError:\n sys.exit(1)\n' % (source, HOST, PUBLISHED))
        return sh('ip', 'netns', 'exec', self.client, sys.executable, '-c', code)[0] == 0

    def close(self):
        if self.listener is not None:
            self.listener.kill()
            self.listener.wait()
        for ns in (self.client, self.host, self.container):
            sh('ip', 'netns', 'del', ns)


@pytest.fixture
def docker_host():
    host = DockerHost()
    try:
        host.start()
        yield host
    finally:
        host.close()


@pytest.mark.parametrize('chain', ['DOCKER-USER', 'FORWARD'])
def test_iptables_rules_block_a_published_port_by_the_port_the_client_sent(docker_host, tmp_path, chain):
    adapter = IpsetAdapter(docker_host.run, 'ipset', 'bl4')
    adapter.apply_full([ATTACKER], adapter.probe())
    bins = ('iptables', 'iptables-restore')
    assert docker_host.connect(ATTACKER)
    # A port limit of another port leaves the published one open: the match is by port, not a blanket block.
    ensure_rules(docker_host.run, bins, 4, 'bl4', [{'chain': chain, 'ports': [9999]}])
    assert docker_host.connect(ATTACKER)
    ensure_rules(docker_host.run, bins, 4, 'bl4', [{'chain': chain, 'ports': [PUBLISHED, 443]}])
    assert not docker_host.connect(ATTACKER)
    assert docker_host.connect(FRIEND)
    # The rules read back as they were written: the next run changes nothing.
    assert ensure_rules(docker_host.run, bins, 4, 'bl4', [{'chain': chain, 'ports': [PUBLISHED, 443]}]) == []


def test_nft_forward_chain_blocks_a_published_port_by_the_port_the_client_sent(docker_host, tmp_path):
    adapter = NftAdapter(docker_host.run, 'nft', 'fleetwall', 'bl4')
    adapter.apply_full([ATTACKER], adapter.probe())
    rules = RuleManager(adapter, str(tmp_path))
    assert docker_host.connect(ATTACKER)
    assert rules.ensure([{'chain': 'forward', 'ports': [PUBLISHED, 443]}])
    assert not docker_host.connect(ATTACKER)
    assert docker_host.connect(FRIEND)
    # verify lists the chain and compares it with what was written: the same text, nothing to repair.
    assert rules.ensure([{'chain': 'forward', 'ports': [PUBLISHED, 443]}], verify=True) == []


def test_a_family_without_docker_user_gets_a_warning_and_its_other_rules(netns):
    """Docker 20.10 writes no ip6tables chains: the v6 set's INPUT rule was never written (an error on every
    run), so the attacker reached :22 over IPv6."""
    adapter = IpsetAdapter(netns, 'ipset', 'bl6', family='inet6')
    adapter.apply_full(['2001:db8::7'], adapter.probe())
    changes = ensure_rules(netns, ('ip6tables', 'ip6tables-restore'), 6, 'bl6',
                           [{'chain': 'INPUT', 'ports': [22]}, {'chain': 'DOCKER-USER', 'ports': [22]}])
    assert changes == ['INPUT: 0 tagged rule(s) replaced by 1 at the top']
    assert len(changes.warnings) == 1 and 'chain DOCKER-USER does not exist in ip6tables' in changes.warnings[0]
    rc, out, _err = netns(['ip6tables', '-S', 'INPUT'])
    assert '--match-set bl6 src -m multiport --dports 22' in out, out


def test_a_chain_in_the_other_iptables_variant_is_named_as_such(netns, monkeypatch):
    """Docker that writes with iptables-legacy on a host whose iptables is nf_tables: the warning says where
    DOCKER-USER is. (Whether legacy tables exist is read from /proc/net, which is this process's namespace
    here and not the test's: taken as yes.)"""
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import iptables_rules
    if shutil.which('iptables-legacy', path='/usr/sbin:/sbin') is None:
        pytest.skip('iptables-legacy is not installed')
    monkeypatch.setattr(iptables_rules, '_variant_in_use', lambda tool, family: True)
    assert netns(['iptables-legacy', '-N', 'DOCKER-USER'])[0] == 0
    adapter = IpsetAdapter(netns, 'ipset', 'bl4')
    adapter.apply_full([ATTACKER], adapter.probe())
    changes = ensure_rules(netns, ('iptables-nft', 'iptables-nft-restore'), 4, 'bl4', [{'chain': 'DOCKER-USER'}])
    assert changes == [] and len(changes.warnings) == 1
    assert 'does not exist in iptables-nft, but it does in iptables-legacy' in changes.warnings[0]
