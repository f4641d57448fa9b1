# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""UFW's tagged rules against fake ufw and iptables tools: rule files in a temporary directory, a model of what
the tools would load and read back.  What a failed load leaves, what a refused or dangerous change leaves, and that
a read-back that disagrees is an error.  No root, no kernel: test_backend_ufw.py runs the real ufw in a namespace."""

from __future__ import annotations

import os

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ufw import (
    RulesFile, UfwTaggedRules, comment_hex,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import SyncError
from ansible_collections.fleetwall.blocklist.tests.unit.plugins.module_utils._blocklist.host.fake_runner import (
    FakeRunner, fail, ok,
)

BINS = {'ufw': '/usr/sbin/ufw', 'iptables': '/usr/sbin/iptables', 'iptables-restore': '/usr/sbin/iptables-restore',
        'ip6tables-restore': '/usr/sbin/ip6tables-restore'}
TAG = 'fleetwall'
SSH_BLOCK = {4: '### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n',
             6: '### tuple ### allow tcp 22 ::/0 any ::/0 in\n-A ufw6-user-input -p tcp --dport 22 -j ACCEPT\n'}
FOREIGN_BLOCK = ('### tuple ### deny any any 0.0.0.0/0 any 192.0.2.10 in comment=%s\n'
                 '-A ufw-user-input -s 192.0.2.10 -j DROP\n' % comment_hex('someone else'))


def rules_text(version, blocks):
    """A rules file in the full form UFW writes once it has written any rule."""
    prefix = 'ufw' if version == 4 else 'ufw6'
    chains = ''.join(':%s-user-%s - [0:0]\n' % (prefix, c) for c in ('input', 'output', 'forward', 'limit'))
    return ('*filter\n%s### RULES ###\n%s\n### END RULES ###\n\n### LOGGING ###\n-A %s-user-logging-input -j RETURN\n'
            '### END LOGGING ###\nCOMMIT\n' % (chains, ''.join('\n' + b for b in blocks), prefix))


# The file as the package ships it, before UFW has written any rule.
SHIPPED = '*filter\n:ufw-user-input - [0:0]\n### RULES ###\n-A ufw-user-limit -j REJECT\nCOMMIT\n'


class UfwModel(object):
    """ufw, iptables -S and iptables-restore as far as the adapter uses them; ``loaded`` is what each family's
    restore loaded, read from the file at the time."""

    def __init__(self, rules_dir, active=True):
        self.rules_dir = rules_dir
        self.active = active
        self.loaded = {4: None, 6: None}
        self.refuse = {}            # family: what its restore says as it fails
        self.hidden = set()         # sources ufw status leaves out
        self.rewrites = True        # 'ufw logging' rewrites the files in full, as UFW does

    def __call__(self, call):
        tool, args = os.path.basename(call.args[0]), call.args[1:]
        if tool == 'iptables':
            return ok('-N ufw-user-input\n') if self.active else fail('iptables: No chain/target/match by that name.\n')
        if tool.endswith('tables-restore'):
            version = 6 if tool.startswith('ip6') else 4
            assert args[0] == '-n', 'a restore without --noflush would flush every other chain of the table'
            if version in self.refuse:
                return fail(self.refuse[version])
            with open(args[1]) as handle:
                self.loaded[version] = handle.read()
            return ok()
        assert tool == 'ufw', call
        if args == ['status']:
            return ok('Status: active\n\n' + ''.join('%-26s DENY IN     %-26s # %s\n' % (
                'Anywhere' + (' (v6)' if version == 6 else ''), source, TAG) for version, source in self.tagged()))
        if args == ['show', 'added']:
            return ok('Added user rules (see \'ufw status\' for running firewall):\n' + ''.join(
                "ufw deny from %s comment '%s'\n" % (source, TAG) for _version, source in self.tagged()))
        if args[0] == 'logging':
            if self.rewrites:
                for version, name in ((4, 'user.rules'), (6, 'user6.rules')):
                    with open(os.path.join(self.rules_dir, name), 'w') as handle:
                        handle.write(rules_text(version, [SSH_BLOCK[version]]))
            return ok('Logging enabled\n')
        if args in (['--force', 'enable'], ['allow', '22/tcp']):
            self.active = self.active or args[0] == '--force'
            return ok()
        raise AssertionError('ufw %s is not modelled' % ' '.join(args))

    def tagged(self):
        for version, name in ((4, 'user.rules'), (6, 'user6.rules')):
            with open(os.path.join(self.rules_dir, name)) as handle:
                for block in RulesFile(handle.read()).tagged(comment_hex(TAG)):
                    if block.source not in self.hidden:
                        yield version, block.source


@pytest.fixture
def host(tmp_path):
    """(fake runner, model, rules directory) of an active UFW with an SSH rule and someone else's deny rule."""
    rules_dir = tmp_path / 'ufw'
    rules_dir.mkdir()
    (rules_dir / 'user.rules').write_text(rules_text(4, [SSH_BLOCK[4], FOREIGN_BLOCK]))
    (rules_dir / 'user6.rules').write_text(rules_text(6, [SSH_BLOCK[6]]))
    (rules_dir / 'ufw.conf').write_text('ENABLED=yes\nLOGLEVEL=medium\n')
    (tmp_path / 'default-ufw').write_text('DEFAULT_INPUT_POLICY="DROP"\n')
    fake = FakeRunner()
    model = UfwModel(str(rules_dir))
    for tool in BINS.values():
        fake.on([tool], model)
    yield fake, model, rules_dir
    fake.check()


