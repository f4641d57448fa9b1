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


def test_refused_sets_and_the_fleet_summary():
    from ansible_collections.fleetwall.blocklist.plugins.filter.sync_summary import sync_summary
    hostvars = {'h%d' % i: {'r': {'results': [{'name': 'v4', 'changed': False, 'added': 0, 'removed': 0,
                                               'total': 5}]}} for i in range(1, 21)}
    hostvars['h1'] = {'r': {'results': [{'name': 'v4', 'changed': True, 'added': 3, 'removed': 1, 'total': 7}]}}
    hostvars['h2'] = {'r': {'results': [{'name': 'v4', 'changed': True, 'added': 2, 'removed': 0, 'total': 7},
                                        {'name': 'v6', 'changed': False, 'added': 0, 'removed': 40, 'total': 50,
                                         'refused': 'the change ... above max_change_percent 10'}]}}
    hostvars['h3'] = {'r': {'results': [{'name': 'v4', 'failed': True, 'msg': 'boom'}]}}
    del hostvars['h4']
    hosts = ['h%d' % i for i in range(1, 21)]
    assert sync_report(hostvars, ['h2'], 'r') == ['h2: REFUSED  v4 +2 -0 =7 | v6 REFUSED +0 -40 =50']
    assert sync_summary(hostvars, hosts, 'r') == (
        'fleet: 20 hosts, 1 to change (+5 -1 entries), 16 unchanged, '
        '1 REFUSED a change above max_change_percent: h2, 1 FAILED: h3, 1 without a result: h4')
    many = {h: {} for h in hosts}
    assert sync_summary(many, hosts, 'r').endswith('20 without a result: h1, h2, h3, h4, h5, h6, h7, h8, h9, h10 '
                                                   'and 10 more')


def test_a_host_that_went_unreachable_is_not_unchanged():
    from ansible_collections.fleetwall.blocklist.plugins.filter.sync_summary import sync_summary
    # What Ansible registers for a host that went unreachable during the task.
    hostvars = {'h1': {'r': {'results': [{'name': 'v4', 'changed': True, 'added': 2, 'removed': 0, 'total': 2}]}},
                'h3': {'r': {'unreachable': True, 'changed': False, 'msg': 'Failed to connect to the host via ssh'}}}
    assert sync_summary(hostvars, ['h1', 'h3'], 'r') == (
        'fleet: 2 hosts, 1 to change (+2 -0 entries), 0 unchanged, 1 UNREACHABLE: h3')
    assert sync_report(hostvars, ['h3'], 'r') == ['h3: UNREACHABLE  ? UNREACHABLE: Failed to connect to the host via ssh']
