"""Security properties: file modes, feed data never reaching a shell or the tools' syntax, no shell anywhere."""
import ast
import os
import stat

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nft import NftAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy import build_shadow_copy
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import (
    Entries, StateStore, SyncError, sync_set,
)
from ansible_collections.fleetwall.blocklist.tests.helpers import ROOT

HOSTILE = ['1.2.3.4 }; flush ruleset; {', '$(touch /tmp/fleetwall-pwned)', '`id`', '1.2.3.4 && rm -rf /',
           '1.2.3.4\n add element inet theirs s { 9.9.9.9 }', '-exist flush', '"; nft flush ruleset; "']


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize('file_mode', [0o644, 0o640])
def test_shadow_copy_modes(tmp_path, file_mode):
    feed = tmp_path / 'a.txt'
    feed.write_text('198.51.100.7\n2001:db8::7\n')
    root = tmp_path / 'copy'
    build_shadow_copy(str(root), [{'name': 'a', 'path': str(feed)}], file_mode=file_mode)
    published = root / 'generations' / '1'
    assert {name: mode(published / name) for name in os.listdir(published)} == dict.fromkeys(
        os.listdir(published), file_mode)
    # The feed cache holds what providers sent (with their terms of use): root's alone.
    assert {mode(root / 'feeds' / name) for name in os.listdir(root / 'feeds')} == {0o600}


def test_engine_state_is_private(tmp_path):
    store = StateStore(str(tmp_path / 'state'), 'ipset', 'bl4')
    store.save({'count': 1}, entries=['198.51.100.7'])
    assert mode(tmp_path / 'state') == 0o700
    assert mode(store.record_path) == 0o600 and mode(store.entries_path) == 0o600


def test_hostile_feed_lines_are_counted_invalid_never_published(tmp_path):
    feed = tmp_path / 'hostile.txt'
    feed.write_text('\n'.join(['198.51.100.7'] * 20 + HOSTILE) + '\n')
    root = tmp_path / 'copy'
    result = build_shadow_copy(str(root), [{'name': 'hostile', 'path': str(feed), 'max_invalid_fraction': 0.5}])
    status = result['feeds'][0]
    # Each hostile line is one invalid line. The embedded newline makes two lines of one: the bare
    # address on the first is a listed address like any other, the syntax on the second is invalid.
    assert status['invalid'] == len(HOSTILE)
    with open(root / 'current' / 'blocklist_v4.txt') as handle:
        assert handle.read().split() == ['1.2.3.4', '198.51.100.7']
    assert not os.path.exists('/tmp/fleetwall-pwned')


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root for a network namespace')
def test_hostile_entries_never_reach_nft(netns, tmp_path):
    assert netns(['nft', 'add', 'table', 'inet', 'theirs'])[0] == 0
    assert netns(['nft', 'add', 'set', 'inet', 'theirs', 's', '{ type ipv4_addr; }'])[0] == 0
    adapter = NftAdapter(netns, 'nft', 'fleetwall', 'bl4', interval=False)
    store = StateStore(str(tmp_path / 'state'), 'nft', 'bl4')
    path = tmp_path / 'entries.txt'
    for hostile in HOSTILE:
        path.write_text('198.51.100.7\n%s\n' % hostile)
        with pytest.raises(SyncError, match='invalid entries, nothing applied'):
            sync_set(adapter, store, Entries.read(str(path)))
    rc, out, _err = netns(['nft', 'list', 'ruleset'])
    assert rc == 0 and 'table inet theirs' in out and '9.9.9.9' not in out and 'bl4' not in out
    assert not os.path.exists('/tmp/fleetwall-pwned')


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def test_no_shell_anywhere_in_the_collection():
    """Tools run with argument lists: no shell=True, no os.system/popen,
    no use_unsafe_shell."""
    offenders = []
    for base in ('plugins', os.path.join('roles', 'fail2ban', 'files')):
        for directory, _dirs, files in os.walk(os.path.join(ROOT, base)):
            for name in files:
                if not name.endswith('.py'):
                    continue
                path = os.path.join(directory, name)
                with open(path) as handle:
                    tree = ast.parse(handle.read(), path)
                for call in _calls(tree):
                    func = call.func
                    dotted = getattr(func, 'attr', None) or getattr(func, 'id', None)
                    if dotted in ('system', 'popen') and getattr(getattr(func, 'value', None), 'id', '') == 'os':
                        offenders.append('%s:%d os.%s' % (path, call.lineno, dotted))
                    for keyword in call.keywords:
                        if keyword.arg in ('shell', 'use_unsafe_shell') and not (
                                isinstance(keyword.value, ast.Constant) and keyword.value.value is False):
                            offenders.append('%s:%d %s=' % (path, call.lineno, keyword.arg))
    assert not offenders, offenders


