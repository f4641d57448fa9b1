"""playbooks/blocklist.yml with the nginx web tier and the UFW backend on the lab fleet, proven with
real requests and connections from the attacker and friend namespaces. The tests run in order."""
import json
import os
import subprocess
import sys

import pytest

from .conftest import ADDR, HOSTS, ansible, host_sh, reachable

import fleet

ATTACKER, ATTACKER_EXTRA, FRIEND = fleet.ATTACKER, fleet.ATTACKER_EXTRA, fleet.FRIEND
SITE = '''server {
    listen 8080;
    listen [::]:8080;
    # The glob lets nginx start before the role has installed the snippet.
    include /etc/nginx/snippets/fleetwall-enforce*.conf;
    location / { return 200 "hello\\n"; }
}
'''


def http_get(ns, host, source, headers=None, version=4):
    """Status of GET / on the host's port 8080 from ``source`` in namespace ``ns``; 'closed' for nginx's 444."""
    addr = ADDR[host][0 if version == 4 else 1]
    code = ('import http.client,sys\n'
            'c=http.client.HTTPConnection(%r,8080,timeout=3,source_address=(%r,0))\n'
            'try:\n c.request("GET","/",headers=%r); print(c.getresponse().status)\n'
            'except (http.client.RemoteDisconnected,ConnectionResetError): print("closed")\n'
            'except OSError as e: print("error",e)\n' % (addr, source, headers or {}))
    proc = subprocess.run(['ip', 'netns', 'exec', fleet.NS_PREFIX + ns, sys.executable, '-c', code],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=20, check=False)
    return proc.stdout.strip()


@pytest.fixture(scope='module')
def webvars(lab, feeds, tmp_path_factory):
    (feeds.root / 'web_attackers.txt').write_text('%s\n%s\n' % (ATTACKER[0], ATTACKER[1]))
    # "Challenge country XB on the web tier": a registry's delegated statistics put the attacker's second address in
    # XB (and the friend in NO, which nobody selects); the challenge tier is the country.
    (feeds.root / 'web_suspects.txt').write_text(
        '2|lab|20261206|2|19700101|20261206|+0000\nlab|*|ipv4|*|2|summary\n'
        'lab|XB|ipv4|%s|1|20261206|assigned|lab-xb\nlab|NO|ipv4|%s|1|20261206|assigned|lab-no\n'
        % (ATTACKER_EXTRA[0], FRIEND[0]))
    state = tmp_path_factory.mktemp('web-shadow')
    env = {'tmp': tmp_path_factory.mktemp('web-vars'), 'vars': {
        'shadow_copy_dir': str(state / 'copy'),
        'fleetwall_report_dir': str(tmp_path_factory.mktemp('web-reports')),
        'shadow_copy_feeds': [
            {'name': 'attackers', 'url': feeds.url + '/web_attackers.txt'},
            {'name': 'suspects', 'url': feeds.url + '/web_suspects.txt', 'format': 'rir_delegated',
             'countries': ['XB'], 'tier': 'challenge'},
            {'name': 'drop', 'url': feeds.url + '/spamhaus/drop.txt'},
        ]}}
    for backend, var in (('ipset', 'ipset_state'), ('nftables', 'nftables_state')):
        run = play(env, '-e', 'fleetwall_backend=%s' % backend, '-e', '%s=absent' % var)
        assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        proc = subprocess.run(['nsenter', '-t', str(fleet.load_state()['pids'][host]), '-n', '-m', '-u', '--',
                               'sh', '-c', 'cat > /etc/nginx/sites-enabled/lab.conf && nginx'],
                              input=SITE, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, check=False)
        assert proc.returncode == 0, proc.stderr
        assert http_get('attacker', host, ATTACKER[0]) == '200'
    # What the tiers' request logs already hold (an earlier test may have run the web tier): test_03 counts from here.
    env['logged'] = dict((host, [log_lines(host, tier) for tier in ('block', 'challenge')]) for host in HOSTS)
    yield env
    # Later tests expect hosts without UFW or nginx in the way.
    for host in HOSTS:
        host_sh(host, 'ufw --force disable; nginx -s stop; rm -f /etc/nginx/sites-enabled/lab.conf')


