"""playbooks/blocklist.yml with the nftables backend on the lab fleet, proven with packets.

The lab hosts have nft, ipset and the nf_tables variant of iptables, so
backend_facts recommends nftables; nothing here names the backend. The tests
run in order and share the fleet.
"""
import json
import re
import time

import pytest

from .conftest import ADDR, HOSTS, ansible, host_sh, listen, reachable, rejected_at_once

import fleet

ATTACKER, ATTACKER_EXTRA, FRIEND = fleet.ATTACKER, fleet.ATTACKER_EXTRA, fleet.FRIEND


@pytest.fixture(scope='module')
def nftvars(lab, feeds, tmp_path_factory):
    (feeds.root / 'nft_attackers.txt').write_text(
        '# attackers\n%s\n%s\n198.18.0.208/29\n' % (ATTACKER[0], ATTACKER[1]))
    state = tmp_path_factory.mktemp('nft-shadow')
    env = {'tmp': tmp_path_factory.mktemp('nft-vars'), 'vars': {
        'shadow_copy_dir': str(state / 'copy'),
        'shadow_copy_feeds': [
            {'name': 'attackers', 'url': feeds.url + '/nft_attackers.txt'},
            {'name': 'drop', 'url': feeds.url + '/spamhaus/drop.txt'},
            {'name': 'drop6', 'url': feeds.url + '/spamhaus/drop_ipv6.txt'},
        ]}}
    # Whatever earlier tests left (ipsets, nft sets) goes first, so every block below is nft's doing.
    for backend, var in (('ipset', 'ipset_state'), ('nftables', 'nftables_state')):
        run = play(env, '-e', 'fleetwall_backend=%s' % backend, '-e', '%s=absent' % var)
        assert run.rc == 0, run.out[-3000:]
    return env


def play(env, *args):
    return ansible('ansible-playbook', ['playbooks/blocklist.yml'] + list(args),
                   extra_vars=env['vars'], tmp_path=env['tmp'])


def nft_sets(host):
    rc, out, err = host_sh(host, 'nft -t -j list sets inet')
    assert rc == 0, err
    return {s['set']['name'] for s in json.loads(out)['nftables'] if 'set' in s and s['set']['table'] == 'fleetwall'}


def nft_has(host, set_name, element):
    rc, _out, _err = host_sh(host, 'nft get element inet fleetwall %s "{ %s }"' % (set_name, element))
    return rc == 0


def test_01_clean_start_and_check_mode_changes_nothing(nftvars):
    for host in HOSTS:
        assert reachable('attacker', host, ATTACKER[0], 4)
        assert nft_sets(host) == set()
    run = play(nftvars, '--check', '--diff')
    assert run.rc == 0, run.out[-3000:]
    assert 'nft set inet fleetwall fleetwall_v4_hosts: 0 entries' in run.out
    # The rules a first run adds are + lines (they were - lines, as if removed).
    assert re.search(r'^\+# rules: fleetwall_v4_nets_input: ', run.out, re.M), run.out[-3000:]
    assert not re.search(r'^-# rules: ', run.out, re.M)
    for host in HOSTS:
        assert nft_sets(host) == set()
        assert reachable('attacker', host, ATTACKER[0], 4)


def test_02_push_blocks_with_nftables(nftvars):
    run = play(nftvars)
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        assert nft_sets(host) == {'fleetwall_v4_hosts', 'fleetwall_v4_nets', 'fleetwall_v6_hosts',
                                  'fleetwall_v6_nets'}
        assert not reachable('attacker', host, ATTACKER[0], 4)
        assert not reachable('attacker', host, ATTACKER_EXTRA[0], 4)     # through the /29, an interval
        assert not reachable('attacker', host, ATTACKER[1], 6)
        assert reachable('friend', host, FRIEND[0], 4)
        assert reachable('friend', host, FRIEND[1], 6)
        assert nft_has(host, 'fleetwall_v4_hosts', ATTACKER[0])
        assert nft_has(host, 'fleetwall_v4_nets', '198.18.0.208/29')
        # The drops were counted in the named counter.
        rc, out, _err = host_sh(host, 'nft list counter inet fleetwall fleetwall_v4_hosts_drops')
        assert rc == 0 and 'packets 0 ' not in out
        # No ipset was involved.
        rc, out, _err = host_sh(host, 'ipset list -n')
        assert 'fleetwall' not in out
    assert 'h1: changed  fleetwall_v4_hosts +' in run.out
    rc, out, _err = host_sh('h1', 'ls /var/lib/fleetwall/nft/ && ls /etc/systemd/system/multi-user.target.wants/')
    assert 'fleetwall_v4_hosts.nft' in out and 'fleetwall-nft-restore.service' in out


