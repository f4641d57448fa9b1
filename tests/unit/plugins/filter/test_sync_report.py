from ansible_collections.fleetwall.blocklist.plugins.filter.sync_report import sync_report
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.module_support import combine_set_results


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


def test_one_call_with_sets_reads_like_a_loop():
    # The roles sync every set of a host in one call (sets); its per-set results count as a loop's items.
    per_set = [{'name': 'fw4', 'changed': True, 'added': 3, 'removed': 1, 'total': 10},
               {'name': 'fw6', 'changed': False, 'added': 0, 'removed': 0, 'total': 2}]
    looped = {'h1': {'r': {'results': per_set}}}
    combined = {'h1': {'r': combine_set_results([dict(item) for item in per_set])}}
    assert sync_report(combined, ['h1'], 'r') == sync_report(looped, ['h1'], 'r') == [
        'h1: changed  fw4 +3 -1 =10 | fw6 +0 -0 =2']
    # A call that failed before any set ran (a missing tool) still names its failure.
    broken = {'h1': {'r': {'failed': True, 'msg': 'nft not found', 'changed': False}}}
    assert sync_report(broken, ['h1'], 'r') == ['h1: FAILED  ? FAILED: nft not found']


def test_combined_result_sums_and_names_the_failed_sets():
    combined = combine_set_results([
        {'name': 'a', 'changed': True, 'added': 2, 'removed': 1, 'total': 5,
         'diff': {'before': 'a: 4\n', 'after': 'a: 5\n'}},
        {'name': 'b', 'changed': False, 'failed': True, 'msg': 'lock held'},
        {'name': 'c', 'changed': False, 'upload_required': True}])
    assert combined['changed'] is True and combined['failed'] is True and combined['upload_required'] is True
    assert (combined['added'], combined['removed'], combined['total']) == (2, 1, 5)
    assert combined['msg'] == '1 of 3 sets failed: b: lock held'
    assert combined['diff'] == {'before': 'a: 4\n', 'after': 'a: 5\n'}
    assert [r['name'] for r in combined['sets']] == ['a', 'b', 'c']
    assert combine_set_results([{'name': 'a', 'changed': False, 'added': 0, 'removed': 0, 'total': 3}]) == {
        'changed': False, 'added': 0, 'removed': 0, 'total': 3,
        'sets': [{'name': 'a', 'changed': False, 'added': 0, 'removed': 0, 'total': 3}]}


def test_each_host_line_ends_with_the_seconds_its_calls_took():
    # UFW's loop: two calls, each with its own account of its time; the line gives their sum.
    looped = {'h1': {'r': {'results': [
        {'name': 'v4', 'changed': True, 'added': 1, 'removed': 0, 'total': 1, 'elapsed': 0.25},
        {'name': 'v6', 'changed': False, 'added': 0, 'removed': 0, 'total': 0, 'elapsed': 0.5}]}},
        'h2': {'r': {'name': 'v4', 'changed': False, 'added': 0, 'removed': 0, 'total': 1}}}
    assert sync_report(looped, ['h1', 'h2'], 'r') == ['h1: changed  v4 +1 -0 =1 | v6 +0 -0 =0  (0.75 s)',
                                                      'h2: ok  v4 +0 -0 =1']
