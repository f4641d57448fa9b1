"""The threat_feed lookup takes a feed's settings as the build does: the same defaults, the same refusals.

The lookup runs in a child Python as a play finds it, through Ansible's plugin loader, so that its options and their
defaults come from its documentation with the feed doc fragment merged in (the loader cannot be set up in this process
once ansible_collections has been imported as a plain package).
"""
import json
import os
import subprocess
import sys

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.fleetwall.blocklist.tests.helpers import COLLECTIONS
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.feed_options import (
    FEED_DEFAULTS, FETCH_AND_PARSE_OPTIONS,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy_options import (
    ARGUMENT_SPEC, option_problem,
)

# Runs the lookup once for each (terms, options) of argv[1]; says what each returned or raised, and the keyword
# arguments it gave fetch and parse_feed (parse_feed's fmt as format).
RUN_LOOKUP = r'''
import json, sys
from ansible.plugins.loader import init_plugin_loader, lookup_loader
init_plugin_loader()
lookup = lookup_loader.get('fleetwall.blocklist.threat_feed')
plugin = sys.modules[type(lookup).__module__]
taken = {}
def recording(function, renamed):
    def record(*args, **kwargs):
        taken.update((renamed.get(key, key), value) for key, value in kwargs.items())
        return function(*args, **kwargs)
    return record
plugin.fetch = recording(plugin.fetch, {})
plugin.parse_feed = recording(plugin.parse_feed, {'fmt': 'format'})
answers = []
for terms, options in json.loads(sys.argv[1]):
    taken.clear()
    try:
        answers.append({'entries': lookup.run(terms, variables={}, **options), 'taken': dict(taken)})
    except Exception as exc:
        answers.append({'error': type(exc).__name__, 'message': str(exc)})
print(json.dumps(answers, default=str))
'''


def run_lookup(*runs):
    proc = subprocess.run([sys.executable, '-c', RUN_LOOKUP, json.dumps(runs)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120, check=False,
                          env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


# Bad values a type lets through, and the words the build and the lookup refuse them with.
BAD_SETTINGS = [
    ({'timeout': 0}, 'timeout must be positive and retries not negative'),
    ({'retries': -1}, 'timeout must be positive and retries not negative'),
    ({'deadline': -1}, 'deadline must not be negative, max_bytes and max_entries must be positive'),
    ({'max_bytes': 0}, 'deadline must not be negative, max_bytes and max_entries must be positive'),
    ({'max_entries': 0}, 'deadline must not be negative, max_bytes and max_entries must be positive'),
    ({'max_invalid_fraction': 1.5}, 'max_invalid_fraction must be between 0 and 1'),
    ({'countries': ['CN', 'China']}, "countries: 'China' is not a two-letter country code (ISO 3166 alpha-2, e.g. CN)"),
    ({'asns': [13335, 'ASX']}, 'asns: \'ASX\' is not an AS number (13335, "13335" or "AS13335"; 1-4294967295)'),
]


def feed_file(tmp_path):
    path = tmp_path / 'list.txt'
    path.write_text('198.51.100.7\n203.0.113.0/24\n2001:db8::1\n')
    return str(path)


def build_refusal(settings):
    """What shadow_copy_build says of a feed with these settings (its spec, then its own checks), or None."""
    result = ArgumentSpecValidator(ARGUMENT_SPEC).validate(
        {'dest': '/tmp/copy', 'feeds': [dict({'name': 'a', 'url': 'http://127.0.0.1/a'}, **settings)]})
    if result.error_messages:
        return result.error_messages[0]
    return option_problem(result.validated_parameters)


def test_the_lookup_refuses_what_the_build_refuses(tmp_path):
    terms = [feed_file(tmp_path)]
    answers = run_lookup(*[(terms, settings) for settings, _said in BAD_SETTINGS])
    for (settings, said), answer in zip(BAD_SETTINGS, answers):
        assert build_refusal(settings) == 'feed a: ' + said
        # The loader's wrapper re-raises the lookup's AnsibleLookupError as a template error (ansible-core 2.19).
        assert answer.get('message') == 'threat_feed: ' + said, (settings, answer)


def test_a_format_the_build_does_not_know_is_refused_by_both(tmp_path):
    assert 'format' in build_refusal({'format': 'xml'})
    answer, = run_lookup(([feed_file(tmp_path)], {'format': 'xml'}))
    assert "Invalid value 'xml' for config 'format'" in answer['message'], answer


def test_the_lookup_fetches_and_parses_with_the_builds_defaults(tmp_path):
    terms = [feed_file(tmp_path)]
    answer, = run_lookup((terms, {}))
    assert answer['entries'] == ['198.51.100.7', '203.0.113.0/24', '2001:db8::1'], answer
    defaults = {name: FEED_DEFAULTS[name] for name in FETCH_AND_PARSE_OPTIONS if name in FEED_DEFAULTS}
    assert {name: answer['taken'][name] for name in defaults} == defaults
    assert answer['taken']['format'] == 'auto' and answer['taken']['min_score'] is None
    assert answer['taken']['path'] == terms[0]


def test_the_lookup_selects_the_countries_of_a_delegation_file():
    import ipaddress
    from ansible_collections.fleetwall.blocklist.tests.helpers import FEEDS
    path = os.path.join(FEEDS, 'delegated-fixture-extended')
    expected = []
    with open(path) as handle:
        for fields in (line.rstrip('\n').split('|') for line in handle):
            if len(fields) >= 7 and fields[1] == 'KE' and fields[2] == 'ipv4' and fields[6] in ('allocated', 'assigned'):
                first = ipaddress.IPv4Address(fields[3])
                expected.extend(ipaddress.summarize_address_range(first, first + int(fields[4]) - 1))
    answer, missing = run_lookup(([path], {'format': 'rir_delegated', 'countries': ['ke'], 'family': 'v4'}),
                                 ([path], {'format': 'rir_delegated'}))
    assert answer['entries'] == [str(n) for n in ipaddress.collapse_addresses(expected)] != [], answer
    assert 'whole Internet' in missing['message'], missing
