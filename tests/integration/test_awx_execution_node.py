"""playbooks/blocklist.yml run the way AWX runs it on an execution node, over a receptor mesh.

AWX's control node does not run a job itself: ``ansible-runner transmit`` packs the job's private data
directory (project, inventory, env/) into a stream, receptor carries it to an execution node, where
``ansible-runner worker`` unpacks it into a private data directory of its own, runs ansible-playbook and
streams the events and artifacts back; ``ansible-runner process`` on the control node writes them
(``artifacts/<ident>/status``, ``rc``, ``job_events/``). Here the three are piped into each other, and the
worker runs in a network namespace of its own on the lab bridge (the execution node), so that:

- the hosts are reached over SSH from the execution node's address, with the key handed over as AWX's
  Machine credential (``env/ssh_key``, loaded into an ssh-agent on the node), and the feeds are fetched by
  the node, from a feed server that only the node can reach;
- the project is a real copy inside the private data directory, as AWX's project sync makes it: the node
  runs what was transmitted, not the controller's checkout;
- the worker deletes its private data directory when the job ends (``--delete``), so the shadow copy and
  the fleet report live on a persistent path of the node (docs/awx.md, section 3), and the second job
  uses the first job's copy: the same generation, not re-published, the feed asked with a conditional GET.

It checks what AWX shows (status, rc, per-host stats, the summaries the play prints), the fleet report,
that the second job changes nothing, and the block with packets; a last job removes the block.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import yaml

from .conftest import HOSTS, VENV, host_sh, reachable
from .test_ansible_runner import Job, summary_lines

import feed_server
import fleet

pytest.importorskip('ansible_runner')

ATTACKER, FRIEND = fleet.ATTACKER, fleet.FRIEND
# The execution node: a free lab address (the controller is .1, hosts .11-.99, attacker .200/.210/.220,
# friend .201).
NODE_NS, NODE_VETH = 'execnode', 'fwv-execnode'
NODE = (fleet.NET4 + '202', fleet.NET6 + '202')
FEED = 'execnode_attackers.txt'
# What AWX's project sync puts into <private data dir>/project: the collection's own tree.
PROJECT = ('ansible.cfg', 'galaxy.yml', 'meta', 'playbooks', 'plugins', 'roles')
JOB_TIMEOUT = 900


def read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return ''


def runner(*args):
    return [os.path.join(VENV, 'bin', 'ansible-runner')] + list(args)


class ExecutionNode(object):
    """The node's namespace, its feed server and its persistent directory (the EE's mounted path)."""

    def __init__(self):
        # Short: ssh's ControlPath sockets live under it, and a socket path has at most 107 bytes.
        self.dir = tempfile.mkdtemp(prefix='fw-node-')
        self.persistent = os.path.join(self.dir, 'var', 'lib', 'fleetwall')
        self.shadow_copy_dir = os.path.join(self.persistent, 'shadow_copy')
        self.report_dir = os.path.join(self.persistent, 'reports')
        self.feed_log = os.path.join(self.dir, 'feed_server.log')
        self.server = self.feed_url = None

    def start(self, feeds_root):
        fleet.add_namespace(fleet.NS_PREFIX + NODE_NS, [NODE], NODE_VETH)
        port_file = os.path.join(self.dir, 'feed_port')
        with open(self.feed_log, 'w') as log:
            self.server = subprocess.Popen(
                ['ip', 'netns', 'exec', fleet.NS_PREFIX + NODE_NS, sys.executable, feed_server.__file__,
                 str(feeds_root), '--port-file', port_file, '--lifetime', '3600'],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=dict(os.environ, FEED_SERVER_VERBOSE='1'))
        deadline = time.monotonic() + 15
        while not read(port_file):
            if time.monotonic() > deadline or self.server.poll() is not None:
                raise RuntimeError('no feed server in the execution node: %s' % self.log()[-2000:])
            time.sleep(0.1)
        # The node's own loopback: the controller (the root namespace) cannot reach it.
        self.feed_url = 'http://127.0.0.1:%s' % read(port_file)

    def log(self):
        return read(self.feed_log)

    def remove(self):
        if self.server is not None:
            self.server.kill()
            self.server.wait(timeout=10)
        fleet.remove_namespace(fleet.NS_PREFIX + NODE_NS)
        deadline = time.monotonic() + 15
        while fleet.run(['ip', 'link', 'show', NODE_VETH], check=False).returncode == 0:
            fleet.run(['ip', 'link', 'del', NODE_VETH], check=False)
            if time.monotonic() > deadline:
                raise RuntimeError('%s is still there' % NODE_VETH)
            time.sleep(0.1)
        shutil.rmtree(self.dir, ignore_errors=True)


def node_inventory(node):
    """The lab's inventory as AWX would hold it: the key comes from the credential, the SSH connections
    (and their ControlPath sockets) are the node's own, not those of anything else on this machine."""
    with open(fleet.INVENTORY) as handle:
        inventory = yaml.safe_load(handle)
    lab_vars = inventory['all']['children']['lab']['vars']
    del lab_vars['ansible_ssh_private_key_file']
    os.makedirs(os.path.join(node.dir, 'cp'))
    lab_vars['ansible_ssh_common_args'] = (
        '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR '
        '-o ControlMaster=auto -o ControlPersist=60s -o ControlPath=%s' % os.path.join(node.dir, 'cp', '%C'))
    return inventory