def explain_play(env, address):
    return ansible('ansible-playbook', ['playbooks/explain.yml', '-e', 'address=%s' % address],
                   extra_vars=env['vars'], tmp_path=env['tmp'])


def test_02b_explain_names_the_feed_the_generation_and_the_hosts_holding_it(nftvars):
    # Inside the listed /29: found by containment, and held by the interval set on every host.
    run = explain_play(nftvars, ATTACKER_EXTRA[0])
    assert run.rc == 0, run.out[-3000:]
    assert re.search(r'%s: blocked in generation \d+' % re.escape(ATTACKER_EXTRA[0]), run.out), run.out[-3000:]
    assert 'listed as 198.18.0.208/29 by attackers' in run.out
    assert 'held in force on 3 of 3 hosts: h1, h2, h3' in run.out
    assert 'h1: nftables set fleetwall_v4_nets holds 198.18.0.208/29' in run.out
    assert {h: run.changed(h) for h in HOSTS} == dict.fromkeys(HOSTS, 0)
    # The controller, the hosts' SSH client: no feed lists it, and every host's lockout protection keeps it.
    run = explain_play(nftvars, fleet.CONTROLLER[0])
    assert run.rc == 0, run.out[-3000:]
    assert '%s: not listed' % fleet.CONTROLLER[0] in run.out and 'held in force on 0 of 3 hosts' in run.out
    # The allowlist names it too (the roles pass it as protect).
    assert 'h2: lockout protection keeps it reachable: %s (SSH client, protect)' % fleet.CONTROLLER[0] in run.out, \
        run.out[-4000:]
    run = explain_play(nftvars, 'not-an-address')
    assert run.rc != 0 and "'not-an-address' is not an address or a network" in run.out, run.out[-3000:]


def timed_play(env, playbook, *args):
    started = time.monotonic()
    run = ansible('ansible-playbook', ['playbooks/%s' % playbook] + list(args), extra_vars=env['vars'],
                  tmp_path=env['tmp'])
    return run, time.monotonic() - started


def test_02c_an_unblock_reaches_every_host_from_the_cache_and_ends_at_its_expiry(nftvars, capsys):
    noop, noop_seconds = timed_play(nftvars, 'push.yml')
    assert noop.rc == 0 and {h: noop.changed(h) for h in HOSTS} == dict.fromkeys(HOSTS, 0), noop.out[-3000:]
    run, unblock_seconds = timed_play(nftvars, 'unblock.yml', '-e', 'address=%s' % ATTACKER_EXTRA[0], '-e', 'ttl=25s',
                                      '-e', 'reason="ticket 4711"')
    assert run.rc == 0, run.out[-3000:]
    expires = time.time() + 25
    assert '"event": "added"' in run.out and '"reason": "ticket 4711"' in run.out, run.out[:6000]
    assert '"by": "root"' in run.out, run.out[:6000]        # the user the build ran as
    assert 'not asked: an offline build answers every feed from its cached copy' in run.out
    for host in HOSTS:
        assert reachable('attacker', host, ATTACKER_EXTRA[0], 4), host
        assert not reachable('attacker', host, ATTACKER[0], 4), host        # the rest of the /29 and the list stay
    with capsys.disabled():
        print('\nunblock fleet-wide (3 hosts): %.1f s; a no-op push: %.1f s (%.2fx)'
              % (unblock_seconds, noop_seconds, unblock_seconds / noop_seconds))
    run = explain_play(nftvars, ATTACKER_EXTRA[0])
    assert re.search(r'unblocked \(%s\) by \S+ until .*: ticket 4711' % re.escape(ATTACKER_EXTRA[0]), run.out), \
        run.out[-3000:]
    # The first build after the expiry drops it: blocked again.
    time.sleep(max(0, expires - time.time()) + 1)
    run = play(nftvars)
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        assert not reachable('attacker', host, ATTACKER_EXTRA[0], 4), host


