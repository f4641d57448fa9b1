"""The build's option checks that Ansible's argument spec cannot express."""
import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy_options import (
    ARGUMENT_SPEC, file_mode_of, option_problem,
)

CORE_INDEPENDENT = True


def validated(**params):
    result = ArgumentSpecValidator(ARGUMENT_SPEC).validate(dict({'dest': '/tmp/copy'}, **params))
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


def test_defaults_pass_and_each_bad_value_is_named():
    assert option_problem(validated(feeds=[{'name': 'a', 'url': 'http://127.0.0.1/a'}])) is None
    for params, said in [({'min_prefix_v4': 33}, 'min_prefix_v4 must be 0-32'),
                         ({'max_shrink_percent': 101}, 'max_shrink_percent must be between 0 and 100'),
                         ({'keep_generations': 0}, 'keep_generations must be at least 1'),
                         ({'file_mode': '0999'}, 'file_mode must be an octal mode'),
                         ({'feeds': [{'name': 'a', 'url': 'u', 'timeout': 0}]}, 'feed a: timeout must be positive'),
                         ({'feeds': [{'name': 'b', 'url': 'u', 'max_age': -1}]}, 'feed b: min_interval, max_wait and max_age'),
                         ({'feeds': [{'name': 'c', 'url': 'u', 'max_invalid_fraction': 2}]}, 'feed c: max_invalid_fraction'),
                         ({'feeds': [{'name': 'd', 'url': 'u', 'max_growth_factor': -1}]}, 'feed d: max_growth_factor'),
                         ({'feeds': [{'name': 'e', 'url': 'u', 'max_bytes': 0}]}, 'feed e: deadline must not be negative')]:
        assert option_problem(validated(**params)).startswith(said), params


@pytest.mark.parametrize('value, mode', [('0644', 0o644), ('600', 0o600), (420, 0o644), (0o600, 0o600),
                                         ('7777', 0o7777), ('10000', None), ('rw-r--r--', None), ('-1', None),
                                         (True, None), (-1, None)])
def test_file_modes(value, mode):
    # A YAML 0644 without quotes arrives as the integer 420: that is the mode itself, as Ansible's file
    # modules take it, never the octal digits of its decimal (0420 would make the copy unreadable to others).
    assert file_mode_of(value) == mode
