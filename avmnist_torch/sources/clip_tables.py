"""Decoded clips in a table every process reads: built whole once, then read with positioned reads.

A :class:`ClipBank` keeps what an item reads of a file (an FSDD recording, an ESC-50 clip resampled to
8 kHz) in a *clip table* in the cache folder, built once under a lock by the first process that needs it
and read by all (``docs/formats.md``, "Clip tables"). Without a usable folder each process keeps the
clips it decoded in memory, with one :class:`ClipCacheWarning` per folder.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import warnings
from collections import OrderedDict
from importlib import metadata
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
from tqdm.auto import tqdm

from ..common import PathLike, StorageError, __version__
from ..cache_folder import describe_sources
from ..files import CACHE_ENV, FileWriter, StoredFile, default_cache_dir, open_cached, open_or_make

_LAYOUT = "clip-table-v4"  # bump when the file layout changes: the name changes with it
_REMEDY = "it is built again on next use"
_MAX_IN_MEMORY = 4096  # clips a bank without a table keeps (least recently used go first)
#: Tables up to this size are read whole into each process's memory when opened; larger ones row by row.
WHOLE_TABLE_BYTES = 256 << 20

__all__ = ["ClipBank", "ClipCacheWarning", "package_versions", "resolve_cache_dir", "worker_state"]


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
    """``"auto"`` is :func:`~avmnist_torch.files.default_cache_dir`, None stays None, a path is a path."""
    if cache_dir is None:
        return None
    return default_cache_dir() if isinstance(cache_dir, str) and cache_dir == "auto" else Path(cache_dir)


#: Folders this process found unusable: later tables there go to memory without another warning.
_unusable: Set[str] = set()


def _give_up_on(folder: Path, why: str) -> None:
    key = os.path.abspath(folder)
    if key in _unusable:
        return
    _unusable.add(key)
    # DataLoader workers meet the same folder: worker 0 speaks for all
    data = getattr(getattr(sys.modules.get("torch"), "utils", None), "data", None)
    worker = data.get_worker_info() if data is not None else None
    if worker is None or worker.id == 0:
        warnings.warn(
            f"cannot use the clip cache in {folder}: {why}; this process keeps clips in memory instead (slower, "
            f"and a copy per DataLoader worker). Choose a writable folder with ${CACHE_ENV} or the dataset's "
            "clip_tables= option; clip_tables=None keeps clips in memory without this warning",
            ClipCacheWarning, stacklevel=5)


def worker_state(bank: object, **fresh) -> dict:
    """What a bank pickles as: its fields, ``fresh`` over them (what each process makes itself), and its
    ``cache_dir`` None when this process already warned about that folder, so that workers go straight to memory."""
    state = dict(bank.__dict__, **fresh)
    if state["cache_dir"] is not None and os.path.abspath(state["cache_dir"]) in _unusable:
        state["cache_dir"] = None
    return state


class _Table:
    """A finished table: rows are views of its bytes when read whole (DataLoader workers forked afterwards
    share the pages), else read one by one."""

    def __init__(self, stored: StoredFile, index: np.ndarray, data: Optional[np.ndarray]) -> None:
        self.stored = stored
        # plain lists: indexing them costs a tenth of indexing the array, and every item reads a row
        self._offsets, self._lengths, self._rates = (index[:, k].tolist() for k in range(3))
        if data is not None:
            data.flags.writeable = False  # rows are handed out as views of it
        self._data = data

    @classmethod
    def open(cls, path: Path, n_rows: int) -> Optional["_Table"]:
        """The table at ``path``, checked; None when it is not there or not whole."""
        found = open_cached(path, {"layout": _LAYOUT, "rows": n_rows}, _REMEDY, WHOLE_TABLE_BYTES)
        if found is None:
            return None
        stored, _, data = found
        index = np.frombuffer(stored.read(0, 24 * n_rows) if data is None else data[:24 * n_rows],
                              dtype="<u8").reshape(n_rows, 3)
        return cls(stored, index, data)

    def row(self, i: int, start: int = 0, stop: Optional[int] = None) -> Tuple[np.ndarray, int]:
        length = self._lengths[i]
        stop = length if stop is None or stop > length else stop
        if self._data is not None:
            offset = self._offsets[i]
            return self._data[offset + 4 * start:offset + 4 * max(start, stop)].view(np.float32), self._rates[i]
        samples = np.empty(max(0, stop - start), dtype=np.float32)
        self.stored.read_into(samples, self._offsets[i] + 4 * start)
        samples.flags.writeable = False
        return samples, self._rates[i]


def _build(path: Path, clips: List[Tuple[np.ndarray, int]], sidecar: dict) -> None:
    n = len(clips)
    index = np.zeros((n, 3), dtype="<u8")
    offset = 24 * n
    for i, (samples, rate) in enumerate(clips):
        index[i] = (offset, len(samples), rate)
        offset += 4 * len(samples)
    with FileWriter(path, size=offset) as writer:
        writer.append(index)
        for samples, _ in clips:
            writer.append(np.ascontiguousarray(samples, dtype="<f4"))
        writer.commit(sidecar)


class ClipBank:
    """Clips addressed by position in ``paths``, each decoded once and shared through a clip table.

    Safe to use from several threads at once.

    Parameters
    ----------
    paths : sequence of paths
        The clips, in order.
    load : callable
        ``load(path) -> (float32 samples, sample rate)``; a pure function of the file (picklable).
    kind : str
        Names the table (``"recordings"``, ``"noise-8000hz"``), and enters its key with ``key``.
    keep : int, optional
        How many samples of each clip any item can need (its start); None keeps whole clips.
    cache_dir : path, "auto" or None
        Where the table lives; "auto" is the cache folder, None keeps clips in each process's memory.
    key : str
        More of what the rows depend on (package versions, a target rate).
    """

    def __init__(self, paths: Sequence[PathLike], load: Callable[[str], Tuple[np.ndarray, int]], *, kind: str,
                 keep: Optional[int] = None, cache_dir: Union[PathLike, str, None] = "auto", key: str = "") -> None:
        self.paths: List[str] = [str(p) for p in paths]
        self.load = load
        self.kind = kind
        self.keep = keep
        self.key = key
        self.cache_dir = resolve_cache_dir(cache_dir)
        self._lock = threading.Lock()
        self._table: Optional[_Table] = None
        self._opened = False
        self._memory: "OrderedDict[int, Tuple[np.ndarray, int]]" = OrderedDict()

    def __getstate__(self):  # each process opens (and checks) the table itself
        return worker_state(self, _lock=None, _table=None, _opened=False, _memory=OrderedDict())

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _open_or_build(self) -> Optional[_Table]:
        if self.cache_dir is None or not self.paths or os.path.abspath(self.cache_dir) in _unusable:
            return None
        identity = {"layout": _LAYOUT, "kind": self.kind, "keep": self.keep, "key": self.key,
                    "avmnist_torch": __version__, "sources": describe_sources(self.paths)}
        digest = hashlib.sha256(repr(sorted(identity.items())).encode()).hexdigest()[:24]
        path = self.cache_dir / f"{self.kind}-{len(self.paths)}x{self.keep or 'all'}-{digest}.f32"
        sidecar = dict(identity, what="clip table", rows=len(self.paths))
        try:
            table = open_or_make(path, lambda: _Table.open(path, len(self.paths)),
                                 lambda: _build(path, self._load_all(), sidecar))
        except StorageError as err:
            _give_up_on(self.cache_dir, str(err))
            return None
        if table is None:
            _give_up_on(self.cache_dir, f"{path} was written but does not read back as written")
        return table

    def _load_all(self) -> List[Tuple[np.ndarray, int]]:
        bar = tqdm(self.paths, desc=f"building the {self.kind} clip table", unit="clip", file=sys.stderr,
                   disable=None, leave=False)  # closes itself when the clips are loaded
        return [(samples[: self.keep] if self.keep else samples, rate) for samples, rate in map(self.load, bar)]

    def get(self, i: int, start: int = 0, stop: Optional[int] = None) -> Tuple[np.ndarray, int]:
        """Clip ``i``: its first ``keep`` samples (read-only), or ``[start:stop]`` of them (only that part is read
        from a table), and its sample rate."""
        if not self._opened:
            with self._lock:
                if not self._opened:
                    self._table = self._open_or_build()
                    self._opened = True
        table = self._table
        if table is not None:
            try:
                return table.row(i, start, stop)
            except StorageError as err:  # changed under this process: keep serving right bytes, from memory
                _give_up_on(self.cache_dir, str(err))
                self._table = None
        samples, rate = self._in_memory(i)
        return samples[start:stop], rate

    def length(self, i: int) -> int:
        """How many samples :meth:`get` gives for clip ``i`` (read from the table's index when there is one)."""
        self.get(i, 0, 0)
        table = self._table
        return table._lengths[i] if table is not None else len(self._in_memory(i)[0])

    def _in_memory(self, i: int) -> Tuple[np.ndarray, int]:
        with self._lock:
            found = self._memory.get(i)
            if found is not None:
                self._memory.move_to_end(i)
                return found
        samples, rate = self.load(self.paths[i])
        samples = samples[: self.keep].copy() if self.keep else samples
        samples.setflags(write=False)
        with self._lock:
            found = self._memory.setdefault(i, (samples, rate))
            if len(self._memory) > _MAX_IN_MEMORY:
                self._memory.popitem(last=False)
        return found
