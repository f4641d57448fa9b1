"""Render a local HTML file in Debian's headless Chromium and query the rendered page.

Stdlib only: the browser is driven through the Chrome DevTools Protocol over
--remote-debugging-pipe (JSON messages, each terminated by a NUL byte, on the
child's fd 3 for commands and fd 4 for responses and events), because no
websocket library is available to the tests.

    with open_page('/tmp/x/page.html') as page:
        assert page.evaluate('document.title') == 'x'
        assert page.console_errors() == []
        width, height, rows = png_pixels(page.screenshot('/tmp/x/shot.png'))
"""
import base64
import contextlib
import fcntl
import json
import math
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

# Chromium's own arguments besides the user data dir. --no-sandbox: the sandbox
# refuses to run as root (the tests run as root in a container). --disable-gpu: no
# display and no GPU, Chromium renders in software. --disable-dev-shm-usage: a container's
# /dev/shm is often 64 MB, too small for the renderer's shared memory. The rest keep
# a throwaway profile quiet and offline (the pages are local files): no background
# fetches, component updates, sync, crash uploads or first-run UI. sRGB colour
# profile and no scrollbars: screenshot pixels are the page's colours, nothing else.
CHROMIUM_ARGS = (
    '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check',
    '--disable-extensions', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-breakpad',
    '--disable-crash-reporter', '--metrics-recording-only', '--no-pings', '--mute-audio',
    '--hide-scrollbars', '--password-store=basic', '--use-mock-keychain', '--force-color-profile=srgb',
    '--allow-file-access-from-files', '--remote-debugging-pipe',
)

# Runs in the child in place of a preexec_fn: moves the two pipe ends that
# Popen's pass_fds kept open (at whatever numbers they had in the parent) onto fds 3
# and 4, where Chromium expects them, closes the originals, and execs Chromium.
# See _spawn for why this is done in a separate tiny process image.
_TRAMPOLINE = (
    'import os, sys\n'
    'commands, responses = int(sys.argv[1]), int(sys.argv[2])\n'
    'os.dup2(commands, 3)\n'
    'os.dup2(responses, 4)\n'
    'os.close(commands)\n'
    'os.close(responses)\n'
    'os.execv(sys.argv[3], sys.argv[3:])\n'
)

STDERR_TAIL = 3000
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


class BrowserError(Exception):
    """Chromium could not be started, exited, timed out, or a command or the page failed."""


def chromium_path():
    """The Chromium binary, or None when it is not installed."""
    if os.access('/usr/bin/chromium', os.X_OK):
        return '/usr/bin/chromium'
    return shutil.which('chromium')


