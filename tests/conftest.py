# Shared test setup: make the working tree importable as
# ansible_collections.fleetwall.blocklist (scripts/setup.sh makes the link).
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, '.collections')
if not os.path.isdir(os.path.join(COLLECTIONS, 'ansible_collections', 'fleetwall', 'blocklist')):
    raise RuntimeError('run scripts/setup.sh first: %s is missing the collection link' % COLLECTIONS)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
sys.path.insert(0, os.path.join(ROOT, 'lab'))

FEEDS = os.path.join(ROOT, 'tests', 'data', 'feeds')