def test_02d_an_operators_block_holds_until_it_is_ended(nftvars):
    unlisted = fleet.ATTACKER_UNLISTED[0]       # no lab feed lists it
    assert reachable('attacker', 'h1', unlisted, 4)
    run = ansible('ansible-playbook', ['playbooks/block.yml', '-e', 'address=%s' % unlisted, '-e', 'ttl=1h',
                                       '-e', 'reason="scanning the API"'], extra_vars=nftvars['vars'],
                  tmp_path=nftvars['tmp'])
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        assert not reachable('attacker', host, unlisted, 4), host
    run = explain_play(nftvars, unlisted)
    assert re.search(r'listed as %s by operator' % re.escape(unlisted), run.out), run.out[-3000:]
    assert re.search(r'blocked by \S+ until .*: scanning the API', run.out), run.out[-3000:]
    run = ansible('ansible-playbook', ['playbooks/block.yml', '-e', 'address=%s' % unlisted, '-e', 'ttl=0',
                                       '-e', 'reason="false alarm"'], extra_vars=nftvars['vars'], tmp_path=nftvars['tmp'])
    assert run.rc == 0 and '"event": "ended"' in run.out, run.out[-3000:]
    for host in HOSTS:
        assert reachable('attacker', host, unlisted, 4), host


def test_02e_an_allow_source_keeps_a_cdn_edge_reachable_that_the_same_feed_lists(nftvars, feeds):
    """Cloudflare's published list (the real file, served as Cloudflare serves it, without a final newline) is an
    allow source; the attackers' feed lists the attacker and a /24 of Cloudflare's 104.16.0.0/13. A connection from
    inside that /24 (an address the lab gives the attacker's namespace) is served on every host, the attacker is
    dropped, and explain names the source."""
    edge = '104.16.0.77'
    listed = (feeds.root / 'nft_attackers.txt').read_text()
    (feeds.root / 'nft_attackers.txt').write_text(listed + '104.16.0.0/24\n')
    fleet.run(['ip', 'netns', 'exec', fleet.NS_PREFIX + 'attacker', 'ip', 'addr', 'add', edge + '/32', 'dev', 'eth0'])
    for host in HOSTS:
        assert host_sh(host, 'ip route replace %s/32 via %s' % (edge, ATTACKER[0]))[0] == 0
    allow = [{'name': 'cloudflare_v4', 'url': feeds.url + '/allow/cloudflare-ips-v4', 'format': 'plain'},
             {'name': 'cloudflare_v6', 'url': feeds.url + '/allow/cloudflare-ips-v6', 'format': 'plain'}]
    try:
        run = ansible('ansible-playbook', ['playbooks/blocklist.yml'],
                      extra_vars=dict(nftvars['vars'], shadow_copy_allow_feeds=allow), tmp_path=nftvars['tmp'])
        assert run.rc == 0, run.out[-3000:]
        assert 'allow source cloudflare_v4: fresh; 15 network(s), kept 256 listed address(es) in 1 network(s) reachable' \
            in run.out, run.out[-3000:]
        for host in HOSTS:
            assert reachable('attacker', host, edge, 4), host
            assert not reachable('attacker', host, ATTACKER[0], 4), host
            assert reachable('friend', host, FRIEND[0], 4), host
        answer = explain_play(nftvars, edge)
        assert 'kept reachable by the allow source cloudflare_v4: 104.16.0.0/13' in answer.out, answer.out[-3000:]
        assert '%s: kept out in generation' % edge in answer.out
    finally:
        (feeds.root / 'nft_attackers.txt').write_text(listed)
        fleet.run(['ip', 'netns', 'exec', fleet.NS_PREFIX + 'attacker', 'ip', 'addr', 'del', edge + '/32', 'dev', 'eth0'],
                  check=False)
        for host in HOSTS:
            host_sh(host, 'ip route del %s/32' % edge)
    # Without the source: a generation of its own (its published ranges are gone), and nothing to change on the
    # hosts, whose sets never held the Cloudflare /24.
    run = play(nftvars)
    assert run.rc == 0 and {h: run.changed(h) for h in HOSTS} == dict.fromkeys(HOSTS, 0), run.out[-3000:]


