# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Bodies decoded as they arrive, never past a limit on the decoded size.

A 2 MB gzip body can expand to 2 GiB: a limit on the compressed bytes bounds
nothing.  Every place that expands data from outside the run (feed bodies
over HTTP, feed files and mirrors, the entries the controller sends
compressed to the hosts) goes through ``BoundedDecoder``, which asks zlib for
at most what is left of the budget at each step, so memory stays near the
limit whatever the compression ratio.
"""

from __future__ import annotations

import io
import zlib

GZIP_MAGIC = b'\x1f\x8b'
CHUNK = 64 * 1024


class TooLarge(Exception):
    """The decoded data would be larger than the limit; nothing past the limit was kept."""


class CorruptBody(Exception):
    """The compressed stream is corrupt or was cut short."""


def _wbits(encoding, head):
    """zlib's wbits for a body, or None for an identity body.

    A gzip magic is honoured whatever the headers say (providers serve .gz
    files as application/octet-stream); HTTP's ``deflate`` is the zlib format,
    though some servers send a raw deflate stream, told apart by the zlib
    header's checksum.
    """
    if encoding in ('gzip', 'x-gzip') or head[:2] == GZIP_MAGIC:
        return 16 + zlib.MAX_WBITS
    if encoding == 'deflate':
        if len(head) >= 2 and head[0] & 0x0f == 8 and (head[0] * 256 + head[1]) % 31 == 0:
            return zlib.MAX_WBITS
        return -zlib.MAX_WBITS
    return None


class BoundedDecoder(object):
    """Feed compressed (or plain) chunks in, get at most ``limit`` decoded bytes out.

    ``encoding`` is the HTTP Content-Encoding ('' for none, or ``zlib`` for a
    bare zlib stream); a gzip magic is detected in any case.
    """

    def __init__(self, limit, encoding=''):
        self.limit = limit
        self.encoding = (encoding or '').strip().lower()
        self.raw_size = 0
        self.size = 0
        self._out = io.BytesIO()
        self._pending = b''
        self._decompressor = None
        self._wbits = None
        self._started = False

    def feed(self, data):
        self.raw_size += len(data)
        if not self._started:
            # The magic takes two bytes; a trickling server may send one.
            self._pending += data
            if len(self._pending) < 2:
                return
            data, self._pending = self._pending, b''
            self._start(data)
        self._take(data)

    def _take(self, data):
        if self._decompressor is None:
            self._keep(data)
        else:
            self._inflate(data)

    def _start(self, head):
        self._started = True
        encoding = 'deflate' if self.encoding == 'zlib' else self.encoding
        self._wbits = _wbits(encoding, head)
        if self._wbits is not None:
            self._decompressor = zlib.decompressobj(self._wbits)

    def _keep(self, data):
        if self.size + len(data) > self.limit:
            raise TooLarge('more than %d bytes' % self.limit)
        self._out.write(data)
        self.size += len(data)

    def _inflate(self, data):
        while data:
            budget = self.limit - self.size + 1
            try:
                out = self._decompressor.decompress(data, budget)
            except zlib.error as exc:
                raise CorruptBody('the compressed stream is corrupt: %s' % exc)
            self._keep(out)
            data = self._decompressor.unconsumed_tail
            if self._decompressor.eof:
                data = self._next_member(self._decompressor.unused_data + data)

    def _next_member(self, rest):
        """gzip allows members one after another (as ``gzip.decompress`` reads them); trailing zeros are padding."""
        if not rest or not rest.strip(b'\x00'):
            return b''
        if self._wbits == 16 + zlib.MAX_WBITS and rest[:2] == GZIP_MAGIC:
            self._decompressor = zlib.decompressobj(self._wbits)
            return rest
        raise CorruptBody('%d bytes of trailing data after the compressed stream' % len(rest))

    def finish(self):
        """The decoded bytes; CorruptBody when the compressed stream stopped short."""
        if not self._started:
            data, self._pending = self._pending, b''
            self._start(data)
            self._take(data)
        if self._decompressor is not None and not self._decompressor.eof and self.raw_size:
            raise CorruptBody('the compressed stream ends early (truncated)')
        return self._out.getvalue()


def decode_bounded(data, limit, encoding=''):
    """``data`` decoded (gzip detected, or ``encoding``), at most ``limit`` bytes; TooLarge past it."""
    decoder = BoundedDecoder(limit, encoding)
    view = memoryview(data)
    for start in range(0, len(data), CHUNK):
        decoder.feed(view[start:start + CHUNK].tobytes())
    return decoder.finish()


def read_bounded(read, limit, encoding='', cancelled=None):
    """Call ``read(CHUNK)`` until it returns nothing and return the decoded bytes (see BoundedDecoder).

    ``cancelled`` (a threading.Event) stops the reading between chunks: a
    fetch abandoned at its deadline must not go on filling memory.
    """
    decoder = BoundedDecoder(limit, encoding)
    while True:
        if cancelled is not None and cancelled.is_set():
            raise CorruptBody('abandoned at the deadline')
        chunk = read(CHUNK)
        if not chunk:
            return decoder, decoder.finish()
        decoder.feed(chunk)
