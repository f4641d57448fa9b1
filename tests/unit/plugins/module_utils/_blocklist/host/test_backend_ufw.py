"""UFW's rule files written by the module against the real ufw, iptables and kernel.

Each test gets a network namespace and a private mount namespace in which a
copy of /etc/ufw is mounted over /etc/ufw, so the real ``ufw`` command reads
the files the module writes and the kernel state is the namespace's own.
"""
import os
import shutil
import signal
import subprocess
import uuid

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ufw import (
    RulesFile, RulesFileError, UfwTaggedRules, comment_hex,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import SyncError

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason='needs root for namespaces'),
              pytest.mark.skipif(shutil.which('ufw', path='/usr/sbin:/sbin:/usr/bin') is None,
                                 reason='ufw is not installed (scripts/setup.sh installs it)')]
BINS = {'ufw': '/usr/sbin/ufw', 'iptables': '/usr/sbin/iptables',
        'iptables-restore': '/usr/sbin/iptables-restore', 'ip6tables-restore': '/usr/sbin/ip6tables-restore'}


@pytest.fixture
def ufw_host(tmp_path):
    """(run, rules_dir): commands run in the namespace; rules_dir is its /etc/ufw seen from here."""
    name = 'fwufw-' + uuid.uuid4().hex[:8]
    rules_dir = tmp_path / 'etc-ufw'
    shutil.copytree('/etc/ufw', str(rules_dir))
    subprocess.run(['ip', 'netns', 'add', name], check=True)
    holder = subprocess.Popen(
        ['ip', 'netns', 'exec', name, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c',
         'mount --bind "$0" /etc/ufw && mount -t tmpfs tmpfs /run && exec sleep 600', str(rules_dir)],
        start_new_session=True)
    try:
        for _attempt in range(100):
            with open('/proc/%d/mountinfo' % holder.pid) as handle:
                if ' /etc/ufw ' in handle.read():
                    break
            subprocess.run(['sleep', '0.05'], check=False)
        else:
            raise RuntimeError('the namespace did not come up')

        def run(args, data=None, check_rc=False):
            proc = subprocess.run(['nsenter', '-t', str(holder.pid), '-n', '-m', '--'] + list(args),
                                  input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  timeout=300, check=False)
            return proc.returncode, proc.stdout, proc.stderr
        run.pid = holder.pid
        yield run, rules_dir
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
        subprocess.run(['ip', 'netns', 'del', name], check=False)


def tagged(run, rules_dir, **kwargs):
    return UfwTaggedRules(run, BINS, rules_dir=str(rules_dir), **kwargs)


def rules_section(rules_dir, filename='user.rules'):
    text = (rules_dir / filename).read_text()
    return text[text.index('### RULES ###'):text.index('### END RULES ###')]


def empty_rules_sections(rules_dir):
    for filename in ('user.rules', 'user6.rules'):
        text = (rules_dir / filename).read_text()
        cut = text.index('### RULES ###') + len('### RULES ###\n')
        (rules_dir / filename).write_text(text[:cut] + text[text.index('### END RULES ###'):])


def enable(run):
    rc, out, err = run(['ufw', 'allow', '22/tcp'])
    assert rc == 0, err
    rc, out, err = run(['ufw', '--force', 'enable'])
    assert rc == 0, err


def test_files_match_what_the_ufw_cli_writes(ufw_host, tmp_path):
    """The same rules made one by one with the CLI and by the module give the same RULES sections."""
    run, rules_dir = ufw_host
    entries = ['198.51.100.0/24', '203.0.113.7', '2001:db8::1', '2001:db8:1::/48']   # the module's order
    shapes = [dict(action='deny'), dict(action='reject'), dict(action='deny', proto='tcp', port=22),
              dict(action='reject', proto='any', port=2222), dict(action='reject', proto='tcp'),
              dict(action='deny', proto='udp', port=53)]
    for index, shape in enumerate(shapes):
        tag = 'cli-%d' % index
        if index:
            empty_rules_sections(rules_dir)
        for entry in reversed(entries):
            args = ['ufw', 'prepend', shape['action']]
            if shape.get('proto', 'any') != 'any':
                args += ['proto', shape['proto']]
            args += ['from', entry]
            if shape.get('port'):
                args += ['to', 'any', 'port', str(shape['port'])]
            rc, _out, err = run(args + ['comment', tag])
            assert rc == 0, (args, err)
        cli = (rules_section(rules_dir), rules_section(rules_dir, 'user6.rules'))
        empty_rules_sections(rules_dir)
        r = tagged(run, rules_dir, tag=tag, **shape).sync(entries)
        assert r['added'] == 4 and r['total'] == 4
        assert (rules_section(rules_dir), rules_section(rules_dir, 'user6.rules')) == cli


