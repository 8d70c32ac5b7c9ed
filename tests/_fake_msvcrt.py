"""A stand-in for Windows' ``msvcrt.locking`` on POSIX, so Linux CI runs the Windows lock route.

It follows Microsoft's documentation of ``_locking`` (and of ``LockFile`` /
``UnlockFile`` beneath it), the parts the exporter relies on:

- ``locking(fd, mode, nbytes)`` locks ``nbytes`` from the file's *current
  position*; locking past the end of the file is allowed;
- ``LK_NBLCK`` fails at once with ``OSError`` when another handle holds any of
  the bytes; ``LK_LOCK`` waits (Windows retries ten times, once a second);
- locks belong to the handle: a handle locking bytes it already holds fails
  too, where POSIX would quietly succeed. Windows would retry and then fail;
  here it raises :class:`SameHandleRelock` at once, so a test fails loudly
  instead of spinning in the caller's retry loop;
- ``LK_UNLCK`` must name exactly a region this handle locked, else ``OSError``.

Conflicts between processes are found through ``fcntl.lockf`` underneath, so
two processes using this module exclude each other as two Windows processes
would. Call :func:`forget` when a handle is closed (the tests wrap ``os.close``).
"""

from __future__ import annotations

import errno
import fcntl
import os
from typing import Dict, List, Tuple

LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = 0, 1, 2, 3, 4

_held: Dict[int, List[Tuple[int, int]]] = {}
calls: List[Tuple[int, int, int, int]] = []  # (fd, mode, start, nbytes), for tests to inspect


class SameHandleRelock(AssertionError):
    """The caller locked bytes its own handle already holds, which Windows refuses."""


def locking(fd: int, mode: int, nbytes: int) -> None:
    start = os.lseek(fd, 0, os.SEEK_CUR)
    calls.append((fd, mode, start, nbytes))
    held = _held.setdefault(fd, [])
    if mode == LK_UNLCK:
        if (start, nbytes) not in held:
            raise OSError(errno.EACCES, "unlocking a region that is not locked as one by this handle")
        held.remove((start, nbytes))
        fcntl.lockf(fd, fcntl.LOCK_UN, nbytes, start, os.SEEK_SET)
        return
    if mode not in (LK_LOCK, LK_NBLCK):
        raise ValueError(f"mode {mode} is not used by the exporter")
    if any(s < start + nbytes and start < s + n for s, n in held):
        raise SameHandleRelock(f"fd {fd} locks bytes {start}..{start + nbytes - 1} that it already holds: {held}")
    flags = fcntl.LOCK_EX | (fcntl.LOCK_NB if mode == LK_NBLCK else 0)
    try:
        fcntl.lockf(fd, flags, nbytes, start, os.SEEK_SET)
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES):
            raise OSError(errno.EACCES, "Permission denied") from None  # what _locking reports
        raise
    held.append((start, nbytes))


def forget(fd: int) -> None:
    """The handle is closed: Windows drops its locks (POSIX drops them through fcntl already)."""
    _held.pop(fd, None)


def install(monkeypatch=None) -> None:
    """Make this module the process's ``msvcrt`` and hide ``fcntl``, as on Windows.

    With pytest's ``monkeypatch`` everything is undone after the test; without
    it (a child process of a test) it stays for the life of the process.
    """
    import sys

    real_close = os.close

    def close(fd: int) -> None:
        forget(fd)
        real_close(fd)

    if monkeypatch is None:
        os.close = close
        sys.modules["msvcrt"] = sys.modules[__name__]
        sys.modules["fcntl"] = None
    else:
        monkeypatch.setattr(os, "close", close)
        monkeypatch.setitem(sys.modules, "msvcrt", sys.modules[__name__])
        monkeypatch.setitem(sys.modules, "fcntl", None)
    _held.clear()
    calls.clear()
