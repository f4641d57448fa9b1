"""UFW, firewalld and nginx backends beside the naive per-entry method and the raw tool, in the same run.

Each backend runs in a network namespace with a private mount namespace (its own /etc/ufw,
/etc/firewalld, /run and system D-Bus), so nothing here touches this machine's firewall.

    sudo .venv/bin/python bench/bench_backends.py [--sizes 10000,100000] [--naive 200] [--backends firewalld]

Per backend and size: a full load into an empty backend, a no-op, and a 1% change (0.5% out, 0.5% in),
firewalld's each a whole ``python -m`` run of its module (UFW's and nginx's the engine in this process),
then the naive per-entry method on --naive entries (its per-entry time is what matters; at 10k entries
it would run for hours, so it is extrapolated and labelled so).
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, '.collections'))
os.environ['PATH'] = '/usr/local/sbin:/usr/sbin:/sbin:' + os.environ.get('PATH', '')

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ufw import UfwTaggedRules  # noqa
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nginx import GeoFile  # noqa
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import SyncError  # noqa


class Box(object):
    """A netns plus a mount namespace in which ``binds`` (src -> target) are mounted."""

    def __init__(self, binds, start=''):
        self.ns = 'fwbench-' + uuid.uuid4().hex[:6]
        subprocess.run(['ip', 'netns', 'add', self.ns], check=True)
        mounts = ' && '.join('mount --bind %s %s' % (s, t) for s, t in binds)
        script = 'mount -t tmpfs tmpfs /run && mkdir -p /run/dbus && %s && %s exec sleep 3600' % (
            mounts, start)
        self.holder = subprocess.Popen(['ip', 'netns', 'exec', self.ns, 'unshare', '--mount', '--propagation',
                                        'private', 'sh', '-c', script], start_new_session=True)
        time.sleep(0.5)

    def run(self, args, data=None, check_rc=False):
        proc = subprocess.run(['nsenter', '-t', str(self.holder.pid), '-n', '-m', '--'] + list(args), input=data,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=3600, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def close(self):
        for pid in subprocess.run(['ip', 'netns', 'pids', self.ns], stdout=subprocess.PIPE,
                                  text=True, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        try:
            os.killpg(self.holder.pid, signal.SIGKILL)
        except OSError:
            pass
        self.holder.wait()
        subprocess.run(['ip', 'netns', 'del', self.ns], check=False)


def addresses(n, offset=0):
    return ['10.%d.%d.%d' % ((i >> 16) & 255, (i >> 8) & 255, i & 255) for i in range(offset + 1, offset + n + 1)]


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def one_percent(entries):
    k = max(1, len(entries) // 200)
    return entries[k:] + addresses(k, offset=len(entries) + 1000)


def bench_ufw(size, naive, tmp):
    etc = os.path.join(tmp, 'ufw-%d' % size)
    shutil.copytree('/etc/ufw', etc)
    box = Box([(etc, '/etc/ufw')])
    try:
        box.run(['ufw', 'allow', '22/tcp'])
        box.run(['ufw', '--force', 'enable'])
        bins = {t: shutil.which(t) for t in ('ufw', 'iptables', 'iptables-restore', 'ip6tables-restore')}
        rules = UfwTaggedRules(box.run, bins, rules_dir=etc)
        entries = addresses(size)
        row = {'full': timed(lambda: rules.sync(entries)), 'noop': timed(lambda: rules.sync(entries)),
               'one_percent': timed(lambda: rules.sync(one_percent(entries)))}
        rules.sync([])
        reload_rules = UfwTaggedRules(box.run, bins, rules_dir=etc, apply_with='reload')
        row['full_with_ufw_reload'] = timed(lambda: reload_rules.sync(entries))
        rules.sync([])
        sample = addresses(naive, offset=size + 5000)
        box.run(['ufw', 'deny', 'from', sample[0], 'comment', 'naive'])
        row['naive_per_entry'] = timed(lambda: [box.run(['ufw', 'insert', '1', 'deny', 'from', a, 'comment', 'naive'])
                                                for a in sample[1:]]) / (naive - 1)
        return row
    finally:
        box.close()


def module_process(box, module, args, tmp):
    """One of the collection's modules as a host runs it: a whole ``python -m`` process in the box, whose result
    is returned (a failure raises SyncError, as the engine would have)."""
    path = os.path.join(tmp, 'args-%s.json' % module)
    with open(path, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
    rc, out, err = box.run(['env', 'PYTHONPATH=' + os.path.join(ROOT, '.collections'), sys.executable, '-m',
                            'ansible_collections.fleetwall.blocklist.plugins.modules.' + module, path])
    result = json.loads(out) if out.strip() else {'failed': True, 'msg': err[-500:]}
    if result.get('failed'):
        raise SyncError(result.get('msg', 'failed'))
    return result


def bench_firewalld(size, naive, tmp):
    etc = os.path.join(tmp, 'firewalld-%d' % size)
    shutil.copytree('/etc/firewalld', etc)
    start = ('dbus-daemon --system --fork && (firewalld --nofork --nopid >/dev/null 2>&1 &) && '
             'for i in $(seq 1 200); do firewall-cmd --state >/dev/null 2>&1 && break; sleep 0.1; done;')
    box = Box([(etc, '/etc/firewalld')], start)
    try:
        for _attempt in range(200):
            if box.run(['firewall-cmd', '--state'])[0] == 0:
                break
            time.sleep(0.1)
        state = os.path.join(tmp, 'state-fwd-%d' % size)
        entries = addresses(size)
        changed = one_percent(entries)

        def sync(lines):
            path = os.path.join(tmp, 'entries.txt')
            with open(path, 'w') as handle:
                handle.write('\n'.join(lines) + '\n')
            args = {'name': 'bench4', 'entries_file': path, 'state_dir': state}
            module_process(box, 'firewalld_ipset_sync', args, tmp)
        row = {'full': timed(lambda: sync(entries)), 'noop': timed(lambda: sync(entries)),
               'one_percent': timed(lambda: sync(changed))}
        # The raw tool: the same first load by hand, in bulk from a file.
        path = os.path.join(tmp, 'raw.txt')
        with open(path, 'w') as handle:
            handle.write('\n'.join(entries) + '\n')

        # A reload loads every ipset, so the module's goes first: the raw load is timed on its own.
        box.run(['firewall-cmd', '--permanent', '--delete-ipset=bench4'])
        box.run(['firewall-cmd', '--reload'])

        def raw():
            box.run(['firewall-cmd', '--permanent', '--new-ipset=raw4', '--type=hash:net',
                     '--option=maxelem=%d' % (2 * size + 65536)])
            box.run(['firewall-cmd', '--permanent', '--ipset=raw4', '--add-entries-from-file=' + path])
            box.run(['firewall-cmd', '--reload'])
        row['raw_bulk_full'] = timed(raw)
        # The 1% change's new entries by hand, in one runtime --add-entries-from-file call: firewalld's setEntries,
        # which flushes the kernel set and fills it again (docs/performance.md).
        added = os.path.join(tmp, 'raw-added.txt')
        with open(added, 'w') as handle:
            handle.write('\n'.join(sorted(set(changed) - set(entries))) + '\n')
        row['raw_one_call'] = timed(lambda: box.run(['firewall-cmd', '--ipset=raw4', '--add-entries-from-file=' + added]))
        sample = addresses(naive, offset=size + 5000)
        row['naive_per_entry'] = timed(lambda: [box.run(['firewall-cmd', '--ipset=raw4', '--add-entry=' + a])
                                                for a in sample]) / naive
        return row
    finally:
        box.close()


def bench_nginx(size, tmp):
    root = os.path.join(tmp, 'nginx-%d' % size)
    os.makedirs(root)
    dest = os.path.join(root, 'blocklist.geo')
    conf = os.path.join(root, 'nginx.conf')
    with open(conf, 'w') as handle:
        handle.write('pid %s/pid; error_log %s/error.log; events {} http { access_log off; '
                     'geo $t { default ""; include %s; } }\n' % (root, root, dest))

    def run(args):
        proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr
    geo = GeoFile(run, dest, nginx_bin=shutil.which('nginx'), nginx_config=conf, unshare_bin=shutil.which('unshare'),
                  mount_bin=shutil.which('mount'))
    entries = addresses(size)

    def sync(lines):
        geo.sync([{'value': 'block', 'lines': lines}])
    row = {'full': timed(lambda: sync(entries)), 'noop': timed(lambda: sync(entries)),
           'one_percent': timed(lambda: sync(one_percent(entries)))}

    def raw():
        with open(dest, 'w') as handle:
            for entry in entries:
                handle.write('%s block;\n' % entry)
        subprocess.run([shutil.which('nginx'), '-t', '-q', '-c', conf], check=True)
    row['raw_write_and_test'] = timed(raw)
    return row


def firewalld_row(size, naive, tmp):
    try:
        r = bench_firewalld(size, naive, tmp)
    except SyncError as exc:
        return '| firewalld | %d | failed: %s | | | | | |' % (size, str(exc)[:160])
    return ('| firewalld | %d | %.2f s | %.2f s | %.2f s | %.2f s (bulk from file + reload); the 1%% change\'s new '
            'entries in one --add-entries-from-file call: %.2f s | %.3f s | %.0f s |'
            % (size, r['full'], r['noop'], r['one_percent'], r['raw_bulk_full'], r['raw_one_call'],
               r['naive_per_entry'], r['naive_per_entry'] * size))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--sizes', default='10000,100000')
    parser.add_argument('--naive', type=int, default=200)
    parser.add_argument('--backends', default='ufw,firewalld,nginx', help='which of ufw, firewalld and nginx to run')
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(',')]
    backends = args.backends.split(',')
    tmp = tempfile.mkdtemp(prefix='fleetwall-bench-')
    try:
        print('| backend | entries | full load | no-op | 1% change | raw tool, full | naive, per entry | naive, extrapolated to the size |')
        print('|---|---|---|---|---|---|---|---|')
        for size in sizes:
            if 'ufw' in backends and size <= 10000:
                r = bench_ufw(size, args.naive, tmp)
                print('| ufw | %d | %.2f s | %.2f s | %.2f s | %.2f s (ufw reload path) | %.3f s | %.0f s |' % (
                    size, r['full'], r['noop'], r['one_percent'], r['full_with_ufw_reload'],
                    r['naive_per_entry'], r['naive_per_entry'] * size))
            if 'firewalld' in backends:
                print(firewalld_row(size, args.naive, tmp))
            if 'nginx' in backends:
                r = bench_nginx(size, tmp)
                print('| nginx | %d | %.2f s | %.2f s | %.2f s | %.2f s (write + nginx -t) | - | - |' % (
                    size, r['full'], r['noop'], r['one_percent'], r['raw_write_and_test']))
            sys.stdout.flush()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
