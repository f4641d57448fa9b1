"""Symlinks planted where a run writes (the host's state, the shadow copy's generations and caches, the
controller's push cache: tests/unit/plugins/plugin_utils, temporary files), each pointing at a decoy that stands in for /etc/passwd: never
followed for writing. The decoy's bytes and mode must come out as they went in."""
import os

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.adapter import SetAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import acquire_lock
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import build_shadow_copy
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import (
    Entries, StateStore, sync_set)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import LiveInfo
from ansible_collections.fleetwall.blocklist.tests.helpers import tally

DECOY = b'root:x:0:0:root:/root:/bin/bash\n'


@pytest.fixture
def decoy(tmp_path):
    """A file that stands in for /etc/passwd, and a check that it is untouched."""
    path = tmp_path / 'passwd'
    path.write_bytes(DECOY)
    os.chmod(str(path), 0o644)

    def untouched():
        assert path.read_bytes() == DECOY and oct(path.stat().st_mode & 0o777) == '0o644'
    untouched.path = path
    yield untouched
    untouched()


def plant(link, target):
    os.makedirs(os.path.dirname(str(link)), exist_ok=True)
    os.symlink(str(target), str(link))
    tally('bad inputs tried: planted symlinks')


class MemoryAdapter(SetAdapter):
    """A kernel set kept in memory: what the engine writes around it is the subject here."""
    backend, replaces_whole, version, host_only, label = 'mem', True, 4, False, 'mem bl4'
    scratch = (None, 'fleetwall-mem-')

    def __init__(self):
        self.entries = set()

    def probe(self):
        return LiveInfo(bool(self.entries), len(self.entries))

    def incompatible(self, live):
        return None

    def fingerprint(self):
        return {'type': 'mem'}

    def identity(self, live):
        return None

    def read_entries(self):
        return set(self.entries)

    def apply_full(self, desired, live, validate=None):
        if validate is not None and not validate():
            return False
        self.entries = set(desired)
        return True

    def apply_incremental(self, added, removed):
        self.entries = (self.entries | set(added)) - set(removed)

    def destroy(self):
        existed, self.entries = bool(self.entries), set()
        return existed

    def save_to(self, path, write_atomic, store):
        write_atomic(path, ''.join(entry + '\n' for entry in sorted(self.entries)).encode(), 0o600)


def test_state_files_and_the_lock_are_never_written_through_a_link(tmp_path, decoy):
    state = tmp_path / 'state'
    store = StateStore(str(state), 'mem', 'bl4')
    for name in ('mem-bl4.json', 'mem-bl4.entries', '.mem-bl4.json.tmp-planted', 'mem-bl4.scratch-planted'):
        plant(state / name, decoy.path)
    plant(state / 'mem-bl4.lock', decoy.path)
    # The lock is opened with O_NOFOLLOW: refused, naming the file, rather than created at the link's target.
    with pytest.raises(OSError, match='the lock file is a symlink'):
        store.lock(1)
    os.unlink(str(state / 'mem-bl4.lock'))
    store.lock(1)
    try:
        # Leftover names are removed as links; the record and entries are renamed over theirs.
        assert store.leftovers_removed == 2
        sync_set(MemoryAdapter(), store, Entries.read(entries=['198.51.100.7']))
    finally:
        store.unlock()
    for name in ('mem-bl4.json', 'mem-bl4.entries', 'mem-bl4.lock'):
        assert not os.path.islink(str(state / name))
    assert (state / 'mem-bl4.entries').read_bytes() == b'198.51.100.7\n'


def test_the_shadow_copy_never_writes_through_a_link(tmp_path, decoy):
    root = tmp_path / 'copy'
    feed = tmp_path / 'list.txt'
    feed.write_text('198.51.100.7\n')
    feeds = [{'name': 'list', 'path': str(feed)}]
    build_shadow_copy(str(root), feeds)
    # The next generation's name, the link's candidate, the feed cache and the lock.
    os.makedirs(str(tmp_path / 'elsewhere'))
    plant(root / 'generations' / '2', tmp_path / 'elsewhere')
    plant(root / 'current.tmp', decoy.path)
    os.unlink(str(root / 'feeds' / 'list.body'))
    plant(root / 'feeds' / 'list.body', decoy.path)
    plant(root / 'feeds' / '.list.json.tmp-planted', decoy.path)
    feed.write_text('198.51.100.8\n')
    result = build_shadow_copy(str(root), feeds)
    assert result['generation'] == 2
    assert os.listdir(str(tmp_path / 'elsewhere')) == []
    assert os.path.realpath(str(root / 'current')) == str(root / 'generations' / '2')
    assert (root / 'current' / 'blocklist_v4.txt').read_text() == '198.51.100.8\n'
    assert not os.path.islink(str(root / 'feeds' / 'list.body'))
    os.unlink(str(root / '.lock'))
    plant(root / '.lock', decoy.path)
    with pytest.raises(Exception, match='symlink'):
        build_shadow_copy(str(root), feeds)


def test_acquire_lock_refuses_a_dangling_link(tmp_path):
    link = tmp_path / 'x.lock'
    plant(link, tmp_path / 'nowhere' / 'created-by-root')
    with pytest.raises(OSError, match='symlink'):
        acquire_lock(str(link), 1)
    assert not (tmp_path / 'nowhere').exists()
