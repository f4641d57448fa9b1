"""Paths and oracles the tests share, importable under plain pytest and under ansible-test units
as ansible_collections.fleetwall.blocklist.tests.helpers (tests/conftest.py sets up the path)."""
import collections
import os

# This file is imported as COLLECTIONS/ansible_collections/fleetwall/blocklist/tests/helpers.py, whether
# the tree is reached through scripts/setup.sh's link or is ansible-test's copy. ROOT is the real
# directory: Ansible finds nothing when started from inside the link.
COLLECTIONS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))))
ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
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


# What the fault, property and lockout tests did, for the summary at the end of the run (tests/conftest.py):
# 'faults injected: <kind>', 'bad inputs tried: <where>', 'lockout checks', 'lockouts', 'protection checks',
# 'lost protection'. Plain pytest only: under xdist (ansible-test units) each worker counts for itself.
TALLY = collections.Counter()


def tally(what, count=1):
    TALLY[what] += count
