"""Hostile arguments for every module, thousands of them, each run as Ansible runs it on a host.

(Here rather than in tests/unit: the harness runs the report action's controller code too, which ansible-test's
environment for module unit tests does not carry; both passes of scripts/test.sh run it, one per ansible-core.)

Each case is a module's working arguments (its baseline) with one to three options replaced by something hostile,
an unknown option, a required one left out, or a valid variation; ``random.Random(SEED)`` picks them, so a run is
the same every time (FLEETWALL_HOSTILE_SEED replays another). The cases run in a private host (a network namespace,
and a mount namespace with its own /etc, /var/lib, /var/log, /run and /dev: PrivateHost), where hostile_harness.py
runs each as a fresh process reading its arguments from a file, and lists the kernel's firewall state after each.

What must hold: every case ends in a result, a success or a clean failure; never a traceback, never a hang (a case
has CASE_TIMEOUT seconds), and a case that failed changed nothing in the kernel. What a failed case left in its own
directory (a state_dir, a lock) is counted and reported as residue, not yet asserted.
"""
import base64
import collections
import copy
import importlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
import zlib

import pytest

from ansible_collections.fleetwall.blocklist.tests.helpers import (
    COLLECTIONS, SEARCH_PATH, PrivateHost, lab_tools, tally)

TOOLS, pytestmark = lab_tools('ipset', 'nft', 'iptables-save', 'ip6tables-save', 'ufw', 'nginx', 'nsenter',
                              'unshare', 'mount')

SEED = int(os.environ.get('FLEETWALL_HOSTILE_SEED', '20261204'))
CASES = int(os.environ.get('FLEETWALL_HOSTILE_CASES', '2600'))
MIN_CASES = 2500
# Replaying: only these case numbers of the run that SEED and CASES make (the others are made, not run). A case that
# depends on what an earlier one left in the kernel (a set's type, its timeout) may need its predecessors too.
ONLY = set(int(number) for number in os.environ.get('FLEETWALL_HOSTILE_CASE_IDS', '').replace(',', ' ').split())
CASE_TIMEOUT = float(os.environ.get('FLEETWALL_HOSTILE_CASE_TIMEOUT', '10'))
# The whole run stops starting cases after this; a run that got no further fails (the cases not run are named).
DEADLINE = float(os.environ.get('FLEETWALL_HOSTILE_DEADLINE', '420'))
HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'hostile_harness.py')
PACKAGE = 'ansible_collections.fleetwall.blocklist.plugins'

# Each module's share of the cases: the sync modules, which touch the kernel, get the most.
WEIGHTS = {'ipset_sync': 14, 'nft_set_sync': 14, 'ufw_tagged_rules': 10, 'firewalld_ipset_sync': 9,
           'nginx_geo_file': 12, 'shadow_copy_build': 11, 'fail2ban_bans': 7, 'backend_facts': 5,
           'metrics_textfile': 8, 'fleet_report_files': 10}
SYNC_MODULES = ('ipset_sync', 'nft_set_sync', 'firewalld_ipset_sync', 'ufw_tagged_rules')
# fleet_report_files runs on the controller only: its action's validate_argument_spec() takes these.
FLEET_REPORT_SPEC = {'dir': {'type': 'path', 'required': True}, 'report': {'type': 'dict', 'required': True},
                     'mode': {'type': 'raw', 'default': '0644'}}

V4 = ['198.51.100.7', '203.0.113.9', '198.51.100.128/25', '192.0.2.0/24', '203.0.113.64/26']
V6 = ['2001:db8::7', '2001:db8:1::/48', '2001:db8:ffff::1']

# Hostile values, by what the option takes. Paths that depend on the run's directories are in Fixtures.paths.
TEXT = ['', ' ', '\x00', 'a\x00b', 'A' * 5000, '-f', '--help', '-', '}; flush ruleset', '; nft flush ruleset',
        '$(touch pwned)', '`id`', 'a\'b"c', 'a\nb', '\r\n', '\t', '%s%s%n', '{0}{name}', '../../etc/passwd',
        'un\u00efc\u00f8d\u00e9-\u540d\u524d', '\u202eevil', '\U0001f4a5', '\ufeff', '10.0.0.0/\uff12\uff14',
        '\uff11\uff12\uff13', 'None', 'null', '0', '-1', 'fwhostile' * 10, 'x' * 31, 'x' * 32, 'x' * 300, '*', '?',
        '#', '\\', '/', '.', '..', 'a b', '\x7f', '\x1b[31m', '\x80\xff\xfe', 'fw\u200bhostile',
        '\u00ff\u00fe1\x00.\x002\x00']