# A registry's delegated statistics, in the lab's range: the friend in NO, the attacker's unlisted address and the
# two after it in XA (a count of 3, not a power of two), nobody else.
LAB_DELEGATED = """2|lab|20261206|4|19700101|20261206|+0000
lab|*|ipv4|*|3|summary
lab|*|ipv6|*|1|summary
lab|NO|ipv4|{friend}|1|20261206|assigned|lab-no
lab|XA|ipv4|{unlisted}|3|20261206|assigned|lab-xa
lab|NO|ipv6|{friend6}|128|20261206|assigned|lab-no
lab|ZZ|ipv4|198.18.1.0|256|20261206|available|
"""


def test_02f_asn_drop_countries_scoped_to_ports_and_an_admin_port_admitting_one_country(nftvars, feeds):
    """Spamhaus ASN-DROP (the real list) joined with an ip2asn table that puts an address the lab gives the attacker
    in AS932, one of the list's: dropped on every port. Two country feeds from one registry file: XA is dropped on
    the admin panel's port only (8443), and port 22 admits NO alone. Neither the friend nor the controller is in the
    allowlist here: the friend reaches port 22 as a source in NO, and the controller keeps managing the hosts
    because lockout protection admits the SSH client of the session. Without lockout protection the admit-only set
    is refused, and the hosts keep what they had. The copy without the country feeds takes the scoped sets off every
    host."""
    unlisted = fleet.ATTACKER_UNLISTED[0]
    criminal = '198.18.0.230'
    (feeds.root / 'lab_ip2asn.tsv').write_text('198.18.0.0\t198.18.0.229\t64496\tZZ\tLAB-EXAMPLE\n'
                                               '%s\t%s\t932\tUS\tXNNET\n' % (criminal, criminal))
    (feeds.root / 'lab_delegated.txt').write_text(LAB_DELEGATED.format(friend=FRIEND[0], friend6=FRIEND[1],
                                                                       unlisted=unlisted))
    countries = dict(nftvars['vars'], shadow_copy_allowlist=['198.18.0.10-198.18.0.99'])
    countries['shadow_copy_feeds'] = nftvars['vars']['shadow_copy_feeds'] + [
        {'name': 'asn_drop_networks', 'url': feeds.url + '/lab_ip2asn.tsv', 'format': 'ip2asn',
         'asns_from': {'url': feeds.url + '/spamhaus/asn_drop.json'}},
        {'name': 'panel_off_xa', 'url': feeds.url + '/lab_delegated.txt', 'format': 'rir_delegated',
         'countries': ['XA'], 'ports': [8443]},
        {'name': 'ssh_from_no', 'url': feeds.url + '/lab_delegated.txt', 'format': 'rir_delegated',
         'countries': ['no'], 'tier': 'admit_only', 'ports': [22]},
    ]
    listeners = [listen('fw-h1', ADDR['h1'][0], port) for port in (8443, 8080)]
    fleet.run(['ip', 'netns', 'exec', fleet.NS_PREFIX + 'attacker', 'ip', 'addr', 'add', criminal + '/24', 'dev',
               'eth0'])
    try:
        run = ansible('ansible-playbook', ['playbooks/blocklist.yml', '-v'], extra_vars=countries,
                      tmp_path=nftvars['tmp'])
        assert run.rc == 0, run.out[-3000:]
        for host in HOSTS:
            assert {'fleetwall_scope_block_tcp_8443_v4', 'fleetwall_scope_admit_tcp_22_v4',
                    'fleetwall_scope_admit_tcp_22_v6'} <= nft_sets(host), host
            # The SSH client of the managing session (the controller), admitted by lockout protection.
            assert nft_has(host, 'fleetwall_scope_admit_tcp_22_v4', fleet.CONTROLLER[0]), host
            assert reachable('friend', host, FRIEND[0], 4), host
            assert reachable('friend', host, FRIEND[1], 6), host
            assert not reachable('attacker', host, unlisted, 4), host
            # Port 22 refuses IPv6 sources outside NO too (the attacker's own IPv6 address is in no feed's scope).
            assert not reachable('attacker', host, fleet.ATTACKER_UNLISTED[1], 6), host
        assert '%s (SSH client)' % fleet.CONTROLLER[0] in run.out, run.out[-3000:]
        address = ADDR['h1'][0]
        # XA: off the admin panel, still served on the site's port.
        assert not fleet.connect('attacker', address, 8443, source=unlisted)
        assert fleet.connect('attacker', address, 8080, source=unlisted)
        assert fleet.connect('friend', address, 8443, source=FRIEND[0])
        # AS932's address: off every port.
        assert not fleet.connect('attacker', address, 8080, source=criminal)
        assert nft_has('h1', 'fleetwall_v4_hosts', criminal)

        refused = ansible('ansible-playbook', ['playbooks/blocklist.yml', '-l', 'h2'],
                          extra_vars=dict(countries, nftables_lockout_protection=False), tmp_path=nftvars['tmp'])
        assert refused.rc != 0
        assert 'would not hold %s, the client of the SSH session' % fleet.CONTROLLER[0] in refused.out, \
            refused.out[-3000:]
        assert nft_has('h2', 'fleetwall_scope_admit_tcp_22_v4', fleet.CONTROLLER[0])
        assert reachable('friend', 'h2', FRIEND[0], 4)
    finally:
        for listener in listeners:
            listener.kill()
        fleet.run(['ip', 'netns', 'exec', fleet.NS_PREFIX + 'attacker', 'ip', 'addr', 'del', criminal + '/24', 'dev',
                   'eth0'], check=False)
    run = play(nftvars)
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        assert not any(name.startswith('fleetwall_scope_') for name in nft_sets(host)), host
        assert host_sh(host, 'ls /var/lib/fleetwall/nft/ | grep -c scope')[1].strip() == '0', host
        assert reachable('attacker', host, unlisted, 4), host


