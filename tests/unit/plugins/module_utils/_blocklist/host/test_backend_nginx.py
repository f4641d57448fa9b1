"""The geo include files, tested with the real nginx -t inside a real (temporary) nginx configuration: the role's
own http snippet (roles/nginx/templates/fleetwall.conf.j2), and real requests over IPv4 and IPv6 (as realip sees
them) to an nginx that serves with it."""
import http.client
import os
import shutil
import socket
import subprocess
import time

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nginx import (
    GeoFile, desired_geo, effective_entries, flatten, parse_geo, range_entries, render_geo, v6_path,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import SyncError
from private_nginx import nginx_conf

NGINX = shutil.which('nginx', path='/usr/sbin:/usr/local/sbin:/usr/bin')
pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason='the bind mount of the test needs root'),
              pytest.mark.skipif(NGINX is None, reason='nginx is not installed (scripts/setup.sh installs it)')]

ROLE = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', '..', '..', 'roles', 'nginx')
# The http snippet of the layout before 0.5.0: one geo block, every entry a CIDR.
OLD_SNIPPET = '''geo $fleetwall_tier {{
    default "";
    include {dest};
}}
'''
SERVER = '''server {{
        listen 127.0.0.1:{port};
        if ($fleetwall_tier = "block") {{ return 444; }}
        if ($fleetwall_tier = "challenge") {{ return 429; }}
        location / {{ return 200 "served"; }}
    }}'''


def run(args):
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def workers_of(master):
    """The pids of ``master``'s child processes (nginx's workers), from /proc."""
    children = []
    for name in os.listdir('/proc'):
        try:
            with open('/proc/%s/stat' % name) as handle:
                if name.isdigit() and int(handle.read().rsplit(')', 1)[1].split()[1]) == master:
                    children.append(int(name))
        except (OSError, IndexError, ValueError):
            continue    # not a process, or gone meanwhile
    return children


def role_snippet(dest, real_ip_from=()):
    """The role's http snippet, rendered from its template with its defaults."""
    import jinja2
    import yaml
    with open(os.path.join(ROLE, 'defaults', 'main.yml')) as handle:
        variables = yaml.safe_load(handle)
    variables.update(ansible_managed='rendered by test_backend_nginx.py', nginx_geo_file=str(dest),
                     nginx_geo_file_v6=v6_path(str(dest)), nginx_real_ip_from=list(real_ip_from))
    with open(os.path.join(ROLE, 'templates', 'fleetwall.conf.j2')) as handle:
        return jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True).from_string(
            handle.read()).render(variables)


def geo_for(tmp_path, old=False, port=None, **kwargs):
    """A GeoFile whose nginx -t reads the role's snippet (``old``: the one CIDR geo block of before 0.5.0)."""
    dest = tmp_path / 'conf' / 'blocklist.geo'
    conf = tmp_path / 'nginx.conf'
    snippet = tmp_path / 'fleetwall.conf'
    snippet.write_text(OLD_SNIPPET.format(dest=dest) if old else role_snippet(dest, ['127.0.0.1'] if port else ()))
    (tmp_path / 'tmp').mkdir(exist_ok=True)
    conf.write_text(nginx_conf(tmp_path, '    include %s;\n    %s\n' % (snippet, SERVER.format(port=port) if port else '')))
    return GeoFile(run, str(dest), nginx_bin=NGINX, nginx_config=str(conf), unshare_bin=shutil.which('unshare'),
                   mount_bin=shutil.which('mount'), **kwargs), dest


def listing(directory):
    return sorted(os.listdir(str(directory)))


FILES = ['.blocklist.geo.lock', '.blocklist.geo.record.json', 'blocklist-v6.geo', 'blocklist.geo']


def tiers(block, challenge=()):
    return [{'value': 'block', 'lines': list(block)}, {'value': 'challenge', 'lines': list(challenge)}]