def test_sync_noop_change_and_foreign_rules_untouched(ufw_host):
    run, rules_dir = ufw_host
    enable(run)
    run(['ufw', 'allow', 'from', '192.0.2.9', 'to', 'any', 'port', '80', 'proto', 'tcp'])
    run(['ufw', 'deny', 'from', '192.0.2.10', 'comment', 'someone else'])
    before_foreign = [b.text for b in RulesFile((rules_dir / 'user.rules').read_text()).blocks]
    entries = ['203.0.113.%d' % i for i in range(1, 101)] + ['2001:db8::%x' % i for i in range(1, 21)]
    r = tagged(run, rules_dir).sync(entries, want_diff=True)
    assert (r['changed'], r['added'], r['removed'], r['total'], r['ufw_active']) == (True, 120, 0, 120, True)
    assert r['diff']['after'].startswith("ufw rules tagged 'fleetwall': 120 entries\n")
    parsed = RulesFile((rules_dir / 'user.rules').read_text())
    assert [b.text for b in parsed.blocks[100:]] == before_foreign      # after ours, same order
    assert parsed.blocks[0].source == '203.0.113.1'                       # position first
    rc, out, _err = run(['iptables', '-S', 'ufw-user-input'])
    assert '-A ufw-user-input -s 203.0.113.100/32 -j DROP' in out
    assert out.index('203.0.113.100') < out.index('--dport 22 -j ACCEPT')  # before the allow rule

    r = tagged(run, rules_dir).sync(entries)
    assert (r['changed'], r['added'], r['removed'], r['total']) == (False, 0, 0, 120)

    new = entries[10:] + ['198.51.100.0/24']
    r = tagged(run, rules_dir).sync(new)
    assert (r['changed'], r['added'], r['removed'], r['total']) == (True, 1, 10, 111)
    rc, out, _err = run(['iptables', '-S', 'ufw-user-input'])
    assert '203.0.113.1/32' not in out and '198.51.100.0/24' in out
    rc, out, _err = run(['ufw', 'status'])
    assert out.count('# fleetwall') == 111 and '# someone else' in out

    r = tagged(run, rules_dir).sync([])
    assert (r['changed'], r['removed'], r['total']) == (True, 111, 0)
    assert [b.text for b in RulesFile((rules_dir / 'user.rules').read_text()).blocks] == before_foreign


def test_position_last_and_port_change_replaces_rules(ufw_host):
    run, rules_dir = ufw_host
    enable(run)
    tagged(run, rules_dir, position='last').sync(['203.0.113.5'])
    blocks = RulesFile((rules_dir / 'user.rules').read_text()).blocks
    assert blocks[-1].source == '203.0.113.5' and blocks[0].fields[:3] == ['allow', 'tcp', '22']
    r = tagged(run, rules_dir, position='last', action='reject', proto='tcp', port=22).sync(['203.0.113.5'])
    assert (r['changed'], r['added'], r['removed'], r['total']) == (True, 1, 1, 1)
    rc, out, _err = run(['iptables', '-S', 'ufw-user-input'])
    assert '-s 203.0.113.5/32 -p tcp -m tcp --dport 22 -j REJECT --reject-with tcp-reset' in out


def test_check_mode_changes_nothing(ufw_host):
    run, rules_dir = ufw_host
    enable(run)
    before = (rules_dir / 'user.rules').read_text()
    r = tagged(run, rules_dir).sync(['203.0.113.5'], check_mode=True, want_diff=True)
    assert (r['changed'], r['added']) == (True, 1) and '203.0.113.5' in r['diff']['after']
    assert (rules_dir / 'user.rules').read_text() == before


def test_malformed_rules_file_is_reported_never_overwritten(ufw_host):
    run, rules_dir = ufw_host
    enable(run)
    broken = (rules_dir / 'user.rules').read_text().replace('### END RULES ###', '')
    (rules_dir / 'user.rules').write_text(broken)
    with pytest.raises(SyncError, match='END RULES'):
        tagged(run, rules_dir).sync(['203.0.113.5'])
    assert (rules_dir / 'user.rules').read_text() == broken
    (rules_dir / 'user.rules').write_text(broken.replace('### RULES ###\n', '### RULES ###\nhello\n')
                                          + '### END RULES ###\n')
    with pytest.raises(RulesFileError):
        RulesFile((rules_dir / 'user.rules').read_text())


def test_failed_load_puts_the_old_files_back(ufw_host):
    run, rules_dir = ufw_host
    enable(run)
    tagged(run, rules_dir).sync(['203.0.113.5'])
    before = (rules_dir / 'user.rules').read_text()
    bins = dict(BINS, **{'iptables-restore': '/bin/false'})
    with pytest.raises(SyncError, match='previous rule files were put back'):
        UfwTaggedRules(run, bins, rules_dir=str(rules_dir)).sync(['203.0.113.6'])
    assert (rules_dir / 'user.rules').read_text() == before
    rc, out, _err = run(['iptables', '-S', 'ufw-user-input'])
    assert '203.0.113.5/32' in out and '203.0.113.6' not in out


def test_invalid_entry_changes_nothing(ufw_host):
    run, rules_dir = ufw_host
    before = (rules_dir / 'user.rules').read_text()
    with pytest.raises(SyncError, match='invalid entries'):
        tagged(run, rules_dir).sync(['203.0.113.5', '1.2.3.4; rm -rf /'])
    assert (rules_dir / 'user.rules').read_text() == before


