"""The image half of AV-MNIST for one split (:class:`ImageHalf`): MNIST's images, through the published PCA
recipe or as they are, each checked to show the digit of its AV-MNIST label (:func:`check_pairing`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np

from .common import ParameterError, PathLike, SourceError, StorageError, check_split
from .files import RowReader, StoredFile, read_npy_header
from .image_pca import RECIPE, ImageHalfCache, fit_pca, image_half_cache, reconstruct
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

__all__ = ["ImageHalf", "IMAGE_MODES", "check_pairing"]

#: The image halves made from MNIST's own files.
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


def _check_same_labels(theirs: np.ndarray, labels: np.ndarray, split: str, whose: str, hint: str = "") -> None:
    if theirs.shape == labels.shape and np.array_equal(theirs, labels):
        return
    if len(theirs) != len(labels):
        where = f"{len(theirs):,} labels against {len(labels):,}"
    else:
        i = int(np.flatnonzero(np.asarray(theirs) != np.asarray(labels))[0])
        where = f"first at item {i}: {int(theirs[i])} against {int(labels[i])}"
    raise SourceError(f"{whose} differ from the AV-MNIST {split} labels ({where}){hint}")


def check_pairing(image_file: PathLike, pixels: np.ndarray, labels: np.ndarray, split: str, *,
                  check_mnist: bool = True) -> str:
    """Check that image ``i`` of `image_file` (its ``pixels``) shows digit ``labels[i]`` (the split's AV-MNIST
    labels), for every ``i``; returns how the pairing was established, for ``describe()``.

    The images' own labels are MNIST's idx1 label file beside `image_file` (under MNIST's name it must
    hold MNIST's labels, with `check_mnist`) or else, for MNIST's published images (recognised by the md5
    of their content), MNIST's published label sequence. A :class:`SourceError` says when the counts
    differ, which item differs first, or that nothing says which digit each image shows.
    """
    image_file = Path(image_file)
    _check_count(len(pixels), labels, image_file, split)
    beside = find_labels_beside(image_file, split)
    if beside is not None:
        _check_same_labels(read_idx_labels(beside, check=check_mnist), labels, split,
                           f"{beside}: the labels of the images in {image_file}",
                           "; the images and the labels are not from the same MNIST split or order")
        return f"labels beside the images ({beside.name}) equal the AV-MNIST labels"
    if hashlib.md5(idx3_image_bytes(pixels)).hexdigest() == MNIST_IMAGE_RAW_MD5[split]:
        if labels_md5(labels) != MNIST_RAW_MD5[split]:
            raise SourceError(
                f"{image_file} holds MNIST's published {split} images, but the AV-MNIST labels are not "
                f"MNIST's {split} label sequence; use MNIST's labels (pass download=True, or run 'avmnist download --root DATA')"
            )
        return "MNIST's published images (md5) and MNIST's label sequence (md5)"
    raise SourceError(
        f"{image_file}: these are not MNIST's published {split} images and no label file lies beside them, "
        f"so nothing says which digit each shows; put their idx1 label file ({MNIST_LABEL_FILES[split]}[.gz]) "
        f"in {image_file.parent}"
    )


def _check_file_pairing(image_file: Path, stored: np.ndarray, labels: np.ndarray, split: str) -> str:
    _check_count(len(stored), labels, image_file, split)
    # MultiBench's folder keeps {split}_labels.npy beside image/ (and audio/).
    for candidate in (image_file.parent.parent / f"{split}_labels.npy",
                      image_file.parent / f"{split}_labels.npy"):
        if candidate.is_file():
            _check_same_labels(np.load(candidate, allow_pickle=False), labels, split,
                               f"{candidate}: the labels stored with {image_file}")
            return f"labels stored with the images ({candidate}) equal the AV-MNIST labels"
    return "by count only: no labels stored with the images"


class ImageHalf:
    """One split's image half: row ``i`` is the image of MNIST item ``i``, checked to show digit ``labels[i]``.

    Copies sent to DataLoader workers carry the path of the cached ``"pca25"`` file or of the user's file
    and read rows from it themselves; ``"raw"`` images (47 MB for the train split) travel with the object.

    Parameters
    ----------
    root, split, images, image_cache, check_mnist
        As for :class:`~avmnist_torch.paired.AVMNISTDataset`.
    labels : numpy.ndarray
        The split's AV-MNIST labels, which image ``i`` must show.
    image : {"pca25", "raw"}
        ``"pca25"``: the recipe of :mod:`avmnist_torch.image_pca` (float32, centred, not divided by 255);
        ``"raw"``: MNIST's uint8 pixels. Ignored with `image_file`.
    image_file : path, optional
        A user's copy of the published image half instead, served as float32: a folder holding
        ``image/{split}_data.npy`` (MultiBench's) or ``{split}_data.npy``, or the ``.npy`` file itself;
        ``N`` rows of 784 (or 28x28) values.

    Raises
    ------
    ParameterError
        An unknown `image` mode.
    SourceError
        The image file is missing or broken, is under MNIST's name but not MNIST's (with `check_mnist`),
        its number of images is not the number of labels, or its images' own labels differ from `labels`.
    """

    def __init__(
        self,
        root: Optional[PathLike],
        split: str,
        labels: np.ndarray,
        *,
        image: str = "pca25",
        image_file: Optional[PathLike] = None,
        images: Optional[PathLike] = None,
        image_cache: Union[PathLike, str, None] = "auto",
        check_mnist: bool = True,
    ) -> None:
        check_split(split)
        self.split = split
        # rows held in this process, a user's .npy file or the cached "pca25" file (read by each process)
        self._rows: Union[np.ndarray, RowReader]
        self.n_components: Optional[int] = None
        if image_file is not None:
            self.mode = "file"
            self.file = _published_image_file(Path(image_file), split)
            try:
                shape, dtype, offset = read_npy_header(self.file)
                size = offset + int(np.prod(shape)) * dtype.itemsize
                stored = RowReader(StoredFile.open(self.file, size=size, remedy="copy the image file again"),
                                   offset, tuple(shape), dtype.str)
            except StorageError as err:
                raise SourceError(f"{self.file}: not a readable .npy image file ({err})") from None
            if len(shape) not in (2, 3) or tuple(shape[1:]) not in ((784,), MNIST_IMAGE_SHAPE):
                raise SourceError(f"{self.file}: shape {tuple(shape)}, expected (N, 784) or (N, 28, 28)")
            if dtype.kind not in "uif":
                raise SourceError(f"{self.file}: dtype {dtype}, expected numbers")
            self.pairing = _check_file_pairing(self.file, stored, labels, split)
            self._rows = stored
            return
        if not isinstance(image, str) or image not in IMAGE_MODES:
            raise ParameterError(f"unknown image mode {image!r}: choose 'pca25' or 'raw', or give image_file=PATH "
                                 "for a copy of the published image files")
        self.mode = image
        source = images if images is not None else root
        if source is None:
            raise SourceError(f"image={image!r} needs MNIST's image file: give root or images=")
        source = Path(source)
        try:
            self.file = source if source.is_file() else find_mnist_images(source, split)
        except SourceError as err:
            raise SourceError(f"image={image!r} makes the image half from MNIST's {split} images: {err}") from None
        pixels = read_idx_images(self.file, check=check_mnist)
        self.pairing = check_pairing(self.file, pixels, labels, split, check_mnist=check_mnist)
        if image == "raw":
            self._rows = pixels
        elif image_cache is None:
            fit = fit_pca(pixels)
            self.n_components = fit.n_components
            self._rows = reconstruct(pixels, fit)
        else:  # an array when the cache could not be written (a warning said so)
            self._rows = image_half_cache(pixels, cache_dir=image_cache)
            self.n_components = getattr(self._rows, "n_components", None)

    def __len__(self) -> int:
        return len(self._rows)

    dtype = property(lambda self: np.dtype(np.uint8 if self.mode == "raw" else np.float32),
                     doc="What rows are served as: uint8 for ``'raw'``, else float32.")

    def image(self, index: int) -> np.ndarray:
        """Row ``index`` (a checked, non-negative position) as a (28, 28) array of :attr:`dtype`."""
        rows = self._rows
        row = rows.row(index) if isinstance(rows, RowReader) else rows[index]
        return np.array(row, dtype=self.dtype).reshape(MNIST_IMAGE_SHAPE)

    def describe(self, index: int) -> Dict[str, Any]:
        """Where image ``index`` comes from."""
        out: Dict[str, Any] = {"mode": self.mode, "file": str(self.file), "row": index, "pairing": self.pairing}
        if self.mode == "pca25":
            out.update(recipe=RECIPE, n_components=self.n_components,
                       cache=self._rows.stored.path if isinstance(self._rows, ImageHalfCache) else None,
                       note="MNIST image projected on the split's first n principal components, centred "
                            "(mean not added back), served as float32")
        elif self.mode == "raw":
            out.update(note="MNIST's pixels, uint8")
        else:
            out.update(note="the user's stored values, served as float32")
        return out

