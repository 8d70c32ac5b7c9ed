"""The downloader's own files inside a data root: its lock, its temporary trees, its markers.

Several processes may call ``download()`` on one root at once (every rank of a DDP job built
with ``download=True``). They take turns:

- ``ROOT/.downloads/download.lock`` is locked by whoever downloads (see `RootLock`); the
  others wait, then find the verified result and return without fetching anything. One
  writer at a time is what keeps a ``.part`` file from being appended to by two processes.
- Extraction happens in ``ROOT/.avmnist-tmp-<host>-<pid>-<target>-<random>``: each tree names
  the process that owns it. A later run removes a tree only when its owner is a process of this
  machine that no longer exists; a tree of another machine (a root on a shared file system) is
  left alone and named, because whether that process lives cannot be told from here.
- A part that verified leaves ``ROOT/.downloads/<part>.verified`` so reruns are cheap.

The lock file is removed by its holder before it lets go, so the bookkeeping folder holds only
markers (and any kept archives).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from ...common import DownloadError
from ...files import io_error
from .locks import RangeLocks, process_alive

__all__ = [
    "DOWNLOADS",
    "TMP_PREFIX",
    "RootLock",
    "temp_tree",
    "remove_stale_temp_trees",
    "marker_ok",
    "write_marker",
    "reject",
]

DOWNLOADS = ".downloads"
TMP_PREFIX = ".avmnist-tmp-"
LOCK_NAME = "download.lock"

# host and pid of the process that made a temporary tree; see temp_tree.
_OWNER = re.compile(r"^" + re.escape(TMP_PREFIX) + r"(?P<host>\w+)-(?P<pid>\d+)-")


def _host() -> str:
    # Only letters, digits and "_", so that "-" separates the name's fields unambiguously.
    return re.sub(r"\W", "_", socket.gethostname()) or "unknown"


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


class RootLock:
    """One downloader per data root at a time; a context manager.

    The lock is the operating system's own record lock on ``ROOT/.downloads/download.lock``
    (``locks.RangeLocks``: ``fcntl.lockf`` on Linux and macOS, which also holds across
    machines on NFS with a lock daemon; ``msvcrt.locking`` on Windows), plus a thread lock for
    callers in the same process, since record locks belong to a process. A lock on our own
    descriptor (rather than ``filelock``'s) is what lets the holder remove the file safely:
    after locking, a waiter checks that its descriptor is still the file at the path, and
    starts over if the previous holder removed it.

    A root that cannot be written (a read-only container image with the data baked in) is
    checked without a lock: no process can change it, and anything that would have to be
    written there fails with an error naming it.

    Parameters
    ----------
    downloads : Path
        The root's bookkeeping folder (``ROOT/.downloads``).
    say : callable
        Called with one line when this process has to wait for another, or the root is
        read-only.
    """

    _threads: dict[str, threading.Lock] = {}
    _threads_guard = threading.Lock()

    def __init__(self, downloads: Path, say: Callable[[str], None]):
        self.path = downloads / LOCK_NAME
        self._say = say
        self._fd: int | None = None
        self._locks: RangeLocks | None = None
        with self._threads_guard:
            self._thread = self._threads.setdefault(str(self.path), threading.Lock())

    def __enter__(self) -> "RootLock":
        self._thread.acquire()
        try:
            self._fd, self._locks = self._lock_file()
        except BaseException:
            self._thread.release()
            raise
        return self

    def _lock_file(self) -> tuple[int | None, RangeLocks | None]:
        said = False
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)  # umask decides
            except FileNotFoundError:
                if not self.path.parent.is_dir():
                    return self._read_only("it has no .downloads folder and cannot make one")
                continue  # removed between our check and open by a holder: try again
            except OSError as err:
                if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                    return self._read_only(f"{self.path} cannot be created")
                raise io_error(err, self.path, "creating the download lock", DownloadError) from None
            try:
                locks = RangeLocks(fd)
                if not locks.acquire(0, 1, blocking=False):
                    if not said:
                        self._say(f"another process is downloading into "
                                  f"{self.path.parent.parent}; waiting for it to finish")
                        said = True
                    locks.acquire(0, 1)
            except OSError as err:
                os.close(fd)
                raise DownloadError(
                    f"{self.path}: cannot lock it ({err.strerror or err}); this "
                    "file system may not support file locks. Download from one process first "
                    "(e.g. 'avmnist download --root ROOT'), then start the others."
                ) from None
            except BaseException:
                os.close(fd)
                raise
            if _same_file(fd, self.path):
                return fd, locks
            os.close(fd)  # the previous holder removed what we locked: it guards nothing

    def _read_only(self, why: str) -> tuple[None, None]:
        self._say(f"{self.path.parent.parent} is not writable ({why}); checking what is "
                  "there without a lock")
        return None, None

    def __exit__(self, *exc) -> None:
        try:
            if self._fd is not None:
                # Removed while still locked (see the class docstring). Windows cannot remove
                # an open file; the empty file stays there.
                if os.name != "nt":
                    with contextlib.suppress(OSError):
                        os.unlink(self.path)
                try:
                    self._locks.release(0, 1)  # Windows wants it before the close
                finally:
                    os.close(self._fd)
        finally:
            self._fd = self._locks = None
            self._thread.release()


def temp_tree(root: Path, target: str) -> Path:
    """A new, empty temporary folder in `root`, named after this host and process."""
    return Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{_host()}-{os.getpid()}-{target}-", dir=root))


def remove_stale_temp_trees(root: Path, say: Callable[[str], None]) -> list[Path]:
    """Remove the temporary trees in `root` whose owner has ended; return what was removed.

    A tree belongs to the process named in it (see `temp_tree`). It is removed only when that
    process ran on this machine and no longer exists; anything else is kept, and trees of other
    machines are named so that a user can remove them by hand once those runs are over.
    """
    removed, foreign = [], []
    host = _host()
    for tree in sorted(root.glob(TMP_PREFIX + "*")):
        owner = _OWNER.match(tree.name)
        if owner is None or not tree.is_dir():
            continue
        if owner["host"] != host:
            foreign.append(tree)
            continue
        if process_alive(int(owner["pid"])):
            continue
        shutil.rmtree(tree, ignore_errors=True)
        removed.append(tree)
    if foreign:
        say(f"left {len(foreign)} temporary folder(s) of processes on other machines: "
            + ", ".join(str(t) for t in foreign) + " (remove them once those runs have ended)")
    return removed


def marker_ok(downloads: Path, name: str, folder: Path) -> bool:
    """Whether part `name` verified before and `folder` still holds the files it recorded."""
    marker = downloads / f"{name}.verified"
    if not marker.is_file() or not folder.is_dir():
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return sum(1 for _ in folder.glob("*.wav")) == info.get("files")


def write_marker(downloads: Path, name: str, files: int, source: str) -> None:
    """Record that part `name` verified, with its file count and where it came from.

    A marker only saves the next run from verifying again, so a root that cannot be written
    (read-only, full) goes without one.
    """
    try:
        downloads.mkdir(parents=True, exist_ok=True)
        (downloads / f"{name}.verified").write_text(
            json.dumps({"files": files, "source": source}) + "\n")
    except OSError:
        pass


def reject(path: Path) -> Path:
    """Move a rejected download aside (``*.rejected``) so that the next run fetches it again."""
    rejected = path.with_name(path.name + ".rejected")
    os.replace(path, rejected)
    return rejected