def test_pure_parts():
    wanted = desired_geo(tiers(['203.0.113.0/24', '2001:db8::1'], ['203.0.113.0/24', '198.51.100.7']))
    assert wanted == {'203.0.113.0/24': 'block', '2001:db8::1': 'block', '198.51.100.7': 'challenge'}
    v4, v6 = render_geo(wanted)
    assert v4.splitlines()[2:] == ['198.51.100.7-198.51.100.7 challenge;', '203.0.113.0-203.0.113.255 block;']
    assert v6.splitlines()[2:] == ['2001:db8::1 block;']
    assert parse_geo(v4, 'x') == ([(3325256711, 3325256711, 'challenge'), (3405803776, 3405804031, 'block')], {})
    assert parse_geo(v6, 'x', ranges=False) == ([], {'2001:db8::1': 'block'})
    with pytest.raises(SyncError, match='not "FIRST-LAST VALUE;" or "CIDR VALUE;"'):
        parse_geo('1.2.3.4 block\n', 'x')
    with pytest.raises(SyncError, match='line 1 is not "CIDR VALUE;"'):
        parse_geo('1.2.3.4-1.2.3.5 block;\n', 'x', ranges=False)       # the IPv6 file has no ranges
    for bad in ('1.2.3.5-1.2.3.4 block;', '1.2.3.4-1.2.3.256 block;', '01.2.3.4-1.2.3.5 block;', '1.2.3.4/24 block;'):
        with pytest.raises(SyncError, match='line 1 is not'):
            parse_geo(bad + '\n', 'x')
    with pytest.raises(SyncError, match='tier value'):
        desired_geo([{'value': 'x; return 200', 'lines': ['1.2.3.4']}])
    with pytest.raises(SyncError, match='invalid entries'):
        desired_geo([{'value': 'block', 'lines': ['1.2.3.4; }']}])


def test_ranges_are_sorted_merged_cut_where_a_narrower_entry_lies_inside_and_never_end_at_the_last_address():
    """The ranges form takes no CIDR, no range that ends at 255.255.255.255, and no wider range after a narrower
    one: the file is sorted, disjoint, with adjacent ranges of one value merged (fewer ranges per /16 are cheaper
    lookups), and a narrower entry of another value inside a wider one wins, as it did in the CIDR form."""
    wanted = desired_geo(tiers(
        ['192.0.2.2', '10.0.0.0/8', '192.0.2.1', '192.0.2.4/30', '10.1.2.0/24', '240.0.0.0/4', '2001:db8::/32'],
        ['10.1.2.3', '192.0.2.3', '10.1.2.0/24']))
    v4, v6 = render_geo(wanted)
    assert v4.splitlines()[2:] == [
        '10.0.0.0-10.1.2.2 block;',             # 10.1.2.0/24 is block (the earlier tier), merged with 10/8
        '10.1.2.3-10.1.2.3 challenge;',         # inside 10.0.0.0/8: cut out of it
        '10.1.2.4-10.255.255.255 block;',
        '192.0.2.1-192.0.2.2 block;',           # adjacent, one value: one range
        '192.0.2.3-192.0.2.3 challenge;',
        '192.0.2.4-192.0.2.7 block;',
        '240.0.0.0-255.255.255.254 block;',     # ends one short of 255.255.255.255 ...
    ]
    assert v6.splitlines()[2:] == ['255.255.255.255 block;', '2001:db8::/32 block;']    # ... which is here
    # Counts and diffs are in entries: the fewest CIDRs that cover what the files map; 240.0.0.0/4 is whole again.
    entries = effective_entries(wanted)
    assert entries['240.0.0.0/4'] == 'block' and '255.255.255.255' not in entries
    assert entries['10.1.2.3'] == 'challenge' and entries['192.0.2.1'] == 'block' and entries['192.0.2.4/30'] == 'block'
    # Read back, the two files give the same entries.
    (spans4, entries4), (spans6, entries6) = parse_geo(v4, 'x'), parse_geo(v6, 'y', ranges=False)
    assert entries4 == {}
    assert dict(range_entries(flatten(spans4 + spans6)), **entries6) == entries
    # Only 255.255.255.255 listed: no range at all, the address in the CIDR file.
    v4, v6 = render_geo({'255.255.255.255': 'block'})
    assert v4.splitlines()[2:] == [] and v6.splitlines()[2:] == ['255.255.255.255 block;']
    # Ranges that overlap without one lying inside the other (a hand-made file) are an error.
    with pytest.raises(SyncError, match='overlaps'):
        flatten([(1, 10, 'block'), (5, 20, 'block')])


