from ansible_collections.fleetwall.blocklist.plugins.filter.sync_report import sync_report


def test_one_line_per_host_with_failures_and_missing_hosts():
    hostvars = {
        'h1': {'r': {'results': [{'name': 'fw4', 'changed': True, 'added': 3, 'removed': 1, 'total': 10},
                                 {'name': 'fw6', 'changed': False, 'added': 0, 'removed': 0, 'total': 2}]}},
        'h2': {'r': {'results': [{'name': 'fw4', 'failed': True, 'msg': 'invalid entries'}]}},
        'h3': {},
    }
    assert sync_report(hostvars, ['h1', 'h2', 'h3', 'h4'], 'r') == [
        'h1: changed  fw4 +3 -1 =10 | fw6 +0 -0 =2',
        'h2: FAILED  fw4 FAILED: invalid entries',
        'h3: no result (failed, unreachable or not run)',
        'h4: no result (failed, unreachable or not run)',
    ]


def test_hosts_on_different_backends_share_one_report():
    from ansible_collections.fleetwall.blocklist.plugins.filter.sync_report import sync_report
    hostvars = {
        'a': {'ipset_sync_results': {'results': [{'name': 'fleetwall-v4', 'changed': False, 'added': 0,
                                                  'removed': 0, 'total': 5}]}},
        'b': {'nftables_sync_results': {'results': [{'name': 'fleetwall_v4_hosts', 'changed': True, 'added': 2,
                                                     'removed': 1, 'total': 6}]}},
        'c': {},
    }
    assert sync_report(hostvars, ['a', 'b', 'c'], ['ipset_sync_results', 'nftables_sync_results']) == [
        'a: ok  fleetwall-v4 +0 -0 =5',
        'b: changed  fleetwall_v4_hosts +2 -1 =6',
        'c: no result (failed, unreachable or not run)',
    ]
