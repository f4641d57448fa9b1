import json

import pytest

from ansible.errors import AnsibleLookupError

from ansible_collections.fleetwall.blocklist.plugins.lookup.generation_manifest import manifest_keys


def lookup(directory, keys):
    return manifest_keys(str(directory), keys)


def test_only_the_keys_asked_for_are_returned_and_a_missing_key_is_null(tmp_path):
    refusals = [{'entry': '10.0.0.0/8', 'reason': 'bogon'}] * 1000
    (tmp_path / 'manifest.json').write_text(json.dumps({'scopes': [{'name': 'admit_tcp_22'}], 'refusals': refusals}))
    assert lookup(tmp_path, ['scopes', 'policy']) == {'scopes': [{'name': 'admit_tcp_22'}], 'policy': None}


def test_a_directory_without_a_manifest_gives_an_empty_dict(tmp_path):
    assert lookup(tmp_path, ['scopes']) == {}


@pytest.mark.parametrize('body, error', [('{"scopes": [', 'cannot read'), ('[1, 2]', 'is not a JSON object')])
def test_a_manifest_that_cannot_be_read_is_an_error(tmp_path, body, error):
    (tmp_path / 'manifest.json').write_text(body)
    with pytest.raises(AnsibleLookupError, match=error):
        lookup(tmp_path, ['scopes'])