def test_03_second_run_changes_nothing(nftvars):
    run = play(nftvars)
    assert run.rc == 0, run.out[-3000:]
    assert {h: run.changed(h) for h in list(HOSTS) + ['localhost']} == dict.fromkeys(list(HOSTS) + ['localhost'], 0)


def test_04_drift_is_found_by_verify_and_repaired(nftvars):
    host_sh('h2', 'nft delete element inet fleetwall fleetwall_v4_hosts "{ %s }"' % ATTACKER[0])
    assert reachable('attacker', 'h2', ATTACKER[0], 4)
    run = play(nftvars, '-e', 'nftables_verify=true')
    assert run.rc == 0, run.out[-3000:]
    assert run.changed('h2') >= 1 and run.changed('h1') == 0
    assert 'h2: changed  fleetwall_v4_hosts +1 -0' in run.out
    assert not reachable('attacker', 'h2', ATTACKER[0], 4)


def test_05_boot_script_restores_everything(nftvars):
    rc, _out, err = host_sh('h3', 'nft delete table inet fleetwall && for f in /var/lib/fleetwall/nft/*.nft; '
                                  'do nft -f "$f" || exit 1; done')
    assert rc == 0, err
    assert not reachable('attacker', 'h3', ATTACKER[0], 4)
    assert not reachable('attacker', 'h3', ATTACKER_EXTRA[0], 4)
    assert reachable('friend', 'h3', FRIEND[0], 4)


def test_05b_outbound_block_rejects_on_every_port_and_log_limit_reaches_the_rule(nftvars):
    """The outbound block was the inbound rule again: drop, on the inbound ports only, so the host still reached
    a listed address on any other port, and a local client that did match waited for its timeout."""
    outside = listen('fw-attacker', ATTACKER_EXTRA[0], 9000)
    try:
        run = play(nftvars, '-e', '{"nftables_ports": [22], "nftables_block_output": true, "nftables_log": true, '
                                  '"nftables_log_limit": "2/second"}')
        assert run.rc == 0, run.out[-3000:]
        assert rejected_at_once('h1', ATTACKER_EXTRA[0], 9000)
        rc, out, _err = host_sh('h1', 'nft list chain inet fleetwall fleetwall_v4_nets_output')
        assert rc == 0 and 'dport' not in out and 'reject' in out, out
        rc, out, _err = host_sh('h1', 'nft list chain inet fleetwall fleetwall_v4_nets_input')
        assert 'tcp dport 22' in out and 'limit rate 2/second' in out, out
        assert not reachable('attacker', 'h1', ATTACKER_EXTRA[0], 4)
    finally:
        outside.kill()
        outside.wait()


