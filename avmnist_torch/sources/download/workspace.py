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

The lock file stays in the bookkeeping folder beside the markers (and any kept archives).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import filelock

from ...common import DownloadError, StorageError
from ...files import file_lock, os_error_reason, process_running, write_json

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


class RootLock:
    """One downloader per data root at a time; a context manager.

    A ``filelock.FileLock`` on ``ROOT/.downloads/download.lock`` (``flock`` on Linux and macOS,
    ``msvcrt`` on Windows): the one kind of lock the package takes, as for its cached files. The
    lock file stays in place; it holds nothing.

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

    def __init__(self, downloads: Path, say: Callable[[str], None]):
        self.path = downloads / LOCK_NAME
        self._say = say
        self._lock = None

    def __enter__(self) -> "RootLock":
        if not self.path.parent.is_dir():
            try:
                self.path.parent.mkdir(parents=True)
            except FileExistsError:
                pass
            except OSError:
                self._say(f"{self.path.parent.parent} is not writable (it has no .downloads folder and cannot make "
                          "one); checking what is there without a lock")
                return self
        lock = file_lock(self.path)
        try:
            try:
                lock.acquire(timeout=0)
            except filelock.Timeout:
                self._say(f"another process is downloading into {self.path.parent.parent}; waiting for it to finish")
                lock.acquire()
        except OSError as err:
            if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                self._say(f"{self.path.parent.parent} is not writable ({self.path} cannot be created); checking what "
                          "is there without a lock")
                return self
            raise DownloadError(
                f"{self.path}: cannot lock it ({os_error_reason(err)}); this file system may not support file "
                "locks. Download from one process first (e.g. 'avmnist download --root ROOT'), then start the "
                "others.") from None
        self._lock = lock
        return self

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


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
        if process_running(int(owner["pid"])):
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
        write_json(downloads / f"{name}.verified", {"files": files, "source": source})
    except (OSError, StorageError):
        pass


def reject(path: Path) -> Path:
    """Move a rejected download aside (``*.rejected``) so that the next run fetches it again."""
    rejected = path.with_name(path.name + ".rejected")
    os.replace(path, rejected)
    return rejected