class _Pipe(object):
    """The DevTools connection: commands out, responses matched by id, events collected in order."""

    def __init__(self, process, to_browser, from_browser, stderr_path):
        self.process = process
        self.to_browser = to_browser
        self.from_browser = from_browser
        self.stderr_path = stderr_path
        self.buffer = b''
        self.next_id = 0
        self.responses = {}
        self.events = []
        self.closed = False

    def stderr_tail(self):
        try:
            with open(self.stderr_path, 'rb') as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - STDERR_TAIL))
                return handle.read().decode('utf-8', 'replace')
        except OSError as exc:
            return '(no stderr: %s)' % exc

    def _gone(self, waiting_for):
        # Chromium closed the pipe or died: give it a moment to be reaped so the
        # exit status is known, and show what it printed on the way out.
        try:
            rc = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            rc = None
        self.closed = True
        return BrowserError('chromium exited (status %s) while waiting for %s; stderr tail:\n%s'
                            % (rc, waiting_for, self.stderr_tail()))

    def _timed_out(self, waiting_for, timeout):
        return BrowserError('timed out after %.1f s waiting for %s; chromium stderr tail:\n%s'
                            % (timeout, waiting_for, self.stderr_tail()))

    def send(self, method, params=None, session_id=None, deadline=None, timeout=30):
        """Write one command; returns its id. Bounded: a browser that stops reading cannot hang us."""
        if self.closed:
            raise self._gone(method)
        self.next_id += 1
        message = {'id': self.next_id, 'method': method, 'params': params or {}}
        if session_id:
            message['sessionId'] = session_id
        data = json.dumps(message).encode('utf-8') + b'\0'
        deadline = deadline if deadline is not None else time.monotonic() + timeout
        while data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._timed_out('chromium to read command %s' % method, timeout)
            _readable, writable, _errors = select.select([], [self.to_browser], [], min(left, 0.5))
            if not writable:
                if self.process.poll() is not None:
                    raise self._gone('chromium to read command %s' % method)
                continue
            try:
                written = os.write(self.to_browser, data)
            except BrokenPipeError:
                raise self._gone('chromium to read command %s' % method)
            data = data[written:]
        return self.next_id

    def pump(self, deadline, waiting_for):
        """Read what has arrived until the deadline or the first complete batch, whichever is first.

        Returns True when at least one message was read. Raises, naming waiting_for, when Chromium is gone."""
        left = max(0.0, deadline - time.monotonic())
        readable, _writable, _errors = select.select([self.from_browser], [], [], left)
        if not readable:
            if self.process.poll() is not None:
                raise self._gone(waiting_for)
            return False
        chunk = os.read(self.from_browser, 1 << 20)
        if not chunk:
            raise self._gone(waiting_for)
        self.buffer += chunk
        got = False
        while b'\0' in self.buffer:
            raw, self.buffer = self.buffer.split(b'\0', 1)
            message = json.loads(raw.decode('utf-8'))
            if 'id' in message:
                self.responses[message['id']] = message
            else:
                self.events.append(message)
            got = True
        return got

    def call(self, method, params=None, session_id=None, timeout=30):
        """Send a command and wait (bounded) for its response; returns its result or raises its error."""
        deadline = time.monotonic() + timeout
        message_id = self.send(method, params, session_id, deadline=deadline, timeout=timeout)
        while message_id not in self.responses:
            if time.monotonic() >= deadline:
                raise self._timed_out('the response to %s' % method, timeout)
            self.pump(deadline, 'the response to %s' % method)
        response = self.responses.pop(message_id)
        if 'error' in response:
            error = response['error']
            raise BrowserError('%s failed: %s (code %s)%s' % (
                method, error.get('message'), error.get('code'),
                ': %s' % error['data'] if error.get('data') else ''))
        return response.get('result', {})

    def wait_event(self, method, session_id=None, start=0, timeout=30):
        """The first event named method (for session_id) at or after index start, waiting bounded."""
        deadline = time.monotonic() + timeout
        index = start
        while True:
            for index in range(index, len(self.events)):
                event = self.events[index]
                if event.get('method') == method and (session_id is None or event.get('sessionId') == session_id):
                    return event
            index = len(self.events)
            if time.monotonic() >= deadline:
                raise self._timed_out('event %s' % method, timeout)
            self.pump(deadline, 'event %s' % method)


def _unserializable(text):
    # Runtime.evaluate cannot put these into JSON: NaN, Infinity, -Infinity, -0 and BigInts.
    if text.endswith('n'):
        return int(text[:-1])
    if text == '-0':
        return -0.0
    return float(text.replace('Infinity', 'inf'))


def _exception_text(details):
    exception = details.get('exception') or {}
    if exception.get('description'):
        # An Error's description is its message and stack, locations included.
        return exception['description']
    if 'value' in exception:
        return 'Uncaught %r' % (exception['value'],)
    return '%s (%s:%s:%s)' % (details.get('text') or 'exception', details.get('url', ''),
                              details.get('lineNumber', 0) + 1, details.get('columnNumber', 0) + 1)