def test_every_tool_runs_through_the_one_command_runner():
    """The C locale of command_runner for every tool the modules read: no module.run_command, no other subprocess."""
    offenders = []
    for directory, _dirs, files in os.walk(os.path.join(ROOT, 'plugins')):
        for name in files:
            path = os.path.join(directory, name)
            if not name.endswith('.py') or path.endswith(os.path.join('_blocklist', 'host', 'command_runner.py')):
                continue
            with open(path) as handle:
                tree = ast.parse(handle.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr == 'run_command':
                    offenders.append('%s:%d run_command' % (path, node.lineno))
                if isinstance(node, (ast.Import, ast.ImportFrom)) and 'subprocess' in (
                        [alias.name for alias in node.names] + [getattr(node, 'module', None)]):
                    offenders.append('%s:%d import subprocess' % (path, node.lineno))
    assert not offenders, offenders


# -- secrets: redacted however the provider echoes them -------------------------------------------------------------

import gzip  # noqa: E402
import json  # noqa: E402
from urllib.parse import quote, quote_plus  # noqa: E402

import feed_server  # noqa: E402

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.fetch import (  # noqa: E402
    MASK, FetchError, fetch_response, redact, redact_data,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.presets import resolve_feed  # noqa: E402
from ansible_collections.fleetwall.blocklist.tests.helpers import (  # noqa: E402
    ECHO_KEY, ECHO_PASSWORD, ECHO_QUERY, ECHO_TOKEN, ECHO_USER, echo_secret_forms)


@pytest.mark.parametrize('text, expected', [
    # A short secret is masked as a whole token only: not inside a longer word or number.
    ('key=Zq9&limit=10', 'key=%s&limit=10' % MASK),
    ('Zq9 "Zq9" (Zq9) /Zq9/ Zq9: x', '{0} "{0}" ({0}) /{0}/ {0}: x'.format(MASK)),
    ('aZq9 Zq9b 1Zq9 Zq91 Zq9Zq9', 'aZq9 Zq9b 1Zq9 Zq91 Zq9Zq9'),
    # ... also right after a %XX escape of an encoded URL, and in its own encoded forms.
    ('x%20Zq9%3B', 'x%%20%s%%3B' % MASK),
    ('q=Qk-5%2Fx+y q=Qk-5%2Fx%20y q=Qk-5%2fx%20y q=Qk-5/x y', 'q={0} q={0} q={0} q={0}'.format(MASK)),
    # A long one anywhere, before the shorter ones it contains.
    ('HTTP 400 tokenBearer Zq9-long-secret-valueX', 'HTTP 400 token%sX' % MASK),
    ('limit 10, score 90', 'limit 10, score 90'),
])
def test_redact_short_secrets_as_tokens_long_ones_anywhere(text, expected):
    assert redact(text, ['Zq9', 'Qk-5/x y', 'Bearer Zq9-long-secret-value', None, '']) == expected


def test_redact_data_reaches_every_string_and_keeps_keys():
    data = {'Zq9': ['a Zq9', {'b': 'Zq9'}], 'n': 90, 'ok': True}
    assert redact_data(data, ['Zq9']) == {'Zq9': ['a ' + MASK, {'b': MASK}], 'n': 90, 'ok': True}


# Every kind of secret, short ones included (tests/helpers.py), each sent to a provider that echoes it in every
# way it can.


def echo_feeds(base, port):
    """For each echo fault, a feed per kind of secret; plus a body with the echo refused as broken."""
    feeds = []
    for kind in feed_server.ECHO_FAULTS:
        path = '/fault/%s/list.txt' % kind
        feeds += [
            {'name': kind + '-header', 'url': base + path, 'headers': {'X-Custom-Token': ECHO_TOKEN}},
            {'name': kind + '-key', 'preset': 'bearer_list', 'api_key': ECHO_KEY, 'url': base + path},
            {'name': kind + '-url', 'url': 'http://%s:%s@127.0.0.1:%d%s?token=%s&limit=10'
             % (quote(ECHO_USER), quote(ECHO_PASSWORD, safe=''), port, path, quote_plus(ECHO_QUERY))},
        ]
    # No credentials but the query's: asked for some (401, WWW-Authenticate) with the query echoed.
    feeds.append({'name': 'query-only', 'url': base + '/fault/echo_json/list.txt?token=' + quote_plus(ECHO_QUERY)})
    feeds.append(dict(feeds[8], name='echo_body-broken', max_invalid_fraction=0.001))
    return feeds


def files_under(root):
    for directory, _dirs, names in os.walk(root):
        for name in names:
            yield os.path.join(directory, name)


def test_an_echoing_provider_gets_no_secret_into_the_result_or_any_file(tmp_path):
    server = feed_server.serve(str(tmp_path))
    try:
        port = server.server_address[1]
        root = tmp_path / 'copy'
        result = build_shadow_copy(str(root), echo_feeds('http://127.0.0.1:%d' % port, port))
    finally:
        server.shutdown()
    # The provider did receive each secret: the header, the key, the URL's user info (Basic) and its query.
    sent = [headers for _path, _status, headers in server.state.requests]
    assert any(headers.get('X-Custom-Token') == ECHO_TOKEN for headers in sent)
    assert any(headers.get('Authorization') == 'Bearer ' + ECHO_KEY for headers in sent)
    assert any(headers.get('Authorization', '').startswith('Basic ') for headers in sent)
    assert any(quote_plus(ECHO_QUERY) in hit for hit in server.hits)
    said = json.dumps(result)
    for form in echo_secret_forms():
        assert form not in said, form
    statuses = {feed['name']: feed for feed in result['feeds']}
    # And the build still says what failed, and how.
    for name in ('-header', '-key', '-url'):
        assert 'HTTP 400 Bad request: ' in statuses['echo_reason' + name]['error']
        assert 'authentication failed (HTTP 401): not accepted: ' in statuses['echo_json' + name]['error']
        assert 'redirects to ftp://127.0.0.1:1/' in statuses['echo_redirect' + name]['error']
        assert statuses['echo_body' + name]['status'] == 'fresh'
        assert statuses['echo_body' + name]['invalid_samples'][0]['text'].endswith(MASK)
    assert 'credentials required' in statuses['query-only']['error']
    assert "looks broken" in statuses['echo_body-broken']['error'] and MASK in statuses['echo_body-broken']['error']
    assert 'X-Custom-Token: %s' % MASK in statuses['echo_reason-header']['error']
    assert 'Authorization: %s' % MASK in statuses['echo_json-key']['error']
    assert 'user: {0}; password: {0}; Authorization: Basic {0}; query: token={0}&limit=10'.format(MASK) in \
        statuses['echo_reason-url']['error']
    assert result['published'] and any('echo_json-key: failed' in warning for warning in result['warnings'])
    for path in files_under(str(root)):
        if path.startswith(str(root / 'feeds')) and path.endswith('.body'):
            # What the provider sent, kept verbatim (its sha256 is the cache's check): root's alone.
            assert mode(path) == 0o600, path
            continue
        opener = gzip.open if path.endswith('.gz') else open
        with opener(path, 'rb') as handle:
            content = handle.read().decode('utf-8', 'replace')
        for form in echo_secret_forms():
            assert form not in content, (path, form)


def test_an_echoed_secret_is_redacted_before_the_providers_message_is_cut(tmp_path):
    server = feed_server.serve(str(tmp_path))
    base = 'http://127.0.0.1:%d' % server.server_address[1]
    try:
        # The provider's message is cut to 300 characters: a secret straddling the cut must not leave its start.
        # Without credentials the echo is 'credentials required; received query: pad=<digits>&token=<secret>&...',
        # and a number is no secret: the secret starts at 290.
        digits = '7' * (290 - len('credentials required; received query: pad=&token='))
        feed, secrets = resolve_feed({'name': 'f', 'url': base + '/fault/echo_json/list.txt',
                                      'params': {'pad': digits, 'token': 'straddling-secret-0123456789'}})
        with pytest.raises(FetchError) as caught:
            fetch_response(url=feed['url'], headers=feed['headers'], secrets=secrets, retries=0)
    finally:
        server.shutdown()
    message = str(caught.value)
    assert 'straddl' not in message and 'authentication failed (HTTP 401)' in message
    assert digits + '&token=' + MASK in message
