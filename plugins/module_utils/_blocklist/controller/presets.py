# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Named provider presets: a feed picks one by name and supplies only its key.

A preset is data, not a code path.  Keys of a preset:

``url``
    May hold ``{placeholders}``, filled from the feed's ``params`` (those
    params are then not sent as query parameters).
``params``
    Default query parameters; the feed's ``params`` override them, and a
    value of null drops one.  ``{api_key}`` in a value is the feed's key.
``headers``
    Request headers; ``{api_key}`` is replaced by the feed's key.
``requires``
    Feed settings that must be given (``api_key``, ``url``, ``params.list_id``).
``aliases``
    Friendlier names for feed settings, e.g. ``level`` for ipsum's ``min_count``.
``filters``
    Params that filter the records of a ``json`` document instead of going
    into the URL: a param name and the record's field it matches, e.g.
    ``{services: service, regions: region}`` for AWS.  The query's
    ``{filter}`` becomes ``?contains(`["CLOUDFRONT"]`, "service") && ...``
    for each one given (a name or a list of names), or ``*`` when none is.
``selects``
    Params that pick the top-level arrays of a ``json`` document instead of
    going into the URL: a param name and its default list, e.g. ``{keys:
    [hooks]}`` for GitHub's meta.  The query's ``{keys}`` becomes the
    JMESPath list ``["hooks", "actions"]`` of the names given.
    Names and values of both are letters, digits, ``_``, ``-`` and ``.``
    only, so a param can never change the query beyond them.
``modes``
    Named overlays of the keys above, picked with the feed's ``mode``.
``quota``
    Human advice, shown in the docs.
anything else
    A default for the feed setting of that name (``format``, ``query``,
    ``min_interval``, ``tier``, ...).

Operators add their own with the role's ``shadow_copy_presets`` (the same
shape); theirs win over these.

Secrets (what ``resolve_feed`` returns beside the feed, for ``fetch.redact``):
the API key; every header value the operator wrote, in a feed or in a preset
of theirs, and every preset header that carries the key, with the
credentials after its scheme (``Bearer t`` gives ``t``; ``Basic`` ones are
decoded too); the user and password of the URL; every query value that is
not a plain number or boolean.  A built-in preset's constant header
(``Accept: application/json``) and values that fill the URL's path
(``list_id``) are settings, not secrets.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import string
from urllib.parse import unquote, unquote_plus, urlencode, urlsplit, urlunsplit

HOUR = 3600
RIR_QUOTA = ('No key, no stated quota. The registry rewrites its delegation file once a day, so min_interval is '
             '24 h. A feed of it needs countries (ISO codes): the file lists every network the registry handed out.')

