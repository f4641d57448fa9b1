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

When each address was last reported is kept in ``state_file``, so the rate
limit survives a restart of fail2ban; an address is recorded there only once
the provider accepted its report, so a report that failed is sent again at
the address's next ban. The comment leaves out the host's name and every
address but the banned one, unless ``include_host`` is true.

Use in a jail::

    action = iptables-ipset[name=sshd, port="22", protocol=tcp, type=multiport]
             fleetwall-report.py[url="https://api.abuseipdb.com/api/v2/report",
                                 keyfile="/etc/fleetwall/abuseipdb.key", categories="18,22",
                                 state_file="/var/lib/fleetwall/fail2ban/reported.json"]
"""

import ipaddress
import json
import os
import re
import socket
import stat
import tempfile
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
DEFAULT_STATE_FILE = '/var/lib/fleetwall/fail2ban/reported.json'
# The state file holds the addresses reported within min_interval: a few
# hundred at most in practice. The bounds keep a flood, or a file someone
# else wrote, from costing the fail2ban server memory.
STATE_LIMIT = 10000
STATE_MAX_BYTES = 1 << 20
# Shared by every jail's instance in the fail2ban server: the repeat-offender
# jail bans right after sshd, and the provider counts per address, not per
# jail. fail2ban loads this file again for each jail into the same module
# object, so what an earlier load made is kept. _REPORTED_BY_FILE maps each
# state file to {address: when its report was accepted}, read from the file
# at the first ban after fail2ban started; _IN_FLIGHT holds the addresses
# whose report is being sent. The state file is written under its own lock,
# never under _REPORTED_LOCK, which a ban takes: a slow disk delays no ban.
_REPORTED_BY_FILE = globals().get('_REPORTED_BY_FILE', {})
_IN_FLIGHT = globals().get('_IN_FLIGHT', set())
_REPORTED_LOCK = globals().get('_REPORTED_LOCK') or threading.Lock()
_STATE_WRITE_LOCK = globals().get('_STATE_WRITE_LOCK') or threading.Lock()
_CATEGORIES = re.compile(r'^\d{1,3}(,\d{1,3})*\Z')
_UNPRINTABLE = re.compile(r'[\x00-\x08\x0b-\x1f\x7f]')
# The host field of a syslog line ("Nov 23 15:05:38 web1 sshd[812]: ..."), or of the journal lines fail2ban
# formats ("2026-11-23T15:05:38.123456 web1 sshd[812]: ...").
_SYSLOG_HOST = re.compile(
    r'^(?P<time>(?:[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?'
    r'(?:Z|[+-]\d\d:?\d\d)?) )[^\s\[\]:]+ (?=[^\s\[\]:]+(?:\[\d+\])?: )')
# What may be an IPv4 or IPv6 address; ipaddress decides.
_ADDRESS_LIKE = re.compile(r'(?<![\w:.])[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]*(?![\w:])')
_TRUE, _FALSE = ('1', 'true', 'yes', 'on'), ('0', 'false', 'no', 'off', '')


def _log_lines(matches):
    """The ban's log lines without control characters (an attacker can put them in a user name) or blank lines."""
    lines = [_UNPRINTABLE.sub('', line).rstrip() for line in (matches or '').splitlines()]
    return [line for line in lines if line]


def _trim_lines(lines, limit):
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


def trim_comment(matches, limit=COMMENT_LIMIT):
    """The ban's log lines, whole lines first, within ``limit`` characters.

    Lines are kept in order while they fit; a first line longer than the
    limit is cut. Control characters are dropped.
    """
    return _trim_lines(_log_lines(matches), limit)


