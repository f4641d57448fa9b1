"""playbooks/blocklist.yml end to end on the lab fleet, proven with packets.

The tests run in order and share the fleet: each leaves the state the next
one starts from, as successive scheduled runs would.
"""
import json
import os
import re

import pytest

from .conftest import HOSTS, ansible, host_sh, listen, reachable, rejected_at_once, set_count

import fleet

ATTACKER, ATTACKER_EXTRA = fleet.ATTACKER, fleet.ATTACKER_EXTRA
FRIEND = fleet.FRIEND


@pytest.fixture(scope='module')
def fleetvars(lab, feeds, tmp_path_factory):
    state = tmp_path_factory.mktemp('shadow')
    (feeds.root / 'attackers.txt').write_text(
        '# attackers\n%s\n%s\n198.18.0.208/29\n' % (ATTACKER[0], ATTACKER[1]))
    return {
        'tmp': tmp_path_factory.mktemp('vars'),
        'feeds': feeds,
        'vars': {
            'fleetwall_backend': 'ipset',
            'shadow_copy_dir': str(state / 'copy'),
            'shadow_copy_feeds': [
                {'name': 'attackers', 'url': feeds.url + '/attackers.txt'},
                {'name': 'drop', 'url': feeds.url + '/spamhaus/drop.txt'},
                {'name': 'drop6', 'url': feeds.url + '/spamhaus/drop_ipv6.txt'},
            ],
        },
    }


def published(fleetvars, name):
    with open(os.path.join(fleetvars['vars']['shadow_copy_dir'], 'current', name)) as handle:
        return handle.read().split()


def play(fleetvars, *args):
    return ansible('ansible-playbook', ['playbooks/blocklist.yml'] + list(args),
                   extra_vars=fleetvars['vars'], tmp_path=fleetvars['tmp'])


def assert_blocked(source, version, hosts=HOSTS):
    for host in hosts:
        assert not reachable('attacker', host, source, version), '%s reached %s' % (source, host)


def assert_friend_served(hosts=HOSTS):
    for host in hosts:
        assert reachable('friend', host, FRIEND[0], 4), 'friend v4 blocked on %s' % host
        assert reachable('friend', host, FRIEND[1], 6), 'friend v6 blocked on %s' % host


def test_01_first_run_blocks_attacker_and_serves_friend(fleetvars):
    for host in HOSTS:
        assert reachable('attacker', host, ATTACKER[0], 4)
    run = play(fleetvars)
    assert run.rc == 0, run.out
    assert all(run.changed(h) >= 1 for h in HOSTS)
    assert_blocked(ATTACKER[0], 4)
    assert_blocked(ATTACKER_EXTRA[0], 4)   # through the /29
    assert_blocked(ATTACKER[1], 6)
    assert_friend_served()
    v4, v6 = published(fleetvars, 'blocklist_v4.txt'), published(fleetvars, 'blocklist_v6.txt')
    assert ATTACKER[0] in v4 and '198.18.0.208/29' in v4 and ATTACKER[1] in v6
    assert len(v6) == 51 + 1
    for host in HOSTS:
        assert (set_count(host, 'fleetwall-v4'), set_count(host, 'fleetwall-v6')) == (len(v4), len(v6))
    fleetvars['v4_count'] = len(v4)
    # Each host's line ends with the seconds its sync call took by its own account.
    assert re.search(r'"h1: changed  fleetwall-v4 \+%d -0 =%d \| fleetwall-v6 \+52 -0 =52  \(\d+\.\d\d s\)"'
                     % (len(v4), len(v4)), run.out), run.out[-3000:]


def test_02_second_run_changes_nothing(fleetvars):
    run = play(fleetvars)
    assert run.rc == 0, run.out
    assert {h: run.changed(h) for h in list(HOSTS) + ['localhost']} == dict.fromkeys(list(HOSTS) + ['localhost'], 0)


def test_03_check_diff_previews_and_changes_nothing(fleetvars):
    (fleetvars['feeds'].root / 'attackers.txt').write_text('%s\n198.18.0.208/29\n' % ATTACKER[1])
    run = play(fleetvars, '--check', '--diff')
    assert run.rc == 0, run.out
    assert all(run.changed(h) == 1 for h in HOSTS)
    assert '-%s' % ATTACKER[0] in run.out            # the preview names the entry to remove
    n = fleetvars['v4_count']
    assert '"h2: changed  fleetwall-v4 +0 -1 =%d | fleetwall-v6 +0 -0 =52  (' % (n - 1) in run.out
    assert_blocked(ATTACKER[0], 4)
    assert set_count('h2', 'fleetwall-v4') == n
    copy = fleetvars['vars']['shadow_copy_dir']
    assert os.readlink(os.path.join(copy, 'current')) == os.path.join('generations', '1')


def test_04_entry_removed_from_feed_is_unblocked(fleetvars):
    run = play(fleetvars)
    assert run.rc == 0, run.out
    for host in HOSTS:
        assert reachable('attacker', host, ATTACKER[0], 4)
    assert_blocked(ATTACKER_EXTRA[0], 4)
    assert_blocked(ATTACKER[1], 6)
    assert_friend_served()


