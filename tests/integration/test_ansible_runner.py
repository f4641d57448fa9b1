"""playbooks/blocklist.yml run the way AWX runs it: through ansible-runner, with a private data dir.

AWX (and Automation Controller) hand a job to ansible-runner: the project checkout in
``<private data dir>/project``, the inventory in ``inventory/``, extra variables in ``env/extravars``;
it runs ansible-playbook there and keeps the job's events and artifacts. The test checks what a job
template's output shows: per-host ok/changed, the summary the play prints, the artifacts on disk, a
second scheduled run that changes nothing, and the block itself with packets.
"""
import glob
import json
import os
import shutil
import subprocess

import pytest
import yaml

from .conftest import HOSTS, VENV, reachable

import fleet

pytest.importorskip('ansible_runner')

ATTACKER, FRIEND = fleet.ATTACKER, fleet.FRIEND


@pytest.fixture(scope='module')
def job(lab, feeds, tmp_path_factory):
    (feeds.root / 'runner_attackers.txt').write_text('%s\n%s\n' % (ATTACKER[0], ATTACKER[1]))
    data_dir = tmp_path_factory.mktemp('awx-job')
    os.symlink(fleet.ROOT, str(data_dir / 'project'))
    (data_dir / 'inventory').mkdir()
    shutil.copy(fleet.INVENTORY, str(data_dir / 'inventory' / 'hosts.yml'))
    (data_dir / 'env').mkdir()
    extravars = {
        'fleetwall_backend': 'nftables',
        'fleetwall_report_dir': str(data_dir / 'reports'),
        'shadow_copy_dir': str(tmp_path_factory.mktemp('awx-shadow') / 'copy'),
        'shadow_copy_feeds': [{'name': 'attackers', 'url': feeds.url + '/runner_attackers.txt'},
                              {'name': 'drop', 'url': feeds.url + '/spamhaus/drop.txt'}],
    }
    (data_dir / 'env' / 'extravars').write_text(yaml.safe_dump(extravars))
    # What the execution environment's PATH would give: this virtualenv's ansible-playbook.
    (data_dir / 'env' / 'envvars').write_text(yaml.safe_dump({
        'PATH': os.path.join(VENV, 'bin') + os.pathsep + os.environ.get('PATH', '/usr/bin:/bin'),
        'ANSIBLE_NOCOLOR': '1'}))
    yield data_dir
    (data_dir / 'env' / 'extravars').write_text(yaml.safe_dump(dict(extravars, nftables_state='absent')))
    assert run_job(data_dir, 'cleanup').status == 'successful'


class Job(object):
    """A finished job as AWX sees it: status, rc and events from the artifacts directory."""

    def __init__(self, data_dir, ident, output):
        self.dir = os.path.join(str(data_dir), 'artifacts', ident)
        self.output = output
        with open(os.path.join(self.dir, 'status')) as handle:
            self.status = handle.read().strip()
        with open(os.path.join(self.dir, 'rc')) as handle:
            self.rc = int(handle.read().strip())
        self.events = []
        for path in glob.glob(os.path.join(self.dir, 'job_events', '*.json')):
            with open(path) as handle:
                self.events.append(json.load(handle))
        self.events.sort(key=lambda event: event['counter'])
        stats = [e for e in self.events if e['event'] == 'playbook_on_stats']
        self.stats = stats[-1]['event_data'] if stats else {}


def run_job(data_dir, ident):
    # The ansible-runner command, in its own process, as an execution node runs it.
    proc = subprocess.run([os.path.join(VENV, 'bin', 'ansible-runner'), 'run', str(data_dir), '-p',
                           'playbooks/blocklist.yml', '--ident', ident],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900, check=False)
    return Job(data_dir, ident, proc.stdout)


def summary_lines(job):
    for event in job.events:
        data = event.get('event_data', {})
        if event['event'] == 'runner_on_ok' and data.get('task') == 'Per-host summary':
            return data['res']['msg']
    return None


def test_a_job_runs_and_leaves_its_events_and_artifacts(job):
    runner = run_job(job, 'first')
    assert runner.status == 'successful' and runner.rc == 0, runner.output[-3000:]
    stats = runner.stats
    for host in HOSTS:
        assert stats['ok'][host] > 0 and stats['changed'][host] > 0
        assert host not in stats['failures'] and host not in stats['dark']
    lines = summary_lines(runner)
    assert [line.split(':')[0] for line in lines] == list(HOSTS)
    assert all(': changed ' in line and 'fleetwall_v4_hosts +' in line for line in lines)
    artifacts = os.path.join(str(job), 'artifacts', 'first')
    with open(os.path.join(artifacts, 'status')) as handle:
        assert handle.read().strip() == 'successful'
    with open(os.path.join(artifacts, 'stdout')) as handle:
        assert 'PLAY RECAP' in handle.read()
    events = os.listdir(os.path.join(artifacts, 'job_events'))
    assert any(name.endswith('.json') for name in events)
    with open(os.path.join(artifacts, 'job_events', sorted(events)[0])) as handle:
        assert 'uuid' in json.load(handle)
    # The fleet report the job leaves for the operator, beside AWX's own output.
    with open(os.path.join(str(job), 'reports', 'fleet_report.json')) as handle:
        report = json.load(handle)
    assert [(row['host'], row['state'], row['backend']) for row in report['hosts']] == [
        (host, 'changed', 'nftables') for host in HOSTS]
    for host in HOSTS:
        assert not reachable('attacker', host, ATTACKER[0], 4) and not reachable('attacker', host, ATTACKER[1], 6)
        assert reachable('friend', host, FRIEND[0], 4)


def test_the_next_scheduled_run_changes_nothing(job):
    runner = run_job(job, 'second')
    assert runner.status == 'successful', runner.output[-3000:]
    assert all(runner.stats['changed'].get(host, 0) == 0 for host in HOSTS), runner.stats
    assert all(': ok ' in line and '+0 -0' in line for line in summary_lines(runner))