def _address(text):
    """An ipaddress address, an IPv4-mapped IPv6 one as IPv4 (sshd on an IPv6 socket logs a.b.c.d so); None if none."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return getattr(address, 'ipv4_mapped', None) or address


def without_host(line, ip, host_names):
    """``line`` without the host's name (its syslog field, and the names wherever they appear) or any address but ``ip``.

    Every address but the banned one goes, since the provider publishes the
    comment: the host's own addresses, and anybody else's.
    """
    banned = _address(ip)
    line = _SYSLOG_HOST.sub(r'\g<time>', line, count=1)
    for name in host_names:
        line = re.sub(r'(?<![\w.-])%s(?:\.[A-Za-z0-9-]+)*(?![\w-])' % re.escape(name), '<host>', line,
                      flags=re.IGNORECASE)

    def replace(match):
        text = match.group(0)
        core = text.rstrip('.:')        # "from 192.0.2.1." ends a sentence
        address = _address(core)
        if address is None or address == banned:
            return text
        return '<address>' + text[len(core):]
    return _ADDRESS_LIKE.sub(replace, line)


def host_names():
    """This host's names as its logs may carry them: the name and its first label (never a DNS lookup)."""
    name = socket.gethostname()
    return sorted({n for n in (name, name.split('.')[0]) if n}, key=len, reverse=True)


def report_comment(matches, ip, include_host=False, names=(), limit=COMMENT_LIMIT):
    """The comment for a report of ``ip``: its log lines within ``limit``, without the host unless ``include_host``."""
    lines = _log_lines(matches)
    if not include_host:
        lines = [without_host(line, ip, names) for line in lines]
    return _trim_lines(lines, limit)


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


def load_reported(path):
    """{address: epoch} from the state file; {} when there is none. ValueError when it cannot be used."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read(STATE_MAX_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ValueError('cannot read %s: %s' % (path, exc))
    if len(data) > STATE_MAX_BYTES:
        raise ValueError('%s is larger than %d bytes' % (path, STATE_MAX_BYTES))
    try:
        document = json.loads(data.decode('utf-8'))
        reported = document['reported']
        return {str(ip): float(when) for ip, when in reported.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError('%s is not a fleetwall-report state file (%s)' % (path, exc))


def prune_reported(reported, now, min_interval, limit=STATE_LIMIT):
    """The entries younger than ``min_interval``, the newest ``limit`` of them: older ones limit nothing."""
    recent = sorted(((when, ip) for ip, when in reported.items() if now - when < min_interval), reverse=True)
    return {ip: when for when, ip in recent[:limit]}


def save_reported(path, reported):
    """Replace the state file atomically (a crash leaves the old file or the new one), root-only."""
    directory = os.path.dirname(path) or '.'
    fd, temporary = tempfile.mkstemp(prefix='.reported-', dir=directory)
    try:
        with os.fdopen(fd, 'w') as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump({'format': 1, 'reported': reported}, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def parse_bool(name, value):
    text = str(value).strip().lower()
    if text not in _TRUE + _FALSE:
        raise ValueError('fleetwall-report: %s must be true or false, got %r' % (name, value))
    return text in _TRUE


def report_request(url, key, ip, categories, comment):
    body = urlencode({'ip': ip, 'categories': categories, 'comment': comment}).encode()
    return Request(url, data=body, method='POST', headers={
        'Key': key, 'Accept': 'application/json', 'Content-Type': 'application/x-www-form-urlencoded'})


def confidence_score(body):
    """The score in the provider's answer to a report, or None: an answer it cannot parse still means accepted."""
    try:
        return (json.loads(body.decode('utf-8', 'replace') or '{}').get('data') or {}).get('abuseConfidenceScore')
    except (ValueError, AttributeError):
        return None


def error_detail(body):
    """The provider's own words from an error body (``{"errors": [{"detail": ...}]}``), shortened."""
    try:
        document = json.loads(body.decode('utf-8', 'replace'))
        return '; '.join(str(e.get('detail')) for e in document.get('errors', []))[:300] or body[:300]
    except (ValueError, AttributeError):
        return body[:300].decode('utf-8', 'replace') if isinstance(body, bytes) else str(body)[:300]


