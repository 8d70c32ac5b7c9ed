"""``AudioItemGenerator``: the audio half of AV-MNIST as numpy arrays, one item or one batch at a time.

The generator holds what makes an item: the split's index of sources (which
recording and which noise each item takes), the clip tables every process
maps, the scheme and the renderer. It knows nothing of torch: the torch
``Dataset`` classes (:mod:`avmnist_torch.dataset`, :mod:`avmnist_torch.paired`)
wrap it, and export, verify and inspection use it directly.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .exported import metadata_for
from .common import ParameterError, PathLike, check_index, check_seed, check_split
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
from .sources.clips import ClipBank, package_versions
from .sources.download import download as download_sources
from .sources.index import SplitIndex, build_split_index, check_data_root
from .sources.labels import LabelsLike

__all__ = ["AudioItemGenerator", "resolve_sources", "load_prepared", "CLASSES"]

#: The ten digit classes, named as torchvision's MNIST names them.
CLASSES = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
           "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]

#: Room a prepared recording has beyond the longest recording (down-up resampling may add a few samples).
PREPARED_MARGIN = 256


def resolve_sources(
    root: Optional[PathLike],
    *,
    recordings: Optional[PathLike] = None,
    noises: Optional[PathLike] = None,
    labels: Optional[LabelsLike] = None,
    needs_noise: bool = True,
    download: bool = False,
    download_sources_of: Optional[Sequence[str]] = None,
) -> Tuple[Optional[Path], Path, Optional[Path], LabelsLike]:
    """Where the recordings, noises and labels are: each given on its own, or the notebook's layout under ``root``.

    Parameters
    ----------
    root : path, optional
        The data root: ``recordings/``, ``noise_recordings/{audio,meta}`` and
        ``avmnist/{train,test}_labels.npy``.
    recordings, noises, labels : optional
        Any part given on its own instead of its place under ``root``.
    needs_noise : bool
        Whether the scheme adds noise (then a noise folder is required).
    download : bool
        Download whatever is missing under ``root`` first.
    download_sources_of : sequence of str, optional
        Which sources to download (default: all of them).

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
        if download_sources_of is None:
            download_sources(root)
        else:
            download_sources(root, sources=download_sources_of)
    if root is not None and (recordings is None or labels is None or (noises is None and needs_noise)):
        check_data_root(root)  # a source's default lies under it: a mistyped root is reported as itself
    recordings = Path(recordings) if recordings is not None else root / "recordings"
    if noises is None and root is not None:
        noises = root / "noise_recordings"
    if noises is None and needs_noise:
        raise ParameterError("this scheme adds noise: give noises= (an ESC-50 folder) or root")
    return root, recordings, (Path(noises) if noises is not None else None), (labels if labels is not None else root)


def load_prepared(path: str, steps) -> Tuple[np.ndarray, int]:
    """A recording decoded, padded and run through ``steps`` (a scheme's recording-only prefix)."""
    samples, rate = load_wav(path)
    return prepare_recording(samples, rate, steps), rate


