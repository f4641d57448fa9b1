"""The presets for the ranges clouds and CDNs publish (allow sources): resolved and parsed against the real files in
tests/data/feeds/allow (AWS, Google, Cloudflare), and against fixtures in the published shape for Google Cloud's
cloud.json and GitHub's meta. Every expectation is computed here with json, str.split and ipaddress, not by the
code under test."""
import ipaddress
import json
import os
import re

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.addresses import (
    V4, V6, count_networks, merge_keys,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.feeds import (
    FeedError, parse_feed,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.presets import (
    PRESETS, STRUCTURE_KEYS, PresetError, resolve_feed,
)
from ansible_collections.fleetwall.blocklist.tests.helpers import FEEDS, ROOT

ALLOW = os.path.join(FEEDS, 'allow')
ALLOW_PRESETS = ('cloudflare', 'aws', 'google', 'google_cloud', 'github_meta')


def read(name):
    with open(os.path.join(ALLOW, name), 'rb') as handle:
        return handle.read()


def parse(feed, body):
    """``body`` parsed as the build parses a resolved feed's."""
    return parse_feed(body, name=feed['name'], fmt=feed.get('format') or 'auto', query=feed.get('query'),
                      field=feed.get('field'))


def networks(result):
    """The parse result's networks, decoded here from its keys (start << 8 | host bits), in order, duplicates kept."""
    found = []
    for version, bits in ((V4, 32), (V6, 128)):
        for key in result.keys[version]:
            found.append(ipaddress.ip_network(((key >> 8), bits - (key & 0xff))))
    return found


def in_order(found):
    """Networks of both families in one order (ipaddress refuses to compare an IPv4 network with an IPv6 one)."""
    return sorted(found, key=lambda network: (network.version, network))


def expected(texts):
    return in_order(ipaddress.ip_network(text) for text in texts)


# -- Cloudflare ---------------------------------------------------------------------------------------------------

def test_cloudflare_reads_each_family_from_its_own_url_without_a_trailing_newline():
    v4_feed, secrets = resolve_feed({'name': 'cloudflare_v4', 'preset': 'cloudflare'})
    v6_feed, _s = resolve_feed({'name': 'cloudflare_v6', 'preset': 'cloudflare', 'mode': 'v6'})
    assert (v4_feed['url'], v6_feed['url']) == ('https://www.cloudflare.com/ips-v4', 'https://www.cloudflare.com/ips-v6')
    assert v4_feed['format'] == v6_feed['format'] == 'plain'
    assert v4_feed['min_interval'] >= 86400 and v4_feed['max_age'] > v4_feed['min_interval']
    assert v4_feed['headers'] == {} and secrets == []
    for feed, name, count in ((v4_feed, 'cloudflare-ips-v4', 15), (v6_feed, 'cloudflare-ips-v6', 7)):
        body = read(name)
        assert not body.endswith(b'\n')       # as Cloudflare serves them
        listed = expected(body.decode().split())
        assert len(listed) == count
        result = parse(feed, body)
        assert (result.accepted, result.invalid, result.refused_total) == (count, 0, 0)
        assert in_order(networks(result)) == listed
    assert {n.version for n in networks(parse(v4_feed, read('cloudflare-ips-v4')))} == {4}
    assert {n.version for n in networks(parse(v6_feed, read('cloudflare-ips-v6')))} == {6}


def test_cloudflare_joined_files_are_not_what_the_preset_reads():
    # `cat ips-v4 ips-v6`: the last IPv4 network and the first IPv6 one share a line. One bad line of 21 is under
    # the invalid threshold, so such a body would silently lose both: each mode is its own URL, one file each.
    joined = read('cloudflare-ips-v4') + read('cloudflare-ips-v6')
    assert b'131.0.72.0/222400:cb00::/32' in joined
    result = parse_feed(joined, name='joined', fmt='plain')
    assert (result.accepted, result.invalid) == (15 + 7 - 2, 1)
    lost = {ipaddress.ip_network('131.0.72.0/22'), ipaddress.ip_network('2400:cb00::/32')}
    assert not lost & set(networks(result))
    modes = PRESETS['cloudflare']['modes']
    assert set(modes) == {'v6'} and modes['v6']['url'] != PRESETS['cloudflare']['url']


def test_cloudflare_challenge_page_is_a_failed_fetch_not_a_list():
    feed, _s = resolve_feed({'name': 'cloudflare_v4', 'preset': 'cloudflare'})
    page = (b'<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head>'
            b'<body><noscript>Enable JavaScript and cookies to continue</noscript></body></html>')
    with pytest.raises(FeedError, match='HTML page'):
        parse(feed, page)
    assert 'Just a moment' in PRESETS['cloudflare']['quota']


# -- AWS ----------------------------------------------------------------------------------------------------------

AWS_URL = 'https://ip-ranges.amazonaws.com/ip-ranges.json'


@pytest.fixture(scope='module')
def aws():
    body = read('aws-ip-ranges.json')
    return body, json.loads(body)


def test_aws_reads_every_prefix_of_both_families_and_the_duplicates_merge(aws):
    body, document = aws
    feed, secrets = resolve_feed({'name': 'aws', 'preset': 'aws'})
    assert feed['url'] == AWS_URL and feed['format'] == 'json' and secrets == []
    assert 'filters' not in feed and '{filter}' not in feed['query']
    v4 = [record['ip_prefix'] for record in document['prefixes']]
    v6 = [record['ipv6_prefix'] for record in document['ipv6_prefixes']]
    assert (len(v4), len(v6)) == (10666, 6160)      # as tests/data/feeds/README.md says
    result = parse(feed, body)
    assert (len(result.keys[V4]), len(result.keys[V6]), result.invalid, result.refused_total) == (10666, 6160, 0, 0)
    assert in_order(networks(result)) == expected(v4 + v6)
    # The same prefix once per service (AMAZON and EC2, ...): distinct networks, then what the build's merge makes.
    distinct_v4 = {ipaddress.ip_network(text) for text in v4}
    distinct_v6 = {ipaddress.ip_network(text) for text in v6}
    assert (len(distinct_v4), len(distinct_v6)) == (7904, 3108)
    assert (len(set(result.keys[V4])), len(set(result.keys[V6]))) == (7904, 3108)
    collapsed_v4 = list(ipaddress.collapse_addresses(distinct_v4))
    collapsed_v6 = list(ipaddress.collapse_addresses(distinct_v6))
    assert (len(collapsed_v4), len(collapsed_v6)) == (1752, 2107)
    assert count_networks(merge_keys(list(result.keys[V4]), V4), 32) == len(collapsed_v4)
    assert count_networks(merge_keys(list(result.keys[V6]), V6), 128) == len(collapsed_v6)


@pytest.mark.parametrize('params', [
    {'services': ['CLOUDFRONT', 'ROUTE53_HEALTHCHECKS']},
    {'services': 'CLOUDFRONT_ORIGIN_FACING'},
    {'regions': ['us-east-1', 'GLOBAL']},
    {'services': ['CLOUDFRONT', 'ROUTE53_HEALTHCHECKS'], 'regions': ['us-east-1', 'GLOBAL']},
    {'services': ['EC2'], 'regions': 'eu-west-1'},
], ids=['edge', 'one-service', 'regions', 'edge-in-regions', 'ec2-eu-west-1'])
def test_aws_filters_keep_exactly_the_records_asked_for_and_are_not_sent(aws, params):
    body, document = aws
    feed, secrets = resolve_feed({'name': 'aws_edge', 'preset': 'aws', 'params': params})
    assert feed['url'] == AWS_URL and secrets == []
    assert 'params' not in feed and 'filters' not in feed

    def wanted(record):
        return all(record[field] in ([value] if isinstance(value, str) else value)
                   for field, value in (('service', params.get('services')), ('region', params.get('regions')))
                   if value is not None)

    records = ([r['ip_prefix'] for r in document['prefixes'] if wanted(r)]
               + [r['ipv6_prefix'] for r in document['ipv6_prefixes'] if wanted(r)])
    assert records
    result = parse(feed, body)
    assert in_order(networks(result)) == expected(records) and result.invalid == 0


def test_aws_edge_filter_counts(aws):
    body, document = aws
    feed, _s = resolve_feed({'name': 'aws_edge', 'preset': 'aws',
                             'params': {'services': ['CLOUDFRONT', 'ROUTE53_HEALTHCHECKS']}})
    edge = {'CLOUDFRONT', 'ROUTE53_HEALTHCHECKS'}
    v4 = [r['ip_prefix'] for r in document['prefixes'] if r['service'] in edge]
    v6 = [r['ipv6_prefix'] for r in document['ipv6_prefixes'] if r['service'] in edge]
    assert (len(v4), len(v6)) == (211 + 31, 32 + 26)
    result = parse(feed, body)
    assert (len(result.keys[V4]), len(result.keys[V6])) == (len(v4), len(v6))


def test_filters_go_into_the_query_quoted():
    feed, _s = resolve_feed({'name': 'aws_edge', 'preset': 'aws',
                             'params': {'services': ['CLOUDFRONT', 'ROUTE53_HEALTHCHECKS'], 'regions': 'us-east-1'}})
    condition = '?contains(`["CLOUDFRONT","ROUTE53_HEALTHCHECKS"]`, "service") && contains(`["us-east-1"]`, "region")'
    assert feed['query'] == '[prefixes[%s].ip_prefix, ipv6_prefixes[%s].ipv6_prefix][]' % (condition, condition)
    # A null drops a filter, as it drops a query parameter.
    feed, _s = resolve_feed({'name': 'aws', 'preset': 'aws', 'params': {'services': None}})
    assert feed['query'] == '[prefixes[*].ip_prefix, ipv6_prefixes[*].ipv6_prefix][]' and feed['url'] == AWS_URL
    # Any other param is still a query parameter.
    feed, _s = resolve_feed({'name': 'aws', 'preset': 'aws', 'params': {'services': 'S3', 'v': 2}})
    assert feed['url'] == AWS_URL + '?v=2'


BAD_VALUES = [
    'CLOUDFRONT`]`, service) || contains(`[', 'EC2"', 'EC2\\', 'EC2`', 'EC2,S3', 'EC2 ', ' EC2', 'EC2  S3', 'EC2\n',
    'S\u00e9', '', [], ['EC2', 3], ['EC2', None], {'EC2': 1}, 7, 'x' * 101,
]


@pytest.mark.parametrize('value', BAD_VALUES, ids=range(len(BAD_VALUES)))
def test_a_filter_value_that_is_not_a_name_is_refused(value):
    with pytest.raises(PresetError, match=r'feed aws_edge: params\.services'):
        resolve_feed({'name': 'aws_edge', 'preset': 'aws', 'params': {'services': value}})
    with pytest.raises(PresetError, match=r'params\.scopes'):
        resolve_feed({'name': 'gcp', 'preset': 'google_cloud', 'params': {'scopes': value}})


def test_filters_need_the_placeholder_and_a_local_copy_takes_them_too(aws):
    body, document = aws
    with pytest.raises(PresetError, match=r'no \{filter\}'):
        resolve_feed({'name': 'aws', 'preset': 'aws', 'query': 'prefixes[].ip_prefix', 'params': {'services': 'S3'}})
    # The operator's own query without filters is theirs.
    feed, _s = resolve_feed({'name': 'aws', 'preset': 'aws', 'query': 'prefixes[].ip_prefix'})
    assert feed['query'] == 'prefixes[].ip_prefix'
    # A mirrored copy read from a path: the filters shape the query, nothing is left for a URL.
    feed, _s = resolve_feed({'name': 'aws', 'preset': 'aws', 'path': os.path.join(ALLOW, 'aws-ip-ranges.json'),
                             'params': {'services': 'ROUTE53_HEALTHCHECKS'}})
    assert 'url' not in feed
    records = ([r['ip_prefix'] for r in document['prefixes'] if r['service'] == 'ROUTE53_HEALTHCHECKS']
               + [r['ipv6_prefix'] for r in document['ipv6_prefixes'] if r['service'] == 'ROUTE53_HEALTHCHECKS'])
    assert in_order(networks(parse(feed, body))) == expected(records)


def test_operator_presets_may_filter_too_and_their_fields_are_checked():
    mine = {'ranges': {'url': 'https://ranges.example.net/r.json', 'format': 'json',
                       'query': 'values[{filter}].cidr', 'filters': {'zones': 'zone'}}}
    feed, _s = resolve_feed({'name': 'r', 'preset': 'ranges', 'params': {'zones': ['a', 'b']}}, mine)
    assert feed['query'] == 'values[?contains(`["a","b"]`, "zone")].cidr'
    assert feed['url'] == 'https://ranges.example.net/r.json'
    mine['ranges']['filters'] = {'zones': 'zone") || `true'}
    with pytest.raises(PresetError, match=r'the field filters\.zones'):
        resolve_feed({'name': 'r', 'preset': 'ranges', 'params': {'zones': 'a'}}, mine)
    mine['ranges']['filters'] = ['zone']
    with pytest.raises(PresetError, match='must be a mapping'):
        resolve_feed({'name': 'r', 'preset': 'ranges'}, mine)


# -- Google -------------------------------------------------------------------------------------------------------

def test_google_reads_every_ipv4_and_ipv6_prefix():
    body = read('goog.json')
    document = json.loads(body)
    feed, _s = resolve_feed({'name': 'google', 'preset': 'google'})
    assert feed['url'] == 'https://www.gstatic.com/ipranges/goog.json' and feed['format'] == 'json'
    v4 = [r['ipv4Prefix'] for r in document['prefixes'] if 'ipv4Prefix' in r]
    v6 = [r['ipv6Prefix'] for r in document['prefixes'] if 'ipv6Prefix' in r]
    assert (len(v4), len(v6)) == (73, 11)
    result = parse(feed, body)
    assert (len(result.keys[V4]), len(result.keys[V6]), result.invalid, result.refused_total) == (73, 11, 0, 0)
    assert in_order(networks(result)) == expected(v4 + v6)


SCOPES = ('us-east1', 'europe-west1', 'asia-east1', 'global')


@pytest.fixture(scope='module')
def cloud_json():
    """cloud.json as Google documents it: goog.json's shape with "service" and "scope" on every prefix (built here
    from the real goog.json; the scopes are dealt out in turn)."""
    document = json.loads(read('goog.json'))
    for index, record in enumerate(document['prefixes']):
        record.update(service='Google Cloud', scope=SCOPES[index % len(SCOPES)])
    return document


@pytest.mark.parametrize('params', [
    {},
    {'scopes': 'us-east1'},
    {'scopes': ['europe-west1', 'asia-east1']},
    {'services': 'Google Cloud'},
    {'services': ['Google Cloud'], 'scopes': ['global']},
])
def test_google_cloud_filters_by_scope_and_service(cloud_json, params):
    feed, _s = resolve_feed({'name': 'gcp', 'preset': 'google_cloud', 'params': params})
    assert feed['url'] == 'https://www.gstatic.com/ipranges/cloud.json'

    def wanted(record):
        return all(record[field] in ([value] if isinstance(value, str) else value)
                   for field, value in (('scope', params.get('scopes')), ('service', params.get('services')))
                   if value is not None)

    records = [r.get('ipv4Prefix') or r['ipv6Prefix'] for r in cloud_json['prefixes'] if wanted(r)]
    assert records
    result = parse(feed, json.dumps(cloud_json, indent=2).encode())
    assert in_order(networks(result)) == expected(records) and result.invalid == 0
    if not params:
        assert len(records) == 73 + 11


def test_google_cloud_filter_matching_nothing_parses_to_nothing(cloud_json):
    # A misspelt scope keeps nothing: the build then treats the feed as failed (zero addresses), not as empty.
    feed, _s = resolve_feed({'name': 'gcp', 'preset': 'google_cloud', 'params': {'scopes': 'us-east-1'}})
    assert parse(feed, json.dumps(cloud_json).encode()).accepted == 0


# -- GitHub meta --------------------------------------------------------------------------------------------------

META = {
    'verifiable_password_authentication': False,
    'ssh_key_fingerprints': {'SHA256_ED25519': '+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU'},
    'ssh_keys': ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'],
    'hooks': ['192.30.252.0/22', '185.199.108.0/22', '140.82.112.0/20', '143.55.64.0/20',
              '2a0a:a440::/29', '2606:50c0::/32'],
    'web': ['192.30.252.0/22', '140.82.112.0/20', '20.201.28.151/32', '2a0a:a440::/29'],
    'api': ['192.30.252.0/22', '20.201.28.148/32', '2606:50c0::/32'],
    'git': ['192.30.252.0/22', '20.201.28.151/32', '2a0a:a440::/29'],
    'actions': ['4.148.0.0/16', '13.64.0.0/16', '20.1.128.0/17', '2603:1030:f00::/40'],
    'pages': ['192.30.252.153/32', '185.199.108.153/32', '2606:50c0:8000::153/128'],
    'importer': ['52.23.85.212/32', '34.206.246.37/32'],
    'dependabot': ['18.213.123.130/32', '3.217.79.163/32'],
    'domains': {'website': ['*.github.com', 'github.com'], 'packages': ['ghcr.io']},
}


@pytest.mark.parametrize('keys', [None, 'web', ['hooks', 'actions'], ['pages', 'importer', 'dependabot', 'git']])
def test_github_meta_keeps_the_lists_asked_for(keys):
    spec = {'name': 'github', 'preset': 'github_meta'}
    if keys is not None:
        spec['params'] = {'keys': keys}
    feed, secrets = resolve_feed(spec)
    assert feed['url'] == 'https://api.github.com/meta' and secrets == []
    assert feed['headers'] == {'Accept': 'application/vnd.github+json'} and feed['format'] == 'json'
    assert 'selects' not in feed
    chosen = ['hooks'] if keys is None else [keys] if isinstance(keys, str) else keys
    records = [cidr for key in chosen for cidr in META[key]]
    result = parse(feed, json.dumps(META).encode())
    assert in_order(networks(result)) == expected(records) and result.invalid == 0
    assert result.keys[V4] and result.keys[V6]


def test_github_meta_keys_are_checked_and_not_sent():
    feed, _s = resolve_feed({'name': 'github', 'preset': 'github_meta', 'params': {'keys': ['hooks', 'actions']}})
    assert feed['query'] == '["hooks", "actions"][]' and '?' not in feed['url']
    for bad in ('hooks][0', 'hooks"', '', [], ['hooks', 2], 'hooks, web'):
        with pytest.raises(PresetError, match=r'feed github: params\.keys'):
            resolve_feed({'name': 'github', 'preset': 'github_meta', 'params': {'keys': bad}})
    assert '60 requests an hour' in PRESETS['github_meta']['quota']


# -- all five -----------------------------------------------------------------------------------------------------

def test_structure_keys_stay_out_of_the_resolved_feed():
    assert {'filters', 'selects'} <= set(STRUCTURE_KEYS)
    for name in ALLOW_PRESETS:
        feed, _s = resolve_feed({'name': 'f', 'preset': name})
        assert not set(STRUCTURE_KEYS) - {'url', 'headers'} & set(feed), name
        assert '{' not in feed['url'] and '?' not in feed['url'], name
        assert feed['min_interval'] >= 6 * 3600 and PRESETS[name]['quota'], name


def test_every_preset_has_a_page_and_a_row_in_the_presets_readme():
    with open(os.path.join(ROOT, 'docs', 'presets', 'README.md')) as handle:
        readme = handle.read()
    listed = re.findall(r'^\| \[(\w+)\]\((\w+)\.md\) \|', readme, re.MULTILINE)
    assert [name for name, _page in listed] == list(PRESETS)
    for name, page in listed:
        assert name == page
        with open(os.path.join(ROOT, 'docs', 'presets', page + '.md')) as handle:
            assert handle.readline().startswith('# Preset `%s`' % name)
    for name in ALLOW_PRESETS:
        with open(os.path.join(ROOT, 'docs', 'presets', name + '.md')) as handle:
            assert 'shadow_copy_allow_feeds' in handle.read(), name