# Numbers and flags of the right type whose value is hostile, then values of the wrong type. Short timeouts are left
# out of the first: an ipset or nft entry that expires during the run would change the kernel with no case running.
INTS = [-1, 0, -2 ** 63, 2 ** 31, 2 ** 63, 10 ** 30, -10 ** 30, 65536, 2147484, 2147483, '9' * 400, '-7', ' 7 ',
        '\u0661\u0662', '\uff11\uff12', True, False, None]
WRONG_INTS = ['abc', '', ' ', '1.5', 1.5, '0x10', '1e3', [], {}, [1], 'inf', '-inf', 'nan', '1e400']
FLOATS = [-1, -0.0001, 0, 1e308, -1e308, 10 ** 30, 101, 'nan', 'inf', '-inf', '1e400', 5e-324, True, None]
WRONG_FLOATS = ['abc', '', [], {}, '1,5', '0x10']
BOOLS = [True, False, 'yes', 'no', 'on', 'off', 1, 0, 'TRUE', 'n', None]
WRONG_BOOLS = ['maybe', 2, -1, 'yes please', '', 'TRUE ', 1.5, [], {}, 'n0', '\uff11']
MODES = ['77777', '0o644', 'rwx', -1, 10 ** 30, '0644\n', 'u=rw', '', None, [], {}, 644, 262143, 1.5,
         '\uff10\uff16\uff14\uff14', '-0644', ' 0644 ', '0x1ff', '8888', True]
DICTS = ['string', '', [], 42, None, {'unexpected': 1}, 'k=v', '{"a": 1}', {'': None}, {'\x00': 1}, [{}], True]
ENTRIES = ['x\x00', '198.51.100.7\x00', '\ufeff198.51.100.7', 'fe80::1%eth0', '1.2.3.4/33', '01.2.3.4', '::/0',
           '0.0.0.0/0', '0.0.0.0/1', '198.51.100.7'.encode('utf-16').decode('latin-1'), '\x80\xfe\xff',
           '1.2.3.4 5.6.7.8', '198.51.100.7\n203.0.113.9', '# comment', ' 198.51.100.7 ', '1.2.3.4/32/1',
           '198.51.100.1-198.51.100.9', '256.1.1.1', '1.2.3', '::ffff:198.51.100.7', '2001:db8::/129',
           '1.2.3.4/-1', '10.0.0.0/\uff12\uff14', '\uff11\uff19\uff18.51.100.7', '1' * 5000, '*', '-', '--flush',
           '}; flush ruleset', 'add fwhostile 1.2.3.4', '198.51.100.7,tcp:22', '198.51.100.7 timeout 0',
           '2001:DB8::1', '2001:db8:0::1', '198.51.100.7/24', '127.0.0.1', '10.0.0.1', '0.0.0.0',
           '255.255.255.255', '', ' ', '2001:db8::1/64', 'localhost', 'example.com', '198.51.100.7/032',
           '198.51.100.7/ 24', '0x7f.1', '3325256711', '198.51.100.7.', '[2001:db8::1]', '::', '1.2.3.4%eth0',
           '\u200b198.51.100.7', '198.51.100.7\r', '198.51.100.7\t', 'fe80::1', '2001:db8::7', None, 7, ['x']]
PORT_LISTS = [[0], [-1], [65536], [10 ** 30], ['abc'], [None], '22,80', list(range(1, 40)), [22] * 100, [[22]],
              [{'port': 22}], '', None, [22.5], ['\uff12\uff12']]
NAMES = ['bogus', 'Name', 'name ', '_ansible_bogus', 'x' * 300, '', '\x00', 'entries\n', 'ANSIBLE_MODULE_ARGS']
ZLIB_BOMB_BYTES = (256 << 20) + 1024


def expires_soon(value):
    """Whether ``value`` as an entry timeout would expire during the run."""
    try:
        return 0 < int(value) < 10 ** 5
    except (TypeError, ValueError):
        return False


class Captured(Exception):
    """What a module passed to AnsibleModule: raised by the stand-in, so that main() stops there."""


def argument_specs():
    """{module: argument_spec}, taken from each module's own AnsibleModule call; the report's from its action."""
    specs = {'fleet_report_files': FLEET_REPORT_SPEC}
    for module in WEIGHTS:
        if module in specs:
            continue
        code = importlib.import_module('%s.modules.%s' % (PACKAGE, module))
        real = code.AnsibleModule

        def stand_in(**kwargs):
            raise Captured(kwargs)
        code.AnsibleModule = stand_in
        try:
            code.main()
        except Captured as captured:
            specs[module] = captured.args[0]['argument_spec']
        finally:
            code.AnsibleModule = real
    return specs


