import os
import shutil
import subprocess

import pytest

from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_ipset import IpsetAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_nft import NftAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.host.backend_xdp import XdpAdapter
from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import ensure_unit

SYSTEMD_ANALYZE = shutil.which('systemd-analyze')


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


# Debian 12's nftables.service, and stand-ins with the [Unit] sections of its ifupdown networking.service and of
# cloud-init's network stage (tests/data/systemd): their ordering lines are what makes a boot-time cycle.
SYSTEMD_STAND_INS = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'data', 'systemd')


def verify_units(tmp_path, unit_name, text, dropins=None):
    """``systemd-analyze verify`` of our unit and drop-ins beside the stand-ins, as systemd would order them at
    boot (a drop-in's lines are checked as part of the unit it extends)."""
    for name in os.listdir(SYSTEMD_STAND_INS):
        shutil.copy(os.path.join(SYSTEMD_STAND_INS, name), str(tmp_path / name))
    (tmp_path / unit_name).write_text(text)
    for relative, dropin in (dropins or {}).items():
        (tmp_path / relative).parent.mkdir(exist_ok=True)
        (tmp_path / relative).write_text(dropin)
    proc = subprocess.run([SYSTEMD_ANALYZE, 'verify', '--man=no', unit_name, 'networking.service',
                           'cloud-init.service', 'nftables.service', 'netfilter-persistent.service'], cwd=str(tmp_path),
                          env=dict(os.environ, SYSTEMD_UNIT_PATH=str(tmp_path) + ':'), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason='systemd-analyze is not installed')
@pytest.mark.parametrize('unit_name, adapter, save_dir', [
    ('fleetwall-nft-restore.service', NftAdapter, '/var/lib/fleetwall/nft'),
    ('fleetwall-ipset-restore.service', IpsetAdapter, '/var/lib/fleetwall/ipset'),
    ('fleetwall-xdp-restore.service', XdpAdapter, '/var/lib/fleetwall/xdp'),
])
def test_restore_units_make_no_ordering_cycle_at_boot(tmp_path, unit_name, adapter, save_dir):
    text = adapter.restore_unit(save_dir)
    rc, out = verify_units(tmp_path, unit_name, text, adapter.restore_dropins(save_dir))
    # A bad line in a unit or drop-in is a message naming the file, with rc 0 all the same.
    assert rc == 0 and 'cycle' not in out and '.conf:' not in out and '.service:' not in out, out
    # The check can fail: the nft unit as it was (default dependencies, so after sysinit.target) makes the cycle
    # that systemd breaks by deleting a job, ours or cloud-init's.
    rc, out = verify_units(tmp_path, unit_name, text.replace('DefaultDependencies=no\n', ''))
    assert rc != 0 and 'Found ordering cycle' in out, out


def test_a_removed_boot_library_leaves_no_directory_behind_but_keeps_what_else_is_there(tmp_path):
    from ansible_collections.fleetwall.blocklist.plugins.module_utils._blocklist.files import remove_empty_dirs_under
    library = tmp_path / 'xdp' / 'lib' / 'fleetwall_xdp'
    (library / '__pycache__').mkdir(parents=True)
    (library / '__pycache__' / 'bpf.cpython-311.pyc').write_bytes(b'')
    (tmp_path / 'xdp' / 'keep').mkdir()
    remove_empty_dirs_under(str(tmp_path / 'xdp'), [str(library / 'bpf.py'), str(tmp_path / 'xdp' / 'lib' / 'restore.py')])
    assert sorted(os.listdir(str(tmp_path / 'xdp'))) == ['keep']
    (library).mkdir(parents=True)
    (library / 'operator.txt').write_text('mine')
    remove_empty_dirs_under(str(tmp_path / 'xdp'), [str(library / 'bpf.py')])
    assert (library / 'operator.txt').exists()
    remove_empty_dirs_under(str(tmp_path / 'xdp'), [str(tmp_path / 'elsewhere' / 'x.py')])
    assert (tmp_path / 'xdp').exists()
