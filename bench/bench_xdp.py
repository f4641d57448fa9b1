"""Benchmark: filling the XDP backend's LPM trie against the raw ways to fill the same trie, in one run.

For each size, with the same entries (/32s, every 20th a /28, as bench_ipset.py makes them):
  raw batch     one BPF_MAP_UPDATE_BATCH of keys packed ahead of time (the floor: the kernel's own work)
  raw bpftool   'bpftool batch file' of one 'map update' line per entry, into a pinned trie (the CLI way)
  new trie      host/xdp.py's XdpMaps.new_trie: packing the keys from the entries' text, then the batch
  edit 1%       XdpMaps.edit of 1% added and 1% removed in a live trie
  per packet    the program's own time per frame (BPF_PROG_TEST_RUN, 1M runs): a listed /32, an address in a
                listed /28, an unlisted one; with the trie of that size in its slot
Each measurement is the median of --repeat runs; the peak memory of a trie is bpftool's 'map show' memlock.

With --process, the whole module process as a host runs it (bench/whole_process.py), in a namespace with a veth
interface to attach to, beside a raw process that does the least a Python program can: read the entries file,
pack the keys, make the trie and fill it with one batch (the fastest raw way measured above; bpftool's batch is
slower). Rows: the raw process, the module's first load, its no-op, and a 1% change (1% added, 1% removed).

Usage: .venv/bin/python bench/bench_xdp.py [--sizes 100000,1000000] [--repeat 3] [--bpftool-max 100000] [--process]
"""
import argparse
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, '.collections'))
sys.path.insert(0, os.path.join(ROOT, 'bench'))

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import bpf, xdp  # noqa: E402
from bench_ipset import make_entries  # noqa: E402
import whole_process  # noqa: E402

# The raw process: the entries file to one filled trie, with nothing else (no record, no pins, no validation).
RAW_PROCESS = """
import socket, struct, sys
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import bpf
with open(sys.argv[1]) as handle:
    lines = handle.read().split()
pack, aton = struct.Struct('<I4s').pack, socket.inet_aton
keys = b''.join(pack(int(l.partition('/')[2] or 32), aton(l.partition('/')[0])) for l in lines)
fd = bpf.create_map(bpf.MAP_TYPE_LPM_TRIE, 8, 1, max(65536, 2 * len(lines)), 'raw', bpf.F_NO_PREALLOC)
bpf.update_batch(fd, keys, b'\\x01' * len(lines), len(lines))
"""


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def raw_batch(keys, count):
    fd = bpf.create_map(bpf.MAP_TYPE_LPM_TRIE, 8, 1, xdp.capacity_for(count), 'bench_raw', bpf.F_NO_PREALLOC)
    try:
        seconds, _taken = timed(lambda: bpf.update_batch(fd, keys, xdp.LISTED * count, count))
    finally:
        os.close(fd)
    return seconds


def raw_bpftool(entries, pins):
    """bpftool's batch mode into a pinned trie: one 'map update' command a line, keys as hex bytes."""
    path = os.path.join(pins, 'bench_cli')
    fd = bpf.create_map(bpf.MAP_TYPE_LPM_TRIE, 8, 1, xdp.capacity_for(len(entries)), 'bench_cli', bpf.F_NO_PREALLOC)
    bpf.pin(fd, path)
    os.close(fd)
    with tempfile.NamedTemporaryFile('w', suffix='.batch', delete=False) as batch:
        for entry in entries:
            key = xdp.trie_key(4, entry)
            batch.write('map update pinned %s key hex %s value hex 01\n' % (path, ' '.join('%02x' % b for b in key)))
    try:
        return timed(lambda: subprocess.run(['bpftool', 'batch', 'file', batch.name], check=True,
                                            stdout=subprocess.DEVNULL))[0]
    finally:
        os.unlink(batch.name)
        os.unlink(path)


def memlock(fd):
    """The trie's memlock in MB, as bpftool reports it."""
    map_id = bpf.object_id(fd)
    shown = json.loads(subprocess.run(['bpftool', '-j', 'map', 'show', 'id', str(map_id)], capture_output=True,
                                      text=True, check=True).stdout)
    return int(shown.get('bytes_memlock', 0)) / 1e6


