"""The collection as users get it: built with ansible-galaxy, installed from the tarball into a clean path,
and the main play run from that installed copy (by its FQCN), never from the working tree."""
import json
import os
import shutil
import subprocess

import pytest
import yaml

from .conftest import HOSTS, VENV, host_sh, reachable

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
    inventory = first_day_inventory(work, collections)
    extra = work / 'vars.json'
    extra.write_text(json.dumps({'shadow_copy_dir': str(work / 'shadow_copy')}))
    yield {'tool': tool, 'collections': collections, 'extra': str(extra), 'work': work, 'inventory': str(inventory),
           'feed_url': 'http://127.0.0.1:%d' % feeds.server_address[1]}
    tool('ansible-playbook', 'fleetwall.blocklist.blocklist', '-i', str(inventory), '-e', '@' + str(extra),
         '-e', 'nftables_state=absent', '-e', 'ipset_state=absent')


def first_day_inventory(work, collections):
    """inventory/example copied out of the installed collection, as docs/getting-started.md says, with the
    lab's hosts in it: two web hosts and a bastion that keeps the example's port-22, reject policy."""
    example = collections / 'ansible_collections' / 'fleetwall' / 'blocklist' / 'inventory' / 'example'
    inventory = work / 'myfleet'
    shutil.copytree(str(example), str(inventory))
    with open(fleet.INVENTORY) as handle:
        lab = yaml.safe_load(handle)['all']['children']['lab']
    hosts = {name: {'ansible_host': spec['ansible_host']} for name, spec in lab['hosts'].items()}
    hosts['h3'].update(fleetwall_ports=[22], fleetwall_target='reject')
    (inventory / 'hosts.yml').write_text(yaml.safe_dump({'all': {
        'vars': dict(lab['vars'], ansible_python_interpreter='/usr/bin/python3'),
        'children': {'web': {'hosts': {'h1': hosts['h1'], 'h2': hosts['h2']}},
                     'bastions': {'hosts': {'h3': hosts['h3']}}}}}))
    return inventory


def add_feeds(installed):
    """What the operator writes next into group_vars/all.yml: presets, their url pointed at the lab's emulators."""
    url = installed['feed_url']
    settings = {
        'shadow_copy_feeds': [
            {'name': 'spamhaus_drop', 'preset': 'spamhaus_drop', 'url': url + '/providers/drop_v4.json'},
            {'name': 'firehol_level1', 'preset': 'firehol_level1', 'url': url + '/firehol/firehol_level1.netset'},
            {'name': 'lab_attackers', 'url': url + '/lab_attackers.txt'}],
        # FireHOL level1 lists the lab's range: the friend is the office. The fleet's own hosts and the
        # controller stay reachable by lockout protection, with nothing to write.
        'shadow_copy_allowlist': [FRIEND[0], FRIEND[1]]}
    with open(os.path.join(installed['inventory'], 'group_vars', 'all.yml'), 'a') as handle:
        handle.write('\n' + yaml.safe_dump(settings))


def test_the_tarball_installs_as_the_collection(installed):
    root = installed['collections'] / 'ansible_collections' / 'fleetwall' / 'blocklist'
    with open(str(root / 'MANIFEST.json')) as handle:
        manifest = json.load(handle)['collection_info']
    expected = ('fleetwall', 'blocklist', galaxy_version())
    assert (manifest['namespace'], manifest['name'], manifest['version']) == expected
    assert not (root / '.collections').exists() and not (root / '.lab').exists()
    proc = installed['tool']('ansible-doc', '-t', 'module', 'fleetwall.blocklist.ipset_sync')
    assert proc.returncode == 0 and str(root) in proc.stdout, proc.stdout[-2000:]


def test_the_first_day_from_the_installed_copy(installed):
    def play(*args):
        return installed['tool']('ansible-playbook', 'fleetwall.blocklist.blocklist', '-i', installed['inventory'],
                                 '-e', '@' + installed['extra'], *args)

    # The copied example as it is: every feed is commented out, and the run says what to set, and where.
    run = play()
    assert run.returncode != 0 and 'no feeds configured: the feeds option (shadow_copy_feeds with the role) is ' \
        'empty. Is -i the inventory that sets it?' in run.stdout, run.stdout[-3000:]
    assert 'changed=1' not in run.stdout
    add_feeds(installed)

    preview = play('--check', '--diff')
    assert preview.returncode == 0 and 'fleet: 3 hosts, 3 to change' in preview.stdout, preview.stdout[-3000:]
    reports = installed['work'] / 'reports'
    # The report goes beside the shadow copy directory, and the run says so.
    assert 'fleet report: %s/fleet_report.html and .json (not written in check mode)' % reports in preview.stdout
    assert 'allowlist: kept ' in preview.stdout

    run = play()
    assert run.returncode == 0 and 'fleet: 3 hosts, 3 to change' in run.stdout, run.stdout[-3000:]
    # The preview's downloads serve the run: the presets' min_interval is not spent twice.
    assert 'feed spamhaus_drop: cached' in run.stdout and 'feed firehol_level1: cached' in run.stdout
    assert 'metrics: ' in run.stdout and (reports / 'fleet_report.json').is_file()
    for host in HOSTS:
        assert not reachable('attacker', host, ATTACKER[0], 4) and not reachable('attacker', host, ATTACKER[1], 6)
        assert reachable('friend', host, FRIEND[0], 4) and reachable('friend', host, FRIEND[1], 6)
    # The bastion's policy, written once in the neutral names, reached its backend.
    rc, rules, err = host_sh('h3', 'nft list chain inet fleetwall fleetwall_v4_hosts_input')
    assert rc == 0 and 'tcp dport 22' in rules and 'reject' in rules, err + rules
    again = play()
    assert again.returncode == 0 and 'fleet: 3 hosts, 0 to change (+0 -0 entries), 3 unchanged' in again.stdout
