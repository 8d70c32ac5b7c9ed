"""Files of rendered items, knowing nothing of datasets: their names, their two formats (raw rows as the
notebook wrote them, or .npy), what made them (``docs/formats.md``)."""

from __future__ import annotations

import functools
import hashlib
import zlib
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from .common import PathLike, StorageError
from .files import Identity, RowReader, StoredFile, read_npy_header, read_sidecar, stat_identity

ITEM_SHAPE = (112, 112)
ROW_BYTES = ITEM_SHAPE[0] * ITEM_SHAPE[1]
FILE_FORMATS = ("raw", "npy")
#: What an export's sidecar says it is; a sidecar of another format is refused with a clear message.
FORMAT = "avmnist-torch export 3"

__all__ = ["ITEM_SHAPE", "ROW_BYTES", "FILE_FORMATS", "FORMAT", "notebook_path", "multibench_path",
           "sources_fingerprint", "open_items", "open_recorded"]

_REMAKE = "export it again, or copy it again from where it was made"
_FOREIGN = "give a file written by export (or np.save of a (N, 112, 112) uint8 array)"


def notebook_path(root: PathLike, split: str, scheme: str, *, epoch: Optional[int] = None) -> Path:
    """The notebook's output name: ``root/avmnist/audio/{split}_data_augmented_{scheme}.npy``.

    One epoch of per-epoch items (`epoch` given) is ``..._{scheme}_epoch{epoch}.npy``.
    """
    suffix = "" if epoch is None else f"_epoch{epoch}"
    return Path(root) / "avmnist" / "audio" / f"{split}_data_augmented_{scheme}{suffix}.npy"


def multibench_path(directory: PathLike, split: str) -> Path:
    """MultiBench's AV-MNIST audio file: ``{directory}/audio/{split}_data.npy``."""
    return Path(directory) / "audio" / f"{split}_data.npy"


@functools.lru_cache(maxsize=None)
def _file_crc32(path: Path, identity: Identity) -> int:
    """CRC-32 of a file's bytes, read once per process per stat identity (change time included)."""
    crc = 0
    with open(path, "rb", buffering=0) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            crc = zlib.crc32(block, crc)
    return crc


def sources_fingerprint(recordings: Sequence[PathLike], noises: Sequence[PathLike], labels: np.ndarray) -> str:
    """sha256 over the recordings' and noises' names, sizes and contents, in index order, and the labels.

    The exact recipe, and why names and CRC-32s: ``docs/formats.md`` ("The export sidecar").
    """
    h = hashlib.sha256()
    for kind, paths in (("recordings", recordings), ("noises", noises)):
        h.update(f"{kind}:{len(paths)}\n".encode())
        for p in map(Path, paths):
            identity = stat_identity(p.stat())
            h.update(f"{p.name}\t{identity[2]}\t{_file_crc32(p, identity):08x}\n".encode())
    h.update(b"labels:")
    h.update(np.ascontiguousarray(np.asarray(labels, dtype=np.int64)).tobytes())
    return h.hexdigest()


def open_items(path: PathLike, rows: Optional[int] = None, file_format: Optional[str] = None, *,
               sha256: Optional[str] = None, remedy: str = _REMAKE) -> Tuple[RowReader, str]:
    """Open a file of items for reading: ``(reader of (N, 112, 112) uint8 rows, file format)``.

    ``rows`` is the N expected (default: a raw file's size divided by 12,544); ``file_format`` what the
    file must be, as its sidecar records it (default: ``"npy"`` when it starts with the .npy magic, else
    ``"raw"``); ``sha256`` is checked once per process. A file missing, cut short, too long, not of the
    recorded format or not of items raises :class:`StorageError` naming it, ending with ``remedy``.
    """
    path = Path(path)
    if file_format not in (None, *FILE_FORMATS):
        raise StorageError(f"{path}: its sidecar records the file format {file_format!r}, which this version "
                           f"does not know ({', '.join(FILE_FORMATS)}); export it again")
    stored = StoredFile.open(path, remedy=remedy)  # missing or not a regular file: an error naming it
    size = stored.size
    has_magic = size >= 6 and stored.read(0, 6) == b"\x93NUMPY"
    if (file_format or ("npy" if has_magic else "raw")) == "npy":
        if not has_magic:
            raise StorageError(f"{path}: its sidecar says a .npy file, but it has no .npy header; export it again")
        shape, dtype, offset = read_npy_header(path, _REMAKE)
        if dtype != np.uint8 or len(shape) != 3 or tuple(shape[1:]) != ITEM_SHAPE:
            raise StorageError(f"{path}: holds {dtype} {shape}, not (N, 112, 112) uint8 items; {_FOREIGN}")
        n, file_format = int(shape[0]), "npy"
        if rows is not None and n != rows:
            raise StorageError(f"{path}: has {n} rows, expected {rows} (one per label of the split); {remedy}")
    else:
        if rows is None and (size == 0 or size % ROW_BYTES):
            raise StorageError(f"{path}: neither a .npy file nor a raw file of whole 112x112 uint8 rows "
                               f"({size} bytes is not a multiple of {ROW_BYTES})")
        offset, file_format, n = 0, "raw", size // ROW_BYTES if rows is None else rows
    expected = offset + n * ROW_BYTES
    if size != expected:
        what = "cut short" if size < expected else "too long"
        header = " and starts with a .npy header" if has_magic and file_format == "raw" else ""
        raise StorageError(f"{path}: {what}: a {file_format} file of {n} rows has {expected} bytes, this one "
                           f"{size}{header}; {remedy}")
    stored = StoredFile.open(path, sha256=sha256, size=expected, remedy=remedy)
    return RowReader(stored, offset, (n, *ITEM_SHAPE), "|u1"), file_format


def open_recorded(path: PathLike) -> Tuple[RowReader, str, Optional[Dict], Optional[Dict]]:
    """A file of items opened as its sidecar says (:func:`open_items`, no sha256 read): ``(reader, file format,
    sidecar of this version or None, sidecar of another version or None)``."""
    meta = read_sidecar(path, "export it again")
    ours = meta if meta is not None and meta.get("format") == FORMAT else None
    identity = (ours or {}).get("identity") or {}
    reader, kind = open_items(path, int(identity["shape"][0]) if "shape" in identity else None,
                              (ours or {}).get("file_format"))
    return reader, kind, ours, meta if ours is None else None
