"""The shadow_copy role's argument spec and defaults say what shadow_copy_build's argument spec says.

A role's argument spec is YAML and cannot import the module's Python definition (feed_options.FEED_OPTIONS,
shadow_copy_options.ARGUMENT_SPEC), so this test holds the two together: the feeds, and every default the role
hands the module through a variable of its own.
"""
import os
import re

import pytest
import yaml

from ansible_collections.fleetwall.blocklist.tests.helpers import ROOT, spec_disagreements
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.feed_options import FEED_OPTIONS
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy_options import ARGUMENT_SPEC

ROLE = os.path.join(ROOT, 'roles', 'shadow_copy')
# A module argument that is one role variable and nothing else.
PLAIN_VARIABLE = re.compile(r'\{\{\s*(shadow_copy_\w+)\s*\}\}\Z')


def read_yaml(*path):
    with open(os.path.join(ROLE, *path)) as handle:
        return yaml.safe_load(handle)


def entry_point_options():
    """(entry point, variable, its spec) for every option of every entry point."""
    return [(entry, name, option) for entry, spec in read_yaml('meta', 'argument_specs.yml')['argument_specs'].items()
            for name, option in (spec.get('options') or {}).items()]


def build_task():
    return next(task for task in read_yaml('tasks', 'main.yml') if 'fleetwall.blocklist.shadow_copy_build' in task)


def passed_variables(arguments, spec):
    """(role variable, the module option it is passed as, that option's spec) for the arguments that are one
    variable; ``spec`` is the argument spec (or suboptions) the arguments are checked against."""
    return [(match.group(1), option, spec[option]) for option, value in arguments.items()
            for match in [PLAIN_VARIABLE.match(str(value))] if match]


def role_to_module():
    task = build_task()
    passed = passed_variables(task['fleetwall.blocklist.shadow_copy_build'], ARGUMENT_SPEC)
    # fleet_local is built from the harvest variables in the task's vars.
    passed += passed_variables(task['vars']['__shadow_copy_fleet_local'], ARGUMENT_SPEC['fleet_local']['options'])
    return passed


def test_the_role_passes_its_variables_as_the_modules_options():
    # What the other tests compare is found, so that a renamed variable cannot leave them comparing nothing.
    passed = {variable: option for variable, option, _spec in role_to_module()}
    assert passed['shadow_copy_feeds'] == 'feeds' and passed['shadow_copy_harvest_expiry'] == 'expiry'
    assert len(passed) >= 15, passed


def test_shadow_copy_feeds_is_the_modules_feeds():
    feeds = next(option for _entry, name, option in entry_point_options() if name == 'shadow_copy_feeds')
    assert (feeds['type'], feeds['elements']) == (ARGUMENT_SPEC['feeds']['type'], ARGUMENT_SPEC['feeds']['elements'])
    # The role leaves a feed's options to the module, which documents them and checks them (FEED_OPTIONS); if it
    # ever declares them, they must be those.
    if 'options' in feeds:
        assert spec_disagreements(feeds['options'], FEED_OPTIONS) == []
    assert 'fleetwall.blocklist.shadow_copy_build#module:feeds' in ' '.join(feeds['description'])


@pytest.mark.parametrize('variable, option, spec', role_to_module(),
                         ids=lambda value: value if isinstance(value, str) else '')
def test_the_roles_default_is_the_modules(variable, option, spec):
    defaults = read_yaml('defaults', 'main.yml')
    if spec.get('required'):
        # The module has no default for it: the role's is the only one, and must be a value.
        assert defaults[variable] is not None, (variable, option)
        return
    assert defaults[variable] == spec.get('default'), (variable, option)
    for entry, name, declared in entry_point_options():
        if name == variable and 'default' in declared:
            assert declared['default'] == spec.get('default'), (entry, variable, option)


def test_every_declared_default_is_the_one_the_role_applies():
    defaults = read_yaml('defaults', 'main.yml')
    for entry, name, declared in entry_point_options():
        if 'default' in declared:
            assert defaults[name] == declared['default'], (entry, name)
