# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The contract of a set backend: what the sync engine (sync.py) and the module around it (module_support.py)
call on an adapter.

A set backend (ipset, nftables, firewalld) is one subclass of SetAdapter, one module that builds it and hands it
to ``run_sync``, one role, and one entry in backends.py. Python refuses to build a subclass that leaves an
abstract method out, so a new backend cannot forget one; the methods with a body are the ones most backends need
no more of. Every adapter takes the command runner first (command_runner.run_tool in a module; a fake or a
namespace's runner in a test) and raises SyncError, never ends the module itself.
"""

from __future__ import annotations

import abc
import threading
import typing as t

if t.TYPE_CHECKING:  # pragma: no cover - for the annotations only; sync.py imports nothing from here
    from ..sync import LiveInfo, StateStore

# (args, data=None) -> (rc, stdout, stderr): command_runner.run_tool, or what a test hands in.
Runner = t.Callable[..., t.Tuple[int, str, str]]


def validate_while_loading(load: t.Callable[[threading.Event], None], validate: t.Callable[[], bool],
                           discard: t.Callable[[], None]) -> bool:
    """A first load: ``validate()`` runs here while ``load(written)`` fills a new set in a thread.

    Nothing references the new set until the run adds its rules, so loading it before validation ends is
    harmless, and the kernel's load, the long part, overlaps validation. ``load`` sets ``written`` once its
    (first) batch file is written: validation waits for that, because both need the GIL, and every step of the
    writing would otherwise wait for validation's turn while the kernel's load, started next, runs without it.

    Returns True when the set is loaded and valid. Otherwise ``discard()`` removes the new set first: False when
    validation says no (valid but not canonical input, on which the load may have failed: the caller retries
    with canonical entries), and what validation or the load raised is raised again.
    """
    failure, written = [], threading.Event()

    def load_in_thread():
        try:
            load(written)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # raised again in the caller's thread
            failure.append(exc)
        finally:
            written.set()
    loader = threading.Thread(target=load_in_thread)
    loader.start()
    written.wait()
    try:
        valid = validate()
    except BaseException:
        loader.join()
        discard()
        raise
    loader.join()
    if not valid or failure:
        discard()
        if valid:
            raise failure[0]
    return valid


class SetAdapter(abc.ABC):
    """One named set of addresses and networks in a host's firewall.

    Attributes an instance sets in ``__init__``:
      ``label``      how messages name the set (``ipset bl4``, ``nft set inet fleetwall bl4_v4_hosts``);
      ``version``    4 or 6, the family of the entries;
      ``host_only``  True when the set takes single addresses only (a plain nft set, an ipset hash:ip).
    """

    #: The backend's name in its state records (``backends.Backend.record_names``).
    backend = None  # type: str
    #: False when the backend cannot replace a whole set at once: ``apply_full`` then only creates, and every change
    #: to an existing set is the engine's add-before-remove ``apply_incremental`` (firewalld).
    replaces_whole = True
    #: (directory, prefix) of the batch files; the engine points the directory into the state directory.
    scratch = (None, 'fleetwall-')
    #: What the module says beside its result; an adapter that has something to say keeps its own list.
    warnings = ()

    # -- what the engine calls, in its order -------------------------------------------------------------------

    @abc.abstractmethod
    def fingerprint(self) -> dict:
        """What the record keeps of the set's kind (type, family, timeout ...), to know it as its own later."""

    @abc.abstractmethod
    def probe(self) -> LiveInfo:
        """The live set, cheaply: whether it exists, its entry count and fingerprint; never a full listing."""

    def identity(self, live: LiveInfo) -> object:
        """What else vouches that the live set is the one the record describes, where a count is not enough (a
        handle that a reload changes); None when the count is the whole check."""
        return None

    @abc.abstractmethod
    def incompatible(self, live: LiveInfo) -> t.Optional[str]:
        """Why the live set cannot be taken over as it is (another type or family), or None."""

    @abc.abstractmethod
    def read_entries(self) -> t.Set[str]:
        """Every entry of the live set, in canonical form: the full listing, read only when the record cannot
        stand in for it (a mismatch, or ``verify``)."""

    @abc.abstractmethod
    def apply_full(self, desired: t.Iterable[str], live: LiveInfo,
                   validate: t.Optional[t.Callable[[], bool]] = None) -> bool:
        """Make the set hold exactly ``desired``, atomically: a packet sees the old set or the new one.

        ``validate`` (a first load only) runs while the kernel loads; when it returns False the new set is
        removed and this returns False, else True.
        """

    @abc.abstractmethod
    def apply_incremental(self, added: t.Iterable[str], removed: t.Iterable[str]) -> None:
        """Add, then remove, in one batch where the backend allows it; adds first, so nothing listed passes."""

    def preview_creation(self) -> None:
        """In check mode, for a set that does not exist yet: add to ``warnings`` what creating it would do beyond
        the set (firewalld's reload); most backends' creation does nothing else."""

    @abc.abstractmethod
    def destroy(self) -> bool:
        """Remove the set (``state: absent``); True when there was one."""

    # -- persistence: what a boot restores --------------------------------------------------------------------

    @abc.abstractmethod
    def save_to(self, path: str, write_atomic: t.Callable[..., None], store: StateStore) -> None:
        """Write what the boot unit restores for this set to ``path``, from ``store``'s record of what was
        applied; raise SyncError where the backend keeps its own (firewalld's permanent configuration)."""

    def save_paths(self, persist: str, every: bool = False) -> t.List[str]:
        """The files ``save_to`` writes for ``persist``; with ``every``, any it may have written before."""
        return [persist]

    def restore_unit(self, save_dir: str) -> str:
        """The systemd unit that restores every save file in ``save_dir`` at boot."""
        raise NotImplementedError('%s keeps no save files' % type(self).__name__)

    def restore_dropins(self, save_dir: str) -> t.Dict[str, str]:
        """{drop-in path relative to the unit directory: text}: restores after other services (Docker)."""
        return {}

    def restore_plugins(self, save_dir: str) -> t.Dict[str, str]:
        """{path: text} of other tools' plugins that put the rules back after that tool restored a ruleset."""
        return {}

    def saved_rulesets_naming(self) -> t.List[str]:
        """The saved rulesets of other tools that still name the set (a removal warns of them)."""
        return []


class SetRules(abc.ABC):
    """The rules that make a set block: put in after the set exists, taken out before it goes, so that no rule
    ever points at nothing. The module's ``build`` hands one to ``run_sync`` beside its adapter.

    Both methods return the list of what changed, empty when nothing did (in check mode, what would); a list may
    carry ``warnings`` (iptables_rules.RuleChanges) for the module to pass on.
    """

    @abc.abstractmethod
    def ensure(self, rules: t.List[dict], check_mode: bool = False, verify: bool = False) -> t.List[str]:
        """Make the set's rules exactly ``rules`` (the module's ``rules`` option); ``verify`` asks the kernel
        rather than trusting a record of the last run."""

    @abc.abstractmethod
    def remove(self, check_mode: bool = False) -> t.List[str]:
        """Take every rule of the set out (``state: absent``)."""

    def report(self) -> dict:
        """What the result says of the rules beyond their changes, after ``ensure`` (XDP's attach modes)."""
        return {}


class NoRules(SetRules):
    """A set whose module was given no ``rules``, on a host that has no tool to hold any: nothing to keep."""

    def ensure(self, rules, check_mode=False, verify=False):
        return []

    def remove(self, check_mode=False):
        return []
