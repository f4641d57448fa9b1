"""Feeds scoped to ports: their own files, an admit-only list with the allowlist in it, and the refusals."""
import ipaddress
import json
import os

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller import scopes
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (
    ShadowCopyError, build_shadow_copy, verify_generation,
)


def write(path, lines):
    path.write_text(''.join(line + '\n' for line in lines))
    return str(path)


def published(root, name):
    with open(os.path.join(root, 'current', name)) as handle:
        return handle.read().split()


def manifest(root):
    with open(os.path.join(root, 'current', 'manifest.json')) as handle:
        return json.load(handle)


def covered(entries, address):
    return any(ipaddress.ip_address(address) in ipaddress.ip_network(entry) for entry in entries)


@pytest.fixture
def feeds(tmp_path):
    d = tmp_path / 'feeds'
    d.mkdir()
    return {
        'everywhere': write(d / 'everywhere.txt', ['203.0.113.9']),
        'country': write(d / 'country.txt', ['198.51.100.0/24', '2001:db8:7::/48', '192.0.2.128/25']),
        'admins': write(d / 'admins.txt', ['192.0.2.0/26', '2001:db8:1::/48']),
    }


def test_a_scoped_feed_blocks_on_its_ports_only_in_files_of_its_own(tmp_path, feeds):
    root = str(tmp_path / 'copy')
    result = build_shadow_copy(root, [
        {'name': 'everywhere', 'path': feeds['everywhere']},
        {'name': 'country', 'path': feeds['country'], 'ports': [8443, 22]},
    ], allowlist=['198.51.100.7'])
    assert result['published']
    # Not in the block tier that every backend drops on all traffic.
    assert published(root, 'blocklist_v4.txt') == ['203.0.113.9']
    assert published(root, 'blocklist_v6.txt') == []
    scope_v4 = published(root, 'scope_block_tcp_22_8443_v4.txt')
    assert covered(scope_v4, '198.51.100.200') and covered(scope_v4, '192.0.2.200')
    # The allowlist is subtracted as from any tier.
    assert not covered(scope_v4, '198.51.100.7') and covered(scope_v4, '198.51.100.6')
    assert published(root, 'scope_block_tcp_22_8443_v6.txt') == ['2001:db8:7::/48']
    listed = manifest(root)['scopes']
    assert [(s['name'], s['kind'], s['protocol'], s['ports'], s['feeds']) for s in listed] == [
        ('block_tcp_22_8443', 'block', 'tcp', [22, 8443], ['country'])]
    assert listed[0]['files'] == {'v4': 'scope_block_tcp_22_8443_v4.txt', 'v6': 'scope_block_tcp_22_8443_v6.txt'}
    assert result['scopes'] == listed
    # The scope's files are checked against the manifest like the tiers'.
    verify_generation(os.path.join(root, 'current'))
    with open(os.path.join(root, 'current', 'scope_block_tcp_22_8443_v4.txt'), 'a') as handle:
        handle.write('198.18.0.1\n')
    with pytest.raises(ShadowCopyError, match='changed after the build'):
        verify_generation(os.path.join(root, 'current'))


def test_an_admit_only_list_holds_its_networks_the_allowlist_and_the_unblocks(tmp_path, feeds):
    root = str(tmp_path / 'copy')
    result = build_shadow_copy(root, [
        {'name': 'everywhere', 'path': feeds['everywhere']},
        {'name': 'admins', 'path': feeds['admins'], 'tier': 'admit_only', 'ports': [22]},
    ], allowlist=['203.0.113.50'], operator_request={
        'action': 'unblock', 'entry': '198.51.100.77', 'by': 'test', 'reason': 'a partner office', 'ttl': '1d'})
    assert result['published'], result
    admit_v4 = published(root, 'scope_admit_tcp_22_v4.txt')
    assert covered(admit_v4, '192.0.2.10')
    # Added, not subtracted: the allowlist and an operator's unblock may reach the port.
    assert covered(admit_v4, '203.0.113.50') and covered(admit_v4, '198.51.100.77')
    assert not covered(admit_v4, '192.0.2.100')
    assert published(root, 'scope_admit_tcp_22_v6.txt') == ['2001:db8:1::/48']
    status = {s['name']: s for s in result['feeds']}
    assert status['admins']['scope'] == 'admit_tcp_22' and status['admins']['block'] == 0
    assert status['admins']['scoped'] == 2


def test_the_allow_sources_are_kept_reachable_not_admitted(tmp_path, feeds):
    d = tmp_path / 'cdn'
    d.mkdir()
    root = str(tmp_path / 'copy')
    build_shadow_copy(root, [
        {'name': 'admins', 'path': feeds['admins'], 'tier': 'admit_only', 'ports': [22]},
        {'name': 'country', 'path': feeds['country'], 'ports': [22, 8443]},
    ], allow_feeds=[{'name': 'cdn', 'path': write(d / 'cdn.txt', ['198.51.100.128/25'])}])
    admit_v4 = published(root, 'scope_admit_tcp_22_v4.txt')
    assert not covered(admit_v4, '198.51.100.130')
    block_v4 = published(root, 'scope_block_tcp_22_8443_v4.txt')
    assert covered(block_v4, '198.51.100.1') and not covered(block_v4, '198.51.100.130')


