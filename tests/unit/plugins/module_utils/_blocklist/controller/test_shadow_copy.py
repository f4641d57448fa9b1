import gzip
import json
import os

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (
    ShadowCopyError, build_shadow_copy, verify_generation,
)

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.feeds import parse_feed
from ansible_collections.fleetwall.blocklist.tests.helpers import FEEDS, pushed_generation, tally


@pytest.fixture
def feed_dir(tmp_path):
    d = tmp_path / 'feeds'
    d.mkdir()
    return d


def write(path, lines):
    path.write_text(''.join(line + '\n' for line in lines))


def current(root):
    with open(os.path.join(root, 'current', 'manifest.json')) as handle:
        manifest = json.load(handle)
    files = {}
    for name in ('blocklist_v4.txt', 'blocklist_v6.txt'):
        with open(os.path.join(root, 'current', name)) as handle:
            files[name] = handle.read().split()
    return manifest, files


def test_real_feeds_merge_allowlist_and_refusals(tmp_path):
    root = str(tmp_path / 'copy')
    feeds = [
        {'name': 'firehol', 'path': os.path.join(FEEDS, 'firehol', 'firehol_level1.netset')},
        {'name': 'drop', 'path': os.path.join(FEEDS, 'spamhaus', 'drop.txt')},
        {'name': 'drop6', 'path': os.path.join(FEEDS, 'spamhaus', 'drop_ipv6.txt')},
        {'name': 'ipsum', 'path': os.path.join(FEEDS, 'ipsum', 'ipsum.txt'), 'format': 'ipsum', 'min_count': 3},
    ]
    result = build_shadow_copy(root, feeds, allowlist=['198.18.0.1', '198.18.0.10-198.18.0.99'])
    assert result['published'] and result['generation'] == 1
    manifest, files = current(root)
    v4 = files['blocklist_v4.txt']
    # The allowlist is carved exactly out of FireHOL's 198.18.0.0/15.
    assert '198.18.0.0/15' not in v4
    assert {'198.18.0.0/32', '198.18.0.1'} & set(v4) == set()
    assert '198.18.0.0' in v4 and '198.18.0.2/31' in v4 and '198.18.0.100/30' in v4
    assert manifest['allowlist']['addresses_removed']['v4'] == 91
    assert manifest['files']['blocklist_v6.txt']['entries'] == 51
    assert manifest['refusals']['by_reason']['private 10.0.0.0/8'] == 1
    assert all(f['status'] == 'fresh' for f in manifest['feeds'])
    # Aggregated: no entry is contained in or adjacent to another.
    assert len(v4) == result['entries']['v4'] < 2883 + 989 + 14217


def test_unchanged_input_publishes_nothing_new(tmp_path, feed_dir):
    write(feed_dir / 'a.txt', ['198.51.100.7', '203.0.113.0/24'])
    root = str(tmp_path / 'copy')
    feeds = [{'name': 'a', 'path': str(feed_dir / 'a.txt')}]
    first = build_shadow_copy(root, feeds)
    second = build_shadow_copy(root, feeds)
    assert (first['changed'], second['changed']) == (True, False)
    assert second['generation'] == 1


def test_failed_feed_falls_back_to_last_good_copy(tmp_path, feed_dir):
    write(feed_dir / 'a.txt', ['198.51.100.7'])
    write(feed_dir / 'b.txt', ['203.0.113.9'])
    root = str(tmp_path / 'copy')
    feeds = [{'name': 'a', 'path': str(feed_dir / 'a.txt')}, {'name': 'b', 'path': str(feed_dir / 'b.txt')}]
    build_shadow_copy(root, feeds)
    (feed_dir / 'b.txt').write_text('<!DOCTYPE html><html>captive portal</html>')
    result = build_shadow_copy(root, feeds)
    status = {f['name']: f for f in result['feeds']}
    assert status['b']['status'] == 'cached' and 'HTML' in status['b']['error']
    assert any('feed b: cached' in w for w in result['warnings'])
    _manifest, files = current(root)
    assert files['blocklist_v4.txt'] == ['198.51.100.7', '203.0.113.9']


def test_failed_feed_without_cache_is_reported(tmp_path, feed_dir):
    write(feed_dir / 'a.txt', ['198.51.100.7'])
    root = str(tmp_path / 'copy')
    result = build_shadow_copy(root, [{'name': 'a', 'path': str(feed_dir / 'a.txt')},
                                      {'name': 'gone', 'path': str(feed_dir / 'missing.txt')}])
    status = {f['name']: f for f in result['feeds']}
    assert status['gone']['status'] == 'failed'
    assert result['published']


