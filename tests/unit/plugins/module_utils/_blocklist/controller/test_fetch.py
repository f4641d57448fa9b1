"""The fetcher against a real HTTP server on loopback (lab/feed_server.py)."""
import gzip
import os
import time

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.fetch import FetchError, fetch, redact_url

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


def test_file_sources_gzip_by_magic_bytes(tmp_path):
    # docs/feeds.md: a gzip body is recognised by its magic bytes, whatever the file is called.
    path = tmp_path / 'list.txt'
    path.write_bytes(gzip.compress(b'198.51.100.9\n'))
    assert fetch(path=str(path)) == b'198.51.100.9\n'
    assert fetch(url='file://' + str(path)) == b'198.51.100.9\n'


def test_file_sources_refuse_what_is_not_a_regular_file(tmp_path):
    # A FIFO held every run for ever; a NUL byte was a ValueError traceback.
    fifo = tmp_path / 'feed.fifo'
    os.mkfifo(str(fifo))
    for source in ({'path': str(fifo)}, {'url': 'file://' + str(fifo)}, {'path': str(tmp_path)},
                   {'path': '/dev/zero'}):
        with pytest.raises(FetchError, match='not a regular file'):
            fetch(**source)
    with pytest.raises(FetchError, match='NUL byte'):
        fetch(path=str(tmp_path / 'a\x00b'))


def test_error_messages_never_show_the_query_or_credentials():
    assert redact_url('https://user:pw@feeds.example.internal:8443/v2/list?key=SECRET') == \
        'https://feeds.example.internal:8443/v2/list?REDACTED'
    with pytest.raises(FetchError) as exc:
        fetch(url='http://user:SECRET@127.0.0.1:9/x?key=SECRET', timeout=1, retries=0)
    assert 'SECRET' not in str(exc.value)


# -- provider behaviour, against the emulating feed server (lab/feed_server.py) ---------------

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.fetch import (  # noqa: E402
    fetch_response, retry_after_seconds,
)
from ansible_collections.fleetwall.blocklist.tests.helpers import FEEDS  # noqa: E402

ABUSE_KEY = feed_server.LAB_KEYS['abuseipdb']


@pytest.fixture
def provider():
    srv = feed_server.serve(FEEDS)
    yield 'http://127.0.0.1:%d' % srv.server_address[1], srv.state
    srv.shutdown()


def test_auth_failure_carries_the_providers_message_and_never_the_key(provider):
    url, state = provider
    with pytest.raises(FetchError) as exc:
        fetch_response(url=url + '/abuseipdb/api/v2/blacklist?confidenceMinimum=90',
                       headers={'Key': 'wrong-key-9999'}, secrets=['wrong-key-9999'], sleep=lambda s: None)
    assert exc.value.kind == 'auth' and exc.value.status == 401
    assert 'authentication failed (HTTP 401): Authentication failed. Your API key is either missing' in str(exc.value)
    assert 'wrong-key-9999' not in str(exc.value)
    assert state.count('/abuseipdb') == 1  # not retried


def test_quota_exhausted_reports_when_to_come_back_without_waiting(provider):
    url, state = provider
    state.quota['abuseipdb'] = 2
    target = url + '/abuseipdb/api/v2/blacklist?confidenceMinimum=90'
    for _attempt in range(2):
        assert fetch_response(url=target, headers={'Key': ABUSE_KEY}).body.startswith(b'{"meta"')
    sleeps = []
    with pytest.raises(FetchError) as exc:
        fetch_response(url=target, headers={'Key': ABUSE_KEY}, max_wait=60, sleep=sleeps.append)
    assert exc.value.kind == 'rate_limited'
    assert 'Daily rate limit of 2 requests exceeded' in str(exc.value)
    # The provider's reset is a day away: nothing waited, nothing retried.
    assert sleeps == [] and state.count('/abuseipdb') == 3
    assert 86000 < exc.value.retry_at - time.time() <= 86401


def test_short_rate_limit_is_waited_out(provider):
    url, state = provider
    state.faults['/bearer/'] = '429'
    state.fault_times['/bearer/'] = 1
    state.retry_after = 2
    sleeps = []
    body = fetch_response(url=url + '/bearer/lists/lab.txt', max_wait=5, sleep=sleeps.append,
                          headers={'Authorization': 'Bearer ' + feed_server.LAB_KEYS['bearer']}).body
    assert sleeps == [2] and body.count(b'\n') == 400


def test_conditional_get_saves_the_download(provider):
    url, state = provider
    first = fetch_response(url=url + '/spamhaus/drop.txt')
    assert first.etag and first.last_modified and len(first.body) > 10000
    again = fetch_response(url=url + '/spamhaus/drop.txt', etag=first.etag, last_modified=first.last_modified)
    assert again.not_modified and again.body is None
    assert [s for p, s, _h in state.requests] == [200, 304]
    # The body came gzip-compressed on the wire and was decompressed here.
    assert state.requests[0][2].get('Accept-Encoding') == 'gzip'


def test_truncated_body_is_retried_then_reported(provider):
    url, state = provider
    state.faults['/ipsum/'] = 'truncated'
    with pytest.raises(FetchError, match=r'body truncated') as exc:
        fetch_response(url=url + '/ipsum/ipsum.txt', retries=1, sleep=lambda s: None)
    assert exc.value.kind == 'truncated' and state.count('/ipsum/') == 2


@pytest.mark.parametrize('headers, expected', [
    ({'Retry-After': '120'}, 120),
    ({'Retry-After': 'Wed, 21 Oct 2015 07:28:00 GMT'}, 0),
    ({'X-RateLimit-Reset': '1445412480'}, 0),
    ({'X-RateLimit-Reset': 'NOW+600'}, 600),
    ({'X-RateLimit-Reset': '45'}, 45),
    ({}, None),
    ({'Retry-After': 'soon'}, None),
])
def test_retry_after_forms(headers, expected):
    now = time.time()
    headers = {k: v.replace('NOW+600', '%d' % (now + 600)) for k, v in headers.items()}
    got = retry_after_seconds(headers, now)
    assert got == expected or (expected and abs(got - expected) <= 1)
