"""Writes the provider fixtures in this directory, in each publisher's documented format.

The addresses are not invented: they come from the real third-party files in
../ (ipsum, Spamhaus DROP), so a fixture says what a provider could plausibly
say.  Scores, countries and protocols are assigned deterministically (seeded),
because the publishers' real values are not public test data.  Run it again
only to change the fixtures; the tests read the committed files.
"""
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
FEEDS = os.path.dirname(HERE)


def read_lines(*parts):
    with open(os.path.join(FEEDS, *parts)) as handle:
        return [line.split()[0] for line in handle if line.strip() and line[0] not in '#;']


def main():
    rng = random.Random(20261123)
    ipsum = read_lines('ipsum', 'ipsum.txt')          # sorted by count, highest first
    drop_v4 = read_lines('spamhaus', 'drop.txt')
    drop_v6 = read_lines('spamhaus', 'drop_ipv6.txt')

    # AbuseIPDB v2 blacklist (JSON): {"meta": {"generatedAt"}, "data": [{ipAddress, countryCode,
    # abuseConfidenceScore, lastReportedAt}]}, sorted by score then last report.  2,000 IPv4: 1,000
    # of ipsum's busiest addresses (so they overlap ipsum level 3) and 1,000 of its quietest (seen
    # on one list only, so below level 3), and a few IPv6 hosts of
    # Spamhaus DROPv6 networks.  Scores 25..100: above 90 (block), 50..89 (challenge), below.
    records = []
    for address in ipsum[:1000] + ipsum[-1000:]:
        records.append({'ipAddress': address, 'countryCode': rng.choice(['CN', 'RU', 'US', 'BR', 'IN', 'VN']),
                        'abuseConfidenceScore': rng.choice([100, 100, 100, 97, 90, 85, 75, 60, 50, 40, 25]),
                        'lastReportedAt': '2026-11-22T%02d:%02d:00+00:00' % (rng.randrange(24), rng.randrange(60))})
    for network in drop_v6[:5]:
        records.append({'ipAddress': network.split('/')[0].rstrip(':') + '::1' if network.split('/')[0].endswith('::')
                        else network.split('/')[0], 'countryCode': 'ZZ', 'abuseConfidenceScore': 100,
                        'lastReportedAt': '2026-11-22T12:00:00+00:00'})
    records.sort(key=lambda r: (-r['abuseConfidenceScore'], r['lastReportedAt']))
    with open(os.path.join(HERE, 'abuseipdb_blacklist.json'), 'w') as handle:
        json.dump({'meta': {'generatedAt': '2026-11-23T00:00:00+00:00'}, 'data': records}, handle)

    # Spamhaus DROP as JSON lines (drop_v4.json / drop_v6.json), the networks of the mirror's
    # drop.txt; sblid and rir are placeholders.  The last line is the metadata record.
    for filename, networks in (('drop_v4.json', drop_v4), ('drop_v6.json', drop_v6)):
        with open(os.path.join(HERE, filename), 'w') as handle:
            for index, network in enumerate(networks):
                handle.write(json.dumps({'cidr': network, 'sblid': 'SBL%06d' % (600000 + index),
                                         'rir': rng.choice(['apnic', 'arin', 'ripencc', 'lacnic', 'afrinic'])},
                                        separators=(',', ':')) + '\n')
            handle.write(json.dumps({'type': 'metadata', 'timestamp': 1795392000, 'size': 0,
                                     'records': len(networks),
                                     'copyright': '(c) 2026 The Spamhaus Project SLU',
                                     'terms': 'https://www.spamhaus.org/drop/terms/'},
                                    separators=(',', ':')) + '\n')

    # Tor exit-addresses: ExitNode / Published / LastStatus / ExitAddress blocks.
    with open(os.path.join(HERE, 'exit-addresses'), 'w') as handle:
        for index, address in enumerate(ipsum[3000:3040]):
            handle.write('ExitNode %040X\nPublished 2026-11-22 %02d:00:00\nLastStatus 2026-11-22 23:00:00\n'
                         'ExitAddress %s 2026-11-22 23:%02d:00\n' % (rng.getrandbits(160), index % 24, address, index))

    # WAYSCloud-style live threats: {"threats": [{"ip_address", "threat_score", ...}], "count"}.
    threats = [{'ip_address': address, 'threat_score': rng.choice([95, 80, 65, 55, 30]),
                'threat_level': 'high', 'categories': ['ssh_bruteforce']} for address in ipsum[4000:4300]]
    with open(os.path.join(HERE, 'wayscloud_threats.json'), 'w') as handle:
        json.dump({'threats': threats, 'count': len(threats)}, handle)

    # SikkerAPI-style records the emulator filters by scoreMinimum, protocols and countries.
    rows = [{'ip': address, 'score': rng.randrange(30, 101), 'country': rng.choice(['CN', 'RU', 'US', 'NL']),
             'protocols': rng.sample(['ssh', 'http', 'smtp', 'mysql'], 2)} for address in ipsum[5000:5500]]
    with open(os.path.join(HERE, 'sikkerapi_records.json'), 'w') as handle:
        json.dump(rows, handle)

    # A bearer-token plain list (list id "lab"), one address per line.
    with open(os.path.join(HERE, 'bearer_lab.txt'), 'w') as handle:
        handle.write(''.join(address + '\n' for address in ipsum[6000:6400]))

    # CSV with a header, as many vendors export.
    with open(os.path.join(HERE, 'threats.csv'), 'w') as handle:
        handle.write('# exported 2026-11-22\nfirst_seen,ip,score,country\n')
        for address in ipsum[7000:7200]:
            handle.write('2026-11-2%d,%s,%d,%s\n' % (rng.randrange(10), address, rng.randrange(40, 101),
                                                     rng.choice(['CN', 'RU'])))


if __name__ == '__main__':
    main()
