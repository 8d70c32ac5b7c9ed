"""Read MNIST label files in their original idx1 format.

AV-MNIST's labels are MNIST's labels, in MNIST order (see docs/items.md, Inputs). This module reads them
straight from the files MNIST publishes (``train-labels-idx1-ubyte[.gz]`` and
``t10k-labels-idx1-ubyte[.gz]``), from a torchvision ``MNIST`` root, and writes the same byte
layout back so that a label array can be checked against MNIST's published checksums.

The idx1 format: a 4-byte big-endian magic number 2049 (0x00000801: two zero bytes, type 0x08 =
unsigned byte, 1 dimension), a 4-byte big-endian item count, then one unsigned byte per label.
MNIST's images (idx3) are read and found here too.

A file under one of MNIST's names (``t10k-images-idx3-ubyte[.gz]``, ...) is taken for MNIST's:
the readers check that its content is MNIST's published content (:func:`check_published`, once
per process per file) unless told ``check=False``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import threading
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from ..common import SourceError
from ..files import stat_identity

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


# --------------------------------------------------------------------------------------------
# Files under MNIST's names must be MNIST's files.
#
# A file named like one MNIST publishes (``t10k-images-idx3-ubyte``, with or without ``.gz``) is
# taken for MNIST's: the readers below check the md5 of its decompressed content against the
# published one (so a re-compressed copy passes), and refuse anything else, naming the file. An
# uncompressed file beside the ``.gz`` is read first, so a stale or blank one would otherwise
# replace MNIST's images silently. Files under other names are the user's own and are not checked
# (their pairing with the labels is, by the label file beside them); ``check=False`` skips the
# check for files under MNIST's names too (synthetic or altered copies in MNIST's layout).

#: md5s of decompressed contents, per file identity (device, inode, size, mtime, ctime): each file
#: is hashed once per process, and a file replaced or rewritten since (a new ctime) again.
_CONTENT_MD5: Dict[Tuple[int, ...], str] = {}
_CONTENT_MD5_LOCK = threading.Lock()


def published_file(path: str | Path) -> Optional[Tuple[str, str]]:
    """``(kind, split)`` when `path`'s name is one MNIST publishes (``.gz`` or not), else None.

    `kind` is ``"images"`` or ``"labels"``: ``t10k-images-idx3-ubyte.gz`` is ``("images", "test")``.
    """
    name = Path(path).name
    name = name[:-3] if name.endswith(".gz") else name
    for kind, files in (("images", MNIST_IMAGE_FILES), ("labels", MNIST_LABEL_FILES)):
        for split, published in files.items():
            if name == published:
                return kind, split
    return None


def _identity(path: Path) -> Tuple[int, ...]:
    return stat_identity(os.stat(path))


def content_md5(path: str | Path, data: Optional[bytes] = None, identity: Optional[Tuple[int, ...]] = None) -> str:
    """md5 of `path`'s content, decompressed when it is gzip; computed once per process per file.

    The result is kept under the file's identity (device, inode, size, mtime and ctime in ns), so
    a file replaced or modified since is hashed again. `data`, when given, is that content already
    read, and `identity` the file's identity taken before it was read (the readers pass both).
    """
    path = Path(path)
    key = _identity(path) if identity is None else identity
    with _CONTENT_MD5_LOCK:
        known = _CONTENT_MD5.get(key)
    if known is not None:
        return known
    if data is None:
        data = _read_bytes(path)
    digest = hashlib.md5(data).hexdigest()
    if _identity(path) == key:  # not changed while it was read
        with _CONTENT_MD5_LOCK:
            _CONTENT_MD5[key] = digest
    return digest


def _what_it_is(path: Path, data: bytes, kind: str, split: str) -> str:
    """What a file under MNIST's name holds instead, for the message."""
    what = []
    header = 16 if kind == "images" else _HEADER.size
    count = MNIST_LABEL_COUNTS.get(split)
    if count is not None:
        size = header + count * (784 if kind == "images" else 1)
        if len(data) != size:
            what.append(f"{len(data):,} bytes uncompressed where MNIST's file has {size:,}")
    if len(data) >= 4:
        magic = int.from_bytes(data[:4], "big")
        expected = 2051 if kind == "images" else IDX1_MAGIC
        if magic != expected:
            kinds = {IDX1_MAGIC: "an idx1 label file", 2051: "an idx3 image file"}
            what.append(f"it is {kinds.get(magic, f'not an idx file (magic number {magic})')}")
    if data and not data.strip(b"\x00"):
        what.append("every byte is 0")
    elif len(data) > header and not data[header:].strip(b"\x00"):
        what.append(f"every {'pixel' if kind == 'images' else 'label'} is 0")
    if not path.name.endswith(".gz") and path.with_name(path.name + ".gz").is_file():
        what.append(f"it is read before the {path.name}.gz beside it")
    return "; ".join(what) or "other content"


