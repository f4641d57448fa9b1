"""The nginx apply killed (SIGKILL to its process group) at random points, against a real nginx master serving in a
private network namespace, with the role's own snippets (roles/nginx/templates) in its configuration.

A change writes the new geo file beside the old one, tests it with ``nginx -t`` (bind-mounted over the live path in a
private mount namespace), renames it over the old one and reloads nginx in the same call (``reload``, as the role
passes it), with a marker that makes the next run reload again if a run dies between the rename and the reload
(docs/faults.md). So the file nginx would read is at any moment exactly the old generation or the new one and passes
``nginx -t``; nginx answers throughout; and the next run converges: the file holds the new generation and nginx
serves with it. No temporary file of a killed run may outlive the next run.

The child that is killed is what the role does on a host: the nginx_geo_file module, run as Ansible runs it (a Python
process in the host's network namespace). The campaign of kills runs once per module (the ``campaign`` fixture); each
guarantee is its own test, so a broken one does not hide the others.
"""
import collections
import ipaddress
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid

import pytest

from ansible_collections.fleetwall.blocklist.tests.helpers import (
    COLLECTIONS, ROOT, SEARCH_PATH, fleetwall_in_tmp, generation, kill_namespace, kill_while_watched, lab_tools,
    next_generation, tally)
from private_nginx import nginx_conf

# Nothing of ansible-core is under test here (the kernel, the tools, our own code on the standard library):
# the suite's second pass, with another ansible-core, leaves this file out (tests/conftest.py, scripts/test.sh).
CORE_INDEPENDENT = True

TOOLS, pytestmark = lab_tools('nginx', 'curl', 'unshare', 'mount')

KILLS = 10
SIZE = 20000
PORT = 8080
MODULE = 'ansible_collections.fleetwall.blocklist.plugins.modules.nginx_geo_file'
# The challenge tier stays the same; the block tier is the generation that changes.
CHALLENGE = ['100.64.%d.%d' % (n >> 8, n & 255) for n in range(1, 41)]
GEO_LINE = re.compile(r'^(\S+) (\S+);$')
RANGE = re.compile(r'^(\d+\.\d+\.\d+\.\d+)-(\d+\.\d+\.\d+\.\d+)$')
# How long a reload may take to show in the answers (nginx reloads asynchronously: new workers, then the old go);
# where the run sent none, only a reload the killed run's handler may have sent just before the kill.
RELOAD_SECONDS = 10
NO_RELOAD_SECONDS = 3

SERVER = '''    include {http_snippet};
    server {{
        listen 127.0.0.1:{port};
        include {enforce_snippet};
        location / {{ return 200 "served\\n"; }}
    }}
'''

# What the role does on the host: the task, which reloads nginx itself (reload, where a master runs).
CHILD = r'''
import json, subprocess, sys
args, module = sys.argv[1:3]
task = subprocess.run([sys.executable, '-m', module, args], stdout=subprocess.PIPE, text=True)
result = json.loads(task.stdout)
if task.returncode or result.get('failed'):
    sys.exit('the task failed: %s' % task.stdout[-2000:])
print(json.dumps(result))
'''


def render_role_snippets(http_snippet, enforce_snippet, dest):
    """The role's http and server snippets, rendered from its templates with its defaults; the client address is
    taken from X-Forwarded-For when the request comes from 127.0.0.1, as behind a proxy (the role's real_ip)."""
    import jinja2
    import yaml
    role = os.path.join(ROOT, 'roles', 'nginx')
    with open(os.path.join(role, 'defaults', 'main.yml')) as handle:
        variables = yaml.safe_load(handle)
    variables.update(ansible_managed='rendered by test_faults_nginx.py', nginx_geo_file=str(dest),
                     nginx_geo_file_v6=str(dest.parent / ('%s-v6%s' % os.path.splitext(dest.name))),
                     nginx_enforce_snippet=str(enforce_snippet), nginx_real_ip_from=['127.0.0.1'])
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    for template, target in (('fleetwall.conf.j2', http_snippet), ('fleetwall-enforce.conf.j2', enforce_snippet)):
        with open(os.path.join(role, 'templates', template)) as handle:
            target.write_text(environment.from_string(handle.read()).render(variables))


