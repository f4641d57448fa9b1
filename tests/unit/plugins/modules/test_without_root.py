"""A run without root (no become): the message says that root is needed, not only "Permission denied"."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.fleetwall.blocklist.tests.helpers import COLLECTIONS

# Run by the first pass only (tests/conftest.py): under ansible-test units the interpreter and the collection live
# where another user may not read them.
CORE_INDEPENDENT = True

RUNUSER = shutil.which('runuser', path='/usr/sbin:/usr/bin:/sbin:/bin')
pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason='needs root to run a module as another user'),
              pytest.mark.skipif(RUNUSER is None, reason='needs runuser')]


@pytest.mark.parametrize('module, args', [
    ('nft_set_sync', {'name': 'fw_v4', 'entries': ['192.0.2.1']}),
    ('ipset_sync', {'name': 'fw-v4', 'entries': ['192.0.2.1']}),
])
def test_a_run_without_root_is_told_to_become_root(module, args):
    shared = tempfile.mkdtemp(prefix='fleetwall-noroot-')
    try:
        os.chmod(shared, 0o755)
        state_dir = os.path.join(shared, 'state')
        os.mkdir(state_dir, 0o700)                    # root's, as /var/lib/fleetwall is
        path = os.path.join(shared, 'args.json')
        with open(path, 'w') as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': dict(args, state_dir=state_dir, lockout_protection=False)}, handle)
        os.chmod(path, 0o644)
        proc = subprocess.run([RUNUSER, '-u', 'nobody', '--', 'env', 'PYTHONPATH=' + COLLECTIONS,
                               'PATH=/usr/sbin:/usr/bin:/sbin:/bin', sys.executable, '-m',
                               'ansible_collections.fleetwall.blocklist.plugins.modules.' + module, path],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
        result = json.loads(proc.stdout)
        assert result['failed'] and 'Permission denied' in result['msg'], result
        assert 'run it as root (become: true on the play or the task)' in result['msg'], result['msg']
    finally:
        shutil.rmtree(shared)
