# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The nginx geo files against a fake runner standing in for the private mount namespace and ``nginx -t``: what is
tested is what goes live, and a file nginx rejects never does.  No root, no nginx: test_backend_nginx.py runs the
real ``nginx -t`` over the role's configuration."""

from __future__ import annotations

import os

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nginx import GeoFile, parse_geo
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import SyncError
from ansible_collections.fleetwall.blocklist.tests.unit.plugins.module_utils._blocklist.host.fake_runner import (
    FakeRunner, fail, ok,
)

UNSHARE = '/usr/bin/unshare'
NGINX = '/usr/sbin/nginx'
EMERG = 'nginx: [emerg] invalid number of arguments in "geo" directive in /etc/nginx/conf.d/blocklist.geo:3\n'
TIERS = [{'value': 'block', 'lines': ['203.0.113.0/24', '2001:db8::1']}, {'value': 'challenge', 'lines': ['198.51.100.7']}]


@pytest.fixture
def fake():
    runner = FakeRunner()
    yield runner
    runner.check()


def geo_file(fake, tmp_path, **kwargs):
    return GeoFile(fake, str(tmp_path / 'conf' / 'blocklist.geo'), nginx_bin=NGINX, nginx_config='/etc/nginx/nginx.conf',
                   unshare_bin=UNSHARE, mount_bin='/usr/bin/mount', **kwargs)


def pairs_shown(call):
    """{live path: candidate path} of one test in the private namespace, from its command line."""
    count = int(call.args[9])
    pairs = call.args[10:10 + 2 * count]
    return dict(zip(pairs[1::2], pairs[0::2]))


def nginx_t(answer, seen):
    """``nginx -t`` that records {live path: the candidate's text} of what it was shown, then answers ``answer``."""
    def answer_test(call):
        assert call.args[-5:] == [NGINX, '-t', '-q', '-c', '/etc/nginx/nginx.conf'], call
        for live, candidate in pairs_shown(call).items():
            # The bind mount needs its target: a placeholder where there was no file yet.
            assert os.path.exists(live)
            with open(candidate) as handle:
                seen[live] = handle.read()
        return answer
    return answer_test


def directory(tmp_path):
    return sorted(os.listdir(str(tmp_path / 'conf')))


def test_what_nginx_tested_is_what_goes_live(fake, tmp_path):
    seen = {}
    fake.on([UNSHARE], nginx_t(ok(), seen))
    geo = geo_file(fake, tmp_path)
    result = geo.sync(TIERS)
    assert result['changed'] and sorted(seen) == sorted([geo.dest, geo.dest_v6])
    for path, text in seen.items():
        assert open(path).read() == text
    v4, v6 = parse_geo(seen[geo.dest], geo.dest), parse_geo(seen[geo.dest_v6], geo.dest_v6, ranges=False)[1]
    assert [value for _start, _end, value in v4[0]] == ['challenge', 'block'] and v6 == {'2001:db8::1': 'block'}
    # No candidate left beside the files; the same again is a no-op without a test.
    assert directory(tmp_path) == ['.blocklist.geo.lock', '.blocklist.geo.record.json', 'blocklist-v6.geo',
                                   'blocklist.geo']
    assert geo_file(fake, tmp_path).sync(TIERS)['changed'] is False and len(fake.calls) == 1


def test_a_file_nginx_rejects_is_not_installed_and_the_old_one_stays(fake, tmp_path):
    fake.on([UNSHARE], ok())
    geo_file(fake, tmp_path).sync(TIERS)
    before = {name: (tmp_path / 'conf' / name).read_bytes() for name in ('blocklist.geo', 'blocklist-v6.geo')}
    fake.on([UNSHARE], fail(EMERG))
    with pytest.raises(SyncError) as failed:
        geo_file(fake, tmp_path).sync([{'value': 'block', 'lines': ['192.0.2.1']}])
    message = str(failed.value)
    assert 'nginx -t rejected the new' in message and 'blocklist.geo' in message and 'the old file stays' in message
    assert 'invalid number of arguments in "geo" directive' in message
    assert {name: (tmp_path / 'conf' / name).read_bytes() for name in before} == before
    assert not [name for name in directory(tmp_path) if '.tmp-' in name]
    # No record of the rejected change: the next run is asked again, and tests again.
    fake.on([UNSHARE], ok())
    assert geo_file(fake, tmp_path).sync([{'value': 'block', 'lines': ['192.0.2.1']}])['changed'] is True


