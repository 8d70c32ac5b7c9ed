"""Noise clips resampled to the recordings' rate, computed once per clip and shared by every worker.

The notebook loads and resamples a 5 s, 44.1 kHz ESC-50 clip for every item
(about 2.7 ms). The result depends only on the clip and the target rate, so
:class:`NoiseBank` keeps one :class:`~avmnist_torch.sources.clips.ClipBank` per
target rate: each clip is resampled at most once, into a table every process
maps (see :mod:`avmnist_torch.sources.clips`). It sits above ``sources`` because
it resamples with :func:`avmnist_torch.dsp.resample`.
"""

from __future__ import annotations

import os
import threading
from typing import Dict, Optional, Sequence, Union

import numpy as np

from . import dsp
from .sources.audio import check_audio_files, load_wav
from .sources.clips import ClipBank, folder_found_unusable, package_versions

PathLike = Union[str, os.PathLike]

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
    keep : int, "whole" or None
        How many samples of each resampled clip any item can need (the longest
        recording; a shorter clip is kept whole, so tiling it stays exact).
        ``"whole"``: every clip whole, in a table whose rows are as long as the
        longest clip resampled to the asked rate, found from the files'
        headers (read once, here; nothing is decoded). None keeps whole clips,
        in memory.
    cache_dir : path, "auto" or None
        Where the noise tables live (see :class:`~avmnist_torch.sources.clips.ClipBank`).
    """

    def __init__(
        self,
        paths: Sequence[PathLike],
        *,
        keep: Optional[int] = None,
        cache_dir: Union[PathLike, str, None] = "auto",
    ) -> None:
        self.paths = [str(p) for p in paths]
        if isinstance(keep, str) and keep != "whole":
            raise ValueError(f"NoiseBank(keep={keep!r}): keep is a number of samples, 'whole' or None")
        self.keep = keep
        #: (sample rate, frames) of every clip, for keep="whole"
        self.headers = check_audio_files(self.paths, what="noise") if keep == "whole" else None
        self.cache_dir = cache_dir
        self._banks: Dict[int, ClipBank] = {}
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

    def keep_at(self, rate: int) -> Optional[int]:
        """The row length of the table at ``rate``: ``keep``, or for ``"whole"`` the longest clip resampled."""
        if self.keep != "whole":
            return self.keep
        if not self.headers:
            return None
        return max(dsp.resampled_length(frames, clip_rate, rate) for clip_rate, frames in self.headers)

    def get(self, noise_id: int, rate: int) -> np.ndarray:
        """Noise ``noise_id`` resampled to ``rate``: its first ``keep`` samples (all of it for ``"whole"``), read-only."""
        bank = self._banks.get(rate)
        if bank is None:
            with self._lock:  # one bank per rate, even when threads ask for a new rate at once
                bank = self._banks.get(rate)
                if bank is None:
                    bank = self._banks[rate] = ClipBank(
                        self.paths,
                        lambda path: (resample_noise(path, rate), rate),
                        kind=f"noise-{rate}hz",
                        keep=self.keep_at(rate),
                        cache_dir=self.cache_dir,
                        key=package_versions("soxr", "numpy"),
                    )
        return bank.get(noise_id)[0]
