"""The downloader's own files inside a data root: its lock, its temporary trees, its markers.

Several processes may call ``download()`` on one root at once (every rank of a DDP job built
with ``download=True``). They take turns:

- ``ROOT/.downloads/download.lock`` is a file lock (``filelock``: ``flock`` on Linux and macOS,
  ``msvcrt.locking`` on Windows). Whoever holds it downloads; the others wait, then find the
  verified result and return without fetching anything. One writer at a time is what keeps a
  ``.part`` file from being appended to by two processes.
- Extraction happens in ``ROOT/.avmnist-tmp-<host>-<pid>-<target>-<random>``: each tree names
  the process that owns it. A later run removes a tree only when its owner is a process of this
  machine that no longer exists; a tree of another machine (a root on a shared file system) is
  left alone and named, because whether that process lives cannot be told from here.
- A part that verified leaves ``ROOT/.downloads/<part>.verified`` so reruns are cheap.

The lock file is removed by its holder before it lets go, so the bookkeeping folder holds only
markers (and any kept archives). That is safe because a waiter, once it holds the lock, checks
that the file it locked is still the one at the lock's path, and starts over if not.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import filelock

from ...common import DownloadError
from ...filesystem import file_lock, io_error, process_alive

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

    Parameters
    ----------
    downloads : Path
        The root's bookkeeping folder (``ROOT/.downloads``); must exist.
    say : callable
        Called with one line when this process has to wait for another.
    """

    def __init__(self, downloads: Path, say: Callable[[str], None]):
        self.path = downloads / LOCK_NAME
        self._say = say
        self._lock: filelock.BaseFileLock | None = None
        self._anchor: int | None = None

    def __enter__(self) -> "RootLock":
        said = False
        while True:
            try:
                # Held open until release: it pins the inode, so the identity check below
                # cannot be fooled by a new file reusing a removed one's inode number.
                anchor = os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o644)
            except OSError as err:
                raise io_error(err, self.path, "creating the download lock", DownloadError) from None
            lock = file_lock(self.path)
            try:
                try:
                    lock.acquire(timeout=0)
                except filelock.Timeout:
                    if not said:
                        self._say(f"another process is downloading into {self.path.parent.parent}; "
                                  "waiting for it to finish")
                        said = True
                    lock.acquire()
            except BaseException:
                os.close(anchor)
                raise
            if _same_file(anchor, self.path):
                self._lock, self._anchor = lock, anchor
                return self
            # The previous holder removed the file we had opened: what we hold guards nothing.
            lock.release()
            os.close(anchor)

    def __exit__(self, *exc) -> None:
        assert self._lock is not None and self._anchor is not None
        try:
            if os.name != "nt":  # Windows cannot remove an open file; filelock removes it there
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
        finally:
            os.close(self._anchor)
            self._lock.release()
            self._lock = self._anchor = None


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
    """Record that part `name` verified, with its file count and where it came from."""
    downloads.mkdir(parents=True, exist_ok=True)
    (downloads / f"{name}.verified").write_text(
        json.dumps({"files": files, "source": source}) + "\n")


def reject(path: Path) -> Path:
    """Move a rejected download aside (``*.rejected``) so that the next run fetches it again."""
    rejected = path.with_name(path.name + ".rejected")
    os.replace(path, rejected)
    return rejected
