"""A collection module timed as a host runs it: one whole ``python -m`` process with its arguments file.

Shared by bench_ipset.py and bench_nft.py (bench_backends.py's module_process runs firewalld's module the same
way).  Everything the host pays is inside: the interpreter's start, imports, argument parsing, reading and
validating the entries, the tool's processes, the record and the result.  The raw tool is timed the same way
(a process started from here, in the same network namespace), so the two compare.

CPU time is the user and system time of the process and its descendants (this process's RUSAGE_CHILDREN
across the run): on this shared machine it moves less with the load than the wall time does.
Peak memory is the largest sum of the resident sets of the process and its descendants, sampled every
``SAMPLE_SECONDS``: a child that lives less than that (one of nft's 20,000-element loads) may be missed.
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, '.collections')
MODULES = 'ansible_collections.fleetwall.blocklist.plugins.modules.'
SAMPLE_SECONDS = 0.1
PAGE_KB = os.sysconf('SC_PAGE_SIZE') // 1024


def _parents():
    """{pid: parent pid} of every process, from /proc."""
    parents = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name) as handle:
                parents[int(name)] = int(handle.read().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass    # gone meanwhile
    return parents


def tree_rss_kb(root):
    """The resident set of ``root`` and all its descendants, in KiB."""
    parents = _parents()
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo.extend(child for child, parent in parents.items() if parent == pid and child not in tree)
    total = 0
    for pid in tree:
        try:
            with open('/proc/%d/statm' % pid) as handle:
                total += int(handle.read().split()[1]) * PAGE_KB
        except (OSError, IndexError, ValueError):
            pass
    return total


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(argv, stdin_text=None):
    """Run ``argv``; returns (seconds, peak_kb of its process tree, rc, stdout, stderr, cpu seconds)."""
    peak = [0]
    cpu = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample():
        while not done.wait(SAMPLE_SECONDS):
            peak[0] = max(peak[0], tree_rss_kb(proc.pid))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate(stdin_text)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return seconds, peak[0], proc.returncode, out, err, _children_cpu() - cpu


def module_argv(module, args_path, collections=None):
    """The command Ansible's module runner amounts to on the host: ``python -m`` of the module, its args file.

    ``collections`` (a directory holding ansible_collections/fleetwall/blocklist) times another checkout's
    modules, such as the commit before a change; this checkout's by default.
    """
    return ['env', 'PYTHONPATH=' + (collections or COLLECTIONS), sys.executable, '-m', MODULES + module, args_path]


def run_module(prefix, module, args, workdir, collections=None):
    """One whole run of ``module`` with ``args`` (under ``prefix``, e.g. ``ip netns exec NS``):
    {'seconds', 'cpu', 'peak_kb', 'result'}; a failed run raises RuntimeError with its message."""
    path = os.path.join(workdir, 'args-%s.json' % module)
    with open(path, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
    seconds, peak_kb, _rc, out, err, cpu = measure(list(prefix) + module_argv(module, path, collections))
    try:
        result = json.loads(out)
    except ValueError:
        raise RuntimeError('%s printed no result: %s' % (module, (err or out)[-1000:]))
    if result.get('failed'):
        raise RuntimeError('%s failed: %s' % (module, result.get('msg')))
    return {'seconds': seconds, 'cpu': cpu, 'peak_kb': peak_kb, 'result': result}


def run_raw(prefix, argv, stdin_text=None):
    """One raw tool process, timed as run_module times a module: {'seconds', 'cpu', 'peak_kb'}."""
    seconds, peak_kb, rc, out, err, cpu = measure(list(prefix) + list(argv), stdin_text)
    if rc != 0:
        raise RuntimeError('%s failed: %s' % (' '.join(argv), (err or out)[-1000:]))
    return {'seconds': seconds, 'cpu': cpu, 'peak_kb': peak_kb}


def summary(runs, key):
    """(median, min, max) of ``key`` over the runs."""
    values = [run[key] for run in runs]
    return statistics.median(values), min(values), max(values)


def loadavg():
    with open('/proc/loadavg') as handle:
        return ' '.join(handle.read().split()[:3])


def module_runner(prefix, module, base_args, workdir, collections=None, persist_file=None):
    """``run(entries_file)``: one whole process of ``module`` with ``base_args``, that entries file and, when given,
    ``persist_file`` (as the roles run it)."""
    def run(entries_file):
        args = dict(base_args, entries_file=entries_file)
        if persist_file:
            args['persist_file'] = persist_file
        return run_module(prefix, module, args, workdir, collections)
    return run


def first_load_and_noop(runs, run, entries_file, count):
    """A first load of ``count`` entries and the no-op run after it, each checked and added to ``runs``."""
    runs['load'].append(run(entries_file))
    assert runs['load'][-1]['result']['added'] == count, runs['load'][-1]['result']
    runs['noop'].append(run(entries_file))
    assert not runs['noop'][-1]['result']['changed'], runs['noop'][-1]['result']