class Page(object):
    """One tab, attached with a flattened session: evaluate, screenshot, console_errors."""

    def __init__(self, pipe, session_id, timeout):
        self.pipe = pipe
        self.session_id = session_id
        self.timeout = timeout

    def call(self, method, params=None, timeout=None):
        return self.pipe.call(method, params, self.session_id, timeout=timeout or self.timeout)

    def evaluate(self, expression):
        """The value of a JS expression (promises awaited), as JSON gives it; BrowserError if it throws."""
        result = self.call('Runtime.evaluate', {'expression': expression, 'returnByValue': True,
                                                'awaitPromise': True, 'userGesture': True})
        if 'exceptionDetails' in result:
            raise BrowserError('page threw evaluating %r: %s' % (expression, _exception_text(result['exceptionDetails'])))
        value = result.get('result', {})
        if 'unserializableValue' in value:
            return _unserializable(value['unserializableValue'])
        return value.get('value')

    def screenshot(self, dest_path):
        """Write a PNG of the whole document (not only the viewport) to dest_path; returns dest_path."""
        metrics = self.call('Page.getLayoutMetrics')
        # cssContentSize is the document's size in CSS pixels (the viewport is set with
        # deviceScaleFactor 1, so one CSS pixel is one screenshot pixel).
        size = metrics.get('cssContentSize') or metrics.get('contentSize')
        width = max(1, int(math.ceil(size['width'])))
        height = max(1, int(math.ceil(size['height'])))
        result = self.call('Page.captureScreenshot', {
            'format': 'png', 'captureBeyondViewport': True, 'fromSurface': True,
            'clip': {'x': 0, 'y': 0, 'width': width, 'height': height, 'scale': 1}})
        with open(dest_path, 'wb') as handle:
            handle.write(base64.b64decode(result['data']))
        return dest_path

    def console_errors(self):
        """Console errors, uncaught exceptions and error log entries the page has produced so far."""
        # A round trip on this session first: Chromium sends a session's events in
        # order, so everything the page reported before now has arrived after it.
        self.call('Runtime.evaluate', {'expression': '0'})
        errors = []
        for event in self.pipe.events:
            if event.get('sessionId') != self.session_id:
                continue
            method, params = event.get('method'), event.get('params', {})
            if method == 'Runtime.exceptionThrown':
                errors.append(_exception_text(params.get('exceptionDetails', {})))
            elif method == 'Runtime.consoleAPICalled' and params.get('type') in ('error', 'assert'):
                errors.append(' '.join(str(arg.get('value', arg.get('description', arg.get('type'))))
                                       for arg in params.get('args', [])))
            elif method == 'Log.entryAdded' and params.get('entry', {}).get('level') == 'error':
                entry = params['entry']
                errors.append('%s%s' % (entry.get('text'), ' (%s)' % entry['url'] if entry.get('url') else ''))
        return errors


def _high_fd(fd):
    # A close-on-exec copy numbered 10 or more, so neither pipe end can already be
    # fd 3 or 4: the trampoline's first dup2 must not overwrite the other end.
    copy = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return copy


