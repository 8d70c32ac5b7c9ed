"""Noise clips resampled to the recordings' rate, computed once per clip and shared.

The notebook loads and resamples a 5 s, 44.1 kHz ESC-50 clip for every item
(about 2.7 ms). The result depends only on the clip and the target rate, so it
is computed once per (clip, rate) and kept: in memory within a process, and,
when a cache folder is given, as .npy files that every DataLoader worker maps
read-only instead of holding a copy.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .audio import load_wav

PathLike = Union[str, os.PathLike]


def resample_noise(path: PathLike, target_rate: int) -> np.ndarray:
    """Load a noise clip and resample it to ``target_rate`` as the notebook does.

    ``librosa.load(path, sr=None)`` then ``librosa.resample(orig_sr=native,
    target_sr=target_rate)`` with librosa's default (soxr_hq) resampler.
    """
    import librosa

    samples, rate = load_wav(path)
    if rate == target_rate:
        return samples
    return librosa.resample(samples, orig_sr=rate, target_sr=target_rate)


class NoiseBank:
    """Resampled noise clips, each computed at most once per process.

    Parameters
    ----------
    cache_dir : path, optional
        Where resampled clips are stored as .npy and memory-mapped. Files are
        keyed by the clip's path, size and modification time and the target
        rate, and written atomically, so workers can share one folder safely.
    max_in_memory : int
        How many clips to keep in the in-process LRU when no cache_dir is given.
    """

    def __init__(self, cache_dir: Optional[PathLike] = None, max_in_memory: int = 256) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.max_in_memory = max_in_memory
        self._memory: "OrderedDict[tuple, np.ndarray]" = OrderedDict()

    def __getstate__(self):
        # A worker starts with an empty LRU instead of a pickled copy of the parent's.
        state = self.__dict__.copy()
        state["_memory"] = OrderedDict()
        return state

    def get(self, path: PathLike, target_rate: int) -> np.ndarray:
        """The clip at ``path`` resampled to ``target_rate`` (read-only array)."""
        key = (str(path), int(target_rate))
        cached = self._memory.get(key)
        if cached is not None:
            self._memory.move_to_end(key)
            return cached
        samples = self._load(Path(path), int(target_rate))
        self._memory[key] = samples
        if len(self._memory) > self.max_in_memory:
            self._memory.popitem(last=False)
        return samples

    def _load(self, path: Path, target_rate: int) -> np.ndarray:
        if self.cache_dir is None:
            samples = resample_noise(path, target_rate)
            samples.setflags(write=False)
            return samples
        stat = path.stat()
        digest = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{target_rate}".encode()).hexdigest()
        cached = self.cache_dir / f"{path.stem}-{target_rate}-{digest[:16]}.npy"
        if not cached.is_file():
            samples = resample_noise(path, target_rate)
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".tmp-", suffix=".npy")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.save(f, samples)
                os.replace(tmp, cached)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return np.load(cached, mmap_mode="r")
