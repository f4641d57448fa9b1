from ansible_collections.fleetwall.blocklist.plugins.filter.fleet_report import fleet_report


def test_rows_and_totals_from_results_and_metrics():
    h1_results = [
        {'name': 'v4_hosts', 'changed': True, 'added': 3, 'removed': 1, 'total': 10, 'verified': False},
        {'name': 'v4_nets', 'changed': True, 'added': 0, 'removed': 2, 'total': 5, 'verified': True}]
    h1_metrics = [
        {'backend': 'nftables', 'set': 'v4_hosts', 'entries': 10, 'dropped_packets': 7, 'dropped_bytes': 420},
        {'backend': 'nftables', 'set': 'v4_nets', 'entries': 5, 'dropped_packets': 1, 'dropped_bytes': 60}]
    hostvars = {
        'h1': {'nftables_sync_results': {'results': h1_results},
               'fleetwall_metrics_result': {'sets': h1_metrics}},
        'h2': {'ufw_sync_results': {'results': [{'name': 'ufw', 'changed': False, 'added': 0, 'removed': 0,
                                                 'total': 4}]},
               'fleetwall_metrics_result': {'sets': [{'backend': 'ufw', 'set': 'ufw', 'entries': 4}]}},
        'h3': {'ipset_sync_results': {'results': [{'name': 'v4', 'changed': False, 'added': 0, 'removed': 50,
                                                   'total': 60, 'refused': 'too large'}]}},
        'h4': {'ipset_sync_results': {'results': [{'name': 'v4', 'failed': True, 'msg': 'boom'}]}},
    }
    names = ['ipset_sync_results', 'nftables_sync_results', 'ufw_sync_results']
    report = fleet_report(hostvars, ['h1', 'h2', 'h3', 'h4', 'h5'], names, metrics='fleetwall_metrics_result',
                          generation=12)
    rows = {row['host']: row for row in report['hosts']}
    assert rows['h1'] == {'host': 'h1', 'state': 'changed', 'reason': None, 'backend': 'nftables', 'generation': 12,
                          'entries': 15, 'added': 3, 'removed': 3, 'drift': 2, 'dropped_packets': 8,
                          'dropped_bytes': 480, 'drops_by_backend': {'nftables': 8}}
    assert (rows['h2']['backend'], rows['h2']['dropped_packets'], rows['h2']['state']) == ('ufw', None, 'ok')
    assert (rows['h3']['state'], rows['h3']['removed'], rows['h3']['entries']) == ('REFUSED', 0, 60)
    assert (rows['h4']['state'], rows['h4']['entries'], rows['h4']['reason']) == ('FAILED', 0, 'boom')
    assert (rows['h5']['state'], rows['h5']['backend']) == ('no result', None)
    assert rows['h5']['reason'].startswith('no result: the host failed or was unreachable before its sync')
    assert rows['h3']['reason'] == 'too large'
    assert 'feeds' not in report
    # With the build's feed statuses: each feed's health, a copy past its max_age (or none) marked stale.
    statuses = [{'name': 'a', 'status': 'cached', 'age_seconds': 200000, 'max_age': 172800, 'error': 'HTTP 500',
                 'fetched_at': '2026-11-30T00:00:00+00:00', 'invalid_samples': ['x']},
                {'name': 'b', 'status': 'fresh', 'age_seconds': 0, 'max_age': 172800},
                {'name': 'c', 'status': 'failed', 'age_seconds': None, 'max_age': 0}]
    feeds = fleet_report(hostvars, ['h1'], names, metrics='fleetwall_metrics_result', generation=12,
                         feeds=statuses)['feeds']
    assert [(f['name'], f['stale']) for f in feeds] == [('a', True), ('b', False), ('c', False)]
    assert 'invalid_samples' not in feeds[0] and feeds[0]['error'] == 'HTTP 500'
    assert report['totals'] == {'hosts': 5, 'entries': 79, 'added': 3, 'removed': 3, 'drift': 2,
                                'dropped_packets': 8, 'dropped_bytes': 480}


