"""The controller side of the transfer: each file goes once a call, and is compressed once a run."""
import base64
import hashlib
import os
import zlib

import pytest

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible_collections.fleetwall.blocklist.plugins.plugin_utils import entries_transfer


@pytest.fixture
def local_tmp(tmp_path, monkeypatch):
    run_tmp = tmp_path / 'run'
    run_tmp.mkdir()
    monkeypatch.setattr(C, 'DEFAULT_LOCAL_TMP', str(run_tmp))
    return run_tmp


def _file(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path), hashlib.sha256(data).hexdigest()


def test_sets_that_share_a_file_carry_it_once(tmp_path, local_tmp):
    v4, v4_sha = _file(tmp_path, 'blocklist_v4.txt', b'198.51.100.7\n203.0.113.0/24\n')
    v6, v6_sha = _file(tmp_path, 'blocklist_v6.txt', b'2001:db8::1\n')
    sets = [{'name': 'v4_hosts', 'entries_sha256': v4_sha}, {'name': 'v4_nets', 'entries_sha256': v4_sha},
            {'name': 'v6_hosts', 'entries_sha256': v6_sha}, {'name': 'v6_nets', 'entries_sha256': v6_sha}]
    pending = dict((i, {'local': v4 if i < 2 else v6}) for i in range(4))
    entries_transfer._attach_once(sets, [0, 1, 3], pending)
    assert ['entries_zlib' in item for item in sets] == [True, False, False, True]
    assert zlib.decompress(base64.b64decode(sets[0]['entries_zlib'])) == b'198.51.100.7\n203.0.113.0/24\n'
    assert zlib.decompress(base64.b64decode(sets[3]['entries_zlib'])) == b'2001:db8::1\n'


def test_a_file_is_compressed_once_a_run(tmp_path, local_tmp):
    path, sha = _file(tmp_path, 'blocklist_v4.txt', b'198.51.100.7\n' * 1000)
    first = entries_transfer._compressed(path, sha)
    assert sorted(os.listdir(str(local_tmp))) == ['fleetwall-entries-%s.zlib' % sha]
    # Another host's worker reads it back instead of compressing again.
    (local_tmp / ('fleetwall-entries-%s.zlib' % sha)).write_text('from the first worker')
    assert entries_transfer._compressed(path, sha) == 'from the first worker'
    assert zlib.decompress(base64.b64decode(first)) == b'198.51.100.7\n' * 1000


def test_a_file_that_changed_since_it_was_hashed_is_not_sent(tmp_path, local_tmp):
    path, sha = _file(tmp_path, 'blocklist_v4.txt', b'198.51.100.7\n')
    with open(path, 'ab') as handle:
        handle.write(b'203.0.113.9\n')
    with pytest.raises(AnsibleActionFail, match='changed while it was being sent'):
        entries_transfer._compressed(path, sha)
    assert os.listdir(str(local_tmp)) == []


def test_a_generation_file_that_differs_from_its_manifest_is_not_sent(tmp_path, local_tmp):
    """An edit to a published generation after the play verified it (verified_generation) is caught here,
    per host, before anything is sent."""
    path, sha = _file(tmp_path, 'blocklist_v4.txt', b'198.51.100.7\n')
    (tmp_path / 'manifest.json').write_text('{"files": {"blocklist_v4.txt": {"sha256": "%s"}}}' % sha)

    class Action(object):
        def _find_needle(self, _kind, src):
            return src
    task_vars = {'inventory_hostname': 'h1', 'fleetwall_push_cache_dir': None}
    target = {'name': 'bl4'}
    entries_transfer._prepare(Action(), task_vars, 'ipset_sync', {}, path, target)
    assert target['entries_sha256'] == sha
    with open(path, 'ab') as handle:
        handle.write(b'0.0.0.0/1\n')
    with pytest.raises(AnsibleActionFail, match='changed after the build published it; nothing sent'):
        entries_transfer._prepare(Action(), task_vars, 'ipset_sync', {}, path, {'name': 'bl4'})


def test_the_builds_minimum_prefix_goes_with_the_entries_unless_the_task_sets_it(tmp_path, local_tmp):
    path, sha = _file(tmp_path, 'blocklist_v4.txt', b'198.51.100.7\n')
    (tmp_path / 'manifest.json').write_text('{"files": {"blocklist_v4.txt": {"sha256": "%s"}}, '
                                            '"policy": {"min_prefix": {"v4": 12, "v6": 32}}}' % sha)

    class Action(object):
        def _find_needle(self, _kind, src):
            return src
    args = {'name': 'bl4'}
    entries_transfer._prepare(Action(), {'inventory_hostname': 'h1'}, 'ipset_sync', args, path, args)
    assert (args['min_prefix_v4'], args['min_prefix_v6']) == (12, 32)
    args = {'name': 'bl4', 'min_prefix_v4': 4}
    entries_transfer._prepare(Action(), {'inventory_hostname': 'h1'}, 'ipset_sync', args, path, args)
    assert (args['min_prefix_v4'], args['min_prefix_v6']) == (4, 32)


def test_the_push_cache_is_never_written_through_a_link(tmp_path):
    """A planted link at the predictable name the cache used ('<path>.<pid>') is never written through; the decoy
    stands in for /etc/passwd."""
    decoy = tmp_path / 'passwd'
    decoy.write_bytes(b'root:x:0:0:root:/root:/bin/bash\n')
    cache = tmp_path / 'pushed' / 'host-key'
    # A predictable candidate name used to be '<path>.<pid>': plant links at every pid near ours.
    for pid in range(os.getpid() - 2, os.getpid() + 3):
        os.makedirs(str(cache.parent), exist_ok=True)
        os.symlink(str(decoy), '%s.%d' % (cache, pid))
    entries_transfer._write(str(cache), hashlib.sha256(b'x').hexdigest())
    assert cache.read_text() == hashlib.sha256(b'x').hexdigest()
    assert oct(cache.stat().st_mode & 0o777) == '0o600'
    assert decoy.read_bytes() == b'root:x:0:0:root:/root:/bin/bash\n'
