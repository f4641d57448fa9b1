"""Safe rollout on the lab fleet: canary batches, the per-host change-size guard and the fleet summary.

A generation that loses most of its entries (a feed gone wrong that the shadow copy was forced to
publish) reaches hosts that refuse it: nothing is applied, the attacker stays blocked, and the one-line
fleet summary names the hosts. With fleetwall_force_change the change goes through. The tests run in order.
"""
import json
import os
import re

import pytest

from .conftest import HOSTS, ansible, reachable, set_count
from ansible_collections.fleetwall.blocklist.tests.helpers import tally

import fleet

ATTACKER, FRIEND = fleet.ATTACKER, fleet.FRIEND


@pytest.fixture(scope='module')
def rollout(lab, feeds, tmp_path_factory):
    # Even addresses only, so that the shadow copy cannot aggregate them: 101 entries.
    spread = ['203.0.113.%d' % (2 * i) for i in range(100)]
    (feeds.root / 'rollout.txt').write_text('\n'.join([ATTACKER[0]] + spread) + '\n')
    state = tmp_path_factory.mktemp('rollout-shadow')
    env = {'tmp': tmp_path_factory.mktemp('rollout-vars'), 'feeds': feeds, 'vars': {
        'fleetwall_backend': 'ipset',
        'shadow_copy_dir': str(state / 'copy'),
        'shadow_copy_feeds': [{'name': 'rollout', 'url': feeds.url + '/rollout.txt'}],
        # Batches of one host, then the rest; stop at the first failure.
        'fleetwall_serial': [1, '100%'],
        'fleetwall_max_fail_percentage': 0,
        'fleetwall_max_change_percent': 20,
        'fleetwall_report_dir': str(tmp_path_factory.mktemp('rollout-reports')),
    }}
    yield env
    run = play(env, ipset_state='absent')
    assert run.rc == 0, run.out[-3000:]


def play(env, **overrides):
    return ansible('ansible-playbook', ['playbooks/blocklist.yml'], extra_vars=dict(env['vars'], **overrides),
                   tmp_path=env['tmp'])


def summaries(run):
    # The fleet summary, without where the fleet report goes (after its ';').
    return re.findall(r'"msg": "(fleet: [^";]*)', run.out)


def test_first_rollout_in_batches(rollout):
    run = play(rollout)
    assert run.rc == 0, run.out[-3000:]
    # One batch of one host, then a batch of the other two, each with its own fleet summary.
    assert summaries(run) == ['fleet: 1 hosts, 1 to change (+101 -0 entries), 0 unchanged',
                              'fleet: 2 hosts, 2 to change (+202 -0 entries), 0 unchanged']
    for host in HOSTS:
        assert set_count(host, 'fleetwall-v4') == 101
        assert not reachable('attacker', host, ATTACKER[0]) and reachable('friend', host, FRIEND[0])
    # Each batch rewrote the report; the history has one point for the run, with every host's batch in it.
    with open(os.path.join(rollout['vars']['fleetwall_report_dir'], 'fleet_history.json')) as handle:
        runs = json.load(handle)['runs']
    assert len(runs) == 1 and sorted(runs[0]['hosts']) == sorted(HOSTS)
    assert [runs[0]['hosts'][host]['in_force'] for host in HOSTS] == [101] * len(HOSTS)


def test_a_generation_that_lost_most_entries_is_refused_by_every_host(rollout):
    (rollout['feeds'].root / 'rollout.txt').write_text('%s\n203.0.113.1\n' % ATTACKER[0])
    run = play(rollout, shadow_copy_force=True)
    assert run.rc == 0, run.out[-3000:]
    assert 'above max_change_percent 20' in run.out
    assert summaries(run) == [
        'fleet: 1 hosts, 0 to change (+0 -0 entries), 0 unchanged, 1 REFUSED a change above max_change_percent: h1',
        'fleet: 2 hosts, 0 to change (+0 -0 entries), 0 unchanged, '
        '2 REFUSED a change above max_change_percent: h2, h3']
    for host in HOSTS:
        assert set_count(host, 'fleetwall-v4') == 101
        assert not reachable('attacker', host, ATTACKER[0])


def test_force_change_applies_it(rollout):
    run = play(rollout, fleetwall_force_change=True)
    assert run.rc == 0, run.out[-3000:]
    assert summaries(run) == ['fleet: 1 hosts, 1 to change (+1 -100 entries), 0 unchanged',
                              'fleet: 2 hosts, 2 to change (+2 -200 entries), 0 unchanged']
    for host in HOSTS:
        assert set_count(host, 'fleetwall-v4') == 2
        assert not reachable('attacker', host, ATTACKER[0]) and reachable('friend', host, FRIEND[0])


def push(env):
    return ansible('ansible-playbook', ['playbooks/push.yml'], extra_vars=env['vars'], tmp_path=env['tmp'])


@pytest.mark.parametrize('tamper', ['append', 'truncate'])
def test_a_generation_edited_after_publication_is_not_pushed(rollout, tamper):
    """Someone with write access to the shadow directory edits the published file: the manifest's sha256 no
    longer matches, so the push stops before any host is touched (it used to push +66 entries, or empty
    every host's set for a file truncated to 0 bytes)."""
    current = rollout['vars']['shadow_copy_dir'] + '/current/blocklist_v4.txt'
    with open(current, 'rb') as handle:
        published = handle.read()
    tally('bad inputs tried: tampered generation')
    try:
        with open(current, 'wb') as handle:
            handle.write(published + b'0.0.0.0/1\n8.8.8.8\n' if tamper == 'append' else b'')
        run = push(rollout)
        assert run.rc != 0
        assert 'changed after the build published it; nothing pushed' in run.out, run.out[-3000:]
        assert 'blocklist_v4.txt has sha256 ' in run.out
        for host in HOSTS:
            assert set_count(host, 'fleetwall-v4') == 2
            assert not reachable('attacker', host, ATTACKER[0])
    finally:
        with open(current, 'wb') as handle:
            handle.write(published)
    run = push(rollout)
    assert run.rc == 0, run.out[-3000:]
