"""Read MNIST label files in their original idx1 format.

AV-MNIST's labels are MNIST's labels, in MNIST order (see SPEC.md, Inputs). This module reads them
straight from the files MNIST publishes (``train-labels-idx1-ubyte[.gz]`` and
``t10k-labels-idx1-ubyte[.gz]``), from a torchvision ``MNIST`` root, and writes the same byte
layout back so that a label array can be checked against MNIST's published checksums.

The idx1 format: a 4-byte big-endian magic number 2049 (0x00000801: two zero bytes, type 0x08 =
unsigned byte, 1 dimension), a 4-byte big-endian item count, then one unsigned byte per label.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np

__all__ = [
    "IDX1_MAGIC",
    "MNIST_LABEL_FILES",
    "MNIST_LABEL_COUNTS",
    "MNIST_GZ_MD5",
    "MNIST_RAW_MD5",
    "MNIST_IMAGE_FILES",
    "MNIST_IMAGE_GZ_MD5",
    "MNIST_IMAGE_RAW_MD5",
    "read_idx_labels",
    "idx1_label_bytes",
    "labels_md5",
    "find_torchvision_mnist_labels",
]

IDX1_MAGIC = 2049

#: File names MNIST publishes, per split (without the ``.gz`` suffix).
MNIST_LABEL_FILES = {"train": "train-labels-idx1-ubyte", "test": "t10k-labels-idx1-ubyte"}

MNIST_LABEL_COUNTS = {"train": 60_000, "test": 10_000}

#: md5 of the published ``.gz`` files (the values torchvision checks).
MNIST_GZ_MD5 = {
    "train": "d53e105ee54ea40749a09fcbcd1e9432",
    "test": "ec29112dd5afa0611ce80d1b7f02629c",
}

#: md5 of the decompressed idx1 files. A re-compressed copy (other gzip header, other level)
#: has another ``.gz`` md5 but the same content, so this is the check that does not depend on
#: how the file was packed.
MNIST_RAW_MD5 = {
    "train": "a25bea736e30d166cdddb491f175f624",
    "test": "27ae3e4e09519cfbb04c329615203637",
}

#: Image files MNIST publishes, per split (without the ``.gz`` suffix): idx3 files (magic 2051)
#: holding the split's images in label order, 28 x 28 unsigned bytes each.
MNIST_IMAGE_FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}

#: md5 of the published image ``.gz`` files (the values torchvision checks).
MNIST_IMAGE_GZ_MD5 = {
    "train": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "test": "9fb629c4189551a2d022fa330f9573f3",
}

#: md5 of the decompressed image files: the check that holds for a re-compressed copy.
MNIST_IMAGE_RAW_MD5 = {
    "train": "6bbc9ace898e44ae57da46a324031adb",
    "test": "2646ac647ad5339dbf082846283269ea",
}

_HEADER = struct.Struct(">II")


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
    # Sniff gzip by its magic rather than by suffix: torchvision keeps both forms, and users
    # rename files.
    if head == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: not a readable gzip file ({exc})") from exc
    return path.read_bytes()


def read_idx_labels(path: str | Path) -> np.ndarray:
    """Read an MNIST idx1 label file, raw or gzip-compressed.

    Parameters
    ----------
    path : str or Path
        An idx1 file such as ``train-labels-idx1-ubyte`` or ``t10k-labels-idx1-ubyte.gz``.
        Compression is detected from the file's content, not its name.

    Returns
    -------
    numpy.ndarray
        int64 array of shape ``(count,)`` with the labels in file order.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the file is not an idx1 unsigned-byte file (wrong magic number), if its length does
        not match the count in its header, or if a label is outside 0-9. The message names the
        file and what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MNIST label file not found: {path}")
    data = _read_bytes(path)
    if len(data) < _HEADER.size:
        raise ValueError(
            f"{path}: {len(data)} bytes, too short for an idx1 header ({_HEADER.size} bytes)"
        )
    magic, count = _HEADER.unpack_from(data)
    if magic != IDX1_MAGIC:
        hint = " (2051 is an MNIST image file, not labels)" if magic == 2051 else ""
        raise ValueError(
            f"{path}: magic number {magic} (0x{magic:08x}), expected {IDX1_MAGIC} "
            f"(0x{IDX1_MAGIC:08x}, an idx1 label file){hint}"
        )
    expected = _HEADER.size + count
    if len(data) != expected:
        raise ValueError(
            f"{path}: header says {count} labels, so {expected} bytes, but the file has "
            f"{len(data)} bytes (truncated or not an idx1 file)"
        )
    labels = np.frombuffer(data, dtype=np.uint8, offset=_HEADER.size).astype(np.int64)
    if labels.size and labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise ValueError(f"{path}: label {labels[bad]} at index {bad} is not a digit 0-9")
    return labels


def idx1_label_bytes(labels: np.ndarray) -> bytes:
    """Encode labels as the bytes of an uncompressed idx1 file.

    The result for MNIST's real labels is byte-identical to MNIST's decompressed label files,
    so ``hashlib.md5(idx1_label_bytes(y)).hexdigest()`` can be compared with
    :data:`MNIST_RAW_MD5` to check that ``y`` is MNIST's label sequence.

    Parameters
    ----------
    labels : numpy.ndarray
        One-dimensional integer array with values 0-255.

    Returns
    -------
    bytes
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError("labels must lie in 0-255 to fit idx1's unsigned bytes")
    return _HEADER.pack(IDX1_MAGIC, labels.size) + labels.astype(np.uint8).tobytes()


def labels_md5(labels: np.ndarray) -> str:
    """md5 of the idx1 encoding of `labels` (compare with :data:`MNIST_RAW_MD5`)."""
    return hashlib.md5(idx1_label_bytes(labels)).hexdigest()


def find_torchvision_mnist_labels(root: str | Path, split: str) -> Path:
    """Locate a split's label file in a torchvision MNIST download.

    torchvision's ``MNIST(root, download=True)`` writes ``root/MNIST/raw/`` holding
    ``train-labels-idx1-ubyte`` and ``t10k-labels-idx1-ubyte`` (decompressed) and usually the
    ``.gz`` files too.

    Parameters
    ----------
    root : str or Path
        The ``root`` given to torchvision, or its ``MNIST`` or ``MNIST/raw`` folder.
    split : {"train", "test"}

    Returns
    -------
    Path
        The decompressed file if present, else the ``.gz`` file.

    Raises
    ------
    ValueError
        If `split` is neither ``"train"`` nor ``"test"``.
    FileNotFoundError
        If no candidate exists; the message lists every path looked at.
    """
    if split not in MNIST_LABEL_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    name = MNIST_LABEL_FILES[split]
    tried = []
    for folder in (root / "MNIST" / "raw", root / "raw", root):
        for candidate in (folder / name, folder / (name + ".gz")):
            tried.append(candidate)
            if candidate.is_file():
                return candidate
    listing = "\n  ".join(str(p) for p in tried)
    raise FileNotFoundError(
        f"no MNIST {split} label file under {root} (torchvision layout "
        f"root/MNIST/raw/{name}[.gz]); looked at:\n  {listing}"
    )
