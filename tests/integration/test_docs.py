"""Every plugin's documentation renders with ansible-doc and says what the style guide asks."""
import json
import os
import subprocess

import pytest

from conftest import ROOT

from .conftest import VENV

PLUGINS = [('module', 'ipset_sync'), ('module', 'shadow_copy_build'), ('lookup', 'threat_feed'),
           ('filter', 'sync_report'), ('role', 'ipset'), ('role', 'shadow_copy')]


@pytest.mark.parametrize('kind, name', PLUGINS)
def test_ansible_doc_renders(kind, name):
    proc = subprocess.run([os.path.join(VENV, 'bin', 'ansible-doc'), '--json', '-t', kind, 'fleetwall.blocklist.' + name],
                          cwd=ROOT, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg')),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # ansible-core 2.21 warns about its own internal collection for roles;
    # only warnings about this collection count.
    ours = [line for line in proc.stderr.splitlines() if 'WARNING' in line and 'fleetwall' in line]
    assert not ours, proc.stderr
    doc = json.loads(proc.stdout)['fleetwall.blocklist.' + name]
    if kind == 'module':
        assert doc['doc']['attributes']['check_mode']['support'] == 'full'
        assert doc['examples'].strip() and doc['return']
    if kind == 'role':
        assert doc['entry_points']['main']['options']