class Fixtures(object):
    """The files and directories the cases point at, all under ``root``."""

    def __init__(self, root):
        self.root = str(root)
        self.fix = os.path.join(self.root, 'fix')
        self.cases = os.path.join(self.root, 'cases')
        self.shared = os.path.join(self.root, 'shared')
        self.cwd = os.path.join(self.root, 'cwd', 'a', 'b')
        for directory in (self.fix, self.cases, self.shared, self.cwd, os.path.join(self.fix, 'dir'),
                          os.path.join(self.shared, 'nginx'), os.path.join(self.root, 'home'),
                          os.path.join(self.root, 'tmpdir'), os.path.join(self.root, 'work')):
            os.makedirs(directory, exist_ok=True)
        self.make_files()
        self.nginx_dest = os.path.join(self.shared, 'nginx', 'blocklist.geo')

    def path(self, name):
        return os.path.join(self.fix, name)

    def restorable(self):
        """The fixtures the harness puts back before each case (a case may have written over one)."""
        return [self.path(name) for name in sorted(os.listdir(self.fix))]

    def make_files(self):
        os.mkfifo(self.path('fifo'))
        os.symlink(self.path('loop'), self.path('loop'))
        os.symlink(self.path('nowhere'), self.path('dangling'))
        os.symlink('/dev/zero', self.path('to-zero'))
        texts = {'entries.txt': '198.51.100.7\n203.0.113.0/24\n', 'feed.txt': '198.51.100.0/24\n203.0.113.7\n',
                 'empty.txt': '', 'comments.txt': '# only a comment\n\n',
                 'mixed.txt': '198.51.100.7\n2001:db8::7\n', 'broad.txt': '0.0.0.0/1\n',
                 'not-a-db.sqlite3': 'this is not sqlite\n', 'long-line.txt': '1' * 100000 + '\n'}
        for name, text in texts.items():
            with open(self.path(name), 'w') as handle:
                handle.write(text)
        binary = {'utf16.txt': '198.51.100.7\n'.encode('utf-16'), 'binary.txt': bytes(range(256)) * 4,
                  'nul.txt': b'198.51.100.7\x00\n', 'bom.txt': b'\xef\xbb\xbf198.51.100.7\n'}
        for name, data in binary.items():
            with open(self.path(name), 'wb') as handle:
                handle.write(data)
        self.make_fail2ban_database()

    def make_fail2ban_database(self):
        """A database with the table and columns fail2ban_bans reads (fail2ban's own schema has more)."""
        connection = sqlite3.connect(self.path('fail2ban.sqlite3'))
        connection.execute('CREATE TABLE bans(jail TEXT, ip TEXT, timeofban INTEGER, bantime INTEGER, '
                           'bancount INTEGER, data JSON)')
        now = int(time.time())
        connection.executemany('INSERT INTO bans VALUES (?, ?, ?, ?, ?, ?)', [
            ('sshd', '198.51.100.7', now - 30, 3600, 1, '{}'), ('sshd', '2001:db8::66', now - 5, -1, 2, '{}'),
            ('recidive', 'not-an-address', now, 600, 1, '{}'), ('sshd', None, None, 'x', None, None)])
        connection.commit()
        connection.close()

    def paths(self, case_dir):
        """Hostile values for an option that names a file or directory."""
        here = os.path.join(case_dir, 'p')
        return [self.path('fifo'), os.path.join(self.fix, 'dir'), self.path('loop'), self.path('dangling'),
                self.path('entries.txt'), self.path('entries.txt') + '/under-a-file', here + '/d' * 2000,
                here + '\x00', os.path.join(case_dir, 'n' * 300), '/dev/zero', '/dev/null', '/dev/full',
                self.path('to-zero'), '', '.', '..', '../../etc/passwd', '~/x', '$HOME/y', '${NOPE}/z',
                os.path.join(case_dir, 'un\u00efc\u00f8d\u00e9 \u540d'), os.path.join(case_dir, '-f'), '-f', '--help',
                os.path.join(case_dir, 'a\nb'), '/proc/self/status', '/proc/version', 'relative/path',
                self.path('utf16.txt'), self.path('binary.txt'), self.path('nul.txt'), self.path('bom.txt'),
                self.path('empty.txt'), self.path('long-line.txt'), self.path('not-a-db.sqlite3'),
                here + '?mode=rwc', here + '#frag', here + '%00', 'file:' + here, '/run', '/var/lib/fleetwall']


