"""Decoded clips in a table shared by every process: computed once, memory-mapped by all.

Generating an item reads one FSDD recording and, for the noise schemes, one
ESC-50 clip resampled to 8 kHz. Both depend only on the file (and the rate), so
a :class:`ClipBank` computes each at most once and keeps it in a *clip table*:
one file per (kind, list of files, row length) under a cache folder, mapped by
every process that uses it. DataLoader workers share its pages through the OS
instead of each holding a copy, and a later run starts warm.

A row holds the first ``keep`` samples of one clip and its sample rate. Rows
are filled lazily on first use, so nothing is computed before the first item.
A row counts as filled only when its ready flag is set and its CRC matches,
checked once per process, so a crash in the middle of a write costs a
recomputation, never wrong samples. Without a cache folder each process keeps
its own rows in memory.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import warnings
import zlib
from collections import OrderedDict
from importlib import metadata
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

PathLike = Union[str, os.PathLike]
CACHE_ENV = "AVMNIST_CACHE"
_LAYOUT = "clip-table-v2"  # bump when the file layout changes: the name changes with it
Loader = Callable[[str], Tuple[np.ndarray, int]]
#: How many rows a process reads between two releases of its mapping (see ``_Table.release_now_and_then``).
RELEASE_EVERY = 256


def default_cache_dir() -> Path:
    """``$AVMNIST_CACHE``, else ``$XDG_CACHE_HOME/avmnist-torch``, else ``~/.cache/avmnist-torch``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "avmnist-torch"


def package_versions(*packages: str) -> str:
    """``name=version`` of each package, for cache keys: a new decoder or resampler means new rows."""
    found = []
    for package in packages:
        try:
            found.append(f"{package}={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{package}=?")
    return ",".join(found)


class _Table:
    """One memory-mapped table: ``n`` rows of ``keep`` float32, plus lengths, rates, CRCs and ready flags."""

    def __init__(self, path: Path, n_rows: int, keep: int) -> None:
        self.n_rows, self.keep = n_rows, keep
        data_bytes = n_rows * keep * 4
        meta_bytes = n_rows * 13  # uint32 length, uint32 rate, uint32 crc, uint8 ready
        size = data_bytes + meta_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_CREAT without O_EXCL: processes racing to create the table open the same
        # file; growing it to its size is idempotent and never drops written rows.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self.data = np.frombuffer(self._map, dtype=np.float32, count=n_rows * keep).reshape(n_rows, keep)
        meta = data_bytes
        self.lengths = np.frombuffer(self._map, dtype=np.uint32, count=n_rows, offset=meta)
        self.rates = np.frombuffer(self._map, dtype=np.uint32, count=n_rows, offset=meta + 4 * n_rows)
        self.crcs = np.frombuffer(self._map, dtype=np.uint32, count=n_rows, offset=meta + 8 * n_rows)
        self.ready = np.frombuffer(self._map, dtype=np.uint8, count=n_rows, offset=meta + 12 * n_rows)
        self.verified = np.zeros(n_rows, dtype=bool)
        self._reads = 0

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
            self._map.madvise(mmap.MADV_DONTNEED)

    def row(self, i: int) -> Optional[Tuple[np.ndarray, int]]:
        if not self.verified[i]:
            if not self.ready[i]:
                return None
            length = int(self.lengths[i])
            if length > self.keep or zlib.crc32(self.data[i, :length]) != int(self.crcs[i]):
                return None
            self.verified[i] = True
        return self.data[i, : int(self.lengths[i])], int(self.rates[i])

    def store(self, i: int, samples: np.ndarray, rate: int) -> Tuple[np.ndarray, int]:
        length = min(len(samples), self.keep)
        self.ready[i] = 0
        self.data[i, :length] = samples[:length]
        self.lengths[i] = length
        self.rates[i] = rate
        self.crcs[i] = zlib.crc32(self.data[i, :length])
        # A system call between the samples and the flag: no other process can see
        # the flag before the samples it vouches for.
        self._map.flush()
        self.ready[i] = 1
        self.verified[i] = True
        return self.data[i, :length], rate


class ClipBank:
    """Clips addressed by position in ``paths``, each loaded at most once and shared.

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
        rows in this process's memory only. A folder that cannot be written
        falls back to memory with a warning.
    key : str
        More of what the rows depend on (package versions, a target rate).
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
        self.cache_dir = default_cache_dir() if cache_dir == "auto" else (Path(cache_dir) if cache_dir else None)
        self.max_in_memory = max_in_memory
        self._table: Optional[_Table] = None
        self._opened = False
        self._memory: "OrderedDict[int, Tuple[np.ndarray, int]]" = OrderedDict()

    def __getstate__(self):
        # Workers map the table themselves; an mmap or a parent's rows never travel by pickle.
        state = self.__dict__.copy()
        state["_table"] = None
        state["_opened"] = False
        state["_memory"] = OrderedDict()
        return state

    def _open(self) -> Optional[_Table]:
        self._opened = True
        if self.cache_dir is None or not self.paths or not self.keep:
            return None
        identity = [_LAYOUT, self.kind, f"keep={self.keep}", self.key]
        for p in self.paths:
            stat = os.stat(p)
            identity.append(f"{os.path.abspath(p)}|{stat.st_size}|{stat.st_mtime_ns}")
        digest = hashlib.sha256("\n".join(identity).encode()).hexdigest()[:24]
        path = self.cache_dir / f"{self.kind}-{len(self.paths)}x{self.keep}-{digest}.f32"
        try:
            self._table = _Table(path, len(self.paths), self.keep)
        except OSError as err:
            warnings.warn(
                f"{path}: cannot use the clip cache ({err}); {self.kind} are kept in memory instead",
                RuntimeWarning,
                stacklevel=4,
            )
        return self._table

    def get(self, i: int) -> Tuple[np.ndarray, int]:
        """Clip ``i``: its first ``keep`` samples (read-only) and its sample rate."""
        table = self._table if self._opened else self._open()
        if table is not None:
            table.release_now_and_then()
            found = table.row(i)
            if found is None:
                found = table.store(i, *self.load(self.paths[i]))
            return found
        found = self._memory.get(i)
        if found is None:
            samples, rate = self.load(self.paths[i])
            if self.keep:
                samples = samples[: self.keep].copy()
            samples.setflags(write=False)
            found = self._memory[i] = (samples, rate)
            if len(self._memory) > self.max_in_memory:
                self._memory.popitem(last=False)
        else:
            self._memory.move_to_end(i)
        return found