PRESETS = {
    'abuseipdb': {
        'url': 'https://api.abuseipdb.com/api/v2/blacklist',
        'params': {'confidenceMinimum': 90, 'limit': 10000},
        'headers': {'Key': '{api_key}', 'Accept': 'application/json'},
        'format': 'json',
        'query': 'data[].[ipAddress, abuseConfidenceScore]',
        'min_interval': 6 * HOUR,
        'requires': ['api_key'],
        'modes': {
            'plaintext': {
                'params': {'plaintext': 'true'},
                'headers': {'Accept': 'text/plain'},
                'format': 'plain',
                'query': None,
            },
        },
        'quota': ('Free tier: 5 blacklist downloads a day, 10,000 entries each. min_interval 6 h '
                  '(4 a day) leaves one for a manual run. Paid tiers raise limit, not the spirit: '
                  'the list changes slowly, hourly is plenty.'),
    },
    'spamhaus_drop': {
        'url': 'https://www.spamhaus.org/drop/drop_v4.json',
        'format': 'jsonl',
        'field': 'cidr',
        # The last line says how many records came: a body without it was cut short.
        'require_metadata': True,
        'min_interval': HOUR,
        'modes': {
            'v6': {'url': 'https://www.spamhaus.org/drop/drop_v6.json'},
            'text': {'url': 'https://www.spamhaus.org/drop/drop.txt', 'format': 'spamhaus_drop', 'field': None,
                     'require_metadata': None},
        },
        'quota': ('Spamhaus asks for at most one download an hour; the lists change a few times a day. '
                  'DROP and EDROP were merged in 2024; use mode v6 for drop_v6.json.'),
    },
    'firehol_level1': {
        'url': 'https://iplists.firehol.org/files/firehol_level1.netset',
        'format': 'netset',
        'min_interval': HOUR,
        'quota': ('No key, no stated quota; FireHOL rebuilds level1 about hourly. It lists private and '
                  'reserved ranges by design: they are refused and counted, never blocked.'),
    },
    'ipsum': {
        'url': 'https://raw.githubusercontent.com/stamparm/ipsum/master/ipsum.txt',
        'format': 'ipsum',
        'min_count': 3,
        'aliases': {'level': 'min_count'},
        'min_interval': 6 * HOUR,
        'quota': ('No key; the file is regenerated once a day, so fetching more than every few hours '
                  'gains nothing. level N keeps addresses seen on at least N lists (3 is the usual choice).'),
    },
    'bearer_list': {
        'headers': {'Authorization': 'Bearer {api_key}'},
        'format': 'plain',
        'min_interval': 300,
        'max_wait': 60,
        'requires': ['api_key', 'url'],
        'quota': ('Typical plans allow 60 requests an hour and answer 429 with X-RateLimit-Reset. '
                  'One shadow copy build every 5 minutes at most stays far below that; a 429 is waited '
                  'out only when the reset is within max_wait, otherwise the last good copy is used.'),
    },
    'sikkerapi': {
        'url': 'https://api.sikkerapi.com/v1/key/blacklist',
        'params': {'plaintext': 'true', 'scoreMinimum': 75, 'limit': 5000},
        'headers': {'Authorization': 'Bearer {api_key}'},
        'format': 'plain',
        'min_interval': 24 * HOUR,
        # Fetched once a day: two missed days before the run fails for it.
        'max_age': 72 * HOUR,
        'requires': ['api_key'],
        'quota': ('The blacklist quota is counted in addresses per day (5,000 on the free tier) and resets '
                  'at midnight UTC. limit x downloads a day must stay within it: the defaults, limit 5000 '
                  'once a day, fit the free tier. Filters pass through params: scoreMinimum, protocols, '
                  'onlyCountries, exceptCountries, onlyAsn, exceptAsn, ipVersion, minSeverity.'),
    },
    'wayscloud': {
        'url': 'https://api.wayscloud.services/v1/ip/threats/live',
        'headers': {'X-API-Key': '{api_key}', 'Accept': 'application/json'},
        'format': 'json',
        'query': 'threats[].[ip_address, threat_score]',
        'min_interval': 900,
        'requires': ['api_key'],
        'quota': ('Free tier: 1,000 requests a day and 20 a minute. Every 15 minutes is 96 a day.'),
    },
    'tor_exits': {
        'url': 'https://check.torproject.org/exit-addresses',
        'format': 'tor_exits',
        'min_interval': HOUR,
        'quota': ('No key. The list is rebuilt about hourly. Tor exits relay traffic for many users: '
                  'consider tier challenge instead of block.'),
    },
    # Address plans: which country (the RIRs' delegation files) or AS (iptoasn.com) holds which networks. A feed of
    # one needs countries or asns (or asns_from); geography blocks hurt, see docs/feeds.md, Countries and ASNs.
    'rir_afrinic': {
        'url': 'https://ftp.afrinic.net/pub/stats/afrinic/delegated-afrinic-extended-latest',
        'format': 'rir_delegated',
        'min_interval': 24 * HOUR,
        'max_age': 72 * HOUR,
        'quota': RIR_QUOTA,
    },
    'rir_apnic': {
        'url': 'https://ftp.apnic.net/stats/apnic/delegated-apnic-extended-latest',
        'format': 'rir_delegated',
        'min_interval': 24 * HOUR,
        'max_age': 72 * HOUR,
        'quota': RIR_QUOTA,
    },
    'rir_arin': {
        'url': 'https://ftp.arin.net/pub/stats/arin/delegated-arin-extended-latest',
        'format': 'rir_delegated',
        'min_interval': 24 * HOUR,
        'max_age': 72 * HOUR,
        'quota': RIR_QUOTA,
    },
    'rir_lacnic': {
        'url': 'https://ftp.lacnic.net/pub/stats/lacnic/delegated-lacnic-extended-latest',
        'format': 'rir_delegated',
        'min_interval': 24 * HOUR,
        'max_age': 72 * HOUR,
        'quota': RIR_QUOTA,
    },
    'rir_ripencc': {
        'url': 'https://ftp.ripe.net/pub/stats/ripencc/delegated-ripencc-extended-latest',
        'format': 'rir_delegated',
        'min_interval': 24 * HOUR,
        'max_age': 72 * HOUR,
        'quota': RIR_QUOTA,
    },
    'ip2asn': {
        'url': 'https://iptoasn.com/data/ip2asn-combined.tsv.gz',
        'format': 'ip2asn',
        'min_interval': 24 * HOUR,
        'max_age': 72 * HOUR,
        'quota': ('No key, no stated quota. iptoasn.com rebuilds the table from BGP data about hourly; it is a '
                  'download of a few MB gzipped (about 500,000 rows, IPv4 and IPv6), so once a day is plenty, and '
                  'a conditional request makes an unchanged one a 304. The body is gunzipped as it arrives, never '
                  'past max_bytes. Select rows with asns, asns_from (e.g. spamhaus_asn_drop) or countries.'),
    },
    'spamhaus_asn_drop': {
        'url': 'https://www.spamhaus.org/drop/asndrop.json',
        'format': 'jsonl',
        'field': 'asn',
        'require_metadata': True,
        'min_interval': HOUR,
        'quota': ('An ASN list, for an ip2asn feed\'s asns_from (it lists AS numbers, not networks). Spamhaus asks '
                  'for at most one download an hour; the list changes a few times a day.'),
    },
    # The address ranges clouds and CDNs publish: allow sources (shadow_copy_allow_feeds), kept reachable.
    'cloudflare': {
        'url': 'https://www.cloudflare.com/ips-v4',
        'format': 'plain',
        'min_interval': 24 * HOUR,
        'max_age': 72 * HOUR,
        'modes': {
            'v6': {'url': 'https://www.cloudflare.com/ips-v6'},
        },
        'quota': ('No key, no stated quota; Cloudflare changes these lists rarely, so once a day is plenty. '
                  'Each family is its own URL (mode v6 for ips-v6); the files end without a newline. '
                  'From some addresses, or fetched too often, www.cloudflare.com answers with its '
                  '"Just a moment..." HTML challenge page instead of the list: an HTML answer is a failed '
                  'fetch, and the last good copy is kept.'),
    },
    'aws': {
        'url': 'https://ip-ranges.amazonaws.com/ip-ranges.json',
        'format': 'json',
        'query': '[prefixes[{filter}].ip_prefix, ipv6_prefixes[{filter}].ipv6_prefix][]',
        'filters': {'services': 'service', 'regions': 'region'},
        'min_interval': 6 * HOUR,
        'quota': ('No key, no stated quota. AWS changes ip-ranges.json a few times a week (about 2.6 MB; '
                  'conditional requests make an unchanged one a 304). params services and regions filter the '
                  'records (e.g. services [CLOUDFRONT, ROUTE53_HEALTHCHECKS]); they are not sent. A prefix is '
                  'listed once per service (AMAZON and EC2, say): the build merges the duplicates.'),
    },
    'google': {
        'url': 'https://www.gstatic.com/ipranges/goog.json',
        'format': 'json',
        'query': '[prefixes[*].ipv4Prefix, prefixes[*].ipv6Prefix][]',
        'min_interval': 24 * HOUR,
        'max_age': 72 * HOUR,
        'quota': ('No key, no stated quota; goog.json (every Google address range customers can reach, Google '
                  'Cloud\'s included) changes a few times a month, so once a day is plenty.'),
    },
    'google_cloud': {
        'url': 'https://www.gstatic.com/ipranges/cloud.json',
        'format': 'json',
        'query': '[prefixes[{filter}].ipv4Prefix, prefixes[{filter}].ipv6Prefix][]',
        'filters': {'scopes': 'scope', 'services': 'service'},
        'min_interval': 24 * HOUR,
        'max_age': 72 * HOUR,
        'quota': ('No key, no stated quota; cloud.json changes a few times a month, so once a day is plenty. '
                  'params scopes (regions, e.g. [us-east1, europe-west1]) and services ("Google Cloud") filter '
                  'the records; they are not sent.'),
    },
    'github_meta': {
        'url': 'https://api.github.com/meta',
        'headers': {'Accept': 'application/vnd.github+json'},
        'format': 'json',
        'query': '{keys}[]',
        'selects': {'keys': ['hooks']},
        'min_interval': 6 * HOUR,
        'quota': ('No key needed, but unauthenticated GitHub API calls are limited to 60 requests an hour per '
                  'IP address, shared with everything else on that address that calls the API; every 6 hours '
                  'is 4 a day. params keys picks the lists kept (hooks, web, api, git, actions, pages, '
                  'importer, dependabot, ...; default [hooks]); it is not sent.'),
    },
}

