# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""UFW's own rule files, read and written the way UFW writes them.

``ufw insert 1 deny from IP`` rewrites the whole rules file and reloads
the user chains for every single address, so 10k addresses take hours.
UFW keeps its user rules in ``/etc/ufw/user.rules`` and ``user6.rules``:
an ``iptables-restore`` file in which every rule is a ``### tuple ###``
comment (what ``ufw status`` reads back) followed by its iptables lines.
This file produces the blocks UFW itself would write for
``ufw deny|reject [proto P] from SRC [to any port N] comment TAG``, keeps
every other block byte for byte and in its order, and the whole file is
loaded with one ``iptables-restore --noflush``: the chains the file
declares are flushed and refilled in that one commit, so no packet sees a
half-loaded chain.  (``ufw reload`` instead disables and re-enables the
whole firewall, leaving it open while it reloads; it is available as
``apply_with: reload``.)
"""

from __future__ import annotations

import binascii
import os
import re
import socket
import stat

from ..addresses import V4
from .command_runner import tool_message
from ..files import remove_write_leftovers, write_atomic
from ..sync import SyncError, canonicalize, compact_diff

RULES_START = '### RULES ###'
RULES_END = '### END RULES ###'
TUPLE = '### tuple ### '
ANY_DST = {4: '0.0.0.0/0', 6: '::/0'}
CHAIN = {4: 'ufw-user-input', 6: 'ufw6-user-input'}
RULES_FILE = {4: 'user.rules', 6: 'user6.rules'}


class RulesFileError(Exception):
    """An existing rules file this module does not understand; it is left as it is."""


def comment_hex(tag):
    return binascii.hexlify(tag.encode('utf-8')).decode('ascii')


class RuleShape(object):
    """What every tagged rule looks like; only the source address differs."""

    def __init__(self, version, tag, action='deny', proto='any', port=None):
        self.version = version
        self.action = action
        self.proto = proto
        self.port = str(port) if port else 'any'
        self.comment = comment_hex(tag)
        self.chain = CHAIN[version]
        # Everything of the tuple line but the source, so a block is one format.
        self._tuple = '%s%s %s %s %s any %%s in comment=%s' % (
            TUPLE, action, proto, self.port, ANY_DST[version], self.comment)
        self._lines = self._rule_templates()

    def _rule_templates(self):
        target = ' -j DROP' if self.action == 'deny' else ' -j REJECT'
        tcp_reset = ' --reject-with tcp-reset' if self.action == 'reject' else ''
        head = '-A ' + self.chain
        if self.proto == 'any' and self.port == 'any':
            return [head + ' -s %s' + target]
        if self.proto == 'any':
            # UFW's rule for "any protocol, one port" is a tcp and a udp rule.
            return [head + ' -p tcp --dport ' + self.port + ' -s %s' + target + tcp_reset,
                    head + ' -p udp --dport ' + self.port + ' -s %s' + target]
        port = ' --dport ' + self.port if self.port != 'any' else ''
        return [head + ' -p ' + self.proto + port + ' -s %s' + target
                + (tcp_reset if self.proto == 'tcp' else '')]

    def block(self, source):
        return '\n'.join([self._tuple % source] + [line % source for line in self._lines]) + '\n'

    def tuple_line(self, source):
        return self._tuple % source


class Block(object):
    """One rule of the file: its tuple line and its iptables lines, kept as text."""

    __slots__ = ('text', 'fields', 'comment')

    def __init__(self, text, tuple_line):
        self.text = text
        body = tuple_line[len(TUPLE):]
        comment = ''
        if ' comment=' in body:
            body, _sep, comment = body.partition(' comment=')
        self.fields = body.split()
        self.comment = comment.strip()

    @property
    def source(self):
        return self.fields[5]


class RulesFile(object):
    """A parsed user.rules: the text before the rules, the rule blocks, the text after."""

    def __init__(self, text, path='rules file'):
        self.path = path
        start = text.find('\n' + RULES_START + '\n')
        end = text.find('\n' + RULES_END + '\n')
        if start < 0 or end < start:
            raise RulesFileError('%s has no "%s" ... "%s" section; it was not written by UFW or was '
                                 'edited by hand, so it was left as it is' % (path, RULES_START, RULES_END))
        self.head = text[:start + len(RULES_START) + 2]
        self.tail = text[end + 1:]
        groups = []       # [tuple line, rule lines...] per block
        current = None
        for number, line in enumerate(text[start + len(RULES_START) + 2:end + 1].split('\n'),
                                      self.head.count('\n') + 1):
            if line.startswith(TUPLE):
                current = [line]
                groups.append((number, current))
            elif line.startswith('-') and current is not None:
                current.append(line)
            elif line.startswith('-'):
                raise RulesFileError('%s line %d: a rule outside any "### tuple ###" block: %r'
                                     % (path, number, line[:120]))
            elif line.strip() and not line.startswith('#'):
                raise RulesFileError('%s line %d: not a UFW rules line: %r' % (path, number, line[:120]))
            elif not line.strip():
                current = None
        self.blocks = []
        for number, lines in groups:
            block = Block('\n'.join(lines) + '\n', lines[0])
            if len(block.fields) < 7:
                raise RulesFileError('%s line %d: a tuple with %d fields, UFW writes at least 7: %r'
                                     % (path, number, len(block.fields), lines[0][:120]))
            self.blocks.append(block)

    def tagged(self, comment):
        return [b for b in self.blocks if b.comment == comment]

    def render(self, tagged_blocks, comment, position):
        """The file with the tagged rules replaced by ``tagged_blocks`` (texts)."""
        others = [b.text for b in self.blocks if b.comment != comment]
        ordered = list(tagged_blocks) + others if position == 'first' else others + list(tagged_blocks)
        return self.head + ''.join('\n' + text for text in ordered) + '\n' + self.tail


def split_families(lines):
    """Entries by family, by the cheapest test that holds for valid text."""
    v4, v6 = [], []
    for line in lines:
        (v6 if ':' in line else v4).append(line)
    return {4: v4, 6: v6}


_DEFAULTS_LINE = re.compile(r'^\s*([A-Z_0-9]+)\s*=\s*"?([^"\n]*)"?\s*$', re.M)


def read_config(text):
    """KEY=value pairs of /etc/default/ufw or /etc/ufw/ufw.conf."""
    return dict(_DEFAULTS_LINE.findall(text))


def ssh_port_allowed(rules_file, port, version=V4):
    """True when a rule of the file accepts new connections to ``port`` from anywhere."""
    for block in rules_file.blocks:
        action, proto, dport, _dst, _sport, src = block.fields[:6]
        if not action.startswith(('allow', 'limit')) or proto not in ('tcp', 'any'):
            continue
        if src != ANY_DST[version]:
            continue
        if dport == 'any' or str(port) in _ports(dport):
            return True
    return False


def _ports(spec):
    out = set()
    for part in spec.split(','):
        low, _sep, high = part.partition(':')
        if low.isascii() and low.isdigit() and high.isascii() and high.isdigit():
            out.update(str(p) for p in range(int(low), int(high) + 1))
        else:
            out.add(low)
    return out


class _Plan(object):
    """A sync's change over its families: entries before, those added and removed, the files' new texts."""

    def __init__(self):
        self.before, self.added, self.removed, self.new_texts = 0, [], [], {}


class UfwTaggedRules(object):
    """Make the rules tagged ``tag`` in UFW's rule files match the entries exactly."""

    backend = 'ufw'

    def __init__(self, run, bins, rules_dir='/etc/ufw', defaults_file='/etc/default/ufw', tag='fleetwall',
                 action='deny', proto='any', port=None, position='first', families=(4, 6),
                 apply_with='restore'):
        self.run = run
        self.bins = bins
        self.rules_dir = rules_dir
        self.defaults_file = defaults_file
        self.tag = tag
        self.comment = comment_hex(tag)
        self.shapes = dict((v, RuleShape(v, tag, action, proto, port)) for v in families)
        self.position = position
        self.families = tuple(families)
        self.apply_with = apply_with

    def path(self, version):
        return os.path.join(self.rules_dir, RULES_FILE[version])

    def _command(self, args, what):
        rc, out, err = self.run(args)
        if rc != 0:
            raise SyncError('%s failed (rc %d): %s' % (what, rc, tool_message(err, out)))
        return out

    def active(self):
        """UFW's own test: its user chain is in the kernel."""
        rc, out, _err = self.run([self.bins['iptables'], '-w', '-S', CHAIN[4]])
        return rc == 0, out

    def read(self, version):
        path = self.path(version)
        try:
            with open(path) as handle:
                text = handle.read()
        except (IOError, OSError) as exc:
            raise SyncError('cannot read %s (%s): is UFW installed?' % (path, exc.strerror or exc))
        if '\n' + RULES_END + '\n' not in text and '\n' + RULES_START + '\n' in text and TUPLE not in text:
            # The file as the package ships it, before UFW has written any
            # rule: UFW rewrites it whole on its first change.
            return text, None
        try:
            return text, RulesFile(text, path)
        except RulesFileError as exc:
            raise SyncError(str(exc))

    def normalise(self, check_mode):
        """Have UFW write its files in full (``ufw logging LEVEL`` rewrites them, nothing else changes)."""
        if check_mode:
            return
        level = read_config(_read_text(os.path.join(self.rules_dir, 'ufw.conf'))).get('LOGLEVEL', 'low') or 'low'
        self._command([self.bins['ufw'], 'logging', level], 'ufw logging %s (to have UFW write its rule files)' % level)

    def sync(self, lines, check_mode=False, want_diff=False, diff_sample=20, enable=False, ssh_port=None,
             allow_ssh=False, guard=None, vouched=True, withdraw=None):
        """Make the tagged rules hold exactly ``lines``. ``guard(changes, before, after)`` may refuse the change
        (module_support.change_guard): then nothing is written and the result says ``refused``.

        ``vouched``: a record says the last apply of these entries finished. Without it, files that
        already hold the entries are loaded again, since an apply killed between writing the files and
        loading them left the running firewall behind its files. ``withdraw()`` takes that record back
        before anything is written."""
        is_active, _out = self.active()
        ssh_allowed = False
        if enable and not is_active and allow_ssh and ssh_port:
            # UFW's own rule, made by UFW, before anything is enabled.
            if not check_mode:
                self._command([self.bins['ufw'], 'allow', '%s/tcp' % ssh_port], 'ufw allow %s/tcp' % ssh_port)
            ssh_allowed = True
        sources = self._sources(lines)
        files = self._full_files(check_mode)
        result = {'changed': False, 'added': 0, 'removed': 0, 'total': 0, 'rules_files': [], 'ufw_active': is_active}
        plan = _Plan()
        for version in self.families:
            self._plan_family(plan, result, files[version], version, sources[version])
        if want_diff:
            result['diff'] = compact_diff('ufw rules tagged %r' % self.tag, plan.before, result['total'],
                                          plan.removed, plan.added, diff_sample)
        refusal = guard(len(plan.added) + len(plan.removed), plan.before,
                        plan.before - len(plan.removed) + len(plan.added)) if guard else None
        if refusal:
            result.update(total=plan.before, refused=refusal)
            return result
        if plan.new_texts:
            result['changed'] = True
            result['rules_files'] = [self.path(v) for v in sorted(plan.new_texts)]
        if not is_active and enable:
            if not ssh_allowed:
                self.check_lockout(ssh_port)
            result.update(changed=True, enabled=True)
        if check_mode:
            return result
        self._apply(result, files, plan.new_texts, is_active, enable, vouched, withdraw)
        self.verify(sources, result['ufw_active'])
        return result

    def _sources(self, lines):
        """The wanted entries per managed family, canonical; entries of a family this task does not manage refused."""
        wanted = split_families(lines)
        for version in (4, 6):
            if wanted[version] and version not in self.families:
                raise SyncError('%d IPv%d entries given, but this task manages IPv%s rules only (families)'
                                % (len(wanted[version]), version, '/'.join('%d' % v for v in self.families)))
        return dict((v, canonicalize(wanted[v], v)) for v in self.families)

    def _full_files(self, check_mode):
        """Each family's rules file, read after UFW rewrote any in its short form (check mode leaves them)."""
        files = dict((v, self.read(v)) for v in self.families)
        if all(parsed is not None for _text, parsed in files.values()):
            return files
        self.normalise(check_mode)
        if check_mode:
            return files
        files = dict((v, self.read(v)) for v in self.families)
        if any(parsed is None for _text, parsed in files.values()):
            raise SyncError('UFW did not rewrite %s in its full form; nothing was changed'
                            % ', '.join(self.path(v) for v in self.families))
        return files

    def _plan_family(self, plan, result, current, version, sources):
        """One family's change: which tagged blocks go and come, and its file's new text when it differs."""
        text, parsed = current
        shape = self.shapes[version]
        existing = parsed.tagged(self.comment) if parsed else []
        existing_text = dict((b.source, b.text) for b in existing)
        desired = sorted(sources, key=_sort_key)
        desired_blocks = [shape.block(s) for s in desired]
        desired_text = dict(zip(desired, desired_blocks))
        removed = [s for s, t in existing_text.items() if desired_text.get(s) != t]
        added = [s for s in desired if existing_text.get(s) != desired_text[s]]
        plan.before += len(existing)
        plan.added += added
        plan.removed += removed
        result['added'] += len(added)
        result['removed'] += len(removed)
        result['total'] += len(desired)
        if parsed is None:
            # Check mode on the file as the package ships it: UFW would
            # rewrite it whole first, so it changes whatever we add.
            if desired:
                plan.new_texts[version] = None
            return
        new_text = parsed.render(desired_blocks, self.comment, self.position)
        if new_text != text:
            plan.new_texts[version] = new_text

    def _apply(self, result, files, new_texts, is_active, enable, vouched, withdraw):
        """Write and load the changed files (all of them again when no record vouches for the last apply), then
        enable UFW when asked."""
        if new_texts or not vouched:
            if withdraw:
                withdraw()
            reload_only = [] if vouched else [v for v in self.families if v not in new_texts]
            self.write_and_apply(files, new_texts, is_active, reload_only)
            if reload_only and is_active:
                # The running firewall may have lagged behind its files; it holds them now.
                result.update(changed=True, reloaded=True)
        if not is_active and enable:
            self._command([self.bins['ufw'], '--force', 'enable'], 'ufw enable')
            is_active = result['ufw_active'] = True
        if not is_active:
            result['warnings'] = ['UFW is not active: the %d tagged rules are written to its files and take effect '
                                  'when UFW is enabled (enable=true does that)' % result['total']]

    def write_and_apply(self, files, new_texts, is_active, reload_only=()):
        """Write the changed files, then load each in one restore (and the files of ``reload_only`` as
        they are); on failure put the old files back, and load them again where the new ones were loaded."""
        # Under the module's lock: temporary files a killed run left beside the rules files are nobody's now.
        remove_write_leftovers(*(self.path(version) for version in self.families))
        written, loaded = [], []
        try:
            for version in sorted(new_texts):
                path = self.path(version)
                mode = stat.S_IMODE(os.stat(path).st_mode)
                write_atomic(path, new_texts[version].encode('utf-8'), mode)
                written.append(version)
            if is_active:
                self._load(sorted(set(written) | set(reload_only)), loaded)
        except (SyncError, IOError, OSError) as exc:
            for version in written:
                path = self.path(version)
                write_atomic(path, files[version][0].encode('utf-8'), stat.S_IMODE(os.stat(path).st_mode))
            raise SyncError('%s; the previous rule files were put back and %s'
                            % (exc if isinstance(exc, SyncError) else '%s: %s' % (
                                getattr(exc, 'filename', ''), getattr(exc, 'strerror', exc)), self._load_again(loaded)))

    def _load(self, versions, loaded):
        """Load the rules files of ``versions`` into the running firewall; ``loaded`` gets each family done."""
        if not versions:
            return
        if self.apply_with == 'reload':
            # ufw reload loads both families at once: a failure may have loaded either.
            loaded.extend(versions)
            self._command([self.bins['ufw'], 'reload'], 'ufw reload')
            return
        for version in versions:
            restore = self.bins['iptables-restore' if version == 4 else 'ip6tables-restore']
            self._command([restore, '-n', self.path(version)], '%s -n %s' % (os.path.basename(restore), self.path(version)))
            loaded.append(version)

    def _load_again(self, loaded):
        """After a failure: load the put-back files of the families whose new files were loaded (IPv4 before a
        failed IPv6 load), so that the running firewall is what the files say; what the message can say of it."""
        if not loaded:
            return 'the running firewall was left as it was'
        families = ' and '.join('IPv%d' % version for version in loaded)
        try:
            self._load(loaded, [])
        except SyncError as exc:
            return ('the %s rules loaded before the failure could not be loaded again from them (%s): the running '
                    'firewall holds the new %s rules until the next run' % (families, exc, families))
        return 'the running firewall was loaded again from them (%s)' % families

    def verify(self, sources, is_active):
        """UFW must read back exactly the tagged rules: ``ufw status`` (``show added`` when inactive)."""
        if is_active:
            out = self._command([self.bins['ufw'], 'status'], 'ufw status')
            pattern = re.compile(r'\s(\S+)\s+# %s$' % re.escape(self.tag), re.M)
        else:
            out = self._command([self.bins['ufw'], 'show', 'added'], 'ufw show added')
            pattern = re.compile(r' from (\S+) .*comment %s$' % re.escape("'%s'" % self.tag), re.M)
        # A rule with a protocol and no port shows its source as 192.0.2.0/24/udp in 'ufw status'.
        seen = split_families([source.rsplit('/', 1)[0] if source.endswith(('/tcp', '/udp')) else source
                               for source in pattern.findall(out)])
        for version in self.families:
            if len(seen[version]) != len(sources[version]) or set(seen[version]) != set(sources[version]):
                raise SyncError('UFW reads back %d IPv%d rules tagged %r, %d were written and loaded (the change was '
                                'made; no record vouches for it, so the next run compares again); check %s'
                                % (len(seen[version]), version, self.tag, len(sources[version]), self.path(version)))

    def check_lockout(self, ssh_port):
        """Refuse to enable UFW where the rules would cut off the SSH session that runs this."""
        if not ssh_port:
            return
        policy = read_config(_read_text(self.defaults_file)).get('DEFAULT_INPUT_POLICY', 'DROP')
        if policy == 'ACCEPT':
            return
        _text, parsed = self.read(4)
        if parsed is None or not ssh_port_allowed(parsed, ssh_port):
            raise SyncError('enabling UFW would cut off this SSH session: the default incoming policy is %s and '
                            'no rule allows tcp port %s; allow it first (ufw allow %s/tcp), then enable'
                            % (policy, ssh_port, ssh_port))


def _sort_key(text):
    addr, _sep, prefix = text.partition('/')
    try:
        return (socket.inet_pton(socket.AF_INET6 if ':' in addr else socket.AF_INET, addr), int(prefix or 0))
    except (OSError, ValueError):
        return (text.encode(), 0)


def _read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return ''
