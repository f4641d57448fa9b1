# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fetching feed bodies over HTTP(S) or from files.

This uses Ansible's own ``open_url`` rather than ``requests``: it is present
wherever ansible-core is (so the shadow copy can be built on any host you
name, not only on a controller with extra libraries), it honours the usual
proxy environment and verifies TLS by default, and everything a feed needs
(headers, conditional requests, the status and headers of an error) is
reachable through it.  ``requests`` would add nothing here but a dependency
on the building host.

What a provider says is honoured: 429 waits for ``Retry-After`` /
``X-RateLimit-Reset`` only when the run can afford it, otherwise it reports
when to come back; 401/403 and JSON error bodies carry the provider's own
message; 304 means "your copy is current".  Every message passes through
``redact`` first, with the secrets ``presets.resolve_feed`` collected, so
keys, tokens and passwords never reach output or logs, even when the
provider echoes them.
"""

from __future__ import annotations

import email.utils
import re
import socket
import threading
import time

import http.client as http_client

from urllib.error import HTTPError, URLError
from urllib.parse import quote, quote_plus, urljoin, urlsplit, urlunsplit
from ansible.module_utils.urls import open_url

from ..decode import CorruptBody, TooLarge, read_bounded
from .feeds import ascii_number, body_error_message
from ..files import open_regular

DEFAULT_TIMEOUT = 30
DEFAULT_RETRIES = 2
# The decoded body; a feed may say max_bytes.  The largest real feeds are tens of MB.
MAX_BODY_BYTES = 256 * 1024 * 1024
# The whole fetch: connect, headers, body, every retry and back-off.
DEFAULT_DEADLINE = 180
MAX_REDIRECTS = 5
REDIRECT_CODES = (301, 302, 303, 307, 308)
# A rate limit with no stated reset is retried on the next run, not sooner.
UNKNOWN_RESET_SECONDS = 3600


class FetchError(Exception):
    """A feed could not be fetched; the message is safe to show (no secrets).

    ``kind`` is ``auth``, ``rate_limited``, ``http``, ``truncated``,
    ``network``, ``too_large`` (the decoded body passed ``max_bytes``) or
    ``deadline`` (the whole fetch took longer than its deadline); ``retry_at`` (epoch seconds) is when a rate-limited
    provider accepts requests again.
    """

    def __init__(self, message, kind='network', retry_at=None, status=None):
        super(FetchError, self).__init__(message)
        self.kind = kind
        self.retry_at = retry_at
        self.status = status


class FetchResponse(object):
    def __init__(self, body=None, not_modified=False, etag=None, last_modified=None, rate_remaining=None,
                 attempts=1):
        self.body = body
        self.not_modified = not_modified
        self.etag = etag
        self.last_modified = last_modified
        self.rate_remaining = rate_remaining
        self.attempts = attempts


def redact_url(url):
    """The URL without user info and query string, which may carry API keys."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return '<unparseable url>'
    netloc = parts.hostname or ''
    if parts.port:
        netloc = '%s:%d' % (netloc, parts.port)
    return urlunsplit((parts.scheme, netloc, parts.path, 'REDACTED' if parts.query else '', ''))


MASK = '********'
# A secret this long is masked wherever it occurs; a shorter one only as a whole token, so that a 3-character
# key is masked without cutting every word and number that happens to contain those 3 characters.
SHORT_SECRET = 8
# What a whole token must not touch on either side: a letter or a digit (any script).
_WORD_CHAR = r'[^\W_]'
# Where a token may start: after no letter or digit, or right after a %XX escape ('%20abc' in an encoded URL).
_TOKEN_START = r'(?:(?<=%%[0-9A-Fa-f]{2})|(?<!%s))' % _WORD_CHAR
_ESCAPE = re.compile(r'%[0-9A-F]{2}')


def _secret_forms(secret):
    """The secret as given and as a URL carries it (providers echo the URL): quote, quote_plus, lowercase escapes."""
    forms = {secret, quote(secret), quote(secret, safe=''), quote_plus(secret, safe='')}
    return forms | {_ESCAPE.sub(lambda match: match.group().lower(), form) for form in forms}


