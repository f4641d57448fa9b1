"""nginx's memory, start and reload time with the blocklist's geo file, current layout against ``ranges`` (issue 30).

    sudo .venv/bin/python bench/bench_nginx_memory.py [--sizes 100000,1000000] [--layouts cidr,ranges,ranges-nobin]

The same IPv4 entries (bench_ipset's mix: unique, non-overlapping /32s with every 20th a /28) in three layouts:

  cidr          the layout before 0.5.0 (``render_cidr``, as the module wrote it then) (``203.0.113.7 block;``,
                ``198.51.100.0/28 block;``), included as roles/nginx/templates/fleetwall.conf.j2 does:
                ``geo $fleetwall_tier { default ""; include FILE; }``
  ranges        the same entries as sorted ``a.b.c.d-e.f.g.h block;`` lines in ``geo $fleetwall_tier { ranges;
                default ""; include FILE; }``.  Above 100,000 entries nginx writes a binary copy of the parsed base,
                ``FILE.bin``, beside the file, and the next parse reads that instead when it is not older than FILE
                (ngx_http_geo_module: one include, no entry outside it).
  ranges-nobin  the module's own ranges file (``render_geo(...)[0]``, sorted, merged), plus a second, empty include
                in the block (the role includes /dev/null), which keeps nginx from writing ``FILE.bin``
                (it would still read one left over and not older than FILE): every parse here reads the text.

Per layout and size, in a private network namespace (nothing touches /etc/nginx or a running nginx; pid, logs,
lock and temp paths are in a private directory): ``nginx -t`` of the new file (the whole process, as the module's
validation runs it; median of 3, peak RSS by GNU time), nginx started (``worker_processes 2``), the RSS and PSS of the master and each worker once it
serves; then an apply as the module does it (the file rewritten through a rename, ``nginx -t``, ``nginx -s
reload``): the time until a new worker answers, and RSS/PSS once the old workers are gone; then a second reload
by SIGHUP with the file unchanged.  Each layout is checked to block what it lists: requests from addresses on
the loopback of the namespace (a listed /32, its unlisted neighbour, the first, last and next address of a
listed /28) must get 403 exactly where the entries say so, before and after the reload.
"""
import argparse
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, '.collections'))
sys.path.insert(0, os.path.join(ROOT, 'lab'))

from private_nginx import nginx_conf  # noqa: E402
os.environ['PATH'] = '/usr/local/sbin:/usr/sbin:/sbin:' + os.environ.get('PATH', '')

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nginx import (  # noqa: E402
    desired_geo, render_geo,
)

NGINX = shutil.which('nginx')
TIME = shutil.which('time') if os.path.exists('/usr/bin/time') else None
VARIABLE = 'fleetwall_tier'   # roles/nginx/defaults: nginx_variable
VALUE = 'block'               # nginx_block_value
MB = 1024.0 * 1024.0

# Runs inside the namespace: one HTTP/1.0 GET per line "SRC DST PORT TIMEOUT", answers "STATUS BODY" or "ERR ...".
PROBER = r'''
import socket, sys
for line in sys.stdin:
    src, dst, port, timeout = line.split()
    try:
        s = socket.socket()
        s.settimeout(float(timeout))
        if src != "-":
            s.bind((src, 0))
        s.connect((dst, int(port)))
        s.sendall(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        head, _sep, body = data.partition(b"\r\n\r\n")
        print(head.split(b" ")[1].decode(), body.decode().strip().replace(" ", "_") or "-", flush=True)
    except Exception as exc:
        print("ERR", type(exc).__name__, flush=True)
'''


def make_entries(count, seed):
    """bench_ipset.make_entries (half 0): unique, non-overlapping /32s with every 20th a /28."""
    rng = random.Random(seed)
    low, high = 1 << 20, (223 << 24) >> 4
    mid = (low + high) // 2
    blocks = rng.sample(range(low, mid), count)
    out = []
    for i, block in enumerate(blocks):
        base = block << 4
        if i % 20 == 0:
            out.append('%s/28' % ip4(base))
        else:
            out.append(ip4(base + rng.randrange(16)))
    return out


