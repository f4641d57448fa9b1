"""Runs the hostile-argument cases inside a private host (test_hostile_arguments.py starts it there with nsenter).

Each case is one module run as Ansible runs it on a host: a fresh process that reads its arguments from a JSON file
named in argv[1]. A fresh interpreter per case would cost 0.2-0.4 s, so this process imports ansible and the
collection's module_utils once and forks a child per case, which runs the module with runpy as ``python -m`` would.
The parent never loads module parameters itself, so that each child reads its own file.

After each case the kernel's state (ipset, nftables, iptables, ip6tables, the UFW rule files and the watched files)
is listed again; a case that failed and changed it is reported with the difference. What a failed case left in its
own directory (``own_dir``, empty before it ran: its state_dir, a lock beside its file) is reported too.

Usage: hostile_harness.py CASES_JSON RESULTS_JSONL. The results are written a line per case as they come, then a
line ``{"done": ...}``, so that a harness killed half-way still says how far it got.
"""
import atexit
import difflib
import hashlib
import importlib
import json
import os
import re
import resource
import runpy
import select
import shutil
import signal
import stat
import subprocess
import sys
import time
import traceback

PACKAGE = 'ansible_collections.fleetwall.blocklist.plugins'
# The module_utils every module imports, loaded once here so that a child starts in milliseconds.
PRELOADED = ('host.module_support', 'host.backend_ipset', 'host.backend_nft', 'host.backend_ufw',
             'host.backend_firewalld', 'host.backend_nginx', 'host.iptables_rules', 'host.nft_rules', 'host.fail2ban',
             'host.metrics', 'controller.feeds', 'controller.fetch', 'controller.presets', 'controller.shadow_copy',
             'controller.fleet_local', 'files', 'sync', 'addresses', 'host.protect', 'decode', 'controller.forking')
# Modules with no code that runs on a host: Ansible runs their action plugin on the controller.
ACTION_ONLY = ('fleet_report_files',)
KERNEL_LISTINGS = (('ipset', 'save'), ('nft', 'list', 'ruleset'), ('iptables-save',), ('ip6tables-save',))
UFW_FILES = ('/etc/ufw/user.rules', '/etc/ufw/user6.rules')
# What changes in a listing without anyone changing the kernel: counters, the remaining time of an entry with a
# timeout, the date a save was made.
VOLATILE = [(re.compile(r'\[\d+:\d+\]'), '[0:0]'), (re.compile(r'\b(packets|bytes) \d+'), r'\1 0'),
            (re.compile(r'\bexpires \S+'), 'expires -'), (re.compile(r'^(add \S+ \S+.*\btimeout) \d+', re.M), r'\1 -')]
# A child may use this much memory and write files this large: a module that reads /dev/zero into memory or onto
# disk is stopped (and counted) rather than taking the machine down.
CHILD_MEMORY = 2 << 30
CHILD_FILE_SIZE = 1 << 30
# Device nodes of the private /dev (major, minor): a case may name /dev/zero as a file to write, and what it does
# then must stay in this host.
DEVICES = {'null': (1, 3), 'zero': (1, 5), 'full': (1, 7), 'random': (1, 8), 'urandom': (1, 9)}


def private_dev():
    """A /dev of this host's own (a tmpfs with the usual character devices), so that a module told to write over
    /dev/zero or /dev/null replaces this host's node and not the machine's."""
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'mode=755', 'tmpfs', '/dev'], check=True)
    for name, (major, minor) in DEVICES.items():
        os.mknod('/dev/' + name, 0o666 | 0o020000, os.makedev(major, minor))
        os.chmod('/dev/' + name, 0o666)
    for index, name in enumerate(('stdin', 'stdout', 'stderr')):
        os.symlink('/proc/self/fd/%d' % index, '/dev/' + name)
    os.symlink('/proc/self/fd', '/dev/fd')
    os.mkdir('/dev/shm', 0o1777)


def preload():
    importlib.import_module('ansible.module_utils.basic')
    for name in PRELOADED:
        importlib.import_module('%s.module_utils._blocklist.%s' % (PACKAGE, name))
    importlib.import_module('%s.action.fleet_report_files' % PACKAGE)