def log_lines(host, tier):
    rc, out, _err = host_sh(host, 'cat /var/log/nginx/fleetwall-%s.log 2>/dev/null | wc -l' % tier)
    return int(out.strip()) if rc == 0 and out.strip() else 0


def play(env, *args):
    return ansible('ansible-playbook', ['playbooks/blocklist.yml'] + list(args),
                   extra_vars=env['vars'], tmp_path=env['tmp'])


PROM = '/var/lib/prometheus/node-exporter/fleetwall.prom'
WEB = ('-e', 'fleetwall_backend=none', '-e', 'fleetwall_web_backend=nginx',
       '-e', '{"nginx_real_ip_from": ["%s"]}' % FRIEND[0])


def test_01_nginx_check_mode_changes_nothing(webvars):
    run = play(webvars, '--check', '--diff', *WEB)
    assert run.rc == 0, run.out[-3000:]
    assert 'nginx geo /etc/nginx/fleetwall/blocklist.geo: 0 entries' in run.out
    for host in HOSTS:
        rc, _out, _err = host_sh(host, 'test -e /etc/nginx/fleetwall/blocklist.geo')
        assert rc != 0
        assert http_get('attacker', host, ATTACKER[0]) == '200'


def test_02_nginx_blocks_challenges_and_serves_by_tier(webvars):
    run = play(webvars, *WEB)
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        assert http_get('attacker', host, ATTACKER[0]) == 'closed'             # block tier: 444
        assert http_get('attacker', host, ATTACKER[1], version=6) == 'closed'
        assert http_get('attacker', host, ATTACKER_EXTRA[0]) == '429'          # challenge tier
        assert http_get('friend', host, FRIEND[0]) == '200'
        # The friend is the trusted proxy: the client address it forwards is the one judged.
        assert http_get('friend', host, FRIEND[0], {'X-Forwarded-For': ATTACKER[0]}) == 'closed'
        assert http_get('friend', host, FRIEND[0], {'X-Forwarded-For': ATTACKER_EXTRA[0]}) == '429'
        # Anyone else's header is ignored: the attacker cannot pose as the friend.
        assert http_get('attacker', host, ATTACKER[0], {'X-Forwarded-For': FRIEND[0]}) == 'closed'
    rc, out, _err = host_sh('h1', 'cat /etc/nginx/fleetwall/blocklist.geo')
    assert '%s-%s block;' % (ATTACKER[0], ATTACKER[0]) in out
    assert '%s-%s challenge;' % (ATTACKER_EXTRA[0], ATTACKER_EXTRA[0]) in out
    rc, out, _err = host_sh('h1', 'cat /etc/nginx/fleetwall/blocklist-v6.geo')
    assert '%s block;' % ATTACKER[1] in out                                    # IPv6 in the CIDR block
    assert 'h1: changed' in run.out and 'nginx geo +' in run.out


def test_03_nginx_second_run_changes_nothing_and_counts_the_requests_each_tier_answered(webvars):
    run = play(webvars, *WEB)
    assert run.rc == 0, run.out[-3000:]
    assert {h: run.changed(h) for h in HOSTS} == dict.fromkeys(HOSTS, 0)
    # test_02 sent each host 4 requests the block tier refused and 2 the challenge tier answered; nginx wrote a line
    # per request to the tier's log, and the metrics and the fleet report count every line of the logs.
    with open(os.path.join(webvars['vars']['fleetwall_report_dir'], 'fleet_report.json')) as handle:
        rows = dict((row['host'], row) for row in json.load(handle)['hosts'])
    with open(os.path.join(webvars['vars']['fleetwall_report_dir'], 'fleet_report.html')) as handle:
        page = handle.read()
    for host in HOSTS:
        block, challenge = log_lines(host, 'block'), log_lines(host, 'challenge')
        assert (block - webvars['logged'][host][0], challenge - webvars['logged'][host][1]) == (4, 2), host
        rc, text, err = host_sh(host, 'cat %s' % PROM)
        assert rc == 0, err
        assert 'fleetwall_web_requests_total{backend="nginx",set="block"} %d\n' % block in text
        assert 'fleetwall_web_requests_total{backend="nginx",set="challenge"} %d\n' % challenge in text
        assert 'fleetwall_entries{backend="nginx",set="block",tier="web"} ' in text
        assert 'fleetwall_entries{backend="nginx",set="challenge",tier="web"} 1\n' in text
        assert rows[host]['web_requests'] == {'block': block, 'challenge': challenge}
        assert '<td class="text">block %d, challenge %d</td>' % (block, challenge) in page
        rc, log, err = host_sh(host, 'tail -n 2 /var/log/nginx/fleetwall-challenge.log')
        assert log.count(' %s challenge ' % ATTACKER_EXTRA[0]) == 2 and ' 429\n' in log, log


