# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A loopback HTTP server that behaves like the threat-feed providers.

It binds 127.0.0.1 only, and serves a directory (the test data) with what
real providers do around it, so tests run the real fetcher against real HTTP:

Static files: ``ETag`` and ``Last-Modified``, answering ``If-None-Match`` /
``If-Modified-Since`` with 304; gzip when the client accepts it.

Provider APIs (data from ``providers/`` under the directory):

    /abuseipdb/api/v2/blacklist        header Key; confidenceMinimum, limit, plaintext;
                                       a daily quota (429 with Retry-After and X-RateLimit-*);
                                       AbuseIPDB's {"errors": [{"detail", "status"}]} bodies
    POST /abuseipdb/api/v2/report      header Key; form ip, categories, comment (1024 characters
                                       at most); the same address again within 15 minutes is
                                       refused with 429; accepted reports are kept in
                                       state.reports (and appended to --reports FILE as JSON lines)
    /bearer/lists/<id>.txt             Authorization: Bearer; an hourly quota answered with
                                       429, X-RateLimit-Reset (epoch) and {"error": ...}
    /wayscloud/v1/ip/threats/live      header X-API-Key
    /sikkerapi/v1/key/blacklist        Authorization: Bearer; scoreMinimum, protocols,
                                       onlyCountries, exceptCountries, limit, plaintext

Faults, for any path: ``/fault/<kind>/<path>``, or ``server.state.faults[prefix] = kind``
(optionally a number of times in ``server.state.fault_times[prefix]``; this way for a POST too):
500, 404, 401, 403, 429, html, empty, slow, truncated, json_error, garbage; cut_short (the path's
answer cut at a line break near its middle, sent without a Content-Length or compression, and the
connection closed: a shorter list as far as the transport can tell); and the hostile ones, whose big
bodies are streamed in chunks, never built whole here:

    bomb_gzip, bomb_zlib   Content-Encoding gzip / deflate (zlib): about 3 MB that expands to 2 GiB
                           of "1.2.3.4\n" (compressed once per process, then cached)
    trickle                200 and a Content-Length, then one byte of the list every
                           state.trickle_interval (0.5 s), for state.hold_seconds (60) at most
    stall                  200 and a Content-Length, then nothing for state.hold_seconds at most
    overlong               a Content-Length 100 MB past the body sent, then the connection closes
    redirect_loop          302 from A to B and back (A with and without ``?hop``)
    redirect_scheme        302 to file:///etc/passwd
    redirect_ftp           302 to ftp://127.0.0.1:1/x (nothing listens there)
    redirect_gopher        302 to gopher://127.0.0.1:1/x
    lines_10m              10,000,000 lines of distinct public IPv4 addresses (11.0.0.0 - 11.249.156.63)
    long_line              one 200 MB line, no newline
    bad_bytes              the list with every 2nd line carrying invalid UTF-8 or NUL bytes (45.33.0.0/16)
    bad_bytes_few          the same, every 20th line: below the default invalid threshold (10%)
    deep_json              a JSON array nested 1,000,000 levels deep

And the echoing ones, a provider that repeats what it was sent (every header, Basic credentials
decoded into user and password, the query as sent and each of its values decoded), credentials first:

    echo_reason            400 with all of it in the reason phrase, and in a plain body
    echo_json              401 with all of it in {"errors": [{"detail", "status"}]}
    echo_body              200: a line of it per item, then 1000 addresses (below the 10 % invalid limit)
    echo_redirect          302 to ftp://<user>:<password>@127.0.0.1:1/<each item>?<the query>
                           (a scheme the fetcher refuses, naming the target)

A request that carries no credentials at all (no header beyond the ones any client sends) is first
answered 401 with ``WWW-Authenticate: Basic`` and the same echo in a JSON error, as a provider asks
for them, so that the user and password of a URL are sent and echoed too.