# Feed settings a preset may default (max_age among them: shadow_copy.DEFAULT_MAX_AGE where none is given);
# everything else in a preset is structure.
STRUCTURE_KEYS = ('url', 'params', 'headers', 'requires', 'aliases', 'filters', 'selects', 'modes', 'quota')

# A query value that is a plain number or boolean (a score, a limit, plaintext=true) is a setting, not a secret:
# masking '90' would mask every 90 in every message. Any other query value may be a key.
PLAIN_SETTING = re.compile(r'(?:[+-]?[0-9]+(?:\.[0-9]+)?|true|false|yes|no|on|off)\Z', re.IGNORECASE)


# A name a filter or a selection puts into the query (service, hooks), and a value a filter matches (CLOUDFRONT,
# us-east-1; Google's cloud.json says "Google Cloud", so single spaces between words too): nothing that can end a
# JSON string, a JMESPath literal or a quoted identifier.
QUERY_NAME = re.compile(r'[A-Za-z0-9_.-]{1,100}')
FILTER_VALUE = re.compile(r'(?=.{1,100}\Z)[A-Za-z0-9_.-]+(?: [A-Za-z0-9_.-]+)*')


class PresetError(ValueError):
    pass


def _fill(template, values, what):
    try:
        return string.Formatter().vformat(str(template), (), values)
    except KeyError as exc:
        raise PresetError('%s needs a value for {%s}' % (what, exc.args[0]))
    except (IndexError, ValueError, AttributeError, TypeError) as exc:
        # AttributeError, TypeError: '{api_key.x}', '{api_key[x]}' look into the value as str.format does.
        raise PresetError('%s is not a valid template: %s' % (what, exc))


