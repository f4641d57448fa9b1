"""Every plugin's documentation renders with ansible-doc and says what the style guide asks."""
import json
import os
import subprocess

import pytest

from ansible_collections.fleetwall.blocklist.tests.helpers import ROOT

from .conftest import VENV

PLUGINS = [('module', 'ipset_sync'), ('module', 'shadow_copy_build'), ('lookup', 'threat_feed'),
           ('filter', 'sync_report'), ('filter', 'shadow_copy_report'), ('role', 'ipset'), ('role', 'shadow_copy'),
           ('module', 'nft_set_sync'), ('module', 'backend_facts'), ('role', 'nftables'),
           ('module', 'ufw_tagged_rules'), ('module', 'nginx_geo_file'), ('module', 'firewalld_ipset_sync'),
           ('role', 'ufw'), ('role', 'nginx'), ('role', 'firewalld'),
           ('module', 'fail2ban_bans'), ('filter', 'allowlist_networks'), ('role', 'fail2ban'),
           ('filter', 'sync_summary'), ('module', 'metrics_textfile'), ('filter', 'fleet_report'),
           ('module', 'fleet_report_files'),
           ('filter', 'verified_generation'), ('module', 'xdp_set_sync'), ('role', 'xdp'),
           ('lookup', 'explain'), ('module', 'held_entries'), ('filter', 'held_summary')]


@pytest.mark.parametrize('kind, name', PLUGINS)
def test_ansible_doc_renders(kind, name):
    proc = subprocess.run([os.path.join(VENV, 'bin', 'ansible-doc'), '--json', '-t', kind, 'fleetwall.blocklist.' + name],
                          cwd=ROOT, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg')),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
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


def test_every_builtin_preset_has_a_docs_page_with_quota_advice():
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.presets import PRESETS
    for name, preset in PRESETS.items():
        path = os.path.join(ROOT, 'docs', 'presets', name + '.md')
        assert os.path.exists(path), path
        with open(path) as handle:
            text = handle.read()
        assert '## Quota' in text and 'min_interval' in text, name
        assert ('preset: %s' % name) in text, name


def test_changelog_lint_clean_and_generated():
    tool = os.path.join(VENV, 'bin', 'antsibull-changelog')
    if not os.path.exists(tool):
        pytest.skip('antsibull-changelog is not installed in %s (scripts/setup.sh installs it)' % VENV)
    for args in (['lint'], ['lint-changelog-yaml', os.path.join('changelogs', 'changelog.yaml')]):
        proc = subprocess.run([tool] + args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0 and proc.stdout.strip() == '', proc.stdout
    assert os.path.exists(os.path.join(ROOT, 'CHANGELOG.rst'))


def test_ansible_lint_production_profile():
    tool = os.path.join(VENV, 'bin', 'ansible-lint')
    if not os.path.exists(tool):
        pytest.skip('ansible-lint is not installed in %s (scripts/setup.sh installs it)' % VENV)
    env = dict(os.environ, PATH=os.path.join(VENV, 'bin') + os.pathsep + os.environ.get('PATH', ''))
    proc = subprocess.run([tool, '-q', '--nocolor', '-f', 'pep8'], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=900, check=False)
    findings = [line for line in proc.stdout.splitlines() if line.strip() and 'WARNING' not in line]
    assert proc.returncode == 0 and not findings, proc.stdout[-5000:]
