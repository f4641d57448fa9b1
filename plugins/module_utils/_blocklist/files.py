# -*- coding: utf-8 -*-
# Copyright (c) 2026, fleetwall.blocklist contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Files written so that a reader never sees half of one, temporary files that a killed run
cannot leave for good, and locks with a deadline.

Nothing here follows a symlink to write: temporary files are made with
``mkstemp`` (``O_EXCL``), a rename replaces a link rather than writing
through it, and locks are opened with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import os
import shutil
import stat
import tempfile
import time


# A path deeper than this makes os.makedirs recurse past Python's limit; no real path comes near it.
MAX_PATH_DEPTH = 64


def path_problem(path):
    """Why no file can be at ``path`` (a NUL byte, past PATH_MAX or NAME_MAX, deeper than MAX_PATH_DEPTH), or None.

    Each would end deep in the standard library (a ValueError, a RecursionError from os.makedirs, ENAMETOOLONG
    halfway through a change), so an option is checked before anything is made.
    """
    if '\x00' in path:
        return 'the path contains a NUL byte'
    encoded = path.encode('utf-8', 'surrogateescape')
    if len(encoded) > 4095 or path.count('/') > MAX_PATH_DEPTH:
        return 'the path is longer than 4095 bytes or deeper than %d directories' % MAX_PATH_DEPTH
    if any(len(name) > 255 for name in encoded.split(b'/')):
        return 'a name in the path is longer than 255 bytes'
    return None


def open_regular(path):
    """Open ``path`` for reading in binary, only if it is a regular file.

    A FIFO would block the read for ever and a device would never end, so
    the file is opened without blocking and looked at before anything is
    read. A path with a NUL byte is an OSError like any other bad path.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except ValueError:
        raise OSError(errno.EINVAL, 'the path contains a NUL byte', repr(path))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, 'not a regular file (a directory, a FIFO or a device)', path)
    os.set_blocking(fd, True)
    return os.fdopen(fd, 'rb')


def leftover_prefix(path):
    """The name prefix of ``write_atomic``'s temporary files for ``path``, so that its leftovers can be found."""
    return '.%s.tmp-' % os.path.basename(path)


