from ansible_collections.fleetwall.blocklist.plugins.filter.metrics_summary import metrics_summary


def test_where_metrics_went_and_where_they_did_not():
    prom = '/var/lib/prometheus/node-exporter/fleetwall.prom'
    hostvars = {
        # written by the sync call itself (its metrics_textfile option)
        'h1': {'ipset_sync_results': {'changed': False, 'metrics': {'written': True, 'path': prom, 'sets': []}}},
        # no node_exporter on this host
        'h2': {'nftables_sync_results': {'metrics': {
            'written': False, 'path': prom, 'sets': [],
            'skipped': 'its directory /var/lib/prometheus/node-exporter does not exist'}}},
        # a web-only host: metrics_textfile's own result
        'h3': {'nginx_metrics_result': {'written': True, 'path': prom, 'sets': []}},
        # metrics off: nothing to say about it
        'h4': {'ipset_sync_results': {'changed': False}},
    }
    registered = ['ipset_sync_results', 'nftables_sync_results', 'nginx_metrics_result']
    line = metrics_summary(hostvars, ['h1', 'h2', 'h3', 'h4'], registered)
    assert line == ('metrics: written on 2 host(s) to %s; NOT written on 1 host(s), its directory '
                    '/var/lib/prometheus/node-exporter does not exist (no node_exporter textfile collector there; '
                    'fleetwall_metrics_create_dir: true creates it, fleetwall_metrics: false stops trying): h2' % prom)
    assert metrics_summary(hostvars, ['h4'], ['ipset_sync_results']) == ''
    # UFW's loop: each item carries the metrics its call wrote.
    looped = {'h5': {'ufw_sync_results': {'results': [{'metrics': {'written': True, 'path': prom}}, {'changed': False}]}}}
    assert metrics_summary(looped, ['h5'], ['ufw_sync_results']) == 'metrics: written on 1 host(s) to %s' % prom
