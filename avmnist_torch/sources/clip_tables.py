"""Decoded clips in a table shared by every process: computed once, memory-mapped by all.

Generating an item reads one FSDD recording and, for the noise schemes, one
ESC-50 clip resampled to 8 kHz. Both depend only on the file (and the rate), so
a :class:`ClipBank` computes each at most once and keeps it in a *clip table*:
one file per (kind, list of files, row length, package version) under a cache
folder, mapped by every process that uses it. DataLoader workers share its
pages through the OS instead of each holding a copy, and a later run starts warm.

A row holds at most the first ``keep`` samples of one clip (the whole clip when
``keep`` is None) and its sample rate; rows are as long as their clips and are
appended behind an index, so a table costs what its clips cost. Rows are filled
lazily, on first use, so nothing is computed before the first item. A row
counts as filled only when its ready flag is set and its CRC, which covers its
samples, position, length and rate, matches; that is checked once per process,
so a crash in the middle of a write costs a recomputation, never wrong samples.
A row corrupted on disk after a process checked it is trusted by that process.
Without a cache folder each process keeps its own rows in memory.

Where the tables live
    ``$AVMNIST_CACHE`` if set, else the platform's user cache folder
    (:func:`~avmnist_torch.filesystem.default_cache_dir`), else the folder given
    as the dataset's ``clip_tables``. Each table ``<kind>-<rows>x<keep>-<key>.f32``
    has a small description beside it (``.json``: kind, source folders and
    files, row count, package version, creation time); its modification time is
    the table's last use (touched once per process when the table is opened).
    :func:`list_tables`, :func:`prune_tables` and :func:`clear_tables` (and the
    ``avmnist cache`` command built on them) show and remove them.

Full disks
    A table's index, and each step by which it grows, is reserved
    (:func:`~avmnist_torch.filesystem.reserve_space`) before it is written
    through the map, so a full disk or an exhausted quota shows up as an
    ``OSError`` when the table is opened or grows, instead of killing a
    DataLoader worker with SIGBUS ("Unexpected bus error") when a write into a
    sparse page finds no block. A table that cannot be reserved is removed again
    (if it was never completed) and clips are kept in memory, with one
    :class:`ClipCacheWarning` naming the folder, the
    size needed and how to choose another folder: once per folder and process,
    and in a DataLoader only from worker 0 (the others meet the same disk). On
    copy-on-write file systems (btrfs, ZFS) a reservation cannot promise space
    for later overwrites; keep the cache on another file system there if the
    disk may fill up.

Versions and sources
    The key includes this package's version and the versions of the decoding
    and resampling libraries, so a fix to either never reuses old rows, and
    each source's size, modification and change times and inode, read by every
    process that opens the table (a forked DataLoader worker too), so a file
    edited in place gets a new table even with its size and modification time
    kept.
"""

from __future__ import annotations

import errno
import hashlib
import json
import mmap
import os
import re
import struct
import sys
import threading
import time
import warnings
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..common import CacheError, PathLike, __version__
from ..filesystem import (
    CACHE_ENV,
    default_cache_dir,
    file_lock,
    io_error,
    pwrite_all,
    reserve_space,
    write_json_atomic,
)

_LAYOUT = "clip-table-v3"  # bump when the file layout changes: the name changes with it
Loader = Callable[[str], Tuple[np.ndarray, int]]
#: How many rows a process reads between two releases of its mapping (see ``_Table.release_now_and_then``).
RELEASE_EVERY = 256
TABLE_SUFFIX = ".f32"
DESCRIPTION_SUFFIX = ".json"
#: Serialises creating, reserving and removing tables within one cache folder (never removed itself).
FOLDER_LOCK = ".clip-tables.lock"
_TABLE_NAME = re.compile(r"^(?P<kind>.+)-(?P<rows>\d+)x(?P<keep>\d+|all)-(?P<digest>[0-9a-f]{24})\.f32$")
_NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


class ClipCacheWarning(RuntimeWarning):
    """A clip table cannot be used (full disk, unwritable folder); clips are kept in memory instead."""