class Fixtures(object):
    """The files the cases name (a FIFO, a link loop, an entries file...), put back as they were before each case:
    a case may write over any of them, and the next case must meet the same file."""

    def __init__(self, paths, pristine):
        self.pristine = pristine
        os.makedirs(pristine, exist_ok=True)
        self.expected = dict((path, self.copy(path)) for path in paths)

    def copy(self, path):
        """What ``path`` is now, to restore it later: its kind, link target or a pristine copy, and its stat."""
        st = os.lstat(path)
        saved = None
        if stat.S_ISREG(st.st_mode):
            saved = os.path.join(self.pristine, hashlib.sha256(path.encode('utf-8', 'surrogateescape')).hexdigest())
            shutil.copy2(path, saved)
        elif stat.S_ISLNK(st.st_mode):
            saved = os.readlink(path)
        return stat.S_IFMT(st.st_mode), saved, self.signature(path)

    def signature(self, path):
        try:
            st = os.lstat(path)
        except OSError:
            return None
        return (stat.S_IFMT(st.st_mode), st.st_ino, st.st_size, st.st_mtime_ns,
                bool(stat.S_ISDIR(st.st_mode) and os.listdir(path)))

    def restore(self):
        """Put back every fixture a case changed; how many."""
        changed = [path for path, (_kind, _saved, signature) in self.expected.items()
                   if self.signature(path) != signature]
        for path in changed:
            self.remake(path)
        return len(changed)

    def remake(self, path):
        kind, saved, _signature = self.expected[path]
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        if kind == stat.S_IFIFO:
            os.mkfifo(path)
        elif kind == stat.S_IFDIR:
            os.mkdir(path)
        elif kind == stat.S_IFLNK:
            os.symlink(saved, path)
        else:
            shutil.copy2(saved, path)
        self.expected[path] = (kind, saved, self.signature(path))


def kernel_state(watched):
    """The normalised listings of the kernel's firewall state and the digests of ``watched`` files, as one text."""
    procs = [(args, subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
             for args in KERNEL_LISTINGS]
    parts = []
    for args, proc in procs:
        out = proc.communicate()[0]
        lines = [line for line in out.splitlines() if not line.startswith('#')]
        text = '\n'.join(lines)
        for pattern, replacement in VOLATILE:
            text = pattern.sub(replacement, text)
        parts.append('== %s (rc %d)\n%s' % (' '.join(args), proc.returncode, text))
    parts.extend('== %s %s' % (path, file_digest(path)) for path in UFW_FILES + tuple(watched))
    return '\n'.join(parts) + '\n'


def file_digest(path):
    try:
        with open(path, 'rb') as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError as exc:
        return 'unreadable (%s)' % (exc.strerror or exc)


def run_module(module, args_path):
    """In the child: the module as ``python -m`` runs it, or the action plugin of a module that has no host code."""
    if module in ACTION_ONLY:
        return run_action(module, args_path)
    # runpy puts the module's file in argv[0], as ``python -m`` does; argv[1] is what the module reads.
    sys.argv = [module, args_path]
    runpy.run_module('%s.modules.%s' % (PACKAGE, module), run_name='__main__', alter_sys=True)
    return 0


def run_action(module, args_path):
    """The action plugin as the controller's task executor runs it: an AnsibleError is the task's failure (the
    executor turns it into ``failed`` and its message), anything else escapes as a traceback."""
    from types import SimpleNamespace
    from ansible.errors import AnsibleError
    with open(args_path) as handle:
        args = dict(json.load(handle)['ANSIBLE_MODULE_ARGS'])
    # What Ansible itself passes a module; a task's own arguments never hold these.
    check_mode = bool(args.pop('_ansible_check_mode', False))
    args.pop('_ansible_diff', None)
    task = SimpleNamespace(args=args, action='fleetwall.blocklist.' + module, async_val=0, check_mode=check_mode,
                           diff=False)
    connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir=None))
    plugin = importlib.import_module('%s.action.%s' % (PACKAGE, module)).ActionModule(
        task, connection, None, None, None)
    plugin._load_name = task.action
    try:
        result = plugin.run(task_vars={})
    except AnsibleError as exc:
        result = {'failed': True, 'msg': getattr(exc, 'message', None) or str(exc)}
    print(json.dumps(result, default=str))
    return 1 if result.get('failed') else 0


def child(case, args_path, out_path, err_path):
    """The forked child: its own process group (so every process it starts is killed with it), output to files,
    bounded memory and file size, then the module. Never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))
        resource.setrlimit(resource.RLIMIT_FSIZE, (CHILD_FILE_SIZE, CHILD_FILE_SIZE))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        for fd, path, flags in ((0, '/dev/null', os.O_RDONLY), (1, out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                (2, err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
            os.dup2(os.open(path, flags, 0o600), fd)
        os.chdir(case['cwd'])
        code = run_module(case['module'], args_path)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, (int, type(None))):
            sys.stderr.write('%s\n' % (exc.code,))
    except BaseException as exc:
        traceback.print_exc()
        if raised_in_argument_handling(exc):
            sys.stderr.write('%s\n' % CORE_BLAME)
    try:
        # What a real process does on its way out: AnsibleModule removes its temporary directory here.
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


# What the child adds to a traceback that ansible-core raised while it checked the arguments, before any of the
# collection's own code ran: no module can catch that, so it is counted apart.
CORE_BLAME = 'hostile-harness: raised inside ansible-core\'s argument handling'
COLLECTION = os.sep + os.path.join('ansible_collections', 'fleetwall', 'blocklist') + os.sep


def raised_in_argument_handling(exc):
    """Whether ``exc`` came out of AnsibleModule() or an action's validate_argument_spec(): the collection's last
    frame is that call, and every frame below it is ansible-core's or the standard library's."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [index for index, frame in enumerate(frames) if COLLECTION in frame.filename]
    if not ours or ours[-1] == len(frames) - 1:
        return False
    line = frames[ours[-1]].line or ''
    return 'AnsibleModule(' in line or 'validate_argument_spec(' in line


