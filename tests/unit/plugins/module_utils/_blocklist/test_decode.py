"""Bounded decoding (decode.py): bodies expand as a stream and never past the limit, whatever the ratio."""
import gzip
import subprocess
import sys
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.decode import (
    CorruptBody, TooLarge, decode_bounded)
from ansible_collections.fleetwall.blocklist.tests.helpers import COLLECTIONS, tally

# Nothing of ansible-core is under test here (the kernel, the tools, our own code on the standard library):
# the suite's second pass, with another ansible-core, leaves this file out (tests/conftest.py, scripts/test.sh).
CORE_INDEPENDENT = True

MIB = 1024 * 1024


def bomb(size, wbits):
    """``size`` zero bytes compressed (1 GiB of zeros is about 1 MB of gzip): built in chunks, never whole."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    chunk = bytes(MIB)
    return b''.join(compressor.compress(chunk) for _index in range(size // MIB)) + compressor.flush()


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=5000), st.sampled_from(['gzip', 'zlib', 'raw']))
def test_round_trip_within_the_limit(data, encoding):
    if encoding == 'gzip':
        packed = gzip.compress(data)
    elif encoding == 'zlib':
        packed = zlib.compress(data)
    else:
        packed = data
        if data[:2] == b'\x1f\x8b':
            return  # a plain body that starts like gzip is decoded as gzip, as providers' .gz files are
    assert decode_bounded(packed, len(data), '' if encoding != 'zlib' else 'zlib') == data
    if data:
        with pytest.raises(TooLarge):
            decode_bounded(packed, len(data) - 1, '' if encoding != 'zlib' else 'zlib')


def test_gzip_members_one_after_another_are_one_body():
    assert decode_bounded(gzip.compress(b'1.2.3.4\n') + gzip.compress(b'5.6.7.8\n'), 100) == b'1.2.3.4\n5.6.7.8\n'


@pytest.mark.parametrize('encoding', ['gzip', 'deflate'])
def test_cut_or_corrupt_streams_are_errors(encoding):
    packed = gzip.compress(b'1.2.3.4\n' * 1000) if encoding == 'gzip' else zlib.compress(b'1.2.3.4\n' * 1000)
    tally('bad inputs tried: compressed bodies', 3)
    with pytest.raises(CorruptBody, match='ends early'):
        decode_bounded(packed[:len(packed) // 2], MIB, encoding)
    with pytest.raises(CorruptBody):
        decode_bounded(packed[:10] + b'\xff' * 50 + packed[60:], MIB, encoding)
    with pytest.raises(CorruptBody, match='trailing data'):
        decode_bounded(packed + b'garbage', MIB, encoding)


def test_raw_deflate_is_read_as_some_servers_send_it():
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    packed = compressor.compress(b'198.51.100.1\n') + compressor.flush()
    assert decode_bounded(packed, 100, 'deflate') == b'198.51.100.1\n'


# The child's own peak is its address space's high-water mark (VmHWM), which starts afresh at exec: its
# ru_maxrss also counts the pytest process it was forked from (289 MB late in the suite).
CHILD = r'''
import sys, zlib
sys.path.insert(0, %(collections)r)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.decode import TooLarge, decode_bounded
packed = open(%(path)r, 'rb').read()
try:
    decode_bounded(packed, %(limit)d, %(encoding)r)
    print('decoded')
except TooLarge:
    print('too large')
print([int(line.split()[1]) // 1024 for line in open('/proc/self/status') if line.startswith('VmHWM:')][0])
'''


@pytest.mark.parametrize('wbits,encoding', [(31, ''), (15, 'zlib')])
def test_a_two_gib_bomb_stops_at_the_limit_in_bounded_memory(tmp_path, wbits, encoding):
    """A real bomb: 2 GiB of zeros in about 2 MB. Expanded whole (as gzip.decompress did) the process
    peaked over 4 GB; bounded at 64 MiB it must stay near that: well under 256 MB in all."""
    path = tmp_path / 'bomb'
    # This process never holds the 2 GiB: traced here, not by its lifetime peak (ru_maxrss), which the suite's
    # earlier tests may have raised past anything this one does.
    tracemalloc.start()
    try:
        path.write_bytes(bomb(2048 * MIB, wbits))
        built_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert path.stat().st_size < 3 * MIB and built_peak < 64 * MIB, built_peak
    tally('bad inputs tried: compressed bodies')
    out = subprocess.run([sys.executable, '-c', CHILD % {'collections': COLLECTIONS, 'path': str(path),
                                                         'limit': 64 * MIB, 'encoding': encoding}],
                         capture_output=True, text=True, timeout=120, check=True).stdout.split('\n')
    verdict, peak_mb = out[0], int(out[1])
    assert verdict == 'too large'
    assert peak_mb < 256, peak_mb
