"""Writes the address-plan fixtures in this directory, in the publishers' documented formats.

* ``delegated-fixture-extended``: the RIR statistics exchange format, extended variant, as the NRO's
  "RIR Statistics Exchange Format" describes it: a version line
  ``version|registry|serial|records|startdate|enddate|UTCoffset``, one ``registry|*|type|*|count|summary`` line per
  type, then ``registry|cc|type|start|value|date|status|opaque-id[|extensions]`` rows.  IPv4 rows give a first
  address and a count of addresses, which need not be a power of two (many legacy and ERX transfers are not);
  IPv6 rows a first address and a prefix length; ``asn`` rows a first AS and a count.  ``available`` and
  ``reserved`` rows have no country (or ``ZZ``) and no date.
* ``ip2asn-fixture.tsv``: iptoasn.com's table, ``range_start<TAB>range_end<TAB>AS_number<TAB>country_code<TAB>
  AS_description``, ranges in address order, IPv4 then IPv6, ``0<TAB>None<TAB>Not routed`` for unrouted space.
  Its ASNs include the first ones of the real Spamhaus ASN-DROP file (spamhaus/asn_drop.json, with their
  ``cc`` and ``asname``), so that an asns_from join has something to find; the real ip2asn extract
  (ip2asn/ip2asn-v4.tsv) has none of them.

Everything is seeded: running it again writes the same bytes.  The tests read the committed files.
"""
import ipaddress
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))

COUNTRIES = ['ZA', 'KE', 'NG', 'EG', 'MA', 'CN', 'DE', 'BR']
# Counts of addresses: powers of two, and the sums of two or three of them that real files carry.
COUNTS = [256, 512, 768, 1024, 1280, 1536, 2048, 2560, 3072, 5120, 6144, 10240, 12288, 40960, 98304]
V6_PREFIXES = [29, 32, 32, 36, 40, 44, 48]


def delegated():
    rng = random.Random(20261206)
    rows = {'asn': [], 'ipv4': [], 'ipv6': []}
    asn = 36000
    for index in range(40):
        count = rng.choice([1, 1, 1, 2, 4])
        rows['asn'].append('fixture|%s|asn|%d|%d|2015%02d%02d|allocated|F%05d'
                           % (rng.choice(COUNTRIES), asn, count, rng.randrange(1, 13), rng.randrange(1, 29), index))
        asn += count
    address = int(ipaddress.IPv4Address('41.64.0.0'))
    for index in range(120):
        count = rng.choice(COUNTS)
        status = rng.choice(['allocated'] * 6 + ['assigned'] * 3 + ['available', 'reserved'])
        if status in ('available', 'reserved'):
            cc, date = rng.choice(['', 'ZZ']), ''
        else:
            cc = rng.choice(COUNTRIES)
            date = '20%02d%02d%02d' % (rng.randrange(5, 26), rng.randrange(1, 13), rng.randrange(1, 29))
        line = 'fixture|%s|ipv4|%s|%d|%s|%s|F%05d' % (
            cc, ipaddress.IPv4Address(address), count, date, status, 1000 + index)
        if index % 17 == 0:
            line += '|e-stats'           # an extension field, which the format allows after the opaque id
        rows['ipv4'].append(line)
        address += count + rng.choice([0, 0, 256, 1024])
    address = int(ipaddress.IPv6Address('2c0f:f000::'))
    for index in range(30):
        prefix = rng.choice(V6_PREFIXES)
        size = 1 << (128 - prefix)
        address = (address + size - 1) // size * size      # aligned to its prefix length
        status = rng.choice(['allocated'] * 4 + ['assigned', 'reserved', 'available'])
        cc = rng.choice(COUNTRIES) if status in ('allocated', 'assigned') else ''
        date = '20190101' if cc else ''
        rows['ipv6'].append('fixture|%s|ipv6|%s|%d|%s|%s|F%05d' % (cc, ipaddress.IPv6Address(address), prefix, date,
                                                                   status, 2000 + index))
        address += size
    records = sum(len(found) for found in rows.values())
    lines = ['# A fixture in the RIR statistics exchange format (extended); see make_geo_fixtures.py.',
             '2.3|fixture|20261206|%d|19830101|20261205|+0000' % records]
    lines += ['fixture|*|%s|*|%d|summary' % (kind, len(rows[kind])) for kind in ('asn', 'ipv4', 'ipv6')]
    for kind in ('asn', 'ipv4', 'ipv6'):
        lines += rows[kind]
    return '\n'.join(lines) + '\n'


def asn_drop_records():
    with open(os.path.join(HERE, 'spamhaus', 'asn_drop.json')) as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    return [record for record in records if record.get('type') != 'metadata']


def ip2asn():
    rng = random.Random(20261207)
    dropped = asn_drop_records()[:8]
    others = [(13335, 'US', 'CLOUDFLARENET - Cloudflare, Inc.'), (15169, 'US', 'GOOGLE - Google LLC'),
              (3320, 'DE', 'DTAG Internet service provider operations'), (4134, 'CN', 'CHINANET-BACKBONE'),
              (37100, 'ZA', 'SEACOM-AS')]
    holders = [(record['asn'], record['cc'], record['asname']) for record in dropped] + others
    lines = []
    address = int(ipaddress.IPv4Address('45.8.0.0'))
    for index in range(90):
        if index % 9 == 4:
            holder = (0, 'None', 'Not routed')
        else:
            holder = holders[rng.randrange(len(holders))]
        # Ranges as BGP announces them, and some that are not one CIDR (adjacent announcements of one AS merged).
        length = rng.choice([256, 512, 1024, 768, 1280, 4096, 3584, 256 * 13])
        lines.append('%s\t%s\t%d\t%s\t%s' % (ipaddress.IPv4Address(address), ipaddress.IPv4Address(address + length - 1),
                                             holder[0], holder[1], holder[2]))
        address += length
    address = int(ipaddress.IPv6Address('2a0e:8f00::'))
    for index in range(24):
        holder = (0, 'None', 'Not routed') if index % 8 == 3 else holders[rng.randrange(len(holders))]
        prefix = rng.choice([32, 36, 40, 44, 48])
        size = 1 << (128 - prefix)
        address = (address + size - 1) // size * size
        count = rng.choice([1, 1, 3])          # three adjacent /N: a range that is two CIDRs
        lines.append('%s\t%s\t%d\t%s\t%s' % (ipaddress.IPv6Address(address),
                                             ipaddress.IPv6Address(address + count * size - 1),
                                             holder[0], holder[1], holder[2]))
        address += count * size
    return '\n'.join(lines) + '\n'


def main():
    for name, text in (('delegated-fixture-extended', delegated()), ('ip2asn-fixture.tsv', ip2asn())):
        with open(os.path.join(HERE, name), 'w') as handle:
            handle.write(text)


if __name__ == '__main__':
    main()