def test_05_failed_feed_keeps_previous_protection(fleetvars):
    broken = json.loads(json.dumps(fleetvars['vars']))
    broken['shadow_copy_feeds'][0]['url'] = fleetvars['feeds'].url + '/fault/500/attackers.txt'
    broken['shadow_copy_feeds'][0]['retries'] = 0
    broken['shadow_copy_feeds'][1]['url'] = fleetvars['feeds'].url + '/fault/html/drop.txt'
    run = ansible('ansible-playbook', ['playbooks/blocklist.yml'], extra_vars=broken, tmp_path=fleetvars['tmp'])
    assert run.rc == 0, run.out
    assert 'feed attackers: cached: ' in run.out and 'HTTP 500' in run.out
    assert 'feed drop: cached: ' in run.out and 'HTML page' in run.out
    assert all(run.changed(h) == 0 for h in HOSTS)
    assert set_count('h3', 'fleetwall-v4') == fleetvars['v4_count'] - 1
    assert_blocked(ATTACKER_EXTRA[0], 4)
    # Failing on every run only warned (rc 0): past its max_age the feed fails the run, at its end, after the
    # hosts got what was published from the rest. Here the copy is some seconds old, and max_age is 1 s.
    broken['shadow_copy_feeds'][0]['max_age'] = 1
    run = ansible('ansible-playbook', ['playbooks/blocklist.yml'], extra_vars=broken, tmp_path=fleetvars['tmp'])
    assert run.rc != 0, run.out[-3000:]
    assert re.search(r"1 feed\(s\) past their max_age .*attackers \(copy \d+ s old, max_age 1 s: .*HTTP 500", run.out), \
        run.out[-3000:]
    assert re.search(r'^h1 +: ok=\d+ +changed=0 +unreachable=0 +failed=0', run.out, re.M), run.out[-1500:]
    assert_blocked(ATTACKER_EXTRA[0], 4)


def test_06_persistence_restores_sets_after_a_reboot(fleetvars):
    rc, out, err = host_sh('h2', 'cat /etc/systemd/system/fleetwall-ipset-restore.service; '
                                 'readlink /etc/systemd/system/multi-user.target.wants/fleetwall-ipset-restore.service')
    assert rc == 0, err
    assert out.strip().endswith('/etc/systemd/system/fleetwall-ipset-restore.service')
    exec_starts = [line[len('ExecStart='):] for line in out.splitlines() if line.startswith('ExecStart=')]
    # A reboot, as far as netfilter is concerned: rules and sets are gone.
    rc, _out, err = host_sh('h2', 'iptables -F INPUT; ip6tables -F INPUT; ipset destroy fleetwall-v4; ipset destroy fleetwall-v6')
    assert rc == 0, err
    assert set_count('h2', 'fleetwall-v4') is None
    assert reachable('attacker', 'h2', ATTACKER_EXTRA[0], 4)
    # systemd turns $$ into $ before running a command; a leading '-' lets it fail.
    for exec_start in exec_starts:
        rc, _out, err = host_sh('h2', exec_start.lstrip('-').replace('$$', '$'))
        assert rc == 0, err
    assert (set_count('h2', 'fleetwall-v4'), set_count('h2', 'fleetwall-v6')) == (fleetvars['v4_count'] - 1, 52)
    # The unit put the rules back too, before any run (it restored only the sets before).
    assert_blocked(ATTACKER_EXTRA[0], 4, hosts=['h2'])
    assert_blocked(ATTACKER[1], 6, hosts=['h2'])
    run = play(fleetvars)
    assert run.rc == 0, run.out
    assert run.changed('h2') == 0 and run.changed('h1') == 0


def test_07_rollback_to_an_earlier_generation_and_forward_again(fleetvars):
    run = play(fleetvars, '-e', 'shadow_copy_generation=1')
    assert run.rc == 0, run.out
    assert all(run.changed(h) == 1 for h in HOSTS)
    assert_blocked(ATTACKER[0], 4)             # generation 1 still listed it
    run = play(fleetvars, '-e', 'shadow_copy_generation=99')
    assert run.rc != 0 and 'Generation 99 is not in' in run.out
    assert_blocked(ATTACKER[0], 4)
    run = play(fleetvars)
    assert run.rc == 0, run.out
    for host in HOSTS:
        assert reachable('attacker', host, ATTACKER[0], 4)
    assert_friend_served()


def test_08_port_scoped_block_with_log_rule_and_an_outbound_block(fleetvars):
    listener = listen('fw-h1', fleet.host_addresses(1)[0], 8080)
    outside = listen('fw-attacker', ATTACKER_EXTRA[0], 9000)
    try:
        run = play(fleetvars, '-e', '{"ipset_ports": [22], "ipset_log": true, "ipset_log_limit": "2/second", '
                                    '"ipset_block_output": true}')
        assert run.rc == 0, run.out
        web = fleet.host_addresses(1)[0]
        assert not reachable('attacker', 'h1', ATTACKER_EXTRA[0], 4)           # port 22: blocked
        assert fleet.connect('attacker', web, 8080, source=ATTACKER_EXTRA[0])   # other ports: served
        rc, out, _err = host_sh('h1', 'iptables -S INPUT')
        assert '-m multiport --dports 22' in out and '-j LOG --log-prefix "fleetwall-drop: "' in out
        # The role's log_limit reaches the rule (it was the module's 5/min whatever the role was given).
        assert '-m limit --limit 2/sec' in out, out
        # The outbound block is not narrowed to the inbound ports, and rejects as documented: the host's own
        # client to a listed address on :9000 fails at once (it was DROP on --dports 22 only, and connected).
        assert rejected_at_once('h1', ATTACKER_EXTRA[0], 9000)
        rc, out, _err = host_sh('h1', 'iptables -S OUTPUT')
        assert '--dports' not in out and '-j REJECT --reject-with icmp-port-unreachable' in out, out
        run = play(fleetvars)
        assert run.rc == 0, run.out
        assert not fleet.connect('attacker', web, 8080, source=ATTACKER_EXTRA[0])
        assert 'LOG' not in host_sh('h1', 'iptables -S INPUT')[1]
        assert 'fleetwall' not in host_sh('h1', 'iptables -S OUTPUT')[1]
    finally:
        for process in (listener, outside):
            process.kill()
            process.wait()
