"""``AVMNISTAudioDataset``: the AV-MNIST audio modality, one item or one batch at a time."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .common import ParameterError, check_seed, check_split
from .cache import CacheInfo, cached_rows, metadata_for, resolve_cache
from .noise import NoiseBank
from .rendering import DEFAULT_STYLE, IMAGE_SIZE, RENDERERS, STYLES, get_renderer
from .schemes import (
    MIN_LENGTH,
    Scheme,
    apply_scheme,
    apply_scheme_many,
    get_scheme,
    item_rng,
    prepare_recording,
    recording_prefix,
)
from .sources.audio import load_wav
from .sources.download import download as download_sources
from .sources.index import SplitIndex, build_split_index, check_data_root
from .sources.labels import LabelsLike
from .sources.clips import ClipBank, package_versions

PathLike = Union[str, os.PathLike]

#: Room a prepared recording has beyond the longest recording (down-up resampling may add a few samples).
PREPARED_MARGIN = 256


def load_prepared(path: str, steps) -> Tuple[np.ndarray, int]:
    """A recording decoded, padded and run through ``steps`` (a scheme's recording-only prefix)."""
    samples, rate = load_wav(path)
    return prepare_recording(samples, rate, steps), rate


class AVMNISTAudioDataset(torch.utils.data.Dataset):
    """The audio half of AV-MNIST: item ``i`` is the spoken digit for MNIST item ``i``.

    Each item is an FSDD recording of the same digit, degraded by a scheme
    (mixed with ESC-50 noise, masked, filtered or distorted) and rendered as the
    reference notebook's 112x112 grey spectrogram. An item is a pure function
    of (data, split, scheme, index, seed, options): the same bytes in any order,
    with any number of DataLoader workers, on any machine.

    A ``DataLoader`` with a ``batch_size`` asks for whole batches through
    ``__getitems__``, which computes the batch's items together (the schemes'
    transforms and the rendering over all clips at once, so that per-call
    costs are paid once per batch) and returns exactly what ``ds[i]`` would
    give for each index.

    Parameters
    ----------
    root : path, optional
        The notebook's data root: ``recordings/``, ``noise_recordings/{audio,meta}``
        and ``avmnist/{train,test}_labels.npy``. Any part can instead be given
        on its own with ``recordings``, ``noises`` or ``labels``.
    split : {"train", "test"}
    scheme : str or Scheme
        ``"extreme_noise"``, ``"multi_band"``, ``"burst_noise"``, ``"aliased"``,
        ``"distorted"`` or ``"clean"`` (the notebook's upper-case names work too),
        or a :class:`~avmnist_torch.schemes.Scheme` of your own.
    seed : int
        Seeds every item's own random generator (mask positions).
    renderer : {"fast", "matplotlib"}
        ``"fast"`` reproduces matplotlib's pixels exactly without matplotlib;
        ``"matplotlib"`` draws with the installed matplotlib, as the notebook did.
    style : {"3.10", "3.11", "3.9"}, optional
        Which matplotlib version's pixels the fast renderer reproduces; default
        ``"3.10"``, the notebook's. With ``renderer="matplotlib"`` the style is
        the installed version's.
    transform, target_transform : callable, optional
        Applied to the image tensor and to the label.
    recordings : path, optional
        FSDD ``recordings`` folder (default ``root/recordings``).
    noises : path, optional
        ESC-50 folder with ``audio/`` and ``meta/esc50.csv`` (default
        ``root/noise_recordings``). Only needed by schemes that add noise.
    labels : path or array, optional
        The split's labels: an array, a .npy file, an MNIST idx file (raw or .gz)
        or a folder (default ``root``, i.e. ``root/avmnist/{split}_labels.npy``).
    noise_cache : path, "auto" or None
        Folder for the tables of decoded recordings and resampled noise clips
        (and, for schemes that start with steps depending on the recording
        alone, such as aliased's down-up resampling, of recordings through
        those steps), which every worker maps instead of holding a copy (see
        :mod:`avmnist_torch.sources.clips`). "auto" (default) is
        ``$AVMNIST_CACHE`` or ``~/.cache/avmnist-torch``; None keeps them in
        each process's memory. Never changes an item's bytes.
    download : bool
        Download whatever is missing under ``root`` first.
    cache : path or "auto", optional
        Serve items from a finished export (memory-mapped) instead of
        generating them. A file with sidecar metadata (written by ``export``)
        must match this dataset's options exactly, or construction fails
        saying what differs; ``"auto"`` uses
        ``root/avmnist/audio/{split}_data_augmented_{scheme}.npy`` only when it
        matches, and generates otherwise. A file without metadata, such as the
        notebook's own headerless files, is served as it is: those rows are
        the notebook's, from its own random draws, not what this dataset would
        generate, and ``describe()`` says so.
    """

    def __init__(
        self,
        root: Optional[PathLike] = None,
        split: str = "train",
        scheme: Union[str, Scheme] = "burst_noise",
        seed: int = 0,
        renderer: str = "fast",
        style: Optional[str] = None,
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
        *,
        recordings: Optional[PathLike] = None,
        noises: Optional[PathLike] = None,
        labels: Optional[LabelsLike] = None,
        noise_cache: Union[PathLike, str, None] = "auto",
        download: bool = False,
        cache: Optional[PathLike] = None,
    ) -> None:
        check_split(split)
        if renderer not in RENDERERS:
            raise ParameterError(f"unknown renderer {renderer!r}: choose one of {', '.join(RENDERERS)}")
        if style is not None and str(style) not in STYLES:
            raise ParameterError(f"unknown style {style!r}: choose one of {', '.join(STYLES)} (matplotlib versions)")
        self.split = split
        self.scheme = get_scheme(scheme)
        self.seed = check_seed(seed)
        self.renderer = renderer
        self.style = str(style) if style is not None else (DEFAULT_STYLE if renderer == "fast" else None)
        self.transform = transform
        self.target_transform = target_transform

        root = Path(root) if root is not None else None
        if root is None and (recordings is None or labels is None):
            raise ParameterError("give root, or both recordings= and labels= (and noises= for schemes that add noise)")
        if download:
            if root is None:
                raise ParameterError("download=True needs root: the folder to download into")
            download_sources(root)
        if root is not None and (recordings is None or labels is None or (noises is None and self.scheme.uses_noise)):
            check_data_root(root)  # a sources default lies under it
        recordings = Path(recordings) if recordings is not None else root / "recordings"
        if noises is None and root is not None:
            noises = root / "noise_recordings"
        if noises is None and self.scheme.uses_noise:
            raise ParameterError(f"scheme {self.scheme.name!r} adds noise: give noises= (an ESC-50 folder) or root")
        if labels is None:
            labels = root
        self.index: SplitIndex = build_split_index(
            split, recordings, noises if self.scheme.uses_noise else None, labels
        )
        longest = self.index.max_recording_length
        self.recording_bank = ClipBank(
            self.index.recordings, load_wav, kind="recordings", keep=longest or None, cache_dir=noise_cache,
            key=package_versions("numpy", "soundfile"),
        )
        self.noise_bank = NoiseBank(
            self.index.noises, keep=max(longest, MIN_LENGTH) if longest else None, cache_dir=noise_cache
        )
        # A scheme's leading steps that depend on the recording alone (aliased's
        # down-up resampling) run once per recording, into a table every worker
        # maps, instead of once per item.
        self._prefix = recording_prefix(self.scheme)
        self.prepared_bank: Optional[ClipBank] = None
        if self._prefix:
            self.prepared_bank = ClipBank(
                self.index.recordings, functools.partial(load_prepared, steps=self._prefix),
                kind="prepared-recordings", keep=max(longest, MIN_LENGTH) + PREPARED_MARGIN if longest else None,
                cache_dir=noise_cache, key=package_versions("numpy", "soundfile", "soxr") + f"|{self._prefix!r}",
            )
        if renderer == "matplotlib":
            # Fail at construction, not in a worker, if matplotlib is absent or the style cannot be drawn.
            get_renderer(renderer, self.style)
        # Only the path travels to DataLoader workers; each process maps the file itself.
        self.cache: Optional[CacheInfo] = None
        if cache is not None:
            self.cache = resolve_cache(cache, root, split, self.scheme.name, self.metadata)

    # ------------------------------------------------------------------
    @property
    def labels(self) -> np.ndarray:
        return self.index.labels

    def __len__(self) -> int:
        return len(self.index)

    def metadata(self) -> Dict[str, Any]:
        """The identity of this dataset's items, as an export records it beside its file.

        Two datasets with equal identity fields give the same bytes; see
        :func:`avmnist_torch.cache.metadata_for`. Stats every source file.
        """
        return metadata_for(self.split, self.scheme, self.seed, self.style, self.renderer,
                            self.index.recordings, self.index.noises, self.index.labels)

    def _check_index(self, index: int) -> int:
        n = len(self)
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        if index < -n or index >= n:
            raise IndexError(f"index {index} out of range for {n} {self.split} items")
        return int(index) % n

    def _noise_id(self, index: int) -> Optional[int]:
        if not self.scheme.uses_noise or not self.index.noises:
            return None
        return int(self.index.noise_ids[index])

    def _noise_path(self, index: int) -> Optional[str]:
        noise_id = self._noise_id(index)
        return None if noise_id is None else self.index.noises[noise_id]

    def _recording(self, index: int) -> Tuple[np.ndarray, int]:
        """Item ``index``'s recording, through the scheme's recording-only prefix when it has one."""
        recording_id = int(self.index.recording_ids[index])
        if self.prepared_bank is None:
            return self.recording_bank.get(recording_id)
        samples, rate = self.prepared_bank.get(recording_id)
        if self.prepared_bank.keep is not None and len(samples) >= self.prepared_bank.keep:
            # a row at the table's limit may have been cut short: computed here instead
            samples, rate = self.recording_bank.get(recording_id)
            samples = prepare_recording(samples, rate, self._prefix)
        return samples, rate

    def waveform(self, index: int) -> Tuple[np.ndarray, int, list]:
        """The degraded waveform of item ``index``, its sample rate and its random draws."""
        index = self._check_index(index)
        samples, sample_rate = self._recording(index)
        noise_id = self._noise_id(index)
        noise = (lambda: self.noise_bank.get(noise_id, sample_rate)) if noise_id is not None else None
        rng = item_rng(self.seed, self.split, self.scheme.name, index)
        out, draws = apply_scheme(samples, sample_rate, self.scheme, rng=rng, noise=noise, prepared=len(self._prefix))
        return out, sample_rate, draws

    def _waveforms(self, indices: Sequence[int]) -> Tuple[List[np.ndarray], List[int]]:
        """The degraded waveforms and sample rates of (checked) ``indices``, computed as one batch."""
        samples, rates, rngs, noises = [], [], [], []
        for index in indices:
            clip, rate = self._recording(index)
            samples.append(clip)
            rates.append(rate)
            noise_id = self._noise_id(index)
            noises.append(None if noise_id is None else functools.partial(self.noise_bank.get, noise_id, rate))
            rngs.append(item_rng(self.seed, self.split, self.scheme.name, index))
        out, _ = apply_scheme_many(samples, rates, self.scheme, rngs=rngs, noises=noises, prepared=len(self._prefix))
        return out, rates

    def images(self, indices: Sequence[int]) -> np.ndarray:
        """Items ``indices`` as an (N, 112, 112) uint8 array: row ``k`` is ``image(indices[k])``, byte for byte.

        The items are computed together: each distinct index once, the
        schemes' transforms over all clips at once, and one ``render_batch``
        per sample rate.
        """
        checked = [self._check_index(i) for i in indices]
        out = np.empty((len(checked), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        if not checked:
            return out
        if self.cache is not None:
            rows = cached_rows(self.cache.path, self.cache.rows)
            for k, index in enumerate(checked):
                out[k] = rows[index]
            return out
        distinct = list(dict.fromkeys(checked))
        waveforms, rates = self._waveforms(distinct)
        renderer = get_renderer(self.renderer, self.style)
        by_rate: Dict[int, List[int]] = {}
        for k, rate in enumerate(rates):
            by_rate.setdefault(rate, []).append(k)
        rendered = np.empty((len(distinct), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        for rate, members in by_rate.items():
            rendered[members] = renderer.render_batch([waveforms[k] for k in members], rate)
        position = {index: k for k, index in enumerate(distinct)}
        np.take(rendered, [position[index] for index in checked], axis=0, out=out)
        return out

    def image(self, index: int) -> np.ndarray:
        """Item ``index`` as a (112, 112) uint8 numpy array."""
        if self.cache is not None:
            return np.array(cached_rows(self.cache.path, self.cache.rows)[self._check_index(index)])
        samples, sample_rate, _ = self.waveform(index)
        return get_renderer(self.renderer, self.style).render(samples, sample_rate)

    def _item(self, index: int, pixels: np.ndarray) -> Tuple[Any, Any]:
        """Item ``index`` (checked) from its own (112, 112) pixels: tensor and label, transforms applied."""
        image = torch.from_numpy(pixels.reshape(1, IMAGE_SIZE, IMAGE_SIZE))
        label = int(self.index.labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def __getitem__(self, index: int) -> Tuple[Any, Any]:
        index = self._check_index(index)
        return self._item(index, self.image(index))

    def __getitems__(self, indices: Sequence[int]) -> List[Tuple[Any, Any]]:
        """``[self[i] for i in indices]``, the same types and bytes, computed as one batch (see :meth:`images`).

        PyTorch's ``DataLoader`` calls this for a whole batch when the dataset
        has it (and ``Subset`` passes it through). Each item gets its own
        tensor, as ``self[i]`` gives, and the transforms are applied item by
        item.
        """
        checked = [self._check_index(i) for i in indices]
        images = self.images(checked)
        # each its own copy: an item holds its own 12 kB, not the whole batch, as self[i]'s does
        return [self._item(index, images[k].copy()) for k, index in enumerate(checked)]

    def describe(self, index: int) -> Dict[str, Any]:
        """Where item ``index`` comes from and what was drawn for it."""
        index = self._check_index(index)
        _, sample_rate, draws = self.waveform(index)
        return {
            "index": index,
            "split": self.split,
            "scheme": self.scheme.name,
            "seed": self.seed,
            "label": int(self.index.labels[index]),
            "recording": self.index.recordings[self.index.recording_ids[index]],
            "noise": self._noise_path(index),
            "sample_rate": sample_rate,
            "draws": draws,
            "renderer": self.renderer,
            "style": self.style or get_renderer(self.renderer).style,
            "cache": None if self.cache is None else {
                "path": self.cache.path,
                "provenance": self.cache.provenance,
                "note": "rows made by this package with these options" if self.cache.provenance == "sidecar"
                else "rows served as stored (no metadata, e.g. the notebook's file): the draws above are what "
                     "this dataset would generate, not what made them",
            },
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(split={self.split!r}, scheme={self.scheme.name!r}, seed={self.seed}, "
            f"renderer={self.renderer!r}, style={self.style!r}, items={len(self)})"
        )