def _placeholders(template, what):
    try:
        return {name for _text, name, _spec, _conv in string.Formatter().parse(str(template)) if name}
    except ValueError as exc:
        # A lone '{' or '}' in a URL.
        raise PresetError('%s is not a valid template: %s' % (what, exc))


def header_secrets(value):
    """A header value and what a provider may echo of it: the credentials after its scheme (``Bearer t``
    gives ``t``), and for ``Basic`` the decoded ``user:password``, the user and the password."""
    value = str(value)
    found = [value]
    scheme, _sep, credentials = value.strip().partition(' ')
    credentials = credentials.strip()
    if credentials:
        found.append(credentials)
        if scheme.lower() == 'basic':
            try:
                decoded = base64.b64decode(credentials, validate=True).decode('utf-8')
            except (binascii.Error, ValueError):
                decoded = ''
            if decoded:
                user, _sep, password = decoded.partition(':')
                found.extend([decoded, user, password])
    return found


def url_secrets(url):
    """The user and password of a URL (and their Basic encoding), and its query values that are not plain numbers
    or booleans (a bare ``?token`` too), each as written and decoded. A URL that cannot be parsed is the secret."""
    try:
        parts = urlsplit(str(url))
        username, password = parts.username, parts.password
    except ValueError:
        return [str(url)]
    found = []
    for written in (username, password):
        if written:
            found.extend([written, unquote(written)])
    if username:
        # What urllib sends for them, and a provider may echo: Basic base64('user:password').
        credentials = '%s:%s' % (unquote(username), unquote(password or ''))
        found.append(base64.b64encode(credentials.encode('utf-8')).decode('ascii'))
    for pair in parts.query.split('&'):
        name, sep, written = pair.partition('=')
        if not sep:
            written = name
        for value in (written, unquote_plus(written)):
            if value.strip() and not PLAIN_SETTING.match(value.strip()):
                found.append(value)
    return found


