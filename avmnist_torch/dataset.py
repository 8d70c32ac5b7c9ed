"""``AVMNISTAudioDataset``: the audio half of AV-MNIST as a PyTorch ``Dataset``, a thin torch wrapper over
:class:`~avmnist_torch.generator.AudioItemGenerator` (or a finished export)."""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .common import ParameterError, PathLike, check_index
from .exported import ExportedItems, resolve_export
from .generator import CLASSES, AudioItemGenerator
from .item_options import check_epoch
from .rendering import IMAGE_SIZE
from .schemes import Scheme
from .sources.labels import LabelsLike

__all__ = ["AVMNISTAudioDataset", "apply_transform"]


def apply_transform(transform: Optional[Callable], value: Any) -> Any:
    """``transform(value)``, or `value` itself when `transform` is None."""
    return value if transform is None else transform(value)


class LabelledDataset(torch.utils.data.Dataset):
    """What the datasets share: ``classes``, ``targets`` and the length from ``labels``, index checks, the repr."""

    classes = CLASSES
    targets = property(lambda self: torch.as_tensor(np.array(self.labels, dtype=np.int64)),
                       doc="Every item's label, as torchvision's datasets give them.")

    def __len__(self) -> int:
        return len(self.labels)

    def _check_index(self, index: int) -> int:
        return check_index(index, len(self), self.split)

    def _repr(self, lines: Sequence[str], transforms: Mapping[str, Optional[Callable]]) -> str:
        """A torchvision ``VisionDataset``-style description: name, size, root, options, then the transforms."""
        body = [f"Number of datapoints: {len(self)}"]
        if getattr(self, "root", None) is not None:
            body.append(f"Root location: {self.root}")
        body += list(lines)
        body += [f"{name}: {transform!r}" for name, transform in transforms.items() if transform is not None]
        return "\n".join([f"Dataset {type(self).__name__}"] + ["    " + line for line in body])