def geo_map(*texts):
    """What the geo files (the IPv4 ranges file, then the CIDR file) map, read independently of the module's code:
    sorted ``(first, last, value)`` address runs, adjacent runs of one value joined; None if a file is not whole (no
    header, a line that is neither ``FIRST-LAST VALUE;`` nor ``CIDR VALUE;``, no final newline)."""
    spans = []
    for text in texts:
        lines = text.split('\n')
        if not lines[0].startswith('# Managed by fleetwall.blocklist') or lines[-1] != '':
            return None
        for line in lines[1:-1]:
            if line.startswith('#'):
                continue
            match = GEO_LINE.match(line)
            if not match:
                return None
            entry, value = match.groups()
            ends = RANGE.match(entry)
            if ends:
                first, last = (int(ipaddress.ip_address(end)) for end in ends.groups())
            else:
                network = ipaddress.ip_network(entry)
                first, last = int(network.network_address), int(network.broadcast_address)
            spans.append((network_version(entry), first, last, value))
    return runs(spans)


def network_version(entry):
    return 6 if ':' in entry else 4


def runs(spans):
    """Spans (disjoint, or the same address listed twice), sorted, overlapping or adjacent spans of one family and
    value joined."""
    joined = []
    for version, first, last, value in sorted(spans):
        if joined and joined[-1][0] == version and joined[-1][3] == value and first <= joined[-1][2] + 1:
            joined[-1] = (version, joined[-1][1], max(last, joined[-1][2]), value)
        else:
            joined.append((version, first, last, value))
    return joined


def expected_map(block):
    """geo_map's form of the entries (single IPv4 addresses here, none in two tiers)."""
    spans = [(4, int(ipaddress.ip_address(entry)), int(ipaddress.ip_address(entry)), 'challenge') for entry in CHALLENGE]
    spans += [(4, int(ipaddress.ip_address(entry)), int(ipaddress.ip_address(entry)), 'block') for entry in block]
    return runs(spans)