class FleetwallReport(ActionBase):

    def __init__(self, jail, name, url=None, keyfile='/etc/fleetwall/abuseipdb.key', categories='18',
                 min_interval='900', timeout='10', state_file=DEFAULT_STATE_FILE, include_host='false'):
        super(FleetwallReport, self).__init__(jail, name)
        if not url:
            raise ValueError('fleetwall-report needs url')
        categories = str(categories).replace(' ', '')
        if not _CATEGORIES.match(categories):
            raise ValueError('fleetwall-report: categories must be comma-separated numbers, got %r' % categories)
        if not os.path.isabs(str(state_file)):
            raise ValueError('fleetwall-report: state_file must be an absolute path, got %r' % (state_file,))
        self.url, self.keyfile, self.categories = url, keyfile, categories
        self.min_interval, self.timeout = int(min_interval), float(timeout)
        self.state_file = str(state_file)
        self.include_host = parse_bool('include_host', include_host)
        self.host_names = () if self.include_host else host_names()
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
            last = self._reported().get(ip)
            if last is not None and now - last < self.min_interval:
                self._logSys.info('[%s] not reporting %s again: reported %d s ago', self._jail.name, ip, now - last)
                return
            if ip in _IN_FLIGHT:
                self._logSys.info('[%s] not reporting %s again: its report is being sent', self._jail.name, ip)
                return
            _IN_FLIGHT.add(ip)
        comment = report_comment(aInfo.get('matches'), ip, self.include_host, self.host_names)
        worker = threading.Thread(target=self._report, args=(ip, comment), name='fleetwall-report')
        worker.daemon = True
        worker.start()

    def _reported(self):
        """The addresses reported lately, read from the state file the first time; call under _REPORTED_LOCK."""
        reported = _REPORTED_BY_FILE.get(self.state_file)
        if reported is None:
            try:
                reported = load_reported(self.state_file)
            except ValueError as exc:
                # Better a repeated report than none: the provider refuses a repeat within its own window.
                self._logSys.warning('[%s] starting with no record of past reports: %s', self._jail.name, exc)
                reported = {}
            reported = _REPORTED_BY_FILE[self.state_file] = prune_reported(reported, time.time(), self.min_interval)
        return reported

    def _remember(self, ip):
        """Record an accepted report in memory, then in the state file, so that it outlives a restart."""
        with _STATE_WRITE_LOCK:
            with _REPORTED_LOCK:
                now = time.time()
                reported = self._reported()
                reported[ip] = now
                reported = _REPORTED_BY_FILE[self.state_file] = prune_reported(reported, now, self.min_interval)
                snapshot = dict(reported)
            try:
                save_reported(self.state_file, snapshot)
            except OSError as exc:
                self._logSys.warning('[%s] cannot record the report of %s in %s (remembered until fail2ban '
                                     'restarts): %s', self._jail.name, ip, self.state_file, exc)

    def _report(self, ip, comment):
        try:
            # Only an accepted report counts against min_interval: a failed one is sent again at the next ban.
            if self._send(ip, comment):
                self._remember(ip)
        finally:
            # Out of flight only once remembered, so that a ban in between cannot send it twice.
            with _REPORTED_LOCK:
                _IN_FLIGHT.discard(ip)

    def _send(self, ip, comment):
        """Send the report; whether the provider accepted it."""
        try:
            key = read_key(self.keyfile)
        except (OSError, ValueError) as exc:
            self._logSys.error('[%s] cannot report %s: the key file: %s', self._jail.name, ip, exc)
            return False
        try:
            with urlopen(report_request(self.url, key, ip, self.categories, comment), timeout=self.timeout) as answer:
                body = answer.read(65536)
        except HTTPError as exc:
            self._logSys.warning('[%s] report of %s refused: HTTP %s: %s', self._jail.name, ip, exc.code,
                                 error_detail(exc.read()))
            return False
        except (URLError, OSError, ValueError) as exc:
            # The URL may carry nothing secret (the key goes in a header), but the reason may quote it.
            self._logSys.warning('[%s] report of %s failed: %s', self._jail.name, ip,
                                 str(getattr(exc, 'reason', exc)).replace(key, '<key>'))
            return False
        self._logSys.notice('[%s] reported %s (confidence score now %s)', self._jail.name, ip, confidence_score(body))
        return True


Action = FleetwallReport
