# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_firewalld import FirewalldAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.command_runner import (
    MESSAGE_LIMIT, NOT_STARTED, TIMED_OUT, run_tool, tool_message,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.sync import SyncError

TOOL_PATH = os.pathsep.join(('/usr/local/sbin', '/usr/sbin', '/sbin', os.environ.get('PATH', '')))

ECHO = ('import os, sys; data = sys.stdin.read(); sys.stdout.buffer.write(b"out \\xff" + data.encode()); '
        'sys.stderr.write(os.environ.get("LC_ALL", "-") + " " + os.environ.get("LANGUAGE", "-")); sys.exit(3)')


def test_a_tool_answers_as_run_command_would_in_the_c_locale(monkeypatch):
    monkeypatch.setenv('LC_ALL', 'de_DE.UTF-8')
    monkeypatch.setenv('LANGUAGE', 'de')
    # Text (undecodable bytes escaped, as run_command keeps them), the tool's own rc, the C locale whatever the
    # module's, and an empty stdin: the module's own is Ansible's, never the tool's.
    assert run_tool([sys.executable, '-c', ECHO]) == (3, 'out \udcff', 'C -')


def test_data_goes_to_the_tools_stdin():
    assert run_tool([sys.executable, '-c', ECHO], data='addr show\n')[1] == 'out \udcffaddr show\n'


def test_a_tools_own_output_can_be_fed_back_to_it_and_a_hung_tool_is_stopped():
    echo = [sys.executable, '-c', 'import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())']
    said = run_tool([sys.executable, '-c', 'import sys; sys.stdout.buffer.write(b"\\xff")'])[1]
    assert run_tool(echo, data=said)[1] == said == '\udcff'
    rc, _out, err = run_tool([sys.executable, '-c', 'import time; time.sleep(30)'], timeout=1)
    assert rc == TIMED_OUT and 'still running after 1 s' in err


def test_a_tool_that_cannot_start_is_a_failed_call_not_an_exception():
    # The adapters report it as any failed call, in a loader thread too.
    rc, out, err = run_tool(['/nonexistent/fleetwall-tool', 'restore'])
    assert (rc, out) == (NOT_STARTED, '') and err.startswith('/nonexistent/fleetwall-tool: ')


def test_a_message_keeps_stderr_else_stdout_and_both_ends_of_a_long_one():
    assert tool_message('  ipset v7.17: Error in line 3\n', 'ignored') == 'ipset v7.17: Error in line 3'
    assert tool_message('\n', 'nginx: [emerg] unknown directive') == 'nginx: [emerg] unknown directive'
    assert tool_message('', None) == ''
    # nft names the failing line first, nginx ends with its cause: a long message keeps both, and says how much
    # it left out, so nobody mistakes it for the whole.
    said = 'Error: first line\n' + 'context ' * 1000 + '\nthe cause'
    message = tool_message(said)
    assert message.startswith('Error: first line') and message.endswith('the cause')
    assert len(message) < MESSAGE_LIMIT + 100
    assert '[... %d characters left out ...]' % (len(said) - MESSAGE_LIMIT) in message


GERMAN = 'de_DE.UTF-8'


@pytest.mark.skipif(not shutil.which('firewall-cmd', path=TOOL_PATH), reason='firewall-cmd is not installed')
def test_an_adapters_error_reads_in_english_under_a_translated_locale(monkeypatch):
    firewall_cmd = shutil.which('firewall-cmd', path=TOOL_PATH)
    # No system bus: firewall-cmd fails with glibc's message, which the German locale translates.
    monkeypatch.setenv('DBUS_SYSTEM_BUS_ADDRESS', 'unix:path=/nonexistent/fleetwall/system_bus_socket')
    for variable in ('LANG', 'LC_ALL', 'LC_MESSAGES', 'LANGUAGE'):
        monkeypatch.setenv(variable, GERMAN if variable != 'LANGUAGE' else 'de')
    # The same call without the runner answers in German (so the locale is there, and this test can fail).
    direct = subprocess.run([firewall_cmd, '--state'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            timeout=120, check=False)
    assert 'Datei oder Verzeichnis nicht gefunden' in direct.stdout + direct.stderr
    with pytest.raises(SyncError) as failed:
        FirewalldAdapter(run_tool, firewall_cmd, 'fleetwall_v4').running()
    assert 'No such file or directory' in str(failed.value) and 'Datei' not in str(failed.value)
