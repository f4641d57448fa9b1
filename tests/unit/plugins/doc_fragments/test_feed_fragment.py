"""A feed's options are defined once, in module_utils/_blocklist/controller/feed_options.py, and documented once, in the
fleetwall.blocklist.feed doc fragment; the documentation must say what the definition says.

The fragment places the same texts twice: as the threat_feed lookup's options (DOCUMENTATION; Ansible applies their
defaults and choices to the lookup) and as the suboptions of shadow_copy_build's feeds option (BUILD_FEEDS), because
Ansible merges a fragment into the top-level options only. Both are held here, option by option, to the Python
definition the module's argument spec is built from.
"""
import copy
import re

import pytest
import yaml

from ansible_collections.fleetwall.blocklist.tests.helpers import spec_disagreements
from ansible_collections.fleetwall.blocklist.plugins.doc_fragments.feed import ModuleDocFragment
from ansible_collections.fleetwall.blocklist.plugins.lookup import threat_feed
from ansible_collections.fleetwall.blocklist.plugins.modules import shadow_copy_build
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.feed_options import (
    BUILD_ONLY_OPTIONS, FEED_DEFAULTS, FEED_OPTIONS, FETCH_AND_PARSE_OPTIONS,
)
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.shadow_copy_options import ARGUMENT_SPEC

# An option named in a description: O(name), O(feeds[].name), O(tiers.block), O(fqcn#module:name).
OPTION_REFERENCE = re.compile(r'O\(([^)=]+)')


def fragment_options():
    return yaml.safe_load(ModuleDocFragment.DOCUMENTATION)['options']


def build_feeds_option():
    return yaml.safe_load(ModuleDocFragment.BUILD_FEEDS)['options']['feeds']


def build_feed_suboptions():
    return build_feeds_option()['suboptions']


def references(options):
    """Every option named in the descriptions of ``options`` and their suboptions."""
    found = []
    for option in options.values():
        description = option['description']
        for text in [description] if isinstance(description, str) else description:
            found.extend(OPTION_REFERENCE.findall(text))
        found.extend(references(option.get('suboptions') or {}))
    return found


def test_the_fragment_documents_the_settings_a_fetch_takes():
    assert spec_disagreements(fragment_options(), FETCH_AND_PARSE_OPTIONS) == []


def test_the_build_documents_every_feed_option_as_defined():
    assert spec_disagreements(build_feed_suboptions(), FEED_OPTIONS) == []


def test_the_build_documents_its_feeds_option_through_the_fragment():
    doc = yaml.safe_load(shadow_copy_build.DOCUMENTATION)
    assert 'fleetwall.blocklist.feed.build_feeds' in doc['extends_documentation_fragment']
    assert 'feeds' not in doc['options']
    feeds = dict(build_feeds_option())
    del feeds['suboptions']
    assert spec_disagreements({'feeds': feeds}, {'feeds': ARGUMENT_SPEC['feeds']}) == []


def test_every_option_a_description_names_is_there():
    # validate-modules checks the module's references, nothing checks the lookup's: O(feed.NAME) must have become
    # O(NAME) for the lookup and O(feeds[].NAME) for the build.
    lookup_options = set(fragment_options()) | set(yaml.safe_load(threat_feed.DOCUMENTATION)['options'])
    for name in references(fragment_options()):
        assert name in lookup_options or name.startswith('fleetwall.blocklist.'), name
    module_options = set(yaml.safe_load(shadow_copy_build.DOCUMENTATION)['options'])
    for name in references({'feeds': build_feeds_option()}):
        if name.startswith('feeds[].'):
            assert name[len('feeds[].'):] in FEED_OPTIONS, name
        else:
            assert name.split('.')[0] in module_options or name.startswith('fleetwall.blocklist.'), name


def test_the_build_takes_the_one_definition():
    assert ARGUMENT_SPEC['feeds']['options'] is FEED_OPTIONS
    assert set(FEED_OPTIONS) == set(FETCH_AND_PARSE_OPTIONS) | set(BUILD_ONLY_OPTIONS)
    assert not set(FETCH_AND_PARSE_OPTIONS) & set(BUILD_ONLY_OPTIONS)


def test_the_lookup_documents_its_feed_settings_only_through_the_fragment():
    doc = yaml.safe_load(threat_feed.DOCUMENTATION)
    assert doc['extends_documentation_fragment'] == ['fleetwall.blocklist.feed']
    # Its own options are what no feed has (its terms are the feed's url or path); a feed setting written here
    # would win over the fragment's and could drift from the definition.
    assert sorted(doc['options']) == ['_terms', 'aggregate', 'family']
    assert not set(doc['options']) & set(FEED_OPTIONS)


def test_the_defaults_are_the_definitions():
    assert FEED_DEFAULTS == {name: option['default'] for name, option in FEED_OPTIONS.items() if 'default' in option}
    documented = dict(build_feed_suboptions(), **fragment_options())
    assert {name: documented[name]['default'] for name in FEED_DEFAULTS} == FEED_DEFAULTS


@pytest.mark.parametrize('drift, said', [
    (lambda options: options['timeout'].update(default=60), 'timeout: default is 60 in the documentation, 30'),
    (lambda options: options['format']['choices'].pop(), 'format: choices is'),
    (lambda options: options['min_score'].update(type='int'), "min_score: type is 'int' in the documentation"),
    (lambda options: options['headers'].update(required=True), 'headers: required is True'),
    (lambda options: options['params'].update(elements='str'), "params: elements is 'str'"),
    (lambda options: options.pop('max_bytes'), 'max_bytes: defined but not documented'),
    (lambda options: options.update(proxy={'type': 'str'}), 'proxy: documented but not defined'),
])
def test_a_drifted_documentation_is_caught(drift, said):
    # The checks above are only worth their passing if they fail on a drift; each kind of drift, once.
    for documented, defined in ((fragment_options(), FETCH_AND_PARSE_OPTIONS), (build_feed_suboptions(), FEED_OPTIONS)):
        drifted = copy.deepcopy(documented)
        drift(drifted)
        found = spec_disagreements(drifted, defined)
        assert len(found) == 1 and found[0].startswith(said), found


def test_the_build_documents_every_allow_source_option_as_defined():
    """allow_feeds takes a feed's settings without its tier, with its own fail-safe; documented from the same texts."""
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.controller.feed_options import (
        ALLOW_FEED_OPTIONS)
    documented = yaml.safe_load(ModuleDocFragment.BUILD_ALLOW_FEEDS)['options']['allow_feeds']
    assert spec_disagreements(documented['suboptions'], ALLOW_FEED_OPTIONS) == []
    assert ARGUMENT_SPEC['allow_feeds']['options'] is ALLOW_FEED_OPTIONS
    assert 'tier' not in ALLOW_FEED_OPTIONS and 'required' not in FEED_OPTIONS
