"""Noise clips resampled to the recordings' rate: computed once per clip, shared by every worker.

The notebook loads and resamples a 5 s, 44.1 kHz ESC-50 clip for every item
(about 2.7 ms). The result depends only on the clip and the target rate, so it
is computed at most once per clip and kept in a *noise table*: one file per
(noise list, rate) under a cache folder, memory-mapped by every process that
uses it. DataLoader workers share its pages through the OS instead of each
holding a copy, and a later run starts warm.

A row holds the first ``keep`` samples of one resampled clip, ``keep`` being the
longest recording of the split: no item ever needs more noise than that (a
shorter clip is stored whole, so tiling it stays exact). Rows are filled lazily
on first use, so nothing is computed before the first item. A row counts as
filled only when its ready flag is set and its CRC matches, checked once per
process, so a crash in the middle of a write costs a recomputation, never
wrong samples. Without a cache folder each process keeps its own rows in memory.
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
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from .. import dsp
from .audio import load_wav

PathLike = Union[str, os.PathLike]
CACHE_ENV = "AVMNIST_CACHE"


def default_cache_dir() -> Path:
    """``$AVMNIST_CACHE``, else ``$XDG_CACHE_HOME/avmnist-torch``, else ``~/.cache/avmnist-torch``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "avmnist-torch"


def resample_noise(path: PathLike, target_rate: int) -> np.ndarray:
    """Load a noise clip and resample it to ``target_rate`` exactly as the notebook does.

    ``librosa.load(path, sr=None)`` then ``librosa.resample(orig_sr=native,
    target_sr=target_rate)`` with librosa's default soxr_hq; ``dsp.resample`` is
    that call without librosa's overhead (tested byte-identical).
    """
    samples, rate = load_wav(path)
    return dsp.resample(samples, rate, target_rate)


def _versions() -> str:
    found = []
    for package in ("soxr", "numpy"):
        try:
            found.append(f"{package}={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{package}=?")
    return ",".join(found)


class _Table:
    """One memory-mapped noise table: ``n`` rows of ``keep`` float32, plus lengths, CRCs and ready flags."""

    def __init__(self, path: Path, n_rows: int, keep: int) -> None:
        self.n_rows, self.keep = n_rows, keep
        data_bytes = n_rows * keep * 4
        meta_bytes = n_rows * 9  # uint32 length, uint32 crc, uint8 ready
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
        self.lengths = np.frombuffer(self._map, dtype=np.uint32, count=n_rows, offset=data_bytes)
        self.crcs = np.frombuffer(self._map, dtype=np.uint32, count=n_rows, offset=data_bytes + 4 * n_rows)
        self.ready = np.frombuffer(self._map, dtype=np.uint8, count=n_rows, offset=data_bytes + 8 * n_rows)
        self.verified = np.zeros(n_rows, dtype=bool)

    def row(self, i: int) -> Optional[np.ndarray]:
        if not self.verified[i]:
            if not self.ready[i]:
                return None
            length = int(self.lengths[i])
            if length > self.keep or zlib.crc32(self.data[i, :length]) != int(self.crcs[i]):
                return None
            self.verified[i] = True
        return self.data[i, : int(self.lengths[i])]

    def store(self, i: int, samples: np.ndarray) -> np.ndarray:
        length = min(len(samples), self.keep)
        self.ready[i] = 0
        self.data[i, :length] = samples[:length]
        self.lengths[i] = length
        self.crcs[i] = zlib.crc32(self.data[i, :length])
        # A system call between the samples and the flag: no other process can see
        # the flag before the samples it vouches for.
        self._map.flush()
        self.ready[i] = 1
        self.verified[i] = True
        return self.data[i, :length]


class NoiseBank:
    """The resampled noise clips of one split.

    Parameters
    ----------
    paths : sequence of paths
        The split's noise clips, in order; rows are addressed by position.
    keep : int, optional
        How many samples of each resampled clip any item can need (the longest
        recording). None keeps whole clips.
    cache_dir : path, "auto" or None
        Where the noise table lives. "auto" is :func:`default_cache_dir`; None
        keeps rows in this process's memory only. A folder that cannot be
        written falls back to memory with a warning.
    """

    def __init__(
        self,
        paths: Sequence[PathLike],
        *,
        keep: Optional[int] = None,
        cache_dir: Union[PathLike, str, None] = "auto",
        max_in_memory: int = 4096,
    ) -> None:
        self.paths: List[str] = [str(p) for p in paths]
        self.keep = keep
        self.cache_dir = default_cache_dir() if cache_dir == "auto" else (Path(cache_dir) if cache_dir else None)
        self.max_in_memory = max_in_memory
        self._tables: Dict[int, Optional[_Table]] = {}
        self._memory: "OrderedDict[tuple, np.ndarray]" = OrderedDict()

    def __getstate__(self):
        # Workers map the table themselves; an mmap or a parent's rows never travel by pickle.
        state = self.__dict__.copy()
        state["_tables"] = {}
        state["_memory"] = OrderedDict()
        return state

    def _table(self, rate: int) -> Optional[_Table]:
        if rate in self._tables:
            return self._tables[rate]
        table = None
        if self.cache_dir is not None and self.paths and self.keep:
            identity = [f"rate={rate}", f"keep={self.keep}", _versions()]
            for p in self.paths:
                stat = os.stat(p)
                identity.append(f"{os.path.abspath(p)}|{stat.st_size}|{stat.st_mtime_ns}")
            digest = hashlib.sha256("\n".join(identity).encode()).hexdigest()[:24]
            path = self.cache_dir / f"noise-{rate}hz-{len(self.paths)}x{self.keep}-{digest}.f32"
            try:
                table = _Table(path, len(self.paths), self.keep)
            except OSError as err:
                warnings.warn(
                    f"{path}: cannot use the noise cache ({err}); resampled noise is kept in memory instead",
                    RuntimeWarning,
                    stacklevel=3,
                )
        self._tables[rate] = table
        return table

    def get(self, noise_id: int, rate: int) -> np.ndarray:
        """Noise ``noise_id`` resampled to ``rate``: its first ``keep`` samples, read-only."""
        table = self._table(rate)
        if table is not None:
            row = table.row(noise_id)
            if row is None:
                row = table.store(noise_id, resample_noise(self.paths[noise_id], rate))
            return row
        key = (noise_id, rate)
        cached = self._memory.get(key)
        if cached is None:
            cached = resample_noise(self.paths[noise_id], rate)
            if self.keep:
                cached = cached[: self.keep].copy()
            cached.setflags(write=False)
            self._memory[key] = cached
            if len(self._memory) > self.max_in_memory:
                self._memory.popitem(last=False)
        else:
            self._memory.move_to_end(key)
        return cached