def test_drops_from_the_metrics_the_sync_call_wrote():
    # Without a metrics_textfile task, the drops come from the sync call's own metrics.
    metrics = {'written': True, 'sets': [
        {'backend': 'nftables', 'set': 'v4_hosts', 'entries': 10, 'dropped_packets': 7, 'dropped_bytes': 420}]}
    hostvars = {'h1': {'nftables_sync_results': {
        'changed': False, 'added': 0, 'removed': 0, 'total': 10, 'metrics': metrics,
        'sets': [{'name': 'v4_hosts', 'changed': False, 'added': 0, 'removed': 0, 'total': 10}]}}}
    report = fleet_report(hostvars, ['h1'], ['nftables_sync_results'])
    assert report['hosts'][0]['dropped_packets'] == 7 and report['hosts'][0]['dropped_bytes'] == 420
    assert report['hosts'][0]['entries'] == 10 and report['hosts'][0]['state'] == 'ok'


def test_web_requests_drops_per_backend_bans_and_tiers():
    """The web tier's requests answered, each backend's drops (XDP beside nftables), the bans fail2ban has in force
    by the day they began, and the generation's entries per tier."""
    sets = [{'backend': 'nftables', 'set': 'v4', 'entries': 3, 'dropped_packets': 5, 'dropped_bytes': 300},
            {'backend': 'xdp', 'set': 'v4', 'entries': 3, 'dropped_packets': 70, 'dropped_bytes': 4200},
            {'backend': 'nginx', 'set': 'block', 'entries': 3, 'requests': 9},
            {'backend': 'nginx', 'set': 'challenge', 'entries': 1, 'requests': 2}]
    hostvars = {'h1': {'nftables_sync_results': {'results': [{'name': 'v4', 'changed': False, 'total': 3}]},
                       'nginx_metrics_result': {'sets': sets}}}
    day_one, day_two = 1796083200, 1796169600          # 2026-12-01 and 2026-12-02, 00:00 UTC
    bans = {'h1': {'available': True, 'bans': [{'address': '192.0.2.1', 'jail': 'sshd', 'banned_at': day_one + 5},
                                               {'address': '192.0.2.2', 'jail': 'sshd', 'banned_at': day_two + 5},
                                               {'address': '192.0.2.3', 'jail': 'sshd', 'banned_at': day_two + 9},
                                               {'address': '192.0.2.4', 'jail': 'sshd', 'banned_at': None}]},
            'h2': {'available': False, 'bans': []}}
    report = fleet_report(hostvars, ['h1', 'h2'], ['nftables_sync_results'], generation=3,
                          entries={'v4': 7, 'v6': 1, 'challenge_v4': 2, 'challenge_v6': 0}, bans=bans)
    h1, h2 = report['hosts']
    assert h1['drops_by_backend'] == {'nftables': 5, 'xdp': 70} and h1['dropped_packets'] == 75
    assert h1['web_requests'] == {'block': 9, 'challenge': 2}
    assert h1['bans_in_force'] == 4 and h1['bans_by_day'] == {'2026-12-01': 1, '2026-12-02': 2}
    assert 'bans_in_force' not in h2 and 'web_requests' not in h2          # nothing read there: nothing claimed
    assert report['tiers'] == {'block': 8, 'challenge': 2}


def test_allow_sources_are_reported_with_their_health_and_what_they_kept_reachable():
    statuses = [{'name': 'cloudflare_v4', 'status': 'cached', 'age_seconds': 400000, 'max_age': 259200,
                 'error': "HTML page ('Just a moment...')", 'addresses_removed': 256, 'kind': 'allow'},
                {'name': 'aws', 'status': 'fresh', 'age_seconds': 0, 'max_age': 172800, 'addresses_removed': 0}]
    report = fleet_report({}, [], [], allow_feeds=statuses)
    assert [(row['name'], row['stale'], row['addresses_removed']) for row in report['allow_feeds']] == [
        ('cloudflare_v4', True, 256), ('aws', False, 0)]
    assert 'allow_feeds' not in fleet_report({}, [], [])


def test_a_ban_time_no_clock_can_have_is_counted_in_force_on_no_day():
    bans = {'h1': {'available': True, 'bans': [{'address': '192.0.2.1', 'jail': 'sshd', 'banned_at': 253402300800},
                                               {'address': '192.0.2.2', 'jail': 'sshd', 'banned_at': 1796083205}]}}
    row = fleet_report({}, ['h1'], [], bans=bans)['hosts'][0]
    assert row['bans_in_force'] == 2 and row['bans_by_day'] == {'2026-12-01': 1}