def ip4(n):
    return socket.inet_ntoa(struct.pack('!I', n))


def ip4_int(text):
    return struct.unpack('!I', socket.inet_aton(text))[0]


def span(entry):
    addr, _sep, prefix = entry.partition('/')
    start = ip4_int(addr)
    size = 1 << (32 - int(prefix or 32))
    return start, start + size - 1


def render_cidr(entries):
    """The layout before 0.5.0: every entry as ``CIDR VALUE;``, in one geo block without ``ranges``."""
    order = sorted(entries, key=lambda e: (':' in e, e))
    return '# cidr layout (bench_nginx_memory)\n' + ''.join('%s %s;\n' % (e, entries[e]) for e in order)


def render_ranges(entries):
    """``start-end VALUE;`` lines in ascending order (nginx appends a growing sequence in O(1); an entry inside an
    earlier one splits it, so a wider range sorts before the narrower ones it holds)."""
    spans = sorted((span(e) + (v,) for e, v in entries.items() if ':' not in e), key=lambda s: (s[0], -s[1]))
    return ('# ranges layout (bench_nginx_memory)\n'
            + ''.join('%s-%s %s;\n' % (ip4(s), ip4(e), v) for s, e, v in spans))


def geo_block(layout, geo_file, empty_file):
    if layout == 'cidr':   # roles/nginx/templates/fleetwall.conf.j2
        return 'geo $%s {\n    default "";\n    include %s;\n}\n' % (VARIABLE, geo_file)
    extra = '    include %s;\n' % empty_file if layout == 'ranges-nobin' else ''
    return 'geo $%s {\n    ranges;\n    default "";\n    include %s;\n%s}\n' % (VARIABLE, geo_file, extra)


def bench_conf(root, port, geo):
    """Two workers, so that a reload's old and new generations can be told apart by the pid in the answer."""
    return nginx_conf(root, geo + '''    server {{
        listen 127.0.0.1:{port};
        default_type text/plain;
        location / {{
            if (${var} = "{value}") {{
                return 403 "block $pid\\n";
            }}
            return 200 "pass $pid\\n";
        }}
    }}
'''.format(port=port, var=VARIABLE, value=VALUE), workers=2, error_level='notice')


def write_file(path, text):
    """As the module installs it: a new file renamed over the old one."""
    tmp = path + '.new'
    with open(tmp, 'w') as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(tmp, path)


