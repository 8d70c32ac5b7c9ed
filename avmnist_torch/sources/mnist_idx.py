"""MNIST's idx files (labels idx1, images idx3, raw or gzip): reading, writing, finding and checking them.

idx1: big-endian uint32 magic 2049 and count, then one unsigned byte per label. idx3: magic 2051, count,
rows, columns, then the pixels, row-major. A file under one of MNIST's names (``t10k-images-idx3-ubyte
[.gz]``, ...) must hold MNIST's published content (the md5 of its decompressed bytes) unless ``check=False``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import threading
import zlib
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

import numpy as np

from ..common import SourceError, check_split
from ..files import stat_identity

__all__ = [
    "IDX1_MAGIC", "IDX3_MAGIC", "MNIST_IMAGE_SHAPE",
    "MNIST_LABEL_FILES", "MNIST_LABEL_COUNTS", "MNIST_GZ_MD5", "MNIST_RAW_MD5",
    "MNIST_IMAGE_FILES", "MNIST_IMAGE_GZ_MD5", "MNIST_IMAGE_RAW_MD5",
    "read_idx_labels", "idx1_label_bytes", "labels_md5",
    "read_idx_images", "idx3_image_bytes", "find_mnist_images", "find_labels_beside",
    "content_md5",
]

IDX1_MAGIC = 2049
IDX3_MAGIC = 2051
#: MNIST's images are 28 x 28 pixels.
MNIST_IMAGE_SHAPE = (28, 28)

#: File names MNIST publishes, per split (without the ``.gz`` suffix).
MNIST_LABEL_FILES = {"train": "train-labels-idx1-ubyte", "test": "t10k-labels-idx1-ubyte"}
MNIST_IMAGE_FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
MNIST_LABEL_COUNTS = {"train": 60_000, "test": 10_000}

#: md5 of the published ``.gz`` files (the values torchvision checks).
MNIST_GZ_MD5 = {"train": "d53e105ee54ea40749a09fcbcd1e9432", "test": "ec29112dd5afa0611ce80d1b7f02629c"}
MNIST_IMAGE_GZ_MD5 = {"train": "f68b3c2dcbeaaa9fbdd348bbdeb94873", "test": "9fb629c4189551a2d022fa330f9573f3"}

#: md5 of the decompressed files: the check that holds for a re-compressed copy (other gzip header or level).
MNIST_RAW_MD5 = {"train": "a25bea736e30d166cdddb491f175f624", "test": "27ae3e4e09519cfbb04c329615203637"}
MNIST_IMAGE_RAW_MD5 = {"train": "6bbc9ace898e44ae57da46a324031adb", "test": "2646ac647ad5339dbf082846283269ea"}

_HEADER = struct.Struct(">II")
_IDX3_HEADER = struct.Struct(">IIII")

# md5s of decompressed contents by file identity (device, inode, size, mtime, ctime).
_CONTENT_MD5: Dict[Tuple[int, ...], str] = {}
_CONTENT_MD5_LOCK = threading.Lock()


# (kind, split) of each name MNIST publishes (without ".gz"): "t10k-images-idx3-ubyte" is ("images", "test").
_PUBLISHED = {name: (kind, split) for kind, files in (("images", MNIST_IMAGE_FILES), ("labels", MNIST_LABEL_FILES))
              for split, name in files.items()}


def is_gzip(path: Path) -> bool:
    """Whether `path` starts with gzip's magic bytes (users rename files: content, not name, decides)."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def idx_kind(data: bytes) -> str:
    """What the magic number at the start of `data` (4 bytes or more) says it is, for messages."""
    magic = int.from_bytes(data[:4], "big")
    return {IDX1_MAGIC: "an idx1 label file", IDX3_MAGIC: "an idx3 image file"}.get(
        magic, f"not an idx file (magic number {magic})")


def _read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it is gzip."""
    try:
        if not is_gzip(path):
            return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise SourceError(f"{path}: not a readable gzip file ({exc})") from exc


def content_md5(path: str | Path, data: Optional[bytes] = None, identity: Optional[Tuple[int, ...]] = None) -> str:
    """md5 of `path`'s decompressed content, once per process per file (`data`: that content, if read already;
    `identity`: the file's identity taken before it was read)."""
    path = Path(path)
    key = stat_identity(os.stat(path)) if identity is None else identity
    with _CONTENT_MD5_LOCK:
        known = _CONTENT_MD5.get(key)
    if known is not None:
        return known
    if data is None:
        data = _read_bytes(path)
    digest = hashlib.md5(data).hexdigest()
    if stat_identity(os.stat(path)) == key:  # not changed while it was read
        with _CONTENT_MD5_LOCK:
            _CONTENT_MD5[key] = digest
    return digest


