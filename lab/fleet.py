# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab fleet: real hosts on one machine, in network namespaces.

Each host is a network namespace with its own netfilter state, a private
mount namespace (its own /run, and overlays on /etc, /var/lib and /var/log)
and its own sshd, reached by Ansible over real SSH.  An "attacker" and a
"friend" namespace on the same bridge send real packets.

Addresses come from the benchmarking range 198.18.0.0/15 (RFC 2544) and the
documentation range 2001:db8::/32, and nothing is routed off the bridge:
no host has a default route, so lab traffic cannot leave this machine.

    fleet.py up [--hosts N]     build the fleet (tearing down any old one)
    fleet.py down               remove everything the lab made
    fleet.py status             list hosts and whether their sshd answers
    fleet.py connect NS ADDR PORT [--source ADDR]
                                TCP connect from namespace NS; exit 0 if it connected
    fleet.py exec HOST -- CMD   run CMD inside HOST's namespaces (its own /etc)
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ip, ipset, sshd and iptables live in sbin, which a non-login PATH may lack.
os.environ['PATH'] = os.pathsep.join(['/usr/local/sbin', '/usr/sbin', '/sbin', os.environ.get('PATH', '')])
STATE = os.environ.get('FLEETWALL_LAB_DIR', os.path.join(ROOT, '.lab'))
INVENTORY = os.path.join(ROOT, 'inventory', 'lab', 'hosts.yml')
BRIDGE = 'fwbr0'
NS_PREFIX = 'fw-'
NET4 = '198.18.0.'
NET6 = '2001:db8:f1ee::'
CONTROLLER = (NET4 + '1', NET6 + '1')
ATTACKER = (NET4 + '200', NET6 + '200')
ATTACKER_EXTRA = (NET4 + '210', NET6 + '210')
# An attacker address that no lab feed lists (outside lab_attackers.txt's
# 198.18.0.208/29): only the fleet's own fail2ban can get it blocked.
ATTACKER_UNLISTED = (NET4 + '220', NET6 + '220')
FRIEND = (NET4 + '201', NET6 + '201')
REQUIRED = {'sshd': 'openssh-server', 'ssh': 'openssh-client', 'ssh-keygen': 'openssh-client',
            'ipset': 'ipset', 'iptables': 'iptables', 'ip6tables': 'iptables', 'ip': 'iproute2',
            'unshare': 'util-linux', 'nsenter': 'util-linux'}


def host_addresses(index):
    return NET4 + str(10 + index), NET6 + str(10 + index)


class LabError(Exception):
    pass


def run(args, check=True, quiet=False, **kw):
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False, **kw)
    if check and proc.returncode != 0:
        raise LabError('lab: %s failed (%d): %s' % (' '.join(args), proc.returncode, proc.stderr.strip()))
    return proc


