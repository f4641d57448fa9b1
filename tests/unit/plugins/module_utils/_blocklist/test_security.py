"""Security properties: file modes, feed data never reaching a shell or the tools' syntax, no shell anywhere."""
import ast
import os
import stat

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.backend_nft import NftAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.shadow_copy import build_shadow_copy
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import (
    StateStore, SyncError, read_entries_source, sync_set,
)
from ansible_collections.fleetwall.blocklist.tests.helpers import ROOT

HOSTILE = ['1.2.3.4 }; flush ruleset; {', '$(touch /tmp/fleetwall-pwned)', '`id`', '1.2.3.4 && rm -rf /',
           '1.2.3.4\n add element inet theirs s { 9.9.9.9 }', '-exist flush', '"; nft flush ruleset; "']


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize('file_mode', [0o644, 0o640])
def test_shadow_copy_modes(tmp_path, file_mode):
    feed = tmp_path / 'a.txt'
    feed.write_text('198.51.100.7\n2001:db8::7\n')
    root = tmp_path / 'copy'
    build_shadow_copy(str(root), [{'name': 'a', 'path': str(feed)}], file_mode=file_mode)
    published = root / 'generations' / '1'
    assert {name: mode(published / name) for name in os.listdir(published)} == dict.fromkeys(
        os.listdir(published), file_mode)
    # The feed cache holds what providers sent (with their terms of use): root's alone.
    assert {mode(root / 'feeds' / name) for name in os.listdir(root / 'feeds')} == {0o600}


def test_engine_state_is_private(tmp_path):
    store = StateStore(str(tmp_path / 'state'), 'ipset', 'bl4')
    store.save({'count': 1}, entries=['198.51.100.7'])
    assert mode(tmp_path / 'state') == 0o700
    assert mode(store.record_path) == 0o600 and mode(store.entries_path) == 0o600


def test_hostile_feed_lines_are_counted_invalid_never_published(tmp_path):
    feed = tmp_path / 'hostile.txt'
    feed.write_text('\n'.join(['198.51.100.7'] * 20 + HOSTILE) + '\n')
    root = tmp_path / 'copy'
    result = build_shadow_copy(str(root), [{'name': 'hostile', 'path': str(feed), 'max_invalid_fraction': 0.5}])
    status = result['feeds'][0]
    # Each hostile line is one invalid line. The embedded newline makes two lines of one: the bare
    # address on the first is a listed address like any other, the syntax on the second is invalid.
    assert status['invalid'] == len(HOSTILE)
    with open(root / 'current' / 'blocklist_v4.txt') as handle:
        assert handle.read().split() == ['1.2.3.4', '198.51.100.7']
    assert not os.path.exists('/tmp/fleetwall-pwned')


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root for a network namespace')
def test_hostile_entries_never_reach_nft(netns, tmp_path):
    assert netns(['nft', 'add', 'table', 'inet', 'theirs'])[0] == 0
    assert netns(['nft', 'add', 'set', 'inet', 'theirs', 's', '{ type ipv4_addr; }'])[0] == 0
    adapter = NftAdapter(netns, 'nft', 'fleetwall', 'bl4', interval=False)
    store = StateStore(str(tmp_path / 'state'), 'nft', 'bl4')
    path = tmp_path / 'entries.txt'
    for hostile in HOSTILE:
        path.write_text('198.51.100.7\n%s\n' % hostile)
        lines, sha, raw = read_entries_source(str(path))
        with pytest.raises(SyncError, match='invalid entries, nothing applied'):
            sync_set(adapter, store, lines, sha, raw)
    rc, out, _err = netns(['nft', 'list', 'ruleset'])
    assert rc == 0 and 'table inet theirs' in out and '9.9.9.9' not in out and 'bl4' not in out
    assert not os.path.exists('/tmp/fleetwall-pwned')


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def test_no_shell_anywhere_in_the_collection():
    """Tools run through run_command or subprocess with argument lists: no shell=True, no os.system/popen,
    no use_unsafe_shell."""
    offenders = []
    for base in ('plugins', os.path.join('roles', 'fail2ban', 'files')):
        for directory, _dirs, files in os.walk(os.path.join(ROOT, base)):
            for name in files:
                if not name.endswith('.py'):
                    continue
                path = os.path.join(directory, name)
                with open(path) as handle:
                    tree = ast.parse(handle.read(), path)
                for call in _calls(tree):
                    func = call.func
                    dotted = getattr(func, 'attr', None) or getattr(func, 'id', None)
                    if dotted in ('system', 'popen') and getattr(getattr(func, 'value', None), 'id', '') == 'os':
                        offenders.append('%s:%d os.%s' % (path, call.lineno, dotted))
                    for keyword in call.keywords:
                        if keyword.arg in ('shell', 'use_unsafe_shell') and not (
                                isinstance(keyword.value, ast.Constant) and keyword.value.value is False):
                            offenders.append('%s:%d %s=' % (path, call.lineno, keyword.arg))
    assert not offenders, offenders