def test_a_copy_without_scopes_keeps_its_content_hash(tmp_path, feeds):
    plain = build_shadow_copy(str(tmp_path / 'a'), [{'name': 'everywhere', 'path': feeds['everywhere']}])
    scoped = build_shadow_copy(str(tmp_path / 'b'), [{'name': 'everywhere', 'path': feeds['everywhere']},
                                                     {'name': 'country', 'path': feeds['country'], 'ports': [22]}])
    assert manifest(str(tmp_path / 'a'))['scopes'] == [] and plain['scopes'] == []
    assert manifest(str(tmp_path / 'a'))['content_sha256'] != manifest(str(tmp_path / 'b'))['content_sha256']
    assert scoped['published']


def test_an_admit_only_list_with_no_networks_is_not_published(tmp_path, feeds):
    empty = write(tmp_path / 'empty.txt', ['# nothing here'])
    root = str(tmp_path / 'copy')
    result = build_shadow_copy(root, [
        {'name': 'everywhere', 'path': feeds['everywhere']},
        {'name': 'admins', 'path': empty, 'tier': 'admit_only', 'ports': [22], 'allow_empty': True},
    ], allowlist=['203.0.113.50'])
    assert not result['published']
    assert 'admit-only list admit_tcp_22 has no networks' in result['withheld']


@pytest.mark.parametrize('feed, message', [
    ({'tier': 'admit_only'}, 'admit_only needs ports'),
    ({'tier': 'challenge', 'ports': [22]}, 'ports do not apply to the challenge tier'),
    ({'ports': [0]}, 'port 0 is not a port number'),
    ({'ports': [65536]}, 'port 65536 is not a port number'),
    ({'ports': [22, 22]}, 'listed twice'),
    ({'ports': list(range(1, 7))}, 'at most 5 ports'),
    ({'ports': [22], 'protocol': 'sctp'}, 'protocol must be one of tcp, udp'),
])
def test_a_scope_that_cannot_be_meant_is_refused_before_anything_is_fetched(tmp_path, feeds, feed, message):
    spec = dict({'name': 'country', 'path': feeds['country']}, **feed)
    with pytest.raises(ShadowCopyError, match=message):
        build_shadow_copy(str(tmp_path / 'copy'), [spec])
    assert not os.path.exists(str(tmp_path / 'copy' / 'feeds' / 'country.body'))


def test_admit_only_lists_that_share_a_port_must_be_one_list(tmp_path, feeds):
    with pytest.raises(ShadowCopyError, match='share a port'):
        build_shadow_copy(str(tmp_path / 'copy'), [
            {'name': 'admins', 'path': feeds['admins'], 'tier': 'admit_only', 'ports': [22]},
            {'name': 'country', 'path': feeds['country'], 'tier': 'admit_only', 'ports': [22, 8443]}])
    # The same ports: one list, the union of both feeds.
    root = str(tmp_path / 'copy2')
    build_shadow_copy(root, [
        {'name': 'admins', 'path': feeds['admins'], 'tier': 'admit_only', 'ports': [22]},
        {'name': 'country', 'path': feeds['country'], 'tier': 'admit_only', 'ports': [22]},
        # udp 22 is another port: no clash.
        {'name': 'everywhere', 'path': feeds['everywhere'], 'tier': 'admit_only', 'ports': [22], 'protocol': 'udp'}])
    admit_v4 = published(root, 'scope_admit_tcp_22_v4.txt')
    assert covered(admit_v4, '192.0.2.10') and covered(admit_v4, '198.51.100.10')
    assert [s['feeds'] for s in manifest(root)['scopes']] == [['admins', 'country'], ['everywhere']]


def test_scope_names_follow_kind_protocol_and_ports():
    scope = scopes.feed_scope({'name': 'x', 'ports': [8443, 22], 'protocol': 'udp'})
    assert scope == ('block', 'udp', (22, 8443))
    assert scopes.file_names(scope) == {4: 'scope_block_udp_22_8443_v4.txt', 6: 'scope_block_udp_22_8443_v6.txt'}
    assert scopes.feed_scope({'name': 'x'}) is None
    assert scopes.feed_scope({'name': 'x', 'tier': 'admit_only', 'ports': [22]}) == ('admit', 'tcp', (22,))


def test_an_admit_only_feed_without_a_copy_withholds_the_generation(tmp_path, feeds):
    """Published without it, its scope would vanish and the hosts would take its set away: the port open to all."""
    root = str(tmp_path / 'copy')
    gone = str(tmp_path / 'never-fetched.txt')
    result = build_shadow_copy(root, [
        {'name': 'everywhere', 'path': feeds['everywhere']},
        {'name': 'admins', 'path': gone, 'tier': 'admit_only', 'ports': [22]}])
    assert not result['published']
    assert result['withheld'] == ('the admit-only feed(s) admins have no usable copy: published without them, their '
                                  'ports would admit everyone')
    # A name five ports long still makes an nft set name within its 63 characters.
    longest = scopes.scope_name(scopes.feed_scope({'name': 'x', 'tier': 'admit_only',
                                                  'ports': [10000, 20000, 30000, 40000, 50000]}))
    assert len('fleetwall_scope_%s_v4' % longest) <= 63
