# Shared test setup: make the working tree importable as
# ansible_collections.fleetwall.blocklist (scripts/setup.sh makes the link).
import os
import subprocess
import sys
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, '.collections')
if not os.path.isdir(os.path.join(COLLECTIONS, 'ansible_collections', 'fleetwall', 'blocklist')):
    raise RuntimeError('run scripts/setup.sh first: %s is missing the collection link' % COLLECTIONS)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
sys.path.insert(0, os.path.join(ROOT, 'lab'))

FEEDS = os.path.join(ROOT, 'tests', 'data', 'feeds')


def provider_oracle(block_score=90, challenge_score=50, extra_block=()):
    """What the abuseipdb + spamhaus_drop (v4, v6) + ipsum level 3 presets must publish, computed
    independently with netaddr from the fixture files: (abuseipdb records, block IPSet, challenge IPSet)."""
    import json
    import netaddr
    with open(os.path.join(FEEDS, 'providers', 'abuseipdb_blacklist.json')) as handle:
        records = json.load(handle)['data']
    block = netaddr.IPSet(r['ipAddress'] for r in records if r['abuseConfidenceScore'] >= block_score)
    block.update(netaddr.IPSet(extra_block))
    challenge = netaddr.IPSet(r['ipAddress'] for r in records
                              if challenge_score <= r['abuseConfidenceScore'] < block_score)
    for filename in ('drop.txt', 'drop_ipv6.txt'):
        with open(os.path.join(FEEDS, 'spamhaus', filename)) as handle:
            block.update(netaddr.IPSet(line.split()[0] for line in handle if line.strip()))
    with open(os.path.join(FEEDS, 'ipsum', 'levels_3.txt')) as handle:
        block.update(netaddr.IPSet(handle.read().split()))
    return records, block, challenge - block


@pytest.fixture
def netns():
    """A private network namespace for the backend tests: real kernel state, nothing shared with the host."""
    if os.geteuid() != 0:
        pytest.skip('needs root for a network namespace')
    name = 'fwtest-' + uuid.uuid4().hex[:8]
    subprocess.run(['ip', 'netns', 'add', name], check=True)

    def run(args, data=None, check_rc=False):
        proc = subprocess.run(['ip', 'netns', 'exec', name] + list(args), input=data,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
        return proc.returncode, proc.stdout, proc.stderr
    run.ns = name
    yield run
    subprocess.run(['ip', 'netns', 'del', name])
