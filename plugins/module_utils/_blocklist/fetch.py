# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fetching feed bodies over HTTP(S) or from files.

This uses Ansible's own ``open_url`` rather than ``requests``: it is present
wherever ansible-core is (so the shadow copy can be built on any host you
name, not only on a controller with extra libraries), it honours the usual
proxy environment, and it verifies TLS by default.
"""

from __future__ import annotations

import gzip
import socket
import time

import http.client as http_client

from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit, urlunsplit
from ansible.module_utils.urls import open_url

DEFAULT_TIMEOUT = 30
DEFAULT_RETRIES = 2
MAX_BODY_BYTES = 512 * 1024 * 1024


class FetchError(Exception):
    """A feed could not be fetched; the message is safe to show (no secrets)."""


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


def _read_file(path):
    try:
        with open(path, 'rb') as handle:
            body = handle.read(MAX_BODY_BYTES + 1)
    except (IOError, OSError) as exc:
        raise FetchError('cannot read %s: %s' % (path, exc.strerror or exc))
    if len(body) > MAX_BODY_BYTES:
        raise FetchError('%s is larger than %d bytes' % (path, MAX_BODY_BYTES))
    return body


def fetch(url=None, path=None, headers=None, timeout=DEFAULT_TIMEOUT, retries=DEFAULT_RETRIES,
          validate_certs=True, backoff=1.0, sleep=time.sleep):
    """Return the body of a feed as bytes, or raise FetchError.

    Server errors (5xx) and connection failures are retried with exponential
    backoff; client errors (4xx) are not, because repeating a request that
    was refused only burns quota.
    """
    if path:
        return _read_file(path)
    if not url:
        raise FetchError('a feed needs a url or a path')
    if url.startswith('file://'):
        return _read_file(urlsplit(url).path)
    shown = redact_url(url)
    attempt = 0
    while True:
        attempt += 1
        try:
            response = open_url(url, headers=headers or {}, timeout=timeout,
                                validate_certs=validate_certs, http_agent='fleetwall.blocklist')
            body = response.read(MAX_BODY_BYTES + 1)
            if len(body) > MAX_BODY_BYTES:
                raise FetchError('%s: body larger than %d bytes' % (shown, MAX_BODY_BYTES))
            if response.headers.get('Content-Encoding', '').lower() == 'gzip' or body[:2] == b'\x1f\x8b':
                try:
                    body = gzip.decompress(body)
                except (OSError, EOFError) as exc:
                    raise FetchError('%s: gzip body is corrupt or truncated: %s' % (shown, exc))
            return body
        except HTTPError as exc:
            if exc.code in (401, 403):
                raise FetchError('%s: authentication failed (HTTP %d)' % (shown, exc.code))
            if exc.code < 500 or attempt > retries:
                raise FetchError('%s: HTTP %d %s' % (shown, exc.code, exc.reason))
        except (URLError, socket.timeout, http_client.HTTPException, OSError) as exc:
            reason = getattr(exc, 'reason', exc)
            if attempt > retries:
                raise FetchError('%s: %s (after %d attempts)' % (shown, reason, attempt))
        sleep(backoff * (2 ** (attempt - 1)))