def ensure_packages():
    missing = sorted({pkg for tool, pkg in REQUIRED.items() if shutil.which(tool) is None})
    if not missing:
        return
    print('lab: installing %s' % ' '.join(missing), flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    run(['apt-get', 'update', '-qq'], env=env)
    run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends'] + missing, env=env)


def load_state():
    try:
        with open(os.path.join(STATE, 'lab.json')) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def lab_namespaces():
    out = run(['ip', 'netns', 'list'], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(NS_PREFIX)]


def down(verbose=True):
    """Remove everything, even after a failed or half-finished 'up'."""
    state = load_state()
    for name, pid in state.get('pids', {}).items():
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    control_dir = os.path.join(STATE, 'cp')
    if os.path.isdir(control_dir):
        for sock in os.listdir(control_dir):
            run(['ssh', '-o', 'ControlPath=' + os.path.join(control_dir, sock), '-O', 'exit', 'lab'],
                check=False)
    for ns in lab_namespaces():
        remove_namespace(ns)
    # The kernel tears a namespace down asynchronously once its last process
    # is gone, and with it the root end of its veth; an 'up' right after a
    # 'down' would find them still there. Delete them and wait.
    deadline = time.monotonic() + 15
    while True:
        leftovers = [line.split(':')[1].strip().split('@')[0]
                     for line in run(['ip', '-o', 'link', 'show'], check=False).stdout.splitlines()
                     if ': fwv-' in line]
        for veth in leftovers:
            run(['ip', 'link', 'del', veth], check=False)
        if not leftovers and not lab_namespaces():
            break
        if time.monotonic() > deadline:
            raise LabError('lab: could not remove %s' % ', '.join(leftovers + lab_namespaces()))
        time.sleep(0.1)
    run(['ip', 'link', 'del', BRIDGE], check=False)
    for path in (os.path.join(STATE, 'lab.json'), INVENTORY):
        if os.path.exists(path):
            os.unlink(path)
    if verbose:
        print('lab: down')


INIT = """#!/bin/sh
set -e
hostname {name}
mount --make-rprivate /
mount -t tmpfs -o mode=755 tmpfs /run
# A fresh server's root has an empty home. This machine's /root runs pyenv
# from .bashrc, which sshd's bash sources: every task would wait on pyenv's
# rehash lock, and a session killed mid-rehash would hang all later ones.
mount -t tmpfs -o mode=700 tmpfs /root
# The host's own bpffs: the XDP backend pins its program and maps there, and
# every lab host must have its own, as every real host does.
mount -t bpf bpf /sys/fs/bpf
mkdir -p /run/sshd /run/dbus /run/lock
for d in etc var/lib var/log; do
  u={hostdir}/upper/$d; w={hostdir}/work/$d
  mkdir -p "$u" "$w"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$u,workdir=$w" "/$d"
done
# sshd logs the way syslog would write it, into the host's own
# /var/log/auth.log, where fail2ban's stock sshd filter reads it (mawk
# buffers a pipe's input unless interactive).
mkfifo /run/sshd.log.pipe
awk -W interactive -v tag="{name} sshd[$$]:" '{{ print strftime("%b %e %H:%M:%S"), tag, $0; fflush() }}' \
  < /run/sshd.log.pipe >> /var/log/auth.log &
exec /usr/sbin/sshd -D -e -f {hostdir}/sshd_config 2> /run/sshd.log.pipe
"""

SSHD_CONFIG = """ListenAddress {v4}
ListenAddress {v6}
Port 22
HostKey {keys}/ssh_host_ed25519_key
AuthorizedKeysFile {keys}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile /run/sshd.pid
MaxStartups 100:30:200
MaxSessions 50
LogLevel VERBOSE
Subsystem sftp internal-sftp
"""


def add_namespace(ns, addresses, veth):
    run(['ip', 'netns', 'add', ns])
    run(['ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
    run(['ip', 'link', 'set', veth, 'master', BRIDGE, 'up'])
    nsrun = ['ip', 'netns', 'exec', ns]
    run(nsrun + ['ip', 'link', 'set', 'lo', 'up'])
    for v4, v6 in addresses:
        run(nsrun + ['ip', 'addr', 'add', v4 + '/24', 'dev', 'eth0'])
        run(nsrun + ['ip', '-6', 'addr', 'add', v6 + '/64', 'dev', 'eth0', 'nodad'])
    run(nsrun + ['ip', 'link', 'set', 'eth0', 'up'])


def remove_namespace(ns):
    """Kill every process in the namespace ``ns`` and delete it; the kernel frees its veth once it is gone."""
    for pid in run(['ip', 'netns', 'pids', ns], check=False).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    run(['ip', 'netns', 'del', ns], check=False)


def wait_port(addr, port, deadline):
    while time.monotonic() < deadline:
        try:
            socket.create_connection((addr, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def up(count):
    if os.geteuid() != 0:
        raise LabError('lab: must run as root (network namespaces)')
    ensure_packages()
    down(verbose=False)
    keys = os.path.join(STATE, 'keys')
    os.makedirs(keys, exist_ok=True)
    os.makedirs(os.path.join(STATE, 'cp'), exist_ok=True)
    os.chmod(STATE, 0o700)
    if not os.path.exists(os.path.join(keys, 'id_ed25519')):
        run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'fleetwall-lab', '-f', os.path.join(keys, 'id_ed25519')])
    if not os.path.exists(os.path.join(keys, 'ssh_host_ed25519_key')):
        run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', os.path.join(keys, 'ssh_host_ed25519_key')])
    shutil.copy(os.path.join(keys, 'id_ed25519.pub'), os.path.join(keys, 'authorized_keys'))

    run(['ip', 'link', 'add', BRIDGE, 'type', 'bridge'])
    run(['ip', 'addr', 'add', CONTROLLER[0] + '/24', 'dev', BRIDGE])
    run(['ip', '-6', 'addr', 'add', CONTROLLER[1] + '/64', 'dev', BRIDGE, 'nodad'])
    run(['ip', 'link', 'set', BRIDGE, 'up'])
    # br_netfilter sends bridged traffic through this namespace's FORWARD
    # chain; a machine with FORWARD DROP (Docker) would break the lab.
    for tool in ('iptables', 'ip6tables'):
        if run([tool, '-w', '-C', 'FORWARD', '-i', BRIDGE, '-o', BRIDGE, '-j', 'ACCEPT'], check=False).returncode:
            run([tool, '-w', '-I', 'FORWARD', '1', '-i', BRIDGE, '-o', BRIDGE, '-j', 'ACCEPT'], check=False)

    add_namespace(NS_PREFIX + 'attacker', [ATTACKER, ATTACKER_EXTRA, ATTACKER_UNLISTED], 'fwv-attacker')
    add_namespace(NS_PREFIX + 'friend', [FRIEND], 'fwv-friend')
    pids = {}
    hosts = {}
    for index in range(1, count + 1):
        name = 'h%d' % index
        v4, v6 = host_addresses(index)
        ns = NS_PREFIX + name
        add_namespace(ns, [(v4, v6)], 'fwv-' + name)
        hostdir = os.path.join(STATE, 'hosts', name)
        if os.path.isdir(hostdir):
            shutil.rmtree(hostdir)
        os.makedirs(hostdir)
        with open(os.path.join(hostdir, 'sshd_config'), 'w') as handle:
            handle.write(SSHD_CONFIG.format(v4=v4, v6=v6, keys=keys))
        init = os.path.join(hostdir, 'init.sh')
        with open(init, 'w') as handle:
            handle.write(INIT.format(name=name, hostdir=hostdir))
        log = open(os.path.join(hostdir, 'sshd.log'), 'w')
        proc = subprocess.Popen(['ip', 'netns', 'exec', ns, 'unshare', '--mount', '--uts',
                                 '--propagation', 'private', '/bin/sh', init],
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        pids[name] = proc.pid
        hosts[name] = {'v4': v4, 'v6': v6, 'ns': ns}
    with open(os.path.join(STATE, 'lab.json'), 'w') as handle:
        json.dump({'pids': pids, 'hosts': hosts}, handle)
    deadline = time.monotonic() + 20
    for name, host in hosts.items():
        if not wait_port(host['v4'], 22, deadline):
            log = ''
            for path in ('sshd.log', 'upper/var/log/auth.log'):
                if os.path.exists(os.path.join(STATE, 'hosts', name, path)):
                    log += open(os.path.join(STATE, 'hosts', name, path)).read()
            down(verbose=False)
            raise LabError('lab: sshd on %s did not come up:\n%s' % (name, log[-2000:]))
    write_inventory(hosts)
    print('lab: up with %d hosts (%s); attacker %s, friend %s'
          % (count, ', '.join('%s=%s' % (n, h['v4']) for n, h in hosts.items()), ATTACKER[0], FRIEND[0]))


def write_inventory(hosts):
    key = os.path.join(STATE, 'keys', 'id_ed25519')
    control = os.path.join(STATE, 'cp', '%C')
    lines = [
        '# Generated by lab/fleet.py up: do not edit, it is rewritten on every "up".',
        'all:',
        '  vars:',
        '    lab_root: %s' % ROOT,
        '  children:',
        '    lab:',
        '      hosts:',
    ]
    for name, host in hosts.items():
        lines.append('        %s: {ansible_host: %s, lab_v6: "%s", lab_ns: %s}' % (name, host['v4'], host['v6'], host['ns']))
    lines += [
        '      vars:',
        '        ansible_user: root',
        '        ansible_python_interpreter: /usr/bin/python3',
        '        ansible_ssh_private_key_file: %s' % key,
        '        ansible_ssh_common_args: >-',
        '          -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR',
        '          -o ControlMaster=auto -o ControlPersist=120s -o ControlPath=%s' % control,
        '        ansible_ssh_pipelining: true',
        '        lab_controller_v4: %s' % CONTROLLER[0],
        '        lab_controller_v6: "%s"' % CONTROLLER[1],
        '        lab_attacker_v4: %s' % ATTACKER[0],
        '        lab_attacker_v6: "%s"' % ATTACKER[1],
        '        lab_attacker_extra_v4: %s' % ATTACKER_EXTRA[0],
        '        lab_attacker_unlisted_v4: %s' % ATTACKER_UNLISTED[0],
        '        lab_friend_v4: %s' % FRIEND[0],
        '        lab_friend_v6: "%s"' % FRIEND[1],
    ]
    os.makedirs(os.path.dirname(INVENTORY), exist_ok=True)
    with open(INVENTORY, 'w') as handle:
        handle.write('\n'.join(lines) + '\n')


def connect(ns, addr, port, source=None, timeout=2.0):
    """TCP connect from inside a namespace; True if the handshake completed."""
    family = socket.AF_INET6 if ':' in addr else socket.AF_INET
    code = ('import socket,sys\n'
            's=socket.socket(%d,socket.SOCK_STREAM)\n'
            's.settimeout(%f)\n'
            '%s'
            'try:\n s.connect((%r,%d))\nexcept OSError as e:\n print(e);sys.exit(1)\n'
            % (family, timeout, ('s.bind((%r,0))\n' % source) if source else '', addr, port))
    proc = run(['ip', 'netns', 'exec', NS_PREFIX + ns, sys.executable, '-c', code], check=False,
               timeout=timeout + 10)
    return proc.returncode == 0


def host_exec(name, command):
    state = load_state()
    pid = state.get('pids', {}).get(name)
    if pid is None:
        raise LabError('lab: no host %s' % name)
    # The recorded pid is the sh that exec'd sshd, so it is sshd itself and
    # lives in the host's mount namespace: its /etc is the host's /etc.
    return subprocess.call(['nsenter', '-t', str(pid), '-n', '-m', '-u', '--'] + command)


def status():
    state = load_state()
    if not state:
        print('lab: down')
        return 1
    bad = 0
    for name, host in state['hosts'].items():
        ok = wait_port(host['v4'], 22, time.monotonic() + 1)
        bad += not ok
        print('%-4s %-16s %-22s sshd %s' % (name, host['v4'], host['v6'], 'up' if ok else 'DOWN'))
    return 1 if bad else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='cmd', required=True)
    p_up = sub.add_parser('up')
    p_up.add_argument('--hosts', type=int, default=3)
    sub.add_parser('down')
    sub.add_parser('status')
    p_conn = sub.add_parser('connect')
    p_conn.add_argument('ns')
    p_conn.add_argument('addr')
    p_conn.add_argument('port', type=int)
    p_conn.add_argument('--source')
    p_exec = sub.add_parser('exec')
    p_exec.add_argument('host')
    p_exec.add_argument('command', nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except LabError as exc:
        print(exc, file=sys.stderr)
        return 1


def _dispatch(args):
    if args.cmd == 'up':
        if not 1 <= args.hosts <= 80:
            raise LabError('lab: --hosts must be 1..80')
        up(args.hosts)
    elif args.cmd == 'down':
        down()
    elif args.cmd == 'status':
        return status()
    elif args.cmd == 'connect':
        ok = connect(args.ns, args.addr, args.port, args.source)
        print('connected' if ok else 'blocked')
        return 0 if ok else 1
    elif args.cmd == 'exec':
        command = args.command[1:] if args.command[:1] == ['--'] else args.command
        return host_exec(args.host, command)
    return 0


if __name__ == '__main__':
    sys.exit(main())
