"""fail2ban on the lab fleet: one host's ban protects every host, proven with real SSH logins and packets.

playbooks/blocklist.yml with fleetwall_fail2ban (the role configures fail2ban on every host) and
shadow_copy_harvest (the next run merges the bans into the shadow copy). The attacker address .220 is on
no feed: only fail2ban can get it blocked. The report action posts to the emulated abuse API, which runs
on h1's own loopback. The tests run in order.
"""
import ast
import json
import os
import subprocess
import time

import pytest

from .conftest import HOSTS, ADDR, ansible, host_sh, reachable

import feed_server
import fleet

ATTACKER, UNLISTED, FRIEND = fleet.ATTACKER, fleet.ATTACKER_UNLISTED, fleet.FRIEND
KEY = feed_server.LAB_KEYS['abuseipdb']
REPORT_PORT = 18081
# Long enough that the bans are in force until the tests lift them, and that only an unban, never the expiry,
# can end a fleet-wide block here (docs/fail2ban.md; the expiry is tested in test_fleet_local.py).
BANTIME = 600
EXPIRY = 3600


def failed_logins(ns, source, host, count):
    """``count`` SSH logins as users that do not exist, from ``source``; returns how many reached sshd."""
    reached = 0
    for attempt in range(count):
        proc = subprocess.run(
            ['ip', 'netns', 'exec', fleet.NS_PREFIX + ns, 'ssh', '-F', '/dev/null', '-b', source,
             '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
             '-o', 'ConnectTimeout=2', '-o', 'IdentitiesOnly=yes', '-i', '/dev/null',
             'intruder%d@%s' % (attempt, ADDR[host][0]), 'true'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=15, check=False)
        reached += 'Permission denied' in proc.stderr
    return reached


def banned(host, jail='sshd'):
    """What the jail has banned now (fail2ban-client prints one Python literal)."""
    rc, out, err = host_sh(host, 'fail2ban-client banned 2>/dev/null')
    assert rc == 0, err
    return {address for item in ast.literal_eval(out.strip() or '[]') for address in item.get(jail, [])}


def wait_for(predicate, timeout, step=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture(scope='module')
def f2b(lab, feeds, tmp_path_factory):
    (feeds.root / 'f2b_attackers.txt').write_text('%s\n%s\n' % (ATTACKER[0], ATTACKER[1]))
    state = tmp_path_factory.mktemp('f2b-shadow')
    reports = tmp_path_factory.mktemp('f2b-reports') / 'reports.jsonl'
    play_vars = {
        'shadow_copy_dir': str(state / 'copy'),
        'shadow_copy_feeds': [{'name': 'attackers', 'url': feeds.url + '/f2b_attackers.txt'}],
        'fleetwall_fail2ban': True,
        'fail2ban_sshd_maxretry': 3,
        'fail2ban_sshd_bantime': BANTIME,
        'fail2ban_recidive': True,
        'fail2ban_recidive_bantime': BANTIME,
        'fail2ban_report': True,
        'fail2ban_report_url': 'http://127.0.0.1:%d/abuseipdb/api/v2/report' % REPORT_PORT,
        'fail2ban_report_api_key': KEY,
        'shadow_copy_harvest': True,
        'shadow_copy_harvest_expiry': EXPIRY,
    }
    env = {'tmp': tmp_path_factory.mktemp('f2b-vars'), 'copy': str(state / 'copy'), 'reports': str(reports),
           'vars': play_vars}
    # The emulated abuse API on h1's loopback: fail2ban on h1 reaches it, nothing leaves the machine.
    api = subprocess.Popen(['ip', 'netns', 'exec', fleet.NS_PREFIX + 'h1', 'python3',
                            os.path.join(fleet.ROOT, 'lab', 'feed_server.py'), str(feeds.root), '--port',
                            str(REPORT_PORT), '--reports', str(reports), '--lifetime', '900'],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        probe = 'python3 -c "import socket; socket.create_connection((\'127.0.0.1\', %d), 1)"' % REPORT_PORT
        assert wait_for(lambda: host_sh('h1', probe)[0] == 0, 15)
        yield env
    finally:
        api.kill()
        api.wait(timeout=10)
        for host in HOSTS:
            # fail2ban removes its sets and rules when it stops; later tests expect hosts without it.
            host_sh(host, 'fail2ban-client stop >/dev/null 2>&1; rm -f /etc/fail2ban/jail.d/fleetwall.local '
                          '/var/lib/fail2ban/fail2ban.sqlite3')
        run = play(dict(env, vars=dict(env['vars'], nftables_state='absent', shadow_copy_harvest=False,
                                       fleetwall_fail2ban=False)))
        assert run.rc == 0, run.out[-3000:]


def play(env, *args, playbook='playbooks/blocklist.yml'):
    return ansible('ansible-playbook', [playbook] + list(args), extra_vars=env['vars'], tmp_path=env['tmp'])


def fleet_local(env):
    with open(os.path.join(env['copy'], 'current', 'fleet_local.json')) as handle:
        return {entry['address']: entry for entry in json.load(handle)}


def test_fail2ban_is_configured_on_every_host(f2b):
    run = play(f2b)
    assert run.rc == 0, run.out[-3000:]
    assert KEY not in run.out
    for host in HOSTS:
        rc, out, err = host_sh(host, 'fail2ban-client status')
        assert rc == 0 and 'recidive, sshd' in out, err
        rc, out, _err = host_sh(host, 'fail2ban-client get sshd actions 2>/dev/null; '
                                      'fail2ban-client get sshd ignoreip 2>/dev/null; '
                                      'stat -c %a /etc/fleetwall/abuseipdb.key')
        # One nftables set per jail (the lab hosts' backend is nftables), and the report action.
        assert 'nftables, fleetwall-report' in out
        # ignoreip is the allowlist: the controller, the hosts (a range, as CIDRs) and the friend.
        ignored = {line.lstrip('|`- ').strip() for line in out.splitlines()}
        assert {'198.18.0.1', '198.18.0.10/31', '198.18.0.64/27', FRIEND[0], FRIEND[1]} <= ignored
        assert out.split()[-1] == '600'
        assert reachable('attacker', host, UNLISTED[0])
        assert not reachable('attacker', host, ATTACKER[0])          # on a feed from the start
    again = play(f2b)
    assert again.rc == 0 and all(again.changed(host) == 0 for host in HOSTS), again.out[-3000:]


def test_the_friend_is_never_banned(f2b):
    assert failed_logins('friend', FRIEND[0], 'h1', 8) == 8
    assert wait_for(lambda: host_sh('h1', 'grep -c "Ignore %s by ip" /var/log/fail2ban.log' % FRIEND[0])[1]
                    .strip() not in ('', '0'), 15)
    assert FRIEND[0] not in banned('h1') and FRIEND[0] not in banned('h1', 'recidive')
    assert all(reachable('friend', host, FRIEND[0]) for host in HOSTS)


def test_one_hosts_ban_blocks_the_attacker_fleet_wide(f2b):
    assert failed_logins('attacker', UNLISTED[0], 'h1', 4) >= 3
    assert wait_for(lambda: UNLISTED[0] in banned('h1'), 15)
    assert wait_for(lambda: UNLISTED[0] in banned('h1', 'recidive'), 15)
    # fail2ban lists a ban as soon as its ticket exists; the jail's action thread adds it to the set a moment
    # later (a CI run read the set empty in between).
    assert wait_for(lambda: UNLISTED[0] in host_sh('h1', 'nft list set inet f2b-table addr-set-recidive')[1], 15)
    assert not reachable('attacker', 'h1', UNLISTED[0])
    assert reachable('attacker', 'h2', UNLISTED[0]) and reachable('attacker', 'h3', UNLISTED[0])

    # The ban was reported once (the recidive ban of the same address is not), with the log lines.
    assert wait_for(lambda: os.path.exists(f2b['reports']), 15)
    with open(f2b['reports']) as handle:
        reports = [json.loads(line) for line in handle]
    assert [(r['ip'], r['categories']) for r in reports] == [(UNLISTED[0], '18,22')]
    assert 'Invalid user intruder' in reports[0]['comment'] and reports[0]['comment_length'] <= 1024

    run = play(f2b)
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        assert not reachable('attacker', host, UNLISTED[0]), host
        assert reachable('friend', host, FRIEND[0]), host
    entry = fleet_local(f2b)[UNLISTED[0]]
    assert {(s['host'], s['jail']) for s in entry['hosts']} == {('h1', 'sshd'), ('h1', 'recidive')}
    with open(os.path.join(f2b['copy'], 'current', 'manifest.json')) as handle:
        manifest = json.load(handle)
    assert manifest['fleet_local']['accepted'] == 1 and manifest['fleet_local']['hosts_harvested'] == 3


def test_a_ban_of_a_feed_listed_address_is_harvested_too(f2b):
    # A ban of an address a feed lists too (made by hand: the feed keeps it from reaching sshd).
    rc, _out, err = host_sh('h2', 'fail2ban-client set sshd banip %s' % ATTACKER[0])
    assert rc == 0, err
    run = play(f2b)
    assert run.rc == 0, run.out[-3000:]
    assert {s['host'] for s in fleet_local(f2b)[ATTACKER[0]]['hosts']} == {'h2'}


def test_an_unban_on_the_banning_host_lifts_the_block_fleet_wide(f2b):
    # h1's ban was a false positive: the operator lifts it there, in both jails, as fail2ban's documentation says;
    # h2's hand-made ban goes too. No sighting is near its expiry: only the unbans can end the fleet-wide block.
    rc, _out, err = host_sh('h1', 'fail2ban-client set sshd unbanip {0} && fail2ban-client set recidive unbanip {0}'
                            .format(UNLISTED[0]))
    assert rc == 0, err
    host_sh('h2', 'fail2ban-client unban --all')
    assert not any(banned(h, jail) for h in ('h1', 'h2') for jail in ('sshd', 'recidive'))
    run = play(f2b)
    assert run.rc == 0, run.out[-3000:]
    assert fleet_local(f2b) == {}
    for host in HOSTS:
        assert reachable('attacker', host, UNLISTED[0]), host
        assert not reachable('attacker', host, ATTACKER[0]), host        # the feed still lists it


def test_the_ban_action_follows_an_ipset_backend(f2b):
    """On an ipset host the bans go to an ipset behind one iptables rule, not a rule per ban."""
    # Overrides go into the extra-vars file: the helper passes it last, so it would win over -e.
    env = dict(f2b, vars=dict(f2b['vars'], fail2ban_banaction='ipset', fail2ban_report=False))
    run = play(env, '-l', 'h3', playbook='playbooks/fail2ban.yml')
    assert run.rc == 0, run.out[-3000:]
    rc, out, err = host_sh('h3', 'fail2ban-client get sshd actions 2>/dev/null; '
                                 'for a in 198.51.100.1 198.51.100.2 198.51.100.3; do '
                                 'fail2ban-client set sshd banip $a >/dev/null 2>&1; done; '
                                 'ipset list f2b-sshd; iptables -S INPUT')
    assert rc == 0, err
    assert 'iptables-ipset' in out and 'fleetwall-report' not in out
    assert all(a in out for a in ('198.51.100.1', '198.51.100.2', '198.51.100.3'))
    assert len([line for line in out.splitlines() if line.startswith('-A INPUT') and 'f2b-sshd' in line]) == 1