def test_shrink_guard_and_force(tmp_path, feed_dir):
    write(feed_dir / 'a.txt', ['198.51.100.%d' % i for i in range(0, 256, 2)])
    root = str(tmp_path / 'copy')
    feeds = [{'name': 'a', 'path': str(feed_dir / 'a.txt')}]
    build_shadow_copy(root, feeds)
    write(feed_dir / 'a.txt', ['198.51.100.%d' % i for i in range(0, 256, 8)])
    withheld = build_shadow_copy(root, feeds, max_shrink_percent=50)
    assert not withheld['published'] and '75.0% fewer' in withheld['withheld']
    assert current(root)[0]['generation'] == 1
    forced = build_shadow_copy(root, feeds, max_shrink_percent=50, force=True)
    assert forced['published'] and current(root)[0]['generation'] == 2


def test_empty_never_replaces_non_empty_even_when_forced(tmp_path, feed_dir):
    write(feed_dir / 'a.txt', ['198.51.100.7'])
    root = str(tmp_path / 'copy')
    feeds = [{'name': 'a', 'path': str(feed_dir / 'a.txt'), 'allow_empty': True}]
    build_shadow_copy(root, feeds)
    write(feed_dir / 'a.txt', ['# nothing today'])
    result = build_shadow_copy(root, feeds, force=True)
    assert not result['published'] and 'empty' in result['withheld']
    assert current(root)[1]['blocklist_v4.txt'] == ['198.51.100.7']


def test_zero_address_body_is_a_failed_fetch(tmp_path, feed_dir):
    write(feed_dir / 'a.txt', ['198.51.100.7'])
    root = str(tmp_path / 'copy')
    feeds = [{'name': 'a', 'path': str(feed_dir / 'a.txt')}]
    build_shadow_copy(root, feeds)
    (feed_dir / 'a.txt').write_text('')
    result = build_shadow_copy(root, feeds)
    assert result['feeds'][0]['status'] == 'cached'
    assert 'zero addresses' in result['feeds'][0]['error']


def test_nothing_usable_publishes_nothing(tmp_path):
    result = build_shadow_copy(str(tmp_path / 'copy'), [{'name': 'a', 'path': str(tmp_path / 'nope')}])
    assert not result['published'] and result['generation'] is None
    assert 'no feed' in result['withheld']


def test_check_mode_writes_only_the_preview_and_the_feed_cache(tmp_path, feed_dir):
    write(feed_dir / 'a.txt', ['198.51.100.7'])
    root = tmp_path / 'copy'
    result = build_shadow_copy(str(root), [{'name': 'a', 'path': str(feed_dir / 'a.txt')}], check_mode=True)
    assert result['changed'] and not result['published']
    assert result['path'] == str(root / 'preview')
    assert (root / 'preview' / 'blocklist_v4.txt').read_text() == '198.51.100.7\n'
    assert not (root / 'current').exists() and not os.listdir(root / 'generations')
    # What it fetched is kept, so that the run after a preview does not download it again (the providers' test).
    assert os.listdir(root / 'feeds')


def test_generations_are_pruned(tmp_path, feed_dir):
    root = str(tmp_path / 'copy')
    feeds = [{'name': 'a', 'path': str(feed_dir / 'a.txt')}]
    for i in range(5):
        write(feed_dir / 'a.txt', ['198.51.100.%d' % j for j in range(i + 1)])
        build_shadow_copy(root, feeds, keep_generations=3)
    assert sorted(os.listdir(os.path.join(root, 'generations'))) == ['3', '4', '5']
    assert os.readlink(os.path.join(root, 'current')) == os.path.join('generations', '5')


@pytest.mark.parametrize('kwargs, message', [
    ({'allowlist': ['10.0.0.0/33']}, 'allowlist entry'),
    ({'refused_categories': ['bogus']}, 'unknown refusal categories'),
])
def test_bad_configuration_is_an_error(tmp_path, feed_dir, kwargs, message):
    write(feed_dir / 'a.txt', ['198.51.100.7'])
    with pytest.raises(ShadowCopyError, match=message):
        build_shadow_copy(str(tmp_path / 'c'), [{'name': 'a', 'path': str(feed_dir / 'a.txt')}], **kwargs)


def test_every_bad_allowlist_entry_is_named_at_once(tmp_path, feed_dir):
    """One error a run: three typos took three runs to find."""
    write(feed_dir / 'a.txt', ['198.51.100.7'])
    with pytest.raises(ShadowCopyError) as raised:
        build_shadow_copy(str(tmp_path / 'c'), [{'name': 'a', 'path': str(feed_dir / 'a.txt')}],
                          allowlist=['192.0.2.0/24', '10.0.0.0/33', '198.51.100.300', '203.0.113.0/24', 'office'])
    message = str(raised.value)
    assert message.startswith('3 allowlist entries are invalid: ')
    assert all(repr(bad) in message for bad in ('10.0.0.0/33', '198.51.100.300', 'office')), message
    assert not os.path.exists(str(tmp_path / 'c' / 'current'))


