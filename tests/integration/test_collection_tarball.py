"""The collection as users get it: built with ansible-galaxy, installed from the tarball into a clean path,
and the main play run from that installed copy (by its FQCN), never from the working tree."""
import json
import os
import subprocess

import pytest
import yaml

from .conftest import HOSTS, VENV, reachable

import fleet

ATTACKER, FRIEND = fleet.ATTACKER, fleet.FRIEND


def galaxy_version():
    with open(os.path.join(fleet.ROOT, 'galaxy.yml')) as handle:
        return yaml.safe_load(handle)['version']


@pytest.fixture(scope='module')
def installed(lab, feeds, tmp_path_factory):
    work = tmp_path_factory.mktemp('tarball')
    collections = work / 'collections'
    # A configuration of its own: the working tree's ansible.cfg points at the tree itself.
    config = work / 'ansible.cfg'
    config.write_text('[defaults]\ncollections_path = %s\nhost_key_checking = False\nforks = 20\n'
                      'interpreter_python = auto_silent\n[ssh_connection]\npipelining = True\n' % collections)
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_NOCOLOR='1', ANSIBLE_COLLECTIONS_PATH=str(collections))

    def tool(name, *args, **kwargs):
        return subprocess.run([os.path.join(VENV, 'bin', name)] + list(args), cwd=str(work), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=kwargs.get('timeout', 600), check=False)

    built = subprocess.run([os.path.join(VENV, 'bin', 'ansible-galaxy'), 'collection', 'build', fleet.ROOT,
                            '--output-path', str(work)], cwd=str(work), env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stdout
    tarball = work / ('fleetwall-blocklist-%s.tar.gz' % galaxy_version())
    assert tarball.exists()
    proc = tool('ansible-galaxy', 'collection', 'install', str(tarball), '-p', str(collections))
    assert proc.returncode == 0, proc.stdout
    extra = work / 'vars.json'
    extra.write_text(json.dumps({'lab_feed_port': feeds.server_address[1],
                                 'shadow_copy_dir': str(work / 'shadow_copy')}))
    yield {'tool': tool, 'collections': collections, 'extra': str(extra), 'work': work}
    tool('ansible-playbook', 'fleetwall.blocklist.blocklist', '-i', fleet.INVENTORY, '-e', '@' + str(extra),
         '-e', 'nftables_state=absent', '-e', 'ipset_state=absent')


def test_the_tarball_installs_as_the_collection(installed):
    root = installed['collections'] / 'ansible_collections' / 'fleetwall' / 'blocklist'
    with open(str(root / 'MANIFEST.json')) as handle:
        manifest = json.load(handle)['collection_info']
    expected = ('fleetwall', 'blocklist', galaxy_version())
    assert (manifest['namespace'], manifest['name'], manifest['version']) == expected
    assert not (root / '.collections').exists() and not (root / '.lab').exists()
    proc = installed['tool']('ansible-doc', '-t', 'module', 'fleetwall.blocklist.ipset_sync')
    assert proc.returncode == 0 and str(root) in proc.stdout, proc.stdout[-2000:]


def test_the_main_play_runs_from_the_installed_copy(installed):
    run = installed['tool']('ansible-playbook', 'fleetwall.blocklist.blocklist', '-i', fleet.INVENTORY,
                            '-e', '@' + installed['extra'])
    assert run.returncode == 0, run.stdout[-3000:]
    assert 'fleet: 3 hosts, 3 to change' in run.stdout
    for host in HOSTS:
        assert not reachable('attacker', host, ATTACKER[0], 4) and not reachable('attacker', host, ATTACKER[1], 6)
        assert reachable('friend', host, FRIEND[0], 4)
    again = installed['tool']('ansible-playbook', 'fleetwall.blocklist.blocklist', '-i', fleet.INVENTORY,
                              '-e', '@' + installed['extra'])
    assert again.returncode == 0 and 'fleet: 3 hosts, 0 to change (+0 -0 entries), 3 unchanged' in again.stdout
