"""Noise clips resampled to the recordings' rate once per clip, into clip tables every worker reads."""

from __future__ import annotations

import functools
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from . import dsp
from .common import PathLike
from .sources.audio import load_wav
from .sources.clip_tables import ClipBank, package_versions, resolve_cache_dir, worker_state

__all__ = ["NoiseBank", "resample_noise"]


def resample_noise(path: PathLike, target_rate: int) -> np.ndarray:
    """Load a noise clip and resample it to ``target_rate`` as the notebook does (librosa's load and soxr_hq)."""
    samples, rate = load_wav(path)
    return dsp.resample(samples, rate, target_rate)


class NoiseBank:
    """The resampled noise clips of one split, one :class:`~avmnist_torch.sources.clip_tables.ClipBank` per rate.

    Parameters
    ----------
    paths : sequence of paths
        The split's noise clips, in order; rows are addressed by position.
    keep : int, optional
        How many samples of each resampled clip any item can need; None keeps whole clips.
    cache_dir : path, "auto" or None
        As for ``ClipBank``.
    """

    def __init__(self, paths: Sequence[PathLike], *, keep: Optional[int] = None,
                 cache_dir: Union[PathLike, str, None] = "auto") -> None:
        self.paths = [str(p) for p in paths]
        self.keep = keep
        self.cache_dir = resolve_cache_dir(cache_dir)
        self._banks: Dict[Tuple[int, Optional[int]], ClipBank] = {}

    def __getstate__(self):  # each process makes its own banks
        return worker_state(self, _banks={})

    def _bank(self, rate: int, keep: Optional[int]) -> ClipBank:
        bank = self._banks.get((rate, keep))
        if bank is None:  # threads asking at once may each make one (nothing read yet): setdefault keeps one
            bank = self._banks.setdefault((rate, keep), ClipBank(
                self.paths, functools.partial(_resampled, rate=rate), kind=f"noise-{rate}hz", keep=keep,
                cache_dir=self.cache_dir, key=package_versions("soxr", "numpy")))
        return bank

    def get(self, noise_id: int, rate: int, length: Optional[int] = None) -> np.ndarray:
        """Noise ``noise_id`` resampled to ``rate``: its first ``keep`` samples (at most ``length``), read-only."""
        return self._bank(rate, self.keep).get(noise_id, 0, length)[0]

    def full_length(self, noise_id: int, rate: int) -> int:
        """How many samples the whole clip ``noise_id`` has at ``rate``."""
        return self._bank(rate, None).length(noise_id)

    def get_full(self, noise_id: int, rate: int, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        """Samples ``start:stop`` of the whole clip ``noise_id`` resampled to ``rate``, read-only."""
        return self._bank(rate, None).get(noise_id, start, stop)[0]


def _resampled(path: str, rate: int):
    """A bank's ``load``: the clip resampled to ``rate``, and that rate (a module-level function: picklable)."""
    return resample_noise(path, rate), rate
