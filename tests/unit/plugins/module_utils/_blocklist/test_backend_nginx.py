"""The geo include file, tested with the real nginx -t inside a real (temporary) nginx configuration."""
import os
import shutil
import subprocess

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.backend_nginx import (
    GeoFile, desired_geo, parse_geo, render_geo,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import SyncError

NGINX = shutil.which('nginx', path='/usr/sbin:/usr/local/sbin:/usr/bin')
pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason='the bind mount of the test needs root'),
              pytest.mark.skipif(NGINX is None, reason='nginx is not installed (scripts/setup.sh installs it)')]

CONFIG = '''
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ }}
http {{
    access_log off;
    geo $fleetwall_tier {{
        {ranges}
        default "";
        include {dest};
    }}
}}
'''


def run(args):
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def geo_for(tmp_path, ranges=False):
    dest = tmp_path / 'conf' / 'blocklist.geo'
    conf = tmp_path / 'nginx.conf'
    conf.write_text(CONFIG.format(root=tmp_path, dest=dest, ranges='ranges;' if ranges else ''))
    return GeoFile(run, str(dest), nginx_bin=NGINX, nginx_config=str(conf), unshare_bin=shutil.which('unshare'),
                   mount_bin=shutil.which('mount')), dest


def tiers(block, challenge=()):
    return [{'value': 'block', 'lines': list(block)}, {'value': 'challenge', 'lines': list(challenge)}]


def test_pure_parts():
    wanted = desired_geo(tiers(['203.0.113.0/24', '2001:db8::1'], ['203.0.113.0/24', '198.51.100.7']))
    assert wanted == {'203.0.113.0/24': 'block', '2001:db8::1': 'block', '198.51.100.7': 'challenge'}
    text = render_geo(wanted)
    assert text.splitlines()[1:] == ['198.51.100.7 challenge;', '203.0.113.0/24 block;', '2001:db8::1 block;']
    assert parse_geo(text, 'x') == wanted
    with pytest.raises(SyncError, match='not "CIDR VALUE;"'):
        parse_geo('1.2.3.4 block\n', 'x')
    with pytest.raises(SyncError, match='tier value'):
        desired_geo([{'value': 'x; return 200', 'lines': ['1.2.3.4']}])
    with pytest.raises(SyncError, match='invalid entries'):
        desired_geo([{'value': 'block', 'lines': ['1.2.3.4; }']}])


def test_install_noop_change_and_check_mode(tmp_path):
    geo, dest = geo_for(tmp_path)
    r = geo.sync(tiers(['203.0.113.0/24', '2001:db8::1'], ['198.51.100.7']), want_diff=True)
    assert (r['changed'], r['added'], r['removed'], r['total']) == (True, 3, 0, 3)
    assert r['tiers'] == {'block': 2, 'challenge': 1}
    assert '198.51.100.7 challenge;' in dest.read_text()
    assert oct(os.stat(dest).st_mode & 0o777) == '0o644'
    assert run([NGINX, '-t', '-q', '-c', str(tmp_path / 'nginx.conf')])[0] == 0

    r = geo.sync(tiers(['203.0.113.0/24', '2001:db8::1'], ['198.51.100.7']))
    assert (r['changed'], r['added'], r['removed']) == (False, 0, 0)

    # 198.51.100.7 moves from challenge to block: one line out, one in.
    before = dest.read_text()
    r = geo.sync(tiers(['203.0.113.0/24', '2001:db8::1', '198.51.100.7']), check_mode=True, want_diff=True)
    assert (r['changed'], r['added'], r['removed']) == (True, 1, 1)
    assert '198.51.100.7 block' in r['diff']['after'] and '198.51.100.7 challenge' in r['diff']['before']
    assert dest.read_text() == before
    # Nothing left beside the file.
    assert sorted(os.listdir(dest.parent)) == ['.blocklist.geo.lock', 'blocklist.geo']   # no candidate left


