"""ansible-test sanity and units pass with no ignore file, offline.

The wheelhouse is filled first (the only step that uses the package index); then
ansible-test runs inside a network namespace that has nothing but loopback, so
any download it still tried (the get-pip bootstrap, a sanity test's pinned
requirements) would fail the test.
"""
import os
import subprocess
import uuid

import pytest

from ansible_collections.fleetwall.blocklist.tests.helpers import ROOT

from .conftest import VENV

SCRIPT = os.path.join(ROOT, 'scripts', 'ansible-test.sh')


def _env():
    return dict(os.environ, FLEETWALL_VENV=os.path.relpath(VENV, ROOT))


@pytest.fixture(scope='module')
def offline():
    """Run a command with no network at all: a fresh namespace whose only interface is loopback."""
    proc = subprocess.run([SCRIPT, '--download'], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    name = 'fwtest-offline-' + uuid.uuid4().hex[:6]
    subprocess.run(['ip', 'netns', 'add', name], check=True)
    subprocess.run(['ip', 'netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up'], check=True)

    def run(args, timeout):
        return subprocess.run(['ip', 'netns', 'exec', name] + args, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)
    links = subprocess.run(['ip', 'netns', 'exec', name, 'ip', '-o', 'link'], stdout=subprocess.PIPE, text=True,
                           check=True).stdout.splitlines()
    assert len(links) == 1 and ': lo:' in links[0], links
    yield run
    subprocess.run(['ip', 'netns', 'del', name], check=False)


def test_no_ignore_file():
    sanity = os.path.join(ROOT, 'tests', 'sanity')
    assert not os.path.isdir(sanity) or not [f for f in os.listdir(sanity) if f.startswith('ignore-')]


def test_sanity_passes_offline(offline):
    proc = offline([SCRIPT, 'sanity'], timeout=1800)
    assert proc.returncode == 0, proc.stdout[-6000:]
    ran = [line.split('"')[1] for line in proc.stdout.splitlines() if line.startswith('Running sanity test "')]
    # The tests that matter for a collection all ran (shellcheck needs the shellcheck package: setup.sh installs it).
    for test in ('ansible-doc', 'compile', 'import', 'pep8', 'pylint', 'shebang', 'shellcheck', 'validate-modules',
                 'yamllint', 'line-endings', 'runtime-metadata'):
        assert test in ran, (test, ran)
    assert 'Required program' not in proc.stdout, proc.stdout[-3000:]
    assert 'Downloading pip' not in proc.stdout


def unit_test_files():
    """The unit test files ansible-test runs: those that do not say CORE_INDEPENDENT (tests/conftest.py).

    The kill campaigns and the property tests test nothing of ansible-test's import rules, and ansible-test
    runs each test in a forked child, which never tears down their module-scoped namespaces and daemons:
    they run in the suite's own pytest run only."""
    files = []
    for directory, _dirs, names in os.walk(os.path.join(ROOT, 'tests', 'unit')):
        for name in sorted(names):
            if name.startswith('test_') and name.endswith('.py'):
                path = os.path.join(directory, name)
                with open(path) as handle:
                    if 'CORE_INDEPENDENT = True' in handle.read():
                        continue
                files.append(os.path.relpath(path, ROOT))
    return sorted(files)


def test_units_pass_offline(offline):
    proc = offline([SCRIPT, 'units'] + unit_test_files(), timeout=1800)
    assert proc.returncode == 0, proc.stdout[-6000:]
    passed = [int(line.split(' passed')[0].split()[-1]) for line in proc.stdout.splitlines()
              if line.startswith('=') and ' passed' in line]
    # Every unit test but the CORE_INDEPENDENT files ran under ansible-test too (modules, module_utils, and the
    # controller-side rest).
    collected = subprocess.run([os.path.join(VENV, 'bin', 'python'), '-m', 'pytest', '-p', 'no:cacheprovider',
                                '--co', '-q', 'tests/unit'], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               env=dict(os.environ, FLEETWALL_SECOND_PASS='1'), timeout=300, check=False).stdout
    count = sum(1 for line in collected.splitlines() if '::' in line)
    assert sum(passed) == count > 0, (passed, count)
    assert 'failed' not in proc.stdout and 'skipped' not in proc.stdout