def test_04_broken_nginx_config_keeps_the_old_geo_file(webvars, feeds):
    host_sh('h2', 'printf "server { listen 8081; bogus_directive on; }\\n" > /etc/nginx/sites-enabled/broken.conf')
    rc, before, _err = host_sh('h2', 'cat /etc/nginx/fleetwall/blocklist.geo')
    listed = (feeds.root / 'web_attackers.txt').read_text()
    (feeds.root / 'web_attackers.txt').write_text(listed + '203.0.113.77\n')        # a change to push
    run = play(webvars, *WEB)
    assert run.rc != 0
    assert 'nginx -t rejected the new /etc/nginx/fleetwall/blocklist.geo' in run.out
    assert 'bogus_directive' in run.out
    rc, after, _err = host_sh('h2', 'cat /etc/nginx/fleetwall/blocklist.geo')
    assert after == before
    assert http_get('attacker', 'h2', ATTACKER[0]) == 'closed'                 # still protected
    host_sh('h2', 'rm /etc/nginx/sites-enabled/broken.conf')
    run = play(webvars, *WEB)
    assert run.rc == 0, run.out[-3000:]
    rc, after, _err = host_sh('h2', 'cat /etc/nginx/fleetwall/blocklist.geo')
    assert '203.0.113.77-203.0.113.77 block;' in after


def test_07_an_old_layout_host_is_upgraded_in_one_run(webvars):
    """Before 0.5.0: one geo block without ranges and every entry as CIDR in blocklist.geo. The run rewrites the
    file, the IPv6 file and the http snippet together, and nginx blocks over IPv4 and IPv6 after it."""
    old_snippet = ('geo $fleetwall_tier {\n    default "";\n    include /etc/nginx/fleetwall/blocklist.geo;\n}\n')
    old_geo = ('# Managed by fleetwall.blocklist (nginx_geo_file); every run rewrites this file.\n'
               '%s block;\n%s challenge;\n%s block;\n' % (ATTACKER[0], ATTACKER_EXTRA[0], ATTACKER[1]))
    # And its enforcement snippet, which answered the block tier in the server block and logged no requests.
    old_enforce = ('if ($fleetwall_tier = "block") {\n    return 444;\n}\n'
                   'if ($fleetwall_tier = "challenge") {\n    rewrite ^ /.fleetwall/challenge last;\n}\n'
                   'location = /.fleetwall/challenge {\n    internal;\n    return 429;\n}\n')
    rc, _out, err = host_sh('h1', "printf '%%s' '%s' > /etc/nginx/conf.d/fleetwall.conf && printf '%%s' '%s' > "
                            "/etc/nginx/fleetwall/blocklist.geo && rm /etc/nginx/fleetwall/blocklist-v6.geo && "
                            "printf '%%s' '%s' > /etc/nginx/snippets/fleetwall-enforce.conf && "
                            "nginx -t -q && nginx -s reload" % (old_snippet, old_geo, old_enforce))
    assert rc == 0, err
    run = play(webvars, *WEB)
    assert run.rc == 0, run.out[-3000:]
    rc, out, _err = host_sh('h1', 'cat /etc/nginx/conf.d/fleetwall.conf /etc/nginx/fleetwall/blocklist.geo '
                                  '/etc/nginx/snippets/fleetwall-enforce.conf')
    assert 'ranges;' in out and '%s-%s block;' % (ATTACKER[0], ATTACKER[0]) in out
    assert 'access_log /var/log/nginx/fleetwall-block.log fleetwall_requests;' in out
    for _attempt in range(50):
        if http_get('attacker', 'h1', ATTACKER[1], version=6) == 'closed':
            break
    assert http_get('attacker', 'h1', ATTACKER[0]) == 'closed'
    assert http_get('attacker', 'h1', ATTACKER[1], version=6) == 'closed'
    assert http_get('attacker', 'h1', ATTACKER_EXTRA[0]) == '429'
    assert http_get('friend', 'h1', FRIEND[0]) == '200'
    run = play(webvars, *WEB)
    assert run.rc == 0, run.out[-3000:]
    assert run.changed('h1') == 0