def bench_size(count, repeat, pins, bpftool_max):
    entries = make_entries(count, seed=count)
    keys = b''.join(xdp.trie_key(4, entry) for entry in entries)
    rows = {'raw batch': [], 'raw bpftool': [], 'new trie': [], 'edit 1%': []}
    memory = None
    for _round in range(repeat):
        rows['raw batch'].append(raw_batch(keys, count))
        if count <= bpftool_max:
            rows['raw bpftool'].append(raw_bpftool(entries, pins))
        seconds, fd = timed(lambda: xdp.XdpMaps.new_trie(4, entries))
        rows['new trie'].append(seconds)
        memory = memlock(fd)
        step = max(1, count // 100)
        fresh = make_entries(step, seed=count + 1, half=1)
        maps = xdp.XdpMaps(pins)
        maps.fds = {xdp.FAMILIES[4][0]: bpf.create_map(bpf.MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 1, 'bench_slot', inner_fd=fd)}
        maps.switch(4, fd)
        rows['edit 1%'].append(timed(lambda: maps.edit(4, fresh, entries[:step]))[0])
        maps.close(list(maps.fds.values()) + [fd])
    return dict((name, statistics.median(values)) for name, values in rows.items() if values), memory


# Below the range make_entries draws from (16.0.0.0 up): never listed.
UNLISTED = '9.9.9.9'


def per_packet_ns(count, pins, runs=1000000):
    """{source kind: ns per frame} of the program with a trie of ``count`` entries, by BPF_PROG_TEST_RUN."""
    entries = make_entries(count, seed=count)
    listed = next(entry for entry in entries if '/' not in entry)
    network = next(entry for entry in entries if '/' in entry)
    inside = network.split('/')[0].rsplit('.', 1)[0] + '.%d' % (int(network.split('/')[0].rsplit('.', 1)[1]) + 5)
    maps = xdp.XdpMaps(os.path.join(pins, 'perpacket-%d' % count))
    tries = {4: xdp.XdpMaps.new_trie(4, entries), 6: xdp.XdpMaps.new_trie(6, [])}
    maps.create(tries)
    maps.close(tries.values())
    try:
        return dict((kind, bpf.test_run(maps.fds[xdp.PROGRAM], frame(source), runs)[1])
                    for kind, source in (('listed', listed), ('cidr', inside), ('unlisted', UNLISTED)))
    finally:
        maps.close(maps.fds.values())
        maps.unpin()


def frame(source):
    """A 60-byte UDP frame from ``source``."""
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 46, 0, 0, 64, 17, 0, socket.inet_aton(source),
                     socket.inet_aton('198.18.255.1'))
    return b'\x02' * 6 + b'\x04' * 6 + b'\x08\x00' + ip + struct.pack('!HHHH', 1234, 9, 26, 0) + b'x' * 18


def process_size(count, repeat, pins, workdir):
    """{row: [runs]} of the module's whole process beside the raw process, ``repeat`` rounds in one namespace."""
    entries = make_entries(count, seed=count)
    step = count // 100
    fresh = make_entries(step, seed=count + 1, half=1)
    files = {'load': os.path.join(workdir, 'entries.txt'), 'one_pct': os.path.join(workdir, 'changed.txt')}
    with open(files['load'], 'w') as handle:
        handle.write('\n'.join(entries) + '\n')
    with open(files['one_pct'], 'w') as handle:
        handle.write('\n'.join(entries[step:] + fresh) + '\n')
    ns = 'fwbxdp-' + uuid.uuid4().hex[:6]
    subprocess.run(['ip', 'netns', 'add', ns], check=True)
    subprocess.run(['ip', '-n', ns, 'link', 'add', 'fwb0', 'type', 'veth', 'peer', 'name', 'fwb1'], check=True)
    subprocess.run(['ip', '-n', ns, 'link', 'set', 'fwb0', 'up'], check=True)
    prefix = ['ip', 'netns', 'exec', ns]
    state_dir = os.path.join(workdir, 'state')
    pin_dir = os.path.join(pins, 'process')
    module = whole_process.module_runner(prefix, 'xdp_set_sync', {
        'name': 'fleetwall_v4', 'type': 'ipv4_addr', 'pin_dir': pin_dir, 'interfaces': ['fwb0'],
        'state_dir': state_dir}, workdir)
    raw = ['env', 'PYTHONPATH=' + whole_process.COLLECTIONS, sys.executable, '-c', RAW_PROCESS, files['load']]
    runs = dict((key, []) for key in ('raw', 'load', 'noop', 'one_pct'))
    try:
        for _round in range(repeat):
            runs['raw'].append(whole_process.run_raw(prefix, raw))
            whole_process.first_load_and_noop(runs, module, files['load'], count)
            runs['one_pct'].append(module(files['one_pct']))
            result = runs['one_pct'][-1]['result']
            assert (result['added'], result['removed']) == (step, step), result
            subprocess.run(prefix + ['ip', 'link', 'set', 'dev', 'fwb0', 'xdpdrv', 'off'], check=True)
            maps = xdp.XdpMaps(pin_dir)
            maps.unpin()
            os.rmdir(pin_dir)
            subprocess.run(['rm', '-rf', state_dir], check=True)
    finally:
        subprocess.run(['ip', 'netns', 'del', ns], check=False)
    return runs


