#!/usr/bin/env python3
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A loopback HTTP server for feed files, for the lab demo and the tests.

It binds 127.0.0.1 only.  Besides serving files it can answer a path with a
fault, so tests exercise the real fetcher against real HTTP:

    /fault/500/<file>   HTTP 500
    /fault/404/<file>   HTTP 404
    /fault/401/<file>   HTTP 401 with a JSON error body
    /fault/html/<file>  an HTML error page with status 200
    /fault/empty/<file> an empty 200
    /fault/slow/<file>  waits 5 s before answering
"""

import argparse
import functools
import http.server
import json
import os
import sys
import threading
import time


class FeedHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):  # quiet: tests read their own output
        if os.environ.get('FEED_SERVER_VERBOSE'):
            sys.stderr.write('feed_server: ' + fmt % args + '\n')

    def _send(self, status, body, ctype='text/plain'):
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.server.hits.append(self.path)
        parts = self.path.split('/')
        if len(parts) > 3 and parts[1] == 'fault':
            fault = parts[2]
            if fault == '500':
                return self._send(500, b'internal error\n')
            if fault == '404':
                return self._send(404, b'not found\n')
            if fault == '401':
                return self._send(401, json.dumps({'error': 'invalid api key'}).encode(), 'application/json')
            if fault == 'html':
                return self._send(200, b'<!DOCTYPE html><html><head><title>Login</title></head><body>portal</body></html>',
                                  'text/html')
            if fault == 'empty':
                return self._send(200, b'')
            if fault == 'slow':
                time.sleep(5)
                self.path = '/' + '/'.join(parts[3:])
        return super().do_GET()


def serve(directory, port=0):
    """Start in a thread; return the server (``server.server_address[1]`` is the port)."""
    handler = functools.partial(FeedHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', port), handler)
    server.daemon_threads = True
    server.hits = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('directory')
    parser.add_argument('--port', type=int, default=0)
    parser.add_argument('--port-file')
    parser.add_argument('--lifetime', type=int, default=3600, help='exit after this many seconds')
    args = parser.parse_args()
    server = serve(args.directory, args.port)
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file, 'w') as handle:
            handle.write(str(port))
    print('feed_server: serving %s on http://127.0.0.1:%d' % (args.directory, port), flush=True)
    time.sleep(args.lifetime)


if __name__ == '__main__':
    main()
