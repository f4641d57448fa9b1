# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Installed by the fleetwall.blocklist.fail2ban role as action.d/fleetwall-report.py.
"""A fail2ban action that reports each new ban to an AbuseIPDB-compatible API.

It makes the provider's documented report call: ``POST`` with the header
``Key`` and the form fields ``ip``, ``categories`` (comma-separated) and
``comment``, here the ban's log lines trimmed to the provider's 1024
characters. Unlike the stock ``abuseipdb.conf`` it runs inside fail2ban, so
the key never appears on a command line (it is read from a root-only file at
each report, so a rotated key needs no restart), and log lines written by the
attacker never pass through a shell. Bans restored at a restart are not
reported again, nor an address reported less than ``min_interval`` seconds
ago (the provider refuses repeats within 15 minutes). The request runs in its
own thread, so a slow provider never delays a ban.

Use in a jail::

    action = iptables-ipset[name=sshd, port="22", protocol=tcp, type=multiport]
             fleetwall-report.py[url="https://api.abuseipdb.com/api/v2/report",
                                 keyfile="/etc/fleetwall/abuseipdb.key", categories="18,22"]
"""

import json
import os
import re
import stat
import threading
import time
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

try:
    from fail2ban.server.actions import ActionBase
except ImportError:  # imported outside fail2ban, by the unit tests of the helpers below
    ActionBase = object

COMMENT_LIMIT = 1024
# Shared by every jail's instance in the fail2ban server: the repeat-offender
# jail bans right after sshd, and the provider counts per address, not per
# jail. fail2ban loads this file again for each jail into the same module
# object, so what an earlier load made is kept.
_REPORTED = globals().get('_REPORTED', {})
_REPORTED_LOCK = globals().get('_REPORTED_LOCK') or threading.Lock()
_CATEGORIES = re.compile(r'^\d{1,3}(,\d{1,3})*\Z')
_UNPRINTABLE = re.compile(r'[\x00-\x08\x0b-\x1f\x7f]')


def trim_comment(matches, limit=COMMENT_LIMIT):
    """The ban's log lines, whole lines first, within ``limit`` characters.

    Lines are kept in order while they fit; a first line longer than the
    limit is cut. Control characters (an attacker can put them in a user
    name) are dropped.
    """
    lines = [_UNPRINTABLE.sub('', line).rstrip() for line in (matches or '').splitlines()]
    lines = [line for line in lines if line]
    out, used = [], 0
    for line in lines:
        cost = len(line) + (1 if out else 0)
        if used + cost > limit:
            if not out:
                out.append(line[:limit])
            break
        out.append(line)
        used += cost
    return '\n'.join(out)


def read_key(path):
    """The API key from a file that only root may read; refuse a file others can read."""
    info = os.stat(path)
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError('%s is readable by others (mode %o); chmod 600 it' % (path, stat.S_IMODE(info.st_mode)))
    with open(path) as handle:
        key = handle.read().strip()
    if not key or '\n' in key:
        raise ValueError('%s must hold the key on one line' % path)
    return key


def report_request(url, key, ip, categories, comment):
    body = urlencode({'ip': ip, 'categories': categories, 'comment': comment}).encode()
    return Request(url, data=body, method='POST', headers={
        'Key': key, 'Accept': 'application/json', 'Content-Type': 'application/x-www-form-urlencoded'})


def error_detail(body):
    """The provider's own words from an error body (``{"errors": [{"detail": ...}]}``), shortened."""
    try:
        document = json.loads(body.decode('utf-8', 'replace'))
        return '; '.join(str(e.get('detail')) for e in document.get('errors', []))[:300] or body[:300]
    except (ValueError, AttributeError):
        return body[:300].decode('utf-8', 'replace') if isinstance(body, bytes) else str(body)[:300]


class FleetwallReport(ActionBase):

    def __init__(self, jail, name, url=None, keyfile='/etc/fleetwall/abuseipdb.key', categories='18',
                 min_interval='900', timeout='10'):
        super(FleetwallReport, self).__init__(jail, name)
        if not url:
            raise ValueError('fleetwall-report needs url')
        categories = str(categories).replace(' ', '')
        if not _CATEGORIES.match(categories):
            raise ValueError('fleetwall-report: categories must be comma-separated numbers, got %r' % categories)
        self.url, self.keyfile, self.categories = url, keyfile, categories
        self.min_interval, self.timeout = int(min_interval), float(timeout)
        # fail2ban skips an action with this attribute for bans restored from its database at start.
        self.norestored = 1

    def start(self):
        pass

    def stop(self):
        pass

    def unban(self, aInfo):
        pass

    def ban(self, aInfo):
        if aInfo.get('restored'):
            return
        ip = str(aInfo['ip'])
        now = time.time()
        with _REPORTED_LOCK:
            last = _REPORTED.get(ip)
            if last is not None and now - last < self.min_interval:
                self._logSys.info('[%s] not reporting %s again: reported %d s ago', self._jail.name, ip, now - last)
                return
            # Forget old addresses so that a long-running server does not grow without bound.
            for other in [k for k, t in _REPORTED.items() if now - t >= self.min_interval]:
                del _REPORTED[other]
            _REPORTED[ip] = now
        comment = trim_comment(aInfo.get('matches'))
        worker = threading.Thread(target=self._report, args=(ip, comment), name='fleetwall-report')
        worker.daemon = True
        worker.start()

    def _report(self, ip, comment):
        try:
            key = read_key(self.keyfile)
        except (OSError, ValueError) as exc:
            self._logSys.error('[%s] cannot report %s: the key file: %s', self._jail.name, ip, exc)
            return
        try:
            with urlopen(report_request(self.url, key, ip, self.categories, comment), timeout=self.timeout) as answer:
                document = json.loads(answer.read().decode('utf-8', 'replace') or '{}')
            score = (document.get('data') or {}).get('abuseConfidenceScore')
            self._logSys.notice('[%s] reported %s (confidence score now %s)', self._jail.name, ip, score)
        except HTTPError as exc:
            self._logSys.warning('[%s] report of %s refused: HTTP %s: %s', self._jail.name, ip, exc.code,
                                 error_detail(exc.read()))
        except (URLError, OSError, ValueError) as exc:
            # The URL may carry nothing secret (the key goes in a header), but the reason may quote it.
            self._logSys.warning('[%s] report of %s failed: %s', self._jail.name, ip,
                                 str(getattr(exc, 'reason', exc)).replace(key, '<key>'))


Action = FleetwallReport