def test_05c_one_policy_on_nftables_then_a_switch_to_ipset(nftvars):
    """The example inventory's bastion policy was written in ipset's names, which a host on nftables ignored
    silently (it dropped every port); pinned to ipset afterwards, the old nft table stayed and kept dropping every
    port ahead of the new REJECT rule. Now the policy is fleetwall_*, read by every backend, in either case; a
    variable of another backend is named with a warning; and a switch removes the old backend once the new one
    blocks."""
    web = fleet.host_addresses(1)[0]
    listener = listen('fw-h1', web, 8080)
    policy = '{"fleetwall_ports": [22], "fleetwall_target": "REJECT", "ipset_log": true}'
    try:
        run = play(nftvars, '-e', policy)
        assert run.rc == 0, run.out[-3000:]
        assert 'h1: ipset_log does nothing, because h1 uses the nftables backend' in run.out, run.out[-3000:]
        assert rejected_at_once('attacker', web, 22, source=ATTACKER_EXTRA[0])    # :22 rejected, at once
        assert fleet.connect('attacker', web, 8080, source=ATTACKER_EXTRA[0])    # another port served
        rc, out, _err = host_sh('h1', 'nft list chain inet fleetwall fleetwall_v4_nets_input')
        assert 'tcp dport 22' in out and 'reject' in out, out

        run = play(nftvars, '-e', policy, '-e', 'fleetwall_backend=ipset')
        assert run.rc == 0, run.out[-3000:]
        assert "Take back what the host's previous backend installed" in run.out
        for host in HOSTS:
            rc, out, _err = host_sh(host, 'nft list tables')
            assert 'inet fleetwall' not in out, (host, out)
        rc, out, _err = host_sh('h1', 'iptables -S INPUT')
        assert '-m multiport --dports 22' in out and '-j REJECT' in out, out
        assert rejected_at_once('attacker', web, 22, source=ATTACKER_EXTRA[0])
        assert fleet.connect('attacker', web, 8080, source=ATTACKER_EXTRA[0])
        assert not reachable('attacker', 'h2', ATTACKER_EXTRA[0], 4)
        # Switched: the next run has nothing of nftables left to take back.
        run = play(nftvars, '-e', policy, '-e', 'fleetwall_backend=ipset')
        assert run.rc == 0, run.out[-3000:]
        assert {h: run.changed(h) for h in HOSTS} == dict.fromkeys(HOSTS, 0), run.out[-3000:]
    finally:
        listener.kill()
        listener.wait()
    # And back to what backend_facts recommends (nftables), which takes the ipset sets and rules back.
    run = play(nftvars)
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        assert 'fleetwall' not in host_sh(host, 'iptables -S INPUT')[1]
        assert host_sh(host, 'ipset list -n')[1].split() == []
        assert not reachable('attacker', host, ATTACKER[0], 4)


def test_05d_limit_works_with_any_host_pattern(nftvars):
    """``--limit h2`` left the controller's play without a host, and the push failed with "'HostVarsVars' object
    has no attribute 'shadow_copy_to_push'"; it worked only with ``--limit h2,localhost``."""
    for playbook in ('playbooks/blocklist.yml', 'playbooks/push.yml'):
        host_sh('h2', 'nft flush set inet fleetwall fleetwall_v4_hosts')      # something for h2 to repair
        assert reachable('attacker', 'h2', ATTACKER[0], 4)
        run = ansible('ansible-playbook', [playbook, '--limit', 'h2', '-e', 'nftables_verify=true'],
                      extra_vars=nftvars['vars'], tmp_path=nftvars['tmp'])
        assert run.rc == 0, (playbook, run.out[-3000:])
        assert re.search(r'^h2 +: ok=', run.out, re.M) and not re.search(r'^h1 +: ', run.out, re.M), run.out[-1500:]
        assert not reachable('attacker', 'h2', ATTACKER[0], 4)


def test_06_absent_removes_our_table_content_only(nftvars):
    host_sh('h1', 'nft add table inet theirs && nft add chain inet theirs c "{ type filter hook input priority 0; }"')
    run = play(nftvars, '--diff', '-e', 'nftables_state=absent')
    assert run.rc == 0, run.out[-3000:]
    assert re.search(r'nft set inet fleetwall fleetwall_v4_nets: [1-9][0-9]* entries', run.out), run.out[-3000:]
    for host in HOSTS:
        assert nft_sets(host) == set()
        assert reachable('attacker', host, ATTACKER[0], 4)
    rc, out, _err = host_sh('h1', 'nft list tables')
    assert 'theirs' in out
