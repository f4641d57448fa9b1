"""Address-plan feeds through the build: "block everything Spamhaus ASN-DROP lists" as one feed (an ip2asn table
whose asns_from is the real asn_drop.json), its cache, its failures, the provenance's labels and explain.

The expected networks are computed here from the raw files with the ipaddress module.
"""
import datetime
import gzip
import ipaddress
import json
import os
import shutil

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.explain import explain
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import (
    ShadowCopyError, build_shadow_copy,
)
from ansible_collections.fleetwall.blocklist.tests.helpers import FEEDS

T0 = 1790000000


def at(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)


def drop_asns():
    with open(os.path.join(FEEDS, 'spamhaus', 'asn_drop.json')) as handle:
        return {record['asn'] for record in map(json.loads, handle) if 'asn' in record}


def table_networks(asns):
    """{network: 'AS<n> <cc>'} of the fixture table's rows of ``asns``."""
    found = {}
    with open(os.path.join(FEEDS, 'ip2asn-fixture.tsv')) as handle:
        for line in handle:
            start, end, asn, cc = line.rstrip('\n').split('\t')[:4]
            if int(asn) in asns:
                for network in ipaddress.summarize_address_range(ipaddress.ip_address(start),
                                                                 ipaddress.ip_address(end)):
                    found[network] = 'AS%s %s' % (asn, cc)
    return found


def published(root):
    networks = []
    for name in ('blocklist_v4.txt', 'blocklist_v6.txt'):
        with open(os.path.join(root, 'current', name)) as handle:
            networks.extend(ipaddress.ip_network(line.strip()) for line in handle if line.strip())
    return networks


def provenance(root):
    with gzip.open(os.path.join(root, 'current', 'provenance.tsv.gz'), 'rt') as handle:
        lines = handle.read().splitlines()
    return lines[0], {ipaddress.ip_network(line.split('\t')[0]): line.split('\t')[1:] for line in lines[1:]}


@pytest.fixture
def asn_list(tmp_path):
    path = tmp_path / 'asn_drop.json'
    shutil.copy(os.path.join(FEEDS, 'spamhaus', 'asn_drop.json'), str(path))
    return path


def asn_feed(asn_list, **extra):
    return dict({'name': 'asn_drop_networks', 'preset': 'ip2asn', 'path': os.path.join(FEEDS, 'ip2asn-fixture.tsv'),
                 # A file:// URL: fetched as a URL is, so its min_interval holds (a path is read on every run).
                 'asns_from': {'preset': 'spamhaus_asn_drop', 'url': 'file://' + str(asn_list)}}, **extra)


def test_one_feed_blocks_every_network_of_the_asns_spamhaus_lists(tmp_path, asn_list):
    root = str(tmp_path / 'copy')
    result = build_shadow_copy(root, [asn_feed(asn_list, asns=['AS13335'])], now=at(T0))
    assert result['published']
    expected = table_networks(drop_asns() | {13335})
    assert len({label.split()[0] for label in expected.values()}) >= 5, 'the fixture must join several ASNs'
    # What the hosts get is exactly those networks, aggregated; IPv4 and IPv6.
    for version in (4, 6):
        assert [n for n in published(root) if n.version == version] == list(ipaddress.collapse_addresses(
            n for n in expected if n.version == version)) != []
    status = result['feeds'][0]
    assert status['status'] == 'fresh' and status['accepted'] == len(expected)
    assert status['asns_from']['status'] == 'fresh' and status['asns_from']['asns'] == len(drop_asns()) == 201
    assert status['asns_from']['name'] == 'asn_drop_networks.asns'
    # The ASN list has its own cache, beside the table's.
    assert os.path.exists(os.path.join(root, 'feeds', 'asn_drop_networks.asns.body'))
    assert os.path.exists(os.path.join(root, 'feeds', 'asn_drop_networks.body'))
    # The provenance names the AS behind each network, in a fourth column the manifest lists.
    header, rows = provenance(root)
    assert header == '# entry\tfeeds\tbest_score\tlabels'
    assert rows == {network: ['asn_drop_networks', '-', 'asn_drop_networks=' + label]
                    for network, label in expected.items()}
    with open(os.path.join(root, 'current', 'manifest.json')) as handle:
        assert json.load(handle)['provenance']['columns'] == ['entry', 'feeds', 'best_score', 'labels']
    # And explain says it.
    network, label = sorted(expected.items(), key=lambda item: (item[0].version, item[0]))[0]
    answer = explain(root, str(network.network_address + 1))
    assert answer['verdict'] == 'blocked'
    assert answer['listed'][0]['labels'] == {'asn_drop_networks': label}
    shown = network.compressed if network.prefixlen < network.max_prefixlen else str(network.network_address)
    assert 'listed as %s by asn_drop_networks (%s)' % (shown, label) in answer['summary']


