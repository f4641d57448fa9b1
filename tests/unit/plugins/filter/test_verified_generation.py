"""The verified_generation filter: the push's check of a generation, as a play calls it (the checks themselves
are tested in tests/unit/plugins/module_utils/_blocklist/controller/test_shadow_copy.py and test_trust_boundary.py)."""
import os

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetwall.blocklist.plugins.filter.verified_generation import verified_generation
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import build_shadow_copy


def test_a_verified_generation_is_its_resolved_directory_and_an_edited_one_fails_the_play(tmp_path):
    root = str(tmp_path / 'copy')
    feed = tmp_path / 'list.txt'
    feed.write_text('198.51.100.7\n')
    build_shadow_copy(root, [{'name': 'list', 'path': str(feed)}], signing_key='kept-in-the-vault')
    current = os.path.join(root, 'current')
    assert verified_generation(current, 'kept-in-the-vault') == os.path.realpath(current)
    assert verified_generation(current) == os.path.realpath(current)      # no key: the sha256 check alone
    with pytest.raises(AnsibleFilterError, match='does not match the manifest under the signing key'):
        verified_generation(current, 'another-key')
    path = os.path.join(current, 'blocklist_v4.txt')
    os.unlink(path)
    with open(path, 'w') as handle:
        handle.write('198.51.100.7\n0.0.0.0/1\n')
    with pytest.raises(AnsibleFilterError, match='changed after the build published it; nothing pushed'):
        verified_generation(current)
