import os

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.backend_ipset import IpsetAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.backend_nft import NftAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import ensure_unit


def test_unit_is_installed_and_enabled_once(tmp_path):
    unit = str(tmp_path / 'system' / 'fleetwall-nft-restore.service')
    text = NftAdapter.restore_unit('/var/lib/fleetwall/nft')
    assert 'for f in /var/lib/fleetwall/nft/*.nft;' in text
    # Check mode says what would change and writes nothing.
    assert ensure_unit(unit, text, check_mode=True) is True
    assert not os.path.exists(unit)
    assert ensure_unit(unit, text) is True
    wants = tmp_path / 'system' / 'multi-user.target.wants' / 'fleetwall-nft-restore.service'
    assert os.readlink(str(wants)) == unit
    assert open(unit).read() == text and oct(os.stat(unit).st_mode & 0o777) == '0o644'
    assert ensure_unit(unit, text) is False
    # A unit for another save directory replaces it; a removed link comes back.
    other = IpsetAdapter.restore_unit('/srv/ipset')
    os.unlink(str(wants))
    assert ensure_unit(unit, other) is True
    assert 'ipset -exist restore -file' in open(unit).read() and os.readlink(str(wants)) == unit
    assert ensure_unit(unit, other) is False