def spec_secrets(spec):
    """The secrets of a feed as the operator wrote it (api_key, header values, the url's userinfo and query
    values), for what is said about a feed that ``resolve_feed`` refused."""
    found = [str(spec['api_key'])] if spec.get('api_key') else []
    for value in (spec.get('headers') or {}).values():
        found.extend(header_secrets(value))
    if spec.get('url'):
        found.extend(url_secrets(spec['url']))
    return [secret for secret in found if secret]


def preset_secrets(presets):
    """The header values written in the operator's presets (and their modes) that need no key, e.g. a literal
    token: secrets whether or not a feed uses that preset. Values with ``{api_key}`` are filled per feed."""
    found = []
    for preset in (presets or {}).values():
        if not isinstance(preset, dict):
            continue
        overlays = [preset] + [mode for mode in (preset.get('modes') or {}).values() if isinstance(mode, dict)]
        for overlay in overlays:
            headers = overlay.get('headers')
            for value in (headers.values() if isinstance(headers, dict) else ()):
                if value is not None and '{' not in str(value):
                    found.extend(header_secrets(value))
    return [secret for secret in found if secret]


def resolve_feed(spec, presets=None):
    """Return a complete feed spec (url with query, headers, format, ...) and the secrets to redact.

    ``spec`` is the operator's feed: ``name``, optionally ``preset``, ``mode``,
    ``api_key``, ``params`` and any feed setting, which wins over the preset.
    """
    spec = dict(spec)
    preset_name = spec.pop('preset', None)
    mode = spec.pop('mode', None)
    api_key = spec.pop('api_key', None)
    user_params = spec.pop('params', None) or {}
    preset = _preset_with_mode(spec.get('name'), preset_name, mode, presets)
    _apply_aliases(spec, preset)
    _check_requirements(spec, preset, preset_name, api_key)

    resolved = {key: value for key, value in preset.items() if key not in STRUCTURE_KEYS and value is not None}
    resolved.update({key: value for key, value in spec.items() if value is not None})
    secrets = [str(api_key)] if api_key else []
    values = {'api_key': api_key or ''}
    params = dict(preset.get('params') or {})
    params.update(user_params)
    if preset.get('filters') or preset.get('selects'):
        # Taken out of params before the URL is built: they shape the query, they are not sent.
        query = _shaped_query(spec.get('name'), preset, params, resolved.get('query'))
        if query is not None:
            resolved['query'] = query
    url = None if spec.get('path') else spec.get('url') or preset.get('url')
    if url:
        resolved['url'] = url = _url_with_params(url, params, values, spec.get('name'))
        secrets.extend(url_secrets(url))
    elif params and not spec.get('path'):
        raise PresetError('feed %s: params need a url' % spec.get('name'))
    # Which header is an auth header cannot be told from its name (X-Custom-Token, X-Tenant-Secret): every value
    # the operator wrote is a secret, in a feed or in a preset of theirs, and so is every one that carries the key.
    # Only a built-in preset's constants (Accept: application/json) are public.
    operator_preset = bool(preset_name) and preset_name in (presets or {})
    resolved['headers'] = _headers(spec, preset, values, operator_preset, secrets)
    if preset_name:
        resolved['preset'] = preset_name
    return resolved, [s for s in secrets if s]


def _preset_with_mode(name, preset_name, mode, presets):
    """A copy of the named preset with its mode's settings over it; {} without a preset."""
    if not preset_name:
        if mode:
            raise PresetError('feed %s: mode needs a preset' % name)
        return {}
    table = dict(PRESETS)
    table.update(presets or {})
    if preset_name not in table:
        raise PresetError('feed %s: unknown preset %r (known: %s)' % (name, preset_name, ', '.join(sorted(table))))
    preset = copy.deepcopy(table[preset_name])
    if not mode:
        return preset
    modes = preset.get('modes') or {}
    if mode not in modes:
        raise PresetError('feed %s: preset %s has no mode %r (modes: %s)'
                          % (name, preset_name, mode, ', '.join(sorted(modes)) or 'none'))
    for key, value in modes[mode].items():
        if isinstance(value, dict) and isinstance(preset.get(key), dict):
            preset[key].update(value)
        else:
            preset[key] = value
    return preset


def _apply_aliases(spec, preset):
    """The preset's names for feed settings (ipsum's level is its min_score) become the settings."""
    for alias, target in (preset.get('aliases') or {}).items():
        if spec.get(alias) is not None:
            spec[target] = spec.pop(alias)
        else:
            spec.pop(alias, None)