def test_bad_feed_names(tmp_path):
    with pytest.raises(ShadowCopyError, match='not valid'):
        build_shadow_copy(str(tmp_path), [{'name': '../etc', 'path': '/dev/null'}])
    with pytest.raises(ShadowCopyError, match='unique'):
        build_shadow_copy(str(tmp_path), [{'name': 'a', 'path': '/x'}, {'name': 'a', 'path': '/y'}])


CHILD_CHECK = """
import gzip, sys, threading
sys.path.insert(0, %r)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.feeds import parse_feed
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (
    _finish_provenance, _start_provenance, provenance_bytes)
assert threading.active_count() == 1
a = parse_feed(b'198.51.100.7\\n203.0.113.0/24\\n2001:db8:1::/48\\n')
b = parse_feed(b'{"data": [{"ip": "198.51.100.7", "s": 80}, {"ip": "198.51.100.9", "s": 95}]}',
               fmt='json', query='data[].[ip, s]')
pid = _start_provenance(%r, ['a', 'b'], [a, b])
assert pid is not None, 'the fork path was not taken'
assert _finish_provenance(pid, %r) == %r
forked = open(%r, 'rb').read()
assert forked == provenance_bytes(['a', 'b'], [a, b])
sys.stdout.write(gzip.decompress(forked).decode())
"""