def check_published(path: str | Path, data: Optional[bytes] = None,
                    identity: Optional[Tuple[int, ...]] = None) -> None:
    """Refuse a file under one of MNIST's names whose content is not MNIST's published content.

    Does nothing for a file under another name. The md5 of the decompressed content is compared
    with :data:`MNIST_IMAGE_RAW_MD5` or :data:`MNIST_RAW_MD5`, so the published ``.gz``, a
    re-compressed copy and a decompressed copy all pass; each file is hashed once per process
    (see :func:`content_md5`).

    Parameters
    ----------
    path : str or Path
    data : bytes, optional
        The file's decompressed content, when the caller has read it already.
    identity : tuple, optional
        With `data`: the file's identity taken before it was read (see :func:`content_md5`).

    Raises
    ------
    SourceError
        Naming the file, the md5s, what the file is instead, and what to do.
    """
    published = published_file(path)
    if published is None:
        return
    kind, split = published
    path = Path(path)
    want = (MNIST_IMAGE_RAW_MD5 if kind == "images" else MNIST_RAW_MD5)[split]
    try:
        got = content_md5(path, data, identity)
    except ValueError as exc:  # not a readable gzip file
        raise SourceError(str(exc)) from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if got == want:
        return
    if data is None:
        data = _read_bytes(path)
    if kind == "images":
        how = "'avmnist download --root DATA --only mnist_images' fetches MNIST's, checked"
        own = "give the file another name and pass it as images=FILE (--images FILE), or pass check_mnist=False"
    else:
        how = ("MNIST's published images are recognised without it, and 'avmnist download --root DATA' fetches "
               "MNIST's labels, checked")
        own = "give it the name of its image file with labels-idx1 for images-idx3, or pass check_mnist=False"
    raise SourceError(
        f"{path}: not MNIST's {split} {kind}. A file under one of MNIST's names must hold MNIST's published "
        f"content (md5 of the uncompressed bytes {want}); this one's md5 is {got} "
        f"({_what_it_is(path, data, kind, split)}). Delete it or move it away ({how}); for {kind} of your own "
        f"in MNIST's format, {own}"
    )


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


