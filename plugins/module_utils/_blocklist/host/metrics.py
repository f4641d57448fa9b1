# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A host's blocklist metrics, in Prometheus' text format for node_exporter's textfile collector.

Entries and the time of the last successful sync come from the records the
sync engine keeps in its state directory (what was applied, not a listing of
a million-entry set); drops come from the counters of the rules that enforce
the sets: the tagged iptables rules (``iptables-save -c``) for ipset, the
named counters of the table ``inet fleetwall`` for nftables, the program's
per-CPU counters (one per family) for XDP.  The web tier's records
(nginx_geo_file's nginx-VALUE.json) name the access log its enforcement
writes one line to per request it answers; their lines are counted, from
where the last count stopped (request_log.py).
"""

from __future__ import annotations

import json
import os
import re
import time

from ..backends import BACKENDS, backend_of_record, record_names
from ..files import write_atomic

from .iptables_rules import tag_for
from .nft_rules import counter_name
from .request_log import count_requests

# The engine's record files: <backend>-<set>.json beside <backend>-<set>.entries.
RECORD = re.compile(r'^(%s)-(.+)\.json$' % '|'.join(re.escape(name) for name in sorted(record_names(), key=len, reverse=True)))
_SAVE_RULE = re.compile(r'^\[(\d+):(\d+)\]\s+-A\s+\S+\s+(.*)$')
_COMMENT = re.compile(r'--comment\s+"?([^"\s]+)"?')
NFT_TABLE = 'fleetwall'
# Where the web tier's request counts continue from (not a record: RECORD does not match a leading dot).
REQUEST_COUNTS = '.nginx-requests.json'
LABEL_ESCAPES = {'\\': '\\\\', '"': '\\"', '\n': '\\n'}


def read_records(state_dir):
    """[(backend, set, record)] for every set the engine has applied, sorted."""
    found = []
    if not os.path.isdir(state_dir):
        return found
    for filename in sorted(os.listdir(state_dir)):
        match = RECORD.match(filename)
        if not match:
            continue
        backend = backend_of_record(match.group(1))
        # A set's record counts with its entries file only (a removal unlinks both); a web tier has no such file.
        if BACKENDS[backend].kind != 'web' and not os.path.exists(os.path.join(state_dir, filename[:-5] + '.entries')):
            continue
        try:
            with open(os.path.join(state_dir, filename)) as handle:
                record = json.load(handle)
        except (IOError, OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get('count'), int):
            found.append((backend, match.group(2), record))
    return found


def iptables_drops(save_output, set_names):
    """{set: (packets, bytes)} summed over the rules tagged for each set, from ``iptables-save -c``."""
    tags = dict((tag_for(name), name) for name in set_names)
    drops = {}
    for line in save_output.splitlines():
        match = _SAVE_RULE.match(line.strip())
        if not match:
            continue
        comment = _COMMENT.search(match.group(3))
        if not comment or comment.group(1) not in tags:
            continue
        name = tags[comment.group(1)]
        packets, octets = drops.get(name, (0, 0))
        drops[name] = (packets + int(match.group(1)), octets + int(match.group(2)))
    return drops


def nft_drops(json_output, set_names):
    """{set: (packets, bytes)} from ``nft -t -j list ruleset inet``, the counters of the table inet fleetwall."""
    wanted = dict((counter_name(name), name) for name in set_names)
    drops = {}
    try:
        document = json.loads(json_output or '{}')
    except ValueError:
        return drops
    for item in document.get('nftables', []):
        counter = item.get('counter') if isinstance(item, dict) else None
        if counter and counter.get('table') in (None, NFT_TABLE) and counter.get('name') in wanted:
            drops[wanted[counter['name']]] = (int(counter.get('packets', 0)), int(counter.get('bytes', 0)))
    return drops


def _labels(**labels):
    return ','.join('%s="%s"' % (key, ''.join(LABEL_ESCAPES.get(c, c) for c in str(value)))
                    for key, value in sorted(labels.items()))


def render(records, drops, generation=None, now=None, requests=None):
    """The textfile: HELP and TYPE once per metric, then one sample per set."""
    out = []

    def metric(name, kind, text, samples):
        if not samples:
            return
        out.append('# HELP %s %s' % (name, text))
        out.append('# TYPE %s %s' % (name, kind))
        for labels, value in samples:
            out.append('%s{%s} %s' % (name, labels, value) if labels else '%s %s' % (name, value))

    metric('fleetwall_entries', 'gauge', 'Entries the last successful sync put in the set.',
           [(_labels(backend=b, set=s, tier='web' if b == 'nginx' else 'block'), r['count']) for b, s, r in records])
    metric('fleetwall_last_change_timestamp_seconds', 'gauge', 'When a sync last changed the set.',
           [(_labels(backend=b, set=s), r.get('applied_at', 0)) for b, s, r in records if r.get('applied_at')])
    metric('fleetwall_dropped_packets_total', 'counter', 'Packets dropped or rejected by the rules enforcing the set.',
           [(_labels(backend=b, set=s), drops[(b, s)][0]) for b, s, _r in records if (b, s) in drops])
    metric('fleetwall_dropped_bytes_total', 'counter', 'Bytes dropped or rejected by the rules enforcing the set.',
           [(_labels(backend=b, set=s), drops[(b, s)][1]) for b, s, _r in records if (b, s) in drops])
    metric('fleetwall_web_requests_total', 'counter',
           'Requests the web tier answered from the set (refused for its block tier, challenged for its challenge tier).',
           [(_labels(backend=b, set=s), (requests or {})[(b, s)]) for b, s, _r in records if (b, s) in (requests or {})])
    if generation is not None:
        metric('fleetwall_generation', 'gauge', 'The shadow copy generation of the last run.', [('', int(generation))])
    if now is not None:
        # Written only after every sync of the run succeeded: alert when it grows old.
        metric('fleetwall_last_sync_timestamp_seconds', 'gauge', 'When a run last synced every set successfully.',
               [('', int(now))])
    return '\n'.join(out) + '\n'


def collect(run, get_bin_path, state_dir):
    """(records, drops) of the host: the engine's records and the enforcing rules' counters."""
    records = read_records(state_dir)
    drops = {}
    # Each set by where its drops are counted (the backends' table), with the backend that owns it.
    owners = {'iptables': {}, 'nft': {}, 'xdp': {}}
    for backend, name, _record in records:
        owners.get(BACKENDS[backend].drop_counters, {})[name] = backend
    for tool in ('iptables-save', 'ip6tables-save'):
        binary = get_bin_path(tool)
        if owners['iptables'] and binary:
            rc, out, _err = run([binary, '-c'])
            if rc == 0:
                for name, (packets, octets) in iptables_drops(out, list(owners['iptables'])).items():
                    key = (owners['iptables'][name], name)
                    before = drops.get(key, (0, 0))
                    drops[key] = (before[0] + packets, before[1] + octets)
    nft = get_bin_path('nft')
    if owners['nft'] and nft:
        # Terse: without it nft fetches every element of every set first
        # (half a second of CPU per host with 100k entries); the counters
        # come with the ruleset all the same.
        rc, out, _err = run([nft, '-t', '-j', 'list', 'ruleset', 'inet'])
        if rc == 0:
            for name, counts in nft_drops(out, list(owners['nft'])).items():
                drops[(owners['nft'][name], name)] = counts
    if owners['xdp']:
        drops.update(xdp_drops([(name, record) for backend, name, record in records if name in owners['xdp']
                                and backend == owners['xdp'][name]]))
    return records, drops


def xdp_drops(sets):
    """{('xdp', set): (packets, bytes)}: each family's counter of the program pinned where the set's record says."""
    from . import xdp     # ctypes and the bpf() syscall: loaded only on a host with XDP sets
    drops, counted = {}, {}
    for name, record in sets:
        fingerprint = record.get('fingerprint') or {}
        pin_dir, version = fingerprint.get('pin_dir'), int(str(fingerprint.get('family', 'ipv4'))[3:] or 4)
        if pin_dir not in counted:
            maps = xdp.XdpMaps(pin_dir)
            try:
                counted[pin_dir] = maps.drops() if maps.open() else {}
            except Exception:  # pylint: disable=broad-exception-caught  # metrics never fail the sync before them
                counted[pin_dir] = {}
            finally:
                maps.close(maps.fds.values())
        if version in counted[pin_dir]:
            drops[('xdp', name)] = counted[pin_dir][version]
    return drops


def web_requests(records, state_dir, check_mode=False):
    """({(backend, set): requests answered}, problems) for the web tiers whose record names a request log."""
    logs = dict((name, record['request_log']) for backend, name, record in records
                if BACKENDS[backend].kind == 'web' and isinstance(record.get('request_log'), str))
    if not logs:
        return {}, []
    totals, problems = count_requests(logs, os.path.join(state_dir, REQUEST_COUNTS), check_mode=check_mode)
    owner = dict((name, backend) for backend, name, _record in records)
    return dict(((owner[name], name), total) for name, total in totals.items()), problems


def set_summaries(records, drops, requests=None):
    """Per set: backend, set, entries, last_change and, where counters exist, the drops or the requests answered."""
    sets = []
    for backend, name, record in records:
        item = {'backend': backend, 'set': name, 'entries': record['count'], 'last_change': record.get('applied_at')}
        if (backend, name) in drops:
            item.update(dropped_packets=drops[(backend, name)][0], dropped_bytes=drops[(backend, name)][1])
        if (backend, name) in (requests or {}):
            item['requests'] = requests[(backend, name)]
        sets.append(item)
    return sets


def write_textfile(run, get_bin_path, path, state_dir, generation=None, create_dir=False, check_mode=False):
    """Collect and write the textfile; {'written': bool, 'sets': set_summaries, and 'warnings' when a request log
    could not be counted}.

    Nothing is written when the directory is missing (no node_exporter) unless ``create_dir``; the
    result then says so (``skipped``), so that the run can tell the operator rather than stay silent.
    """
    records, drops = collect(run, get_bin_path, state_dir)
    requests, problems = web_requests(records, state_dir, check_mode)
    text = render(records, drops, generation, int(time.time()), requests)
    directory = os.path.dirname(path)
    result = {'written': False, 'path': path, 'sets': set_summaries(records, drops, requests)}
    if problems:
        result['warnings'] = ['web tier request counts: %s' % problem for problem in problems]
    if check_mode:
        return result
    if not os.path.isdir(directory) and not create_dir:
        result['skipped'] = 'its directory %s does not exist' % directory
        return result
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    write_atomic(path, text.encode(), 0o644)
    result['written'] = True
    return result
