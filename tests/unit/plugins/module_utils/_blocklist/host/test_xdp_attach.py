# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the XDP program is attached, decided from ``ip -j link`` and carried out through iproute2 (a fake runner)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host import xdp_attach

from ansible_collections.fleetwall.blocklist.tests.unit.plugins.module_utils._blocklist.host.fake_runner import (
    FakeRunner, fail, ok,
)

CORE_INDEPENDENT = True
PINNED = '/sys/fs/bpf/fleetwall/fleetwall_xdp'


def link(name, mode=None, prog_id=None, prog_name='fleetwall_xdp', link_type='ether'):
    item = {'ifname': name, 'link_type': link_type}
    if mode:
        item['xdp'] = {'mode': mode, 'prog': {'id': prog_id, 'name': prog_name, 'tag': '0' * 16}}
    return item


def links_answer(*items):
    return ok(json.dumps(list(items)))


def test_another_tools_program_is_refused_by_name_and_nothing_is_attached():
    fake = FakeRunner()
    fake.on(['ip', '-j', 'link', 'show'], links_answer(link('eth0', 1, 40, 'xdp_dispatcher'), link('eth1')))
    with pytest.raises(xdp_attach.AttachError, match=r'eth0 already runs XDP program xdp_dispatcher \(id 40, '
                                                     r'native mode\), which fleetwall did not attach'):
        xdp_attach.apply(fake, 'ip', PINNED, 7, ['eth0', 'eth1'])
    assert fake.commands() == [['ip', '-j', 'link', 'show']]


def test_native_first_then_generic_and_the_mode_is_reported():
    fake = FakeRunner()
    fake.on(['ip', '-j', 'link', 'show'], links_answer(link('eth0')))
    fake.on(['ip', 'link', 'set', 'dev', 'eth0', 'xdpdrv'], fail('Error: driver has no XDP support'))
    fake.on(['ip', 'link', 'set', 'dev', 'eth0', 'xdpgeneric'], ok())
    changes, modes = xdp_attach.apply(fake, 'ip', PINNED, 7, ['eth0'])
    assert changes == ['attach on eth0 (generic mode)'] and modes == {'eth0': 'generic'}


def test_ours_stays_replaces_an_old_copy_in_one_step_and_leaves_interfaces_no_longer_wanted():
    fake = FakeRunner()
    fake.on(['ip', '-j', 'link', 'show'], links_answer(link('eth0', 1, 7), link('eth1', 2, 5), link('eth2', 1, 7)))
    fake.on(['ip', '-force', 'link', 'set', 'dev', 'eth1', 'xdpgeneric', 'pinned', PINNED], ok())
    fake.on(['ip', 'link', 'set', 'dev', 'eth2', 'xdpdrv', 'off'], ok())
    changes, modes = xdp_attach.apply(fake, 'ip', PINNED, 7, ['eth0', 'eth1'])
    assert changes == ['replace on eth1 (generic mode)', 'detach from eth2 (native mode)']
    assert modes == {'eth0': 'native', 'eth1': 'generic'}


def test_check_mode_runs_nothing_but_the_listing():
    fake = FakeRunner()
    fake.on(['ip', '-j', 'link', 'show'], links_answer(link('eth0'), link('eth2', 1, 7)))
    changes, _modes = xdp_attach.apply(fake, 'ip', PINNED, 7, ['eth0'], check_mode=True)
    assert changes == ['attach on eth0 (auto mode)', 'detach from eth2 (native mode)']
    assert len(fake.calls) == 1


def test_a_missing_interface_is_named():
    fake = FakeRunner()
    fake.on(['ip', '-j', 'link', 'show'], links_answer(link('eth0')))
    with pytest.raises(xdp_attach.AttachError, match='eth7: no such interface'):
        xdp_attach.apply(fake, 'ip', PINNED, 7, ['eth7'])


def test_the_default_interfaces_are_those_of_the_default_routes_each_once():
    fake = FakeRunner()
    fake.on(['ip', '-j', '-4', 'route', 'show', 'default'], ok(json.dumps([{'dst': 'default', 'dev': 'eth0'}])))
    fake.on(['ip', '-j', '-6', 'route', 'show', 'default'], ok(json.dumps([
        {'dst': 'default', 'dev': 'eth0'}, {'dst': 'default', 'nexthops': [{'dev': 'eth1'}, {'dev': 'eth0'}]}])))
    assert xdp_attach.default_route_interfaces(fake, 'ip') == ['eth0', 'eth1']


def test_an_interface_without_ethernet_frames_is_refused():
    fake = FakeRunner()
    fake.on(['ip', '-j', 'link', 'show'], links_answer(link('wg0', link_type='none'), link('eth0')))
    with pytest.raises(xdp_attach.AttachError, match=r'wg0 carries no Ethernet frames \(link type none\)'):
        xdp_attach.apply(fake, 'ip', PINNED, 7, ['eth0', 'wg0'])
    assert fake.commands() == [['ip', '-j', 'link', 'show']]
