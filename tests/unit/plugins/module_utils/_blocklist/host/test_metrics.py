"""Blocklist metrics from the engine's records and the real rules' counters, in a private network namespace."""
import os

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ipset import IpsetAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nft import NftAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.iptables_rules import ensure_rules
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.metrics import (
    collect, iptables_drops, nft_drops, read_records, render, write_textfile,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.nft_rules import RuleManager
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import (
    Entries, StateStore, sync_set,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='needs root for a network namespace')

CONNECT = ('import socket\n'
           'for _ in range(%d):\n'
           ' s = socket.socket(); s.settimeout(0.3); s.bind((%r, 0))\n'
           ' try: s.connect(("127.0.0.1", 9))\n'
           ' except OSError: pass\n'
           ' s.close()\n')


def sync(adapter, state_dir, backend, entries, path):
    path.write_text(''.join(e + '\n' for e in entries))
    return sync_set(adapter, StateStore(state_dir, backend, adapter.name), Entries.read(str(path)))


def test_entries_and_drops_of_ipset_and_nftables_sets(netns, tmp_path):
    state = str(tmp_path / 'state')
    netns(['ip', 'link', 'set', 'lo', 'up'])
    ipset = IpsetAdapter(netns, 'ipset', 'bl4', family='inet', set_type='hash:net')
    sync(ipset, state, 'ipset', ['127.0.0.2', '198.51.100.0/24'], tmp_path / 'a.txt')
    ensure_rules(netns, ('iptables', 'iptables-restore'), 4, 'bl4', [{'chain': 'INPUT', 'target': 'DROP'}])
    nft = NftAdapter(netns, 'nft', 'fleetwall', 'nb4')
    sync(nft, state, 'nft', ['127.0.0.3', '203.0.113.9', '203.0.113.10'], tmp_path / 'b.txt')
    RuleManager(nft, state).ensure([{'chain': 'input'}])
    # Connections from the listed addresses are dropped (and counted); others are not.
    for source, tries in (('127.0.0.2', 3), ('127.0.0.3', 2), ('127.0.0.4', 2)):
        rc, _out, err = netns(['python3', '-c', CONNECT % (tries, source)])
        assert rc == 0, err

    records = read_records(state)
    assert [(b, s, r['count']) for b, s, r in records] == [('ipset', 'bl4', 2), ('nftables', 'nb4', 3)]
    _rc, saved, _err = netns(['iptables-save', '-c'])
    ipset_drops = iptables_drops(saved, ['bl4'])
    _rc, listed, _err = netns(['nft', '-j', 'list', 'counters', 'table', 'inet', 'fleetwall'])
    nft_counts = nft_drops(listed, ['nb4'])
    # A timed-out connect retransmits its SYN, so at least one packet per attempt.
    assert ipset_drops['bl4'][0] >= 3 and ipset_drops['bl4'][1] >= 3 * 60
    assert nft_counts['nb4'][0] >= 2 and nft_counts['nb4'][1] >= 2 * 60
    # What the modules read (the terse ruleset listing, which skips the elements) gives the same counts.
    collected_records, collected = collect(netns, lambda tool: tool, state)
    assert collected_records == records
    assert collected == {('ipset', 'bl4'): ipset_drops['bl4'], ('nftables', 'nb4'): nft_counts['nb4']}

    text = render(records, {('ipset', 'bl4'): ipset_drops['bl4'], ('nftables', 'nb4'): nft_counts['nb4']},
                  generation=7, now=1795440000)
    lines = text.splitlines()
    assert 'fleetwall_entries{backend="ipset",set="bl4",tier="block"} 2' in lines
    assert 'fleetwall_entries{backend="nftables",set="nb4",tier="block"} 3' in lines
    assert 'fleetwall_dropped_packets_total{backend="ipset",set="bl4"} %d' % ipset_drops['bl4'][0] in lines
    assert 'fleetwall_dropped_bytes_total{backend="nftables",set="nb4"} %d' % nft_counts['nb4'][1] in lines
    assert 'fleetwall_generation 7' in lines and 'fleetwall_last_sync_timestamp_seconds 1795440000' in lines
    assert lines.count('# TYPE fleetwall_dropped_packets_total counter') == 1
    assert sum(1 for line in lines if line.startswith('fleetwall_last_change_timestamp_seconds{')) == 2


def test_untagged_rules_and_other_counters_do_not_count():
    saved = ('*filter\n'
             ':INPUT ACCEPT [10:600]\n'
             '[5:300] -A INPUT -m set --match-set bl4 src -m comment --comment "fleetwall:bl4" -j DROP\n'
             '[2:120] -A INPUT -p tcp -m multiport --dports 22 -m set --match-set bl4 src '
             '-m comment --comment fleetwall:bl4 -j DROP\n'
             '[9:900] -A INPUT -m set --match-set bl4 src -j DROP\n'
             '[7:700] -A INPUT -m comment --comment "fleetwall:other" -j DROP\n'
             'COMMIT\n')
    assert iptables_drops(saved, ['bl4']) == {'bl4': (7, 420)}
    assert nft_drops('not json', ['nb4']) == {}
    assert nft_drops('{"nftables": [{"counter": {"name": "x_drops", "packets": 1, "bytes": 2}}]}', ['nb4']) == {}
    assert 'fleetwall_entries' not in render([], {})


def test_a_missing_textfile_directory_is_said_not_silent(tmp_path):
    # No node_exporter: nothing is written, and the result says why, for the run's summary.
    def no_tool(args, **kwargs):
        raise AssertionError('no records: no tool is asked for counters')

    path = str(tmp_path / 'node-exporter' / 'fleetwall.prom')
    result = write_textfile(no_tool, lambda name: None, path, str(tmp_path / 'state'))
    assert result['written'] is False and result['path'] == path
    assert result['skipped'] == 'its directory %s does not exist' % (tmp_path / 'node-exporter')
    assert not os.path.exists(path)
    created = write_textfile(no_tool, lambda name: None, path, str(tmp_path / 'state'), create_dir=True)
    assert created['written'] is True and 'skipped' not in created and os.path.isfile(path)
    assert 'skipped' not in write_textfile(no_tool, lambda name: None, str(tmp_path / 'nowhere' / 'f.prom'),
                                           str(tmp_path / 'state'), check_mode=True)


def test_the_web_tier_records_and_request_logs_become_metrics(tmp_path):
    """nginx_geo_file keeps a record per tier; its request log's lines are the requests the tier answered, counted
    from where the last count stopped, and a check-mode run does not move the count on."""
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nginx import (
        save_tier_records)

    def no_tool(args, **kwargs):
        raise AssertionError('a web tier has no drop counters to ask a tool for')

    state, logs = tmp_path / 'state', tmp_path / 'log'
    logs.mkdir()
    tiers = [{'value': 'block', 'request_log': str(logs / 'block.log')},
             {'value': 'challenge', 'request_log': str(logs / 'challenge.log')}]
    save_tier_records(str(state), tiers, {'changed': True, 'tiers': {'block': 5, 'challenge': 2}, 'dest': '/x'})
    (logs / 'block.log').write_text('a\nb\nc\n')
    path = str(tmp_path / 'fleetwall.prom')
    first = write_textfile(no_tool, lambda name: None, path, str(state), create_dir=True)
    assert [(s['set'], s['entries'], s.get('requests')) for s in first['sets']] == [('block', 5, 3), ('challenge', 2, 0)]
    text = open(path).read()
    assert 'fleetwall_entries{backend="nginx",set="block",tier="web"} 5\n' in text
    assert 'fleetwall_web_requests_total{backend="nginx",set="block"} 3\n' in text
    assert 'fleetwall_web_requests_total{backend="nginx",set="challenge"} 0\n' in text
    with open(str(logs / 'block.log'), 'a') as handle:
        handle.write('d\n')
    checked = write_textfile(no_tool, lambda name: None, path, str(state), check_mode=True)
    assert [s.get('requests') for s in checked['sets']] == [4, 0]
    assert [s.get('requests') for s in write_textfile(no_tool, lambda name: None, path, str(state))['sets']] == [4, 0]
    # A tier no longer given loses its record, and its metrics go with it.
    save_tier_records(str(state), tiers[:1], {'changed': False, 'tiers': {'block': 5}, 'dest': '/x'})
    assert [name for _b, name, _r in read_records(str(state))] == ['block']


def test_a_tier_record_keeps_its_time_until_its_entries_change(tmp_path, monkeypatch):
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import backend_nginx
    tiers = [{'value': 'block', 'request_log': None}]
    monkeypatch.setattr(backend_nginx.time, 'time', lambda: 1000)
    backend_nginx.save_tier_records(str(tmp_path), tiers, {'changed': True, 'tiers': {'block': 5}})
    monkeypatch.setattr(backend_nginx.time, 'time', lambda: 2000)
    backend_nginx.save_tier_records(str(tmp_path), tiers, {'changed': False, 'tiers': {'block': 5}})
    assert read_records(str(tmp_path))[0][2]['applied_at'] == 1000
    backend_nginx.save_tier_records(str(tmp_path), tiers, {'changed': True, 'tiers': {'block': 6}})
    assert read_records(str(tmp_path))[0][2]['applied_at'] == 2000


def test_two_geo_files_keep_each_other_s_tier_records(tmp_path):
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nginx import (
        save_tier_records)
    save_tier_records(str(tmp_path), [{'value': 'block'}], {'changed': True, 'tiers': {'block': 1}, 'dest': '/a'})
    save_tier_records(str(tmp_path), [{'value': 'other'}], {'changed': True, 'tiers': {'other': 2}, 'dest': '/b'})
    assert sorted(name for _b, name, _r in read_records(str(tmp_path))) == ['block', 'other']
    save_tier_records(str(tmp_path), [], {'changed': True, 'tiers': {}, 'dest': '/b'})
    assert [name for _b, name, _r in read_records(str(tmp_path))] == ['block']