def test_a_first_file_nginx_rejects_leaves_no_file_at_all(fake, tmp_path):
    fake.on([UNSHARE], fail(EMERG))
    with pytest.raises(SyncError, match='there was none before, and there is none now'):
        geo_file(fake, tmp_path).sync(TIERS)
    # Not even the empty placeholders the bind mounts needed.
    assert directory(tmp_path) == ['.blocklist.geo.lock']


def test_candidates_that_could_not_be_mounted_are_reported_as_such(fake, tmp_path):
    fake.on([UNSHARE], fail('mount: /tmp/conf/blocklist.geo: permission denied.\n', rc=97))
    with pytest.raises(SyncError) as failed:
        geo_file(fake, tmp_path).sync(TIERS)
    assert 'could not bind-mount' in str(failed.value) and 'permission denied' in str(failed.value)
    assert 'nginx -t rejected' not in str(failed.value)


def test_a_rejected_file_is_never_reloaded(fake, tmp_path):
    pid_file = tmp_path / 'nginx.pid'
    pid_file.write_text('%d\n' % os.getpid())          # a live process stands in for the master
    fake.on([UNSHARE], fail(EMERG))
    geo = geo_file(fake, tmp_path, reload=True, pid_file=str(pid_file))
    with pytest.raises(SyncError, match='nginx -t rejected'):
        geo.sync(TIERS)
    assert fake.commands([NGINX]) == [] and not os.path.exists(geo.pending_path)


def test_a_failed_reload_says_the_file_is_in_place_and_is_tried_again(fake, tmp_path):
    pid_file = tmp_path / 'nginx.pid'
    pid_file.write_text('%d\n' % os.getpid())
    fake.on([UNSHARE], ok())
    fake.on([NGINX, '-s', 'reload'], fail('nginx: [error] invalid PID number "" in "/run/nginx.pid"\n'))
    geo = geo_file(fake, tmp_path, reload=True, pid_file=str(pid_file))
    with pytest.raises(SyncError) as failed:
        geo.sync(TIERS)
    assert 'is in place, but nginx -s reload failed' in str(failed.value) and 'invalid PID number' in str(failed.value)
    assert os.path.exists(geo.pending_path)
    fake.on([NGINX, '-s', 'reload'], ok())
    again = geo_file(fake, tmp_path, reload=True, pid_file=str(pid_file)).sync(TIERS)
    assert (again['reload_pending'], again['reloaded']) == (True, True) and not os.path.exists(geo.pending_path)


def test_a_refused_change_is_neither_tested_nor_installed(fake, tmp_path):
    fake.on([UNSHARE], ok())
    geo_file(fake, tmp_path).sync(TIERS)
    before = (tmp_path / 'conf' / 'blocklist.geo').read_bytes()
    result = geo_file(fake, tmp_path).sync([{'value': 'block', 'lines': ['192.0.2.1']}],
                                           guard=lambda changes, was, will_be: 'refused: %d of %d' % (changes, was))
    assert result['refused'] == 'refused: 4 of 3' and result['changed'] is False
    assert (tmp_path / 'conf' / 'blocklist.geo').read_bytes() == before and len(fake.calls) == 1


def test_a_file_with_someone_elses_directive_is_reported_and_left(fake, tmp_path):
    (tmp_path / 'conf').mkdir()
    hand_written = 'default block;\n203.0.113.0-203.0.113.255 block;\n'
    (tmp_path / 'conf' / 'blocklist.geo').write_text(hand_written)
    with pytest.raises(SyncError, match=r'blocklist.geo line 1 is not .*\'default block;\'.*left as it is'):
        geo_file(fake, tmp_path).sync(TIERS)
    assert (tmp_path / 'conf' / 'blocklist.geo').read_text() == hand_written and fake.calls == []


def test_the_master_pid_is_read_only_from_a_regular_file(tmp_path):
    """A FIFO named as pid_file blocked the module for ever (found by the hostile-arguments campaign, case 1904);
    /dev/zero would never end. Neither is a master; a pid file of a live process is."""
    fifo = str(tmp_path / 'fifo')
    os.mkfifo(fifo)
    for path in (fifo, '/dev/zero', str(tmp_path)):
        assert GeoFile(None, str(tmp_path / 'blocklist.geo'), pid_file=path)._master_pid() is None
    pid_file = tmp_path / 'nginx.pid'
    pid_file.write_text('%d\n' % os.getpid())
    assert GeoFile(None, str(tmp_path / 'blocklist.geo'), pid_file=str(pid_file))._master_pid() == os.getpid()