class Redactor(object):
    """Masks the secrets of a feed in text; built once per set of secrets (see ``redact``)."""

    def __init__(self, secrets):
        forms = set()
        for secret in secrets or ():
            secret = '' if secret is None else str(secret)
            if secret.strip():
                forms |= _secret_forms(secret)
        # Longest first, so that 'Bearer abc' goes whole before 'abc' is looked for.
        ordered = sorted(forms, key=lambda form: (-len(form), form))
        self.long = [form for form in ordered if len(form) >= SHORT_SECRET]
        short = [form for form in ordered if len(form) < SHORT_SECRET]
        self.short = re.compile('%s(?:%s)(?!%s)' % (_TOKEN_START, '|'.join(map(re.escape, short)), _WORD_CHAR)
                                ) if short else None

    def __call__(self, text):
        if not text or not isinstance(text, str):
            return text
        for form in self.long:
            text = text.replace(form, MASK)
        if self.short is not None:
            text = self.short.sub(MASK, text)
        return text

    def data(self, value):
        """``value`` with every string in it, in dicts and lists at any depth, redacted (keys stay)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return dict((key, self.data(item)) for key, item in value.items())
        if isinstance(value, (list, tuple)):
            return [self.data(item) for item in value]
        return value


def redact(text, secrets):
    """``text`` with every secret, and its URL-encoded forms, replaced by ``********``.

    A secret of SHORT_SECRET characters or more is replaced wherever it
    occurs; a shorter one only where it stands as a whole token (no letter
    or digit right before or after it). Longest first.
    """
    if isinstance(secrets, Redactor):
        return secrets(text)
    return Redactor(secrets)(text)


def redact_data(value, secrets):
    """Every string in ``value`` (a dict, a list, a string, at any depth) redacted as ``redact`` does."""
    return (secrets if isinstance(secrets, Redactor) else Redactor(secrets)).data(value)


def _read_file(path, max_bytes=MAX_BODY_BYTES):
    """A feed file's bytes (gunzipped when it is gzip), bounded like an HTTP body.

    Only a regular file is read: a FIFO would hold the build for ever and a device would never end.
    """
    try:
        with open_regular(path) as handle:
            return _bounded_body(handle.read, path, max_bytes)
    except (IOError, OSError) as exc:
        raise FetchError('cannot read %s: %s' % (path, exc.strerror or exc), kind='network')


def _bounded_body(read, shown, max_bytes, encoding='', cancelled=None, length=None):
    """Read and decode a body as it arrives (decode.read_bounded), as FetchErrors of their own kinds."""
    try:
        decoder, body = read_bounded(read, max_bytes, encoding, cancelled)
    except TooLarge:
        raise FetchError('%s: the body is larger than %d bytes once decoded (max_bytes); not read further'
                         % (shown, max_bytes), kind='too_large')
    except CorruptBody as exc:
        raise FetchError('%s: the body is corrupt or truncated: %s' % (shown, exc), kind='truncated')
    if length is not None and length != decoder.raw_size:
        raise FetchError('%s: body truncated: %d of %d bytes' % (shown, decoder.raw_size, length), kind='truncated')
    return body


# The longest wait a 429 is taken at its word for: a monthly quota's reset.  A later one is a broken header, and
# the time it names is remembered and shown by the next run, which cannot show a date past the year 9999.
MAX_RETRY_AFTER_SECONDS = 31 * 86400
# Seconds as a header gives them: ASCII digits, with a fraction for some X-RateLimit-Reset.  float() and int()
# also read '٣', '1_000', 'nan' and 'inf', and int() raises past 4300 digits.
HEADER_SECONDS = re.compile(r'[0-9]+(?:\.[0-9]+)?\Z')


def _bounded_seconds(seconds):
    # float('9' * 5000) is inf, which int() refuses: bound first.
    return int(min(max(0, seconds), MAX_RETRY_AFTER_SECONDS))


def retry_after_seconds(headers, now):
    """Seconds until a rate-limited provider accepts requests again, or None when it does not say.

    ``Retry-After`` is seconds or an HTTP date (RFC 9110).  ``X-RateLimit-Reset``
    is, depending on the provider, an epoch timestamp or seconds from now; a
    value past 10^9 can only be the former.  Never more than MAX_RETRY_AFTER_SECONDS.
    """
    value = (headers.get('Retry-After') or '').strip()
    if value:
        if HEADER_SECONDS.match(value):
            return _bounded_seconds(float(value))
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
        if when is not None and when.tzinfo is not None:
            return _bounded_seconds(when.timestamp() - now)
    value = (headers.get('X-RateLimit-Reset') or headers.get('RateLimit-Reset') or '').strip()
    if not HEADER_SECONDS.match(value):
        return None
    number = float(value)
    if number > 1e9:
        return _bounded_seconds(number - now)
    return _bounded_seconds(number)


def fetch_response(url=None, path=None, headers=None, timeout=DEFAULT_TIMEOUT, retries=DEFAULT_RETRIES,
                   validate_certs=True, backoff=1.0, sleep=time.sleep, etag=None, last_modified=None,
                   max_wait=0, secrets=(), clock=time.time, deadline=DEFAULT_DEADLINE, max_bytes=MAX_BODY_BYTES):
    """Fetch a feed; return a FetchResponse or raise FetchError.

    Server errors (5xx), truncated bodies and connection failures are retried
    with exponential backoff.  Client errors (4xx) are not, because repeating
    a request that was refused only burns quota; a 429 is waited out only
    when the provider's reset is within ``max_wait`` seconds.  ``etag`` and
    ``last_modified`` make the request conditional; a 304 comes back as
    ``not_modified`` with no body.

    ``timeout`` bounds each socket operation; ``deadline`` bounds the whole
    fetch, retries and waits included, so a provider that trickles a byte at
    a time cannot hold the build.  ``max_bytes`` bounds the body once decoded.
    """
    if path:
        return FetchResponse(_read_file(path, max_bytes))
    if not url:
        raise FetchError('a feed needs a url or a path', kind='http')
    if url.startswith('file://'):
        return FetchResponse(_read_file(urlsplit(url).path, max_bytes))
    request = _HttpFetch(url, headers, timeout, retries, validate_certs, backoff, sleep, max_wait, secrets, clock,
                         max_bytes)
    request.conditional(etag, last_modified)
    if not deadline:
        return request.run()
    return _within_deadline(request, deadline)


def _within_deadline(request, deadline):
    """``request.run()`` in a worker thread, given up after ``deadline`` seconds.

    A socket timeout bounds each read, not their sum, and the headers are
    read inside urllib where no clock can be checked: only a thread bounds
    every phase.  The abandoned worker stops at its next chunk (``cancelled``);
    it is a daemon, so it never keeps the process alive.
    """
    outcome = {}

    def work():
        try:
            outcome['response'] = request.run()
        except BaseException as exc:  # pylint: disable=broad-except
            outcome['error'] = exc

    worker = threading.Thread(target=work, name='fleetwall-fetch', daemon=True)
    worker.start()
    worker.join(deadline)
    if worker.is_alive():
        request.cancelled.set()
        raise FetchError('%s: no complete answer within the deadline of %s s (connect, headers and body, retries '
                         'included)' % (request.shown, deadline), kind='deadline')
    if 'error' in outcome:
        raise outcome['error']
    return outcome['response']


class _HttpFetch(object):
    """One feed's HTTP fetch: its attempts, redirects and the provider's answers (see fetch_response)."""

    def __init__(self, url, headers, timeout, retries, validate_certs, backoff, sleep, max_wait, secrets, clock,
                 max_bytes):
        self.url = url
        # Built once: every message of this fetch goes through it, the provider's words included.
        self.redact = Redactor(secrets)
        self.shown = self.redact(redact_url(url))
        self.headers = {'Accept-Encoding': 'gzip'}
        self.headers.update(headers or {})
        self.timeout, self.retries, self.validate_certs = timeout, retries, validate_certs
        self.backoff, self.sleep, self.max_wait, self.clock = backoff, sleep, max_wait, clock
        self.max_bytes = max_bytes
        self.cancelled = threading.Event()

    def conditional(self, etag, last_modified):
        self.etag = etag
        if etag:
            self.headers['If-None-Match'] = etag
        if last_modified:
            self.headers['If-Modified-Since'] = last_modified

    def _failure(self, message, kind, status=None, retry_at=None):
        """A FetchError whose whole message is redacted: a reason phrase or a target may echo a secret."""
        return FetchError(self.redact(message), kind=kind, status=status, retry_at=retry_at)

    def run(self):
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(attempt)
            except FetchError as exc:
                if exc.kind not in ('truncated', 'retry') or attempt > self.retries:
                    if exc.kind == 'retry':
                        exc.kind = 'http' if exc.status else 'network'
                    raise
            if self.cancelled.is_set():
                raise FetchError('%s: abandoned at the deadline' % self.shown, kind='deadline')
            self.sleep(self.backoff * (2 ** (attempt - 1)))

    def _attempt(self, attempt):
        url, headers, seen = self.url, self.headers, [self.url]
        while True:
            try:
                response = self._open(url, headers)
                return self._body(response, attempt)
            except HTTPError as exc:
                if exc.code not in REDIRECT_CODES:
                    return self._http_error(exc, attempt)
                url, headers = self._redirect(url, headers, exc, seen)
            except (URLError, socket.timeout, http_client.HTTPException, OSError) as exc:
                raise self._failure('%s: %s (after %d attempts)' % (self.shown, getattr(exc, 'reason', exc), attempt),
                                    kind='retry')

    def _open(self, url, headers):
        try:
            return open_url(url, headers=headers, timeout=self.timeout, validate_certs=self.validate_certs,
                            http_agent='fleetwall.blocklist', decompress=False, follow_redirects='none')
        except ValueError as exc:
            # A URL urllib cannot use, a header value with a newline: its message quotes the URL or the value.
            raise self._failure('%s: cannot send this request: %s' % (self.shown, exc), kind='http')

    def _redirect(self, url, headers, exc, seen):
        """Follow a redirect by hand: http(s) only, no loops, and credentials only to the same origin."""
        location = (exc.headers.get('Location') or '').strip()
        target = urljoin(url, location)
        scheme = urlsplit(target).scheme.lower()
        if not location or scheme not in ('http', 'https'):
            raise self._failure('%s: HTTP %d redirects to %s, which is not http(s); not followed'
                                % (self.shown, exc.code, redact_url(target) if location else 'nowhere'),
                                kind='http', status=exc.code)
        if target in seen or len(seen) > MAX_REDIRECTS:
            raise self._failure('%s: redirect loop or more than %d redirects (last to %s)'
                                % (self.shown, MAX_REDIRECTS, redact_url(target)), kind='http', status=exc.code)
        seen.append(target)
        if _origin(target) != _origin(url):
            # An API key sent to whatever host a redirect names would be given away.
            headers = dict((k, v) for k, v in headers.items()
                           if k in ('Accept-Encoding', 'If-None-Match', 'If-Modified-Since'))
        return target, headers

    def _body(self, response, attempt):
        try:
            length = response.headers.get('Content-Length')
            body = _bounded_body(getattr(response, 'read1', response.read), self.shown, self.max_bytes,
                                 response.headers.get('Content-Encoding', ''), self.cancelled,
                                 ascii_number(length) if length else None)
        finally:
            response.close()
        return FetchResponse(body, etag=response.headers.get('ETag'),
                             last_modified=response.headers.get('Last-Modified'),
                             rate_remaining=response.headers.get('X-RateLimit-Remaining'), attempts=attempt)

    def _http_error(self, exc, attempt):
        if exc.code == 304:
            return FetchResponse(None, not_modified=True, etag=exc.headers.get('ETag') or self.etag,
                                 last_modified=exc.headers.get('Last-Modified') or self.headers.get(
                                     'If-Modified-Since'), attempts=attempt)
        try:
            error_body = exc.read(65536) or b''
        except (OSError, http_client.HTTPException):
            error_body = b''
        # Redacted before the provider's message is taken from it, which cuts it to 300 characters: a cut
        # through a secret would leave its start, which no redaction afterwards recognises.
        said = body_error_message(self.redact(error_body.decode('utf-8', 'replace')))
        said = ': %s' % said if said else ''
        if exc.code in (401, 403):
            raise self._failure('%s: authentication failed (HTTP %d)%s' % (self.shown, exc.code, said),
                                kind='auth', status=exc.code)
        if exc.code == 429:
            now = self.clock()
            delay = retry_after_seconds(exc.headers, now)
            if delay is not None and delay <= self.max_wait and attempt <= self.retries:
                self.sleep(max(delay, 1))
                return self._attempt(attempt + 1)
            retry_at = now + (delay if delay is not None else UNKNOWN_RESET_SECONDS)
            raise self._failure('%s: rate limited (HTTP 429)%s; the provider accepts requests again in %s'
                                % (self.shown, said, '%d s' % delay if delay is not None else 'an unknown time'),
                                kind='rate_limited', retry_at=int(retry_at), status=429)
        # The reason phrase is the provider's text like the body: it may echo what was sent.
        raise self._failure('%s: HTTP %d %s%s' % (self.shown, exc.code, exc.reason, said),
                            kind='retry' if exc.code >= 500 else 'http', status=exc.code)


def _origin(url):
    parts = urlsplit(url)
    return (parts.scheme.lower(), parts.hostname, parts.port)


def fetch(url=None, path=None, **kwargs):
    """The body of a feed as bytes (see ``fetch_response``)."""
    return fetch_response(url=url, path=path, **kwargs).body
