"""The threat_feed lookup, run by Ansible on the controller against the loopback feed server."""
import json
import os

from .conftest import ansible

from ansible_collections.fleetwall.blocklist.tests.helpers import FEEDS


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


def test_preset_with_key_and_score_through_the_lookup(feeds, tmp_path):
    import feed_server
    key = feed_server.LAB_KEYS['abuseipdb']
    expr = ("query('fleetwall.blocklist.threat_feed', '%s/abuseipdb/api/v2/blacklist', preset='abuseipdb', "
            "api_key='%s', params={'confidenceMinimum': 50}, min_score=97, aggregate=false) | join(' ')"
            % (feeds.url, key))
    run = lookup(expr, tmp_path)
    assert run.rc == 0, run.out
    got = set(json.loads('{' + run.out.split('{', 1)[1].rsplit('}', 1)[0] + '}')['msg'].split())
    with open(os.path.join(FEEDS, 'providers', 'abuseipdb_blacklist.json')) as handle:
        records = json.load(handle)['data']
    expected = {r['ipAddress'] for r in records if r['abuseConfidenceScore'] >= 97}
    assert len(got) == len(expected) and {a for a in got if ':' not in a} == {a for a in expected if ':' not in a}
    wrong = lookup(expr.replace(key, 'bad-key-5555'), tmp_path)
    assert wrong.rc != 0 and 'Your API key is either missing, incorrect, or revoked' in wrong.out
    assert 'bad-key-5555' not in wrong.out
