"""The fleet_report_files action as a play runs it: a report or a directory it cannot write is a clean task
failure naming what is wrong, never a raw Python error, and nothing is written."""
import json
import os
import subprocess
import sys

from ansible_collections.fleetwall.blocklist.tests.helpers import COLLECTIONS, tally

# The ad-hoc CLI from the running interpreter: under ansible-test no 'ansible' script need sit beside it.
ANSIBLE = [sys.executable, '-c', 'import sys; from ansible.cli.adhoc import main; main(["ansible"] + sys.argv[1:])']


def run_action(args, tmp_path):
    # Run from an empty directory: no ansible.cfg but the defaults, and the minimal callback prints the result as
    # 'localhost | FAILED! => {json}'.
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_LOCAL_TEMP=str(tmp_path / 'ansible-tmp'),
               ANSIBLE_STDOUT_CALLBACK='minimal', ANSIBLE_NOCOLOR='1')
    workdir = tmp_path / 'cwd'
    workdir.mkdir(exist_ok=True)
    proc = subprocess.run(ANSIBLE + ['localhost', '-m', 'fleetwall.blocklist.fleet_report_files', '-a', json.dumps(args)],
                          cwd=str(workdir), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=120, check=False)
    tally('bad inputs tried: fleet report action')
    assert ' => ' in proc.stdout, proc.stdout + proc.stderr
    head, _sep, result = proc.stdout.partition(' => ')
    return proc, dict(json.loads(result), failed=head.endswith('FAILED!'))


def test_a_report_of_the_wrong_shape_or_a_bad_directory_fails_cleanly(tmp_path):
    good = {'generation': 3, 'hosts': [], 'totals': {}}
    cases = [
        ({'dir': str(tmp_path / 'r1'), 'report': {'hosts': 'x', 'totals': {}}},
         'report.hosts must be a list of per-host mappings, got a text'),
        ({'dir': str(tmp_path / 'r2'), 'report': {'hosts': [{'host': 'h1', 'entries': 'many'}], 'totals': {}}},
         "report.hosts[0]: entries must be a count or null, got 'many'"),
        ({'dir': str(tmp_path / 'r3') + '/d' * 2000, 'report': good}, 'deeper than 64 directories'),
        ({'dir': str(tmp_path / 'r4'), 'report': good, 'mode': '99999'}, 'mode must be an octal mode'),
    ]
    for args, message in cases:
        proc, result = run_action(args, tmp_path)
        assert result['failed'] and message in result['msg'], (args, result)
        assert 'Traceback' not in proc.stdout + proc.stderr and 'exception' not in result, result
    assert not any(name.startswith('r') for name in os.listdir(str(tmp_path)))     # nothing was made
    _proc, result = run_action({'dir': str(tmp_path / 'ok'), 'report': good}, tmp_path)
    assert result.get('written') and not result['failed'], result
    assert sorted(os.listdir(str(tmp_path / 'ok'))) == ['fleet_history.json', 'fleet_report.html', 'fleet_report.json']