def test_nginx_takes_the_ranges_and_answers_by_them_over_ipv4_and_ipv6_through_realip(tmp_path):
    """The role's http snippet with real requests: the client address comes from X-Forwarded-For (realip, trusted
    from 127.0.0.1), so any IPv4 or IPv6 address can be the client. An IPv6 client is looked up as 255.255.255.255 in
    the ranges block, and must get its value from the CIDR block, and "" where it is not listed."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    geo, dest = geo_for(tmp_path, port=port)
    wanted = tiers(['10.0.0.0/8', '240.0.0.0/4', '2001:db8::/32', '198.51.100.0/24'],
                   ['10.1.2.3', '2001:db8::7', '2001:db8:1::/48', '198.51.101.0/24'])
    result = geo.sync(wanted)
    # 10.0.0.0/8 with 10.1.2.3 cut out of it is 24 networks; 198.51.100.0/24 and 198.51.101.0/24 stay two (their
    # values differ); IPv6 stays as listed (the CIDR form keeps nesting).
    assert result['changed'] and result['total'] == len(effective_entries(desired_geo(wanted))) == 31
    assert run([NGINX, '-c', str(tmp_path / 'nginx.conf')])[0] == 0
    try:
        def ask(address):
            deadline = time.monotonic() + 5
            while True:
                connection = http.client.HTTPConnection('127.0.0.1', port, timeout=3)
                try:
                    connection.request('GET', '/', headers={'X-Forwarded-For': address})
                    return connection.getresponse().status
                except (http.client.RemoteDisconnected, ConnectionResetError):
                    return 444
                except ConnectionRefusedError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
                finally:
                    connection.close()
        answers = dict((address, ask(address)) for address in (
            '10.9.9.9', '10.1.2.3', '10.1.2.4', '198.51.100.255', '198.51.101.0', '198.51.102.0', '9.255.255.255',
            '255.255.255.254', '255.255.255.255', '2001:db8::1', '2001:db8::7', '2001:db8:1::1', '2001:db9::1', '::1'))
        assert answers == {
            '10.9.9.9': 444, '10.1.2.3': 429, '10.1.2.4': 444, '198.51.100.255': 444, '198.51.101.0': 429,
            # No client is ever 255.255.255.255: nginx's address parser returns that value for an error, so realip
            # keeps the proxy's address (and TCP never comes from a broadcast address).
            '198.51.102.0': 200, '9.255.255.255': 200, '255.255.255.254': 444, '255.255.255.255': 200,
            '2001:db8::1': 444, '2001:db8::7': 429, '2001:db8:1::1': 429, '2001:db9::1': 200, '::1': 200}
        # An IPv6 client gets "" from the ranges block even where the IPv4 list covers its lookup address's
        # neighbours, and an IPv4 client "" from the CIDR block: nothing leaks from one family to the other.
        geo.reload = True
        geo.pid_file = str(tmp_path / 'nginx.pid')
        old_workers = workers_of(int((tmp_path / 'nginx.pid').read_text()))
        assert old_workers and geo.sync(tiers(['2001:db8::/32']))['reloaded']
        # A reload is graceful: the old workers go on accepting on the shared socket, with the old list, until they
        # have exited, so one answer from a new worker proves nothing (this test failed that way in CI, 2026-12-05).
        # The new list is asked once every old worker is gone, bounded.
        deadline = time.monotonic() + 30
        while any(os.path.exists('/proc/%d' % pid) for pid in old_workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (ask('10.9.9.9'), ask('2001:db8::1'), ask('255.255.255.255')) == (200, 444, 200), \
            (tmp_path / 'error.log').read_text()[-3000:] if (tmp_path / 'error.log').exists() else 'no error.log'
    finally:
        run([NGINX, '-s', 'quit', '-c', str(tmp_path / 'nginx.conf')])


def test_install_noop_change_and_check_mode(tmp_path):
    geo, dest = geo_for(tmp_path)
    r = geo.sync(tiers(['203.0.113.0/24', '2001:db8::1'], ['198.51.100.7']), want_diff=True)
    assert (r['changed'], r['added'], r['removed'], r['total']) == (True, 3, 0, 3)
    assert r['tiers'] == {'block': 2, 'challenge': 1}
    assert '198.51.100.7-198.51.100.7 challenge;' in dest.read_text()
    assert '2001:db8::1 block;' in (dest.parent / 'blocklist-v6.geo').read_text()
    assert r['rewritten'] == [str(dest), str(dest.parent / 'blocklist-v6.geo')]
    assert oct(os.stat(dest).st_mode & 0o777) == '0o644'
    assert run([NGINX, '-t', '-q', '-c', str(tmp_path / 'nginx.conf')])[0] == 0

    r = geo.sync(tiers(['203.0.113.0/24', '2001:db8::1'], ['198.51.100.7']))
    assert (r['changed'], r['added'], r['removed'], r['rewritten']) == (False, 0, 0, [])

    # 198.51.100.7 moves from challenge to block: one line out, one in.
    before = dest.read_text()
    r = geo.sync(tiers(['203.0.113.0/24', '2001:db8::1', '198.51.100.7']), check_mode=True, want_diff=True)
    assert (r['changed'], r['added'], r['removed']) == (True, 1, 1)
    assert '198.51.100.7 block' in r['diff']['after'] and '198.51.100.7 challenge' in r['diff']['before']
    assert dest.read_text() == before
    # Nothing left beside the file.
    assert listing(dest.parent) == FILES   # no candidate left


def test_a_file_nginx_rejects_never_goes_live(tmp_path):
    geo, dest = geo_for(tmp_path)
    geo.sync(tiers(['203.0.113.0/24', '2001:db8::1']))
    # The real configuration reads the file in the CIDR form (the old http snippet), where a range is an error.
    old_layout, _dest = geo_for(tmp_path, old=True)
    dest.write_text('# the CIDR form, and no entry yet\n')
    good, good_v6 = dest.read_text(), (dest.parent / 'blocklist-v6.geo').read_text()
    with pytest.raises(SyncError, match=r'nginx -t rejected the new %s \(with %s\)' % (dest, dest.parent / 'blocklist-v6.geo')):
        old_layout.sync(tiers(['203.0.113.0/24', '2001:db8::2']))
    assert dest.read_text() == good and (dest.parent / 'blocklist-v6.geo').read_text() == good_v6
    assert listing(dest.parent) == FILES   # no candidate left
    # The test ran in a private mount namespace: nothing is mounted here.
    with open('/proc/self/mountinfo') as handle:
        assert str(dest) not in handle.read()


def test_first_install_rejected_leaves_no_file(tmp_path):
    """And says so: the message said "the old file stays" where there was none."""
    geo, dest = geo_for(tmp_path, old=True)
    with pytest.raises(SyncError, match=r'not installed \(there was none before, and there is none now\)'):
        geo.sync(tiers(['203.0.113.0/24']))
    assert listing(dest.parent) == ['.blocklist.geo.lock']


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
    with pytest.raises(SyncError, match='line 2 is not "FIRST-LAST VALUE;" or "CIDR VALUE;"'):
        geo.sync(tiers(['203.0.113.0/24', '198.51.100.7']))
    assert dest.read_text() == text
    # The same in the IPv6 file, where a range is foreign too; neither file is touched.
    dest.write_text('203.0.113.0-203.0.113.255 block;\n')
    dest_v6 = dest.parent / 'blocklist-v6.geo'
    for line in (directive, '198.51.100.7-198.51.100.8 block;'):
        dest_v6.write_text('2001:db8::1 block;\n%s\n' % line)
        with pytest.raises(SyncError, match='%s line 2 is not "CIDR VALUE;"' % dest_v6):
            geo.sync(tiers(['203.0.113.0/24', '198.51.100.7']))
        assert dest.read_text() == '203.0.113.0-203.0.113.255 block;\n'
        assert dest_v6.read_text() == '2001:db8::1 block;\n%s\n' % line


def test_a_killed_runs_candidate_goes_at_the_next_run_even_without_a_change(tmp_path):
    """A SIGKILL at 1M entries left a 21 MB candidate that no later run removed: only a run that installed a
    change did. Check mode looks and removes nothing."""
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import leftover_prefix
    geo, dest = geo_for(tmp_path)
    wanted = tiers(['203.0.113.0/24'])
    geo.sync(wanted)
    candidates = [str(dest.parent / (leftover_prefix(str(dest)) + 'k1ll3d')), str(dest.parent / '.fleetwall-geo-old'),
                  str(dest.parent / (leftover_prefix(v6_path(str(dest))) + 'k1ll3d')),
                  str(dest) + '.bin']       # nginx's cache of the ranges, which it would read in place of the file
    for candidate in candidates:
        with open(candidate, 'w') as handle:
            handle.write('203.0.113.0/24 block;\n' * 1000)
    assert geo.sync(wanted, check_mode=True)['changed'] is False
    assert all(os.path.exists(candidate) for candidate in candidates)
    assert geo.sync(wanted)['changed'] is False
    assert listing(dest.parent) == FILES


def test_change_guard_keeps_the_file(tmp_path):
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import change_refusal
    geo, dest = geo_for(tmp_path)
    old = ['198.51.100.%d' % (2 * i) for i in range(1, 21)]     # none adjacent: 20 entries, 20 ranges
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
    assert forced['changed'] and not forced.get('refused') and parse_geo(dest.read_text(), 'x') == (
        [(3325256706, 3325256706, 'block')], {})


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
    assert parse_geo(dest.read_text(), str(dest))[0] in ([(3325256706, 3325256706, 'block')],
                                                         [(3325256707, 3325256707, 'block')])
    assert listing(dest.parent) == FILES


def test_no_binary_cache_of_a_large_ranges_include(tmp_path):
    """Above 100,000 ranges in one include nginx writes FILE.bin on every parse (our nginx -t too) and later reads
    it in place of a newer file: the role's geo block has a second, empty include, which keeps nginx from writing it;
    a leftover one goes at the next run."""
    assert 'include /dev/null;' in role_snippet('/x/blocklist.geo')
    geo, dest = geo_for(tmp_path)
    many = ['10.%d.%d.%d' % (n >> 15, (n >> 7) & 255, (n << 1) & 255) for n in range(100500)]   # none adjacent
    assert geo.sync(tiers(many))['total'] == 100500
    assert run([NGINX, '-t', '-q', '-c', str(tmp_path / 'nginx.conf')])[0] == 0
    assert listing(dest.parent) == FILES
    # Without the second include, nginx -t makes the cache; the module's own test run must not leave one either.
    snippet = tmp_path / 'fleetwall.conf'
    snippet.write_text(snippet.read_text().replace('include /dev/null;', ''))
    assert run([NGINX, '-t', '-q', '-c', str(tmp_path / 'nginx.conf')])[0] == 0
    assert listing(dest.parent) == sorted(FILES + ['blocklist.geo.bin'])
    assert geo.sync(tiers(many))['changed'] is False and listing(dest.parent) == FILES
    assert geo.sync(tiers(many[1:]))['changed'] is True and listing(dest.parent) == FILES


def test_an_old_cidr_file_is_read_as_ours_and_rewritten_with_the_http_snippet_in_one_step(tmp_path):
    """Before 0.5.0 the one file held every entry as CIDR, read by one geo block without ranges. The run reads it
    (no foreign line), reports no entry added or removed when the tiers are the same, and installs the ranges file,
    the IPv6 file and the new http snippet together: nginx -t passes only with all three."""
    geo, dest = geo_for(tmp_path, old=True)
    dest.parent.mkdir()
    dest.write_text('# Managed by fleetwall.blocklist (nginx_geo_file); every run rewrites this file.\n'
                    '198.51.100.7 challenge;\n203.0.113.0/24 block;\n2001:db8::1 block;\n')
    assert run([NGINX, '-t', '-q', '-c', str(tmp_path / 'nginx.conf')])[0] == 0
    wanted = tiers(['203.0.113.0/24', '2001:db8::1'], ['198.51.100.7'])
    # Without the new snippet the ranges file fails the old geo block's test, and nothing changes.
    with pytest.raises(SyncError, match='nginx -t rejected'):
        geo.sync(wanted)
    snippet = tmp_path / 'fleetwall.conf'
    upgrade, _dest = geo_for(tmp_path, old=True, http_snippet=str(snippet), http_snippet_content=role_snippet(dest))
    first = upgrade.sync(wanted, want_diff=True)
    assert (first['changed'], first['added'], first['removed'], first['total']) == (True, 0, 0, 3)
    assert first['rewritten'] == [str(dest), v6_path(str(dest)), str(snippet)]
    assert dest.read_text().splitlines()[2:] == ['198.51.100.7-198.51.100.7 challenge;', '203.0.113.0-203.0.113.255 block;']
    assert snippet.read_text() == role_snippet(dest)
    assert run([NGINX, '-t', '-q', '-c', str(tmp_path / 'nginx.conf')])[0] == 0
    again = upgrade.sync(wanted)
    assert (again['changed'], again['added'], again['removed'], again['rewritten']) == (False, 0, 0, [])
    assert listing(dest.parent) == FILES


def test_a_run_asked_what_it_wrote_is_a_no_op_from_its_record_and_a_hand_edit_is_found(tmp_path):
    """The record (the source's and each file's sha256) spares a no-op the parse, flatten and render of every
    entry (at a million, 0.03 s in place of 9 s); a change to the files by hand, or to what is asked, is not
    vouched for."""
    geo, dest = geo_for(tmp_path)
    wanted = tiers(['203.0.113.0/24', '198.51.100.7', '2001:db8::1'], ['192.0.2.9'])
    first = geo.sync(wanted)
    assert first['changed'] and first['total'] == 4
    again = geo.sync(wanted, want_diff=True)
    assert (again['changed'], again['added'], again['removed'], again['total']) == (False, 0, 0, 4)
    assert again['tiers'] == first['tiers'] and 'diff' in again
    # A hand edit of the IPv4 file: the record no longer vouches, the run compares and writes the file back.
    text = dest.read_text()
    dest.write_text(text.replace('198.51.100.7-198.51.100.7 block;\n', ''))
    repaired = geo.sync(wanted)
    assert repaired['changed'] and (repaired['added'], repaired['removed']) == (1, 0), repaired
    assert dest.read_text() == text
    # Another source is compared in full.
    changed = geo.sync(tiers(['203.0.113.0/24', '2001:db8::1'], ['192.0.2.9']))
    assert changed['changed'] and changed['removed'] == 1
