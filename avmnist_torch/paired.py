"""The whole of AV-MNIST as PyTorch ``Dataset``s: ``AVMNISTDataset`` (image, audio, label) and ``AVMNISTImageDataset``."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .common import PathLike
from .dataset import AVMNISTAudioDataset, LabelledDataset, apply_transform
from .generator import resolve_sources
from .image_half import ImageHalf, check_pairing
from .schemes import Scheme
from .sources.download import AUDIO_SOURCES, SOURCES
from .sources.labels import LabelsLike, load_labels

__all__ = ["AVMNISTDataset", "AVMNISTImageDataset", "check_pairing"]


class AVMNISTDataset(LabelledDataset):
    """AV-MNIST with both modalities: item ``i`` is ``(image, audio, label)`` for MNIST item ``i``.

    MNIST's image ``i`` of the split with the spoken digit of the same index, in MultiBench's order (the default
    DataLoader collates three batched tensors):

    - ``image``: a ``(1, 28, 28)`` tensor. ``image="pca25"`` (default): the published recipe
      (:mod:`avmnist_torch.image_pca`) as float32, centred values (roughly -210 to 290 for MNIST), not divided
      by 255. ``image="raw"``: MNIST's pixels, uint8. ``image_file=PATH``: the published image files, as float32.
    - ``audio``: exactly :class:`~avmnist_torch.dataset.AVMNISTAudioDataset`'s item ``i``, a ``(1, 112, 112)``
      uint8 spectrogram.
    - ``label``: the digit, an int.

    MultiBench and the thesis divide both halves by 255 before training, as
    ``transform_image=DivideBy255(), transform_audio=DivideBy255()`` does.

    Parameters
    ----------
    root : path, optional
        A data root: the audio half's sources (see :class:`AVMNISTAudioDataset`) and MNIST's image files in
        ``root/mnist/`` or torchvision's ``root/MNIST/raw/``.
    split : {"train", "test"}
    scheme : str or Scheme
        The audio degradation (see :class:`AVMNISTAudioDataset`).
    seed : int
        Seeds the audio items' random streams.
    image : {"pca25", "raw"}
        Which image half to make from MNIST's images.
    image_file : path, optional
        Serve a copy of the published image files instead (see :class:`~avmnist_torch.image_half.ImageHalf`).
    images : path, optional
        MNIST's image file for the split (an idx3 file or a folder); default `root`.
    transform_image, transform_audio, target_transform : callable, optional
        Applied to the image tensor, the audio tensor and the label.
    image_cache : path, "auto" or None
        Where the ``"pca25"`` image half is kept; None computes it in this process.
    download : bool
        Download whatever is missing under `root` first: the audio half's sources and, unless `image_file` is
        given, MNIST's image files.
    check_mnist : bool, default True
        Files under MNIST's names (``t10k-images-idx3-ubyte[.gz]`` and the label file beside it) must hold
        MNIST's published content, checked by md5 once per process per file; a stale or blank copy is refused,
        naming it. False takes images of your own under those names (synthetic or altered, in MNIST's layout),
        paired by the label file beside them.
    **audio_options
        Passed to :class:`AVMNISTAudioDataset`: ``renderer``, ``style``, ``recordings``, ``noises``, ``labels``,
        ``clip_tables``, ``from_export``, ``draws``, ``redraw_recording``, ``snr_range_db`` (per-epoch audio
        draws: call :meth:`set_epoch` before each epoch; the images never change).

    Raises
    ------
    SourceError
        At construction, if the image file is missing or broken, is under MNIST's name but not MNIST's (see
        `check_mnist`), or its images do not show the digits of the AV-MNIST labels.
    ParameterError
        For an unknown split or image mode.
    """

    def __init__(
        self,
        root: Optional[PathLike] = None,
        split: str = "train",
        scheme: Union[str, Scheme] = "burst_noise",
        *,
        seed: int = 0,
        image: str = "pca25",
        image_file: Optional[PathLike] = None,
        images: Optional[PathLike] = None,
        transform_image: Optional[Callable] = None,
        transform_audio: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
        image_cache: Union[PathLike, str, None] = "auto",
        download: bool = False,
        check_mnist: bool = True,
        **audio_options: Any,
    ) -> None:
        for name in ("transform", "target_transform"):
            if name in audio_options:
                raise TypeError(f"{type(self).__name__}() takes no {name}=: each part has its own, "
                                "transform_image= (the image), transform_audio= (the spectrogram) and "
                                "target_transform= (the label)")
        self.transform_image = transform_image
        self.transform_audio = transform_audio
        self.target_transform = target_transform
        if download:
            resolve_sources(root, needs_noise=False, download=True,
                            download_sources_of=AUDIO_SOURCES if image_file is not None else SOURCES)
        self.audio = AVMNISTAudioDataset(root, split, scheme, seed=seed, **audio_options)
        self.root = self.audio.root
        self.image_half = ImageHalf(root, split, self.audio.labels, image=image, image_file=image_file,
                                    images=images, image_cache=image_cache, check_mnist=check_mnist)

    split = property(lambda self: self.audio.split, doc="``'train'`` or ``'test'``.")
    image_mode = property(lambda self: self.image_half.mode, doc="``'pca25'``, ``'raw'`` or ``'file'``.")
    image_file = property(lambda self: self.image_half.file, doc="The file the image half was read from.")
    pairing = property(lambda self: self.image_half.pairing, doc="How image/label pairing was established.")
    n_components = property(lambda self: self.image_half.n_components,
                            doc="Principal components the ``'pca25'`` image half kept (None otherwise).")
    labels = property(lambda self: self.audio.labels, doc="Every item's label, as a read-only numpy array.")
    epoch = property(lambda self: self.audio.epoch, doc="The epoch whose audio items this dataset serves.")

    def set_epoch(self, epoch: int) -> None:
        """Serve epoch ``epoch``'s audio items, in this process and in every DataLoader worker."""
        self.audio.set_epoch(epoch)

    def image_array(self, index: int) -> np.ndarray:
        """Image ``index`` as a (28, 28) numpy array: uint8 for ``"raw"``, else float32."""
        return self.image_half.image(self._check_index(index))

    def _item(self, index: int, audio: Any, label: Any) -> Tuple[Any, Any, Any]:
        image = torch.from_numpy(self.image_half.image(index)[None])
        return (apply_transform(self.transform_image, image), apply_transform(self.transform_audio, audio),
                apply_transform(self.target_transform, label))

    def __getitem__(self, index: int) -> Tuple[Any, Any, Any]:
        index = self._check_index(index)
        return self._item(index, *self.audio[index])

    def __getitems__(self, indices: Sequence[int]) -> List[Tuple[Any, Any, Any]]:
        """Items ``indices`` at once, exactly ``[self[i] for i in indices]`` (the audio half computed as one batch)."""
        checked = [self._check_index(i) for i in indices]
        pairs = self.audio.__getitems__(checked)
        return [self._item(index, audio, label) for index, (audio, label) in zip(checked, pairs)]

    def describe(self, index: int) -> Dict[str, Any]:
        """Where both halves of item ``index`` come from."""
        index = self._check_index(index)
        return {"index": index, "split": self.split, "label": int(self.labels[index]),
                "image": self.image_half.describe(index), "audio": self.audio.describe(index)}

    def __repr__(self) -> str:
        lines = [f"Split: {self.split}", f"Scheme: {self.audio.scheme.name}", f"Seed: {self.audio.seed}",
                 f"Image: {self.image_mode} ({self.image_file})"]
        return self._repr(lines, {"Image transform": self.transform_image, "Audio transform": self.transform_audio,
                                  "Target transform": self.target_transform})


class AVMNISTImageDataset(LabelledDataset):
    """The image half of AV-MNIST alone: item ``i`` is ``(image, label)``, as :class:`AVMNISTDataset` gives them.

    Parameters
    ----------
    root : path, optional
        A data root with MNIST's image files and the AV-MNIST labels (``root/avmnist/{split}_labels.npy``).
    split : {"train", "test"}
    image, image_file, images, image_cache, download, check_mnist
        As for :class:`AVMNISTDataset`.
    labels : path or array, optional
        The split's labels, if not under `root`.
    transform, target_transform : callable, optional
        Applied to the image tensor and to the label.
    """

    def __init__(
        self,
        root: Optional[PathLike] = None,
        split: str = "train",
        *,
        image: str = "pca25",
        image_file: Optional[PathLike] = None,
        images: Optional[PathLike] = None,
        labels: Optional[LabelsLike] = None,
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
        image_cache: Union[PathLike, str, None] = "auto",
        download: bool = False,
        check_mnist: bool = True,
    ) -> None:
        if download:
            resolve_sources(root, needs_noise=False, download=True, download_sources_of=SOURCES)
        self.root = root
        self.split = split
        self.transform = transform
        self.target_transform = target_transform
        self._labels = load_labels(labels if labels is not None else root, split)
        self.image_half = ImageHalf(root, split, self._labels, image=image, image_file=image_file,
                                    images=images, image_cache=image_cache, check_mnist=check_mnist)

    labels = property(lambda self: self._labels, doc="Every item's label, as a read-only numpy array.")

    def __getitem__(self, index: int) -> Tuple[Any, Any]:
        index = self._check_index(index)
        return (apply_transform(self.transform, torch.from_numpy(self.image_half.image(index)[None])),
                apply_transform(self.target_transform, int(self._labels[index])))

    def describe(self, index: int) -> Dict[str, Any]:
        """Where image ``index`` comes from."""
        index = self._check_index(index)
        return {"index": index, "split": self.split, "label": int(self._labels[index]),
                "image": self.image_half.describe(index)}

    def __repr__(self) -> str:
        lines = [f"Split: {self.split}", f"Image: {self.image_half.mode} ({self.image_half.file})"]
        return self._repr(lines, {"Transform": self.transform, "Target transform": self.target_transform})
