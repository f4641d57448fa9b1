"""Where a sync module finds its desired entries: sent with the call, sent with another set of the same
call, or already on the host (read only when the engine needs them)."""
import base64
import hashlib
import zlib

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.module_support import desired_entries
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import StateStore, SyncError
from ansible_collections.fleetwall.blocklist.tests.helpers import tally

RAW = b'198.51.100.7\n203.0.113.0/24\n'
SHA = hashlib.sha256(RAW).hexdigest()
ZLIB = base64.b64encode(zlib.compress(RAW)).decode()


class _Module(object):
    _name = 'fleetwall.blocklist.nft_set_sync'

    def __init__(self, **params):
        self.params = dict(dict.fromkeys(('entries_zlib', 'entries_file', 'entries', 'entries_sha256', 'src')),
                           state='present', **params)


def _desired(store, carried=None, **params):
    """desired_entries of a set with these options."""
    module = _Module(**params)
    return desired_entries(module, module.params, store, carried)


def test_entries_sent_with_another_set_of_the_call_are_used(tmp_path):
    store = StateStore(str(tmp_path), 'nft', 'v4_nets')
    entries = _desired(store, {SHA: ZLIB}, entries_sha256=SHA)
    assert (entries.lines, entries.sha256, entries.raw) == (['198.51.100.7', '203.0.113.0/24'], SHA, RAW)
    # Nothing carried for this file: the host asks for it.
    assert _desired(store, {'0' * 64: ZLIB}, entries_sha256=SHA) is None
    assert _desired(store, entries_sha256=SHA) is None


def test_entries_the_host_holds_are_read_only_when_asked(tmp_path):
    store = StateStore(str(tmp_path), 'nft', 'v4_nets')
    store.save({'source_sha256': SHA}, raw=RAW)
    entries = _desired(store, {SHA: 'not even base64 !'}, entries_sha256=SHA)
    # The record vouches for them, so what was carried is not even decoded, and the file is read only when the
    # lines are asked for.
    assert entries.sha256 == SHA and entries.raw is None
    assert entries.lines == ['198.51.100.7', '203.0.113.0/24'] and entries.raw == RAW


def test_carried_entries_that_do_not_match_their_sha256_are_refused(tmp_path):
    store = StateStore(str(tmp_path), 'nft', 'v4_nets')
    other = base64.b64encode(zlib.compress(b'192.0.2.1\n')).decode()
    with pytest.raises(SyncError, match='expected %s' % SHA):
        _desired(store, {SHA: other}, entries_sha256=SHA)


def test_compressed_entries_that_expand_past_the_limit_are_refused_unexpanded(tmp_path, monkeypatch):
    """A zlib bomb in entries_zlib (a compromised controller, a tampered transfer) stops at the limit:
    zlib.decompress would have expanded it whole on every host."""
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import module_support
    monkeypatch.setattr(module_support, 'ENTRIES_MAX_BYTES', 1 << 20)
    compressor = zlib.compressobj(9)
    bomb = b''.join(compressor.compress(b'1.2.3.4\n' * 8192) for _index in range(256)) + compressor.flush()
    store = StateStore(str(tmp_path), 'nft', 'v4_nets')
    tally('bad inputs tried: compressed bodies', 2)
    with pytest.raises(SyncError, match=r'expands to more than 1048576 bytes .*; nothing applied'):
        _desired(store, entries_zlib=base64.b64encode(bomb).decode())
    with pytest.raises(SyncError, match='not base64 of zlib data'):
        _desired(store, entries_zlib=base64.b64encode(b'\x78\x9c' + b'\xff' * 40).decode())


def test_entries_broader_than_the_minimum_prefix_are_refused_whole():
    """The issue's row: 0.0.0.0/1 appended to a published file reached the set. The host refuses the lot."""
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.module_support import (
        refuse_broad_entries)
    module = _Module(min_prefix_v4=8, min_prefix_v6=19)
    tally('bad inputs tried: entry validation', 3)
    refuse_broad_entries(module, ['198.51.100.7', '10.0.0.0/8', '2001:db8::/19', '2001:db8::1'])
    with pytest.raises(SyncError, match=r"1 entries are broader than the minimum prefix .*'0.0.0.0/1'.*nothing"):
        refuse_broad_entries(module, ['198.51.100.7', '0.0.0.0/1'])
    with pytest.raises(SyncError, match=r"'2000::/3'"):
        refuse_broad_entries(module, ['2000::/3'])
    refuse_broad_entries(_Module(min_prefix_v4=1, min_prefix_v6=19), ['0.0.0.0/1'])


def test_the_records_of_other_kernel_backends_are_named_as_a_switch_left_them(tmp_path):
    """After a switch of backend, the new backend's module names the old one's records, so the push play takes
    what it installed back; the web tier's, and a removal's record of no entries, are never named."""
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.module_support import (
        note_other_backends)
    for backend, name, count in (('nft', 'fleetwall_v4_nets', 3), ('nginx', 'blocklist', 5), ('ufw', 'fleetwall-v4v6', 0),
                                 ('ipset', 'fleetwall-v4', 7)):
        StateStore(str(tmp_path), backend, name).save({'count': count}, raw=b'192.0.2.1\n')
    result = {'changed': False, 'total': 2}
    note_other_backends(_Module(state_dir=str(tmp_path)), result, {'ipset'})
    assert result['other_backends'] == ['nftables']
    result = {'changed': False, 'total': 2}
    note_other_backends(_Module(state_dir=str(tmp_path)), result, {'nft'})
    assert result['other_backends'] == ['ipset']
    # A removal, a failed run or an empty set names none: the play removes only behind a block in force.
    for result, state in (({'failed': True, 'total': 2}, 'present'), ({'total': 0}, 'present'), ({}, 'absent')):
        module = _Module(state_dir=str(tmp_path))
        module.params['state'] = state
        note_other_backends(module, result, {'nft'})
        assert 'other_backends' not in result