def _what_it_is(path: Path, data: bytes, kind: str, split: str) -> str:
    """What a well-formed idx file under MNIST's name holds instead, for the message."""
    what = []
    header = _IDX3_HEADER.size if kind == "images" else _HEADER.size
    size = header + MNIST_LABEL_COUNTS[split] * (784 if kind == "images" else 1)
    if len(data) != size:
        what.append(f"{len(data):,} bytes uncompressed where MNIST's file has {size:,}")
    if int.from_bytes(data[:4], "big") != (IDX3_MAGIC if kind == "images" else IDX1_MAGIC):
        what.append(f"it is {idx_kind(data)}")  # an idx1 file under an idx3 name, or the reverse
    if len(data) > header and not data[header:].strip(b"\x00"):
        what.append(f"every {'pixel' if kind == 'images' else 'label'} is 0")
    if not path.name.endswith(".gz") and path.with_name(path.name + ".gz").is_file():
        what.append(f"it is read before the {path.name}.gz beside it")
    return "; ".join(what) or "other content"


def _check_published(path: Path, data: bytes, identity: Optional[Tuple[int, ...]]) -> None:
    """A SourceError if `path` is under one of MNIST's names and its content `data` is not MNIST's."""
    published = _PUBLISHED.get(path.name.removesuffix(".gz"))
    if published is None:
        return
    kind, split = published
    want = (MNIST_IMAGE_RAW_MD5 if kind == "images" else MNIST_RAW_MD5)[split]
    try:
        got = content_md5(path, data, identity)
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if got == want:
        return
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


def _read_idx(path: str | Path, magic: int, check: bool,
              shape: tuple[int, int] | None = None) -> Tuple[bytes, Tuple[int, ...]]:
    """An idx file's content, after the checks common to idx1 and idx3 files; and its header's dimensions."""
    path = Path(path)
    labels = magic == IDX1_MAGIC
    if not path.is_file():
        raise SourceError(f"MNIST {'label' if labels else 'image'} file not found: {path} (pass download=True, "
                          "or run 'avmnist download --root DATA')")
    identity = stat_identity(os.stat(path)) if check else None
    data = _read_bytes(path)
    kind = idx_kind(magic.to_bytes(4, "big"))
    found = int.from_bytes(data[:4], "big")
    if len(data) >= 4 and found != magic:
        raise SourceError(f"{path}: magic number {found} (0x{found:08x}), expected {magic} (0x{magic:08x}, {kind}); "
                          f"this is {idx_kind(data)}")
    header = _HEADER if labels else _IDX3_HEADER
    if len(data) < header.size:
        raise SourceError(f"{path}: {len(data)} bytes, too short for an idx{1 if labels else 3} header "
                          f"({header.size} bytes); the file is truncated or not an MNIST file")
    dims = header.unpack_from(data)[1:]
    if shape is not None and dims[1:] != tuple(shape):
        raise SourceError(f"{path}: images are {dims[1]}x{dims[2]} pixels, expected {shape[0]}x{shape[1]} "
                          "(MNIST's size)")
    expected = header.size + int(np.prod(dims))
    if len(data) != expected:
        what = f"{dims[0]} labels" if labels else f"{dims[0]} images of {dims[1]}x{dims[2]}"
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise SourceError(f"{path}: header says {what}, so {expected} bytes, but the file has {len(data)} bytes "
                          f"({problem}); download it again")
    bad = np.flatnonzero(np.frombuffer(data, np.uint8, offset=header.size) > 9) if labels else ()
    if len(bad):
        raise SourceError(f"{path}: label {data[header.size + bad[0]]} at index {bad[0]} is not a digit 0-9")
    if check:  # after the format checks, whose messages say more about a broken file
        _check_published(path, data, identity)
    return data, dims


