"""``AVMNISTDataset``: the whole of AV-MNIST, image and audio, one item at a time.

Item ``i`` pairs MNIST's image ``i`` of a split with the spoken digit that
:class:`~avmnist_torch.dataset.AVMNISTAudioDataset` generates for the same index, so both
halves show the same digit. The image half comes from MNIST's own files (public mirrors,
fetched by ``avmnist-audio download``), either as it is or through the PCA recipe of the
published AV-MNIST (see :mod:`avmnist_torch.image_pca`), or from a user's copy of the
published image files.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .common import ParameterError, PathLike, SourceError, check_split
from .dataset import AVMNISTAudioDataset
from .image_pca import RECIPE, ImageHalfCache, fit_pca, image_half_cache, reconstruct
from .sources.download import AUDIO_SOURCES, SOURCES
from .sources.download import download as download_sources
from .sources.mnist_idx import (
    MNIST_IMAGE_RAW_MD5,
    MNIST_IMAGE_SHAPE,
    MNIST_LABEL_FILES,
    MNIST_RAW_MD5,
    find_labels_beside,
    find_mnist_images,
    idx3_image_bytes,
    labels_md5,
    read_idx_images,
    read_idx_labels,
)

__all__ = ["AVMNISTDataset", "IMAGE_MODES", "check_pairing"]

#: The image halves that need no file of the user's: MNIST's pixels, or the PCA recipe.
IMAGE_MODES = ("pca25", "raw")


def _published_image_file(root: Path, split: str) -> Path:
    """A user's copy of the published image half: a file, or a folder in MultiBench's layout."""
    if root.is_file():
        return root
    for candidate in (root / "image" / f"{split}_data.npy", root / f"{split}_data.npy"):
        if candidate.is_file():
            return candidate
    raise SourceError(
        f"{root}: no {split} image file; expected {root / 'image' / f'{split}_data.npy'} (MultiBench's "
        f"avmnist folder) or {root / f'{split}_data.npy'}; or use image='pca25' to make the image half "
        "from MNIST's files"
    )


def _check_count(count: int, labels: np.ndarray, origin: Path, split: str) -> None:
    if count != len(labels):
        raise SourceError(
            f"{origin}: {count:,} images but {len(labels):,} AV-MNIST {split} labels; image i and "
            f"audio i must be MNIST item i, so both must come from the same split (MNIST's {split} "
            f"split has {60_000 if split == 'train' else 10_000:,})"
        )


def check_pairing(image_file: PathLike, pixels: np.ndarray, labels: np.ndarray, split: str) -> str:
    """Check that image ``i`` of `image_file` shows digit ``labels[i]``, for every ``i``.

    Used by :class:`AVMNISTDataset` at construction and meant for anything that writes both
    halves side by side (an export). The images' own labels are, in this order of preference,
    MNIST's idx1 label file beside the image file, or, for MNIST's published images
    (recognised by the md5 of their content), MNIST's published label sequence.

    Parameters
    ----------
    image_file : path
        The idx3 file the images were read from (named in messages; its folder is searched).
    pixels : numpy.ndarray
        Its images, ``(N, 28, 28)`` uint8.
    labels : numpy.ndarray
        The AV-MNIST labels of the split (what the audio half follows).
    split : {"train", "test"}

    Returns
    -------
    str
        How the pairing was established, for ``describe()``.

    Raises
    ------
    SourceError
        If the counts differ, if the images' labels differ from `labels` (naming the first
        item that differs), or if nothing says which digit each image shows.
    """
    image_file = Path(image_file)
    _check_count(len(pixels), labels, image_file, split)
    beside = find_labels_beside(image_file, split)
    if beside is not None:
        try:
            theirs = read_idx_labels(beside)
        except ValueError as err:
            raise SourceError(str(err)) from None
        if len(theirs) != len(labels) or not np.array_equal(theirs, labels):
            raise SourceError(
                f"{beside}: the labels of the images in {image_file} differ from the AV-MNIST {split} labels "
                f"({_first_difference(theirs, labels)}); the images and the labels are not from the same MNIST "
                "split or order"
            )
        return f"labels beside the images ({beside.name}) equal the AV-MNIST labels"
    if hashlib.md5(idx3_image_bytes(pixels)).hexdigest() == MNIST_IMAGE_RAW_MD5[split]:
        if labels_md5(labels) != MNIST_RAW_MD5[split]:
            raise SourceError(
                f"{image_file} holds MNIST's published {split} images, but the AV-MNIST labels are not "
                f"MNIST's {split} label sequence; use MNIST's labels (run 'avmnist-audio download --root DATA')"
            )
        return "MNIST's published images (md5) and MNIST's label sequence (md5)"
    raise SourceError(
        f"{image_file}: these are not MNIST's published {split} images and no label file lies beside them, "
        f"so nothing says which digit each shows; put their idx1 label file ({MNIST_LABEL_FILES[split]}[.gz]) "
        f"in {image_file.parent}"
    )


class AVMNISTDataset(torch.utils.data.Dataset):
    """AV-MNIST with both modalities: item ``i`` is ``(image, audio, label)`` for MNIST item ``i``.

    Items are tuples in MultiBench's order (image, audio, label), so the default DataLoader
    collates them into three batched tensors:

    - ``image``: a ``(1, 28, 28)`` tensor. ``image="raw"``: MNIST's pixels, uint8 0-255.
      ``image="pca25"``: the published recipe (:mod:`avmnist_torch.image_pca`) as float32:
      centred values (roughly -210 to 290 for MNIST), not divided by 255. A path: the user's
      stored values, as float32. float32 because that is what PyTorch models take; the
      float64 the recipe computes stays in the cache and in exports. MultiBench divides the
      image by 255 before training: pass ``transform_image=lambda x: x / 255`` to do the same.
    - ``audio``: exactly :class:`~avmnist_torch.dataset.AVMNISTAudioDataset`'s item ``i``, a
      ``(1, 112, 112)`` uint8 spectrogram.
    - ``label``: the digit, an int.

    Parameters
    ----------
    root : path, optional
        A data root: the audio sources of :class:`AVMNISTAudioDataset` and MNIST's image files
        in ``root/mnist/`` (as ``avmnist-audio download`` lays them out) or in torchvision's
        ``root/MNIST/raw/``.
    split : {"train", "test"}
    scheme : str or Scheme
        The audio degradation (see :class:`AVMNISTAudioDataset`).
    seed : int
        Seeds the audio items' random draws.
    image : {"pca25", "raw"} or path
        ``"pca25"`` (default): MNIST's images through the published PCA recipe, fitted once per
        split and kept in the cache folder. ``"raw"``: MNIST's images as they are. A path: a
        user's own copy of the published image files, served as stored: a folder holding
        ``image/{split}_data.npy`` (MultiBench's avmnist folder) or ``{split}_data.npy``, or
        the ``.npy`` file itself; ``N`` rows of 784 (or 28x28) values. (Give a ``Path`` for a
        folder literally named ``raw`` or ``pca25``.)
    images : path, optional
        Where MNIST's image file for the split is, for ``"pca25"`` and ``"raw"``: an idx3 file
        (``train-images-idx3-ubyte[.gz]``) or a folder searched like `root`. Default: `root`.
    transform_image, transform_audio : callable, optional
        Applied to the image and audio tensors.
    target_transform : callable, optional
        Applied to the label.
    image_cache : path, "auto" or None
        Where the ``"pca25"`` image half is kept (see
        :func:`~avmnist_torch.image_pca.image_half`); None computes it in this process.
    download : bool
        Download whatever is missing under `root` first: the audio half's sources and, unless
        `image` is a path of your own, MNIST's image files.
    **audio_options
        Passed to :class:`AVMNISTAudioDataset`: ``renderer``, ``style``, ``recordings``,
        ``noises``, ``labels``, ``noise_cache``, ``cache``.

    Raises
    ------
    SourceError
        At construction, if the image file is missing or broken, if the number of images is
        not the number of AV-MNIST labels, or if the images' own labels (the MNIST label file
        beside them, or MNIST's label sequence for MNIST's published images) differ from the
        AV-MNIST labels: image ``i`` and audio ``i`` would then show different digits.
    ParameterError
        For an unknown split. (A string other than ``"pca25"`` and ``"raw"`` is taken as a path, so
        a misspelt mode fails as a missing image file, naming the path it looked for.)

    Notes
    -----
    DataLoader workers receive the path of the cached ``"pca25"`` file (or of the user's file)
    and map it themselves, so its rows are shared through the operating system. ``"raw"``
    images (47 MB for the train split) travel with the dataset: shared copy-on-write by forked
    workers (Linux), pickled once per worker where workers are spawned (macOS, Windows).
    """

    def __init__(
        self,
        root: Optional[PathLike] = None,
        split: str = "train",
        scheme: Any = "burst_noise",
        seed: int = 0,
        *,
        image: Union[str, PathLike] = "pca25",
        images: Optional[PathLike] = None,
        transform_image: Optional[Callable] = None,
        transform_audio: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
        image_cache: Union[PathLike, str, None] = "auto",
        download: bool = False,
        **audio_options: Any,
    ) -> None:
        check_split(split)
        for name in ("transform", "target_transform"):
            if name in audio_options:
                raise TypeError(f"{name}= is not an option here: use transform_audio= and target_transform=")
        self.split = split
        self.transform_image = transform_image
        self.transform_audio = transform_audio
        self.target_transform = target_transform
        if download:
            if root is None:
                raise ParameterError("download=True needs root: the folder to download into")
            wanted = AUDIO_SOURCES if str(image) not in IMAGE_MODES else SOURCES
            download_sources(root, sources=wanted)
        self.audio = AVMNISTAudioDataset(root, split, scheme, seed, **audio_options)
        labels = self.audio.labels

        self._memory: Optional[np.ndarray] = None  # image rows held in this process
        self._mapped: Optional[Path] = None  # or a cached .npy that each process maps itself
        self._rows: Optional[np.ndarray] = None
        self._cached: Optional[ImageHalfCache] = None  # or the checked reader of the cached .npy
        self.n_components: Optional[int] = None
        self.image_file: Path
        if isinstance(image, str) and image in IMAGE_MODES:
            self.image_mode = image
            source = images if images is not None else root
            if source is None:
                raise SourceError(f"image={image!r} needs MNIST's image file: give root or images=")
            source = Path(source)
            self.image_file = source if source.is_file() else find_mnist_images(source, split)
            pixels = read_idx_images(self.image_file)
            self.pairing = check_pairing(self.image_file, pixels, labels, split)
            if image == "raw":
                self._memory = pixels
            elif image_cache is None:
                fit = fit_pca(pixels)
                self.n_components = fit.n_components
                self._memory = reconstruct(pixels, fit)
            else:
                rows = image_half_cache(pixels, cache_dir=image_cache)
                if isinstance(rows, ImageHalfCache):  # checks its file again in each worker, rows as read
                    self._cached = rows
                    self._mapped = rows.path
                    self.n_components = rows.n_components
                else:  # the cache could not be written: computed in memory (a warning said so)
                    self._memory = rows
        elif isinstance(image, (str, os.PathLike)):
            self.image_mode = "file"
            self.image_file = _published_image_file(Path(image), split)
            try:
                stored = np.load(self.image_file, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as err:
                raise SourceError(f"{self.image_file}: not a readable .npy image file ({err})") from None
            if stored.ndim not in (2, 3) or stored.shape[1:] not in ((784,), MNIST_IMAGE_SHAPE):
                raise SourceError(f"{self.image_file}: shape {stored.shape}, expected (N, 784) or (N, 28, 28)")
            if stored.dtype.kind not in "uif":
                raise SourceError(f"{self.image_file}: dtype {stored.dtype}, expected numbers")
            self.pairing = self._check_file_pairing(stored, labels)
            self._mapped = self.image_file
        else:
            raise SourceError(f"image must be 'pca25', 'raw' or a path, got {image!r}")

    # ------------------------------------------------------------------
    def _check_file_pairing(self, stored: np.ndarray, labels: np.ndarray) -> str:
        _check_count(len(stored), labels, self.image_file, self.split)
        # MultiBench's folder keeps {split}_labels.npy beside image/ (and audio/).
        for candidate in (self.image_file.parent.parent / f"{self.split}_labels.npy",
                          self.image_file.parent / f"{self.split}_labels.npy"):
            if candidate.is_file():
                theirs = np.load(candidate, allow_pickle=False)
                if theirs.shape != labels.shape or not np.array_equal(theirs, labels):
                    raise SourceError(
                        f"{candidate}: the labels stored with {self.image_file} differ from the AV-MNIST "
                        f"{self.split} labels ({_first_difference(theirs, labels)})"
                    )
                return f"labels stored with the images ({candidate}) equal the AV-MNIST labels"
        return "by count only: no labels stored with the images"

    # ------------------------------------------------------------------
    def __getstate__(self) -> Dict[str, Any]:
        # DataLoader workers get the path of a cached file, never a copy of its rows.
        state = self.__dict__.copy()
        state["_rows"] = None
        return state

    def _image_rows(self) -> Union[np.ndarray, ImageHalfCache]:
        if self._cached is not None:
            return self._cached
        if self._rows is None:
            self._rows = self._memory if self._memory is not None else np.load(self._mapped, mmap_mode="r")
        return self._rows

    @property
    def labels(self) -> np.ndarray:
        return self.audio.labels

    def __len__(self) -> int:
        return len(self.audio)

    def image_array(self, index: int) -> np.ndarray:
        """Image ``index`` as a (28, 28) numpy array: uint8 for ``"raw"``, else float32."""
        index = self.audio._check_index(index)
        row = self._image_rows()[index]
        if self.image_mode == "raw":
            return np.array(row, dtype=np.uint8).reshape(MNIST_IMAGE_SHAPE)
        return np.array(row, dtype=np.float32).reshape(MNIST_IMAGE_SHAPE)

    def _item(self, index: int, audio: Any, label: Any) -> Tuple[Any, Any, Any]:
        """Item ``index`` from its audio half: the image looked up, every transform applied."""
        image = torch.from_numpy(self.image_array(self.audio._check_index(index))[None])
        if self.transform_image is not None:
            image = self.transform_image(image)
        if self.transform_audio is not None:
            audio = self.transform_audio(audio)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, audio, label

    def __getitem__(self, index: int) -> Tuple[Any, Any, Any]:
        index = self.audio._check_index(index)
        return self._item(index, *self.audio[index])

    def __getitems__(self, indices: Sequence[int]) -> List[Tuple[Any, Any, Any]]:
        """Items ``indices`` at once, exactly ``[self[i] for i in indices]``.

        PyTorch's DataLoader calls this for a whole batch; the audio half is computed as one
        batch (see :meth:`AVMNISTAudioDataset.__getitems__`), the image rows are looked up.
        """
        pairs = self.audio.__getitems__(indices)
        return [self._item(index, audio, label) for index, (audio, label) in zip(indices, pairs)]

    def describe(self, index: int) -> Dict[str, Any]:
        """Where both halves of item ``index`` come from."""
        index = self.audio._check_index(index)
        image: Dict[str, Any] = {"mode": self.image_mode, "file": str(self.image_file), "row": index,
                                 "pairing": self.pairing}
        if self.image_mode == "pca25":
            image.update(recipe=RECIPE, n_components=self.n_components,
                         cache=str(self._mapped) if self._mapped is not None else None,
                         note="MNIST image projected on the split's first n principal components, centred "
                              "(mean not added back), served as float32")
        elif self.image_mode == "raw":
            image.update(note="MNIST's pixels, uint8")
        else:
            image.update(note="the user's stored values, served as float32")
        return {"index": index, "split": self.split, "label": int(self.labels[index]), "image": image,
                "audio": self.audio.describe(index)}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(split={self.split!r}, scheme={self.audio.scheme.name!r}, "
                f"seed={self.audio.seed}, image={self.image_mode!r}, items={len(self)})")


def _first_difference(a: np.ndarray, b: np.ndarray) -> str:
    if len(a) != len(b):
        return f"{len(a):,} labels against {len(b):,}"
    i = int(np.flatnonzero(np.asarray(a) != np.asarray(b))[0])
    return f"first at item {i}: {int(a[i])} against {int(b[i])}"