def test_a_file_nginx_rejects_never_goes_live(tmp_path):
    geo, dest = geo_for(tmp_path)
    geo.sync(tiers(['203.0.113.0/24']))
    good = dest.read_text()
    # The real configuration reads the file in "ranges" mode, where a CIDR is an error.
    geo_ranges, _dest = geo_for(tmp_path, ranges=True)
    dest.write_text('# ranges mode, and no entry yet\n')
    good = dest.read_text()
    with pytest.raises(SyncError, match='nginx -t rejected'):
        geo_ranges.sync(tiers(['203.0.113.0/24']))
    assert dest.read_text() == good
    assert sorted(os.listdir(dest.parent)) == ['.blocklist.geo.lock', 'blocklist.geo']   # no candidate left
    # The test ran in a private mount namespace: nothing is mounted here.
    with open('/proc/self/mountinfo') as handle:
        assert str(dest) not in handle.read()


def test_first_install_rejected_leaves_no_file(tmp_path):
    """And says so: the message said "the old file stays" where there was none."""
    geo, dest = geo_for(tmp_path, ranges=True)
    with pytest.raises(SyncError, match=r'not installed \(there was none before, and there is none now\)'):
        geo.sync(tiers(['203.0.113.0/24']))
    assert not dest.exists()


def test_malformed_existing_file_is_left_alone(tmp_path):
    geo, dest = geo_for(tmp_path)
    dest.parent.mkdir()
    dest.write_text('203.0.113.0/24 block;\nsomething else\n')
    with pytest.raises(SyncError, match='line 2'):
        geo.sync(tiers(['203.0.113.0/24']))
    assert dest.read_text() == '203.0.113.0/24 block;\nsomething else\n'


@pytest.mark.parametrize('directive', ['default block;', 'proxy 10.92.2.30;', 'delete 127.0.0.0/16;', 'ranges;',
                                       'include /etc/nginx/more.geo;', 'proxy_recursive;'])
def test_a_hand_written_geo_directive_is_reported_and_kept(tmp_path, directive):
    """``default block;`` and ``proxy 10.92.2.30;`` read as the entries "default" and "proxy", which the next run
    listed as removed and dropped: the file is someone else's, and the doc says it is reported and left as it is."""
    geo, dest = geo_for(tmp_path)
    dest.parent.mkdir()
    text = '203.0.113.0/24 block;\n%s\n' % directive
    dest.write_text(text)
    with pytest.raises(SyncError, match='line 2 is not "CIDR VALUE;"'):
        geo.sync(tiers(['203.0.113.0/24', '198.51.100.7']))
    assert dest.read_text() == text


def test_a_killed_runs_candidate_goes_at_the_next_run_even_without_a_change(tmp_path):
    """A SIGKILL at 1M entries left a 21 MB candidate that no later run removed: only a run that installed a
    change did. Check mode looks and removes nothing."""
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import leftover_prefix
    geo, dest = geo_for(tmp_path)
    wanted = tiers(['203.0.113.0/24'])
    geo.sync(wanted)
    candidates = [str(dest.parent / (leftover_prefix(str(dest)) + 'k1ll3d')), str(dest.parent / '.fleetwall-geo-old')]
    for candidate in candidates:
        with open(candidate, 'w') as handle:
            handle.write('203.0.113.0/24 block;\n' * 1000)
    assert geo.sync(wanted, check_mode=True)['changed'] is False
    assert all(os.path.exists(candidate) for candidate in candidates)
    assert geo.sync(wanted)['changed'] is False
    assert sorted(os.listdir(dest.parent)) == ['.blocklist.geo.lock', 'blocklist.geo']


