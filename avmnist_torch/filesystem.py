"""Portable file-system primitives: the cache folder, locks, space reservation, atomic writes.

Everything here works on Linux, macOS and Windows, and what differs between
them is said where it differs:

=====================  ===============================  ===============================
primitive              POSIX (Linux, macOS)             Windows
=====================  ===============================  ===============================
whole-file lock        ``filelock`` (``flock``)          ``filelock`` (``msvcrt``)
byte-range lock        ``fcntl.lockf``; the holder's     ``msvcrt.locking``; the holder
                       pid is reported (Linux, macOS)    is not reported
space reservation      ``posix_fallocate`` (Linux);      zeros written over the range
                       zeros written where it is absent
                       (macOS) or not supported
process alive?         ``os.kill(pid, 0)``               ``OpenProcess`` through ctypes
=====================  ===============================  ===============================

No POSIX-only module is imported at module level: ``fcntl`` and ``msvcrt``
are looked up when first needed, so importing the package never fails on a
platform that lacks one.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import json
import logging
import os
import re
import struct
import sys
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

from .common import CacheError, PathLike, StorageError, UnsupportedPlatformError

#: Environment variable that overrides the cache folder.
CACHE_ENV = "AVMNIST_CACHE"
_APP = "avmnist-torch"
_ZERO_BLOCK = 1 << 20


# ----------------------------------------------------------------------------
# cache folder


def default_cache_dir() -> Path:
    """Where the package keeps its shared tables: ``$AVMNIST_CACHE``, else the platform's user cache folder.

    The platform folder comes from ``platformdirs``: ``~/.cache/avmnist-torch``
    on Linux (``$XDG_CACHE_HOME`` respected), ``~/Library/Caches/avmnist-torch``
    on macOS, ``%LOCALAPPDATA%\\avmnist-torch\\Cache`` on Windows.
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    import platformdirs  # a small pure-Python package; imported here so a missing one names itself on use

    return Path(platformdirs.user_cache_dir(_APP, appauthor=False))


# ----------------------------------------------------------------------------
# errors


def os_error_reason(err: OSError) -> str:
    """Why a write failed, in plain words: "no space left on device", "disk quota exceeded", ..."""
    if err.errno == errno.ENOSPC:
        return "no space left on device"
    if err.errno == getattr(errno, "EDQUOT", -1):
        return "disk quota exceeded"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "not writable (permission denied or read-only file system)"
    return os.strerror(err.errno) if err.errno else str(err)


def io_error(err: OSError, path: PathLike, doing: str, cls: type = StorageError) -> StorageError:
    """A package error naming ``path``, what was being done and, in plain words, why it failed."""
    return cls(f"{path}: {os_error_reason(err)} while {doing}")


# ----------------------------------------------------------------------------
# atomic writes


def fsync_dir(folder: PathLike) -> None:
    """Make a rename in ``folder`` durable where the platform can (not on Windows, where it need not)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory; the rename is still atomic
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: PathLike, data: Mapping[str, Any]) -> None:
    """Write JSON so that ``path`` holds either the old content or all of the new."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def pwrite_all(fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (``os.pwrite`` where it exists, seek and write elsewhere)."""
    view = memoryview(data)
    pwrite = getattr(os, "pwrite", None)
    while view:
        if pwrite is not None:
            n = pwrite(fd, view, offset)
        else:  # Windows: no pwrite; the fd is this process's own, so seek+write is safe
            os.lseek(fd, offset, os.SEEK_SET)
            n = os.write(fd, view)
        if n == 0:
            raise OSError(errno.EIO, "short write")
        view = view[n:]
        offset += n


# ----------------------------------------------------------------------------
# space reservation


def reserve_space(fd: int, size: int) -> str:
    """Allocate every block of the file behind ``fd`` up to ``size`` bytes; returns how.

    A file grown with ``ftruncate`` alone is sparse: writing into it later
    through a memory map on a full disk kills the process with SIGBUS, and
    through ``write`` fails half way. Reserving the blocks now turns both into
    one ``OSError`` (``ENOSPC``/``EDQUOT``) here.

    Returns ``"fallocate"`` where ``posix_fallocate`` did it (Linux), else
    ``"zeros"``: the bytes past the current end are written as zeros (macOS,
    Windows, and file systems without fallocate). Existing content is never
    overwritten.
    """
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None:
        try:
            fallocate(fd, 0, size)
            return "fallocate"
        except OSError as err:
            if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
    current = os.fstat(fd).st_size
    if current < size:
        block = bytes(min(_ZERO_BLOCK, size - current))
        offset = current
        while offset < size:
            n = min(len(block), size - offset)
            pwrite_all(fd, block[:n], offset)
            offset += n
    return "zeros"