def test_a_failing_asn_list_keeps_its_copy_and_without_one_the_feed_fails(tmp_path, asn_list):
    root = str(tmp_path / 'copy')
    build_shadow_copy(root, [asn_feed(asn_list)], now=at(T0))
    before = published(root)
    os.unlink(str(asn_list))
    # Within the list's min_interval (an hour, the preset's) it is not asked at all: its copy answers.
    result = build_shadow_copy(root, [asn_feed(asn_list)], now=at(T0 + 600))
    listed = result['feeds'][0]['asns_from']
    assert listed['status'] == 'cached' and 'min_interval' in listed['reason'] and listed['requests'] == 0
    assert not listed.get('error') and not result['feeds'][0].get('error')
    # The list's min_interval (an hour, the preset's) has passed: it is asked, fails, and its cached copy is used.
    result = build_shadow_copy(root, [asn_feed(asn_list)], now=at(T0 + 7200))
    status = result['feeds'][0]
    assert status['asns_from']['status'] == 'cached' and 'cannot read' in status['asns_from']['error']
    assert status['status'] != 'failed' and 'its ASN list (asns_from)' in status['error']
    assert status['age_seconds'] == 7200         # the older of the two copies: the list's
    assert published(root) == before
    # A new copy with no cached list: the feed fails as a failed fetch does, naming the list.
    other = str(tmp_path / 'other')
    result = build_shadow_copy(other, [asn_feed(asn_list), {'name': 'drop', 'path': os.path.join(
        FEEDS, 'spamhaus', 'drop.txt')}], now=at(T0))
    status = result['feeds'][0]
    assert status['status'] == 'failed' and 'its ASN list (asns_from' in status['error']
    assert [s['name'] for s in result['stale_feeds']] == ['asn_drop_networks']


def test_a_gzipped_table_is_read_as_iptoasn_serves_it(tmp_path, asn_list):
    table = tmp_path / 'ip2asn-combined.tsv.gz'
    with open(os.path.join(FEEDS, 'ip2asn-fixture.tsv'), 'rb') as handle:
        table.write_bytes(gzip.compress(handle.read()))
    root = str(tmp_path / 'copy')
    build_shadow_copy(root, [asn_feed(asn_list, path=str(table))], now=at(T0))
    expected = table_networks(drop_asns())
    assert published(root) == [network for version in (4, 6) for network in ipaddress.collapse_addresses(
        n for n in expected if n.version == version)]
    # A body that expands past max_bytes is a failed fetch, never read on.
    result = build_shadow_copy(str(tmp_path / 'small'), [asn_feed(asn_list, path=str(table), max_bytes=1000)],
                               now=at(T0))
    assert result['feeds'][0]['status'] == 'failed' and 'max_bytes' in result['feeds'][0]['error']


def test_a_country_feed_labels_its_networks_and_other_feeds_keep_three_columns(tmp_path):
    root = str(tmp_path / 'copy')
    feeds = [{'name': 'rir_fixture', 'path': os.path.join(FEEDS, 'delegated-fixture-extended'),
              'format': 'rir_delegated', 'countries': ['ke'], 'tier': 'challenge'},
             {'name': 'drop', 'path': os.path.join(FEEDS, 'spamhaus', 'drop.txt')}]
    build_shadow_copy(root, feeds, now=at(T0))
    header, rows = provenance(root)
    assert header.endswith('\tlabels')
    kenya = {network: row for network, row in rows.items() if row[0] == 'rir_fixture'}
    assert kenya and all(row[2] == 'rir_fixture=KE' for row in kenya.values())
    assert all(row[2] == '-' for network, row in rows.items() if row[0] == 'drop')
    network = sorted(kenya)[0]
    assert 'by rir_fixture (KE)' in ' '.join(explain(root, str(network.network_address))['summary'])
    # Without an address plan the provenance is what it always was.
    plain = str(tmp_path / 'plain')
    build_shadow_copy(plain, feeds[1:], now=at(T0))
    assert provenance(plain)[0] == '# entry\tfeeds\tbest_score'


def test_asns_from_is_checked_before_anything_is_fetched(tmp_path, asn_list):
    root = str(tmp_path / 'copy')
    rir = {'name': 'rir', 'path': os.path.join(FEEDS, 'delegated-fixture-extended'), 'format': 'rir_delegated',
           'asns_from': 'spamhaus_asn_drop'}
    with pytest.raises(ShadowCopyError, match='asns_from selects the rows of an ip2asn table'):
        build_shadow_copy(root, [rir])
    with pytest.raises(ShadowCopyError, match='asns_from: .*unknown preset .no_such_list.'):
        build_shadow_copy(root, [asn_feed(asn_list, asns_from='no_such_list')])
    with pytest.raises(ShadowCopyError, match='an ASN list is read as'):
        build_shadow_copy(root, [asn_feed(asn_list, asns_from={'path': str(asn_list), 'format': 'csv'})])
    with pytest.raises(ShadowCopyError, match='reserved for the caches of ASN lists'):
        build_shadow_copy(root, [{'name': 'x.asns', 'path': str(asn_list)}])
    # A table without any selection fails as a feed, with the reason, and nothing is blocked by it.
    result = build_shadow_copy(root, [{'name': 'everything', 'preset': 'ip2asn',
                                       'path': os.path.join(FEEDS, 'ip2asn-fixture.tsv')},
                                      {'name': 'drop', 'path': os.path.join(FEEDS, 'spamhaus', 'drop.txt')}])
    assert result['feeds'][0]['status'] == 'failed' and 'whole Internet' in result['feeds'][0]['error']
    # A bad AS number of the feed's own beside the list's is said, not dropped.
    result = build_shadow_copy(root, [asn_feed(asn_list, asns=['AS13335', 'ASX']),
                                      {'name': 'drop', 'path': os.path.join(FEEDS, 'spamhaus', 'drop.txt')}])
    assert result['feeds'][0]['status'] == 'failed' and "'ASX' is not an AS number" in result['feeds'][0]['error']