class ExecutionNodeJobs(object):
    """Launch jobs the way AWX does: a fresh private data directory on the controller for every job."""

    def __init__(self, node, base, extravars):
        self.node, self.base, self.extravars = node, base, extravars
        self.inventory = node_inventory(node)
        with open(os.path.join(fleet.STATE, 'keys', 'id_ed25519')) as handle:
            self.ssh_key = handle.read()

    def private_data_dir(self, ident, extravars):
        data_dir = os.path.join(self.base, ident)
        project = os.path.join(data_dir, 'project')
        os.makedirs(project)
        for name in PROJECT:
            source = os.path.join(fleet.ROOT, name)
            if os.path.isdir(source):
                shutil.copytree(source, os.path.join(project, name),
                                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            else:
                shutil.copy(source, os.path.join(project, name))
        # ansible.cfg's collections_path: the collection is the project itself (relative, so it travels).
        collection = os.path.join(project, '.collections', 'ansible_collections', 'fleetwall')
        os.makedirs(collection)
        os.symlink(os.path.join('..', '..', '..'), os.path.join(collection, 'blocklist'))
        os.makedirs(os.path.join(data_dir, 'inventory'))
        with open(os.path.join(data_dir, 'inventory', 'hosts.yml'), 'w') as handle:
            yaml.safe_dump(self.inventory, handle)
        env = os.path.join(data_dir, 'env')
        os.makedirs(env)
        with open(os.path.join(env, 'extravars'), 'w') as handle:
            yaml.safe_dump(extravars, handle)
        with open(os.path.join(env, 'ssh_key'), 'w') as handle:
            handle.write(self.ssh_key)
        os.chmod(os.path.join(env, 'ssh_key'), 0o600)
        # The execution environment's PATH: this virtualenv's ansible-playbook.
        with open(os.path.join(env, 'envvars'), 'w') as handle:
            yaml.safe_dump({'PATH': os.path.join(VENV, 'bin') + os.pathsep + os.environ.get('PATH', '/usr/bin:/bin'),
                            'ANSIBLE_NOCOLOR': '1'}, handle)
        return data_dir

    def worker_dir(self, ident):
        return os.path.join(self.node.dir, 'jobs', ident)

    def run(self, ident, **overrides):
        data_dir = self.private_data_dir(ident, dict(self.extravars, **overrides))
        logs = {name: os.path.join(self.base, '%s.%s.stderr' % (ident, name)) for name in ('transmit', 'worker')}
        with open(logs['transmit'], 'w') as transmit_err, open(logs['worker'], 'w') as worker_err:
            transmit = subprocess.Popen(runner('transmit', data_dir, '-p', 'playbooks/blocklist.yml', '--ident', ident),
                                        stdout=subprocess.PIPE, stderr=transmit_err, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
            worker = subprocess.Popen(['ip', 'netns', 'exec', fleet.NS_PREFIX + NODE_NS]
                                      + runner('worker', '--private-data-dir', self.worker_dir(ident), '--delete',
                                               '--keepalive-seconds', '5'),
                                      stdin=transmit.stdout, stdout=subprocess.PIPE, stderr=worker_err,
                                      start_new_session=True)
            process = subprocess.Popen(runner('process', data_dir, '--ident', ident), stdin=worker.stdout,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                       start_new_session=True)
            transmit.stdout.close()
            worker.stdout.close()
            procs = (transmit, worker, process)
            try:
                output = process.communicate(timeout=JOB_TIMEOUT)[0]
                for proc in procs:
                    proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for proc in procs:
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(timeout=30)
                output = 'job %s timed out after %d s' % (ident, JOB_TIMEOUT)
        for name, path in sorted(logs.items()):
            with open(path) as handle:
                output += '\n--- %s stderr (rc %s) ---\n%s' % (
                    name, (transmit if name == 'transmit' else worker).returncode, handle.read())
        job = Job(data_dir, ident, output)
        job.rcs = {'transmit': transmit.returncode, 'worker': worker.returncode, 'process': process.returncode}
        return job


@pytest.fixture(scope='module')
def node(lab, feeds):
    (feeds.root / FEED).write_text('%s\n%s\n' % (ATTACKER[0], ATTACKER[1]))
    node = ExecutionNode()
    try:
        node.start(feeds.root)
        yield node
    finally:
        node.remove()


@pytest.fixture(scope='module')
def jobs(node, tmp_path_factory):
    extravars = {
        'fleetwall_backend': 'nftables',
        'fleetwall_report_dir': node.report_dir,
        'shadow_copy_dir': node.shadow_copy_dir,
        'shadow_copy_feeds': [{'name': 'attackers', 'url': node.feed_url + '/' + FEED},
                              {'name': 'drop', 'url': node.feed_url + '/spamhaus/drop.txt'}],
        # docs/awx.md, section 4: the execution nodes' addresses are never to be blocked.
        'shadow_copy_allowlist': list(NODE),
    }
    jobs = ExecutionNodeJobs(node, str(tmp_path_factory.mktemp('awx-control-node')), extravars)
    yield jobs
    cleanup = jobs.run('cleanup', nftables_state='absent')
    assert cleanup.status == 'successful' and cleanup.rc == 0, cleanup.output[-3000:]


def task_results(job, task):
    return [event['event_data']['res'] for event in job.events
            if event['event'] == 'runner_on_ok' and event['event_data'].get('task') == task]


def build_result(job):
    results = task_results(job, 'Build the shadow copy from the feeds')
    assert len(results) == 1, job.output[-3000:]
    return results[0]


def shown(build):
    return {key: build.get(key) for key in ('published', 'generation', 'withheld', 'path')}


def accepted_ssh(address):
    """How many SSH logins each lab host accepted from ``address`` (its sshd's own log)."""
    counts = {}
    for host in HOSTS:
        rc, out, err = host_sh(host, "grep -c 'Accepted publickey for root from %s port' /var/log/auth.log" % address)
        assert rc in (0, 1), err
        counts[host] = int(out.strip() or 0)
    return counts


def feed_requests(node, ident_status):
    return [line for line in node.log().splitlines() if '"GET /%s ' % FEED in line and line.endswith(ident_status)]


def published_generations(node):
    return sorted(os.listdir(os.path.join(node.shadow_copy_dir, 'generations')))


def test_a_job_on_the_execution_node_blocks_and_reports(node, jobs, feeds):
    from_controller = accepted_ssh(fleet.CONTROLLER[0])
    from_node = accepted_ssh(NODE[0])
    job = jobs.run('first')
    assert job.status == 'successful' and job.rc == 0, job.output[-3000:]
    assert job.rcs == {'transmit': 0, 'worker': 0, 'process': 0}, job.output[-3000:]
    for host in HOSTS:
        assert job.stats['ok'][host] > 0 and job.stats['changed'][host] > 0, (host, job.stats)
        assert host not in job.stats['failures'] and host not in job.stats['dark'], (host, job.stats)
    lines = summary_lines(job)
    assert lines and [line.split(':')[0] for line in lines] == list(HOSTS), job.output[-3000:]
    assert all(': changed ' in line and 'fleetwall_v4_hosts +' in line for line in lines), lines
    fleet_summary = task_results(job, 'Fleet summary')
    assert len(fleet_summary) == 1, job.output[-3000:]
    assert fleet_summary[0]['msg'].startswith('fleet: %d hosts, %d to change' % (len(HOSTS), len(HOSTS))), fleet_summary
    assert node.report_dir + '/fleet_report.html and .json' in fleet_summary[0]['msg'], fleet_summary
    # The node ran the job: every host was logged in to from its address, none from the controller's.
    assert accepted_ssh(fleet.CONTROLLER[0]) == from_controller, job.output[-3000:]
    assert all(count > from_node[host] for host, count in accepted_ssh(NODE[0]).items()), job.output[-3000:]
    # ... and fetched the feed from the server only it can reach, not from the controller's loopback one.
    assert len(feed_requests(node, ' 200 -')) == 1, node.log()[-2000:]
    assert not [hit for hit in feeds.hits if FEED in hit], feeds.hits
    # The worker threw its private data directory away; what has to outlive the job is on the node's path.
    assert not os.path.exists(jobs.worker_dir('first')), os.listdir(os.path.dirname(jobs.worker_dir('first')))
    build = build_result(job)
    assert build['published'] and build['generation'] is not None, shown(build)
    assert published_generations(node) == [str(build['generation'])], published_generations(node)
    with open(os.path.join(node.report_dir, 'fleet_report.json')) as handle:
        report = json.load(handle)
    assert [(row['host'], row['state'], row['backend']) for row in report['hosts']] == [
        (host, 'changed', 'nftables') for host in HOSTS], report['hosts']
    for host in HOSTS:
        assert not reachable('attacker', host, ATTACKER[0], 4), host
        assert not reachable('attacker', host, ATTACKER[1], 6), host
        assert reachable('friend', host, FRIEND[0], 4), host


def test_the_next_job_uses_the_nodes_shadow_copy_and_changes_nothing(node, jobs):
    first = build_result(Job(os.path.join(jobs.base, 'first'), 'first', ''))
    job = jobs.run('second')
    assert job.status == 'successful' and job.rc == 0, job.output[-3000:]
    assert all(job.stats['changed'].get(host, 0) == 0 for host in HOSTS), (job.stats, job.output[-3000:])
    assert all(': ok ' in line and '+0 -0' in line for line in summary_lines(job)), summary_lines(job)
    assert task_results(job, 'Fleet summary')[0]['msg'].startswith(
        'fleet: %d hosts, 0 to change (+0 -0 entries), %d unchanged' % (len(HOSTS), len(HOSTS))), job.output[-3000:]
    # A fresh worker directory, yet the first job's copy: its ETag made the fetch conditional, nothing new was
    # published, and the generation pushed is the first job's.
    build = build_result(job)
    assert not build['published'] and build['generation'] == first['generation'], (shown(build), shown(first))
    attackers = [feed for feed in build['feeds'] if feed['name'] == 'attackers']
    assert len(attackers) == 1 and attackers[0].get('not_modified') is True, build['feeds']
    assert len(feed_requests(node, ' 304 -')) == 1, node.log()[-2000:]
    assert published_generations(node) == [str(first['generation'])], published_generations(node)
    assert not os.path.exists(jobs.worker_dir('second')), os.listdir(os.path.dirname(jobs.worker_dir('second')))