def read_idx_labels(path: str | Path, *, check: bool = True) -> np.ndarray:
    """Read an MNIST idx1 label file, raw or gzip-compressed.

    Parameters
    ----------
    path : str or Path
        An idx1 file such as ``train-labels-idx1-ubyte`` or ``t10k-labels-idx1-ubyte.gz``.
        Compression is detected from the file's content, not its name.
    check : bool, default True
        A file under one of MNIST's names must hold MNIST's published labels (see
        :func:`check_published`); False reads it whatever it holds. Files under other names
        are never checked.

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
    SourceError
        (a ValueError) With `check`, a file under MNIST's name that is not MNIST's.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MNIST label file not found: {path}")
    identity = _identity(path) if check else None
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
    if check:  # after the format checks, whose messages say more about a broken file
        check_published(path, data, identity)
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


# --------------------------------------------------------------------------------------------
# Images (idx3): the image half of AV-MNIST is MNIST's images, in MNIST order.
#
# The idx3 format: a 4-byte big-endian magic number 2051 (0x00000803: two zero bytes, type 0x08
# = unsigned byte, 3 dimensions), three 4-byte big-endian sizes (count, rows, columns), then
# count * rows * columns unsigned bytes, row-major.

IDX3_MAGIC = 2051

#: MNIST's images are 28 x 28 pixels.
MNIST_IMAGE_SHAPE = (28, 28)

_IDX3_HEADER = struct.Struct(">IIII")


def _image_file_bytes(path: Path) -> bytes:
    # The label reader's gzip sniffing raises ValueError; images speak the package's SourceError.
    try:
        return _read_bytes(path)
    except ValueError as exc:
        raise SourceError(str(exc)) from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def read_idx_images(path: str | Path, *, shape: tuple[int, int] | None = MNIST_IMAGE_SHAPE,
                    check: bool = True) -> np.ndarray:
    """Read an MNIST idx3 image file, raw or gzip-compressed.

    Parameters
    ----------
    path : str or Path
        An idx3 file such as ``train-images-idx3-ubyte`` or ``t10k-images-idx3-ubyte.gz``.
        Compression is detected from the file's content, not its name.
    shape : (int, int) or None
        The image size the file must hold; default MNIST's (28, 28). None accepts any size.
    check : bool, default True
        A file under one of MNIST's names must hold MNIST's published images (see
        :func:`check_published`; hashed once per process per file); False reads it whatever
        it holds. Files under other names are never checked.

    Returns
    -------
    numpy.ndarray
        uint8 array of shape ``(count, rows, columns)``, in file order, read-only.

    Raises
    ------
    SourceError
        If the file is missing or unreadable, is not an idx3 unsigned-byte file (wrong magic
        number; a label file is named as such), holds images of another size than `shape`, or is
        shorter or longer than its header says; with `check`, if it is under MNIST's name but is
        not MNIST's. The message names the file and what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"MNIST image file not found: {path} (pass download=True, or run 'avmnist download --root DATA')")
    identity = _identity(path) if check else None
    data = _image_file_bytes(path)
    magic = struct.unpack_from(">I", data)[0] if len(data) >= 4 else None
    if magic is not None and magic != IDX3_MAGIC:
        hint = " (2049 is an MNIST label file, not images)" if magic == IDX1_MAGIC else ""
        raise SourceError(
            f"{path}: magic number {magic} (0x{magic:08x}), expected {IDX3_MAGIC} "
            f"(0x{IDX3_MAGIC:08x}, an idx3 image file of unsigned bytes){hint}"
        )
    if len(data) < _IDX3_HEADER.size:
        raise SourceError(
            f"{path}: {len(data)} bytes, too short for an idx3 header ({_IDX3_HEADER.size} bytes); "
            "the file is truncated or not an MNIST image file"
        )
    _, count, rows, cols = _IDX3_HEADER.unpack_from(data)
    if shape is not None and (rows, cols) != tuple(shape):
        raise SourceError(
            f"{path}: images are {rows}x{cols} pixels, expected {shape[0]}x{shape[1]} (MNIST's size)"
        )
    expected = _IDX3_HEADER.size + count * rows * cols
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise SourceError(
            f"{path}: header says {count} images of {rows}x{cols}, so {expected} bytes, but the file "
            f"has {len(data)} bytes ({what}); download it again"
        )
    if check:  # after the format checks, whose messages say more about a broken file
        check_published(path, data, identity)
    images = np.frombuffer(data, dtype=np.uint8, offset=_IDX3_HEADER.size).reshape(count, rows, cols)
    return images  # frombuffer over bytes: already read-only


