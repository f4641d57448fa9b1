"""The fail2ban report action (roles/fail2ban/files/fleetwall-report.py).

Its helpers are imported directly; the action itself is loaded by fail2ban's own loader in the system
Python (where the fail2ban package lives) and reports to the loopback feed server's emulated API.
"""
import importlib.util
import json
import os
import re
import socket
import subprocess
import textwrap
import time

import pytest

from ansible_collections.fleetwall.blocklist.tests.helpers import ROOT

import feed_server

ACTION = os.path.join(ROOT, 'roles', 'fail2ban', 'files', 'fleetwall-report.py')
KEY = feed_server.LAB_KEYS['abuseipdb']


def load_helpers():
    spec = importlib.util.spec_from_file_location('fleetwall_report', ACTION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_comment_is_whole_log_lines_within_the_limit():
    report = load_helpers()
    lines = ['Nov 23 15:05:38 h1 sshd[8126]: Invalid user admin%d from 198.51.100.7 port 35817' % i for i in range(40)]
    comment = report.trim_comment('\n'.join(lines))
    assert len(comment) <= 1024 and comment.splitlines() == lines[:len(comment.splitlines())]
    assert len(comment.splitlines()) == 1024 // (len(lines[0]) + 1)
    # Control characters an attacker put in a user name are dropped; a single huge line is cut.
    assert report.trim_comment('Invalid user a\x1b[2Jb\x00c from 198.51.100.7') == 'Invalid user a[2Jbc from 198.51.100.7'
    assert len(report.trim_comment('x' * 5000)) == 1024
    assert report.trim_comment(None) == '' and report.trim_comment('\n\n') == ''


def test_key_file_must_be_private_and_one_line(tmp_path):
    report = load_helpers()
    path = tmp_path / 'key'
    path.write_text(KEY + '\n')
    os.chmod(str(path), 0o644)
    with pytest.raises(ValueError, match='readable by others'):
        report.read_key(str(path))
    os.chmod(str(path), 0o600)
    assert report.read_key(str(path)) == KEY
    path.write_text('a\nb\n')
    with pytest.raises(ValueError, match='one line'):
        report.read_key(str(path))


def test_error_detail_quotes_the_provider():
    report = load_helpers()
    body = json.dumps({'errors': [{'detail': 'You can only report the same IP address once in 15 minutes.',
                                   'status': 429}]}).encode()
    assert 'once in 15 minutes' in report.error_detail(body)
    assert report.error_detail(b'<html>bad gateway</html>') == '<html>bad gateway</html>'


def test_the_comment_leaves_out_the_host_unless_asked():
    report = load_helpers()
    matches = ('Nov 23 15:05:38 web1 sshd[1]: Connection from 198.51.100.7 port 4242 on 192.0.2.10 port 22\n'
               '2026-11-23T15:05:39.123456 web1.example.net sshd[1]: Invalid user admin from ::ffff:198.51.100.7\n'
               'Nov 23 15:05:40 web1 sshd[1]: error: maximum attempts for admin from 198.51.100.7 on web1 '
               '(2001:db8::10, fe80::1%eth0) exceeded.\n'
               'Nov 23 15:05:41 web1 sshd[1]: Disconnected from 198.51.100.7 port 4242 to 192.0.2.10.')
    comment = report.report_comment(matches, '198.51.100.7', names=['web1.example.net', 'web1'])
    assert comment.splitlines() == [
        'Nov 23 15:05:38 sshd[1]: Connection from 198.51.100.7 port 4242 on <address> port 22',
        '2026-11-23T15:05:39.123456 sshd[1]: Invalid user admin from ::ffff:198.51.100.7',
        'Nov 23 15:05:40 sshd[1]: error: maximum attempts for admin from 198.51.100.7 on <host> '
        '(<address>, <address>%eth0) exceeded.',
        'Nov 23 15:05:41 sshd[1]: Disconnected from 198.51.100.7 port 4242 to <address>.']
    # Asked for, the lines go as they are (within the limit, without control characters).
    assert report.report_comment(matches, '198.51.100.7', include_host=True, names=['web1']) == matches
    # Times, process ids, versions and an IPv6 ban are no addresses to remove.
    line = 'Nov 23 15:05:38 web1 sshd[812]: Invalid user x from 2001:db8::7 port 22:11: OpenSSH_9.2p1 [preauth]'
    assert report.report_comment(line, '2001:db8::7', names=['web1']) == (
        'Nov 23 15:05:38 sshd[812]: Invalid user x from 2001:db8::7 port 22:11: OpenSSH_9.2p1 [preauth]')


def test_the_state_file_is_pruned_bounded_and_replaced_atomically(tmp_path):
    report = load_helpers()
    path = str(tmp_path / 'reported.json')
    assert report.load_reported(path) == {}
    now = 1795440000.0
    reported = {'198.51.100.%d' % i: now - 1000 + i for i in range(200)}
    kept = report.prune_reported(reported, now, min_interval=900, limit=50)
    # Older than the interval: gone; of the rest, the 50 newest.
    assert sorted(kept) == sorted('198.51.100.%d' % i for i in range(150, 200))
    report.save_reported(path, kept)
    assert report.load_reported(path) == kept
    assert os.stat(path).st_mode & 0o777 == 0o600 and os.listdir(str(tmp_path)) == ['reported.json']
    for bad in (b'{"format": 1, "reported": [', b'[]', b'{"reported": {"198.51.100.7": "soon"}}',
                b'{"reported": {}}' + b' ' * report.STATE_MAX_BYTES):
        with open(path, 'wb') as handle:
            handle.write(bad)
        with pytest.raises(ValueError):
            report.load_reported(path)


RUN_IN_FAIL2BAN = textwrap.dedent('''
    import json, sys, threading, logging
    from fail2ban.server.utils import Utils
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(levelname)s %(message)s')

    class Jail(object):
        def __init__(self, name):
            self.name = name

    def wait_for_reports():
        for thread in threading.enumerate():
            if thread.name == 'fleetwall-report':
                thread.join(30)

    plan = json.loads(sys.argv[1])
    # As fail2ban loads it: once per jail, into the same module.
    actions = {jail: Utils.load_python_module(plan['action']).Action(Jail(jail), 'fleetwall-report', **options)
               for jail, options in plan['jails'].items()}
    for step in plan['steps']:
        if step == 'wait':
            wait_for_reports()
        else:
            jail, ip, matches, restored = step
            actions[jail].ban({'ip': ip, 'matches': matches, 'restored': restored})
    wait_for_reports()
''')
MATCHES = 'Nov 23 15:05:38 h1 sshd[1]: Invalid user admin from 198.51.100.7 port 1\n' * 3


@pytest.fixture
def provider(tmp_path):
    server = feed_server.serve(str(tmp_path))
    yield server, 'http://127.0.0.1:%d/abuseipdb/api/v2/report' % server.server_address[1]
    server.shutdown()


def run_action(jails, steps):
    """A fail2ban server's life: the action loaded for each of ``jails`` ({jail: options}), then the bans of
    ``steps`` ((jail, ip, matches, restored), or 'wait' for the reports under way); returns when every report
    has ended. A second call is fail2ban restarted."""
    if subprocess.run(['/usr/bin/python3', '-c', 'import fail2ban'], capture_output=True, check=False).returncode != 0:
        pytest.skip('fail2ban is not installed for the system Python (scripts/setup.sh installs it)')
    plan = {'action': ACTION, 'jails': jails, 'steps': steps}
    return subprocess.run(['/usr/bin/python3', '-c', RUN_IN_FAIL2BAN, json.dumps(plan)],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def keyfile(tmp_path):
    path = tmp_path / 'abuseipdb.key'
    path.write_text(KEY + '\n')
    os.chmod(str(path), 0o600)
    return str(path)


def sshd(url, keyfile, state_file):
    """The sshd jail's report action, as the role configures it."""
    return {'sshd': {'url': url, 'keyfile': keyfile, 'categories': '18,22', 'state_file': state_file}}


def report_statuses(server):
    """The provider's answer to each report it was sent, in order: 200 accepted it."""
    return [status for path, status, _headers in server.state.requests if path == '/abuseipdb/api/v2/report']


def render_report_options(**overrides):
    """The report action's options in the sshd jail, as the role's template writes them with its defaults."""
    import jinja2
    import yaml
    from ansible.plugins.filter.core import FilterModule as CoreFilters
    from ansible_collections.fleetwall.blocklist.plugins.filter.allowlist_networks import FilterModule
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.backends import as_dicts
    role = os.path.join(ROOT, 'roles', 'fail2ban')
    with open(os.path.join(role, 'defaults', 'main.yml')) as handle:
        variables = yaml.safe_load(handle)
    # The role takes its ban actions from the backends' table (through the backends lookup).
    set_actions = dict((backend['id'], backend['fail2ban_action']) for backend in as_dicts() if backend['fail2ban_action'])
    variables.update(ansible_managed='rendered by test_report_action.py', __fail2ban_set_actions=set_actions,
                     __fail2ban_banaction='nftables', fail2ban_ignoreip=[], fail2ban_report=True)
    variables.update(overrides)
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    environment.filters['bool'] = CoreFilters().filters()['bool']
    environment.filters['fleetwall.blocklist.allowlist_networks'] = FilterModule().filters()['allowlist_networks']
    with open(os.path.join(role, 'templates', 'fleetwall.local.j2')) as handle:
        jails = environment.from_string(handle.read()).render(variables)
    options = re.search(r'fleetwall-report\.py\[(.*)\]', jails).group(1)
    return dict(re.findall(r'(\w+)="([^"]*)"', options))


def test_the_action_reports_new_bans_once_with_the_key_in_a_header(provider, keyfile, tmp_path):
    server, url = provider
    state_file = str(tmp_path / 'reported.json')
    jails = {'sshd': {'url': url, 'keyfile': keyfile, 'categories': '18,22', 'state_file': state_file},
             'recidive': {'url': url, 'keyfile': keyfile, 'categories': '18', 'state_file': state_file}}
    proc = run_action(jails, [('sshd', '198.51.100.7', MATCHES, 0),
                              ('recidive', '198.51.100.7', MATCHES, 0),      # same address: not again
                              ('sshd', '198.51.100.8', 'x', 1),              # restored at start: never
                              ('sshd', '2001:db8::7', '', 0)])
    assert proc.returncode == 0, proc.stderr
    reports = server.state.reports
    # Reports run in their own threads: any order.
    assert sorted((r['ip'], r['categories']) for r in reports) == [('198.51.100.7', '18,22'), ('2001:db8::7', '18,22')]
    seven = [r for r in reports if r['ip'] == '198.51.100.7'][0]
    assert seven['categories'] == '18,22' and seven['comment'].count('Invalid user admin') == 3
    posts = [headers for path, status, headers in server.state.requests if path.endswith('/report')]
    assert len(posts) == 2 and all(h.get('Key') == KEY for h in posts)
    assert KEY not in url and KEY not in proc.stdout + proc.stderr
    assert 'reported 198.51.100.7' in proc.stdout


def test_a_wrong_key_or_a_readable_key_file_is_logged_without_the_key(provider, tmp_path):
    server, url = provider
    keyfile = tmp_path / 'abuseipdb.key'
    keyfile.write_text('wrong-key-0123456789\n')
    os.chmod(str(keyfile), 0o600)
    jails = sshd(url, str(keyfile), str(tmp_path / 'reported.json'))
    proc = run_action(jails, [('sshd', '198.51.100.7', MATCHES, 0)])
    assert proc.returncode == 0, proc.stderr
    assert server.state.reports == [] and 'HTTP 401' in proc.stdout
    assert 'wrong-key-0123456789' not in proc.stdout + proc.stderr
    os.chmod(str(keyfile), 0o640)
    proc = run_action(jails, [('sshd', '198.51.100.7', MATCHES, 0)])
    assert 'readable by others' in proc.stdout


def test_the_rate_limit_outlives_a_restart_of_fail2ban(provider, keyfile, tmp_path):
    server, url = provider
    state_file = tmp_path / 'reported.json'
    now = time.time()
    # What an earlier life of the server left: .9 reported long ago, .10 100 s ago.
    state_file.write_text(json.dumps({'format': 1, 'reported': {'198.51.100.9': now - 1000,
                                                                '198.51.100.10': now - 100}}))
    jails = sshd(url, keyfile, str(state_file))
    first = run_action(jails, [('sshd', '198.51.100.7', MATCHES, 0)])
    assert first.returncode == 0, first.stderr
    assert report_statuses(server) == [200]
    saved = json.loads(state_file.read_text())['reported']
    # Recorded once accepted; what is older than min_interval pruned.
    assert sorted(saved) == ['198.51.100.10', '198.51.100.7'] and now <= saved['198.51.100.7'] <= time.time()
    assert os.stat(str(state_file)).st_mode & 0o777 == 0o600
    # fail2ban restarts, and bans .7 again 150 s later (a new ban, not a restored one), .9 and .10 too.
    again = run_action(jails, [('sshd', '198.51.100.7', MATCHES, 0), ('sshd', '198.51.100.9', 'x', 0),
                               ('sshd', '198.51.100.10', 'x', 0)])
    assert again.returncode == 0, again.stderr
    assert report_statuses(server) == [200, 200]
    assert [r['ip'] for r in server.state.reports] == ['198.51.100.7', '198.51.100.9']
    assert 'not reporting 198.51.100.7 again: reported' in again.stdout
    assert 'not reporting 198.51.100.10 again: reported' in again.stdout


def test_a_failed_report_is_sent_at_the_next_ban(provider, keyfile, tmp_path):
    server, url = provider
    state_file = tmp_path / 'reported.json'
    jails = sshd(url, keyfile, str(state_file))
    # The provider fails the first report with a 500; the address's next ban sends it.
    server.state.faults['/abuseipdb/api/v2/report'] = '500'
    server.state.fault_times['/abuseipdb/api/v2/report'] = 1
    proc = run_action(jails, [('sshd', '198.51.100.7', MATCHES, 0), 'wait', ('sshd', '198.51.100.7', MATCHES, 0)])
    assert proc.returncode == 0, proc.stderr
    assert 'report of 198.51.100.7 refused: HTTP 500' in proc.stdout
    assert report_statuses(server) == [500, 200] and [r['ip'] for r in server.state.reports] == ['198.51.100.7']
    assert list(json.loads(state_file.read_text())['reported']) == ['198.51.100.7']
    # The provider down: nothing recorded, and after a restart the next ban of the address sends it.
    closed = socket.socket()
    closed.bind(('127.0.0.1', 0))
    down = 'http://127.0.0.1:%d/abuseipdb/api/v2/report' % closed.getsockname()[1]
    closed.close()
    proc = run_action(sshd(down, keyfile, str(state_file)), [('sshd', '198.51.100.8', 'x', 0)])
    assert proc.returncode == 0, proc.stderr
    assert 'report of 198.51.100.8 failed' in proc.stdout
    assert list(json.loads(state_file.read_text())['reported']) == ['198.51.100.7']
    proc = run_action(jails, [('sshd', '198.51.100.8', 'x', 0)])
    assert report_statuses(server) == [500, 200, 200]
    assert sorted(json.loads(state_file.read_text())['reported']) == ['198.51.100.7', '198.51.100.8']


def test_the_role_leaves_the_host_out_of_the_comment_unless_asked(provider, keyfile, tmp_path):
    defaults = render_report_options()
    assert (defaults['state_file'], defaults['include_host']) == ('/var/lib/fleetwall/fail2ban/reported.json', 'false')
    server, url = provider
    line = 'Nov 23 15:05:38 %s sshd[1]: Connection from 198.51.100.%%d port 4242 on 192.0.2.10 port 22' % (
        socket.gethostname())
    for last, include_host in ((7, False), (8, True)):
        options = render_report_options(fail2ban_report_url=url, fail2ban_report_key_file=keyfile,
                                        fail2ban_report_state_file=str(tmp_path / 'reported.json'),
                                        fail2ban_report_include_host=include_host)
        proc = run_action({'sshd': options}, [('sshd', '198.51.100.%d' % last, line % last, 0)])
        assert proc.returncode == 0, proc.stderr
    comments = {r['ip']: r['comment'] for r in server.state.reports}
    assert comments == {
        '198.51.100.7': 'Nov 23 15:05:38 sshd[1]: Connection from 198.51.100.7 port 4242 on <address> port 22',
        '198.51.100.8': line % 8}
