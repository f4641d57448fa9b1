"""Bad input reaches the module over real SSH and fails clearly, leaving the live set as it was."""
import json

import pytest

from .conftest import ansible, host_sh, set_count


@pytest.fixture(scope='module')
def live_set(lab):
    rc, _out, err = host_sh('h1', 'ipset -exist create fw-bad hash:net; ipset -exist add fw-bad 198.51.100.1; '
                                  'ipset -exist create fw-other hash:ip; ipset -exist add fw-other 192.0.2.1')
    assert rc == 0, err
    yield
    host_sh('h1', 'ipset destroy fw-bad; ipset destroy fw-other')


def module(args, tmp_path, *extra):
    return ansible('ansible', ['h1', '-m', 'fleetwall.blocklist.ipset_sync', '-a', json.dumps(args)] + list(extra),
                   tmp_path=tmp_path)


def members(name):
    return set(host_sh('h1', 'ipset list %s' % name)[1].split('Members:')[1].split())


@pytest.mark.parametrize('args, message', [
    ({'name': 'fw-bad', 'entries': ['198.51.100.2', '1.2.3.4 }; flush ruleset; {']},
     "invalid entries, nothing applied: '1.2.3.4 }; flush ruleset; {': not an IPv4 address"),
    ({'name': 'fw-bad', 'entries': ['198.51.100.0/33']}, 'prefix length /33 out of range'),
    ({'name': 'fw-bad', 'entries': ['2001:db8::1']}, 'is IPv6, the set is IPv4'),
    ({'name': 'fw-bad', 'entries': ['198.51.100.2'], 'family': 'inet7'},
     'value of family must be one of: inet, inet6, got: inet7'),
    ({'name': 'fw-bad', 'entries_file': '/nonexistent/entries.txt'}, 'cannot read entries_file /nonexistent/entries.txt'),
    ({'name': 'fw-bad', 'entries': ['198.51.100.2'], 'timeout': -5}, 'timeout must be between 1 and 2147483'),
    ({'name': 'fw-bad', 'entries': ['198.51.100.2'], 'entries_sha256': '0' * 64}, 'expected 0000'),
    ({'name': 'fw-other', 'entries': ['198.51.100.2']}, 'already exists as hash:ip family inet'),
    ({'name': 'x' * 32, 'entries': ['198.51.100.2']}, 'must be 1 to 31 characters'),
    ({'name': 'fw-bad', 'entries': ['198.51.100.2'], 'rules': [{'ports': [70000]}]}, 'port 70000 is out of range'),
])
def test_bad_input_fails_clearly_and_changes_nothing(live_set, tmp_path, args, message):
    run = module(args, tmp_path)
    assert run.rc == 2, run.out
    assert message in run.out
    assert 'Traceback' not in run.out
    assert members('fw-bad') == {'198.51.100.1'}
    assert members('fw-other') == {'192.0.2.1'}


def test_malformed_entries_file_on_the_host(live_set, tmp_path):
    rc, _out, err = host_sh('h1', "printf '198.51.100.3\\n<html>\\n' > /var/lib/entries-bad.txt")
    assert rc == 0, err
    run = module({'name': 'fw-bad', 'entries_file': '/var/lib/entries-bad.txt'}, tmp_path)
    assert run.rc == 2 and "'<html>': not an IPv4 address" in run.out, run.out
    assert members('fw-bad') == {'198.51.100.1'}


def test_check_mode_and_diff_over_ssh(live_set, tmp_path):
    run = module({'name': 'fw-bad', 'entries': ['198.51.100.1', '198.51.100.9']}, tmp_path, '--check', '--diff')
    assert run.rc == 0, run.out
    assert '+198.51.100.9' in run.out and '"added": 1' in run.out
    assert members('fw-bad') == {'198.51.100.1'}
    assert set_count('h1', 'fw-bad') == 1


def test_missing_src_on_the_controller(live_set, tmp_path):
    run = module({'name': 'fw-bad', 'src': '/nonexistent/blocklist_v4.txt'}, tmp_path)
    assert run.rc == 2 and 'cannot find src /nonexistent/blocklist_v4.txt' in run.out, run.out
    assert members('fw-bad') == {'198.51.100.1'}
