# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The XDP adapter under the sync engine, against the kernel's own maps in a private bpffs.

What the packets see is test_xdp.py's and the lab's (tests/integration/test_xdp_playbook.py); here, what the engine
asks of the adapter: the first load pins, a no-op lists nothing, a large change is a new trie switched in (a new
identity), a small one an edit of the live trie, a change that passes the trie's size on the way still lands, and
removal empties one family and unpins only when both are empty. The boot restore reads back what save_to wrote.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import backend_xdp, xdp, xdp_boot
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import write_atomic
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import (
    Entries, StateStore, SyncError, SyncPolicy, sync_set,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='needs root for bpf()')

CORE_INDEPENDENT = True


@pytest.fixture
def pins(tmp_path):
    mount = tmp_path / 'bpffs'
    mount.mkdir()
    subprocess.run(['mount', '-t', 'bpf', 'bpf', str(mount)], check=True, timeout=30)
    yield str(mount / 'fleetwall')
    subprocess.run(['umount', str(mount)], check=False, timeout=30)


def adapter(pins, tmp_path, version=4):
    return backend_xdp.XdpAdapter('fleetwall_v%d' % version, 'ipv%d_addr' % version, pins, ['eth9'],
                                  lock_dir=str(tmp_path / 'state'))


def sync(pins, tmp_path, entries, version=4, **policy):
    store = StateStore(str(tmp_path / 'state'), 'xdp', 'fleetwall_v%d' % version)
    return sync_set(adapter(pins, tmp_path, version), store, Entries.read(entries=entries), SyncPolicy(**policy))


def live(pins, version):
    maps = xdp.XdpMaps(pins)
    assert maps.open()
    try:
        return maps.entries(version)
    finally:
        maps.close(maps.fds.values())


def v4_entries(count, start=0):
    return ['10.%d.%d.%d' % ((n >> 16) & 255, (n >> 8) & 255, n & 255) for n in range(start, start + count)]


def test_first_load_pins_everything_and_a_second_run_lists_nothing(pins, tmp_path):
    result = sync(pins, tmp_path, ['192.0.2.1', '198.51.100.0/24'])
    assert (result['changed'], result['added'], result['total']) == (True, 2, 2)
    assert sorted(os.listdir(pins)) == sorted(xdp.PINNED)
    assert live(pins, 4) == {'192.0.2.1', '198.51.100.0/24'} and live(pins, 6) == set()

    quiet = adapter(pins, tmp_path)
    quiet.read_entries = None       # a no-op must trust the record, vouched for by the trie's id
    store = StateStore(str(tmp_path / 'state'), 'xdp', 'fleetwall_v4')
    result = sync_set(quiet, store, Entries.read(entries=['192.0.2.1', '198.51.100.0/24']), SyncPolicy())
    assert (result['changed'], result['total']) == (False, 2)


def test_a_large_change_is_a_new_trie_and_a_small_one_an_edit_of_the_live_one(pins, tmp_path):
    sync(pins, tmp_path, v4_entries(100))
    first = adapter(pins, tmp_path).probe().detail['trie_id']
    result = sync(pins, tmp_path, v4_entries(100)[:99] + ['192.0.2.7'])
    assert result['full_reload'] is False and (result['added'], result['removed']) == (1, 1)
    assert adapter(pins, tmp_path).probe().detail['trie_id'] == first
    result = sync(pins, tmp_path, v4_entries(100, start=1000))
    assert result['full_reload'] is True
    assert adapter(pins, tmp_path).probe().detail['trie_id'] != first
    assert live(pins, 4) == set(v4_entries(100, start=1000))


def test_a_trie_replaced_behind_our_back_is_compared_not_trusted(pins, tmp_path):
    sync(pins, tmp_path, ['192.0.2.1'])
    maps = xdp.XdpMaps(pins)
    maps.open()
    other = xdp.XdpMaps.new_trie(4, ['203.0.113.9'])
    maps.switch(4, other)
    os.close(other)
    maps.close(maps.fds.values())
    result = sync(pins, tmp_path, ['192.0.2.1'])
    assert result['verified'] is True and (result['added'], result['removed']) == (1, 1)
    assert live(pins, 4) == {'192.0.2.1'}


def test_an_edit_that_passes_the_tries_size_on_the_way_still_lands(pins, tmp_path, monkeypatch):
    # Adds go in before deletes: a trie with room for exactly the entries overflows mid-edit.
    monkeypatch.setattr(xdp, 'MIN_CAPACITY', 10)
    monkeypatch.setattr(xdp, 'HEADROOM', 1)
    sync(pins, tmp_path, v4_entries(10))
    assert adapter(pins, tmp_path).probe().capacity == 10
    wanted = v4_entries(9) + ['192.0.2.1']
    result = sync(pins, tmp_path, wanted, full_reload_fraction=1)
    assert (result['added'], result['removed'], result['full_reload']) == (1, 1, False)
    assert live(pins, 4) == set(wanted)