def test_05_a_settings_change_alone_reaches_nginx(webvars):
    """Only the snippets change (the geo file does not): nginx must be reloaded, after nginx -t. The snippet was
    rewritten with changed=1 and nothing reloaded nginx, which kept answering 444 and, once realip was turned on,
    let clients behind the proxy through; later runs said changed=0, so it never healed."""
    # And with the request logs turned off: the snippets go back to answering the block tier in the server block.
    logged = dict((host, host_sh(host, 'wc -l < /var/log/nginx/fleetwall-block.log')[1]) for host in HOSTS)
    run = play(webvars, '-e', 'fleetwall_backend=none', '-e', 'fleetwall_web_backend=nginx',
               '-e', 'nginx_block_status=403', '-e', 'nginx_request_log_dir=')
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        assert http_get('attacker', host, ATTACKER[0]) == '403'
        # realip is off now: the proxy's header is not believed, and the proxy itself is served.
        assert http_get('friend', host, FRIEND[0], {'X-Forwarded-For': ATTACKER[0]}) == '200'
        assert host_sh(host, 'wc -l < /var/log/nginx/fleetwall-block.log')[1] == logged[host]
    run = play(webvars, *WEB)
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        assert http_get('attacker', host, ATTACKER[0]) == 'closed'
        assert http_get('friend', host, FRIEND[0], {'X-Forwarded-For': ATTACKER[0]}) == 'closed'


def test_06_the_documented_order_works_on_a_new_host(webvars):
    """docs/backends.md: add ``include .../fleetwall-enforce.conf;`` to the server block, then run the role. The
    include named no file yet, so the geo file's nginx -t failed, saying "the old file stays" where there was none."""
    run = play(webvars, '-e', 'fleetwall_backend=none', '-e', 'fleetwall_web_backend=nginx', '-e', 'nginx_state=absent')
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        rc, _out, err = host_sh(host, 'test ! -e /etc/nginx/snippets/fleetwall-enforce.conf && sed -i '
                                '"s|fleetwall-enforce\\*.conf|fleetwall-enforce.conf|" /etc/nginx/sites-enabled/lab.conf '
                                '&& grep -q "include /etc/nginx/snippets/fleetwall-enforce.conf;" '
                                '/etc/nginx/sites-enabled/lab.conf')
        assert rc == 0, err
        assert http_get('attacker', host, ATTACKER[0]) == '200'
    run = play(webvars, *WEB)
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        assert http_get('attacker', host, ATTACKER[0]) == 'closed'
        assert http_get('friend', host, FRIEND[0]) == '200'


UFW = ('-e', 'fleetwall_backend=ufw', '-e', 'ufw_enable=true')