trickle, stall and overlong serve the file at <path> when there is one, a list of 1000 addresses
otherwise; the rest ignore <path>.
"""

import argparse
import base64
import binascii
import email.utils
import functools
import gzip
import hashlib
import http.server
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import threading
import time
import zlib
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

LAB_KEYS = {
    'abuseipdb': 'lab-abuseipdb-key-0123456789abcdef',
    'bearer': 'lab-bearer-token-0123456789',
    'wayscloud': 'lab-wayscloud-key-0123456789',
    'sikkerapi': 'sk_free_lab0123456789',
}
HTML_PAGE = (b'<!DOCTYPE html><html><head><title>Sign in to the network</title></head>'
             b'<body>Captive portal: accept the terms to continue.</body></html>')
DEFAULT_LIST = b'198.51.100.1\n' * 1000
STREAM_CHUNK = 1 << 20

# The decompression bombs: BOMB_SIZE bytes of BOMB_LINE once decoded.
BOMB_LINE = b'1.2.3.4\n'
BOMB_SIZE = 2 << 30
BOMB_SEGMENT = 1 << 20
_BOMB_LOCK = threading.Lock()
_BOMB_CACHE = {}

# lines_10m: LINES_BLOCKS blocks of LINES_PER_BLOCK lines, 11.<block>.<a>.<b>, all distinct and public.
LINES_BLOCKS = 250
LINES_PER_BLOCK = 40000
LONG_LINE_BYTES = 200 * 1000 * 1000
DEEP_JSON_LEVELS = 1000 * 1000
OVERLONG_EXTRA = 100 * 1000 * 1000
REDIRECT_TARGETS = {
    'redirect_scheme': 'file:///etc/passwd',
    'redirect_ftp': 'ftp://127.0.0.1:1/x',
    'redirect_gopher': 'gopher://127.0.0.1:1/x',
}
ECHO_FAULTS = ('echo_reason', 'echo_json', 'echo_body', 'echo_redirect')
# The headers any client sends: a request with no other one carries no credentials.
CLIENT_HEADERS = ('host', 'user-agent', 'accept', 'accept-encoding', 'connection', 'if-none-match',
                  'if-modified-since', 'content-length', 'content-type')
# Each bad line is an address of 45.33.0.0/16 with invalid UTF-8 or NUL bytes in or around it, so a
# reader can tell that none of them was taken for an entry.
BAD_LINE_FORMS = (
    b'45.33.%d.%d\x00', b'\x0045.33.%d.%d', b'45.33\x00.%d.%d', b'45.33.%d.%d\xff', b'\xfe\xff45.33.%d.%d',
    b'45.33.%d.%d\xed\xa0\x80', b'\xc3\x2845.33.%d.%d', b'45.33.%d.%d \x00', b'45.33.%d.%d\xc0\xaf',
    b'45.\x80\x8033.%d.%d',
)


def _bomb(encoding):
    """(head, segment, count, tail) of a gzip or zlib stream that expands to BOMB_SIZE bytes.

    Compressing 2 GiB takes about 5 s, so one segment is compressed with a full
    flush, which makes it independent of what came before: every copy of it
    decodes to the same BOMB_SEGMENT bytes, and the stream is the segment
    repeated between the format's header and trailer.  Built once per process.
    """
    with _BOMB_LOCK:
        if encoding not in _BOMB_CACHE:
            chunk = BOMB_LINE * (BOMB_SEGMENT // len(BOMB_LINE))
            raw = zlib.compressobj(9, zlib.DEFLATED, -15)
            segment = raw.compress(chunk) + raw.flush(zlib.Z_FULL_FLUSH)
            count = BOMB_SIZE // BOMB_SEGMENT
            final_block = b'\x03\x00'  # an empty last block ends a raw deflate stream
            if encoding == 'gzip':
                crc = 0
                for _index in range(count):
                    crc = zlib.crc32(chunk, crc)
                head = b'\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff'
                tail = final_block + struct.pack('<II', crc, BOMB_SIZE & 0xffffffff)
            else:
                adler = 1
                for _index in range(count):
                    adler = zlib.adler32(chunk, adler)
                head = b'\x78\xda'
                tail = final_block + struct.pack('>I', adler)
            _BOMB_CACHE[encoding] = (head, segment, count, tail)
        return _BOMB_CACHE[encoding]


def bomb_chunks(encoding):
    """The bomb's length and its bytes in chunks of about 100 KB."""
    head, segment, count, tail = _bomb(encoding)
    group = 64

    def chunks():
        yield head
        for index in range(0, count, group):
            yield segment * min(group, count - index)
        yield tail
    return len(head) + len(segment) * count + len(tail), chunks()