def test_inactive_ufw_is_reported_and_enable_guards_ssh(ufw_host):
    run, rules_dir = ufw_host
    r = tagged(run, rules_dir).sync(['203.0.113.5', '2001:db8::5'])
    assert r['ufw_active'] is False and 'not active' in r['warnings'][0]
    rc, _out, _err = run(['iptables', '-S', 'ufw-user-input'])
    assert rc != 0                                       # nothing loaded
    with pytest.raises(SyncError, match='cut off this SSH session'):
        tagged(run, rules_dir).sync(['203.0.113.5'], enable=True, ssh_port='22')
    rc, _out, _err = run(['iptables', '-S', 'ufw-user-input'])
    assert rc != 0
    run(['ufw', 'allow', '22/tcp'])
    r = tagged(run, rules_dir).sync(['203.0.113.5', '2001:db8::5'], enable=True, ssh_port='22')
    assert r['ufw_active'] is True and r['changed'] is True
    rc, out, _err = run(['iptables', '-S', 'ufw-user-input'])
    assert '203.0.113.5/32' in out


def test_families_limit_what_is_managed(ufw_host):
    run, rules_dir = ufw_host
    tagged(run, rules_dir).sync(['203.0.113.5', '2001:db8::5'])
    r = tagged(run, rules_dir, families=(4,)).sync(['203.0.113.6'])
    assert (r['added'], r['removed'], r['total']) == (1, 1, 1)
    assert comment_hex('fleetwall') in (rules_dir / 'user6.rules').read_text()
    with pytest.raises(SyncError, match='IPv6 entries given'):
        tagged(run, rules_dir, families=(4,)).sync(['2001:db8::6'])


def test_allow_ssh_adds_ufws_own_rule_before_enabling(ufw_host):
    run, rules_dir = ufw_host
    r = tagged(run, rules_dir).sync(['203.0.113.5'], enable=True, ssh_port='2222', allow_ssh=True,
                                    check_mode=True)
    assert r['changed'] and r['ufw_active'] is False
    assert run(['iptables', '-S', 'ufw-user-input'])[0] != 0
    r = tagged(run, rules_dir).sync(['203.0.113.5'], enable=True, ssh_port='2222', allow_ssh=True)
    assert r['ufw_active'] is True
    blocks = RulesFile((rules_dir / 'user.rules').read_text()).blocks
    assert [b.fields[:3] for b in blocks] == [['deny', 'any', 'any'], ['allow', 'tcp', '2222']]


def test_check_mode_on_the_files_as_the_package_ships_them(ufw_host):
    run, rules_dir = ufw_host
    shipped = (rules_dir / 'user.rules').read_text()
    assert '### END RULES ###' not in shipped                   # no rule was ever added
    r = tagged(run, rules_dir).sync(['203.0.113.5', '2001:db8::5'], check_mode=True, want_diff=True)
    assert (r['changed'], r['added'], r['total']) == (True, 2, 2)
    assert (rules_dir / 'user.rules').read_text() == shipped


def test_change_guard_keeps_the_rules(ufw_host):
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import change_refusal
    run, rules_dir = ufw_host
    enable(run)
    entries = ['203.0.113.%d' % i for i in range(1, 41)]
    tagged(run, rules_dir).sync(entries)
    files = [(rules_dir / f).read_text() for f in ('user.rules', 'user6.rules')]

    def guard(changes, before, _after):
        return change_refusal(changes, before, 25, False)
    # 30 of 40 rules gone: 75%, above 25%; refused in check mode and for real, nothing written or loaded.
    for check_mode in (True, False):
        r = tagged(run, rules_dir).sync(entries[30:], check_mode=check_mode, want_diff=True, guard=guard)
        assert r['refused'] and '75.0%' in r['refused'] and not r['changed']
        assert (r['removed'], r['total']) == (30, 40)
        assert [(rules_dir / f).read_text() for f in ('user.rules', 'user6.rules')] == files
    rc, out, _err = run(['iptables', '-S', 'ufw-user-input'])
    assert out.count('-j DROP') == 40
    # A small change passes the same guard; force lifts it.
    assert not tagged(run, rules_dir).sync(entries + ['198.51.100.1'], guard=guard).get('refused')
    r = tagged(run, rules_dir).sync(entries[30:],
                                    guard=lambda changes, before, _after: change_refusal(changes, before, 25, True))
    assert (r['changed'], r['removed'], r['total']) == (True, 31, 10) and not r.get('refused')


def test_a_protocol_without_a_port_reads_back_while_ufw_is_active(ufw_host):
    """'ufw status' shows such a rule's source as 192.0.2.0/24/udp: the read-back failed the run after the rules
    were written and loaded (found by the hostile-argument suite, seed 1)."""
    run, rules_dir = ufw_host
    enable(run)
    entries = ['192.0.2.0/24', '203.0.113.64/26', '2001:db8::7']
    for proto in ('udp', 'tcp'):
        r = tagged(run, rules_dir, proto=proto).sync(entries)
        assert r['total'] == 3, r
        assert '-A ufw-user-input -s 192.0.2.0/24 -p %s -j DROP' % proto in run(['iptables', '-S', 'ufw-user-input'])[1]