class Generator(object):
    """The cases of one run: ``random.Random(seed)`` chooses every one."""

    def __init__(self, seed, specs, fixtures):
        self.rng = random.Random(seed)
        self.specs = specs
        self.fx = fixtures
        self._bomb = None

    # -- baselines: arguments with which each module works ---------------------------------------------------

    def baseline(self, module, case_dir):
        """Arguments with which ``module`` works; its files go in ``case_dir`` (empty before the case runs: what a
        failed case leaves there is residue) or, for some cases, in a directory the cases share."""
        rng, fx = self.rng, self.fx
        state = os.path.join(case_dir, 'state') if rng.random() < 0.8 else os.path.join(fx.shared, 'state-' + module)
        entries = rng.sample(V4, rng.randint(1, 3))
        if module in ('ipset_sync', 'nft_set_sync', 'firewalld_ipset_sync'):
            return {'name': 'fwhostile', 'entries': entries, 'state_dir': state, 'lockout_protection': False}
        if module == 'ufw_tagged_rules':
            return {'entries': entries + rng.sample(V6, 1), 'state_dir': state, 'lockout_protection': False}
        if module == 'nginx_geo_file':
            dest = os.path.join(case_dir, 'blocklist.geo') if rng.random() < 0.5 else fx.nginx_dest
            return {'dest': dest, 'validate': False, 'lockout_protection': False,
                    'tiers': [{'value': 'block', 'entries': entries + V6[:1]},
                              {'value': 'challenge', 'entries_files': [fx.path('entries.txt')]}]}
        if module == 'shadow_copy_build':
            dest = os.path.join(case_dir, 'shadow') if rng.random() < 0.8 else os.path.join(fx.shared, 'shadow')
            return {'dest': dest, 'feeds': [{'name': 'local', 'path': fx.path('feed.txt')}], 'provenance': False}
        if module == 'fail2ban_bans':
            return {'source': 'database', 'database': fx.path('fail2ban.sqlite3'), 'jails': ['sshd']}
        if module == 'backend_facts':
            return {'required': False}
        if module == 'metrics_textfile':
            return {'path': os.path.join(case_dir, 'metrics', 'fleetwall.prom'), 'create_dir': True,
                    'state_dir': os.path.join(fx.shared, 'state-ipset_sync')}
        return {'dir': os.path.join(case_dir, 'report'), 'report': self.report()}

    def report(self):
        host = {'host': 'h1', 'state': 'changed', 'backend': 'nftables', 'generation': 3, 'entries': 2, 'added': 1,
                'removed': 0, 'drift': 0, 'dropped_packets': 7, 'dropped_bytes': 420}
        counted = ('entries', 'added', 'removed', 'drift', 'dropped_packets', 'dropped_bytes')
        totals = dict((key, host[key]) for key in counted)
        return {'generation': 3, 'hosts': [host], 'totals': dict(totals, hosts=1)}

    def valid_element(self, module, option):
        """An element of a list-of-dicts option (or the dict of a dict option) that the module takes."""
        fx = self.fx
        elements = {
            ('ipset_sync', 'rules'): {'chain': 'INPUT', 'target': 'DROP', 'ports': [22]},
            ('nft_set_sync', 'rules'): {'chain': 'input', 'target': 'drop'},
            ('firewalld_ipset_sync', 'rules'): {'mode': 'zone_source', 'target': 'drop'},
            ('nginx_geo_file', 'tiers'): {'value': 'block', 'entries': ['198.51.100.7']},
            ('shadow_copy_build', 'feeds'): {'name': 'local', 'path': fx.path('feed.txt')},
            ('shadow_copy_build', 'tiers'): {'block': 90, 'challenge': 50},
            ('shadow_copy_build', 'fleet_local'): {'harvest': {'h1': {'bans': [
                {'address': '198.51.100.9', 'jail': 'sshd', 'banned_at': int(time.time())}]}}, 'expiry': 86400},
        }
        if option == 'sets':
            return {'name': 'fwhostile2', 'entries': ['198.51.100.9']}
        return copy.deepcopy(elements.get((module, option), {}))

    # -- hostile values ----------------------------------------------------------------------------------------

    def hostile(self, module, name, spec, case_dir):
        """A hostile value for the option ``name`` (its argument spec ``spec``)."""
        rng = self.rng
        kind = spec.get('type', 'str')
        if kind == 'list':
            return self.hostile_list(module, name, spec, case_dir)
        if kind == 'dict':
            return self.hostile_dict(module, name, spec, case_dir)
        if name == 'entries_zlib':
            return self.hostile_zlib()
        if spec.get('choices'):
            # Another valid choice (with everything else of the case) or one that is almost valid.
            return self.rng.choice(spec['choices']) if rng.random() < 0.6 else self.near_choice(spec['choices'])
        pools = {'path': (lambda: self.fx.paths(case_dir) + [None], TEXT), 'int': (lambda: INTS, WRONG_INTS),
                 'float': (lambda: FLOATS, WRONG_FLOATS), 'bool': (lambda: BOOLS, WRONG_BOOLS),
                 'raw': (lambda: MODES, DICTS)}
        right_type, wrong_type = pools.get(kind, (lambda: TEXT + [None], WRONG_INTS))
        if rng.random() < 0.25:
            return rng.choice(wrong_type)
        value = rng.choice(right_type())
        while name == 'timeout' and expires_soon(value):
            value = rng.choice(right_type())
        return value

    def near_choice(self, choices):
        """A value that is almost one of ``choices``."""
        choice = str(self.rng.choice(choices))
        return self.rng.choice([choice.upper(), choice + ' ', ' ' + choice, choice + '\n', choice + '\x00',
                                choice[:-1], choice.replace('i', '\u0131'), [choice], choice * 2, ''])

    def hostile_list(self, module, name, spec, case_dir):
        rng = self.rng
        elements = spec.get('elements', 'str')
        if elements == 'dict':
            return self.hostile_dict_list(module, name, spec, case_dir)
        if elements == 'int':
            return rng.choice(PORT_LISTS)
        shapes = ['a,b,c', '', None, [None], [{'a': 1}], [1, 2], [[]], [[['x']]], {'a': 1}, 42, True]
        if elements == 'path':
            return rng.choice([[rng.choice(self.fx.paths(case_dir))], [self.fx.path('entries.txt')] * 5000] + shapes)
        if name in ('entries', 'protect', 'allowlist') or rng.random() < 0.3:
            return self.hostile_entries()
        if rng.random() < 0.25:
            return rng.choice(shapes)
        if spec.get('choices'):
            return [self.rng.choice(spec['choices']), self.near_choice(spec['choices'])][:rng.randint(1, 2)]
        huge = [rng.choice([text for text in TEXT if len(text) < 50])] * 50000
        return rng.choice([[], huge] + [[rng.choice(TEXT) for _index in range(rng.randint(1, 3))]] * 4)

    def hostile_entries(self):
        """A list of entries with hostile ones among valid ones, hostile ones alone, or a huge list."""
        rng = self.rng
        shape = rng.random()
        if shape < 0.06:
            # 50,000 distinct valid addresses and one hostile entry at the end: refused whole, nothing applied.
            return ['100.%d.%d.%d' % (64 + n // 65536, n // 256 % 256, n % 256) for n in range(50000)] \
                + [rng.choice(ENTRIES)]
        if shape < 0.1:
            return [rng.choice(ENTRIES)] * 50000
        valid = rng.sample(V4, rng.randint(0, 3))
        for _index in range(rng.randint(1, 3)):
            valid.insert(rng.randint(0, len(valid)), rng.choice(ENTRIES))
        return valid

    def hostile_zlib(self):
        rng = self.rng
        if rng.random() < 0.05:
            return self.zlib_bomb()
        return rng.choice(['not base64!', base64.b64encode(b'not zlib').decode(), '', '====',
                           base64.b64encode(zlib.compress(b'198.51.100.7\x00\n')).decode(),
                           base64.b64encode(zlib.compress('1.2.3.4\n'.encode('utf-16'))).decode(),
                           base64.b64encode(zlib.compress(b'198.51.100.7\n'))[:-4].decode(), '\x00'])

    def zlib_bomb(self):
        """base64 of zlib data that expands to just past what the modules take (256 MiB)."""
        if self._bomb is None:
            packer = zlib.compressobj(9)
            chunk = b'\x00' * (1 << 20)
            data = b''.join(packer.compress(chunk) for _index in range(ZLIB_BOMB_BYTES >> 20)) + packer.flush()
            self._bomb = base64.b64encode(data).decode()
        return self._bomb

    def hostile_dict(self, module, name, spec, case_dir):
        rng = self.rng
        if spec.get('options') and rng.random() < 0.7:
            element = self.valid_element(module, name)
            return self.mutate_element(module, element, spec['options'], case_dir)
        if name == 'report' and rng.random() < 0.7:
            return self.deep_mutation(self.report())
        if rng.random() < 0.1:
            return self.nested(rng.choice([50, 500]))
        return rng.choice(DICTS)

    def nested(self, depth):
        value = {'a': 1}
        for _index in range(depth):
            value = {'a': value}
        return value

    def deep_mutation(self, value):
        """``value`` (a mapping) with one thing somewhere inside replaced by a hostile scalar, list or mapping."""
        rng = self.rng
        holder, key = value, None
        while True:
            keys = list(holder) if isinstance(holder, dict) else list(range(len(holder)))
            if not keys:
                break
            key = rng.choice(keys)
            if not isinstance(holder[key], (dict, list)) or rng.random() < 0.4:
                break
            holder = holder[key]
        replacement = rng.choice([rng.choice(TEXT), rng.choice(INTS), rng.choice(FLOATS), rng.choice(DICTS),
                                  [None], [rng.choice(TEXT)], '<script>alert(1)</script>'])
        if key is not None and rng.random() < 0.85:
            holder[key] = replacement
        elif isinstance(holder, list):
            holder.append(replacement)
        else:
            holder[rng.choice(NAMES)] = replacement
        return value

    def hostile_dict_list(self, module, name, spec, case_dir):
        rng = self.rng
        shape = rng.random()
        if shape < 0.55 and spec.get('options'):
            element = self.valid_element(module, name)
            return [self.mutate_element(module, element, spec['options'], case_dir)]
        if shape < 0.6:
            return [rng.choice([{}, None, {'bogus': 1}])] * 2000
        return rng.choice([None, 'string', [], [None], ['string'], [[]], [{}], [{'bogus': 1}], {},
                           [dict(self.valid_element(module, name), bogus=1)],
                           [self.valid_element(module, name)] * 2, 42])

    def mutate_element(self, module, element, options, case_dir):
        """``element`` with one or two of its suboptions hostile, or one left out, or one it does not have."""
        rng = self.rng
        for _index in range(rng.randint(1, 2)):
            what = rng.random()
            if what < 0.1 and element:
                del element[rng.choice(sorted(element))]
            elif what < 0.15:
                element[rng.choice(NAMES)] = rng.choice(TEXT)
            else:
                sub = rng.choice(sorted(options))
                element[sub] = self.hostile(module, sub, options[sub], case_dir)
        return element

    # -- cases ---------------------------------------------------------------------------------------------

    def case(self, number, module):
        rng = self.rng
        case_dir = os.path.join(self.fx.cases, str(number))
        args = self.baseline(module, case_dir)
        spec = self.specs[module]
        kind = rng.random()
        if kind < 0.1:
            what = ['valid: ' + self.valid_variation(module, args)]
        elif kind < 0.15:
            what = self.unknown_option(args)
        elif kind < 0.2:
            what = self.missing_required(module, args, spec)
        else:
            what = []
            for name in rng.sample(sorted(spec), min(len(spec), rng.choice([1, 1, 2, 3]))):
                args[name] = self.hostile(module, name, spec[name], case_dir)
                what.append(name)
            if module in ('ipset_sync', 'nft_set_sync', 'firewalld_ipset_sync') and 'sets' in what \
                    and rng.random() < 0.7:
                del args['name']        # sets and name are mutually exclusive: mostly the sets alone
        if rng.random() < 0.08:
            args['_ansible_check_mode'] = True
        return {'id': number, 'module': module, 'args': args, 'what': what, 'cwd': self.fx.cwd, 'own_dir': case_dir}

    def valid_variation(self, module, args):
        rng, fx = self.rng, self.fx
        variations = ['as is', 'diff', 'check']
        if module in SYNC_MODULES:
            variations += ['entries_file', 'more entries']
        choice = rng.choice(variations)
        if choice == 'diff':
            args['_ansible_diff'] = True
        elif choice == 'check':
            args['_ansible_check_mode'] = True
        elif choice == 'entries_file':
            args['entries_file'] = fx.path('entries.txt')
            del args['entries']
        elif choice == 'more entries':
            args['entries'] = ['100.64.%d.%d' % (n // 256, n % 256) for n in range(rng.choice([10, 2000]))]
        return choice

    def unknown_option(self, args):
        name = self.rng.choice(NAMES)
        args[name] = self.rng.choice(TEXT + INTS)
        return ['unknown option %r' % name[:40]]

    def missing_required(self, module, args, spec):
        required = [name for name, option in spec.items() if option.get('required')]
        if module in ('ipset_sync', 'nft_set_sync', 'firewalld_ipset_sync'):
            required.append('name')
        names = required or sorted(args)
        name = self.rng.choice(names)
        if self.rng.random() < 0.5:
            args.pop(name, None)
            return ['without %s' % name]
        args[name] = None
        return ['%s: null' % name]

    def cases(self, count):
        total = sum(WEIGHTS.values())
        modules = []
        for module, weight in sorted(WEIGHTS.items()):
            modules += [module] * max(1, int(round(count * weight / float(total))))
        self.rng.shuffle(modules)
        return [self.case(number, module) for number, module in enumerate(modules)]


# -- running them ------------------------------------------------------------------------------------------------

def run_harness(host, fixtures, cases):
    """Run every case in ``host``; the harness's results, a dict per case by its id (a case not run has none)."""
    work = os.path.join(fixtures.root, 'work')
    spec_path, results_path = os.path.join(work, 'cases.json'), os.path.join(work, 'results.jsonl')
    with open(spec_path, 'w') as handle:
        json.dump({'cases': cases, 'workdir': work, 'timeout': CASE_TIMEOUT, 'deadline': DEADLINE,
                   'watched': [fixtures.nginx_dest], 'fixtures': fixtures.restorable()}, handle)
    # The collection first; what the runner put on the path (ansible-test finds ansible there) after it.
    python_path = os.pathsep.join(filter(None, [COLLECTIONS, os.environ.get('PYTHONPATH')]))
    environment = ['PATH=' + SEARCH_PATH, 'PYTHONPATH=' + python_path, 'LANG=C.UTF-8',
                   'HOME=' + os.path.join(fixtures.root, 'home'), 'TMPDIR=' + os.path.join(fixtures.root, 'tmpdir')]
    proc = subprocess.run(host.enter(TOOLS['nsenter']) + ['env', '-i'] + environment
                          + [sys.executable, HARNESS, spec_path, results_path],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=DEADLINE + 10 * CASE_TIMEOUT + 120, check=False)
    results, done = {}, None
    if os.path.exists(results_path):
        with open(results_path) as handle:
            for line in handle:
                record = json.loads(line)
                if 'done' in record:
                    done = record
                else:
                    results[record['id']] = record
    assert done is not None, 'the harness did not finish (rc %d): %s' % (proc.returncode, proc.stderr[-3000:])
    return results


class Summary(object):
    """Counts per module and the offending cases, from the cases and their results."""

    # (what is counted, its column's heading): the upper-case ones must be 0 (ASSERTED); the rest are reported.
    COLUMNS = (('cases', 'cases'), ('success', 'success'), ('clean failure', 'clean fail'),
               ('traceback', 'TRACEBACK'), ('hang', 'HANG'), ('kernel changed after failure', 'KERNEL AFTER FAIL'),
               ('not run', 'NOT RUN'), ('residue after failure', 'residue'),
               ('ansible-core traceback', 'core tb'), ('kernel changed by a partly failed sets call', 'sets partly'))
    ASSERTED = ('traceback', 'hang', 'kernel changed after failure', 'not run')
    REPORTED = ('residue after failure', 'ansible-core traceback', 'kernel changed by a partly failed sets call')

    def __init__(self, cases, results):
        self.counts = collections.defaultdict(collections.Counter)
        self.offences = collections.defaultdict(list)
        for case in cases:
            self.add(case, results.get(case['id']))

    def add(self, case, result):
        counts = self.counts[case['module']]
        counts['cases'] += 1
        found = [outcome_of(result)]
        if result is not None and result.get('kernel_diff'):
            found.append('kernel changed by a partly failed sets call' if result.get('sets_changed')
                         else 'kernel changed after failure')
        if result is not None and result.get('residue'):
            found.append('residue after failure')
        for what in found:
            counts[what] += 1
            if what not in ('success', 'clean failure'):
                self.offences[what].append((case, result))

    def total(self, column):
        return sum(counts[column] for counts in self.counts.values())

    def table(self):
        widths = [21] + [max(5, len(heading)) for _key, heading in self.COLUMNS]
        rows = [['module'] + [heading for _key, heading in self.COLUMNS]]
        for module in sorted(self.counts) + ['total']:
            rows.append([module] + [self.total(key) if module == 'total' else self.counts[module][key]
                                    for key, _heading in self.COLUMNS])
        return '\n'.join(' '.join(str(text).rjust(width) for text, width in zip(row, widths)) for row in rows)


def outcome_of(result):
    return 'not run' if result is None else result['outcome']


def depth(value, limit=10):
    """How deeply ``value`` nests mappings and lists, up to ``limit`` (a hostile value nests 500 deep)."""
    level, layer = 0, [value]
    while layer and level < limit:
        layer = [item for outer in layer if isinstance(outer, (dict, list))
                 for item in (outer.values() if isinstance(outer, dict) else outer)]
        level += 1 if layer else 0
    return level


def shown(value):
    """``value`` with long texts and lists cut short, so that every option of a case shows in a message."""
    if isinstance(value, str) and len(value) > 60:
        return '%s...(%d characters)' % (value[:40], len(value))
    if isinstance(value, list) and len(value) > 8:
        return [shown(item) for item in value[:4]] + ['...(%d items)' % len(value)]
    if isinstance(value, list):
        return [shown(item) for item in value]
    if isinstance(value, dict) and depth(value) > 8:
        return '%s...(nested deeper than 8)' % json.dumps(value)[:40]
    if isinstance(value, dict):
        return dict((key, shown(item)) for key, item in value.items())
    return value


def describe(case, result, seed):
    args = json.dumps(shown(case['args']), ensure_ascii=True)
    text = 'case %d %s (%s; replay: FLEETWALL_HOSTILE_SEED=%d FLEETWALL_HOSTILE_CASES=%d FLEETWALL_HOSTILE_CASE_IDS=%d)' \
        '\n    args: %s' % (case['id'], case['module'], '; '.join(case['what']), seed, CASES, case['id'], args)
    if result is None:
        return text + '\n    not run (the run passed its deadline)'
    text += '\n    -> %s: %s' % (result['outcome'], result['msg'][:300])
    if result.get('stderr'):
        text += '\n    stderr: ' + result['stderr'][-600:].replace('\n', '\n    ')
    if result.get('kernel_diff'):
        text += '\n    kernel: ' + result['kernel_diff'][:800].replace('\n', '\n    ')
    if result.get('residue'):
        text += '\n    left in %s: %s' % (case['own_dir'], ', '.join(result['residue']))
    return text


def offences_text(summary, what, seed, limit=10):
    found = summary.offences[what]
    return '%d %s:\n%s' % (len(found), what, '\n'.join(describe(case, result, seed) for case, result in found[:limit]))


@pytest.fixture
def private_host(tmp_path):
    host = PrivateHost(tmp_path, 'fwhostile-')
    try:
        host.start(TOOLS['unshare'])
        yield host
    finally:
        host.close()


def plugins_version():
    """The newest change to the collection's plugins: the harness loads module_utils once, so results of a run during
    which they changed may mix two versions."""
    plugins = os.path.join(COLLECTIONS, 'ansible_collections', 'fleetwall', 'blocklist', 'plugins')
    return max(os.stat(os.path.join(top, name)).st_mtime for top, _dirs, files in os.walk(plugins)
               for name in files if name.endswith('.py'))


def test_hostile_arguments_end_cleanly_and_leave_the_kernel_alone(private_host, tmp_path, capsys):
    started, version = time.monotonic(), plugins_version()
    fixtures = Fixtures(tmp_path)
    cases = Generator(SEED, argument_specs(), fixtures).cases(CASES)
    for case in cases:
        os.mkdir(case['own_dir'])
    if ONLY:
        cases = [case for case in cases if case['id'] in ONLY]
    results = run_harness(private_host, fixtures, cases)
    summary = Summary(cases, results)
    tally('bad inputs tried: hostile module arguments', len(results))
    note = '' if plugins_version() == version else ' (the plugins changed during the run: results may mix versions)'
    with capsys.disabled():
        # Shown on every run: what is reported but not (yet) asserted must be seen to be fixed.
        print('\nhostile arguments, seed %d (FLEETWALL_HOSTILE_SEED replays it), %d cases in %.0f s%s:\n%s'
              % (SEED, len(cases), time.monotonic() - started, note, summary.table()))
        for what in Summary.REPORTED:
            if summary.offences[what]:
                print(offences_text(summary, what, SEED, limit=3))
    assert ONLY or len(cases) >= MIN_CASES
    offending = [offences_text(summary, what, SEED) for what in Summary.ASSERTED if summary.offences[what]]
    assert not offending, note + '\n\n'.join(offending)