def read_idx_labels(path: str | Path, *, check: bool = True) -> np.ndarray:
    """Read an idx1 label file, raw or gzip (``t10k-labels-idx1-ubyte[.gz]``, ...), as int64 labels in file order.

    Raises
    ------
    SourceError
        Naming the file and what is wrong: missing, unreadable, not idx1, a length that does not match its
        header, a label outside 0-9, or not MNIST's under MNIST's name.
    """
    data, _ = _read_idx(path, IDX1_MAGIC, check)
    return np.frombuffer(data, dtype=np.uint8, offset=_HEADER.size).astype(np.int64)


def idx1_label_bytes(labels: np.ndarray) -> bytes:
    """The bytes of an uncompressed idx1 file of `labels` (1-D, 0-255); for MNIST's labels, MNIST's own bytes."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError("labels must lie in 0-255 to fit idx1's unsigned bytes")
    return _HEADER.pack(IDX1_MAGIC, labels.size) + labels.astype(np.uint8).tobytes()


def labels_md5(labels: np.ndarray) -> str:
    """md5 of the idx1 encoding of `labels` (compare with :data:`MNIST_RAW_MD5`)."""
    return hashlib.md5(idx1_label_bytes(labels)).hexdigest()


def _candidates(folders: Iterable[Path], names: Iterable[str]) -> list[Path]:
    return [folder / file for folder in folders for name in names for file in (name, name + ".gz")]


def read_idx_images(path: str | Path, *, shape: tuple[int, int] | None = MNIST_IMAGE_SHAPE,
                    check: bool = True) -> np.ndarray:
    """Read an idx3 image file, raw or gzip (``t10k-images-idx3-ubyte[.gz]``, ...), as read-only uint8
    ``(count, rows, columns)``.

    `shape` is the image size the file must hold (None: any); `check`: see the module's docstring.

    Raises
    ------
    SourceError
        Naming the file and what is wrong: missing, unreadable, not idx3, images of another size than
        `shape`, a length that does not match its header, or not MNIST's under MNIST's name.
    """
    data, dims = _read_idx(path, IDX3_MAGIC, check, shape)
    # frombuffer over bytes: already read-only
    return np.frombuffer(data, dtype=np.uint8, offset=_IDX3_HEADER.size).reshape(dims)


def idx3_image_bytes(images: np.ndarray) -> bytes:
    """The bytes of an uncompressed idx3 file of uint8 `images` ``(count, rows, columns)`` (the inverse of
    :func:`read_idx_images`)."""
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be a uint8 array (count, rows, columns), got {images.dtype} {images.shape}")
    count, rows, cols = images.shape
    return _IDX3_HEADER.pack(IDX3_MAGIC, count, rows, cols) + np.ascontiguousarray(images).tobytes()


def find_mnist_images(root: str | Path, split: str) -> Path:
    """A split's MNIST image file (``train-images-idx3-ubyte[.gz]`` or ``t10k-...``) under `root`.

    Looked for in ``root/mnist/`` (what ``avmnist download`` writes), ``root/MNIST/raw/``
    (torchvision's), ``root/raw/`` and `root`; in each folder the decompressed file first.

    Raises
    ------
    ParameterError
        If `split` is unknown.
    SourceError
        If there is none (naming every folder looked in and how to fetch it).
    """
    base = Path(root)
    name = MNIST_IMAGE_FILES[check_split(split)]
    folders = (base / "mnist", base / "MNIST" / "raw", base / "raw", base)
    found = next(filter(Path.is_file, _candidates(folders, [name])), None)
    if found is not None:
        return found
    raise SourceError(
        f"no MNIST {split} image file under {root}: looked for {name}[.gz] in {', '.join(map(str, folders))}; "
        f"get it with 'avmnist download --root {root} --only mnist_images' (download=True in Python), "
        f"or put MNIST's {name}.gz in {base / 'mnist'}"
    )


def find_labels_beside(image_file: str | Path, split: str) -> Path | None:
    """The idx1 label file beside `image_file`, or None: its name with ``images-idx3`` turned into
    ``labels-idx1`` (``my-t10k-labels-idx1-ubyte[.gz]``), else MNIST's label file for `split`."""
    image_file = Path(image_file)
    stem = image_file.name.removesuffix(".gz")
    names = [stem.replace("images-idx3", "labels-idx1")] if "images-idx3" in stem else []
    candidates = _candidates([image_file.parent], dict.fromkeys(names + [MNIST_LABEL_FILES[split]]))
    return next(filter(Path.is_file, candidates), None)