def package_versions(*packages: str) -> str:
    """``name=version`` of each package, for cache keys: a new decoder or resampler means new rows."""
    found = []
    for package in packages:
        try:
            found.append(f"{package}={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{package}=?")
    return ",".join(found)


def resolve_cache_dir(cache_dir: Union[PathLike, str, None]) -> Optional[Path]:
    """``"auto"`` is :func:`default_cache_dir`, None stays None (memory only), anything else a path."""
    if cache_dir is None:
        return None
    if isinstance(cache_dir, str) and cache_dir == "auto":
        return default_cache_dir()
    return Path(cache_dir)


def _human(n_bytes: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------
# one folder's state in this process

_folder_lock = threading.Lock()
#: Cache folders this process found unusable (full, unwritable): later tables there go to memory
#: without another warning, and banks pickled to workers carry that decision with them.
_unusable_folders: Dict[str, str] = {}


def _folder_key(folder: Path) -> str:
    return os.path.abspath(folder)


def _in_secondary_dataloader_worker() -> bool:
    """Whether this process is a PyTorch DataLoader worker other than worker 0.

    Every worker of a DataLoader meets the same full folder; worker 0 speaks for
    all of them. torch is looked up, not imported: a process without it is no worker.
    """
    torch = sys.modules.get("torch")
    get_worker_info = getattr(getattr(getattr(torch, "utils", None), "data", None), "get_worker_info", None)
    info = get_worker_info() if get_worker_info is not None else None
    return info is not None and getattr(info, "id", 0) != 0


def _give_up_on(folder: Path, message: str) -> None:
    """Remember ``folder`` as unusable and warn about it: once per folder per process, once per DataLoader."""
    with _folder_lock:
        first = _folder_key(folder) not in _unusable_folders
        _unusable_folders.setdefault(_folder_key(folder), message)
    if first and not _in_secondary_dataloader_worker():
        warnings.warn(message, ClipCacheWarning, stacklevel=5)


def folder_found_unusable(cache_dir: Union[PathLike, str, None]) -> bool:
    """Whether this process already fell back to memory for ``cache_dir`` (see :class:`ClipCacheWarning`)."""
    folder = resolve_cache_dir(cache_dir)
    return folder is not None and _folder_key(folder) in _unusable_folders


# ----------------------------------------------------------------------------
# one table

_HEADER = struct.Struct("<8sQQQ")  # magic, rows, keep (0: whole clips), end of the data written so far
_MAGIC = b"AVMCLIP3"
_HEADER_BYTES = 64
#: One row's entry in the index: where its samples are, how many, their rate, the check, the flag.
_ENTRY = np.dtype([("offset", "<u8"), ("length", "<u4"), ("rate", "<u4"), ("crc", "<u4"), ("ready", "u1"),
                   ("pad", "V3")])
#: A table grows by at least this much at a time (or an eighth of its size), so reservations are few.
GROW_BYTES = 1 << 18


def _align8(n: int) -> int:
    return (n + 7) & ~7


def _data_start(n_rows: int) -> int:
    return _align8(_HEADER_BYTES + _ENTRY.itemsize * n_rows)


def table_bytes(n_rows: int, keep: int = 0, lengths: Sequence[int] = ()) -> int:
    """Bytes a table of ``n_rows`` rows needs: its header and index, plus the samples of ``lengths``.

    Rows are as long as their clips (at most ``keep`` samples; ``keep`` 0 or None: whole clips).
    """
    return _data_start(n_rows) + sum(_align8(4 * (min(n, keep) if keep else n)) for n in lengths)


def _row_crc(i: int, samples: np.ndarray, offset: int, rate: int) -> int:
    """The row check: the samples and every field that says how to read them (row, offset, length, rate)."""
    crc = zlib.crc32(samples)
    return zlib.crc32(struct.pack("<QQII", i, offset, len(samples), rate), crc)



def _description_path(table: Path) -> Path:
    return table.with_suffix(DESCRIPTION_SUFFIX)


def _identity(st: os.stat_result) -> Tuple[int, int, int, int]:
    """What says a source file is the one a row was made from: size, modification and change times, inode.

    The change time (``st_ctime_ns``; creation time on Windows) moves on every
    write and cannot be set back as the modification time can (``touch -d``,
    ``cp -p``, ``os.utime``), so a file edited in place with its size and
    modification time kept still gets a new table. A chmod or a new hard link
    moves it too: that costs a recomputation, never bytes.
    """
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _describe(kind: str, paths: Sequence[str], stats: Sequence[os.stat_result], keep: int, key: str) -> dict:
    """What the sidecar says: enough to list the table and to tell whether its sources are still there."""
    folders: List[str] = []
    files = []
    for p, st in zip(paths, stats):
        folder, name = os.path.split(os.path.abspath(p))
        if folder not in folders:
            folders.append(folder)
        files.append([folders.index(folder), name, *_identity(st)])
    return {
        "what": "avmnist-torch clip table",
        "layout": _LAYOUT,
        "kind": kind,
        "rows": len(paths),
        "keep": keep,
        "package_version": __version__,
        "key": key,
        "created": time.time(),
        "sources": folders,
        "files": files,
    }


def _remove_file(path: Path) -> None:
    """Remove ``path`` if it is there (a seam for tests of platforms that refuse to remove open files)."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


class _Table:
    """One memory-mapped table: a header, an index of ``n`` rows, then each filled row's samples.

    Rows are appended where the data written so far ends, under the folder lock, so
    a table costs what its clips cost. The file grows by reserved steps
    (:func:`~avmnist_torch.filesystem.reserve_space`), so a write through the map
    never lands on a page without a block.
    """

    def __init__(self, path: Path, n_rows: int, keep: Optional[int], description: Callable[[], dict]) -> None:
        self.path = path
        self.n_rows, self.keep = n_rows, keep or 0
        self._base = _data_start(n_rows)
        path.parent.mkdir(parents=True, exist_ok=True)
        sidecar = _description_path(path)
        self._lock_path = path.parent / FOLDER_LOCK
        # One creator at a time per folder: the header and index are reserved before
        # anyone maps the file, so no process ever writes into an unreserved page.
        with file_lock(self._lock_path):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
            try:
                st = os.fstat(fd)
                fresh = not self._header_ok(fd, st.st_size)
                size = max(st.st_size, self._base)
                blocks = getattr(st, "st_blocks", None)  # absent on Windows
                try:
                    if fresh or not sidecar.exists():
                        write_json_atomic(sidecar, description())
                    # A short or sparse file gets its blocks now, or fails here with ENOSPC/EDQUOT
                    # instead of SIGBUS in a worker later. A table already whole is left alone: where
                    # posix_fallocate is emulated (NFSv3), it would write into rows others are filling.
                    if st.st_size < size or (blocks is not None and blocks * 512 < size):
                        reserve_space(fd, size)
                    if fresh:  # a new table (or one whose header is not this layout's): empty index
                        pwrite_all(fd, bytes(self._base), 0)
                        pwrite_all(fd, _HEADER.pack(_MAGIC, n_rows, self.keep, self._base), 0)
                except OSError:
                    if fresh and st.st_size == 0:  # never complete, so nobody maps it: give the space back
                        _remove_file(path)
                        _remove_file(sidecar)
                    raise
            except BaseException:
                os.close(fd)
                raise
        self._fd = fd
        self._map: Optional[mmap.mmap] = None
        self._old_maps: List[mmap.mmap] = []
        try:
            os.utime(sidecar)  # last use: once per process per table
        except OSError:
            pass
        self._remap()
        #: Rows this process has checked: views into the map (a shared file mapping refaults
        #: with the same bytes after ``release_now_and_then``).
        self._rows: Dict[int, Tuple[np.ndarray, int]] = {}
        self._reads = 0

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _header_ok(self, fd: int, size: int) -> bool:
        if size < self._base:
            return False
        os.lseek(fd, 0, os.SEEK_SET)
        head = os.read(fd, _HEADER.size)
        if len(head) < _HEADER.size:
            return False
        magic, rows, keep, end = _HEADER.unpack(head)
        return magic == _MAGIC and rows == self.n_rows and keep == self.keep and self._base <= end <= size

    def _remap(self) -> None:
        """Map the whole file as it is now; views of an older map stay valid (it lives while they do)."""
        size = os.fstat(self._fd).st_size
        if getattr(self, "_map", None) is not None:
            self._old_maps.append(self._map)  # rows checked earlier are views of it
        self._map = mmap.mmap(self._fd, size, access=mmap.ACCESS_WRITE)
        self._size = size
        self.index = np.frombuffer(self._map, dtype=_ENTRY, count=self.n_rows, offset=_HEADER_BYTES)

    def release_now_and_then(self) -> None:
        """Every ``RELEASE_EVERY`` reads, drop this process's mapping of the table (not the file).

        Reading a few kB of a row makes the kernel map up to 64 kB around it
        (fault-around), so a worker that visits every row would end up with the
        whole table resident. Dropping the mappings now and then keeps a worker
        at a few hundred rows; the data stay in the page cache, shared, and a
        later read just maps them again. Safe while a caller still holds a row:
        a shared file mapping refaults with the same bytes.
        """
        self._reads += 1
        if self._reads % RELEASE_EVERY == 0 and hasattr(mmap, "MADV_DONTNEED"):
            for mapped in (*self._old_maps, self._map):
                mapped.madvise(mmap.MADV_DONTNEED)

    def _checked(self, i: int) -> Optional[Tuple[np.ndarray, int]]:
        """Row ``i`` if its flag is set and its check matches every field, else None."""
        entry = self.index[i].copy()  # one snapshot: another process may be writing the entry
        if not entry["ready"]:
            return None
        offset, length, rate = int(entry["offset"]), int(entry["length"]), int(entry["rate"])
        if offset < self._base or offset % 4 or (self.keep and length > self.keep):
            return None
        end = offset + 4 * length
        if end > self._size:
            self._remap()
            if end > self._size:
                return None
        samples = np.frombuffer(self._map, dtype=np.float32, count=length, offset=offset)
        if _row_crc(i, samples, offset, rate) != int(entry["crc"]):
            return None
        samples.setflags(write=False)
        return samples, rate

    def row(self, i: int) -> Optional[Tuple[np.ndarray, int]]:
        found = self._rows.get(i)
        if found is None:
            found = self._checked(i)
            if found is not None:
                self._rows[i] = found
        return found

    def store(self, i: int, samples: np.ndarray, rate: int) -> Tuple[np.ndarray, int]:
        """Append row ``i`` (unless another process did meanwhile); OSError when the disk is full."""
        samples = np.ascontiguousarray(samples[: self.keep] if self.keep else samples, dtype=np.float32)
        with file_lock(self._lock_path):
            found = self._checked(i)
            if found is not None:
                self._rows[i] = found
                return found
            end = int(np.frombuffer(self._map, dtype="<u8", count=1, offset=24)[0])
            offset = _align8(max(end, self._base))
            stop = offset + 4 * len(samples)
            if stop > os.fstat(self._fd).st_size:
                size = os.fstat(self._fd).st_size
                reserve_space(self._fd, max(stop, size + max(GROW_BYTES, size // 8)))
            if stop > self._size:
                self._remap()
            index = self.index
            index["ready"][i] = 0
            row = np.frombuffer(self._map, dtype=np.float32, count=len(samples), offset=offset)
            row[:] = samples
            index["offset"][i], index["length"][i], index["rate"][i] = offset, len(samples), rate
            index["crc"][i] = _row_crc(i, row, offset, rate)
            np.frombuffer(self._map, dtype="<u8", count=1, offset=24)[0] = stop
            # A system call between the row and its flag: no other process can see the
            # flag before the samples it vouches for (and the check catches a torn read).
            os.fstat(self._fd)
            index["ready"][i] = 1
        row.setflags(write=False)
        self._rows[i] = (row, rate)
        return row, rate


class ClipBank:
    """Clips addressed by position in ``paths``, each loaded at most once and shared.

    Safe to use from several threads at once: the table is opened once under a
    lock, rows are stored under it, and the in-memory rows are an LRU guarded
    by it (loading a clip happens outside the lock).

    Parameters
    ----------
    paths : sequence of paths
        The clips, in order; rows are addressed by position.
    load : callable
        ``load(path) -> (float32 samples, sample rate)``; a pure function of the file.
    kind : str
        Names the table and enters its key (e.g. ``"recordings"``, ``"noise-8000hz"``),
        together with whatever else the loaded samples depend on (``key``).
    keep : int, optional
        How many samples of each clip any item can need; longer clips keep only
        their start. None: whole clips, in memory only.
    cache_dir : path, "auto" or None
        Where the table lives. "auto" is :func:`default_cache_dir`; None keeps
        rows in this process's memory only. A folder that cannot be written, or
        has no room for the table, falls back to memory with one
        :class:`ClipCacheWarning` per folder and process.
    key : str
        More of what the rows depend on (package versions, a target rate).
    max_in_memory : int
        How many clips a bank without a table keeps (least recently used go first).
    """

    def __init__(
        self,
        paths: Sequence[PathLike],
        load: Loader,
        *,
        kind: str,
        keep: Optional[int] = None,
        cache_dir: Union[PathLike, str, None] = "auto",
        key: str = "",
        max_in_memory: int = 4096,
    ) -> None:
        self.paths: List[str] = [str(p) for p in paths]
        self.load = load
        self.kind = kind
        self.keep = keep
        self.key = key
        self.cache_dir = resolve_cache_dir(cache_dir)
        self.max_in_memory = max_in_memory
        self._lock = threading.Lock()
        self._table: Optional[_Table] = None
        self._opened = False
        self._pid = os.getpid()
        self._memory: "OrderedDict[int, Tuple[np.ndarray, int]]" = OrderedDict()

    def __getstate__(self):
        # Workers map the table themselves; an mmap, a lock or a parent's rows never travel by pickle.
        state = self.__dict__.copy()
        del state["_lock"]
        state["_table"] = None
        state["_opened"] = False
        state["_pid"] = None
        state["_memory"] = OrderedDict()
        if folder_found_unusable(self.cache_dir):
            state["cache_dir"] = None  # this process already warned: workers go straight to memory
        return state

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def table_path(self) -> Optional[Path]:
        """The file this bank's table lives in, or None when its rows stay in memory."""
        if self.cache_dir is None or not self.paths:
            return None
        return self._locate()[0]

    def _locate(self) -> Tuple[Path, List[os.stat_result]]:
        stats = [os.stat(p) for p in self.paths]
        identity = [_LAYOUT, self.kind, f"keep={self.keep}", self.key, f"avmnist-torch={__version__}"]
        for p, st in zip(self.paths, stats):
            identity.append("|".join(map(str, [os.path.abspath(p), *_identity(st)])))
        digest = hashlib.sha256("\n".join(identity).encode()).hexdigest()[:24]
        assert self.cache_dir is not None
        rows = f"{len(self.paths)}x{self.keep or 'all'}"
        return self.cache_dir / f"{self.kind}-{rows}-{digest}{TABLE_SUFFIX}", stats

    def _open(self) -> Optional[_Table]:
        if self.cache_dir is None or not self.paths:
            return None
        if folder_found_unusable(self.cache_dir):
            return None
        path, stats = self._locate()
        try:
            return _Table(
                path, len(self.paths), self.keep, lambda: _describe(self.kind, self.paths, stats, self.keep, self.key)
            )
        except OSError as err:
            size = table_bytes(len(self.paths))
            self._give_up(err, path, f"reserving {_human(size)} for the index of the {self.kind} clip table")
            return None

    def _give_up(self, err: OSError, path: Path, doing: str) -> None:
        assert self.cache_dir is not None
        advice = (
            "free space there, or choose another folder with $" + CACHE_ENV + " or the dataset's clip_tables= "
            "option (clip_tables=None keeps clips in memory without this warning)"
            if err.errno in _NO_SPACE
            else "choose a writable folder with $" + CACHE_ENV + " or the dataset's clip_tables= option "
            "(clip_tables=None keeps clips in memory without this warning)"
        )
        _give_up_on(
            self.cache_dir,
            f"cannot use the clip cache in {self.cache_dir}: {io_error(err, path, doing, CacheError)}; "
            f"clip tables there are kept in each process's memory for the rest of this process instead "
            f"(slower, and a copy per DataLoader worker). To share them, {advice}.",
        )

    def _table_or_none(self) -> Optional[_Table]:
        if self._pid != os.getpid():
            # A forked DataLoader worker inherits the parent's open table and checks: it
            # opens the table itself, so its sources and rows are checked in this process too.
            # The parent's lock may have been held by one of its threads at the fork: a fresh one.
            self._lock = threading.Lock()
            self._table, self._opened, self._pid = None, False, os.getpid()
        if not self._opened:
            with self._lock:
                if not self._opened:
                    self._table = self._open()
                    self._opened = True  # only once _table is what it will stay
        return self._table

    def get(self, i: int) -> Tuple[np.ndarray, int]:
        """Clip ``i``: its first ``keep`` samples (read-only) and its sample rate."""
        table = self._table_or_none()
        if table is not None:
            table.release_now_and_then()
            found = table.row(i)
            if found is None:
                samples, rate = self.load(self.paths[i])
                with self._lock:
                    try:
                        found = table.row(i) or table.store(i, samples, rate)
                    except OSError as err:  # the disk filled up: this row and later ones stay in memory
                        size = _human(4 * len(samples[: self.keep] if self.keep else samples))
                        self._give_up(err, table.path, f"adding a row of {size} to the {self.kind} clip table")
                        self._table = None
                        found = None
                if found is not None:
                    return found
                return self._remember(i, samples, rate)
            return found
        with self._lock:
            found = self._memory.get(i)
            if found is not None:
                self._memory.move_to_end(i)
                return found
        samples, rate = self.load(self.paths[i])
        return self._remember(i, samples, rate)

    def _remember(self, i: int, samples: np.ndarray, rate: int) -> Tuple[np.ndarray, int]:
        if self.keep:
            samples = samples[: self.keep].copy()
        samples.setflags(write=False)
        with self._lock:
            found = self._memory.get(i)
            if found is None:
                found = self._memory[i] = (samples, rate)
                if len(self._memory) > self.max_in_memory:
                    self._memory.popitem(last=False)
        return found


# ----------------------------------------------------------------------------
# listing and removing tables


@dataclass(frozen=True)
class TableInfo:
    """One clip table in a cache folder, as :func:`list_tables` finds it.

    Attributes
    ----------
    path : Path
        The table file (its description is the ``.json`` beside it).
    kind : str
        ``"recordings"``, ``"noise-8000hz"``, ...
    size_bytes : int
        Bytes the table takes (all reserved when it was made).
    sources : list of str
        The folders its clips were read from (empty when it has no description:
        tables made before tables described themselves).
    sources_present : bool
        Whether every file its rows were made from is still there, unchanged
        (same size and modification time), i.e. whether a dataset could use it
        again. False for a moved, deleted or touched data tree, and for a table
        without a description.
    rows : int
        How many clips it holds.
    last_used : float
        When a process last opened it (seconds since the epoch).
    """

    path: Path
    kind: str
    size_bytes: int
    sources: List[str]
    sources_present: bool
    rows: int
    last_used: float


def _read_description(path: Path) -> Optional[dict]:
    try:
        with open(path) as f:
            found = json.load(f)
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _sources_unchanged(description: dict) -> bool:
    try:
        folders = [str(f) for f in description["sources"]]
        for k, name, *identity in description["files"]:
            if list(_identity(os.stat(os.path.join(folders[k], name)))) != identity:
                return False
    except (OSError, KeyError, IndexError, TypeError, ValueError):
        return False
    return True


def _table_info(path: Path) -> Optional[TableInfo]:
    named = _TABLE_NAME.match(path.name)
    if named is None:
        return None
    try:
        st = path.stat()
    except OSError:  # removed meanwhile
        return None
    sidecar = _description_path(path)
    description = _read_description(sidecar)
    last_used = st.st_mtime
    try:
        last_used = max(last_used, sidecar.stat().st_mtime)
    except OSError:
        pass
    sources: List[str] = []
    if description is not None and isinstance(description.get("sources"), list):
        sources = [str(s) for s in description["sources"]]
    return TableInfo(
        path=path,
        kind=named["kind"],
        size_bytes=st.st_size,
        sources=sources,
        sources_present=description is not None and _sources_unchanged(description),
        rows=int(named["rows"]),
        last_used=last_used,
    )


def list_tables(cache_dir: Optional[PathLike] = None) -> List[TableInfo]:
    """The clip tables in ``cache_dir`` (default: :func:`default_cache_dir`), oldest use first."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not folder.is_dir():
        return []
    found = [info for info in map(_table_info, sorted(folder.glob("*" + TABLE_SUFFIX))) if info is not None]
    return sorted(found, key=lambda info: (info.last_used, info.path.name))


def _remove_tables(cache_dir: Optional[PathLike], which: Callable[[TableInfo], bool]) -> List[TableInfo]:
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not folder.is_dir():
        return []
    removed = []
    try:
        lock = file_lock(folder / FOLDER_LOCK)
        lock.acquire()
    except OSError as err:
        raise io_error(err, folder / FOLDER_LOCK, "locking the clip tables folder", CacheError) from None
    try:
        for info in list_tables(folder):
            if not which(info):
                continue
            try:
                # POSIX: a process that has the table mapped keeps its pages; the space is
                # freed when it lets go. Windows refuses to remove a mapped file.
                _remove_file(info.path)
            except OSError as err:
                warnings.warn(
                    f"{info.path}: not removed ({os.strerror(err.errno) if err.errno else err}); it is probably "
                    "in use by a running process (Windows cannot remove a file while it is mapped): "
                    "stop the processes using it and run this again",
                    ClipCacheWarning,
                    stacklevel=3,
                )
                continue
            try:
                _remove_file(_description_path(info.path))
            except OSError:
                pass  # a description without its table is ignored by list_tables
            removed.append(info)
    finally:
        lock.release()
    return removed


def clear_tables(cache_dir: Optional[PathLike] = None) -> List[TableInfo]:
    """Remove every clip table in ``cache_dir`` (default: :func:`default_cache_dir`); returns the removed ones.

    A table that cannot be removed (Windows: in use by a running process) is
    reported with a :class:`ClipCacheWarning` and left in place.
    """
    return _remove_tables(cache_dir, lambda info: True)


def prune_tables(cache_dir: Optional[PathLike] = None) -> List[TableInfo]:
    """Remove the clip tables no dataset can use again: sources deleted, moved or changed, or no description.

    Returns the removed ones; see :func:`clear_tables` for tables in use.
    """
    return _remove_tables(cache_dir, lambda info: not info.sources_present)


def format_tables(tables: Sequence[TableInfo]) -> str:
    """A table for people: size, kind, rows, last use and sources of each clip table, and the total."""
    if not tables:
        return "no clip tables"
    rows = [("size", "kind", "rows", "last use", "sources")]
    for info in tables:
        sources = ", ".join(info.sources) if info.sources else "(unknown: made by an older version)"
        if info.sources and not info.sources_present:
            sources += "  (gone or changed)"
        rows.append(
            (
                _human(info.size_bytes),
                info.kind,
                str(info.rows),
                time.strftime("%Y-%m-%d %H:%M", time.localtime(info.last_used)),
                sources,
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    lines = [
        "  ".join([r[0].rjust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2]), r[3].ljust(widths[3]), r[4]])
        for r in rows
    ]
    total = sum(info.size_bytes for info in tables)
    lines.append(f"{_human(total)} in {len(tables)} table{'s' if len(tables) != 1 else ''}")
    return "\n".join(lines)


__all__ = [
    "CACHE_ENV",
    "ClipBank",
    "ClipCacheWarning",
    "TableInfo",
    "clear_tables",
    "default_cache_dir",
    "format_tables",
    "list_tables",
    "package_versions",
    "prune_tables",
    "resolve_cache_dir",
    "table_bytes",
]