class Namespace(object):
    def __init__(self):
        self.name = 'fwngxmem-' + uuid.uuid4().hex[:6]
        subprocess.run(['ip', 'netns', 'add', self.name], check=True, timeout=30)
        self.prober = None
        self.sh('ip link set lo up')
        self.prober = subprocess.Popen(['ip', 'netns', 'exec', self.name, sys.executable, '-u', '-c', PROBER],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def sh(self, script, timeout=30):
        subprocess.run(['ip', 'netns', 'exec', self.name, 'sh', '-ec', script], check=True, timeout=timeout)

    def cmd(self, args):
        return ['ip', 'netns', 'exec', self.name] + list(args)

    def get(self, port, src='-', timeout=2.0):
        """(status, body) of one GET on 127.0.0.1:port from src, or ('ERR', reason)."""
        self.prober.stdin.write('%s 127.0.0.1 %d %.1f\n' % (src, port, timeout))
        self.prober.stdin.flush()
        ready, _w, _x = select.select([self.prober.stdout], [], [], timeout + 5)
        if not ready:
            raise RuntimeError('the prober did not answer within %.0f s' % (timeout + 5))
        status, _sep, body = self.prober.stdout.readline().strip().partition(' ')
        return status, body

    def close(self):
        if self.prober is not None:
            try:
                self.prober.stdin.close()
            except OSError:
                pass
            try:
                self.prober.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.prober.kill()
                self.prober.wait(timeout=5)
        pids = subprocess.run(['ip', 'netns', 'pids', self.name], stdout=subprocess.PIPE, text=True,
                              check=False, timeout=30).stdout.split()
        for pid in pids:   # only processes inside our own namespace: nginx and the prober
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        deadline = time.monotonic() + 10
        while pids and time.monotonic() < deadline and any(alive(int(p)) for p in pids):
            time.sleep(0.05)
        subprocess.run(['ip', 'netns', 'del', self.name], check=False, timeout=30)


def run_timed(ns, args, timeout):
    """(rc, seconds, peak RSS in MB, stderr) of one nginx process in the namespace.  The peak is GNU time's %M (the
    child's own ru_maxrss: a process forked straight from this one would carry this process's high-water mark)."""
    with tempfile.NamedTemporaryFile('r', prefix='fwngxmem-time-') as out:
        command = [TIME, '-f', '%M', '-o', out.name] if TIME else []
        start = time.perf_counter()
        proc = subprocess.run(ns.cmd(command + [NGINX] + list(args)), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, timeout=timeout, check=False)
        seconds = time.perf_counter() - start
        text = out.read().strip().splitlines()
    peak = int(text[-1]) / 1024.0 if text and text[-1].isdigit() else None
    return proc.returncode, seconds, peak, proc.stderr


def alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (IOError, OSError):
        return False


def children(pid):
    out = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as handle:
                fields = handle.read().rsplit(')', 1)[1].split()
        except (IOError, OSError):
            continue
        if fields[0] != 'Z' and int(fields[1]) == pid:
            out.append(int(entry))
    return sorted(out)


def memory(pid):
    """{'rss', 'pss', 'hwm'} in MB; pss None without smaps_rollup."""
    out = {'pss': None}
    with open('/proc/%d/status' % pid) as handle:
        for line in handle:
            if line.startswith('VmRSS:'):
                out['rss'] = int(line.split()[1]) / 1024.0
            elif line.startswith('VmHWM:'):
                out['hwm'] = int(line.split()[1]) / 1024.0
    try:
        with open('/proc/%d/smaps_rollup' % pid) as handle:
            for line in handle:
                if line.startswith('Pss:'):
                    out['pss'] = int(line.split()[1]) / 1024.0
    except (IOError, OSError):
        pass
    return out


def read_pid(path, deadline):
    while time.monotonic() < deadline:
        try:
            with open(path) as handle:
                text = handle.read().strip()
            if text.isdigit() and alive(int(text)):
                return int(text)
        except (IOError, OSError):
            pass
        time.sleep(0.01)
    raise RuntimeError('no nginx master in %s' % path)


def wait_serving(ns, port, old_workers, deadline):
    """Poll GETs until a worker that is not one of old_workers answers; the pid it answered with."""
    while time.monotonic() < deadline:
        status, body = ns.get(port, timeout=1.0)
        if status in ('200', '403'):
            pid = int(body.split('_')[-1])
            if pid not in old_workers:
                return pid
        time.sleep(0.01)
    raise RuntimeError('nginx on port %d did not serve from a new worker in time' % port)


def snapshot(master, workers):
    return {'master': memory(master), 'workers': [memory(w) for w in workers]}


def settle_workers(master, old, deadline, count=2):
    """Wait until the old workers are gone and `count` new ones run; the new ones."""
    while time.monotonic() < deadline:
        current = children(master)
        if not any(alive(p) for p in old) and len([p for p in current if p not in old]) >= count:
            return [p for p in current if p not in old]
        time.sleep(0.05)
    raise RuntimeError('the old workers of %d did not exit in time' % master)


def check_blocking(ns, port, probes):
    """[(address, expected, got)] of GETs from each probe address; got is 'block', 'pass' or an error."""
    out = []
    for address, expected in probes:
        status, body = ns.get(port, src=address, timeout=3.0)
        got = {'403': 'block', '200': 'pass'}.get(status, '%s %s' % (status, body))
        out.append((address, expected, got))
    return out


def probe_addresses(entries):
    """Listed and unlisted addresses around a /32 and a /28 of the entries, with what each should get."""
    singles = set()
    nets = set()
    for entry in entries:
        if '/' in entry:
            nets.add(ip4_int(entry.split('/')[0]))
        else:
            singles.add(ip4_int(entry))

    def expected(n):
        return 'block' if n in singles or (n & ~15) in nets else 'pass'
    single = min(singles)
    net = min(nets)
    picks = [single, single ^ 1, net, net + 15, net + 16]
    return [(ip4(n), expected(n)) for n in picks]


def bench_layout(ns, layout, size, entries, desired, probes, tmp, port, timeout):
    root = os.path.join(tmp, '%s-%d' % (layout, size))
    os.makedirs(os.path.join(root, 'tmp'))
    geo_file = os.path.join(root, 'blocklist.geo')
    empty_file = os.path.join(root, 'empty.geo')
    open(empty_file, 'w').close()
    conf = os.path.join(root, 'nginx.conf')
    with open(conf, 'w') as handle:
        handle.write(bench_conf(root, port, geo_block(layout, geo_file, empty_file)))
    started = time.perf_counter()
    if layout == 'cidr':
        text = render_cidr(desired)
    elif layout == 'ranges-nobin':
        text = render_geo(desired)[0]       # the module's own ranges file (IPv4; the bench lists no IPv6)
    else:
        text = render_ranges(desired)
    row = {'layout': layout, 'size': size, 'lines': text.count(';\n'), 'render': time.perf_counter() - started}
    write_file(geo_file, text)
    row['file_mb'] = os.path.getsize(geo_file) / MB
    base = ['-p', root + '/', '-c', conf]
    test = ['-t', '-q'] + base

    # nginx -t of the text, median of 3 (the first process to touch a few hundred MB is slower on this VM); with
    # ranges, nginx writes FILE.bin each time, so it goes before each run.
    binary = geo_file + '.bin'
    runs = []
    for _i in range(3):
        if os.path.exists(binary):
            os.unlink(binary)
        rc, seconds, peak, err = run_timed(ns, test, timeout)
        if rc != 0:
            raise RuntimeError('nginx -t failed for %s: %s' % (layout, err[-2000:]))
        runs.append((seconds, peak))
    row['test_runs'] = [r[0] for r in runs]
    row['test'] = sorted(r[0] for r in runs)[1]
    row['test_peak'] = max(r[1] or 0 for r in runs) or None
    row['bin_mb'] = os.path.getsize(binary) / MB if os.path.exists(binary) else None
    if row['bin_mb'] is not None:   # what the next parse reads instead of the text
        rc, row['test_bin'], row['test_bin_peak'], err = run_timed(ns, test, timeout)

    master = None
    try:
        start = time.perf_counter()
        rc, row['start_proc'], row['start_peak'], err = run_timed(ns, base, timeout)
        if rc != 0:
            raise RuntimeError('nginx did not start for %s: %s' % (layout, err[-2000:]))
        deadline = time.monotonic() + timeout
        master = read_pid(os.path.join(root, 'nginx.pid'), deadline)
        wait_serving(ns, port, set(), deadline)
        row['start'] = time.perf_counter() - start
        workers = settle_workers(master, [], deadline)
        time.sleep(0.2)
        row['after_start'] = snapshot(master, workers)
        row['check_start'] = check_blocking(ns, port, probes)

        # An apply: the file rewritten through a rename (a second later, so its mtime is newer than any FILE.bin
        # of the last parse), nginx -t, nginx -s reload.
        binary_mtime = int(os.path.getmtime(binary)) if os.path.exists(binary) else 0
        wait_until = time.monotonic() + 2.5
        while int(time.time()) <= binary_mtime and time.monotonic() < wait_until:
            time.sleep(0.05)
        write_file(geo_file, text)
        rc, row['test2'], _peak, err = run_timed(ns, test, timeout)
        if rc != 0:
            raise RuntimeError('nginx -t failed for %s: %s' % (layout, err[-2000:]))
        old = children(master)
        start = time.perf_counter()
        rc, row['reload_proc'], row['reload_proc_peak'], err = run_timed(ns, ['-s', 'reload'] + base, timeout)
        if rc != 0:
            raise RuntimeError('nginx -s reload failed for %s: %s' % (layout, err[-2000:]))
        deadline = time.monotonic() + timeout
        wait_serving(ns, port, set(old), deadline)
        row['reload'] = time.perf_counter() - start
        workers = settle_workers(master, old, deadline)
        row['old_gone'] = time.perf_counter() - start
        time.sleep(0.2)
        row['after_reload'] = snapshot(master, workers)
        row['check_reload'] = check_blocking(ns, port, probes)

        # A second reload, by signal, the file unchanged.
        old = children(master)
        start = time.perf_counter()
        os.kill(master, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        wait_serving(ns, port, set(old), deadline)
        row['hup'] = time.perf_counter() - start
        workers = settle_workers(master, old, deadline)
        time.sleep(0.2)
        row['after_hup'] = snapshot(master, workers)
    finally:
        stop(master, root)
    with open(os.path.join(root, 'error.log')) as handle:
        row['log'] = [strip_pid(line.split('] ', 1)[-1].split(' in /')[0]) for line in handle if 'binary geo' in line]
    os.unlink(geo_file)   # the 1M files are large; the run's temp dir goes at the end anyway
    if os.path.exists(binary):
        os.unlink(binary)
    return row


def stop(master, root):
    if master is None:
        try:
            with open(os.path.join(root, 'nginx.pid')) as handle:
                master = int(handle.read().strip())
        except (IOError, OSError, ValueError):
            return
    procs = [master] + children(master)
    try:
        os.kill(master, signal.SIGTERM)
    except OSError:
        pass
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(p) for p in procs):
        time.sleep(0.05)
    for pid in procs:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def ipv6_probe(ns, tmp):
    """What nginx -t says to IPv6 and CIDR lines in a ranges geo block."""
    out = []
    root = os.path.join(tmp, 'ipv6-probe')
    os.makedirs(os.path.join(root, 'tmp'))
    for label, body in (('IPv6 range', '2001:db8::1-2001:db8::ff block;'),
                        ('IPv6 CIDR', '2001:db8::/32 block;'),
                        ('IPv4 CIDR', '192.0.2.0/24 block;'),
                        ('range ending at 255.255.255.255', '240.0.0.0-255.255.255.255 block;'),
                        ('partly overlapping ranges', '192.0.2.0-192.0.2.255 block; 192.0.2.128-192.0.3.5 block;'),
                        ('a range inside an earlier one', '192.0.2.0-192.0.2.255 block; 192.0.2.7-192.0.2.7 x;'),
                        ('a range around an earlier one', '192.0.2.7-192.0.2.7 x; 192.0.2.0-192.0.2.255 block;')):
        conf = os.path.join(root, 'nginx.conf')
        geo = 'geo $%s {\n    ranges;\n    default "";\n    %s\n}\n' % (VARIABLE, body)
        with open(conf, 'w') as handle:
            handle.write(bench_conf(root, 8999, geo))
        rc, _s, _p, err = run_timed(ns, ['-t', '-q', '-p', root + '/', '-c', conf], 60)
        message = [line for line in err.splitlines() if '[emerg]' in line]
        out.append((label, 'accepted' if rc == 0 else 'rejected: %s' % strip_pid(message[0].split('] ', 1)[-1].split(' in /')[0])
                    if message else 'rejected'))
    return out


def strip_pid(text):
    """An error.log message without its leading ``PID#TID: ``."""
    head, sep, rest = text.partition(': ')
    return rest.strip() if sep and head.replace('#', '').isdigit() else text.strip()


def mem(m):
    if m['pss'] is None:
        return '%.0f' % m['rss']
    return '%.0f / %.0f' % (m['rss'], m['pss'])


def peak(mb):
    return '-' if mb is None else '%.0f MB' % mb


def workers_mem(ms):
    return ', '.join(mem(m) for m in ms)


def total_pss(snap):
    values = [snap['master']['pss']] + [w['pss'] for w in snap['workers']]
    return None if None in values else sum(values)


def report(rows, probe):
    print()
    print('| layout | entries | file | nginx -t | start | master RSS / PSS | workers RSS / PSS (each) | '
          'after reload: master RSS / PSS | after reload: workers RSS / PSS | reload | total PSS, start -> reload |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for r in rows:
        print('| %s | %d | %.1f MB | %.2f s | %.2f s | %s MB | %s MB | %s MB | %s MB | %.2f s | %.0f -> %.0f MB |' % (
            r['layout'], r['size'], r['file_mb'], r['test'], r['start'], mem(r['after_start']['master']),
            workers_mem(r['after_start']['workers']), mem(r['after_reload']['master']),
            workers_mem(r['after_reload']['workers']), r['reload'], total_pss(r['after_start']) or 0,
            total_pss(r['after_reload']) or 0))
    print()
    print('| layout | entries | render (Python) | FILE.bin | nginx -t, 3 runs | nginx -t peak RSS | nginx -t, FILE.bin fresh | '
          'start process peak RSS | apply: nginx -t | apply: nginx -s reload process (peak RSS) | master VmHWM | '
          'old workers gone | second reload (HUP) | after HUP: master; workers RSS / PSS | blocking (start / reload) |')
    print('|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
    for r in rows:
        checks = []
        for key in ('check_start', 'check_reload'):
            bad = [c for c in r[key] if c[1] != c[2]]
            checks.append('ok (%d)' % len(r[key]) if not bad else 'WRONG: %s' % bad)
        print('| %s | %d | %.2f s | %s | %s | %s | %s | %s | %.2f s | %.2f s (%s) | %.0f MB | %.2f s | %.2f s | %s; %s MB | %s |' % (
            r['layout'], r['size'], r['render'], '%.1f MB' % r['bin_mb'] if r['bin_mb'] is not None else '-',
            ', '.join('%.2f' % t for t in r['test_runs']) + ' s', peak(r['test_peak']),
            '%.2f s (%s)' % (r['test_bin'], peak(r['test_bin_peak'])) if 'test_bin' in r else '-',
            peak(r['start_peak']), r['test2'], r['reload_proc'], peak(r['reload_proc_peak']),
            r['after_reload']['master']['hwm'], r['old_gone'], r['hup'], mem(r['after_hup']['master']),
            workers_mem(r['after_hup']['workers']), ' / '.join(checks)))
    print()
    for r in rows:
        if r['log']:
            print('- %s %d, error.log: %s' % (r['layout'], r['size'], '; '.join(sorted(set(r['log'])))))
    print()
    print('`ranges` and what nginx -t says (nginx %s):' % nginx_version())
    print()
    for label, result in probe:
        print('- %s: %s' % (label, result))
    sys.stdout.flush()


def nginx_version():
    err = subprocess.run([NGINX, '-v'], stderr=subprocess.PIPE, text=True, check=False, timeout=30).stderr
    return err.strip().split('/')[-1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--sizes', default='100000,1000000')
    parser.add_argument('--layouts', default='cidr,ranges,ranges-nobin')
    parser.add_argument('--seed', type=int, default=30)
    parser.add_argument('--timeout', type=float, default=300, help='bound of each wait, in seconds')
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit('needs root (ip netns)')
    tmp = tempfile.mkdtemp(prefix='fleetwall-nginx-mem-')
    ns = None
    rows = []
    on_lo = set()
    try:
        ns = Namespace()
        probe = ipv6_probe(ns, tmp)
        port = 8100
        for size in [int(s) for s in args.sizes.split(',')]:
            entries = make_entries(size, args.seed)
            desired = desired_geo([{'value': VALUE, 'lines': entries}])
            probes = probe_addresses(entries)
            new = [a for a, _e in probes if a not in on_lo]
            if new:
                ns.sh(''.join('ip addr add %s/32 dev lo\n' % a for a in new))
                on_lo.update(new)
            for layout in args.layouts.split(','):
                port += 1
                print('%s %d ...' % (layout, size), file=sys.stderr, flush=True)
                rows.append(bench_layout(ns, layout, size, entries, desired, probes, tmp, port, args.timeout))
                print('  nginx -t %.2f s, start %.2f s, reload %.2f s, total PSS %.0f -> %.0f MB' % (
                    rows[-1]['test'], rows[-1]['start'], rows[-1]['reload'], total_pss(rows[-1]['after_start']) or 0,
                    total_pss(rows[-1]['after_reload']) or 0), file=sys.stderr, flush=True)
        report(rows, probe)
    finally:
        if ns is not None:
            ns.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
