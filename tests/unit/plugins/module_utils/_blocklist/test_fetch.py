"""The fetcher against a real HTTP server on loopback (lab/feed_server.py)."""
import gzip

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.fetch import FetchError, fetch, redact_url

import feed_server


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp('feeds')
    (root / 'list.txt').write_bytes(b'198.51.100.7\n')
    (root / 'list.txt.gz').write_bytes(gzip.compress(b'198.51.100.8\n'))
    srv = feed_server.serve(str(root))
    yield 'http://127.0.0.1:%d' % srv.server_address[1], srv
    srv.shutdown()


def test_plain_and_gzip(server):
    url, _srv = server
    assert fetch(url=url + '/list.txt') == b'198.51.100.7\n'
    assert fetch(url=url + '/list.txt.gz') == b'198.51.100.8\n'


def test_server_error_is_retried_with_backoff(server):
    url, srv = server
    sleeps = []
    before = len(srv.hits)
    with pytest.raises(FetchError, match=r'HTTP 500'):
        fetch(url=url + '/fault/500/list.txt', retries=2, sleep=sleeps.append)
    assert len(srv.hits) - before == 3
    assert sleeps == [1.0, 2.0]


def test_client_errors_are_not_retried(server):
    url, srv = server
    before = len(srv.hits)
    with pytest.raises(FetchError, match=r'authentication failed \(HTTP 401\)'):
        fetch(url=url + '/fault/401/list.txt?key=SECRET', retries=3, sleep=lambda s: None)
    with pytest.raises(FetchError, match=r'HTTP 404'):
        fetch(url=url + '/fault/404/list.txt', retries=3, sleep=lambda s: None)
    assert len(srv.hits) - before == 2


def test_timeout_is_bounded(server):
    url, _srv = server
    with pytest.raises(FetchError, match='after 1 attempts'):
        fetch(url=url + '/fault/slow/list.txt', timeout=1, retries=0)


def test_unreachable_port_fails_cleanly():
    with pytest.raises(FetchError):
        fetch(url='http://127.0.0.1:9/list.txt', timeout=2, retries=1, sleep=lambda s: None)


def test_file_sources(tmp_path):
    path = tmp_path / 'f.txt'
    path.write_bytes(b'198.51.100.9\n')
    assert fetch(path=str(path)) == b'198.51.100.9\n'
    assert fetch(url='file://' + str(path)) == b'198.51.100.9\n'
    with pytest.raises(FetchError, match='cannot read'):
        fetch(path=str(tmp_path / 'missing'))


def test_error_messages_never_show_the_query_or_credentials():
    assert redact_url('https://user:pw@feeds.example.internal:8443/v2/list?key=SECRET') == \
        'https://feeds.example.internal:8443/v2/list?REDACTED'
    with pytest.raises(FetchError) as exc:
        fetch(url='http://user:SECRET@127.0.0.1:9/x?key=SECRET', timeout=1, retries=0)
    assert 'SECRET' not in str(exc.value)