def write_atomic(path, data, mode=0o644):
    """Write ``data`` (bytes, or an iterable of bytes chunks) beside the target, fsync, then rename over it."""
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=leftover_prefix(path))
    try:
        with os.fdopen(fd, 'wb') as handle:
            if isinstance(data, (bytes, bytearray, memoryview)):
                handle.write(data)
            else:
                handle.writelines(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not exc.filename:
            # A write into a full disk names no file; the operator needs to know which one.
            raise OSError(exc.errno, exc.strerror, path)
        raise


def ensure_unit(path, text, check_mode=False):
    """Install the systemd unit ``path`` with ``text`` and enable it for multi-user.target; True if anything changed.

    The link is the one ``systemctl enable`` makes, written directly so that
    it works where systemd is not running (images, containers, the lab).
    """
    changed = _ensure_file(path, text, check_mode)
    wants = os.path.join(os.path.dirname(path), 'multi-user.target.wants', os.path.basename(path))
    if not (os.path.islink(wants) and os.readlink(wants) == path):
        changed = True
        if not check_mode:
            os.makedirs(os.path.dirname(wants), 0o755, exist_ok=True)
            tmp = '%s.fleetwall-%d' % (wants, os.getpid())
            os.symlink(path, tmp)
            os.rename(tmp, wants)
    return changed


def _ensure_file(path, text, check_mode, mode=0o644):
    """Write ``text`` to ``path`` (``mode``, atomically) unless it holds it already with that mode; True if not."""
    try:
        with open(path, 'rb') as handle:
            current = handle.read()
        current_mode = stat.S_IMODE(os.stat(path).st_mode)
    except (IOError, OSError):
        current, current_mode = None, None
    if current == text.encode() and current_mode == mode:
        return False
    if not check_mode:
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
        write_atomic(path, text.encode(), mode)
    return True


def ensure_dropins(unit_dir, dropins, check_mode=False):
    """Install each drop-in (``{path relative to unit_dir: text}``, such as ``nftables.service.d/x.conf``); True if
    any changed.  Written whether or not that service is installed: a drop-in of a missing unit does nothing."""
    changed = [_ensure_file(os.path.join(unit_dir, relative), text, check_mode)
               for relative, text in sorted(dropins.items())]
    return any(changed)


def ensure_plugins(plugins, check_mode=False):
    """Install each executable plugin (``{path: text}``) of another tool, where that tool keeps its plugins: only
    where the directory exists, that is where the tool is installed; True if any changed."""
    changed = [_ensure_file(path, text, check_mode, 0o755)
               for path, text in sorted(plugins.items()) if os.path.isdir(os.path.dirname(path))]
    return any(changed)


def remove_unit(path, dropins=(), plugins=(), check_mode=False):
    """Take back what ensure_unit, ensure_dropins and ensure_plugins installed: the unit's multi-user.target.wants
    link, the unit, its drop-ins (paths relative to its directory) and the plugins, and the drop-in directories once
    empty; the paths that were there.  The link goes first, so that a unit is never enabled without its file."""
    unit_dir = os.path.dirname(path)
    wants = os.path.join(unit_dir, 'multi-user.target.wants', os.path.basename(path))
    present = [name for name in [wants, path] + [os.path.join(unit_dir, d) for d in dropins] + list(plugins)
               if os.path.lexists(name)]
    if not check_mode:
        for name in present:
            os.unlink(name)
        for relative in dropins:
            try:
                os.rmdir(os.path.dirname(os.path.join(unit_dir, relative)))
            except OSError:
                pass        # another drop-in of the operator's is there
    return present


def remove_empty_dirs_under(root, paths):
    """Remove the directories between each of ``paths`` and ``root`` (never ``root``, nothing outside it) that are
    empty but for Python's bytecode cache: what a removed boot library (XDP's) leaves in the save directory."""
    root = os.path.abspath(root)
    for path in sorted(paths, key=len, reverse=True):
        directory = os.path.dirname(os.path.abspath(path))
        while directory.startswith(root + os.sep):
            cache = os.path.join(directory, '__pycache__')
            if os.path.isdir(cache) and not os.path.islink(cache):
                shutil.rmtree(cache, ignore_errors=True)
            try:
                os.rmdir(directory)
            except OSError:
                break       # not empty: something else of the operator's is in it
            directory = os.path.dirname(directory)


def remove_leftovers(directory, prefix):
    """Remove the files named ``prefix*`` in ``directory``: what killed runs left. Returns how many.

    Call it only while holding the lock of whatever writes them, so that no
    running writer loses its file.  A link is removed, never followed.
    """
    removed = 0
    for path in glob.glob(os.path.join(glob.escape(directory), glob.escape(prefix) + '*')):
        try:
            os.unlink(path)
            removed += 1
        except OSError:
            pass  # gone already, or a directory: not ours to remove
    return removed


def remove_write_leftovers(*paths):
    """Remove the temporary files that ``write_atomic`` of each path left when it was killed."""
    return sum(remove_leftovers(os.path.dirname(path) or '.', leftover_prefix(path)) for path in paths if path)


@contextlib.contextmanager
def scratch_file(chunks, directory=None, prefix='fleetwall-'):
    """A private (0600) temporary file holding the text ``chunks``; its path, removed afterwards.

    A tool reads the batch from it (``ipset restore -file``, ``nft -f``):
    feeding a million entries through a pipe would hold them twice.  With a
    ``directory`` that the next run cleans under the same lock, a kill cannot
    leave it for good.
    """
    fd, path = tempfile.mkstemp(dir=directory, prefix=prefix)
    try:
        try:
            with os.fdopen(fd, 'w') as handle:
                for chunk in chunks:
                    handle.write(chunk)
        except OSError as exc:
            # A write into a full disk names no file; the operator needs to know which one.
            raise OSError(exc.errno, exc.strerror, exc.filename or path)
        yield path
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def trusted_owner(uid):
    """Whether a file of ``uid`` may steer this run: this user's or root's, as ssh's StrictModes has it."""
    return uid in (os.geteuid(), 0)


def _open_lock(path):
    """Open (or create, 0600) a lock file without following a link planted at its name.

    A lock file of another user would let that user hold every run back (a
    flock needs only an open file), so it is refused with what to do.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(exc.errno, 'the lock file is a symlink; refusing to follow it (remove it)', path)
        raise
    owner = os.fstat(fd).st_uid
    if not trusted_owner(owner):
        os.close(fd)
        raise OSError(errno.EPERM, 'the lock file belongs to uid %d, not to this user or root; refusing it (remove '
                      'it, and make its directory writable by this user only)' % owner, path)
    return os.fdopen(fd, 'a')


def acquire_lock(path, timeout, poll=0.1):
    """Return an open handle holding an exclusive flock on ``path``, or None after ``timeout`` seconds.

    The holder writes its pid into the file, so that a run that waits can say
    who it waits for (``lock_holder``).
    """
    handle = _open_lock(path)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except (IOError, OSError) as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                handle.close()
                return None
            time.sleep(poll)
    handle.truncate(0)
    handle.write('%d\n' % os.getpid())
    handle.flush()
    return handle


def lock_holder(path):
    """'another run (pid N) holds PATH' for a lock someone holds, from the pid its holder wrote."""
    try:
        with open(path) as handle:
            text = handle.read(32).strip()
    except (IOError, OSError):
        text = ''
    who = 'another run (pid %s)' % text if text.isascii() and text.isdigit() else 'another run'
    return '%s holds %s' % (who, path)