def wait_for(pid, seconds):
    """The child's wait status, or None once ``seconds`` passed (its process group is then killed)."""
    pidfd = os.pidfd_open(pid)
    try:
        ready, _w, _x = select.select([pidfd], [], [], seconds)
    finally:
        os.close(pidfd)
    if not ready:
        kill_group(pid)
        os.waitpid(pid, 0)
        return None
    return os.waitpid(pid, 0)[1]


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


def read_text(path, limit=None):
    with open(path, 'rb') as handle:
        data = handle.read()
    return data.decode('utf-8', 'replace')[-limit:] if limit else data.decode('utf-8', 'replace')


def run_case(case, workdir, timeout):
    """(status, stdout, stderr tail, seconds) of one case; status is None for a hang, else the wait status."""
    args_path, out_path, err_path = (os.path.join(workdir, name) for name in ('args.json', 'out', 'err'))
    with open(args_path, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': case['args']}, handle)
    from ansible.module_utils import basic
    assert basic._ANSIBLE_ARGS is None, 'the harness loaded module parameters: every child would read the same'
    sys.stdout.flush()
    sys.stderr.flush()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        child(case, args_path, out_path, err_path)
    status = wait_for(pid, timeout)
    # Whatever the module started and left behind in its group goes with it.
    kill_group(pid)
    return status, read_text(out_path), read_text(err_path, 3000), time.monotonic() - started


# An exception's name in a message: what an unhandled error looks like once something printed it as the message.
EXCEPTION_TEXT = re.compile(r'\b(Traceback \(most recent call last\)|MODULE FAILURE|[A-Z][A-Za-z]*(Error|Exception): )')


def classify(status, out, err):
    """('success' | 'clean failure' | 'traceback' | 'ansible-core traceback' | 'hang', the result, or {} when there
    is none)."""
    if status is None:
        return 'hang', {}
    if CORE_BLAME in err:
        return 'ansible-core traceback', {'msg': 'no JSON result (wait status %d)' % status}
    try:
        result = json.loads(out)
    except ValueError:
        result = None
    if not isinstance(result, dict):
        return 'traceback', {'msg': 'no JSON result (wait status %d)' % status}
    if 'Traceback' in err or 'exception' in result or EXCEPTION_TEXT.search(str(result.get('msg', ''))):
        return 'traceback', result
    return ('clean failure' if result.get('failed') else 'success'), result


def sets_changed(result):
    """The sets that changed in a call of several (``sets``) whose result is a failure: the others failed."""
    items = result.get('sets') if isinstance(result.get('sets'), list) else []
    return [str(item.get('name')) for item in items if isinstance(item, dict) and item.get('changed')
            and not item.get('failed')]


def left_in(directory, limit=10):
    """What is in ``directory`` (the case's own, empty before it ran), as paths relative to it."""
    found = []
    for top, dirs, files in os.walk(directory):
        found += [os.path.relpath(os.path.join(top, name), directory) for name in sorted(dirs + files)]
        if len(found) >= limit:
            break
    return found[:limit]


def kernel_diff(before, after):
    return ''.join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), 'before', 'after', n=1))


def run_all(spec, results):
    workdir, watched, timeout = spec['workdir'], spec['watched'], spec['timeout']
    deadline = time.monotonic() + spec['deadline']
    fixtures = Fixtures(spec['fixtures'], os.path.join(workdir, 'pristine'))
    before = kernel_state(watched)
    done = restored = 0
    for case in spec['cases']:
        if time.monotonic() > deadline:
            break
        restored += fixtures.restore()
        status, out, err, seconds = run_case(case, workdir, timeout)
        outcome, result = classify(status, out, err)
        after = kernel_state(watched)
        record = {'id': case['id'], 'outcome': outcome, 'msg': str(result.get('msg', ''))[:600],
                  'stderr': err[-1500:], 'stdout': out[-600:] if outcome == 'traceback' else '',
                  'seconds': round(seconds, 3)}
        if outcome != 'success':
            record.update(kernel_diff=kernel_diff(before, after)[:4000] if after != before else '',
                          residue=left_in(case['own_dir']), sets_changed=sets_changed(result))
        results.write(json.dumps(record) + '\n')
        results.flush()
        before = after
        done += 1
    results.write(json.dumps({'done': done, 'of': len(spec['cases']), 'fixtures_restored': restored}) + '\n')


def main():
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    private_dev()
    preload()
    with open(sys.argv[2], 'w') as results:
        run_all(spec, results)


if __name__ == '__main__':
    main()