class AudioItemGenerator:
    """The audio items of one split: item ``i`` is the spoken digit for MNIST item ``i``.

    Each item is an FSDD recording of the same digit, degraded by a scheme
    (mixed with ESC-50 noise, masked, filtered or distorted) and rendered as the
    reference notebook's 112x112 grey spectrogram. An item is a pure function of
    (data, split, scheme, index, seed, options): the same bytes in any order, in
    any process, on any machine (see ``docs/items.md``).

    Parameters
    ----------
    root : path, optional
        The notebook's data root (see :func:`resolve_sources`).
    split : {"train", "test"}
    scheme : str or Scheme
        ``"extreme_noise"``, ``"multi_band"``, ``"burst_noise"``, ``"aliased"``,
        ``"distorted"`` or ``"clean"`` (upper-case names work too), or a
        :class:`~avmnist_torch.schemes.Scheme` of your own.
    seed : int
        Seeds every item's own random stream (mask positions); 0 to 2**64 - 1.
    renderer : {"fast", "matplotlib"}
        ``"fast"`` reproduces matplotlib's pixels exactly without matplotlib;
        ``"matplotlib"`` draws with the installed matplotlib, as the notebook did.
    style : {"3.10", "3.11", "3.9"}, optional
        Which matplotlib version's pixels the fast renderer reproduces; default
        ``"3.10"``, the notebook's. With ``renderer="matplotlib"``, the
        installed version's.
    recordings, noises, labels : optional
        A part of the sources given on its own (see :func:`resolve_sources`).
    clip_tables : path, "auto" or None
        Folder for the clip tables (decoded recordings, resampled noise clips,
        and recordings through a scheme's recording-only steps) that every
        process maps instead of holding a copy (see
        :mod:`avmnist_torch.sources.clips`). "auto" is ``$AVMNIST_CACHE`` or the
        platform's user cache folder; None keeps them in each process's memory.
        Never changes an item's bytes.
    download : bool
        Download whatever is missing under ``root`` first.

    Raises
    ------
    ParameterError
        An option is out of range (split, scheme, seed, renderer, style).
    SourceError
        A source is missing or broken; the message names the file.
    """

    def __init__(
        self,
        root: Optional[PathLike] = None,
        split: str = "train",
        scheme: Union[str, Scheme] = "burst_noise",
        *,
        seed: int = 0,
        renderer: str = "fast",
        style: Optional[str] = None,
        recordings: Optional[PathLike] = None,
        noises: Optional[PathLike] = None,
        labels: Optional[LabelsLike] = None,
        clip_tables: Union[PathLike, str, None] = "auto",
        download: bool = False,
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
        self.clip_tables = clip_tables
        self.root, recordings, noises, labels = resolve_sources(
            root, recordings=recordings, noises=noises, labels=labels, needs_noise=self.scheme.uses_noise,
            download=download,
        )
        self.index: SplitIndex = build_split_index(
            split, recordings, noises if self.scheme.uses_noise else None, labels
        )
        longest = self.index.max_recording_length
        self.recording_bank = ClipBank(
            self.index.recordings, load_wav, kind="recordings", keep=longest or None, cache_dir=clip_tables,
            key=package_versions("numpy", "soundfile"),
        )
        self.noise_bank = NoiseBank(
            self.index.noises, keep=max(longest, MIN_LENGTH) if longest else None, cache_dir=clip_tables
        )
        # A scheme's leading steps that depend on the recording alone (aliased's
        # down-up resampling) run once per recording, into a table every process
        # maps, instead of once per item.
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

    # ------------------------------------------------------------------
    @property
    def labels(self) -> np.ndarray:
        """The split's digit labels, one per item, read-only."""
        return self.index.labels

    def __len__(self) -> int:
        return len(self.index)

    def metadata(self) -> Dict[str, Any]:
        """The identity of this generator's items, as an export records it beside its file.

        Two generators with equal identity give the same bytes; see
        :func:`avmnist_torch.exported.metadata_for`. Reads every source file (once per process).
        """
        return metadata_for(self.split, self.scheme, self.seed, self.style, self.renderer,
                            self.index.recordings, self.index.noises, self.index.labels)

    def check_index(self, index: int) -> int:
        """``index`` as a non-negative position, or ``TypeError`` / ``IndexError`` saying why not."""
        return check_index(index, len(self), self.split)

    def _noise_id(self, index: int) -> Optional[int]:
        if not self.scheme.uses_noise or not self.index.noises:
            return None
        return int(self.index.noise_ids[index])

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

    def _inputs(self, index: int):
        """What item ``index`` (checked) starts from: recording, rate, its random stream and its noise."""
        samples, rate = self._recording(index)
        noise_id = self._noise_id(index)
        noise = None if noise_id is None else functools.partial(self.noise_bank.get, noise_id, rate)
        return samples, rate, item_rng(self.seed, self.split, self.scheme.name, index), noise

    def waveform(self, index: int) -> Tuple[np.ndarray, int, List[dict]]:
        """The degraded waveform of item ``index``, its sample rate and its random draws."""
        samples, rate, rng, noise = self._inputs(self.check_index(index))
        out, draws = apply_scheme(samples, rate, self.scheme, rng=rng, noise=noise, prepared=len(self._prefix))
        return out, rate, draws

    def waveforms(self, indices: Sequence[int]) -> Tuple[List[np.ndarray], List[int]]:
        """The degraded waveforms and sample rates of ``indices``, computed as one batch."""
        inputs = [self._inputs(self.check_index(i)) for i in indices]
        if not inputs:
            return [], []
        samples, rates, rngs, noises = (list(column) for column in zip(*inputs))
        out, _ = apply_scheme_many(samples, rates, self.scheme, rngs=rngs, noises=noises, prepared=len(self._prefix))
        return out, rates

    def spectrogram(self, index: int) -> np.ndarray:
        """Item ``index`` as a (112, 112) uint8 array."""
        samples, rate, _ = self.waveform(index)
        return get_renderer(self.renderer, self.style).render(samples, rate)

    def spectrograms(self, indices: Sequence[int]) -> np.ndarray:
        """Items ``indices`` as an (N, 112, 112) uint8 array: row ``k`` is ``spectrogram(indices[k])``, byte for byte.

        The items are computed together: each distinct index once, the schemes'
        transforms over all clips at once, and one ``render_batch`` per sample rate.
        """
        checked = [self.check_index(i) for i in indices]
        out = np.empty((len(checked), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        if not checked:
            return out
        distinct = list(dict.fromkeys(checked))
        waveforms, rates = self.waveforms(distinct)
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

    def describe(self, index: int) -> Dict[str, Any]:
        """Where item ``index`` comes from and what was drawn for it."""
        index = self.check_index(index)
        _, rate, draws = self.waveform(index)
        noise_id = self._noise_id(index)
        return {
            "index": index,
            "split": self.split,
            "scheme": self.scheme.name,
            "seed": self.seed,
            "label": int(self.index.labels[index]),
            "recording": self.index.recordings[self.index.recording_ids[index]],
            "noise": None if noise_id is None else self.index.noises[noise_id],
            "sample_rate": rate,
            "draws": draws,
            "renderer": self.renderer,
            "style": self.style or get_renderer(self.renderer).style,
        }

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(split={self.split!r}, scheme={self.scheme.name!r}, seed={self.seed}, "
                f"renderer={self.renderer!r}, style={self.style!r}, items={len(self)})")