def test_08_the_trusted_proxies_come_from_an_allow_source(webvars, feeds):
    """A site behind a CDN: the CDN's published ranges are an allow source, and nginx trusts X-Forwarded-For from
    them only (nginx_real_ip_from_allow_feeds), read from the generation pushed. The friend namespace stands in for
    the CDN's edge: the client address it forwards is judged; the attacker's own header is ignored."""
    (feeds.root / 'cdn_edges.txt').write_text('%s/32\n%s/128' % (FRIEND[0], FRIEND[1]))   # no final newline
    allow = [{'name': 'cdn', 'url': feeds.url + '/cdn_edges.txt', 'format': 'plain'}]
    run = play(webvars, '-e', 'fleetwall_backend=none', '-e', 'fleetwall_web_backend=nginx',
               '-e', json.dumps({'shadow_copy_allow_feeds': allow, 'nginx_real_ip_from_allow_feeds': ['cdn']}))
    assert run.rc == 0, run.out[-3000:]
    rc, snippet, _err = host_sh('h1', 'cat /etc/nginx/conf.d/fleetwall.conf')
    # As the generation writes networks: a single address without its /32 or /128.
    assert 'set_real_ip_from %s;' % FRIEND[0] in snippet and 'set_real_ip_from %s;' % FRIEND[1] in snippet
    for host in HOSTS:
        assert http_get('friend', host, FRIEND[0]) == '200'
        assert http_get('friend', host, FRIEND[0], {'X-Forwarded-For': ATTACKER[0]}) == 'closed'
        assert http_get('friend', host, FRIEND[0], {'X-Forwarded-For': ATTACKER_EXTRA[0]}) == '429'
        assert http_get('attacker', host, ATTACKER[0], {'X-Forwarded-For': FRIEND[0]}) == 'closed'
    # A name that is no allow source of the generation fails the run and names what it looked for.
    run = play(webvars, '-e', 'fleetwall_backend=none', '-e', 'fleetwall_web_backend=nginx',
               '-e', json.dumps({'nginx_real_ip_from_allow_feeds': ['nosuch']}))
    assert run.rc != 0 and 'allow_nosuch_v4.txt' in run.out, run.out[-3000:]
    for host in HOSTS:
        assert http_get('attacker', host, ATTACKER[0]) == 'closed'           # the block stays in force


def test_10_ufw_check_mode_then_enable_and_block(webvars):
    for host in HOSTS:
        # The operator's own rule, which must keep its place and stay below ours.
        rc, _out, err = host_sh(host, 'ufw allow 8080/tcp')
        assert rc == 0, err
    run = play(webvars, '--check', '--diff', *UFW)
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        rc, _out, _err = host_sh(host, 'iptables -n -L ufw-user-input')
        assert rc != 0                                                         # still inactive
    run = play(webvars, *UFW)
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        assert not reachable('attacker', host, ATTACKER[0], 4)
        assert not reachable('attacker', host, ATTACKER[1], 6)
        assert reachable('friend', host, FRIEND[0], 4)
        assert reachable('friend', host, FRIEND[1], 6)
        # Tagged deny before the operator's allow 8080: the attacker is blocked there too.
        assert http_get('attacker', host, ATTACKER[0]).startswith('error')
        assert http_get('friend', host, FRIEND[0]) == '200'
        rc, out, _err = host_sh(host, 'ufw status')
        assert '%s' % ATTACKER[0] in out and '# fleetwall' in out and '8080/tcp' in out


def test_11_ufw_second_run_changes_nothing_and_absent_removes_only_ours(webvars):
    run = play(webvars, *UFW)
    assert run.rc == 0, run.out[-3000:]
    assert {h: run.changed(h) for h in HOSTS} == dict.fromkeys(HOSTS, 0)
    run = play(webvars, '-e', 'fleetwall_backend=ufw', '-e', 'ufw_state=absent')
    assert run.rc == 0, run.out[-3000:]
    for host in HOSTS:
        rc, out, _err = host_sh(host, 'ufw status')
        assert '# fleetwall' not in out and '8080/tcp' in out and 'Status: active' in out
        assert reachable('attacker', host, ATTACKER[0], 4)                    # allow 22 from anywhere
        assert http_get('attacker', host, ATTACKER[0]) == 'closed'             # nginx tier still there
