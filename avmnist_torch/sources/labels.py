"""Loading the MNIST label sequence that AV-MNIST items follow."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np

from ..common import PathLike, SourceError, check_split
from .mnist_idx import MNIST_LABEL_FILES, read_idx_labels

LabelsLike = Union[PathLike, np.ndarray, list]


def validate_labels(labels, *, origin: str = "labels") -> np.ndarray:
    """``labels`` as a read-only int64 array, after checking it is a non-empty 1-D sequence of digits 0-9."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise SourceError(f"{origin}: labels must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise SourceError(f"{origin}: labels are empty")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise SourceError(f"{origin}: labels must be integers 0-9, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() > 9:
        bad = int(np.flatnonzero((arr < 0) | (arr > 9))[0])
        raise SourceError(f"{origin}: labels must be digits 0-9; item {bad} is {int(arr[bad])}")
    out = arr.astype(np.int64, copy=True)
    out.setflags(write=False)
    return out


def load_labels(source: LabelsLike, split: str) -> np.ndarray:
    """Load one split's labels as a read-only int64 array.

    `source` is an array or list of digits, a ``.npy`` file (the notebook's ``{split}_labels.npy``), an
    MNIST idx1 file (raw or ``.gz``), or a folder: a notebook data root (``avmnist/{split}_labels.npy``),
    a folder holding ``{split}_labels.npy``, or a torchvision MNIST root (MNIST's label file in ``MNIST/raw/``,
    ``raw/`` or the folder itself, the decompressed one first).

    Raises
    ------
    SourceError
        Naming what is missing or malformed.
    """
    if not isinstance(source, (str, os.PathLike)):
        return validate_labels(source, origin="labels array")
    path = Path(source)
    if path.is_dir():
        name = MNIST_LABEL_FILES[check_split(split)]
        torchvision = (path / "MNIST" / "raw", path / "raw", path)
        candidates = [path / "avmnist" / f"{split}_labels.npy", path / f"{split}_labels.npy"]
        candidates += [folder / file for folder in torchvision for file in (name, name + ".gz")]
        found = next(filter(Path.is_file, candidates), None)
        if found is None:
            raise SourceError(f"{path}: no {split} labels found; expected avmnist/{split}_labels.npy, "
                              f"{split}_labels.npy or a torchvision MNIST root ({name}[.gz] in "
                              f"{', '.join(map(str, torchvision))}); pass download=True, or run "
                              "'avmnist download --root DATA'")
        return load_labels(found, split)
    if not path.is_file():
        raise SourceError(f"{path}: labels file not found (pass download=True, or run 'avmnist download --root DATA')")
    if path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as err:
            raise SourceError(f"{path}: not a readable .npy labels file ({err})") from None
    else:
        arr = read_idx_labels(path)
    return validate_labels(arr, origin=str(path))
