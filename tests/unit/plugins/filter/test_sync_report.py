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
