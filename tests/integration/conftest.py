"""The lab fleet for integration tests: real hosts, real SSH, real kernel state.

Every test here runs ansible-playbook (or ansible) from the virtualenv named
by FLEETWALL_VENV (default .venv) against lab/fleet.py's hosts, and proves
blocks by sending packets from the attacker and friend namespaces.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from ansible_collections.fleetwall.blocklist.tests.helpers import ROOT, FEEDS

import feed_server
import fleet

VENV = os.path.join(ROOT, os.environ.get('FLEETWALL_VENV', '.venv'))
HOSTS = ('h1', 'h2', 'h3')
ADDR = {h: fleet.host_addresses(i) for i, h in enumerate(HOSTS, 1)}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab fleet needs root')


@pytest.fixture(scope='session')
def lab():
    try:
        fleet.up(len(HOSTS))
        yield fleet
    finally:
        fleet.down(verbose=False)


@pytest.fixture(scope='session')
def feeds(tmp_path_factory):
    """A loopback feed server over a directory the tests write into."""
    root = tmp_path_factory.mktemp('served')
    shutil.copytree(FEEDS, str(root), dirs_exist_ok=True)
    server = feed_server.serve(str(root))
    server.root = root
    server.url = 'http://127.0.0.1:%d' % server.server_address[1]
    yield server
    server.shutdown()


class Run(object):
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout + proc.stderr
        self.recap = {}
        for host, counts in re.findall(r'^(\S+)\s+:\s+(ok=.*)$', proc.stdout, re.M):
            self.recap[host] = {k: int(v) for k, v in re.findall(r'(\w+)=(\d+)', counts)}

    def changed(self, host):
        return self.recap[host]['changed']


def ansible(tool, args, extra_vars=None, tmp_path=None, timeout=600):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', ANSIBLE_STDOUT_CALLBACK='ansible.builtin.default')
    cmd = [os.path.join(VENV, 'bin', tool)] + list(args)
    if extra_vars is not None:
        path = os.path.join(str(tmp_path), 'extra-vars.json')
        with open(path, 'w') as handle:
            json.dump(extra_vars, handle)
        cmd += ['-e', '@' + path]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout, check=False)
    return Run(proc)


def host_sh(host, command):
    """Run a shell command inside a lab host (its own /etc, /var/lib, netfilter)."""
    state = fleet.load_state()
    pid = state['pids'][host]
    proc = subprocess.run(['nsenter', '-t', str(pid), '-n', '-m', '-u', '--', 'sh', '-c', command],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def set_count(host, name):
    rc, out, _err = host_sh(host, 'ipset list -t %s' % name)
    if rc != 0:
        return None
    return int(re.search(r'Number of entries: (\d+)', out).group(1))


def reachable(ns, host, source, version=4):
    return fleet.connect(ns, ADDR[host][0 if version == 4 else 1], 22, source=source, timeout=2.0)


def listen(ns, address, port):
    """A TCP listener in the namespace ``ns`` (for two minutes), returned once it accepts connections."""
    process = subprocess.Popen(['ip', 'netns', 'exec', ns, sys.executable, '-c',
                                'import socket,time\n'
                                's=socket.socket(socket.AF_INET6 if ":" in "%s" else socket.AF_INET)\n'
                                's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
                                's.bind(("%s", %d)); s.listen(50); time.sleep(120)' % (address, address, port)])
    deadline = time.monotonic() + 10
    while not fleet.connect(ns[len(fleet.NS_PREFIX):], address, port, timeout=1.0):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError('no listener on %s port %d in %s' % (address, port, ns))
        time.sleep(0.1)
    return process


def rejected_at_once(ns, address, port, source=None):
    """A connect that fails within a second: REJECT answers it, where DROP leaves it to its 3 s timeout."""
    started = time.monotonic()
    return not fleet.connect(ns, address, port, source=source, timeout=3.0) and time.monotonic() - started < 2.5
