"""What a finished file is checked against: per-row CRC-32s, the sha256 of its rows, its stat identity.

An export records three things beside its rows, each for a check of its own
cost:

stat identity ``(device, inode, size, mtime_ns)``
    taken when a file is opened to serve items and compared whenever a process
    maps it and on every read: a file replaced, truncated or rewritten since is
    noticed without reading a byte of it;
``<file>.crc32``
    one CRC-32 per row (little-endian uint32), its own sha256 in the sidecar;
    a served row is checked against it (about 4 us a row);
``sha256`` in the sidecar
    over every data byte (after the header, if any); read in full by ``verify``
    and by ``export`` before it calls a file complete.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path
from typing import Any, List, Mapping, Optional, Tuple

import numpy as np

from ..common import PathLike, StorageError
from ..filesystem import fsync_dir, io_error
from .npy import ROW_BYTES, map_rows
from .paths import checksums_path, sidecar_path

__all__ = ["StatIdentity", "stat_identity", "row_crc32", "write_checksums", "read_checksums", "scan_rows",
           "FileCheck", "check_finished"]

#: ``(st_dev, st_ino, st_size, st_mtime_ns)`` of a file.
StatIdentity = Tuple[int, int, int, int]

_BLOCK_ROWS = 256


def stat_identity(path_or_fd: Any) -> StatIdentity:
    """``(device, inode, size, mtime_ns)`` of a path or an open file descriptor."""
    st = os.fstat(path_or_fd) if isinstance(path_or_fd, int) else os.stat(path_or_fd)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def row_crc32(rows: np.ndarray) -> np.ndarray:
    """CRC-32 of each ``(112, 112)`` row of ``rows``, as uint32."""
    rows = np.ascontiguousarray(rows, dtype=np.uint8).reshape(-1, ROW_BYTES)
    return np.fromiter((zlib.crc32(r) for r in rows), dtype=np.uint32, count=len(rows))


def write_checksums(path: PathLike, crcs: np.ndarray) -> str:
    """Write ``<path>.crc32`` atomically; returns the sha256 of its bytes (recorded in the sidecar)."""
    target = checksums_path(path)
    data = np.asarray(crcs, dtype="<u4").tobytes()
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise io_error(err, target, "writing the row checksums") from None
    fsync_dir(target.parent)
    return hashlib.sha256(data).hexdigest()


def read_checksums(path: PathLike, rows: int, sha256: Optional[str]) -> np.ndarray:
    """The row CRC-32s of ``path``, checked against the sha256 its sidecar records."""
    target = checksums_path(path)
    remedy = f"export {Path(path).name} again (it rewrites both)"
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        raise StorageError(f"{target}: missing; it holds the row checksums of {Path(path).name}: {remedy}") from None
    except OSError as err:
        raise io_error(err, target, "reading the row checksums") from None
    if len(data) != 4 * rows:
        raise StorageError(f"{target}: {len(data)} bytes, expected {4 * rows} (one CRC-32 per row); {remedy}")
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise StorageError(f"{target}: its sha256 is not the one {sidecar_path(path).name} records; {remedy}")
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


def scan_rows(array: np.ndarray) -> Tuple[str, np.ndarray]:
    """Read every row once: ``(sha256 of all the rows' bytes, CRC-32 of each row)``."""
    digest = hashlib.sha256()
    crcs = np.empty(len(array), dtype=np.uint32)
    for start in range(0, len(array), _BLOCK_ROWS):
        block = np.ascontiguousarray(array[start:start + _BLOCK_ROWS])
        digest.update(block.data)
        crcs[start:start + len(block)] = row_crc32(block)
    return digest.hexdigest(), crcs


class FileCheck:
    """The result of :func:`check_finished`: ``ok``, and ``problems`` (what differs) and ``damaged_rows``."""

    def __init__(self, path: Path, file_format: str, rows: int) -> None:
        self.path = path
        self.file_format = file_format
        self.rows = rows
        self.problems: List[str] = []
        self.damaged_rows: List[int] = []

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        return "; ".join(self.problems)


def check_finished(path: PathLike, meta: Mapping[str, Any]) -> FileCheck:
    """Read every row of a finished export and compare with its sidecar: sha256 and row CRC-32s.

    ``meta`` is the file's sidecar (of this version's format). A file that
    cannot even be mapped as the sidecar says (cut short, the other format)
    raises :class:`StorageError`; anything else that differs is listed in the
    returned check, with the rows whose CRC-32 differs.
    """
    path = Path(path)
    rows = int(meta["shape"][0])
    array, file_format, _ = map_rows(path, rows, meta.get("file_format"))
    check = FileCheck(path, file_format, rows)
    sha, crcs = scan_rows(array)
    del array
    try:
        recorded = read_checksums(path, rows, meta.get("checksums_sha256"))
    except StorageError as err:
        check.problems.append(str(err))
        recorded = None
    if recorded is not None:
        check.damaged_rows = np.flatnonzero(recorded != crcs).tolist()
        if check.damaged_rows:
            shown = ", ".join(map(str, check.damaged_rows[:10]))
            more = f" and {len(check.damaged_rows) - 10} more" if len(check.damaged_rows) > 10 else ""
            check.problems.append(f"{len(check.damaged_rows)} rows differ from their recorded CRC-32: "
                                  f"{shown}{more}")
    if sha != meta.get("sha256"):
        check.problems.append(f"the sha256 of its rows is not the one {sidecar_path(path).name} records")
    return check
