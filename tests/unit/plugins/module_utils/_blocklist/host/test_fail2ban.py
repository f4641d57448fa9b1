"""Reading fail2ban's bans: from a database written by fail2ban's own code, and from fail2ban-client's output."""
import os
import subprocess
import textwrap

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.fail2ban import (
    Fail2banError, active_bans_from_database, parse_client_banned, parse_client_dbfile,
)

SYSTEM_PYTHON = '/usr/bin/python3'
NOW = 1795445600

# fail2ban is a Debian package for the system Python; it writes the database the way fail2ban-server does.
WRITE_DB = textwrap.dedent('''
    import sys
    from fail2ban.server.database import Fail2BanDb
    from fail2ban.server.ticket import BanTicket

    class Actions(object):
        def getBanTime(self):
            return 600

    class Jail(object):
        def __init__(self, name):
            self.name = name
            self.actions = Actions()

    db = Fail2BanDb(sys.argv[1])
    for jail, ip, banned_at, bantime in [
            ('sshd', '198.51.100.7', %(now)d - 30, 600),        # in force
            ('sshd', '198.51.100.8', %(now)d - 700, 600),       # ended 100 s ago
            ('recidive', '198.51.100.7', %(now)d - 10, -1),     # for ever
            ('sshd', '2001:db8::66', %(now)d - 5, 60),
            ('nginx-http-auth', '203.0.113.9', %(now)d - 5, 60)]:
        db.addJail(Jail(jail))
        ticket = BanTicket(ip, banned_at, ['line one', 'line two'])
        ticket.setBanTime(bantime)
        db.addBan(Jail(jail), ticket)
''') % {'now': NOW}


@pytest.fixture
def database(tmp_path):
    if subprocess.run([SYSTEM_PYTHON, '-c', 'import fail2ban'], capture_output=True, check=False).returncode != 0:
        pytest.skip('fail2ban is not installed for the system Python (scripts/setup.sh installs it)')
    path = str(tmp_path / 'fail2ban.sqlite3')
    proc = subprocess.run([SYSTEM_PYTHON, '-c', WRITE_DB, path], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return path


def test_only_bans_in_force_are_read(database):
    bans = active_bans_from_database(database, NOW)
    assert [(b['jail'], b['address'], b['banned_at'], b['ban_seconds']) for b in bans] == [
        ('nginx-http-auth', '203.0.113.9', NOW - 5, 60),
        ('recidive', '198.51.100.7', NOW - 10, -1),
        ('sshd', '198.51.100.7', NOW - 30, 600),
        ('sshd', '2001:db8::66', NOW - 5, 60),
    ]
    # An hour later only the permanent ban is in force.
    assert [b['jail'] for b in active_bans_from_database(database, NOW + 3600)] == ['recidive']
    assert {b['address'] for b in active_bans_from_database(database, NOW, jails=['sshd'])} == {
        '198.51.100.7', '2001:db8::66'}


def test_missing_or_foreign_database_is_a_clear_error(tmp_path):
    with pytest.raises(Fail2banError, match='cannot open'):
        active_bans_from_database(str(tmp_path / 'absent.sqlite3'), NOW)
    assert not os.path.exists(str(tmp_path / 'absent.sqlite3'))     # read-only: nothing created
    other = tmp_path / 'other.sqlite3'
    import sqlite3
    sqlite3.connect(str(other)).execute('CREATE TABLE t(x)').connection.close()
    with pytest.raises(Fail2banError, match='cannot read bans'):
        active_bans_from_database(str(other), NOW)


def test_client_output():
    text = "[{'sshd': ['198.51.100.7', '2001:db8::66']}, {'recidive': []}]\n"
    assert [(b['jail'], b['address']) for b in parse_client_banned(text)] == [
        ('sshd', '198.51.100.7'), ('sshd', '2001:db8::66')]
    assert parse_client_banned(text, jails=['recidive']) == []
    assert parse_client_banned('') == []
    for bad in ('Sorry but the command is invalid', "{'sshd': ['x']", "['sshd']"):
        with pytest.raises(Fail2banError):
            parse_client_banned(bad)


def test_dbfile_answer():
    assert parse_client_dbfile('Current database file is:\n`- /var/lib/fail2ban/fail2ban.sqlite3\n') == \
        '/var/lib/fail2ban/fail2ban.sqlite3'
    assert parse_client_dbfile('Database currently disabled\n') is None
    assert parse_client_dbfile('Current database file is:\n`- :memory:\n') is None