def _check_requirements(spec, preset, preset_name, api_key):
    for requirement in preset.get('requires') or ():
        if requirement == 'api_key' and not api_key:
            raise PresetError('feed %s: preset %s needs api_key' % (spec.get('name'), preset_name))
        if requirement == 'url' and not spec.get('url'):
            raise PresetError('feed %s: preset %s needs url (the provider\'s list URL)'
                              % (spec.get('name'), preset_name))


def _query_names(value, what, pattern=QUERY_NAME):
    """A filter's or a selection's value (a name or a list of names) as a list of checked names."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not names:
        raise PresetError('%s must be a name or a non-empty list of names, not %r' % (what, value))
    allowed = 'letters, digits, _ - .' + (' and single spaces between words' if pattern is FILTER_VALUE else '')
    for name in names:
        if not isinstance(name, str) or not pattern.fullmatch(name):
            raise PresetError('%s: %r is not a name (%s only, at most 100)' % (what, name, allowed))
    return list(names)


def _table(preset, key, name):
    table = preset.get(key) or {}
    if not isinstance(table, dict):
        raise PresetError('feed %s: the preset\'s %s must be a mapping of param names' % (name, key))
    return table


def _shaped_query(name, preset, params, query):
    """The query with its ``{filter}`` and ``{<select>}`` filled from ``params``; those params are taken out of it.

    Every name (QUERY_NAME) and value (FILTER_VALUE) that goes into the query is checked, and goes in quoted (values
    in a JSON literal, names as quoted identifiers): a param cannot add to the query or end what quotes it.
    """
    query = query or ''
    conditions = []
    for param, field in _table(preset, 'filters', name).items():
        value = params.pop(param, None)
        if value is None:
            continue
        values = _query_names(value, 'feed %s: params.%s' % (name, param), FILTER_VALUE)
        if not isinstance(field, str):
            raise PresetError('feed %s: the field filters.%s must be one field name, not %r' % (name, param, field))
        field = _query_names(field, 'feed %s: the field filters.%s' % (name, param))[0]
        conditions.append('contains(`%s`, "%s")' % (json.dumps(values, separators=(',', ':')), field))
    if conditions and '{filter}' not in query:
        raise PresetError('feed %s: params %s filter the query, but the query has no {filter}'
                          % (name, ', '.join(sorted(_table(preset, 'filters', name)))))
    query = query.replace('{filter}', '?' + ' && '.join(conditions) if conditions else '*')
    for param, default in _table(preset, 'selects', name).items():
        given = params.pop(param, None)
        placeholder = '{%s}' % param
        if placeholder not in query:
            if given is not None:
                raise PresetError('feed %s: params.%s picks what the query reads, but the query has no %s'
                                  % (name, param, placeholder))
            continue
        names = _query_names(default if given is None else given, 'feed %s: params.%s' % (name, param))
        query = query.replace(placeholder, '[%s]' % ', '.join('"%s"' % n for n in names))
    return query or None


def _url_with_params(url, params, values, name):
    """The URL with its {placeholders} filled from the params and the key, and the other params as its query."""
    used = _placeholders(url, 'feed %s: url' % name)
    fill = {k: v for k, v in params.items() if k in used}
    fill['api_key'] = values['api_key']
    url = _fill(url, fill, 'feed %s: url' % name)
    query = [(k, _fill(v, values, 'feed %s: param %s' % (name, k)))
             for k, v in params.items() if k not in used and v is not None]
    if not query:
        return url
    parts = urlsplit(url)
    joined = '&'.join(filter(None, [parts.query, urlencode(query)]))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))


def _headers(spec, preset, values, operator_preset, secrets):
    """The request's headers, the preset's filled with the key and the feed's over them; their secrets noted."""
    headers = {}
    for key, template in (preset.get('headers') or {}).items():
        what = 'feed %s: header %s' % (spec.get('name'), key)
        headers[key] = _fill(template, values, what)
        if operator_preset or _placeholders(template, what):
            secrets.extend(header_secrets(headers[key]))
    for key, value in (spec.get('headers') or {}).items():
        headers[key] = value
        secrets.extend(header_secrets(value))
    return headers