def _spawn(binary, profile, stderr_handle, width, height):
    """Start Chromium in its own session; returns (process, fd we write commands to, fd we read from).

    How the pipes reach fds 3 and 4: Popen's pass_fds keeps the child's ends open
    across exec at the numbers they have here, and close_fds closes every other fd.
    Moving them onto 3 and 4 needs a dup2 between fork and exec, but a preexec_fn
    cannot do it: Popen closes the non-passed fds after preexec_fn runs, which would
    close 3 and 4 again, and preexec_fn is unsafe when the parent has threads anyway.
    Renumbering fds 3 and 4 in this process around the Popen call would race with
    any other thread using them. So the child first runs a few lines of Python
    (_TRAMPOLINE, started with -I -S: about 15 ms) that dup2 the passed fds onto 3 and
    4 and exec Chromium: thread-safe, and nothing but 0-4 reaches Chromium.
    """
    commands_read, commands_write = os.pipe()
    responses_read, responses_write = os.pipe()
    commands_read, responses_write = _high_fd(commands_read), _high_fd(responses_write)
    python = sys.executable or shutil.which('python3')
    argv = [python, '-I', '-S', '-c', _TRAMPOLINE, str(commands_read), str(responses_write), binary,
            '--user-data-dir=%s' % profile, '--window-size=%d,%d' % (width, height)]
    argv += list(CHROMIUM_ARGS) + ['about:blank']
    # Keep Chromium's caches and config under the private directory, not root's home.
    env = dict(os.environ, HOME=os.path.dirname(profile), XDG_CONFIG_HOME=os.path.join(os.path.dirname(profile), 'config'),
               XDG_CACHE_HOME=os.path.join(os.path.dirname(profile), 'cache'))
    for name in ('DISPLAY', 'WAYLAND_DISPLAY'):
        env.pop(name, None)
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stderr_handle, stderr=stderr_handle,
                                   pass_fds=(commands_read, responses_write), close_fds=True,
                                   start_new_session=True, env=env)
    except BaseException:
        for fd in (commands_read, commands_write, responses_read, responses_write):
            os.close(fd)
        raise
    # Our copies of the child's ends: closed, so a dead Chromium reads as EOF and EPIPE here.
    os.close(commands_read)
    os.close(responses_write)
    return process, commands_write, responses_read


def _close_browser(pipe):
    # Asked to quit, Chromium reaps its own renderers; killed outright, they are left
    # as zombies for init to collect. Brief and best effort: the group is killed next anyway.
    if pipe.closed or pipe.process.poll() is not None:
        return
    try:
        pipe.send('Browser.close', timeout=1)
        pipe.process.wait(timeout=2)
    except (BrowserError, OSError, subprocess.TimeoutExpired):
        pass


def _kill_group(process):
    # start_new_session made Chromium the leader of its own process group: one
    # signal reaches the browser and every renderer, GPU and utility process.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _remove_tree(path):
    # Children killed a moment ago may still be closing files in the profile: retry briefly.
    for _attempt in range(5):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            return
        time.sleep(0.2)


def _attach(pipe, deadline, timeout):
    """A page target's flattened session id: the startup about:blank tab, or a new one."""
    def left():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise pipe._timed_out('chromium to start a page', timeout)
        return remaining
    # Chromium was started with about:blank, but that tab may not be registered yet
    # when the first command is answered: then make one rather than poll for it.
    targets = pipe.call('Target.getTargets', timeout=left()).get('targetInfos', [])
    pages = [t['targetId'] for t in targets if t.get('type') == 'page']
    if pages:
        target_id = pages[0]
    else:
        target_id = pipe.call('Target.createTarget', {'url': 'about:blank'}, timeout=left())['targetId']
    return pipe.call('Target.attachToTarget', {'targetId': target_id, 'flatten': True}, timeout=left())['sessionId']


