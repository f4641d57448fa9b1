from ansible_collections.fleetwall.blocklist.plugins.filter.held_summary import held_summary


def test_the_hosts_that_hold_it_protect_it_or_could_not_answer_are_named():
    hostvars = {
        'h1': {'held': {'held': [{'backend': 'nftables', 'set': 'fleetwall_v4_nets', 'entries': ['203.0.113.0/24'],
                                  'applied_at': 1790000000}], 'protected': []}},
        'h2': {'held': {'held': [], 'protected': ['203.0.113.7 (SSH client)']}},
        'h3': {'held': {'failed': True, 'msg': 'unreachable'}},
        'h4': {'held': {'held': [], 'protected': []}},
    }
    assert held_summary(hostvars, ['h1', 'h2', 'h3', 'h4'], 'held') == [
        'held in force on 1 of 4 hosts: h1',
        'h1: nftables set fleetwall_v4_nets holds 203.0.113.0/24 (applied 2026-09-21 14:13:20 UTC)',
        'h2: lockout protection keeps it reachable: 203.0.113.7 (SSH client)',
        'no answer from h3',
    ]
