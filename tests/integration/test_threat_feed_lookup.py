"""The threat_feed lookup, run by Ansible on the controller against the loopback feed server."""
import json
import os

from .conftest import ansible

from conftest import FEEDS


def lookup(expr, tmp_path):
    return ansible('ansible', ['localhost', '-m', 'ansible.builtin.debug', '-a', 'msg={{ %s }}' % expr, '-o'],
                   tmp_path=tmp_path)


def test_ipsum_level_through_the_lookup(feeds, tmp_path):
    run = lookup("query('fleetwall.blocklist.threat_feed', '%s/ipsum/ipsum.txt', format='ipsum', min_count=8, "
                 "aggregate=false) | join(' ')" % feeds.url, tmp_path)
    assert run.rc == 0, run.out
    got = set(json.loads('{' + run.out.split('{', 1)[1].rsplit('}', 1)[0] + '}')['msg'].split())
    with open(os.path.join(FEEDS, 'ipsum', 'levels_8.txt')) as handle:
        assert got == set(handle.read().split())


def test_lookup_error_is_clear(feeds, tmp_path):
    run = lookup("lookup('fleetwall.blocklist.threat_feed', '%s/fault/html/x.txt')" % feeds.url, tmp_path)
    assert run.rc != 0
    assert 'threat_feed: feed' in run.out and 'HTML page' in run.out
    run = lookup("lookup('fleetwall.blocklist.threat_feed', '%s/fault/404/x.txt', retries=0)" % feeds.url, tmp_path)
    assert run.rc != 0 and 'HTTP 404' in run.out
