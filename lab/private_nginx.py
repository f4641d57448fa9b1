# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The nginx.conf of a private nginx that the tests and benchmarks start under a directory of their own.

Every file nginx writes (pid, lock, error log, temporary bodies) stays under ``root``, so that it touches nothing
of the machine's nginx, and the caller gives what goes inside ``http { }``.
"""


def nginx_conf(root, http, workers=1, error_level=''):
    """The whole nginx.conf: ``http`` (text, already indented) inside its http block."""
    temp = ''.join('    %s_temp_path %s/tmp/%s;\n' % (kind, root, kind)
                   for kind in ('client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'))
    return ('worker_processes %d;\npid %s/nginx.pid;\nlock_file %s/nginx.lock;\nerror_log %s/error.log%s;\n'
            'events { worker_connections 64; }\nhttp {\n    access_log off;\n%s%s}\n'
            % (workers, root, root, root, ' ' + error_level if error_level else '', temp, http))
