"""Reading and writing files of items: .npy headers, row maps, and the notebook's raw files.

A file of items holds ``(N, 112, 112) uint8`` rows, C-ordered. Two kinds are
read: real ``.npy`` files (what ``export --format npy`` and MultiBench's layout
get, what ``np.save`` writes) and the notebook's headerless files (``np.memmap(..., mode='w+')`` despite the
.npy name), which is also what ``export`` writes for the notebook's layout.
Every reader here checks the file's size against what its header
(or the caller) promises before mapping it, so a file cut short or a foreign
array is an error naming the file, never numpy's "mmap length is greater than
file size" from deep inside ``np.load``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from ..common import PathLike, StorageError

ITEM_SHAPE = (112, 112)
ROW_BYTES = ITEM_SHAPE[0] * ITEM_SHAPE[1]
NPY_MAGIC = b"\x93NUMPY"

FILE_FORMATS = ("raw", "npy")

__all__ = ["ITEM_SHAPE", "ROW_BYTES", "NPY_MAGIC", "FILE_FORMATS", "npy_header", "read_npy_header", "is_npy",
           "check_npy_items", "open_rows", "map_rows"]

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


def map_rows(path: PathLike, rows: Optional[int] = None,
             file_format: Optional[str] = None) -> Tuple[np.ndarray, str, int]:
    """Map a file of items read-only: ``(array (N, 112, 112) uint8, file format, data offset)``.

    ``file_format`` is what the file must be, as its sidecar records it:
    ``"raw"`` (headerless rows, exactly ``N * 112 * 112`` bytes) or ``"npy"``
    (a .npy header, then the rows). Without it the file tells: one that starts
    with the .npy magic is ``"npy"``, any other ``"raw"``. ``rows``, when
    given, is the N the caller expects; without it a raw file's N is its size
    divided by 12,544. A file that is cut short, too long, of the other format
    than recorded, or not of items raises :class:`StorageError` naming it.
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
        return np.memmap(path, mode="r", dtype=np.uint8, shape=(n, *ITEM_SHAPE), offset=offset), "npy", offset
    if rows is None:
        if size == 0 or size % ROW_BYTES:
            raise StorageError(f"{path}: neither a .npy file nor a raw file of whole 112x112 uint8 rows "
                               f"({size} bytes is not a multiple of {ROW_BYTES})")
        rows = size // ROW_BYTES
    elif size != rows * ROW_BYTES:
        if file_format == "raw" and size < rows * ROW_BYTES:
            raise StorageError(f"{path}: cut short: {size // ROW_BYTES} whole rows of the {rows} its sidecar records "
                               f"({size} bytes, expected {rows * ROW_BYTES}); {_REMAKE}")
        what = "a raw file" if file_format == "raw" else "neither a .npy file nor a raw notebook file"
        raise StorageError(f"{path}: {what} of {rows} rows ({size} bytes, expected {rows * ROW_BYTES})")
    return np.memmap(path, mode="r", dtype=np.uint8, shape=(rows, *ITEM_SHAPE)), "raw", 0


def open_rows(path: PathLike, rows: Optional[int] = None) -> Tuple[np.ndarray, str]:
    """Map a file of items read-only: ``(array (N, 112, 112) uint8, kind)``; see :func:`map_rows`.

    ``kind`` is ``"npy"`` for a .npy file and ``"raw"`` for a headerless file,
    told from the file itself.
    """
    array, kind, _ = map_rows(path, rows)
    return array, kind