def test_removal_empties_one_family_and_unpins_once_both_are_empty(pins, tmp_path):
    sync(pins, tmp_path, ['192.0.2.1'])
    sync(pins, tmp_path, ['2001:db8::1', '2001:db8:1::/48'], version=6)
    assert live(pins, 6) == {'2001:db8::1', '2001:db8:1::/48'}
    assert adapter(pins, tmp_path, 4).destroy() is True
    assert live(pins, 4) == set() and live(pins, 6) == {'2001:db8::1', '2001:db8:1::/48'}
    assert adapter(pins, tmp_path, 6).destroy() is True
    assert not os.path.exists(pins)
    assert adapter(pins, tmp_path, 6).destroy() is False


def test_the_boot_restore_pins_again_what_the_save_files_say(pins, tmp_path):
    for version, entries in ((4, ['192.0.2.1', '198.51.100.0/24']), (6, ['2001:db8::/32'])):
        store = StateStore(str(tmp_path / 'state'), 'xdp', 'fleetwall_v%d' % version)
        sync_set(adapter(pins, tmp_path, version), store, Entries.read(entries=entries), SyncPolicy())
        adapter(pins, tmp_path, version).save_to(str(tmp_path / ('fleetwall_v%d.xdp' % version)), write_atomic, store)
    (tmp_path / 'stray.xdp').write_text('# fleetwall-xdp {"version": 5}\n192.0.2.9\n')
    wanted, unreadable = xdp_boot.read_save_dir(str(tmp_path))
    assert wanted == {pins: {'entries': {4: ['192.0.2.1', '198.51.100.0/24'], 6: ['2001:db8::/32']},
                             'interfaces': ['eth9'], 'mode': 'auto'}}
    assert unreadable == ["stray.xdp: its header has no 'pin_dir'"]
    # A reboot: nothing pinned. The restore pins and fills; attaching is the lab's to prove (eth9 is not here).
    maps = xdp.XdpMaps(pins)
    maps.unpin()
    with pytest.raises(Exception, match='no interface eth9'):
        xdp_boot.restore(pins, wanted[pins]['entries'], ['eth9'], 'auto', 'ip')
    assert live(pins, 4) == {'192.0.2.1', '198.51.100.0/24'} and live(pins, 6) == {'2001:db8::/32'}


def test_the_boot_library_is_the_collections_own_files():
    files = backend_xdp.XdpAdapter.restore_plugins('/var/lib/fleetwall/xdp')
    source = files['/var/lib/fleetwall/xdp/lib/fleetwall_xdp/xdp_boot.py']
    with open(xdp_boot.__file__) as handle:
        assert source == handle.read()
    # Relative imports only, of files that travel with it: the host has no collection installed.
    names = set(os.path.basename(path)[:-3] for path in files if path.endswith('.py'))
    for path, text in files.items():
        for line in text.splitlines():
            if line.startswith('from .'):
                imported = line.split()[1][1:]
                assert imported in names or all(
                    part.strip(' ,') in names for part in line.split('import', 1)[1].split(',')), (path, line)


def test_a_run_killed_while_pinning_is_finished_by_the_next(pins, tmp_path):
    sync(pins, tmp_path, ['192.0.2.1'])
    os.unlink(os.path.join(pins, xdp.PROGRAM))      # pinned last: what a kill before it leaves
    result = sync(pins, tmp_path, ['192.0.2.1', '192.0.2.2'])
    assert result['changed'] and sorted(os.listdir(pins)) == sorted(xdp.PINNED)
    assert live(pins, 4) == {'192.0.2.1', '192.0.2.2'}


def test_two_sets_of_one_family_are_refused_not_left_to_wipe_each_other(pins, tmp_path):
    sync(pins, tmp_path, ['192.0.2.1'])
    other = backend_xdp.XdpAdapter('renamed_v4', 'ipv4_addr', pins, ['eth9'], lock_dir=str(tmp_path / 'state'))
    with pytest.raises(SyncError, match='the set fleetwall_v4 already holds the IPv4 trie'):
        sync_set(other, StateStore(str(tmp_path / 'state'), 'xdp', 'renamed_v4'), Entries.read(entries=['192.0.2.5']),
                 SyncPolicy())
    assert live(pins, 4) == {'192.0.2.1'}


def test_the_boot_library_is_not_written_where_others_could_change_it(tmp_path):
    shared = tmp_path / 'shared'
    shared.mkdir()
    os.chmod(str(shared), 0o777)
    assert 'is not root' in backend_xdp.unsafe_for_root_code(str(shared / 'xdp'))
    assert backend_xdp.XdpAdapter.restore_plugins(str(shared / 'xdp')) == {}
    assert backend_xdp.unsafe_for_root_code(str(tmp_path / 'private' / 'xdp')) is None


def test_a_fill_in_chunks_puts_every_entry_in_and_a_full_trie_says_how_far_it_got(monkeypatch):
    monkeypatch.setattr(xdp, 'FILL_CHUNK', 3)
    entries = v4_entries(10)
    fd = xdp.XdpMaps.new_trie(4, entries)
    try:
        assert set(xdp.entry_of(4, key) for key in xdp.bpf.keys(fd, 8)) == set(entries)
    finally:
        os.close(fd)
    small = xdp.bpf.create_map(xdp.bpf.MAP_TYPE_LPM_TRIE, 8, 1, 5, 'small', xdp.bpf.F_NO_PREALLOC)
    try:
        with pytest.raises(xdp.bpf.BpfError, match='IPv4 trie is full after 5 of 10 entries'):
            xdp.fill(small, 4, entries)
    finally:
        os.close(small)
