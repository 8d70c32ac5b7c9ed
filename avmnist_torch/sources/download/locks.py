"""Locks between downloaders of one data root: byte ranges of one lock file, and whether a holder still runs.

=====================  ===============================  ===============================
primitive              POSIX (Linux, macOS)             Windows
=====================  ===============================  ===============================
byte-range lock        ``fcntl.lockf``; the holder's     ``msvcrt.locking``; the holder
                       pid is reported (Linux, macOS)    is not reported
process alive?         ``os.kill(pid, 0)``               ``OpenProcess`` through ctypes
=====================  ===============================  ===============================

No POSIX-only module is imported at module level: ``fcntl`` and ``msvcrt`` are looked up when
first needed, so importing the package never fails on a platform that lacks one.
"""

from __future__ import annotations

import errno
import importlib
import os
import struct
import sys
from typing import Optional

from ...common import UnsupportedPlatformError

__all__ = ["RangeLocks", "process_alive"]


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