# ----------------------------------------------------------------------------
# locks


def file_lock(path: PathLike, timeout: float = -1):
    """A whole-file, inter-process lock at ``path`` (``filelock.FileLock``), portable and re-entrant.

    Use it as a context manager. ``timeout=-1`` waits as long as it takes;
    a timeout raises :class:`LockedError`-compatible ``filelock.Timeout``.
    """
    import filelock

    return filelock.FileLock(str(path), timeout=timeout)


def _module(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


class RangeLocks:
    """Byte-range locks on one open file: the OS's own, on POSIX and on Windows.

    POSIX record locks (``fcntl.lockf``) belong to the process: closing any fd
    of the file drops all of them, and one process cannot lock against itself.
    Windows locks (``msvcrt.locking``) belong to the handle. Callers that keep
    one fd per file and one user per process per file (as the download workspace does)
    see the same behaviour on both.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._fcntl, self._msvcrt = self._backends()

    @staticmethod
    def _backends():
        fcntl = _module("fcntl")
        msvcrt = None if fcntl is not None else _module("msvcrt")
        if fcntl is None and msvcrt is None:
            raise UnsupportedPlatformError(
                f"byte-range file locks are not available on {sys.platform} (neither fcntl nor msvcrt); "
                "exports and downloads need them to keep processes apart: run them on Linux, macOS or Windows "
                "(datasets work here without them)"
            )
        return fcntl, msvcrt

    @classmethod
    def check_available(cls) -> None:
        """Raise :class:`UnsupportedPlatformError` where there are no byte-range locks (before any file is made)."""
        cls._backends()

    @property
    def reports_holder(self) -> bool:
        """Whether :meth:`holder_pid` can name the process holding a lock (POSIX only)."""
        return self._fcntl is not None

    def acquire(self, start: int, length: int, blocking: bool = True) -> bool:
        """Lock ``[start, start+length)``; False when ``blocking`` is off and another holds part of it."""
        if self._fcntl is not None:
            flags = self._fcntl.LOCK_EX | (0 if blocking else self._fcntl.LOCK_NB)
            try:
                self._fcntl.lockf(self.fd, flags, length, start, os.SEEK_SET)
                return True
            except OSError as err:
                if not blocking and err.errno in (errno.EAGAIN, errno.EACCES):
                    return False
                raise
        msvcrt = self._msvcrt
        mode = msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK
        while True:
            os.lseek(self.fd, start, os.SEEK_SET)
            try:
                msvcrt.locking(self.fd, mode, length)
                return True
            except OSError as err:
                # Contention is EACCES (LK_NBLCK) or EDEADLOCK (LK_LOCK after ten one-second
                # tries); anything else (a bad fd or range) is a real error, not "held".
                if err.errno not in _CONTENTION:
                    raise
                if not blocking:
                    return False
                # LK_LOCK gave up; keep waiting as POSIX does.

    def release(self, start: int, length: int) -> None:
        if self._fcntl is not None:
            self._fcntl.lockf(self.fd, self._fcntl.LOCK_UN, length, start, os.SEEK_SET)
            return
        os.lseek(self.fd, start, os.SEEK_SET)
        try:
            self._msvcrt.locking(self.fd, self._msvcrt.LK_UNLCK, length)
        except OSError:
            pass  # not held: nothing to release

    def holder_pid(self, start: int, length: int) -> Optional[int]:
        """The pid holding a lock that conflicts with ``[start, start+length)``, where the OS says (POSIX)."""
        fcntl = self._fcntl
        if fcntl is None:
            return None
        layout = _flock_layout()
        if layout is None:
            return None
        fmt, fields = layout
        values = {"l_type": fcntl.F_WRLCK, "l_whence": os.SEEK_SET, "l_start": start, "l_len": length, "l_pid": 0}
        try:
            res = fcntl.fcntl(self.fd, fcntl.F_GETLK, struct.pack(fmt, *(values[f] for f in fields)))
            got = dict(zip(fields, struct.unpack(fmt, res[: struct.calcsize(fmt)])))
        except (OSError, struct.error):
            return None
        return got["l_pid"] if got["l_type"] != fcntl.F_UNLCK and got["l_pid"] > 0 else None


_CONTENTION = (errno.EACCES, errno.EAGAIN, errno.EDEADLK, getattr(errno, "EDEADLOCK", errno.EDEADLK))


def _flock_layout():
    """``struct flock`` for F_GETLK: field order and sizes differ between Linux and the BSDs (macOS)."""
    if sys.platform.startswith("linux"):
        return "hhqqi4x", ("l_type", "l_whence", "l_start", "l_len", "l_pid")
    if sys.platform == "darwin" or "bsd" in sys.platform:
        return "qqihh", ("l_start", "l_len", "l_pid", "l_type", "l_whence")
    return None


# ----------------------------------------------------------------------------
# processes


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (True when it cannot be told)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if os.name == "nt":
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        try:
            code = ctypes.c_ulong()
            if kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return code.value == 259  # STILL_ACTIVE
            return True
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return True
    return True


def check_writable_dir(folder: PathLike, what: str, cls: type = StorageError) -> Path:
    """Create ``folder`` if needed and check it is writable, or raise ``cls`` naming it and ``what`` it is for."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise io_error(err, folder, f"creating the {what}", cls) from None
    if not os.access(folder, os.W_OK):
        raise cls(f"{folder}: the {what} is not writable; choose another folder or fix its permissions")
    return folder


# ----------------------------------------------------------------------------
# waiting for another process, and what dead ones leave behind

_log = logging.getLogger("avmnist_torch")
#: How long a process waits on a lock before saying whom it waits for.
LOCK_NOTICE_SECONDS = 5.0
_TEMPORARY = re.compile(r"^\..+\.tmp-(?P<pid>\d+)(?:-\d+)?$")


def _owner_file(lock_path: Path) -> Path:
    return lock_path.with_name(lock_path.name + ".owner")


@contextlib.contextmanager
def announced_lock(path: PathLike, what: str, notice_after: Optional[float] = None) -> Iterator[None]:
    """Hold the whole-file lock at ``path``; a process kept waiting says whom it waits for, and keeps waiting.

    After ``notice_after`` seconds (default :data:`LOCK_NOTICE_SECONDS`) of
    waiting, a warning goes to the ``avmnist_torch`` logger (stderr unless
    logging is configured otherwise) naming the lock file, the process holding
    it (its pid, written beside the lock while held, where known) and ``what``
    it is doing; then once a minute while the wait lasts. The holder's pid
    file (``<lock>.owner``) is removed before the lock is released.
    """
    import filelock

    path = Path(path)
    lock = file_lock(path)
    waited = 0.0
    step = LOCK_NOTICE_SECONDS if notice_after is None else notice_after
    while True:
        try:
            lock.acquire(timeout=step)
            break
        except filelock.Timeout:
            waited += step
            holder = _read_owner(path)
            who = f"process {holder}" if holder is not None else "another process (its pid is not recorded)"
            if holder is not None and not process_alive(holder):
                who = f"process {holder} (no longer running: the lock is released as soon as the OS notices)"
            _log.warning("avmnist-torch: waiting %.0f s for %s, which holds %s (%s); still waiting",
                         waited, who, path, what)
            step = 60.0
    owner = _owner_file(path)
    try:
        try:
            owner.write_text(str(os.getpid()))
        except OSError:
            pass  # only ever used to name the holder in a message
        yield
    finally:
        try:
            owner.unlink()
        except OSError:
            pass
        lock.release()


def _read_owner(lock_path: Path) -> Optional[int]:
    try:
        text = _owner_file(lock_path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def temporary_owner(name: str) -> Optional[int]:
    """The pid in the name of a temporary file this package writes (``.<name>.tmp-<pid>[-<thread>]``), or None."""
    found = _TEMPORARY.match(name)
    return int(found["pid"]) if found else None


def leftover_temporaries(folder: PathLike) -> list:
    """Temporary files in ``folder`` whose writer is no longer running: what a killed process left behind.

    Only this machine's processes can be asked; a folder shared between
    machines may list a file another machine is still writing as left over.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        pid = temporary_owner(entry.name)
        if pid is not None and entry.is_file() and not process_alive(pid):
            found.append(Path(entry.path))
    return found


__all__ = [
    "CACHE_ENV",
    "LOCK_NOTICE_SECONDS",
    "announced_lock",
    "leftover_temporaries",
    "temporary_owner",
    "CacheError",
    "RangeLocks",
    "check_writable_dir",
    "default_cache_dir",
    "file_lock",
    "fsync_dir",
    "io_error",
    "os_error_reason",
    "process_alive",
    "pwrite_all",
    "reserve_space",
    "write_json_atomic",
]
