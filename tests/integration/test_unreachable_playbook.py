"""A host goes unreachable in the middle of a run: the others complete, and the recap and the fleet
summary say which one did not. The next run, with the host back, converges there and changes nothing
elsewhere.

The fault is made inside h3 itself: once the push play has started, h3 answers every SSH packet with a
TCP reset (its own iptables), which ends Ansible's open connection and refuses new ones, as a host
that lost its sshd would. Nothing outside the lab's namespaces is touched.
"""
import json
import os
import re
import subprocess
import time

import pytest

from ansible_collections.fleetwall.blocklist.tests.helpers import ROOT, tally

from .conftest import HOSTS, VENV, Run, ansible, host_sh, reachable

import fleet

ATTACKER = fleet.ATTACKER
DARK = 'h3'
REJECT = 'INPUT -p tcp --dport 22 -j REJECT --reject-with tcp-reset'


@pytest.fixture(scope='module')
def dark(lab, feeds, tmp_path_factory):
    (feeds.root / 'dark_attackers.txt').write_text('%s\n%s\n' % (ATTACKER[0], ATTACKER[1]))
    state = tmp_path_factory.mktemp('dark-shadow')
    tmp = tmp_path_factory.mktemp('dark-vars')
    extra = {'fleetwall_backend': 'ipset', 'shadow_copy_dir': str(state / 'copy'),
             'shadow_copy_feeds': [{'name': 'dark', 'url': feeds.url + '/dark_attackers.txt'}]}
    off = dict(extra, ipset_state='absent')
    assert ansible('ansible-playbook', ['playbooks/blocklist.yml'], extra_vars=off, tmp_path=tmp).rc == 0
    env = {'tmp': tmp, 'vars': extra}
    try:
        env['run'] = run_and_cut_off(extra, tmp)
        yield env
    finally:
        host_sh(DARK, 'iptables -D %s' % REJECT)
        assert ansible('ansible-playbook', ['playbooks/blocklist.yml'], extra_vars=off, tmp_path=tmp).rc == 0


def run_and_cut_off(extra_vars, tmp):
    """ansible-playbook, with h3 cut off as soon as the push play starts."""
    path = os.path.join(str(tmp), 'extra-vars.json')
    with open(path, 'w') as handle:
        json.dump(extra_vars, handle)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0', ANSIBLE_STDOUT_CALLBACK='ansible.builtin.default')
    proc = subprocess.Popen([os.path.join(VENV, 'bin', 'ansible-playbook'), 'playbooks/blocklist.yml', '-e', '@' + path],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, cut = [], False
    deadline = time.monotonic() + 600
    for line in proc.stdout:
        out.append(line)
        if not cut and line.startswith('PLAY [Push the blocklist to every host]'):
            rc, _out, err = host_sh(DARK, 'iptables -I %s' % REJECT)
            assert rc == 0, err
            tally('faults injected: host unreachable mid-run')
            cut = True
        if time.monotonic() > deadline:
            proc.kill()
            break
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert cut, ''.join(out)[-3000:]
    return Run(subprocess.CompletedProcess(proc.args, proc.returncode, ''.join(out), err))


def test_the_others_complete_and_the_recap_names_the_dark_host(dark):
    run = dark['run']
    assert run.rc != 0, run.out[-3000:]
    assert run.recap[DARK]['unreachable'] >= 1, run.out[-3000:]
    for host in HOSTS:
        if host != DARK:
            assert run.recap[host]['failed'] == 0 and run.recap[host]['unreachable'] == 0, run.out[-3000:]
            assert run.changed(host) >= 1
            assert not reachable('attacker', host, ATTACKER[0])
    summary = re.findall(r'"msg": "(fleet: [^"]*)"', run.out)
    assert summary and '2 to change' in summary[-1] and '1 UNREACHABLE: %s' % DARK in summary[-1], summary


def test_the_next_run_converges_on_the_host_that_came_back(dark):
    assert host_sh(DARK, 'iptables -D %s' % REJECT)[0] == 0
    run = ansible('ansible-playbook', ['playbooks/blocklist.yml'], extra_vars=dark['vars'], tmp_path=dark['tmp'])
    assert run.rc == 0, run.out[-3000:]
    assert run.changed(DARK) >= 1 and all(run.changed(h) == 0 for h in HOSTS if h != DARK), run.out[-3000:]
    for host in HOSTS:
        assert not reachable('attacker', host, ATTACKER[0])
