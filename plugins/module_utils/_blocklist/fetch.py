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
``redact`` first, so API keys never reach output or logs.
"""

from __future__ import annotations

import email.utils
import gzip
import socket
import time
import zlib

import http.client as http_client

from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit, urlunsplit
from ansible.module_utils.urls import open_url

from .feeds import body_error_message

DEFAULT_TIMEOUT = 30
DEFAULT_RETRIES = 2
MAX_BODY_BYTES = 512 * 1024 * 1024
# A rate limit with no stated reset is retried on the next run, not sooner.
UNKNOWN_RESET_SECONDS = 3600


class FetchError(Exception):
    """A feed could not be fetched; the message is safe to show (no secrets).

    ``kind`` is ``auth``, ``rate_limited``, ``http``, ``truncated`` or
    ``network``; ``retry_at`` (epoch seconds) is when a rate-limited
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


def redact(text, secrets):
    for secret in secrets or ():
        if secret and len(str(secret)) >= 4:
            text = text.replace(str(secret), '********')
    return text


def _read_file(path):
    try:
        with open(path, 'rb') as handle:
            body = handle.read(MAX_BODY_BYTES + 1)
    except (IOError, OSError) as exc:
        raise FetchError('cannot read %s: %s' % (path, exc.strerror or exc), kind='network')
    if len(body) > MAX_BODY_BYTES:
        raise FetchError('%s is larger than %d bytes' % (path, MAX_BODY_BYTES), kind='http')
    return body


def retry_after_seconds(headers, now):
    """Seconds until a rate-limited provider accepts requests again, or None when it does not say.

    ``Retry-After`` is seconds or an HTTP date (RFC 9110).  ``X-RateLimit-Reset``
    is, depending on the provider, an epoch timestamp or seconds from now; a
    value past 10^9 can only be the former.
    """
    value = (headers.get('Retry-After') or '').strip()
    if value:
        if value.isdigit():
            return int(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None and when.tzinfo is not None:
            return max(0, int(when.timestamp() - now))
    value = (headers.get('X-RateLimit-Reset') or headers.get('RateLimit-Reset') or '').strip()
    try:
        number = float(value)
    except ValueError:
        return None
    if number > 1e9:
        return max(0, int(number - now))
    return max(0, int(number))


def _decode_body(raw, encoding, shown):
    if encoding == 'gzip' or raw[:2] == b'\x1f\x8b':
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise FetchError('%s: gzip body is corrupt or truncated: %s' % (shown, exc), kind='truncated')
    return raw


def fetch_response(url=None, path=None, headers=None, timeout=DEFAULT_TIMEOUT, retries=DEFAULT_RETRIES,
                   validate_certs=True, backoff=1.0, sleep=time.sleep, etag=None, last_modified=None,
                   max_wait=0, secrets=(), clock=time.time):
    """Fetch a feed; return a FetchResponse or raise FetchError.

    Server errors (5xx), truncated bodies and connection failures are retried
    with exponential backoff.  Client errors (4xx) are not, because repeating
    a request that was refused only burns quota; a 429 is waited out only
    when the provider's reset is within ``max_wait`` seconds.  ``etag`` and
    ``last_modified`` make the request conditional; a 304 comes back as
    ``not_modified`` with no body.
    """
    if path:
        return FetchResponse(_read_file(path))
    if not url:
        raise FetchError('a feed needs a url or a path', kind='http')
    if url.startswith('file://'):
        return FetchResponse(_read_file(urlsplit(url).path))
    shown = redact_url(url)
    request_headers = {'Accept-Encoding': 'gzip'}
    request_headers.update(headers or {})
    if etag:
        request_headers['If-None-Match'] = etag
    if last_modified:
        request_headers['If-Modified-Since'] = last_modified
    attempt = 0
    while True:
        attempt += 1
        wait = backoff * (2 ** (attempt - 1))
        try:
            response = open_url(url, headers=request_headers, timeout=timeout, validate_certs=validate_certs,
                                http_agent='fleetwall.blocklist', decompress=False)
            raw = response.read(MAX_BODY_BYTES + 1)
            if len(raw) > MAX_BODY_BYTES:
                raise FetchError('%s: body larger than %d bytes' % (shown, MAX_BODY_BYTES), kind='http')
            length = response.headers.get('Content-Length')
            if length and length.isdigit() and int(length) != len(raw):
                raise FetchError('%s: body truncated: %d of %s bytes' % (shown, len(raw), length), kind='truncated')
            body = _decode_body(raw, response.headers.get('Content-Encoding', '').lower(), shown)
            return FetchResponse(body, etag=response.headers.get('ETag'),
                                 last_modified=response.headers.get('Last-Modified'),
                                 rate_remaining=response.headers.get('X-RateLimit-Remaining'), attempts=attempt)
        except HTTPError as exc:
            if exc.code == 304:
                return FetchResponse(None, not_modified=True, etag=exc.headers.get('ETag') or etag,
                                     last_modified=exc.headers.get('Last-Modified') or last_modified,
                                     attempts=attempt)
            try:
                error_body = exc.read(65536) or b''
            except (OSError, http_client.HTTPException):
                error_body = b''
            said = body_error_message(error_body)
            said = ': %s' % redact(said, secrets) if said else ''
            if exc.code in (401, 403):
                raise FetchError('%s: authentication failed (HTTP %d)%s' % (shown, exc.code, said),
                                 kind='auth', status=exc.code)
            if exc.code == 429:
                now = clock()
                delay = retry_after_seconds(exc.headers, now)
                if delay is not None and delay <= max_wait and attempt <= retries:
                    sleep(max(delay, 1))
                    continue
                retry_at = now + (delay if delay is not None else UNKNOWN_RESET_SECONDS)
                raise FetchError('%s: rate limited (HTTP 429)%s; the provider accepts requests again in %s'
                                 % (shown, said, '%d s' % delay if delay is not None else 'an unknown time'),
                                 kind='rate_limited', retry_at=int(retry_at), status=429)
            if exc.code < 500 or attempt > retries:
                raise FetchError('%s: HTTP %d %s%s' % (shown, exc.code, exc.reason, said),
                                 kind='http', status=exc.code)
        except FetchError as exc:
            if exc.kind != 'truncated' or attempt > retries:
                raise
        except (URLError, socket.timeout, http_client.HTTPException, OSError) as exc:
            reason = redact(str(getattr(exc, 'reason', exc)), secrets)
            if attempt > retries:
                raise FetchError('%s: %s (after %d attempts)' % (shown, reason, attempt), kind='network')
        sleep(wait)


def fetch(url=None, path=None, **kwargs):
    """The body of a feed as bytes (see ``fetch_response``)."""
    return fetch_response(url=url, path=path, **kwargs).body