class AVMNISTAudioDataset(LabelledDataset):
    """The audio half of AV-MNIST: item ``i`` is ``(spectrogram, label)``, the spoken digit for MNIST item ``i``.

    ``spectrogram`` is a ``(1, 112, 112)`` uint8 tensor (dark = loud, as the reference notebook draws it) and
    ``label`` the digit. An item is a pure function of (data, split, scheme, index, seed, options): the same
    bytes in any order, with any number of DataLoader workers (batched or not), on any machine.

    With ``draws="per_epoch"`` the items are drawn anew every epoch (masks, noise clip and window, and as chosen
    the recording and the SNR): call :meth:`set_epoch` before each epoch, as for a ``DistributedSampler``. Item
    ``i`` of epoch ``e`` is then a pure function of (data, split, scheme, seed, options, e, i), whatever the
    workers, start method or DDP rank; a run resumed at epoch ``k`` calls ``set_epoch(k)``.

    Parameters
    ----------
    root : path, optional
        The data root: ``recordings/``, ``noise_recordings/{audio,meta}`` and
        ``avmnist/{train,test}_labels.npy``, as ``download=True`` lays them out. Any part can instead be given
        on its own with ``recordings``, ``noises`` or ``labels``.
    split : {"train", "test"}
    scheme : str or Scheme
        ``"extreme_noise"``, ``"multi_band"``, ``"burst_noise"``, ``"aliased"``, ``"distorted"`` or ``"clean"``,
        or a :class:`~avmnist_torch.schemes.Scheme` of your own.
    seed : int
        Seeds every item's own random stream; 0 to 2**64 - 1.
    renderer : {"fast", "matplotlib"}
        ``"fast"`` reproduces matplotlib's pixels exactly without matplotlib; ``"matplotlib"`` draws with the
        installed matplotlib, as the notebook did.
    style : {"3.10", "3.11", "3.9"}, optional
        Which matplotlib version's pixels the fast renderer reproduces (default ``"3.10"``, the notebook's).
    transform, target_transform : callable, optional
        Applied to the spectrogram tensor and to the label; see :mod:`avmnist_torch.transforms` for the scalings
        training code expects.
    recordings, noises, labels : optional
        A part of the sources given on its own: the FSDD ``recordings`` folder, an ESC-50 folder (``audio/`` and
        ``meta/esc50.csv``), and the split's labels (an array, a .npy file, an MNIST idx file or a folder).
    clip_tables : path, "auto" or None
        Folder for the clip tables (decoded recordings, resampled noises), made once and read by every process
        instead of decoding again; "auto" is ``$AVMNIST_CACHE`` or the user cache folder; None keeps them in
        each process's memory. Never changes an item's bytes.
    download : bool
        Download whatever is missing under ``root`` first.
    from_export : path or "auto", optional
        Serve the items from a finished export instead of generating them. A file with a sidecar (written by
        ``export``) must match this dataset's options, or construction fails saying what differs; ``"auto"``
        takes ``root/avmnist/audio/{split}_data_augmented_{scheme}.npy`` (per epoch, the only form
        ``draws="per_epoch"`` takes: ``..._{scheme}_epoch{K}.npy``) only when it matches, and generates
        otherwise. A file without one (the notebook's own) is served as it is. What is checked when, and what
        a failed check raises: docs/formats.md.
    draws : {"fixed", "per_epoch"}
        ``"fixed"`` (default): the same items every epoch, the notebook's. ``"per_epoch"``: new draws every
        epoch (see ``docs/items.md``).
    redraw_recording : bool
        Per epoch, also draw the recording: any of the split's recordings of the item's digit.
    snr_range_db : float, optional
        Per epoch, each item draws its SNR uniformly from the scheme's value plus or minus this many dB.

    Attributes
    ----------
    classes : list of str
        The ten digits, named as torchvision's MNIST names them.
    targets : torch.Tensor
        Every item's label.
    generator : AudioItemGenerator
        What makes the items (numpy, no torch).
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
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
        recordings: Optional[PathLike] = None,
        noises: Optional[PathLike] = None,
        labels: Optional[LabelsLike] = None,
        clip_tables: Union[PathLike, str, None] = "auto",
        download: bool = False,
        from_export: Optional[PathLike] = None,
        draws: str = "fixed",
        redraw_recording: bool = False,
        snr_range_db: Optional[float] = None,
    ) -> None:
        self.generator = AudioItemGenerator(
            root, split, scheme, seed=seed, renderer=renderer, style=style, recordings=recordings, noises=noises,
            labels=labels, clip_tables=clip_tables, download=download, draws=draws,
            redraw_recording=redraw_recording, snr_range_db=snr_range_db,
        )
        if self.generator.per_epoch and from_export is not None and not (isinstance(from_export, str)
                                                                         and from_export == "auto"):
            raise ParameterError(f"from_export={str(from_export)!r} serves one file of items, and draws='per_epoch' "
                                 "draws other items every epoch: give from_export='auto', which serves each epoch "
                                 "from its own export ('avmnist export --draws per_epoch --epoch K' writes it)")
        # Shared memory: forked workers map the same page and spawned ones get a handle to it through
        # torch's pickler, so set_epoch() here reaches persistent workers too.
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self.root = self.generator.root
        self.transform = transform
        self.target_transform = target_transform
        # Only the path travels to workers; each process opens and checks the file itself (per epoch: key epoch).
        self._from_export = from_export
        self._exports: Dict[Optional[int], Optional[ExportedItems]] = {}
        self._find_export()  # found (or refused) now, not at the first item

    split = property(lambda self: self.generator.split, doc="``'train'`` or ``'test'``.")
    scheme = property(lambda self: self.generator.scheme, doc="The :class:`~avmnist_torch.schemes.Scheme`.")
    seed = property(lambda self: self.generator.seed, doc="The seed of the items' random streams.")
    renderer = property(lambda self: self.generator.renderer, doc="``'fast'`` or ``'matplotlib'``.")
    style = property(lambda self: self.generator.style, doc="The matplotlib version whose pixels are drawn.")
    index = property(lambda self: self.generator.index, doc="Which recording and noise every item takes.")
    draws = property(lambda self: self.generator.draws, doc="``'fixed'`` or ``'per_epoch'``.")
    labels = property(lambda self: self.generator.labels, doc="Every item's label, as a read-only numpy array.")
    epoch = property(lambda self: int(self._epoch[0]), doc="The epoch whose items are served (0 until set_epoch).")

    def _find_export(self) -> Optional[ExportedItems]:
        epoch = self.epoch if self.generator.per_epoch else None
        if epoch not in self._exports:
            metadata = functools.partial(self.generator.metadata, epoch=epoch)  # epoch None: the fixed items'
            self._exports[epoch] = resolve_export(self._from_export, self.root, self.split,
                                                  self.generator.scheme.name, metadata, epoch=epoch)
        return self._exports[epoch]

    export = property(_find_export, doc="The finished export the items (of the current epoch, per epoch) are "
                                        "served from; None: generated.")

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        # A plain pickle or deepcopy gives a private copy of the epoch: share it again for workers forked from it.
        if not self._epoch.is_shared():
            self._epoch.share_memory_()

    def set_epoch(self, epoch: int) -> None:
        """Serve epoch ``epoch``'s items from now on, in this process and in every DataLoader worker.

        Call it before iterating over the epoch (with a ``DistributedSampler``,
        beside its own ``set_epoch``). With ``draws="fixed"`` it only records the number.
        """
        self._epoch[0] = check_epoch(epoch)

    def metadata(self) -> Dict[str, Any]:
        """The identity of the items (of the current epoch), as an export records it (see ``AudioItemGenerator``)."""
        return self.generator.metadata(epoch=self.epoch)

    def _noise_path(self, index: int) -> Optional[str]:
        # The notebook-equivalence tests compare the item -> noise mapping through this name.
        noise_id = self.generator._noise_id(self._check_index(index))
        return None if noise_id is None else self.generator.index.noises[noise_id]

    def waveform(self, index: int) -> Tuple[np.ndarray, int, List[dict]]:
        """The degraded waveform of item ``index`` (of the current epoch), its sample rate and its random draws."""
        return self.generator.waveform(index, epoch=self.epoch)

    def spectrograms(self, indices: Sequence[int]) -> np.ndarray:
        """Items ``indices`` as an (N, 112, 112) uint8 array, computed as one batch (or read from the export)."""
        if self.export is None:
            return self.generator.spectrograms(indices, epoch=self.epoch)
        checked = [self._check_index(i) for i in indices]
        out, served = self.export.read(checked)
        if not served.all():  # from_export="auto" only: rows that failed their checks are generated instead
            missing = np.flatnonzero(~served)
            out[missing] = self.generator.spectrograms([checked[k] for k in missing], epoch=self.epoch)
        return out

    def spectrogram(self, index: int) -> np.ndarray:
        """Item ``index`` as a (112, 112) uint8 numpy array."""
        if self.export is None:
            return self.generator.spectrogram(index, epoch=self.epoch)
        return self.spectrograms([index])[0]

    def _item(self, index: int, pixels: np.ndarray) -> Tuple[Any, Any]:
        return (apply_transform(self.transform, torch.from_numpy(pixels.reshape(1, IMAGE_SIZE, IMAGE_SIZE))),
                apply_transform(self.target_transform, int(self.generator.labels[index])))

    def __getitem__(self, index: int) -> Tuple[Any, Any]:
        index = self._check_index(index)
        return self._item(index, self.spectrogram(index))

    def __getitems__(self, indices: Sequence[int]) -> List[Tuple[Any, Any]]:
        """``[self[i] for i in indices]``, the same types and bytes, computed as one batch (``DataLoader`` calls it)."""
        checked = [self._check_index(i) for i in indices]
        pixels = self.spectrograms(checked)
        # each its own copy: an item holds its own 12 kB, not the whole batch, as self[i]'s does
        return [self._item(index, pixels[k].copy()) for k, index in enumerate(checked)]

    def describe(self, index: int) -> Dict[str, Any]:
        """Where item ``index`` comes from and what was drawn for it (in the current epoch, per epoch)."""
        out = self.generator.describe(index, epoch=self.epoch)
        out["export"] = None if self.export is None else {
            "path": self.export.path, "provenance": self.export.provenance,
            "note": "rows made by this package with these options" if self.export.provenance == "sidecar"
            else "rows served as stored (no metadata, e.g. the notebook's file): the draws above are what "
                 "this dataset would generate, not what made them",
        }
        return out

    def __repr__(self) -> str:
        lines = [f"Split: {self.split}", f"Scheme: {self.scheme.name}", f"Seed: {self.seed}",
                 f"Renderer: {self.renderer} (matplotlib {self.style or 'installed'} pixels)"]
        if self.generator.per_epoch:
            lines.append(f"Draws: per epoch (epoch {self.epoch}, redraw_recording={self.generator.redraw_recording}, "
                         f"snr_range_db={self.generator.snr_range_db})")
        if self.export is not None:
            lines.append(f"Served from: {self.export.path}")
        return self._repr(lines, {"Transform": self.transform, "Target transform": self.target_transform})