def idx3_image_bytes(images: np.ndarray) -> bytes:
    """Encode images as the bytes of an uncompressed idx3 file (the inverse of :func:`read_idx_images`).

    For MNIST's real images the result is byte-identical to MNIST's decompressed image files.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 array of shape ``(count, rows, columns)``.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be a uint8 array (count, rows, columns), got {images.dtype} {images.shape}")
    count, rows, cols = images.shape
    return _IDX3_HEADER.pack(IDX3_MAGIC, count, rows, cols) + np.ascontiguousarray(images).tobytes()


def mnist_image_candidates(root: str | Path, split: str) -> list[Path]:
    """Every path, in order of preference, where a split's MNIST image file may lie under `root`.

    The layouts, in this order: ``root/mnist/`` (what ``avmnist download`` writes),
    torchvision's ``root/MNIST/raw/``, and `root` itself (a folder holding MNIST's files, or
    torchvision's ``MNIST`` or ``MNIST/raw`` folder given directly). In each folder the
    decompressed file comes before the ``.gz``.
    """
    if split not in MNIST_IMAGE_FILES:
        raise SourceError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    name = MNIST_IMAGE_FILES[split]
    folders = (root / "mnist", root / "MNIST" / "raw", root / "raw", root)
    return [candidate for folder in folders for candidate in (folder / name, folder / (name + ".gz"))]


def find_mnist_images(root: str | Path, split: str) -> Path:
    """Locate a split's MNIST image file (``train-images-idx3-ubyte[.gz]`` or ``t10k-...``).

    Parameters
    ----------
    root : str or Path
        A data root (``root/mnist/``, as downloaded), a torchvision ``MNIST`` root, or a folder
        holding MNIST's files; see :func:`mnist_image_candidates`.
    split : {"train", "test"}

    Returns
    -------
    Path

    Raises
    ------
    SourceError
        If `split` is unknown, or if no candidate exists; the message (one line) names the file,
        every folder looked in, and the command that fetches it.
    """
    tried = mnist_image_candidates(root, split)
    for candidate in tried:
        if candidate.is_file():
            return candidate
    name = MNIST_IMAGE_FILES[split]
    folders = ", ".join(str(folder) for folder in dict.fromkeys(p.parent for p in tried))
    raise SourceError(
        f"no MNIST {split} image file under {root}: looked for {name}[.gz] in {folders}; "
        f"get it with 'avmnist download --root {root} --only mnist_images' (download=True in Python), "
        f"or put MNIST's {name}.gz in {Path(root) / 'mnist'}"
    )


def find_labels_beside(image_file: str | Path, split: str) -> Path | None:
    """The idx1 label file of `image_file`'s images, in the same folder, if there is one.

    MNIST ships images and labels side by side (so does torchvision's ``MNIST/raw``); the label
    file beside an image file is what says which digit each image shows. Looked for, in this
    order: the image file's name with ``images-idx3`` turned into ``labels-idx1`` (the idx
    convention, so ``my-t10k-images-idx3-ubyte.gz`` has ``my-t10k-labels-idx1-ubyte[.gz]``),
    then MNIST's label file for `split` (``t10k-labels-idx1-ubyte[.gz]``).
    """
    image_file = Path(image_file)
    folder = image_file.parent
    names = []
    stem = image_file.name[:-3] if image_file.name.endswith(".gz") else image_file.name
    if "images-idx3" in stem:
        names.append(stem.replace("images-idx3", "labels-idx1"))
    names.append(MNIST_LABEL_FILES[split])
    for name in dict.fromkeys(names):
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.is_file():
                return candidate
    return None


__all__ += [
    "IDX3_MAGIC",
    "MNIST_IMAGE_FILES",
    "MNIST_IMAGE_SHAPE",
    "read_idx_images",
    "idx3_image_bytes",
    "mnist_image_candidates",
    "find_mnist_images",
    "find_labels_beside",
    "published_file",
    "content_md5",
    "check_published",
]
