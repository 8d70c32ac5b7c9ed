"""``AudioItemGenerator``: the audio half of AV-MNIST as numpy arrays, one item or one batch at a time (no torch)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .common import ParameterError, PathLike, check_index, positions_by_key
from .item_options import ItemOptions, check_epoch, items_identity
from .noise import NoiseBank
from .rendering import IMAGE_SIZE, get_renderer
from .schemes import (
    MIN_LENGTH,
    ItemRandom,
    Scheme,
    apply_scheme,
    apply_scheme_many,
    epoch_rngs,
    fit_noise_length,
    item_rng,
    prepare_recording,
    recording_prefix,
)
from .sources.audio import load_wav
from .sources.clip_tables import ClipBank, package_versions
from .sources.download import AUDIO_SOURCES, download as download_sources
from .sources.fsdd import parse_recording_name
from .sources.index import SplitIndex, build_split_index, check_data_root
from .sources.labels import LabelsLike

__all__ = ["AudioItemGenerator", "resolve_sources", "load_prepared", "CLASSES"]

#: The ten digit classes, named as torchvision's MNIST names them.
CLASSES = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
           "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]

#: Room a prepared recording has beyond the longest recording (down-up resampling may add a few samples).
PREPARED_MARGIN = 256


def resolve_sources(root: Optional[PathLike], *, recordings: Optional[PathLike] = None,
                    noises: Optional[PathLike] = None, labels: Optional[LabelsLike] = None, needs_noise: bool = True,
                    download: bool = False, download_sources_of: Sequence[str] = AUDIO_SOURCES,
                    ) -> Tuple[Optional[Path], Path, Optional[Path], LabelsLike]:
    """Where the recordings, noises and labels are: each given on its own, or the notebook's layout under ``root``.

    Parameters
    ----------
    root, recordings, noises, labels
        The data root, and any part given on its own instead of its place under it (see the dataset).
    needs_noise : bool
        Whether the scheme adds noise (then a noise folder is required).
    download : bool
        Download whatever is missing under ``root`` first (``download_sources_of``: which; default: the audio's).

    Returns
    -------
    root, recordings, noises, labels
        ``noises`` is None when the scheme adds none and none was given.

    Raises
    ------
    ParameterError
        Neither ``root`` nor the parts are given, or ``download`` without ``root``.
    """
    root = Path(root) if root is not None else None
    if download and root is None:
        raise ParameterError("download=True needs root: the folder to download into")
    if root is None and (recordings is None or labels is None):
        raise ParameterError("give root, or both recordings= and labels= (and noises= for schemes that add noise)")
    if download:
        download_sources(root, sources=download_sources_of)
    if root is not None and (recordings is None or labels is None or (noises is None and needs_noise)):
        check_data_root(root)  # a source's default lies under it: a mistyped root is reported as itself
    recordings = Path(recordings) if recordings is not None else root / "recordings"
    if noises is None and root is not None:
        noises = root / "noise_recordings"
    if noises is None and needs_noise:
        raise ParameterError("this scheme adds noise: give noises= (an ESC-50 folder) or root")
    return root, recordings, (Path(noises) if noises is not None else None), (labels if labels is not None else root)


class ItemNoise:
    """One item's noise clip for a scheme's noise steps: ``noise()`` the clip (a fixed item's, ``rng`` None: as much
    as any item can use), ``window(length, draws)`` ``length`` samples of it (a fixed item's: its start; a per-epoch
    item's: a window drawn from its steps stream, docs/items.md "Fresh draws every epoch")."""

    __slots__ = ("_bank", "_noise_id", "_rate", "_rng")

    def __init__(self, bank: NoiseBank, noise_id: int, rate: int, rng: Optional[ItemRandom]) -> None:
        self._bank, self._noise_id, self._rate, self._rng = bank, noise_id, rate, rng

    def __call__(self) -> np.ndarray:
        if self._rng is None:
            return self._bank.get(self._noise_id, self._rate)
        return self._bank.get_full(self._noise_id, self._rate)

    def window(self, length: int, draws: List[dict]) -> np.ndarray:
        if self._rng is None:
            return self._bank.get(self._noise_id, self._rate, length)
        n = self._bank.full_length(self._noise_id, self._rate)
        start = self._rng.integers(0, n - length) if n > length else 0
        draws.append({"step": "noise_window", "start": start, "length": min(length, n), "clip_length": n})
        # only the window is read: fit_noise_length(clip[start:], length) uses no more of the clip
        return fit_noise_length(self._bank.get_full(self._noise_id, self._rate, start, start + length), length)


def load_prepared(path: str, steps) -> Tuple[np.ndarray, int]:
    """A recording decoded, padded and run through ``steps`` (a scheme's recording-only prefix)."""
    samples, rate = load_wav(path)
    return prepare_recording(samples, rate, steps), rate


class AudioItemGenerator:
    """The audio items of one split: item ``i`` is the spoken digit for MNIST item ``i``, as numpy arrays.

    An item is a pure function of its options and sources, as the dataset's docstring says (docs/items.md).

    Parameters
    ----------
    root, split, scheme, seed, renderer, style, recordings, noises, labels, clip_tables, download
        As for :class:`~avmnist_torch.dataset.AVMNISTAudioDataset`, which wraps this class.
    draws, redraw_recording, snr_range_db
        As for the dataset too.
    epoch : int
        With ``draws="per_epoch"``: the epoch the methods give when called without ``epoch=`` (default 0).

    Raises
    ------
    ParameterError
        An option is out of range (split, scheme, seed, renderer, style, draws).
    SourceError
        A source is missing or broken; the message names the file.
    """

    def __init__(self, root: Optional[PathLike] = None, split: str = "train",
                 scheme: Union[str, Scheme] = "burst_noise", *, seed: int = 0, renderer: str = "fast",
                 style: Optional[str] = None, recordings: Optional[PathLike] = None,
                 noises: Optional[PathLike] = None, labels: Optional[LabelsLike] = None,
                 clip_tables: Union[PathLike, str, None] = "auto", download: bool = False, draws: str = "fixed",
                 redraw_recording: bool = False, snr_range_db: Optional[float] = None, epoch: int = 0) -> None:
        self.options = options = ItemOptions(split=split, scheme=scheme, seed=seed, renderer=renderer, style=style,
                                             draws=draws, redraw_recording=redraw_recording,
                                             snr_range_db=snr_range_db, epoch=epoch)
        self.split, self.scheme, self.seed, self.draws = options.split, options.scheme, options.seed, options.draws
        self.epoch, self.redraw_recording = options.epoch, options.redraw_recording
        self.snr_range_db, self.renderer, self.style = options.snr_range_db, options.renderer, options.style
        if clip_tables is not None and not isinstance(clip_tables, (str, os.PathLike)):
            raise ParameterError(f"clip_tables={clip_tables!r}: give a folder (a path), 'auto' (the cache folder: "
                                 "$AVMNIST_CACHE, else the user cache folder) or None (each process keeps the "
                                 "clips in memory)")
        self.clip_tables = clip_tables
        self.root, recordings, noises, labels = resolve_sources(
            root, recordings=recordings, noises=noises, labels=labels, needs_noise=self.scheme.uses_noise,
            download=download)
        noises = noises if self.scheme.uses_noise else None
        self.index: SplitIndex = build_split_index(split, recordings, noises, labels)
        longest = self.index.max_recording_length
        self.recording_bank = ClipBank(
            self.index.recordings, load_wav, kind="recordings", keep=longest or None, cache_dir=clip_tables,
            key=package_versions("numpy", "soundfile"),
        )
        # Fixed items read a clip's first `keep` samples; per-epoch items a window of the whole clip (get_full).
        self.noise_bank = NoiseBank(self.index.noises, keep=max(longest, MIN_LENGTH) if longest else None,
                                    cache_dir=clip_tables)
        # How many noise clips per-epoch items draw from (0: the scheme adds none).
        self._noise_pool = len(self.index.noises) if self.scheme.uses_noise else 0
        # Each digit's recordings in the split, for redraw_recording: positions in index.recordings.
        self._digit_pools: Optional[List[np.ndarray]] = None
        if self.redraw_recording:
            digits = np.array([parse_recording_name(p).digit for p in self.index.recordings], dtype=np.int64)
            self._digit_pools = [np.flatnonzero(digits == d) for d in range(10)]
        # The scheme's recording-only prefix runs once per recording, into a table every process reads.
        self._prefix = recording_prefix(self.scheme)
        self.prepared_bank: Optional[ClipBank] = None
        if self._prefix:
            self.prepared_bank = ClipBank(
                self.index.recordings, functools.partial(load_prepared, steps=self._prefix),
                kind="prepared-recordings", keep=max(longest, MIN_LENGTH) + PREPARED_MARGIN if longest else None,
                cache_dir=clip_tables, key=package_versions("numpy", "soundfile", "soxr") + f"|{self._prefix!r}",
            )
        if renderer == "matplotlib":
            # Fail here, not in a worker, if matplotlib is absent or the style cannot be drawn.
            get_renderer(renderer, self.style)

    labels = property(lambda self: self.index.labels, doc="The split's digit labels, one per item, read-only.")

    def __len__(self) -> int:
        return len(self.index)

    def metadata(self, *, epoch: Optional[int] = None) -> Dict[str, Any]:
        """The identity of this generator's items (of ``epoch``, per epoch), as an export records it beside its file.

        Equal identities give the same bytes (:func:`avmnist_torch.item_options.items_identity`); every
        source file is read once per process.
        """
        return items_identity(self.options, self.index.recordings, self.index.noises, self.index.labels,
                              self._epoch(epoch))

    def check_index(self, index: int) -> int:
        """``index`` as a non-negative position, or ``TypeError`` / ``IndexError`` saying why not."""
        return check_index(index, len(self), self.split)

    per_epoch = property(lambda self: self.options.per_epoch,
                         doc="Whether items are drawn anew every epoch (``draws='per_epoch'``).")

    def _noise_id(self, index: int) -> Optional[int]:
        if not self.scheme.uses_noise or not self.index.noises:
            return None
        return int(self.index.noise_ids[index])

    def _recording(self, recording_id: int) -> Tuple[np.ndarray, int]:
        """A recording, through the scheme's recording-only prefix when it has one."""
        if self.prepared_bank is None:
            return self.recording_bank.get(recording_id)
        samples, rate = self.prepared_bank.get(recording_id)
        if self.prepared_bank.keep is not None and len(samples) >= self.prepared_bank.keep:
            # a row at the table's limit may have been cut short: computed here instead
            samples, rate = self.recording_bank.get(recording_id)
            samples = prepare_recording(samples, rate, self._prefix)
        return samples, rate

    def _epoch(self, epoch: Optional[int]) -> Optional[int]:
        """The epoch an item is drawn for: None for fixed items, else checked (default: the generator's)."""
        checked = self.epoch if epoch is None else check_epoch(epoch)
        return checked if self.per_epoch else None

    def _sources(self, index: int, epoch: Optional[int]) -> Tuple[int, Optional[int], ItemRandom, Optional[ItemRandom],
                                                                   List[dict]]:
        """Item ``index``'s recording and noise, its steps stream, its sources stream and what that drew."""
        if epoch is None:
            return (int(self.index.recording_ids[index]), self._noise_id(index),
                    item_rng(self.seed, self.split, self.scheme.name, index), None, [])
        steps, sources = epoch_rngs(self.seed, self.split, self.scheme.name, index, epoch)
        drawn: List[dict] = []
        if self._digit_pools is None:
            recording_id = int(self.index.recording_ids[index])
        else:
            pool = self._digit_pools[int(self.index.labels[index])]
            recording_id = int(pool[sources.integers(0, len(pool) - 1)])
            drawn.append({"step": "recording", "recording": self.index.recordings[recording_id]})
        noise_id = None
        if self._noise_pool:
            noise_id = sources.integers(0, self._noise_pool - 1)
            drawn.append({"step": "noise_clip", "noise": self.index.noises[noise_id]})
        return recording_id, noise_id, steps, sources, drawn

    def _inputs(self, index: int, epoch: Optional[int]):
        """What item ``index`` (checked) starts from: recording, rate, steps stream, noise, and the sources drawn."""
        recording_id, noise_id, rng, sources, drawn = self._sources(index, epoch)
        samples, rate = self._recording(recording_id)
        noise = None if noise_id is None else ItemNoise(self.noise_bank, noise_id, rate,
                                                        None if sources is None else rng)
        return samples, rate, rng, noise, drawn

    def waveform(self, index: int, *, epoch: Optional[int] = None) -> Tuple[np.ndarray, int, List[dict]]:
        """The degraded waveform of item ``index`` (of ``epoch``, per epoch), its sample rate and its random draws."""
        samples, rate, rng, noise, drawn = self._inputs(self.check_index(index), self._epoch(epoch))
        out, draws = apply_scheme(samples, rate, self.scheme, rng=rng, noise=noise, prepared=len(self._prefix))
        return out, rate, drawn + draws

    def waveforms(self, indices: Sequence[int], *, epoch: Optional[int] = None) -> Tuple[List[np.ndarray], List[int]]:
        """The degraded waveforms and sample rates of ``indices``, computed as one batch."""
        epoch = self._epoch(epoch)
        inputs = [self._inputs(self.check_index(i), epoch) for i in indices]
        if not inputs:
            return [], []
        samples, rates, rngs, noises, _ = (list(column) for column in zip(*inputs))
        out, _ = apply_scheme_many(samples, rates, self.scheme, rngs=rngs, noises=noises, prepared=len(self._prefix))
        return out, rates

    def spectrogram(self, index: int, *, epoch: Optional[int] = None) -> np.ndarray:
        """Item ``index`` (of ``epoch``, with ``draws="per_epoch"``) as a (112, 112) uint8 array."""
        samples, rate, _ = self.waveform(index, epoch=epoch)
        return get_renderer(self.renderer, self.style).render(samples, rate)

    def spectrograms(self, indices: Sequence[int], *, epoch: Optional[int] = None) -> np.ndarray:
        """Items ``indices`` as an (N, 112, 112) uint8 array: row ``k`` is ``spectrogram(indices[k])``, byte for byte.

        Each distinct index is computed once, the items together (one ``render_batch`` per sample rate).
        """
        checked = [self.check_index(i) for i in indices]
        out = np.empty((len(checked), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        if not checked:
            return out
        distinct = list(dict.fromkeys(checked))
        waveforms, rates = self.waveforms(distinct, epoch=epoch)
        renderer = get_renderer(self.renderer, self.style)
        rendered = np.empty((len(distinct), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        for rate, members in positions_by_key(rates).items():
            rendered[members] = renderer.render_batch([waveforms[k] for k in members], rate)
        position = {index: k for k, index in enumerate(distinct)}
        np.take(rendered, [position[index] for index in checked], axis=0, out=out)
        return out

    def describe(self, index: int, *, epoch: Optional[int] = None) -> Dict[str, Any]:
        """Where item ``index`` comes from and what was drawn for it (in ``epoch``, with ``draws="per_epoch"``).

        ``draws`` lists every draw in the order made: the sources' (per epoch), then the steps'.
        """
        index = self.check_index(index)
        epoch = self._epoch(epoch)
        recording_id, noise_id, _, _, _ = self._sources(index, epoch)
        _, rate, draws = self.waveform(index, epoch=epoch)
        return {"index": index, "split": self.split, "scheme": self.scheme.name, "seed": self.seed,
                "draw_mode": self.draws, "epoch": epoch, "label": int(self.index.labels[index]),
                "recording": self.index.recordings[recording_id],
                "noise": None if noise_id is None else self.index.noises[noise_id], "sample_rate": rate,
                "draws": draws, "renderer": self.renderer, "style": self.options.drawn_style}

    def __repr__(self) -> str:
        extra = ""
        if self.per_epoch:
            extra = (f", draws='per_epoch', epoch={self.epoch}, redraw_recording={self.redraw_recording}, "
                     f"snr_range_db={self.snr_range_db}")
        return (f"{type(self).__name__}(split={self.split!r}, scheme={self.scheme.name!r}, seed={self.seed}, "
                f"renderer={self.renderer!r}, style={self.style!r}{extra}, items={len(self)})")
