"""Atomic file replacement that survives kills, races and full disks.

A file is written under a temporary name in its destination's directory,
``.<name>.<12 hex digits>.tmp``, fsynced and renamed over the destination, so
a reader sees either the old file or the new one, never part of one, and
concurrent writers to one path each leave a complete file (the last rename
wins).

A save killed halfway leaves its temporary file behind.  The next successful
save to the same path removes it, but only when no process is writing it: a
writer holds an exclusive ``flock`` on its temporary file for as long as it
writes, and the cleaner deletes only files whose lock it can take.  The
writer re-checks after locking that its file is still linked, which closes
the short window between creating the file and locking it.  Where ``fcntl``
is missing (Windows) an open file cannot be deleted anyway, so the cleaner
just tries.

Every failure (disk full, permission lost, directory removed) raises the
same ``OSError`` subclass with a message that names the path, the cause and
the fix; the temporary file is removed and the destination is untouched.
"""

from __future__ import annotations

import errno
import os
import re
import secrets

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, and open files cannot be unlinked
    fcntl = None

_CHUNK = 1 << 22  # bytes per os.write call (one call may write less than asked)
_HINTS = {
    errno.ENOSPC: "the disk is full: free some space or save somewhere else",
    errno.EDQUOT: "the disk quota is exceeded: free some space or save somewhere else",
    errno.EACCES: "permission denied: make the directory writable or save somewhere else",
    errno.EPERM: "the operation is not permitted: check the directory's permissions",
    errno.EROFS: "the file system is read-only: save somewhere else",
    errno.ENOENT: "the directory was removed while saving: create it again (os.makedirs)",
    errno.EIO: "an input/output error occurred: check the disk",
}


def temp_pattern(path):
    """The regular expression that the temporary files of `path` match."""
    return re.compile(rf"^\.{re.escape(os.path.basename(path))}\.[0-9a-f]{{12}}\.tmp$")


def write(path, data):
    """Write the bytes `data` to `path` atomically; remove stale temporaries of `path`.

    Raises ``OSError`` (its subclass for the cause) naming `path`, after which
    `path` is exactly as before.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, f"Cannot save to {path!r}: the directory "
                                f"{directory!r} does not exist. Create it first "
                                f"(os.makedirs).")
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"Cannot save to {path!r}: it is a directory. "
                                f"Give a file name, e.g. "
                                f"{os.path.join(path, 'model.polymlp')!r}.")
    tmp, fd = None, None
    try:
        tmp, fd = _create_locked(directory, path)
        view = memoryview(data)
        while view:
            written = os.write(fd, view[:_CHUNK])
            view = view[written:]
        os.fsync(fd)
        os.replace(tmp, path)
        tmp = None  # renamed: nothing left to remove
    except OSError as exc:
        raise _explained(exc, path) from exc
    finally:
        if fd is not None:
            os.close(fd)  # also releases the lock
        if tmp is not None:
            _unlink_quietly(tmp)
    _fsync_directory(directory)
    clean_stale(path)
    return path


def _create_locked(directory, path):
    """A new temporary file for `path`, created exclusively and locked: ``(name, fd)``."""
    base = os.path.basename(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        # O_EXCL: never clobber; mode 0o666 lets the umask decide, as for any new file.
        fd = os.open(tmp, flags, 0o666)
        if fcntl is None:
            return tmp, fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(tmp, fd):
                return tmp, fd
        except BaseException:
            os.close(fd)
            _unlink_quietly(tmp)
            raise
        # A cleaner removed it between os.open and flock (it looked abandoned): retry.
        os.close(fd)


def _same_file(name, fd):
    try:
        st = os.stat(name)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def clean_stale(path, pattern=None):
    """Remove the temporary files of `path` that no process is writing; their count.

    With `pattern` (a compiled regex of file names), those of every file in
    `path`'s directory whose name it matches.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if pattern is None:
        pattern = temp_pattern(path)
    else:
        pattern = re.compile(rf"^\.(?:{pattern.pattern.lstrip('^').rstrip('$')})"
                             rf"\.[0-9a-f]{{12}}\.tmp$")
    try:
        names = [n for n in os.listdir(directory) if pattern.match(n)]
    except OSError:
        return 0
    removed = 0
    for name in names:
        removed += _remove_if_abandoned(os.path.join(directory, name))
    return removed


def _remove_if_abandoned(tmp):
    if fcntl is None:
        return _unlink_quietly(tmp)
    try:
        fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0  # locked: a live writer
        # Still the file we locked (not a new one that reused the name)? Then it is abandoned.
        return _unlink_quietly(tmp) if _same_file(tmp, fd) else 0
    finally:
        os.close(fd)


def _unlink_quietly(name):
    try:
        os.unlink(name)
        return 1
    except OSError:
        return 0


def _explained(exc, path):
    """`exc` again (same class and errno), with a message naming `path`, cause and fix."""
    cause = exc.strerror or str(exc) or type(exc).__name__
    hint = _HINTS.get(exc.errno, "see the cause above")
    message = (f"Cannot save to {path!r}: {cause} ({hint}). Nothing was changed: the "
               f"previous file at that path, if any, is intact.")
    try:
        if exc.errno is not None:
            return type(exc)(exc.errno, message)
        return type(exc)(message)
    except TypeError:  # an OSError subclass with another constructor
        return OSError(exc.errno, message)


def _fsync_directory(directory):
    # Makes the rename itself durable on POSIX; not possible (nor needed) on Windows.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