def lines_10m_chunks():
    """The length and the chunks of LINES_BLOCKS * LINES_PER_BLOCK distinct public IPv4 addresses, a line each."""
    template = b''.join(b'@%d.%d\n' % divmod(index, 256) for index in range(LINES_PER_BLOCK))
    prefixes = [b'11.%d.' % block for block in range(LINES_BLOCKS)]
    length = sum(len(template) + LINES_PER_BLOCK * (len(prefix) - 1) for prefix in prefixes)
    return length, (template.replace(b'@', prefix) for prefix in prefixes)


def repeated_chunks(pattern, length):
    """``length`` bytes of ``pattern`` repeated, in chunks of about STREAM_CHUNK."""
    chunk = pattern * max(1, STREAM_CHUNK // len(pattern))
    sent = 0
    while sent < length:
        piece = chunk[:length - sent]
        sent += len(piece)
        yield piece


def bad_bytes_body(body, every):
    """``body`` with every ``every``-th line replaced by one with invalid UTF-8 or NUL bytes in it."""
    lines = body.splitlines()
    for index in range(every - 1, len(lines), every):
        number = index // every
        lines[index] = BAD_LINE_FORMS[number % len(BAD_LINE_FORMS)] % divmod(number % 65536, 256)
    return b''.join(line + b'\n' for line in lines)


class ProviderState(object):
    """What the emulated providers remember between requests; tests adjust it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.keys = dict(LAB_KEYS)
        self.quota = {'abuseipdb': 5, 'bearer': 60}
        self.quota_window = {'abuseipdb': 86400, 'bearer': 3600}
        self.used = {}
        self.window_start = {}
        self.faults = {}
        self.fault_times = {}
        self.retry_after = 120
        self.slow_seconds = 5
        self.hold_seconds = 60          # how long trickle and stall keep a connection, at most
        self.trickle_interval = 0.5
        self.requests = []      # [path without query, status, request headers], in arrival order
        self.reports = []       # accepted abuse reports: {ip, categories, comment, time}
        self.reports_file = None

    def reset(self):
        with self.lock:
            self.used.clear()
            self.window_start.clear()
            self.faults.clear()
            self.fault_times.clear()
            del self.requests[:]

    def count(self, prefix):
        return sum(1 for path, _status, _headers in self.requests if path.startswith(prefix))

    def take_fault(self, path):
        with self.lock:
            for prefix, kind in list(self.faults.items()):
                if path.startswith(prefix):
                    times = self.fault_times.get(prefix)
                    if times is not None:
                        if times <= 1:
                            del self.faults[prefix]
                            self.fault_times.pop(prefix, None)
                        else:
                            self.fault_times[prefix] = times - 1
                    return kind
        return None

    def consume(self, provider):
        """Count a request against the provider's quota; return seconds until reset when exhausted."""
        with self.lock:
            now = time.time()
            window = self.quota_window[provider]
            start = self.window_start.setdefault(provider, now)
            if now - start >= window:
                self.window_start[provider] = start = now
                self.used[provider] = 0
            if self.used.get(provider, 0) >= self.quota[provider]:
                return int(start + window - now) + 1, start + window
            self.used[provider] = self.used.get(provider, 0) + 1
            return None, start + window


class FeedHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *args):  # quiet: tests read their own output
        if os.environ.get('FEED_SERVER_VERBOSE'):
            sys.stderr.write('feed_server: ' + fmt % args + '\n')

    # -- responses -----------------------------------------------------------

    def _send(self, status, body, ctype='text/plain', headers=None, compress=True):
        if isinstance(body, str):
            body = body.encode()
        if getattr(self, 'cut_short', False) and status == 200:
            return self._send_cut_short(body, ctype, headers)
        headers = dict(headers or {})
        if compress and body and 'gzip' in self.headers.get('Accept-Encoding', '') and status == 200:
            body = gzip.compress(body, mtime=0)
            headers['Content-Encoding'] = 'gzip'
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        for key, value in headers.items():
            self.send_header(key, str(value))
        self.end_headers()
        self.wfile.write(body)

    def _send_cut_short(self, body, ctype, headers):
        """The first half of ``body``, ended at a line break where it has one, with no Content-Length and no
        compression, and the connection closed: to the client, a complete answer of a shorter list."""
        middle = len(body) // 2
        cut = body.rfind(b'\n', 0, middle) + 1 or middle
        self.send_response(200)
        self.send_header('Content-Type', ctype)
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.send_header('Connection', 'close')
        self.end_headers()
        self.wfile.write(body[:cut])
        self.wfile.flush()
        self.close_connection = True

    def _json(self, status, document, headers=None):
        self._send(status, json.dumps(document), 'application/json', headers)

    def _start_stream(self, length, ctype='text/plain', headers=None):
        """Headers of a 200 whose body follows piece by piece; the connection closes after it."""
        self.send_response(200)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(length))
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.send_header('Connection', 'close')
        self.end_headers()
        self.close_connection = True

    def _stream(self, length, chunks, ctype='text/plain', headers=None):
        """A 200 whose body is sent in chunks, so that it is never whole in this process."""
        self._start_stream(length, ctype, headers)
        try:
            for chunk in chunks:
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, which is what these bodies are for

    def _redirect(self, location):
        self.send_response(302)
        self.send_header('Location', location)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def _client_gone(self, seconds):
        """Wait up to ``seconds``; True as soon as the client has closed its end."""
        end = time.monotonic() + seconds
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return False
            readable, _w, _x = select.select([self.connection], [], [], min(remaining, 1.0))
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return True
                except OSError:
                    return True
                time.sleep(min(remaining, 0.1))  # it sent something more: not our business, keep waiting

    def _trickle(self, body):
        state = self.server.state
        self._start_stream(len(body))
        deadline = time.monotonic() + state.hold_seconds
        try:
            for index in range(len(body)):
                if time.monotonic() >= deadline:
                    return
                self.wfile.write(body[index:index + 1])
                if self._client_gone(state.trickle_interval):
                    return
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _stall(self, body):
        self._start_stream(len(body))
        self._client_gone(self.server.state.hold_seconds)

    def _overlong(self, body):
        self._start_stream(len(body) + OVERLONG_EXTRA)
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _hostile(self, kind, rest):
        """The hostile faults (see the module's docstring); False for a kind that is not one of them."""
        if kind in ('bomb_gzip', 'bomb_zlib'):
            encoding = 'gzip' if kind == 'bomb_gzip' else 'deflate'
            length, chunks = bomb_chunks(encoding)
            self._stream(length, chunks, headers={'Content-Encoding': encoding})
        elif kind in ('trickle', 'stall', 'overlong'):
            body = self._file_body(rest) or DEFAULT_LIST
            {'trickle': self._trickle, 'stall': self._stall, 'overlong': self._overlong}[kind](body)
        elif kind == 'redirect_loop':
            path, _sep, query = self.path.partition('?')
            self._redirect(path if query == 'hop' else path + '?hop')
        elif kind in REDIRECT_TARGETS:
            self._redirect(REDIRECT_TARGETS[kind])
        elif kind == 'lines_10m':
            self._stream(*lines_10m_chunks())
        elif kind == 'long_line':
            self._stream(LONG_LINE_BYTES, repeated_chunks(b'1.2.3.4.', LONG_LINE_BYTES))
        elif kind in ('bad_bytes', 'bad_bytes_few'):
            body = bad_bytes_body(self._file_body(rest) or DEFAULT_LIST, 2 if kind == 'bad_bytes' else 20)
            self._send(200, body, compress=False)
        elif kind == 'deep_json':
            chunks = (piece for bracket in (b'[', b']') for piece in repeated_chunks(bracket, DEEP_JSON_LEVELS))
            self._stream(2 * DEEP_JSON_LEVELS, chunks, 'application/json')
        else:
            return False
        return True

    def _basic_credentials(self):
        """(user, password) of a Basic Authorization header, or None."""
        scheme, _sep, credentials = self.headers.get('Authorization', '').partition(' ')
        if scheme.lower() != 'basic':
            return None
        try:
            user, _sep, password = base64.b64decode(credentials).decode('utf-8', 'replace').partition(':')
        except (binascii.Error, ValueError):
            return None
        return user, password

    def _echoed(self):
        """What the request carried, as 'name: value' items: Basic credentials decoded, every other header,
        the query as sent and each of its values decoded, then the headers any client sends."""
        items = []
        basic = self._basic_credentials()
        if basic:
            items += ['user: %s' % basic[0], 'password: %s' % basic[1]]
        own = [(name, value) for name, value in self.headers.items() if name.lower() not in CLIENT_HEADERS]
        items += ['%s: %s' % pair for pair in own]
        query = urlsplit(self.path).query
        if query:
            items.append('query: %s' % query)
            items += ['%s=%s' % pair for pair in parse_qsl(query, keep_blank_values=True)]
        items += ['%s: %s' % pair for pair in self.headers.items() if pair not in own]
        return items

    def _echo(self, kind):
        """The echoing faults (see the module's docstring)."""
        echoed = self._echoed()
        said = '; '.join(echoed)
        if not any(name.lower() not in CLIENT_HEADERS for name in self.headers):
            return self._json(401, {'errors': [{'detail': 'credentials required; received %s' % said,
                                                'status': 401}]}, {'WWW-Authenticate': 'Basic realm="echo"'})
        if kind == 'echo_reason':
            # A status line is one line of latin-1.
            reason = ' '.join(said.split()).encode('latin-1', 'replace').decode('latin-1')
            body = ''.join(item + '\n' for item in echoed).encode()
            self.send_response(400, 'Bad request: %s' % reason)
            self.send_header('Content-Type', 'text/plain')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None
        if kind == 'echo_json':
            return self._json(401, {'errors': [{'detail': 'not accepted: %s' % said, 'status': 401}]})
        if kind == 'echo_body':
            return self._send(200, ''.join(item + '\n' for item in echoed).encode() + DEFAULT_LIST)
        basic = self._basic_credentials()
        userinfo = '%s:%s@' % (quote(basic[0], safe=''), quote(basic[1], safe='')) if basic else ''
        query = urlsplit(self.path).query
        path = '/'.join(quote(item, safe='') for item in echoed)
        return self._redirect('ftp://%s127.0.0.1:1/%s%s' % (userinfo, path, '?' + query if query else ''))

    def _fault(self, kind, rest):
        state = self.server.state
        if kind == '500':
            return self._send(500, 'internal error\n', compress=False)
        if kind == '404':
            return self._send(404, 'not found\n', compress=False)
        if kind in ('401', '403'):
            return self._json(int(kind), {'error': 'invalid api key'})
        if kind == '429':
            return self._json(429, {'error': 'rate limit exceeded'},
                              {'Retry-After': state.retry_after,
                               'X-RateLimit-Reset': int(time.time()) + state.retry_after})
        if kind == 'html':
            return self._send(200, HTML_PAGE, 'text/html')
        if kind == 'empty':
            return self._send(200, b'')
        if kind == 'json_error':
            return self._json(200, {'error': 'Your subscription has expired'})
        if kind == 'garbage':
            return self._send(200, ''.join('row %d: <no address here>\n' % i for i in range(50)))
        if kind == 'truncated':
            body = self._file_body(rest) or b'198.51.100.1\n' * 1000
            self.send_response(200)
            self.send_header('Content-Type', 'text/plain')
            self.send_header('Content-Length', str(len(body)))
            self.send_header('Connection', 'close')
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return None
        if kind == 'slow':
            time.sleep(state.slow_seconds)
            return self._route(rest)
        if kind == 'cut_short':
            self.cut_short = True
            return self._route(rest)
        if kind in ECHO_FAULTS:
            return self._echo(kind)
        if self._hostile(kind, rest):
            return None
        return self._send(400, 'unknown fault %s\n' % kind)

    # -- routing ---------------------------------------------------------------

    def send_response(self, code, message=None):
        # Recorded before the client can read the answer, so tests see it at once.
        self._record[1] = code
        super().send_response(code, message)

    def do_GET(self):
        path = urlsplit(self.path).path
        self.server.hits.append(self.path)
        self._record = [path, None, dict(self.headers)]
        with self.server.state.lock:
            self.server.state.requests.append(self._record)
        parts = path.split('/')
        if len(parts) > 3 and parts[1] == 'fault':
            self._fault(parts[2], '/' + '/'.join(parts[3:]))
            return
        kind = self.server.state.take_fault(path)
        if kind:
            self._fault(kind, path)
            return
        self._route(path)

    def do_POST(self):
        path = urlsplit(self.path).path
        self._record = [path, None, dict(self.headers)]
        with self.server.state.lock:
            self.server.state.requests.append(self._record)
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(min(length, 65536)).decode('utf-8', 'replace')
        kind = self.server.state.take_fault(path)
        if kind:
            self._fault(kind, path)
            return None
        if path != '/abuseipdb/api/v2/report':
            return self._json(404, {'errors': [{'detail': 'Not found.', 'status': 404}]})
        return self._abuseipdb_report({k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()})

    def _abuseipdb_report(self, form):
        state = self.server.state
        if self.headers.get('Key') != state.keys['abuseipdb']:
            return self._json(401, {'errors': [{'detail': 'Authentication failed. Your API key is either missing, '
                                                          'incorrect, or revoked.', 'status': 401}]})
        ip, categories = form.get('ip', ''), form.get('categories', '')
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return self._json(422, {'errors': [{'detail': 'The ip parameter must be a valid IP address.',
                                                'status': 422, 'source': {'parameter': 'ip'}}]})
        if not categories or not all(c.isdigit() and 1 <= int(c) <= 23 for c in categories.split(',')):
            return self._json(422, {'errors': [{'detail': 'The categories parameter must be valid category IDs.',
                                                'status': 422, 'source': {'parameter': 'categories'}}]})
        now = time.time()
        with state.lock:
            if any(r['ip'] == ip and now - r['time'] < 900 for r in state.reports):
                return self._json(429, {'errors': [{'detail': 'You can only report the same IP address (`%s`) '
                                                              'once in 15 minutes.' % ip, 'status': 429,
                                                    'source': {'parameter': 'ip'}}]})
            report = {'ip': ip, 'categories': categories, 'comment': form.get('comment', '')[:1024],
                      'comment_length': len(form.get('comment', '')), 'time': now}
            state.reports.append(report)
            if state.reports_file:
                with open(state.reports_file, 'a') as handle:
                    handle.write(json.dumps(report) + '\n')
        return self._json(200, {'data': {'ipAddress': ip, 'abuseConfidenceScore': 100}})

    def _route(self, path):
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()}
        if path == '/abuseipdb/api/v2/blacklist':
            return self._abuseipdb(query)
        if path.startswith('/bearer/lists/'):
            return self._bearer(path[len('/bearer/lists/'):])
        if path == '/wayscloud/v1/ip/threats/live':
            return self._wayscloud()
        if path == '/sikkerapi/v1/key/blacklist':
            return self._sikkerapi(query)
        return self._static(path)

    def _file_body(self, path):
        full = os.path.realpath(os.path.join(self.server.data_dir, path.lstrip('/')))
        if not full.startswith(self.server.data_dir + os.sep) or not os.path.isfile(full):
            return None
        with open(full, 'rb') as handle:
            return handle.read()

    def _static(self, path):
        body = self._file_body(path)
        if body is None:
            return self._send(404, 'not found\n', compress=False)
        full = os.path.join(self.server.data_dir, path.lstrip('/'))
        etag = '"%s"' % hashlib.sha256(body).hexdigest()[:32]
        mtime = int(os.stat(full).st_mtime)
        last_modified = email.utils.formatdate(mtime, usegmt=True)
        headers = {'ETag': etag, 'Last-Modified': last_modified}
        compress = not path.endswith('.gz')
        if getattr(self, 'cut_short', False):
            # The cut answer stands for a new version of the file, which a conditional request would not skip.
            return self._send(200, body, headers=headers, compress=compress)
        if self.headers.get('If-None-Match') == etag:
            return self._send(304, b'', headers=headers, compress=False)
        since = self.headers.get('If-Modified-Since')
        if since and not self.headers.get('If-None-Match'):
            try:
                if mtime <= email.utils.parsedate_to_datetime(since).timestamp():
                    return self._send(304, b'', headers=headers, compress=False)
            except (TypeError, ValueError):
                pass
        return self._send(200, body, headers=headers, compress=compress)

    def _provider_data(self, filename):
        with open(os.path.join(self.server.data_dir, 'providers', filename)) as handle:
            return json.load(handle)

    def _quota_headers(self, provider, reset_at, remaining):
        return {'X-RateLimit-Limit': self.server.state.quota[provider],
                'X-RateLimit-Remaining': max(remaining, 0), 'X-RateLimit-Reset': int(reset_at)}

    def _abuseipdb(self, query):
        state = self.server.state
        if self.headers.get('Key') != state.keys['abuseipdb']:
            return self._json(401, {'errors': [{
                'detail': 'Authentication failed. Your API key is either missing, incorrect, or revoked. '
                          'Note: The APIv2 key differs from the APIv1 key.', 'status': 401}]})
        wait, reset_at = state.consume('abuseipdb')
        if wait is not None:
            return self._json(429, {'errors': [{
                'detail': 'Daily rate limit of %d requests exceeded for this endpoint. See headers for '
                          'additional details.' % state.quota['abuseipdb'], 'status': 429}]},
                dict(self._quota_headers('abuseipdb', reset_at, 0), **{'Retry-After': wait}))
        document = self._provider_data('abuseipdb_blacklist.json')
        minimum = int(query.get('confidenceMinimum', 100))
        limit = int(query.get('limit', 10000))
        data = [r for r in document['data'] if r['abuseConfidenceScore'] >= minimum][:limit]
        remaining = state.quota['abuseipdb'] - state.used.get('abuseipdb', 0)
        headers = self._quota_headers('abuseipdb', reset_at, remaining)
        if 'plaintext' in query:
            return self._send(200, ''.join(r['ipAddress'] + '\n' for r in data), headers=headers)
        return self._json(200, {'meta': document['meta'], 'data': data}, headers)

    def _bearer(self, list_name):
        state = self.server.state
        if self.headers.get('Authorization') != 'Bearer %s' % state.keys['bearer']:
            return self._json(401, {'error': 'invalid or missing bearer token'})
        wait, reset_at = state.consume('bearer')
        if wait is not None:
            return self._json(429, {'error': 'rate limit of %d requests per hour exceeded' % state.quota['bearer']},
                              self._quota_headers('bearer', reset_at, 0))
        list_id = list_name[:-4] if list_name.endswith('.txt') else list_name
        body = self._file_body('/providers/bearer_%s.txt' % list_id)
        if body is None:
            return self._json(404, {'error': 'no list %r' % list_id})
        remaining = state.quota['bearer'] - state.used.get('bearer', 0)
        return self._send(200, body, headers=self._quota_headers('bearer', reset_at, remaining))

    def _wayscloud(self):
        if self.headers.get('X-API-Key') != self.server.state.keys['wayscloud']:
            return self._json(401, {'error': {'code': 'unauthorized', 'message': 'invalid API key'}})
        return self._json(200, self._provider_data('wayscloud_threats.json'))

    def _sikkerapi(self, query):
        if self.headers.get('Authorization') != 'Bearer %s' % self.server.state.keys['sikkerapi']:
            return self._json(401, {'error': 'Invalid API key'})
        rows = self._provider_data('sikkerapi_records.json')
        minimum = int(query.get('scoreMinimum', 50))
        rows = [r for r in rows if r['score'] >= minimum]
        if query.get('protocols'):
            wanted = set(query['protocols'].split(','))
            rows = [r for r in rows if wanted & set(r['protocols'])]
        if query.get('onlyCountries'):
            rows = [r for r in rows if r['country'] in query['onlyCountries'].split(',')]
        if query.get('exceptCountries'):
            rows = [r for r in rows if r['country'] not in query['exceptCountries'].split(',')]
        rows.sort(key=lambda r: -r['score'])
        rows = rows[:int(query.get('limit', 5000))]
        if query.get('plaintext') == 'true':
            return self._send(200, ''.join(r['ip'] + '\n' for r in rows))
        return self._json(200, {'data': [{'ip': r['ip'], 'score': r['score']} for r in rows]})


def serve(directory, port=0):
    """Start in a thread; return the server (``server.server_address[1]`` is the port)."""
    handler = functools.partial(FeedHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', port), handler)
    server.daemon_threads = True
    server.hits = []
    server.data_dir = os.path.realpath(directory)
    server.state = ProviderState()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('directory')
    parser.add_argument('--port', type=int, default=0)
    parser.add_argument('--port-file')
    parser.add_argument('--lifetime', type=int, default=3600, help='exit after this many seconds')
    parser.add_argument('--reports', help='append accepted abuse reports to this file (JSON lines)')
    args = parser.parse_args()
    server = serve(args.directory, args.port)
    server.state.reports_file = args.reports
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file, 'w') as handle:
            handle.write(str(port))
    print('feed_server: serving %s on http://127.0.0.1:%d' % (args.directory, port), flush=True)
    time.sleep(args.lifetime)


if __name__ == '__main__':
    main()
