"""Set and table names, property-tested against the real tools: whatever the adapters accept, the kernel
tools accept too; everything else is a clear error before any command runs."""
import os
import subprocess
import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import backend_ipset, backend_nft
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import SyncError
from ansible_collections.fleetwall.blocklist.tests.helpers import tally

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='needs root for a network namespace')

# Names from the characters that matter: the allowed ones, separators, shell and nft syntax, unicode.
_CHARACTERS = list('abcXYZ019_-.:') + [' ', '/', ';', '{', '}', '"', '$', '\n', '\0', '\u00e9', '\u202e']
NAMES = st.text(alphabet=st.sampled_from(_CHARACTERS), max_size=70)


# Function-scoped on purpose: ansible-test runs every test in a forked child
# that exits without tearing down module-scoped fixtures, which left one
# namespace behind per test. (Hypothesis shares it among a test's examples.)
@pytest.fixture
def ns():
    name = 'fwtest-names-' + uuid.uuid4().hex[:6]
    subprocess.run(['ip', 'netns', 'add', name], check=True)

    def run(args):
        proc = subprocess.run(['ip', 'netns', 'exec', name] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=30, check=False)
        return proc.returncode, proc.stdout, proc.stderr
    assert run(['nft', 'add', 'table', 'inet', 'names'])[0] == 0
    yield run
    subprocess.run(['ip', 'netns', 'del', name], check=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES)
def test_ipset_names(ns, name):
    tally('bad inputs tried: set names')
    problem = backend_ipset.validate_name(name)
    if problem:
        assert 'ipset name' in problem and ('1 to 31 characters' in problem or 'may use only' in problem)
        with pytest.raises(SyncError):
            backend_ipset.IpsetAdapter(ns, 'ipset', name)
        return
    assert 1 <= len(name) <= 31
    rc, _out, err = ns(['ipset', 'create', name, 'hash:ip'])
    assert rc == 0, (name, err)
    assert ns(['ipset', 'destroy', name])[0] == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES)
def test_nft_names(ns, name):
    tally('bad inputs tried: set names')
    problem = backend_nft.validate_name('set', name)
    if problem:
        assert problem.startswith('set name') and 'at most 63' in problem
        with pytest.raises(SyncError):
            backend_nft.NftAdapter(ns, 'nft', 'names', name)
        return
    rc, _out, err = ns(['nft', 'add', 'set', 'inet', 'names', name, '{ type ipv4_addr; }'])
    assert rc == 0, (name, err)
    assert ns(['nft', 'delete', 'set', 'inet', 'names', name])[0] == 0


def test_the_longest_names_the_kernel_takes_are_the_limits(ns):
    assert backend_ipset.validate_name('a' * 31) is None and backend_ipset.validate_name('a' * 32)
    assert ns(['ipset', 'create', 'a' * 32, 'hash:ip'])[0] != 0          # the kernel's own limit
    assert backend_nft.validate_name('set', 'a' * 63) is None and backend_nft.validate_name('set', 'a' * 64)


def test_a_trailing_newline_is_never_valid():
    # '$' in a Python pattern also matches before a final newline; the validators use \Z.
    assert backend_nft.validate_name('set', 'bl4\n') and backend_ipset.validate_name('bl4\n')
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller import shadow_copy
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import backend_nginx, nft_rules
    assert not nft_rules.PREFIX_OK.match('fleetwall: \n')
    assert not shadow_copy.FEED_NAME.match('feed\n')
    assert not backend_nginx.VALUE.match('block\n')