def process_table(count, runs):
    raw = whole_process.summary(runs['raw'], 'seconds')[0]
    cells = dict((key, '%.2f s' % whole_process.summary(runs[key], 'seconds')[0]) for key in runs)
    peaks = dict((key, whole_process.summary(runs[key], 'peak_kb')[0] / 1024.0) for key in ('raw', 'load'))
    load = whole_process.summary(runs['load'], 'seconds')[0]
    return '| {:,} | {} | {} | **{:.2f}x** | {} | {} | {:.0f} / {:.0f} |'.format(
        count, cells['raw'], cells['load'], load / raw, cells['noop'], cells['one_pct'], peaks['raw'], peaks['load'])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', default='100000,1000000')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--bpftool-max', type=int, default=100000,
                        help='largest size bpftool batch is timed at (one CLI command a line is slow)')
    parser.add_argument('--process', action='store_true', help='time the whole module process instead')
    args = parser.parse_args()
    pins = tempfile.mkdtemp(prefix='fleetwall-bench-bpffs-')
    subprocess.run(['mount', '-t', 'bpf', 'bpf', pins], check=True)
    try:
        if args.process:
            print('| entries | raw process | module first load | ratio | no-op | 1% change | peak MB raw / module |')
            print('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
            workdir = tempfile.mkdtemp(prefix='fleetwall-bench-xdp-')
            try:
                for count in (int(size) for size in args.sizes.split(',')):
                    print(process_table(count, process_size(count, args.repeat, pins, workdir)))
            finally:
                subprocess.run(['rm', '-rf', workdir], check=False)
            print('\n/proc/loadavg after: %s' % whole_process.loadavg())
            return
        print('| entries | raw batch | raw bpftool batch | new trie | ratio to raw batch | edit 1% | memlock MB |')
        print('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
        for count in (int(size) for size in args.sizes.split(',')):
            times, memory = bench_size(count, args.repeat, pins, args.bpftool_max)
            cli = '%.2f s' % times['raw bpftool'] if 'raw bpftool' in times else 'not run'
            print('| {:,} | {:.2f} s | {} | {:.2f} s | **{:.2f}x** | {:.3f} s | {:.1f} |'.format(
                count, times['raw batch'], cli, times['new trie'], times['new trie'] / times['raw batch'],
                times['edit 1%'], memory))
        print('\nThe program\'s own time per frame (BPF_PROG_TEST_RUN, 1M runs each), ns:\n')
        print('| trie entries | listed /32 | in a listed /28 | unlisted (passes) |')
        print('| ---: | ---: | ---: | ---: |')
        for count in [100] + [int(size) for size in args.sizes.split(',')]:
            ns = per_packet_ns(count, pins)
            print('| {:,} | {} | {} | {} |'.format(count, ns['listed'], ns['cidr'], ns['unlisted']))
        with open('/proc/loadavg') as handle:
            print('\n/proc/loadavg after: %s' % ' '.join(handle.read().split()[:3]))
    finally:
        subprocess.run(['umount', pins], check=False)
        os.rmdir(pins)


if __name__ == '__main__':
    main()