def tagged(fake, rules_dir, **kwargs):
    return UfwTaggedRules(fake, BINS, rules_dir=str(rules_dir), defaults_file=str(rules_dir.parent / 'default-ufw'),
                          **kwargs)


def texts(rules_dir):
    return {4: (rules_dir / 'user.rules').read_text(), 6: (rules_dir / 'user6.rules').read_text()}


def sources(text):
    return [block.source for block in RulesFile(text).tagged(comment_hex(TAG))]


def test_a_change_is_written_then_each_family_loaded_whole_and_read_back(host):
    fake, model, rules_dir = host
    result = tagged(fake, rules_dir).sync(['203.0.113.5', '198.51.100.0/24', '2001:db8::1'])
    assert (result['changed'], result['added'], result['total']) == (True, 3, 3)
    after = texts(rules_dir)
    assert sources(after[4]) == ['198.51.100.0/24', '203.0.113.5'] and sources(after[6]) == ['2001:db8::1']
    # Ours first (position first), then the others' rules, byte for byte and in their order.
    blocks = [block.text for block in RulesFile(after[4]).blocks]
    assert blocks[2:] == [SSH_BLOCK[4], FOREIGN_BLOCK]
    # Each family loaded in one restore, from the file as written.
    assert model.loaded == after
    assert [os.path.basename(args[0]) for args in fake.commands() if 'restore' in args[0]] == [
        'iptables-restore', 'ip6tables-restore']
    # The same again changes and loads nothing.
    loads = len(fake.commands([BINS['iptables-restore']]))
    assert tagged(fake, rules_dir).sync(['203.0.113.5', '198.51.100.0/24', '2001:db8::1'])['changed'] is False
    assert len(fake.commands([BINS['iptables-restore']])) == loads


def test_a_failed_load_puts_the_old_file_back_and_keeps_the_tools_words(host):
    fake, model, rules_dir = host
    before = texts(rules_dir)
    model.refuse[4] = 'iptables-restore v1.8.9 (nf_tables): line 12 failed\n'
    with pytest.raises(SyncError) as failed:
        tagged(fake, rules_dir).sync(['203.0.113.5'])
    message = str(failed.value)
    assert 'line 12 failed' in message and 'previous rule files were put back' in message
    assert texts(rules_dir) == before and model.loaded == {4: None, 6: None}
    assert not [name for name in os.listdir(str(rules_dir)) if '.tmp-' in name]


def test_a_failed_load_of_one_family_leaves_no_other_family_loaded_past_its_file(host):
    fake, model, rules_dir = host
    before = texts(rules_dir)
    model.refuse[6] = 'ip6tables-restore v1.8.9 (nf_tables): line 9 failed\n'
    with pytest.raises(SyncError) as failed:
        tagged(fake, rules_dir).sync(['203.0.113.5', '2001:db8::1'])
    assert texts(rules_dir) == before
    # IPv4's new file was loaded before IPv6's failed: its old file is loaded again, and the message says so.
    assert model.loaded[4] == before[4]
    assert 'line 9 failed' in str(failed.value) and 'loaded again from them (IPv4)' in str(failed.value)


def test_a_failure_to_load_the_old_file_again_is_said_not_hidden(host):
    fake, model, rules_dir = host
    model.refuse[6] = 'ip6tables-restore v1.8.9 (nf_tables): line 9 failed\n'
    loads = []

    def new_file_only(call):
        # iptables-restore takes the new IPv4 file, then refuses the old one it is given back.
        loads.append(call.args)
        return model(call) if len(loads) == 1 else fail('iptables-restore: line 3 failed\n')
    fake.on([BINS['iptables-restore']], new_file_only)
    with pytest.raises(SyncError) as failed:
        tagged(fake, rules_dir).sync(['203.0.113.5', '2001:db8::1'])
    assert 'could not be loaded again' in str(failed.value) and 'holds the new IPv4 rules' in str(failed.value)
    assert 'left as it was' not in str(failed.value) and len(loads) == 2


def test_a_read_back_that_misses_a_rule_is_an_error_that_says_the_change_was_made(host):
    fake, model, rules_dir = host
    model.hidden.add('203.0.113.6')
    with pytest.raises(SyncError) as failed:
        tagged(fake, rules_dir).sync(['203.0.113.5', '203.0.113.6'])
    message = str(failed.value)
    assert "reads back 1 IPv4 rules tagged 'fleetwall', 2 were written" in message and 'the change was made' in message


