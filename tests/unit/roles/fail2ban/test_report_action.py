"""The fail2ban report action (roles/fail2ban/files/fleetwall-report.py).

Its helpers are imported directly; the action itself is loaded by fail2ban's own loader in the system
Python (where the fail2ban package lives) and reports to the loopback feed server's emulated API.
"""
import importlib.util
import json
import os
import subprocess
import textwrap

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


RUN_IN_FAIL2BAN = textwrap.dedent('''
    import json, sys, time, logging
    from fail2ban.server.utils import Utils
    from fail2ban.helpers import getLogger
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(levelname)s %(message)s')

    class Jail(object):
        def __init__(self, name):
            self.name = name

    url, keyfile = sys.argv[1], sys.argv[2]
    # As fail2ban loads it: once per jail, into the same module.
    sshd = Utils.load_python_module(sys.argv[3]).Action(Jail('sshd'), 'fleetwall-report', url=url, keyfile=keyfile,
                                                         categories='18,22')
    recidive = Utils.load_python_module(sys.argv[3]).Action(Jail('recidive'), 'fleetwall-report', url=url,
                                                            keyfile=keyfile, categories='18')
    matches = 'Nov 23 15:05:38 h1 sshd[1]: Invalid user admin from 198.51.100.7 port 1\\n' * 3
    sshd.ban({'ip': '198.51.100.7', 'matches': matches, 'restored': 0})
    recidive.ban({'ip': '198.51.100.7', 'matches': matches, 'restored': 0})    # same address: not again
    sshd.ban({'ip': '198.51.100.8', 'matches': 'x', 'restored': 1})            # restored at start: never
    sshd.ban({'ip': '2001:db8::7', 'matches': '', 'restored': 0})
    time.sleep(2)
''')


@pytest.fixture
def provider(tmp_path):
    server = feed_server.serve(str(tmp_path))
    yield server, 'http://127.0.0.1:%d/abuseipdb/api/v2/report' % server.server_address[1]
    server.shutdown()


def run_action(url, keyfile):
    if subprocess.run(['/usr/bin/python3', '-c', 'import fail2ban'], capture_output=True, check=False).returncode != 0:
        pytest.skip('fail2ban is not installed for the system Python (scripts/setup.sh installs it)')
    return subprocess.run(['/usr/bin/python3', '-c', RUN_IN_FAIL2BAN, url, keyfile, ACTION],
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_action_reports_new_bans_once_with_the_key_in_a_header(provider, tmp_path):
    server, url = provider
    keyfile = tmp_path / 'abuseipdb.key'
    keyfile.write_text(KEY + '\n')
    os.chmod(str(keyfile), 0o600)
    proc = run_action(url, str(keyfile))
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
    proc = run_action(url, str(keyfile))
    assert proc.returncode == 0, proc.stderr
    assert server.state.reports == [] and 'HTTP 401' in proc.stdout
    assert 'wrong-key-0123456789' not in proc.stdout + proc.stderr
    os.chmod(str(keyfile), 0o640)
    proc = run_action(url, str(keyfile))
    assert 'readable by others' in proc.stdout
