"""The shadow copy is the run's own (ssh's StrictModes): a directory another user owns or can write, a
``current`` that points outside the generations, a lock file of another user, are refused by the build and
by the push with what to fix. Locks say who holds them. A build that fails on a full disk leaves nothing."""
import os
import subprocess

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import acquire_lock
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (
    ShadowCopyError, build_shadow_copy)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import StateStore, SyncError
from ansible_collections.fleetwall.blocklist.tests.helpers import pushed_generation, tally, tmpfs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='gives files to another user')

NOBODY = 65534


@pytest.fixture
def built(tmp_path):
    """A shadow copy with one generation, and a function that builds it again."""
    root = tmp_path / 'copy'
    feed = tmp_path / 'list.txt'
    feed.write_text('198.51.100.7\n')

    def build():
        return build_shadow_copy(str(root), [{'name': 'list', 'path': str(feed)}])
    assert build()['generation'] == 1
    build.root, build.feed = root, feed
    return build


def refused_by_build_and_push(built, match):
    tally('bad inputs tried: untrusted shadow copy')
    with pytest.raises(ShadowCopyError, match=match):
        built()
    with pytest.raises(ShadowCopyError, match=match):
        pushed_generation(str(built.root / 'current'))


@pytest.mark.parametrize('where', ['.', 'generations', 'feeds'])
def test_a_directory_others_can_write_is_refused(built, where):
    path = built.root / where
    os.chmod(str(path), 0o777)
    if where == 'feeds':
        with pytest.raises(ShadowCopyError, match=r'writable by its group or by everyone \(mode 0777\).*chmod go-w'):
            built()
        return
    refused_by_build_and_push(built, r'writable by its group or by everyone \(mode 0777\).*chmod go-w')
    os.chmod(str(path), 0o755)
    assert pushed_generation(str(built.root / 'current')).endswith('/generations/1')


def test_a_directory_another_user_owns_is_refused(built):
    os.chown(str(built.root), NOBODY, NOBODY)
    refused_by_build_and_push(built, 'belongs to uid %d, not to this user' % NOBODY)


def test_a_directory_above_others_can_write_is_refused_unless_sticky(built, tmp_path):
    os.chmod(str(tmp_path), 0o777)
    refused_by_build_and_push(built, r'%s is writable' % tmp_path)
    os.chmod(str(tmp_path), 0o1777)          # as /tmp: others cannot rename what they do not own
    assert built()['changed'] is False


def test_current_pointing_outside_the_generations_is_refused(built, tmp_path):
    """The issue's attack: another user repoints ``current`` at a directory of its own holding 0.0.0.0/1."""
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    (elsewhere / 'blocklist_v4.txt').write_text('0.0.0.0/1\n128.0.0.0/1\n')
    link = built.root / 'current'
    os.unlink(str(link))
    os.symlink(str(elsewhere), str(link))
    refused_by_build_and_push(built, r'current points at .*elsewhere, outside .*generations')


def test_a_lock_file_another_user_owns_is_refused(built):
    lock = built.root / '.lock'
    os.chown(str(lock), NOBODY, NOBODY)
    tally('bad inputs tried: untrusted shadow copy')
    with pytest.raises(OSError, match='belongs to uid %d' % NOBODY):
        built()


def test_a_wait_for_a_lock_names_its_holder(tmp_path):
    store = StateStore(str(tmp_path / 'state'), 'ipset', 'bl4')
    holder = subprocess.Popen(['sleep', '30'])
    try:
        store.ensure_dir()
        # The lock as another process holds it: flock'ed, with its pid written in.
        handle = acquire_lock(store.lock_path, 1)
        handle.truncate(0)
        handle.write('%d\n' % holder.pid)
        handle.flush()
        other = StateStore(str(tmp_path / 'state'), 'ipset', 'bl4')
        with pytest.raises(SyncError, match=r'another run \(pid %d\) holds .*bl4.lock; waited 1s' % holder.pid):
            other.lock(1)
        handle.close()
    finally:
        holder.kill()
        holder.wait()
    assert oct(os.stat(store.lock_path).st_mode & 0o777) == '0o600'


@pytest.fixture
def tiny_disk(tmp_path):
    with tmpfs(tmp_path / 'disk', '1m') as mount:
        yield mount


def test_a_build_that_fills_the_disk_keeps_the_generation_and_leaves_nothing(tiny_disk, tmp_path):
    """The issue's ENOSPC: the previous generation stayed intact, but a .provenance-<pid>.tmp stayed for good
    and later runs failed sooner. Now the build removes what it wrote and did not publish."""
    root = tiny_disk / 'copy'
    feed = tmp_path / 'list.txt'
    feed.write_text('198.51.100.7\n')
    feeds = [{'name': 'list', 'path': str(feed), 'max_growth_factor': 0}]
    assert build_shadow_copy(str(root), feeds)['generation'] == 1
    before = sorted(os.listdir(str(root)))
    # 60,000 addresses no aggregation can fold: the feed cache, the lists and the provenance do not fit in 1 MiB.
    feed.write_text(''.join('11.%d.%d.%d\n' % (n >> 14, (n >> 6) & 255, (n & 63) * 4) for n in range(60000)))
    tally('faults injected: disk full')
    with pytest.raises(OSError, match='No space left on device'):
        build_shadow_copy(str(root), feeds, max_shrink_percent=100)
    assert (root / 'current' / 'blocklist_v4.txt').read_text() == '198.51.100.7\n'
    assert sorted(os.listdir(str(root))) == before
    for directory in ('feeds', 'generations'):
        assert not [name for name in os.listdir(str(root / directory)) if name.startswith('.')]
    subprocess.run(['mount', '-o', 'remount,size=64m', str(tiny_disk)], check=True)
    assert build_shadow_copy(str(root), feeds)['generation'] == 2
