"""Reading files of items: .npy headers, and the notebook's raw files.

A file of items holds ``(N, 112, 112) uint8`` rows, C-ordered. Two kinds are
read: real ``.npy`` files (what ``export --format npy`` and MultiBench's layout
get, what ``np.save`` writes) and the notebook's headerless files (``np.memmap(..., mode='w+')`` despite the
.npy name), which is also what ``export`` writes for the notebook's layout.
Every reader here checks the file's size against what its header
(or the caller) promises before reading a row, so a file cut short or a foreign
array is an error naming the file; rows are copied out with positioned reads
(:class:`~avmnist_torch.files.RowReader`), never mapped.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from ..common import PathLike, StorageError
from ..files import RowReader, StoredFile

ITEM_SHAPE = (112, 112)
ROW_BYTES = ITEM_SHAPE[0] * ITEM_SHAPE[1]
NPY_MAGIC = b"\x93NUMPY"

FILE_FORMATS = ("raw", "npy")

__all__ = ["ITEM_SHAPE", "ROW_BYTES", "NPY_MAGIC", "FILE_FORMATS", "npy_header", "read_npy_header", "is_npy",
           "check_npy_items", "open_items"]

_REMAKE = "export it again, or copy it again from where it was made"
_FOREIGN = "give a file written by export (or np.save of a (N, 112, 112) uint8 array)"


def npy_header(shape: Sequence[int], dtype: Any = np.uint8) -> bytes:
    """The .npy header numpy itself writes for a C-ordered array of ``shape`` and ``dtype``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
    )
    return buf.getvalue()


def read_npy_header(path: PathLike) -> Tuple[Tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, data offset)`` of a .npy file; :class:`StorageError` if it has no readable header."""
    try:
        with open(path, "rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(f)
            except (ValueError, OSError) as err:
                raise StorageError(f"{path}: not a readable .npy file ({err}); {_REMAKE}") from None
            offset = f.tell()
    except OSError as err:
        raise StorageError(f"{path}: cannot be read ({err.strerror or err})") from None
    if fortran:
        raise StorageError(f"{path}: holds a Fortran-ordered array, not C-ordered item rows; "
                           "save it with np.save(path, np.ascontiguousarray(array)), or export it again")
    return tuple(shape), dtype, offset


def is_npy(path: PathLike) -> bool:
    """Whether the file starts with the .npy magic string."""
    try:
        with open(path, "rb") as f:
            return f.read(len(NPY_MAGIC)) == NPY_MAGIC
    except OSError as err:
        raise StorageError(f"{path}: cannot be read ({err.strerror or err})") from None


def check_npy_items(path: PathLike, rows: Optional[int] = None, remedy: Optional[str] = None) -> Tuple[int, int]:
    """Check that a .npy file holds whole item rows: ``(rows, data offset)``, else :class:`StorageError`.

    The header must describe ``(N, 112, 112) uint8`` in C order (``N == rows``
    when ``rows`` is given), and the file must be exactly as long as the
    header says: shorter is a file cut short (an interrupted copy), longer is
    not a file numpy wrote. ``remedy``, when given, ends every message
    instead of the default advice: what the caller's user should do.
    """
    shape, dtype, offset = read_npy_header(path)
    if dtype.hasobject:
        raise StorageError(f"{path}: holds Python objects ({dtype}), not (N, 112, 112) uint8 items; "
                           f"{remedy or _FOREIGN}")
    if dtype != np.uint8 or len(shape) != 3 or tuple(shape[1:]) != ITEM_SHAPE:
        raise StorageError(f"{path}: holds {dtype} {shape}, not (N, 112, 112) uint8 items; {remedy or _FOREIGN}")
    n = int(shape[0])
    if rows is not None and n != rows:
        raise StorageError(f"{path}: has {n} rows, expected {rows} (one per label of the split)"
                           + (f"; {remedy}" if remedy else ""))
    size = Path(path).stat().st_size
    expected = offset + n * ROW_BYTES
    if size < expected:
        found = max(0, size - offset) // ROW_BYTES
        raise StorageError(
            f"{path}: cut short: {found} whole rows of the {n} its header promises "
            f"({size} bytes, expected {expected}); {remedy or _REMAKE}"
        )
    if size > expected:
        raise StorageError(f"{path}: {size - expected} bytes follow its {n} rows, so numpy did not write it as it is; "
                           f"{remedy or _REMAKE}")
    return n, offset


def open_items(path: PathLike, rows: Optional[int] = None, file_format: Optional[str] = None, *,
               sha256: Optional[str] = None, remedy: str = _REMAKE) -> Tuple[RowReader, str]:
    """Open a file of items for reading: ``(reader of (N, 112, 112) uint8 rows, file format)``.

    ``file_format`` is what the file must be, as its sidecar records it: ``"raw"`` (headerless rows,
    exactly ``N * 112 * 112`` bytes) or ``"npy"`` (a .npy header, then the rows). Without it the file
    tells: one that starts with the .npy magic is ``"npy"``, any other ``"raw"``. ``rows``, when given,
    is the N the caller expects; without it a raw file's N is its size divided by 12,544. ``sha256``,
    when given, is checked once per process (:class:`~avmnist_torch.files.StoredFile`). A file that is
    cut short, too long, of the other format than recorded, or not of items raises
    :class:`StorageError` naming it. Nothing is mapped: rows are copied out as they are read.
    """
    path = Path(path)
    if not path.is_file():
        raise StorageError(f"{path}: no such file")
    if file_format is not None and file_format not in FILE_FORMATS:
        raise StorageError(f"{path}: its sidecar records the file format {file_format!r}, which this version "
                           f"does not know ({', '.join(FILE_FORMATS)}); export it again")
    size = path.stat().st_size
    has_magic = is_npy(path)
    if file_format == "raw" and has_magic and rows is not None and size != rows * ROW_BYTES:
        raise StorageError(f"{path}: its sidecar says raw rows, but the file starts with a .npy header "
                           f"({size} bytes, {rows * ROW_BYTES} expected); export it again")
    if file_format == "npy" or (file_format is None and has_magic):
        if not has_magic:
            raise StorageError(f"{path}: its sidecar says a .npy file, but it has no .npy header; export it again")
        n, offset = check_npy_items(path, rows)
        file_format = "npy"
    else:
        offset, file_format = 0, "raw"
        if rows is None:
            if size == 0 or size % ROW_BYTES:
                raise StorageError(f"{path}: neither a .npy file nor a raw file of whole 112x112 uint8 rows "
                                   f"({size} bytes is not a multiple of {ROW_BYTES})")
            rows = size // ROW_BYTES
        elif size != rows * ROW_BYTES:
            what = "cut short" if size < rows * ROW_BYTES else "too long"
            raise StorageError(f"{path}: {what}: a raw file of {rows} rows has {rows * ROW_BYTES} bytes, this one "
                               f"{size}; {remedy}")
        n = rows
    stored = StoredFile.open(path, sha256=sha256, size=offset + n * ROW_BYTES, remedy=remedy)
    return RowReader(stored, offset, (n, *ITEM_SHAPE), "|u1"), file_format
