# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Write the fleet report on the controller, in one task and without a module run
(a file, a copy and a template task cost the push about 2 s)."""

from __future__ import annotations

import datetime

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.fleetwall.blocklist.plugins.plugin_utils.fleet_report_files import (
    directory_problem, report_problem, write_report,
)

# Runs kept in fleet_history.json; the file stays under fleet_history.MAX_BYTES whatever this says.
MAX_HISTORY_RUNS = 10000


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('dir', 'report', 'mode', 'history', 'run_id'))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        _spec, args = self.validate_argument_spec(argument_spec=dict(
            dir=dict(type='path', required=True),
            report=dict(type='dict', required=True),
            mode=dict(type='raw', default='0644'),
            history=dict(type='int', default=200),
            run_id=dict(type='str'),
        ))
        try:
            mode = int(str(args['mode']), 8)
        except ValueError:
            mode = -1
        if not 0 <= mode <= 0o7777:
            raise AnsibleActionFail('mode must be an octal mode such as 0644, not %r' % (args['mode'],))
        if not 0 <= args['history'] <= MAX_HISTORY_RUNS:
            raise AnsibleActionFail('history must be a number of runs from 0 (none) to %d, not %d'
                                    % (MAX_HISTORY_RUNS, args['history']))
        for key in ('hosts', 'totals'):
            if key not in args['report']:
                raise AnsibleActionFail('report has no %r: pass the fleetwall.blocklist.fleet_report filter\'s result'
                                        % key)
        problem = report_problem(args['report']) or directory_problem(args['dir'])
        if problem:
            raise AnsibleActionFail('%s; pass the fleetwall.blocklist.fleet_report filter\'s result' % problem
                                    if problem.startswith('report') else problem)
        # The report is the run's output, like its log: rewriting it is not a change.
        result.update(changed=False, written=False, files=[])
        if self._task.check_mode:
            return result
        try:
            files, history_problem = write_report(args['dir'], args['report'],
                                                  datetime.datetime.now(datetime.timezone.utc), mode,
                                                  history_runs=args['history'], run_id=args['run_id'])
        except (IOError, OSError) as exc:
            raise AnsibleActionFail('cannot write the fleet report in %s: %s'
                                    % (args['dir'], exc.strerror or exc))
        result.update(written=True, files=files)
        if history_problem:
            # The report is written all the same: a lost history must not cost the run its report.
            result.update(history_problem=history_problem, warnings=[history_problem])
        return result