class WebHost(object):
    """A network namespace with an nginx master on 127.0.0.1:PORT, whose geo file the module writes."""

    def __init__(self, root):
        self.root = root
        self.ns = 'fwngx-' + uuid.uuid4().hex[:8]
        self.geo_dir = root / 'nginx' / 'fleetwall'
        self.dest = self.geo_dir / 'blocklist.geo'
        self.dest_v6 = self.geo_dir / 'blocklist-v6.geo'
        self.config = root / 'nginx' / 'nginx.conf'
        self.pid_file = root / 'nginx' / 'nginx.pid'
        self.entries_dir = root / 'entries'
        # The child's own TMPDIR, so that a temporary file it leaves is found here and nowhere else.
        self.tmpdir = root / 'child-tmp'
        self.tmp_before = self.fleetwall_in_tmp()

    def start(self, block):
        for directory in (self.geo_dir, self.root / 'nginx' / 'conf.d', self.root / 'nginx' / 'tmp',
                          self.entries_dir, self.tmpdir):
            directory.mkdir(parents=True)
        http_snippet, enforce_snippet = self.root / 'nginx' / 'conf.d' / 'fleetwall.conf', self.root / 'enforce.conf'
        render_role_snippets(http_snippet, enforce_snippet, self.dest)
        server = SERVER.format(port=PORT, http_snippet=http_snippet, enforce_snippet=enforce_snippet)
        self.config.write_text(nginx_conf(self.root / 'nginx', server))
        subprocess.run(['ip', 'netns', 'add', self.ns], check=True)
        subprocess.run(['ip', 'netns', 'exec', self.ns, 'ip', 'link', 'set', 'lo', 'up'], check=True)
        # The geo file first: the configuration includes it. No master runs yet (the module's nginx -t leaves an
        # empty pid file behind, which the module knows for no master).
        assert self.apply(block)['changed']
        rc, _out, err = self.run([TOOLS['nginx'], '-c', str(self.config)])
        assert rc == 0, err
        self.wait_serving(block, [])

    def run(self, args, timeout=60):
        proc = subprocess.run(['ip', 'netns', 'exec', self.ns] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def start_child(self, block, reload=True):
        """The role's task on the host, a session leader: its process group is the whole run."""
        path = self.entries_dir / ('block-%d.txt' % random.getrandbits(32))
        path.write_text('\n'.join(block) + '\n')
        challenge = self.entries_dir / 'challenge.txt'
        challenge.write_text('\n'.join(CHALLENGE) + '\n')
        args = self.entries_dir / ('args-%d.json' % random.getrandbits(32))
        tiers = [{'value': 'block', 'entries_files': [str(path)]},
                 {'value': 'challenge', 'entries_files': [str(challenge)]}]
        args.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': {
            'dest': str(self.dest), 'nginx_config': str(self.config), 'reload': reload,
            'pid_file': str(self.pid_file), 'tiers': tiers}}))
        # The collection first; what the runner put on the path (ansible-test finds ansible there) after it.
        python_path = os.pathsep.join(filter(None, [COLLECTIONS, os.environ.get('PYTHONPATH')]))
        environment = ['PATH=' + SEARCH_PATH, 'PYTHONPATH=' + python_path, 'TMPDIR=%s' % self.tmpdir,
                       'LANG=C.UTF-8']
        command = [sys.executable, '-c', CHILD, str(args), MODULE]
        return subprocess.Popen(['ip', 'netns', 'exec', self.ns, 'env', '-i'] + environment + command,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def apply(self, block, reload=True):
        proc = self.start_child(block, reload)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (out[-2000:], err[-2000:])
        return json.loads(out)

    def ask(self, address):
        """What nginx answers a request from ``address``: its tier ('block': 444, no response; 'challenge': 429;
        '' when not listed: 200), or None when nginx did not answer."""
        rc, out, _err = self.run([TOOLS['curl'], '-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '3',
                                  '-H', 'X-Forwarded-For: ' + address, 'http://127.0.0.1:%d/' % PORT])
        if rc == 52:            # "Empty reply from server": nginx closed the connection (444)
            return 'block'
        return {'200': '', '429': 'challenge'}.get(out) if rc == 0 else None

    def serving(self, block, unlisted):
        """Whether nginx answers as the generation ``block`` says: a sample of it blocked, ``unlisted`` served."""
        listed = sorted(block)[:3]
        return (all(self.ask(address) == 'block' for address in listed)
                and all(self.ask(address) == '' for address in sorted(unlisted)[:3])
                and self.ask(CHALLENGE[0]) == 'challenge')

    def wait_serving(self, block, unlisted, seconds=RELOAD_SECONDS):
        deadline = time.monotonic() + seconds
        while not self.serving(block, unlisted):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def reload(self):
        rc, _out, err = self.run([TOOLS['nginx'], '-s', 'reload', '-c', str(self.config)])
        assert rc == 0, err

    def geo(self):
        texts = []
        for path in (self.dest, self.dest_v6):
            with open(str(path)) as handle:
                texts.append(handle.read())
        return geo_map(*texts)

    def config_test(self):
        """``nginx -t`` of the real configuration, which reads the live geo file: (passed, what it said)."""
        rc, _out, err = self.run([TOOLS['nginx'], '-t', '-q', '-c', str(self.config)])
        return rc == 0, err.strip()[-300:]

    def fleetwall_in_tmp(self):
        return fleetwall_in_tmp()

    def leftovers(self):
        """Temporary files a run left: beside the geo file (anything but the files, their lock and record: a reload
        marker too), in the child's TMPDIR, and ``fleetwall-*`` in /tmp that was not there before these tests."""
        found = ['%s/%s' % (self.geo_dir, name) for name in sorted(os.listdir(str(self.geo_dir)))
                 if name not in (self.dest.name, self.dest_v6.name, '.%s.lock' % self.dest.name,
                                 '.%s.record.json' % self.dest.name)]
        found += ['%s/%s' % (self.tmpdir, name) for name in sorted(os.listdir(str(self.tmpdir)))]
        found += ['/tmp/%s' % name for name in sorted(self.fleetwall_in_tmp() - self.tmp_before)]
        return found

    def close(self):
        kill_namespace(self.ns)


class Monitor(threading.Thread):
    """Looks over and over while a run is killed: the geo file nginx would read is one generation whole and passes
    ``nginx -t``, and nginx answers (an address both generations list is blocked)."""

    def __init__(self, web, old, new, shared):
        super().__init__(daemon=True)
        self.web, self.old, self.new, self.shared = web, old, new, shared
        self.problems = collections.defaultdict(list)
        self.looks = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.looks += 1
            problem = file_problem(self.web, self.old, self.new)
            if problem:
                self.problems['file'].append(problem)
            answer = self.web.ask(self.shared)
            if answer != 'block':
                self.problems['answers'].append('nginx answered %r for an address both generations block' % answer)


def file_problem(web, old, new):
    """What is wrong with the live geo file, for a change from ``old`` to ``new`` ({entry: value}); None if
    nothing."""
    try:
        seen = web.geo()
    except OSError as exc:
        return 'the geo file cannot be read: %s' % exc
    if seen is None:
        return 'the geo file is not whole'
    if seen not in (old, new):
        return 'the geo file is a mix: %d runs, %d of the old generation missing, %d of the new' % (
            len(seen), len(set(old) - set(seen)), len(set(new) - set(seen)))
    passed, said = web.config_test()
    if not passed:
        return 'nginx -t fails with the live geo file: ' + said
    return None


class Campaign(object):
    """What the kills did and what broke, per guarantee."""

    def __init__(self):
        self.killed = self.looks = 0
        self.problems = collections.defaultdict(list)
        self.left_by_kills = []
        self.not_reloaded = 0
        self.window = None

    def note(self, what, attempt, problem):
        if problem:
            self.problems[what].append('attempt %d: %s' % (attempt, problem))

    def broken(self, *whats):
        return [problem for what in whats for problem in self.problems[what]]


@pytest.fixture(scope='module')
def web(tmp_path_factory):
    host = WebHost(tmp_path_factory.mktemp('nginx-kill'))
    try:
        host.start(generation(0, SIZE))
        yield host
    finally:
        host.close()


def one_attempt(web, campaign, rng, attempt, applied):
    """Kill a run from ``applied`` to the next generation, look at what it left, run again; the new generation."""
    new = next_generation(applied, attempt, SIZE)
    old_map, new_map = expected_map(applied), expected_map(new)
    shared = sorted(set(applied) & set(new))[0]
    monitor = Monitor(web, old_map, new_map, shared)
    started = []

    def start():
        started.append(web.start_child(new))
        return started[0]
    campaign.killed += kill_while_watched(start, monitor, rng, campaign.window, settle=0.1)
    started[0].communicate(timeout=60)
    campaign.looks += monitor.looks + 1
    for what in ('file', 'answers'):
        campaign.problems['%s while killed' % what].extend(
            'attempt %d: %s' % (attempt, problem) for problem in monitor.problems[what])
    campaign.note('file after the kill', attempt, file_problem(web, old_map, new_map))
    campaign.note('answers after the kill', attempt,
                  None if web.ask(shared) == 'block' else 'nginx does not block an address both generations list')
    campaign.left_by_kills.append(web.leftovers())
    # The next run converges, wherever the kill fell: the file, then what nginx serves.
    result = web.apply(new)
    if web.geo() != new_map:
        campaign.note('file after the next run', attempt, 'the geo file is not the new generation')
    if not web.wait_serving(set(new) - set(applied), set(applied) - set(new),
                            RELOAD_SECONDS if result.get('reloaded') else NO_RELOAD_SECONDS):
        campaign.note('serving after the next run', attempt, 'nginx still answers with the old generation; the next '
                      'run reported changed=%s, reloaded: %s' % (result['changed'], result.get('reloaded')))
        # The next attempt starts from an nginx that serves the file, so that each shows what its own kill did.
        campaign.not_reloaded += 1
        web.reload()
        assert web.wait_serving(set(new) - set(applied), set(applied) - set(new))
    campaign.note('leftovers after the next run', attempt, ', '.join(web.leftovers()))
    return new


@pytest.fixture(scope='module')
def campaign(web):
    result = Campaign()
    applied = generation(0, SIZE)
    # How long one uninterrupted run takes here (a rebuild, and back): the kills land inside that window. The
    # longer of the two, so that the end of a run (the rename, the reload) is inside it too.
    durations = []
    for block in (generation(99, SIZE), applied):
        started = time.monotonic()
        web.apply(block)
        durations.append(time.monotonic() - started)
    result.window = max(durations)
    # A reload is asynchronous: the first attempt starts from an nginx that serves the generation.
    assert web.wait_serving(set(applied) - set(generation(99, SIZE)), [])
    rng = random.Random(17)
    for attempt in range(KILLS):
        applied = one_attempt(web, result, rng, attempt, applied)
    lost = sum(len(result.problems[what]) for what in result.problems if 'kill' in what)
    tally('faults injected: SIGKILL mid-apply (nginx)', result.killed)
    tally('protection checks', result.looks)
    tally('lost protection', lost)
    print('\nnginx: %d kills in %d runs (window %.2f s), %d looks at the geo file and nginx; %d next runs left nginx '
          'serving the old generation; temporary files the kills left: %s' % (
              result.killed, KILLS, result.window, result.looks, result.not_reloaded, result.left_by_kills))
    for what in sorted(result.problems):
        print('nginx: %s: %d, e.g. %s' % (what, len(result.problems[what]), result.problems[what][:2]))
    return result


def test_most_runs_were_killed_mid_apply(campaign):
    assert campaign.killed >= KILLS // 2, (campaign.killed, campaign.window)


def test_geo_file_is_always_one_generation_whole_and_passes_nginx_t(campaign):
    assert campaign.looks >= KILLS
    broken = campaign.broken('file while killed', 'file after the kill')
    assert not broken, broken[:5]


def test_nginx_answers_and_blocks_throughout_and_after_each_kill(campaign):
    broken = campaign.broken('answers while killed', 'answers after the kill')
    assert not broken, broken[:5]


def test_next_run_installs_the_new_generation_and_nginx_serves_it(campaign):
    broken = campaign.broken('file after the next run', 'serving after the next run')
    assert not broken, broken[:5]


def test_no_temporary_file_of_a_killed_run_outlives_the_next_run(campaign):
    broken = campaign.broken('leftovers after the next run')
    assert not broken, broken[:5]


def test_a_run_after_a_kill_between_the_rename_and_the_reload_reloads_nginx(web):
    """The window a kill may or may not hit, made on purpose: the run before renamed the new file into place and
    died before nginx took the reload, leaving the marker it wrote before the rename. The next run finds the file
    current and must still leave nginx serving it (before the marker, nothing did: nginx kept the old list)."""
    old = generation(21, 500)
    new = next_generation(old, 0, 500)
    web.apply(old)
    assert web.wait_serving(old, [])
    first = web.apply(new, reload=False)
    assert first['changed'] and web.geo() == expected_map(new)
    (web.geo_dir / ('.%s.reload-pending' % web.dest.name)).write_text('')    # what the dead run left
    assert web.serving(old, [])              # nginx has not read the new file
    second = web.apply(new)
    serving = web.wait_serving(set(new) - set(old), set(old) - set(new),
                               RELOAD_SECONDS if second.get('reloaded') else NO_RELOAD_SECONDS)
    web.reload()                             # whatever happened, leave nginx serving its file
    assert serving, ('nginx still serves the old generation after the next run: changed=%s, reloaded: %s'
                     % (second['changed'], second.get('reloaded')))
    assert second['reload_pending'] and not web.leftovers()
