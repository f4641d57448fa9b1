"""Metrics and the fleet report from real counters: the attacker's dropped packets on the lab fleet show
in each host's node_exporter textfile and in the controller's fleet report (JSON and HTML)."""
import json
import os
import re

import pytest

from . import browser
from .conftest import HOSTS, ansible, host_sh, reachable

import fleet

ATTACKER, FRIEND = fleet.ATTACKER, fleet.FRIEND
PROM = '/var/lib/prometheus/node-exporter/fleetwall.prom'


@pytest.fixture(scope='module')
def observed(lab, feeds, tmp_path_factory):
    (feeds.root / 'observed.txt').write_text('%s\n%s\n198.51.100.0/24\n' % (ATTACKER[0], ATTACKER[1]))
    env = {'tmp': tmp_path_factory.mktemp('obs-vars'), 'reports': str(tmp_path_factory.mktemp('obs-reports')),
           'vars': {'shadow_copy_dir': str(tmp_path_factory.mktemp('obs-shadow') / 'copy'),
                    'shadow_copy_feeds': [{'name': 'observed', 'url': feeds.url + '/observed.txt'}]}}
    env['vars']['fleetwall_report_dir'] = env['reports']
    yield env
    run = play(env, nftables_state='absent')
    assert run.rc == 0, run.out[-3000:]


def play(env, **overrides):
    return ansible('ansible-playbook', ['playbooks/blocklist.yml'], extra_vars=dict(env['vars'], **overrides),
                   tmp_path=env['tmp'])


def samples(text):
    """{(metric, labels): value} from a Prometheus textfile."""
    out = {}
    for line in text.splitlines():
        match = re.match(r'^(\w+)(\{[^}]*\})? (\S+)$', line)
        if match:
            out[(match.group(1), match.group(2) or '')] = float(match.group(3))
    return out


def test_drops_show_in_the_metrics_and_the_fleet_report(observed):
    run = play(observed)
    assert run.rc == 0, run.out[-3000:]
    with open(os.path.join(observed['reports'], 'fleet_report.json')) as handle:
        drops_before = dict((row['host'], row['dropped_packets']) for row in json.load(handle)['hosts'])
    attempts = 3
    for host in HOSTS:
        for _attempt in range(attempts):
            assert not reachable('attacker', host, ATTACKER[0], 4)
        assert reachable('friend', host, FRIEND[0], 4)
    run = play(observed)
    assert run.rc == 0 and all(run.changed(host) == 0 for host in HOSTS), run.out[-3000:]
    # The run says where the report and the metrics went.
    assert ('fleet report: %s/fleet_report.html and .json; metrics: written on %d host(s) to %s'
            % (observed['reports'], len(HOSTS), PROM)) in run.out, run.out[-3000:]

    with open(os.path.join(observed['reports'], 'fleet_report.json')) as handle:
        report = json.load(handle)
    generation = report['generation']
    assert generation and [row['host'] for row in report['hosts']] == list(HOSTS)
    for row in report['hosts']:
        rc, text, err = host_sh(row['host'], 'cat %s' % PROM)
        assert rc == 0, err
        metrics = samples(text)
        v4 = '{backend="nftables",set="fleetwall_v4_hosts"}'
        # A connect that times out retransmits its SYN: at least one dropped packet per attempt.
        assert metrics[('fleetwall_dropped_packets_total', v4)] >= attempts
        assert metrics[('fleetwall_entries', '{backend="nftables",set="fleetwall_v4_hosts",tier="block"}')] == 1
        assert metrics[('fleetwall_entries', '{backend="nftables",set="fleetwall_v4_nets",tier="block"}')] == 1
        assert metrics[('fleetwall_generation', '')] == int(generation)
        # The report and the textfile read the same counters in the same run.
        packets = sum(value for (name, labels), value in metrics.items() if name == 'fleetwall_dropped_packets_total')
        assert row['dropped_packets'] == packets and row['dropped_bytes'] >= 40 * packets
        assert (row['state'], row['backend'], row['entries'], row['added'], row['removed']) == \
            ('ok', 'nftables', 3, 0, 0)
    assert report['totals']['dropped_packets'] == sum(row['dropped_packets'] for row in report['hosts'])
    with open(os.path.join(observed['reports'], 'fleet_report.html')) as handle:
        html = handle.read()
    assert html.startswith('<!DOCTYPE html>') and '<svg' in html and '{{' not in html
    assert all('<td>%s</td>' % host in html for host in HOSTS)
    assert '<script' not in html and 'http://' not in html.replace('http://www.w3.org/2000/svg', '')
    observed['drops'] = [(drops_before[row['host']], row['dropped_packets']) for row in report['hosts']]
    observed['in_force'] = report['totals']['in_force']


def test_the_page_draws_the_runs_history_in_a_browser(observed):
    """The two runs above are the history's two points; Chromium renders the drops between them as the bar the
    counters say, and one point per run of the entries in force."""
    if browser.chromium_path() is None:
        pytest.skip('Chromium is not installed (scripts/setup.sh installs it)')
    with open(os.path.join(observed['reports'], 'fleet_history.json')) as handle:
        history = json.load(handle)
    assert len(history['runs']) == 2 and history['runs'][0]['run'] != history['runs'][1]['run']
    with browser.open_page(os.path.join(observed['reports'], 'fleet_report.html')) as page:
        assert page.console_errors() == []
        bars = page.evaluate("""Array.from(document.querySelectorAll('#chart-drops rect.bar'))
            .map(e => [Number(e.getAttribute('data-value')), e.getBoundingClientRect().height])""")
        points = page.evaluate("""Array.from(document.querySelectorAll('#chart-in-force circle.point'))
            .map(e => Number(e.getAttribute('data-value')))""")
        hosts = page.evaluate("Array.from(document.querySelectorAll('div.host-charts')).map(e => e.dataset.host)")
    assert [value for value, _height in bars] == [sum(after - before for before, after in observed['drops'])]
    assert bars[0][1] > 100                                   # the one bar is the chart's tallest: drawn, not flat
    assert points[-1] == observed['in_force'] and len(points) == 2
    assert sorted(hosts) == sorted(HOSTS)


def test_a_host_without_node_exporter_is_named_in_the_run(observed):
    missing = '/var/lib/fleetwall-no-exporter'
    run = play(observed, fleetwall_metrics_textfile=missing + '/fleetwall.prom', fleetwall_metrics_create_dir=False)
    assert run.rc == 0 and all(run.changed(host) == 0 for host in HOSTS), run.out[-3000:]
    assert ('metrics: NOT written on %d host(s), its directory %s does not exist' % (len(HOSTS), missing)) in run.out
    assert 'fleetwall_metrics_create_dir: true creates it' in run.out
    for host in HOSTS:
        assert host_sh(host, 'test -e %s' % missing)[0] != 0
