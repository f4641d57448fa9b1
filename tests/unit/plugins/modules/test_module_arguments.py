"""Every argument gets an answer: a path no file can have (a NUL byte, thousands of directories deep) or a
file that is not a regular one (a FIFO would block the read for ever) ends in a clean failure, in bounded
time, before any lock or directory is made. Each module runs as Ansible runs it: a Python process reading
its arguments from a file."""
import os

import pytest

from ansible_collections.fleetwall.blocklist.tests.helpers import run_module

MODULES = {
    'ipset_sync': {'name': 'fwtest-args'},
    'nft_set_sync': {'name': 'fwtest_args'},
    'firewalld_ipset_sync': {'name': 'fwtest-args'},
    'ufw_tagged_rules': {},
}


def bad_arguments(tmp_path):
    fifo = tmp_path / 'entries.fifo'
    os.mkfifo(str(fifo))
    state = tmp_path / 'state'
    return [
        ({'entries': ['198.51.100.7'], 'state_dir': str(state) + '\x00x'}, 'state_dir: the path contains a NUL byte'),
        ({'entries': ['198.51.100.7'], 'state_dir': str(state) + '/d' * 2000}, 'state_dir: the path is longer'),
        ({'entries_file': str(fifo), 'state_dir': str(state)}, 'not a regular file'),
        ({'entries_file': str(tmp_path), 'state_dir': str(state)}, 'not a regular file'),
    ]


@pytest.mark.parametrize('module', sorted(MODULES))
def test_a_bad_path_is_a_clean_failure_before_anything_is_made(module, tmp_path):
    for args, message in bad_arguments(tmp_path):
        proc, result = run_module(module, dict(MODULES[module], lockout_protection=False, **args), tmp_path)
        assert proc.returncode == 1 and result['failed'], (args, result)
        expected = [message]
        if 'NUL byte' in message:
            # ansible-core 2.21 logs the arguments to syslog before the module runs, and fails cleanly there.
            expected.append('Failed to log to syslog (embedded null character)')
        if module == 'firewalld_ipset_sync' and 'not a regular file' in message:
            # It asks firewalld first, which this machine may not run: a clean failure all the same.
            expected.append('firewalld is not running')
        assert any(text in result['msg'] for text in expected), (expected, result['msg'])
        assert 'Traceback' not in proc.stderr + proc.stdout
        if 'not a regular file' not in message:
            # Refused before any lock or state directory was made.
            assert not (tmp_path / 'state').exists()


@pytest.mark.parametrize('module', ['ipset_sync', 'nft_set_sync', 'firewalld_ipset_sync'])
def test_a_bad_path_in_one_of_sets_is_refused_the_same(module, tmp_path):
    # A NUL byte in a set's persist_file was a ValueError from os.makedirs after the set was applied.
    state = tmp_path / 'state'
    option = 'entries_file' if module == 'firewalld_ipset_sync' else 'persist_file'
    item = {'name': MODULES[module]['name'], 'entries': ['198.51.100.7'], option: str(state) + '/p\x00'}
    if option == 'entries_file':
        del item['entries']
    proc, result = run_module(module, {'sets': [item], 'state_dir': str(state), 'lockout_protection': False}, tmp_path)
    expected = ['sets[0].%s: the path contains a NUL byte' % option, 'Failed to log to syslog (embedded null character)']
    assert proc.returncode == 1 and any(text in result['msg'] for text in expected), result
    assert not state.exists()


def test_nginx_geo_file_refuses_the_same(tmp_path):
    fifo = tmp_path / 'tier.fifo'
    os.mkfifo(str(fifo))
    for args, message in [({'dest': str(tmp_path / 'x.geo') + '\x00'}, 'dest: the path contains a NUL byte'),
                          ({'dest': str(tmp_path / 'x.geo'), 'validate': False,
                            'tiers': [{'value': 'block', 'entries_files': [str(fifo)]}]}, 'not a regular file')]:
        args = dict({'tiers': [{'value': 'block', 'entries': ['198.51.100.7']}], 'lockout_protection': False}, **args)
        proc, result = run_module('nginx_geo_file', args, tmp_path)
        # ansible-core 2.21 fails on the NUL byte itself, cleanly, while logging the arguments to syslog.
        expected = [message, 'Failed to log to syslog (embedded null character)']
        assert proc.returncode == 1 and any(text in result['msg'] for text in expected), result
        assert not (tmp_path / 'x.geo').exists()


def test_shadow_copy_build_refuses_paths_before_it_builds(tmp_path):
    """A mirror_dir that was a FIFO, a link loop or a name of 300 characters was a traceback after the generation
    was published; now each is refused before any feed is read or anything is written."""
    fifo = tmp_path / 'mirror.fifo'
    os.mkfifo(str(fifo))
    loop = tmp_path / 'loop'
    os.symlink(str(loop), str(loop))
    feed = tmp_path / 'feed.txt'
    feed.write_text('198.51.100.7\n')
    dest = tmp_path / 'copy'
    cases = [
        ({'mirror_dir': str(fifo)}, 'mirror_dir %s exists and is not a directory' % fifo),
        ({'mirror_dir': str(loop)}, 'mirror_dir %s exists and is not a directory' % loop),
        ({'mirror_dir': str(tmp_path / ('m' * 300))}, 'mirror_dir: a name in the path is longer than 255 bytes'),
        ({'mirror_dir': str(tmp_path / 'm') + '/d' * 2000}, 'mirror_dir: the path is longer'),
        ({'dest': str(fifo)}, 'dest %s exists and is not a directory' % fifo),
        ({'dest': str(dest) + '\x00'}, 'dest: the path contains a NUL byte'),
        ({'feeds': [{'name': 'f', 'path': str(feed) + '\x00'}]}, 'feed f: path: the path contains a NUL byte'),
        ({'file_mode': '77777'}, 'file_mode must be an octal mode'),
    ]
    for args, message in cases:
        args = dict({'dest': str(dest), 'feeds': [{'name': 'f', 'path': str(feed)}]}, **args)
        proc, result = run_module('shadow_copy_build', args, tmp_path)
        expected = [message, 'Failed to log to syslog (embedded null character)']
        assert proc.returncode == 1 and any(text in result['msg'] for text in expected), (args, result)
        assert 'Traceback' not in proc.stderr + proc.stdout
        assert not dest.exists()
    proc, result = run_module('shadow_copy_build', {'dest': str(dest), 'feeds': [{'name': 'f', 'path': str(feed)}],
                                                    'mirror_dir': str(tmp_path / 'mirror')}, tmp_path)
    assert result['published'] and result['mirrored'], result


@pytest.mark.parametrize('module', sorted(MODULES))
def test_refused_entries_leave_no_state_directory_and_no_lock(module, tmp_path, netns):
    """Before, a call whose entries were refused made state_dir and left its lock there (47 of 2,516 calls)."""
    state = tmp_path / 'state'
    for entries, message in [(['198.51.100.7', '10.0.0.0/\uff12\uff14'], 'invalid entries, nothing applied'),
                             (['198.51.100.7', 'not-an-address'], 'invalid entries, nothing applied'),
                             (['0.0.0.0/1'], 'broader than the minimum prefix')]:
        args = dict(MODULES[module], entries=entries, state_dir=str(state), lockout_protection=False)
        _proc, result = run_module(module, args, tmp_path, prefix=['ip', 'netns', 'exec', netns.ns])
        expected = [message, 'firewalld is not running'] if module == 'firewalld_ipset_sync' else [message]
        assert result.get('failed') and any(text in result['msg'] for text in expected), (entries, result)
        assert not state.exists(), (entries, sorted(os.listdir(str(state))))