def test_change_guard_keeps_the_file(tmp_path):
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import change_refusal
    geo, dest = geo_for(tmp_path)
    old = ['198.51.100.%d' % i for i in range(1, 21)]
    geo.sync(tiers(old))
    before = dest.read_bytes()

    def guard(changes, count, _after):
        return change_refusal(changes, count, 50, False)
    # 19 of 20 entries gone: 95% of the file, above 50%.
    for check_mode in (True, False):
        result = geo.sync(tiers(old[:1]), check_mode=check_mode, want_diff=True, guard=guard)
        assert result['refused'] and not result['changed']
        assert (result['removed'], result['total']) == (19, 20)
        assert result['diff']['after'].startswith('nginx geo %s: 1 entries' % dest) and dest.read_bytes() == before
    # A small change passes the same guard, and force lifts it.
    assert not geo.sync(tiers(old + ['198.51.100.99']), guard=guard).get('refused')
    forced = geo.sync(tiers(old[:1]), guard=lambda changes, count, _after: change_refusal(changes, count, 50, True))
    assert forced['changed'] and not forced.get('refused') and parse_geo(dest.read_text(), 'x') == {
        '198.51.100.1': 'block'}


def test_a_reload_that_did_not_happen_is_done_by_the_next_run(tmp_path):
    """With reload, a run killed (or whose reload failed) after the rename left a new file that nginx never
    loaded; the marker written before the rename makes the next run reload, though the file is current."""
    dest = tmp_path / 'fleetwall' / 'blocklist.geo'
    pid_file = tmp_path / 'nginx.pid'
    pid_file.write_text('%d\n' % os.getpid())          # a live process stands in for the master
    calls = []

    def run(args, **_kwargs):
        calls.append(args)
        return 0, '', ''
    geo = GeoFile(run, str(dest), nginx_bin='/usr/sbin/nginx', reload=True, pid_file=str(pid_file))
    tiers = [{'value': 'block', 'lines': ['198.51.100.7']}]
    first = geo.sync(tiers)
    assert (first['changed'], first['reloaded']) == (True, True) and calls == [['/usr/sbin/nginx', '-s', 'reload']]
    assert not os.path.exists(geo.pending_path)
    # The state a kill between the rename and the reload leaves: the file is new, the marker still there.
    open(geo.pending_path, 'w').close()
    again = geo.sync(tiers)
    assert (again['changed'], again['reload_pending'], again['reloaded']) == (True, True, True)
    assert len(calls) == 2 and not os.path.exists(geo.pending_path)
    assert geo.sync(tiers)['changed'] is False and len(calls) == 2
    # A failed reload keeps the marker, so the run after it tries again.
    geo.run = lambda args, **_kwargs: (1, '', 'signal process started')
    with pytest.raises(SyncError, match='nginx -s reload failed'):
        geo.sync([{'value': 'block', 'lines': ['198.51.100.8']}])
    assert os.path.exists(geo.pending_path)
    # Where no master runs (nginx -t leaves an empty pid file), nothing is signalled and the marker goes.
    pid_file.write_text('')
    geo.run = run
    assert geo.sync([{'value': 'block', 'lines': ['198.51.100.8']}])['reloaded'] is False
    assert not os.path.exists(geo.pending_path) and len(calls) == 2


def test_two_runs_at_once_wait_for_each_other(tmp_path):
    """Each run removes the candidates a killed run left, so two runs must not overlap: without the lock one
    of them lost its candidate to the other's clean-up ('could not bind-mount ... does not exist')."""
    import threading
    geo, dest = geo_for(tmp_path)
    geo.sync(tiers(['198.51.100.1']))
    outcomes = []

    def one_run(address):
        other, _dest = geo_for(tmp_path)
        try:
            outcomes.append(other.sync(tiers([address]))['changed'])
        except SyncError as exc:
            outcomes.append(str(exc))
    for _round in range(4):
        runs = [threading.Thread(target=one_run, args=('198.51.100.%d' % n,)) for n in (2, 3)]
        for thread in runs:
            thread.start()
        for thread in runs:
            thread.join(60)
    # Every run succeeded (one that finds the file already holding its address changes nothing).
    assert len(outcomes) == 8 and all(isinstance(outcome, bool) for outcome in outcomes), outcomes
    assert outcomes.count(True) >= 5
    assert parse_geo(dest.read_text(), str(dest)) in ({'198.51.100.2': 'block'}, {'198.51.100.3': 'block'})
    assert sorted(os.listdir(dest.parent)) == ['.blocklist.geo.lock', 'blocklist.geo']
