"""The downloader's own files inside a data root: its lock, its temporary trees, its markers (docs/formats.md)."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import filelock

from ...common import DownloadError, StorageError
from ...files import file_lock, host_name, io_error, os_error_reason, process_running, write_json

DOWNLOADS = ".downloads"
TMP_PREFIX = ".avmnist-tmp-"
LOCK_NAME = "download.lock"
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
_OWNER = re.compile(r"^" + re.escape(TMP_PREFIX) + r"(?P<host>\w+)-(?P<pid>\d+)-")


@contextmanager
def root_lock(downloads: Path, say: Callable[[str], None]) -> Iterator[None]:
    """Hold the lock of one downloader per data root: creates `downloads` (``ROOT/.downloads``), locks a file in it.

    A read-only root (a container image with the data baked in) is checked without a lock: no process
    can change it, and anything that would have to be written there fails naming the file. `say` gets
    one line when this process waits for another, or the root is read-only.

    Raises
    ------
    DownloadError
        When the folder cannot be made in a writable root, or the lock cannot be taken.
    """
    path = downloads / LOCK_NAME
    lock = file_lock(path)
    try:
        downloads.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            say(f"another process is downloading into {downloads.parent}; waiting for it to finish")
            lock.acquire()
    except OSError as err:
        if not (downloads.parent.is_dir() and err.errno in _READ_ONLY):
            if not downloads.is_dir():
                raise io_error(err, downloads, "creating the download folder", DownloadError) from None
            raise DownloadError(
                f"{path}: cannot lock it ({os_error_reason(err)}); this file system may not support file "
                "locks. Download from one process first (e.g. 'avmnist download --root ROOT'), then start the "
                "others.") from None
        say(f"{downloads.parent} is not writable ({err.filename or path} cannot be created); checking what "
            "is there without a lock")
    try:
        yield
    finally:
        lock.release()


def temp_tree(root: Path, target: str) -> Path:
    """A new, empty temporary folder in `root`, named after this host and process."""
    return Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{host_name()}-{os.getpid()}-{target}-", dir=root))


def remove_stale_temp_trees(root: Path, say: Callable[[str], None]) -> None:
    """Remove the temporary trees in `root` of ended processes of this machine; name other machines'."""
    foreign = []
    for tree in sorted(root.glob(TMP_PREFIX + "*")):
        owner = _OWNER.match(tree.name)
        if owner is None or not tree.is_dir():
            continue
        if owner["host"] != host_name():
            foreign.append(str(tree))
        elif not process_running(int(owner["pid"])):
            shutil.rmtree(tree, ignore_errors=True)
    if foreign:
        say(f"left {len(foreign)} temporary folder(s) of processes on other machines: {', '.join(foreign)} "
            "(remove them once those runs have ended)")


def marker_ok(downloads: Path, name: str, folder: Path) -> bool:
    """Whether part `name` verified before and `folder` still holds as many .wav files as it recorded."""
    try:
        files = json.loads((downloads / f"{name}.verified").read_text())["files"]
    except (OSError, ValueError, LookupError, TypeError):
        return False
    return folder.is_dir() and sum(1 for _ in folder.glob("*.wav")) == files


def write_marker(downloads: Path, name: str, files: int, source: str) -> None:
    """Record that part `name` verified; a root that cannot be written goes without (it only saves time)."""
    with suppress(OSError, StorageError):
        write_json(downloads / f"{name}.verified", {"files": files, "source": source})


def reject(path: Path) -> Path:
    """Move a rejected download aside (``*.rejected``) so that the next run fetches it again."""
    rejected = path.with_name(path.name + ".rejected")
    os.replace(path, rejected)
    return rejected