@contextlib.contextmanager
def open_page(path, width=1280, height=900, timeout=30):
    """Chromium showing file://<abs path> at width x height, loaded; yields a Page.

    Every wait is bounded by timeout seconds (the whole startup and load together,
    then each later call). Chromium's process group is killed and its private
    profile removed at exit, error or not."""
    binary = chromium_path()
    if binary is None:
        raise BrowserError('chromium is not installed')
    url = 'file://' + os.path.abspath(path)
    workdir = tempfile.mkdtemp(prefix='fwbrowser-')
    process = pipe = None
    fds = ()
    try:
        profile = os.path.join(workdir, 'profile')
        os.mkdir(profile, 0o700)
        stderr_path = os.path.join(workdir, 'chromium.stderr')
        with open(stderr_path, 'wb') as stderr_handle:
            process, to_browser, from_browser = _spawn(binary, profile, stderr_handle, width, height)
        fds = (to_browser, from_browser)
        pipe = _Pipe(process, to_browser, from_browser, stderr_path)
        deadline = time.monotonic() + timeout

        def left(what):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise pipe._timed_out(what, timeout)
            return remaining

        session_id = _attach(pipe, deadline, timeout)
        page = Page(pipe, session_id, timeout)
        for method in ('Page.enable', 'Runtime.enable', 'Log.enable'):
            pipe.call(method, session_id=session_id, timeout=left(method))
        pipe.call('Emulation.setDeviceMetricsOverride', {'width': width, 'height': height, 'deviceScaleFactor': 1,
                                                         'mobile': False},
                  session_id=session_id, timeout=left('Emulation.setDeviceMetricsOverride'))
        # Events from before the navigation (about:blank's own load) must not count as its load.
        start = len(pipe.events)
        navigated = pipe.call('Page.navigate', {'url': url}, session_id=session_id, timeout=left('Page.navigate'))
        if navigated.get('errorText'):
            raise BrowserError('navigating to %s failed: %s' % (url, navigated['errorText']))
        pipe.wait_event('Page.loadEventFired', session_id, start=start, timeout=left('the load event of %s' % url))
        yield page
    finally:
        if process is not None:
            if pipe is not None:
                _close_browser(pipe)
            _kill_group(process)
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
        _remove_tree(workdir)


def _png_chunks(data):
    if data[:8] != PNG_SIGNATURE:
        raise ValueError('not a PNG')
    offset = 8
    while offset + 8 <= len(data):
        length, kind = struct.unpack('>I4s', data[offset:offset + 8])
        yield kind, data[offset + 8:offset + 8 + length]
        offset += 12 + length
        if kind == b'IEND':
            return


def png_size(path):
    """(width, height) of a PNG, from its IHDR chunk."""
    with open(path, 'rb') as handle:
        head = handle.read(24)
    if head[:8] != PNG_SIGNATURE or head[12:16] != b'IHDR':
        raise ValueError('%s: not a PNG' % path)
    return struct.unpack('>II', head[16:24])


def png_pixels(path):
    """(width, height, rows) of an 8-bit RGB or RGBA non-interlaced PNG: rows[y][x] is an (r, g, b[, a]) tuple.

    Pure Python: fine for screenshots of a few hundred thousand pixels."""
    with open(path, 'rb') as handle:
        data = handle.read()
    header, compressed = None, []
    for kind, body in _png_chunks(data):
        if kind == b'IHDR':
            header = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            compressed.append(body)
    if header is None:
        raise ValueError('%s: no IHDR chunk' % path)
    width, height, depth, color, _compression, _filter, interlace = header
    channels = {2: 3, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace != 0:
        raise ValueError('%s: only 8-bit RGB/RGBA non-interlaced PNGs (depth %d, color type %d, interlace %d)'
                         % (path, depth, color, interlace))
    raw = zlib.decompress(b''.join(compressed))
    stride = width * channels
    if len(raw) < height * (stride + 1):
        raise ValueError('%s: image data too short' % path)
    rows = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:  # Sub: plus the byte one pixel to the left
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xff
        elif kind == 2:  # Up: plus the byte above
            line = bytearray((a + b) & 0xff for a, b in zip(line, previous))
        elif kind == 3:  # Average: plus the floor of the mean of left and above
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xff
        elif kind == 4:  # Paeth: plus whichever of left, above, upper left is nearest left + above - upper left
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = previous[i]
                c = previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                if pa <= pb and pa <= pc:
                    predictor = a
                elif pb <= pc:
                    predictor = b
                else:
                    predictor = c
                line[i] = (line[i] + predictor) & 0xff
        elif kind != 0:
            raise ValueError('%s: row %d has unknown filter type %d' % (path, y, kind))
        rows.append([tuple(line[x:x + channels]) for x in range(0, stride, channels)])
        previous = line
    return width, height, rows