def test_a_refused_change_writes_and_loads_nothing(host):
    fake, model, rules_dir = host
    tagged(fake, rules_dir).sync(['203.0.113.%d' % i for i in range(1, 11)])
    before = texts(rules_dir)
    asked = []

    def guard(changes, was, will_be):
        asked.append((changes, was, will_be))
        return 'too large'
    result = tagged(fake, rules_dir).sync(['198.51.100.1'], guard=guard)
    assert asked == [(11, 10, 1)] and result['refused'] == 'too large' and result['total'] == 10
    assert texts(rules_dir) == before and model.loaded[4] == before[4]


def test_entries_of_a_family_this_task_does_not_manage_are_refused_before_anything_is_written(host):
    fake, model, rules_dir = host
    before = texts(rules_dir)
    with pytest.raises(SyncError, match='1 IPv6 entries given, but this task manages IPv4 rules only'):
        tagged(fake, rules_dir, families=(4,)).sync(['203.0.113.5', '2001:db8::1'])
    assert texts(rules_dir) == before and model.loaded == {4: None, 6: None}


def test_enabling_ufw_where_it_would_cut_off_ssh_is_refused_before_anything_changes(host):
    fake, model, rules_dir = host
    model.active = False
    (rules_dir / 'user.rules').write_text(rules_text(4, [FOREIGN_BLOCK]))
    before = texts(rules_dir)
    with pytest.raises(SyncError) as failed:
        tagged(fake, rules_dir).sync(['203.0.113.5'], enable=True, ssh_port=22)
    assert 'cut off this SSH session' in str(failed.value) and 'ufw allow 22/tcp' in str(failed.value)
    assert texts(rules_dir) == before and model.active is False
    assert fake.commands([BINS['ufw'], '--force', 'enable']) == []


def test_enabling_with_allow_ssh_lets_ufw_allow_it_first(host):
    fake, model, rules_dir = host
    model.active = False
    (rules_dir / 'user.rules').write_text(rules_text(4, [FOREIGN_BLOCK]))
    result = tagged(fake, rules_dir).sync(['203.0.113.5'], enable=True, ssh_port=22, allow_ssh=True)
    assert result['enabled'] and model.active
    ufw = [args[1:] for args in fake.commands([BINS['ufw']])]
    assert ufw.index(['allow', '22/tcp']) < ufw.index(['--force', 'enable'])


def test_an_inactive_ufw_gets_its_files_and_a_warning_and_nothing_is_loaded(host):
    fake, model, rules_dir = host
    model.active = False
    result = tagged(fake, rules_dir).sync(['203.0.113.5'])
    assert result['changed'] and 'UFW is not active' in result['warnings'][0]
    assert sources(texts(rules_dir)[4]) == ['203.0.113.5'] and model.loaded == {4: None, 6: None}
    # Read back from the files, as 'ufw show added' lists them.
    assert fake.commands([BINS['ufw'], 'show', 'added']) and not fake.commands([BINS['ufw'], 'status'])


def test_files_no_record_vouches_for_are_loaded_again(host):
    """A run killed between writing the files and loading them left the firewall behind its files."""
    fake, model, rules_dir = host
    tagged(fake, rules_dir).sync(['203.0.113.5'])
    model.loaded = {4: None, 6: None}
    withdrawn = []
    result = tagged(fake, rules_dir).sync(['203.0.113.5'], vouched=False, withdraw=lambda: withdrawn.append(True))
    assert (result['changed'], result['reloaded'], withdrawn) == (True, True, [True])
    assert model.loaded == texts(rules_dir)


def test_a_file_in_its_shipped_form_is_rewritten_by_ufw_first(host):
    fake, model, rules_dir = host
    for name in ('user.rules', 'user6.rules'):
        (rules_dir / name).write_text(SHIPPED)
    tagged(fake, rules_dir).sync(['203.0.113.5'])
    # The log level UFW has, so that the rewrite changes nothing else.
    assert fake.commands([BINS['ufw'], 'logging']) == [[BINS['ufw'], 'logging', 'medium']]
    assert sources(texts(rules_dir)[4]) == ['203.0.113.5']


def test_a_file_ufw_did_not_rewrite_is_left_as_it_is(host):
    fake, model, rules_dir = host
    model.rewrites = False
    for name in ('user.rules', 'user6.rules'):
        (rules_dir / name).write_text(SHIPPED)
    with pytest.raises(SyncError, match='UFW did not rewrite .*user.rules.* in its full form; nothing was changed'):
        tagged(fake, rules_dir).sync(['203.0.113.5'])
    assert texts(rules_dir) == {4: SHIPPED, 6: SHIPPED}


def test_a_failed_rewrite_keeps_ufws_words(host):
    fake, model, rules_dir = host
    (rules_dir / 'user.rules').write_text(SHIPPED)
    fake.on([BINS['ufw'], 'logging'], fail('ERROR: Could not update running firewall\n'))
    with pytest.raises(SyncError, match='ufw logging medium .*: ERROR: Could not update running firewall'):
        tagged(fake, rules_dir).sync(['203.0.113.5'])
    assert (rules_dir / 'user.rules').read_text() == SHIPPED
