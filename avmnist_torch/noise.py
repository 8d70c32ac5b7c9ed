"""Noise clips resampled to the recordings' rate, computed once per clip and shared by every worker.

The notebook loads and resamples a 5 s, 44.1 kHz ESC-50 clip for every item
(about 2.7 ms). The result depends only on the clip and the target rate, so
:class:`NoiseBank` keeps one :class:`~avmnist_torch.sources.clip_tables.ClipBank` per
target rate: each clip is resampled at most once, into a table every process
maps (see :mod:`avmnist_torch.sources.clip_tables`). It sits above ``sources`` because
it resamples with :func:`avmnist_torch.dsp.resample`.
"""

from __future__ import annotations

import functools
import threading
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from . import dsp
from .common import PathLike
from .sources.audio import load_wav
from .sources.clip_tables import ClipBank, folder_found_unusable, package_versions


__all__ = ["NoiseBank", "resample_noise"]


def resample_noise(path: PathLike, target_rate: int) -> np.ndarray:
    """Load a noise clip and resample it to ``target_rate`` exactly as the notebook does.

    ``librosa.load(path, sr=None)`` then ``librosa.resample(orig_sr=native,
    target_sr=target_rate)`` with librosa's default soxr_hq; ``dsp.resample`` is
    that call without librosa's overhead (tested byte-identical).
    """
    samples, rate = load_wav(path)
    return dsp.resample(samples, rate, target_rate)


class NoiseBank:
    """The resampled noise clips of one split.

    Parameters
    ----------
    paths : sequence of paths
        The split's noise clips, in order; rows are addressed by position.
    keep : int, optional
        How many samples of each resampled clip any item can need (the longest
        recording; a shorter clip is kept whole, so tiling it stays exact).
        None keeps whole clips (as :meth:`get_full` does).
    cache_dir : path, "auto" or None
        Where the noise tables live (see :class:`~avmnist_torch.sources.clip_tables.ClipBank`).
    """

    def __init__(
        self,
        paths: Sequence[PathLike],
        *,
        keep: Optional[int] = None,
        cache_dir: Union[PathLike, str, None] = "auto",
    ) -> None:
        self.paths = [str(p) for p in paths]
        self.keep = keep
        self.cache_dir = cache_dir
        self._banks: Dict[Tuple[int, bool], ClipBank] = {}
        self._lock = threading.Lock()

    def __getstate__(self):
        # The banks hold a closure and, once used, a memory map: each process makes its own.
        state = self.__dict__.copy()
        state["_banks"] = {}
        del state["_lock"]
        if folder_found_unusable(self.cache_dir):
            state["cache_dir"] = None  # this process already warned: workers go straight to memory
        return state

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _bank(self, rate: int, whole: bool) -> ClipBank:
        bank = self._banks.get((rate, whole))
        if bank is None:
            with self._lock:  # one bank per rate, even when threads ask for a new rate at once
                bank = self._banks.get((rate, whole))
                if bank is None:
                    bank = self._banks[(rate, whole)] = ClipBank(
                        self.paths,
                        functools.partial(_resampled, rate=rate),
                        kind=f"noise-{rate}hz",
                        keep=None if whole else self.keep,
                        cache_dir=self.cache_dir,
                        key=package_versions("soxr", "numpy"),
                    )
        return bank

    def get(self, noise_id: int, rate: int, length: Optional[int] = None) -> np.ndarray:
        """Noise ``noise_id`` resampled to ``rate``: its first ``keep`` samples (at most ``length``), read-only."""
        return self._bank(rate, self.keep is None).get(noise_id, 0, length)[0]

    def full_length(self, noise_id: int, rate: int) -> int:
        """How many samples the whole clip ``noise_id`` has at ``rate``."""
        return self._bank(rate, True).length(noise_id)

    def get_full(self, noise_id: int, rate: int, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        """Noise ``noise_id`` resampled to ``rate``, the whole clip, read-only.

        Its first ``keep`` samples are :meth:`get`'s, byte for byte. Whole clips
        live in their own table (rows as long as the clips, about 160 kB for a
        5 s clip at 8 kHz), made only once something asks for them.
        """
        return self._bank(rate, True).get(noise_id, start, stop)[0]


def _resampled(path: str, rate: int):
    """A bank's ``load``: the clip resampled to ``rate``, and that rate (a module-level function: picklable)."""
    return resample_noise(path, rate), rate