def test_provenance_from_the_forked_child_is_what_the_inline_writer_gives(tmp_path):
    # In a fresh interpreter: this one may have idle threads of other tests' servers, and the fork
    # path is (rightly) only taken in a single-threaded process.
    import subprocess
    import sys
    from ansible_collections.fleetwall.blocklist.tests.helpers import COLLECTIONS
    path = str(tmp_path / 'prov.gz')
    proc = subprocess.run([sys.executable, '-c', CHILD_CHECK % (COLLECTIONS, path, path, path, path)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        '# entry\tfeeds\tbest_score', '198.51.100.7\ta,b\t80', '198.51.100.9\tb\t95',
        '203.0.113.0/24\ta\t-', '2001:db8:1::/48\ta\t-']


@pytest.mark.parametrize('chunk', [1, 2, 65536])
def test_provenance_of_one_feed_lists_each_network_once_in_order(monkeypatch, chunk):
    # One unscored feed takes the path without a dictionary: repeats are dropped as they follow their first,
    # also across the chunks the file is written in.
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller import shadow_copy
    monkeypatch.setattr(shadow_copy, 'PROVENANCE_CHUNK', chunk)
    parsed = parse_feed(b'198.51.100.9\n198.51.100.7\n198.51.100.9\n198.51.100.9\n203.0.113.0/24\n198.51.100.7\n'
                        b'2001:db8::1\n2001:db8::1\n')
    lines = gzip.decompress(shadow_copy.provenance_bytes(['only'], [parsed])).decode().splitlines()
    assert lines == ['# entry\tfeeds\tbest_score', '198.51.100.7\tonly\t-', '198.51.100.9\tonly\t-',
                     '203.0.113.0/24\tonly\t-', '2001:db8::1\tonly\t-']
    # A smaller feed beside it (the fleet's bans, say): its keys are slotted into the big feed's, in order.
    bans = parse_feed(b'198.51.100.9\n198.51.100.1\n198.51.100.8\n203.0.113.77\n')
    lines = gzip.decompress(shadow_copy.provenance_bytes(['only', 'bans'], [parsed, bans])).decode().splitlines()
    assert lines == ['# entry\tfeeds\tbest_score', '198.51.100.1\tbans\t-', '198.51.100.7\tonly\t-',
                     '198.51.100.8\tbans\t-', '198.51.100.9\tonly,bans\t-', '203.0.113.0/24\tonly\t-',
                     '203.0.113.77\tbans\t-', '2001:db8::1\tonly\t-']


@pytest.mark.parametrize('tamper', ['append', 'truncate', 'replace', 'remove'])
def test_a_generation_edited_after_publication_fails_verification(tmp_path, tamper):
    root = str(tmp_path / 'copy')
    feed = tmp_path / 'list.txt'
    feed.write_text('198.51.100.7\n2001:db8:1::/48\n')
    build_shadow_copy(root, [{'name': 'list', 'path': str(feed)}])
    generation = os.path.realpath(os.path.join(root, 'current'))
    assert pushed_generation(os.path.join(root, 'current')) == generation
    path = os.path.join(generation, 'blocklist_v4.txt')
    tally('bad inputs tried: tampered generation')
    if tamper == 'remove':
        os.unlink(path)
        message = 'No such file'
    else:
        os.unlink(path)  # the build's file is read-only to others; whoever edits it replaces or rewrites it
        with open(path, 'w') as handle:
            handle.write({'append': '198.51.100.7\n0.0.0.0/1\n8.8.8.8\n', 'truncate': '',
                          'replace': '203.0.113.9\n'}[tamper])
        message = 'blocklist_v4.txt has sha256 [0-9a-f]{64}, but the manifest says [0-9a-f]{64}'
    with pytest.raises(ShadowCopyError, match=message):
        pushed_generation(os.path.join(root, 'current'))
    with pytest.raises(ShadowCopyError, match='nothing pushed'):
        verify_generation(generation)


def test_the_push_refuses_a_file_that_differs_from_its_manifest(tmp_path):
    """The transfer compares the file it sends with the manifest beside it (an edit after the play verified)."""
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (
        manifest_beside, manifest_min_prefix, manifest_sha256)
    root = str(tmp_path / 'copy')
    feed = tmp_path / 'list.txt'
    feed.write_text('198.51.100.7\n')
    build_shadow_copy(root, [{'name': 'list', 'path': str(feed)}])
    path = os.path.join(root, 'current', 'blocklist_v4.txt')
    import hashlib
    assert manifest_sha256(manifest_beside(path), path) == hashlib.sha256(b'198.51.100.7\n').hexdigest()
    assert manifest_beside(str(feed)) is None        # no manifest beside it: not a generation's file
    assert manifest_sha256(None, str(feed)) is None
    # The build's minimum prefixes travel with the generation, for the hosts to repeat the check.
    assert manifest_min_prefix(manifest_beside(path)) == {4: 8, 6: 19}


def test_a_signed_manifest_is_checked_with_the_key(tmp_path):
    """Whoever can write the shadow directory can rewrite a file and its manifest's sha256 alike; without the
    key they cannot make the signature match."""
    import hashlib
    root = str(tmp_path / 'copy')
    feed = tmp_path / 'list.txt'
    feed.write_text('198.51.100.7\n')
    feeds = [{'name': 'list', 'path': str(feed)}]
    key = 'kept-in-the-vault'
    # A key set after the generation was published: the next build signs it, once its files match.
    build_shadow_copy(root, feeds)
    current = os.path.join(root, 'current')
    with pytest.raises(ShadowCopyError, match='has no signature'):
        verify_generation(current, key)
    result = build_shadow_copy(root, feeds, signing_key=key)
    assert result['changed'] is False and 'which had no valid signature' in ' '.join(result['warnings'])
    verify_generation(current, key)
    feed.write_text('198.51.100.8\n')
    assert build_shadow_copy(root, feeds, signing_key=key)['generation'] == 2
    assert pushed_generation(current, key).endswith('generations/2')
    with pytest.raises(ShadowCopyError, match='does not match the manifest'):
        pushed_generation(current, 'another-key')
    # The attacker edits the file and the manifest's sha256 to match: the sha256 check passes, the signature not.
    tally('bad inputs tried: tampered generation')
    path = os.path.join(current, 'blocklist_v4.txt')
    tampered = b'198.51.100.8\n0.0.0.0/1\n'
    os.unlink(path)
    with open(path, 'wb') as handle:
        handle.write(tampered)
    with open(os.path.join(current, 'manifest.json')) as handle:
        manifest = json.load(handle)
    manifest['files']['blocklist_v4.txt']['sha256'] = hashlib.sha256(tampered).hexdigest()
    os.unlink(os.path.join(current, 'manifest.json'))
    with open(os.path.join(current, 'manifest.json'), 'w') as handle:
        json.dump(manifest, handle)
    verify_generation(current)                       # without the key, a consistent forgery passes
    with pytest.raises(ShadowCopyError, match='signature .* does not match the manifest under the signing key'):
        verify_generation(current, key)


def test_a_mirror_carries_a_signature_that_still_verifies(tmp_path):
    root, mirror = str(tmp_path / 'copy'), str(tmp_path / 'mirror')
    feed = tmp_path / 'list.txt'
    feed.write_text('198.51.100.7\n')
    build_shadow_copy(root, [{'name': 'list', 'path': str(feed)}], signing_key='k' * 32, mirror_dir=mirror)
    verify_generation(os.path.join(mirror, 'current'), 'k' * 32)
