"""Writing a file of items: a temporary file beside the destination, checked, then renamed into place.

Items are a pure function of their options, so an export needs no resumption
and no locks: it is redone from the start when interrupted, and two exporters
of one file write identical bytes. :class:`ItemFileWriter`

1. removes what dead exporters of the same file on this machine left
   (``.<name>.writing-{host}-{pid}`` whose pid is gone);
2. creates its own ``.<name>.writing-{host}-{pid}`` and reserves its full size
   (a full disk is a :class:`StorageError` naming the file before any row is
   computed, never a short write or SIGBUS later);
3. takes rows at any offset, in any order, computing each row's CRC-32;
4. on :meth:`~ItemFileWriter.commit`: checks every row was written, fsyncs,
   reads the whole file back comparing each row's CRC-32 with the one computed
   from the rows it was given (so a row the disk or anything else changed is
   caught before the file gets its name) while computing the sha256, writes
   ``<file>.crc32`` and the sidecar ``<file>.json``, and renames the file into
   place atomically.

A file under the final name is therefore always complete and checked; a
process killed at any step leaves at most its temporary file, which the next
run removes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import numpy as np

from ..common import PathLike, StorageError
from ..filesystem import check_writable_dir, fsync_dir, io_error, os_error_reason, process_alive, pwrite_all, \
    reserve_space, write_json_atomic
from .integrity import row_crc32, scan_rows, write_checksums
from .npy import FILE_FORMATS, ITEM_SHAPE, ROW_BYTES, npy_header
from .paths import parse_writing_path, sidecar_path, this_host, writing_path

__all__ = ["ItemFileWriter", "remove_dead_leftovers"]


def remove_dead_leftovers(path: PathLike) -> list:
    """Remove the temporary files of exporters of ``path`` on this machine whose process is gone."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    host = this_host()
    for candidate in path.parent.iterdir():
        parsed = parse_writing_path(candidate)
        if parsed is None or parsed[0] != path.name or parsed[1] != host or process_alive(parsed[2]):
            continue
        try:
            candidate.unlink()
            removed.append(candidate)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise io_error(err, candidate, "removing what a dead exporter left") from None
    return removed


class ItemFileWriter:
    """One file of ``rows`` items being written; see the module's description.

    Use as a context manager: leaving it without :meth:`commit` (an error,
    Ctrl-C) removes the temporary file.

    Parameters
    ----------
    path : path
        The final name.
    rows : int
        How many items.
    file_format : {"raw", "npy"}
        Raw rows (what the notebook wrote with ``np.memmap(mode="w+")``), or a
        real .npy file (numpy's own header, then the rows).
    """

    def __init__(self, path: PathLike, rows: int, file_format: str) -> None:
        if file_format not in FILE_FORMATS:
            raise ValueError(f"file_format must be one of {FILE_FORMATS}, got {file_format!r}")
        self.path = Path(path)
        self.rows = int(rows)
        self.file_format = file_format
        self.header = npy_header((self.rows, *ITEM_SHAPE)) if file_format == "npy" else b""
        self.temp = writing_path(self.path, os.getpid())
        self._fd: Optional[int] = None
        self._crcs = np.zeros(self.rows, dtype=np.uint32)
        self._written = np.zeros(self.rows, dtype=bool)

    @property
    def offset(self) -> int:
        """Where row 0 starts: the header's length (0 for raw files)."""
        return len(self.header)

    def __enter__(self) -> "ItemFileWriter":
        check_writable_dir(self.path.parent, "output folder")
        remove_dead_leftovers(self.path)
        size = self.offset + self.rows * ROW_BYTES
        try:
            self._fd = os.open(self.temp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)
        except OSError as err:
            raise io_error(err, self.temp, f"creating the file that becomes {self.path.name}") from None
        try:
            reserve_space(self._fd, size)
            if self.header:
                pwrite_all(self._fd, self.header, 0)
        except OSError as err:
            self._discard()
            raise StorageError(
                f"{self.path}: cannot reserve {size / 2**20:.1f} MiB for the export ({os_error_reason(err)}); "
                "free space or choose another --out"
            ) from None
        return self

    def write(self, start: int, rows: np.ndarray) -> None:
        """Write ``rows`` (k, 112, 112) uint8 as rows ``start .. start + k - 1``."""
        rows = np.ascontiguousarray(rows, dtype=np.uint8)
        stop = start + len(rows)
        if rows.shape[1:] != ITEM_SHAPE or not 0 <= start <= stop <= self.rows:
            raise ValueError(f"rows {start}-{stop - 1} of shape {rows.shape} do not fit {self.rows} items")
        try:
            pwrite_all(self._fd, rows.data, self.offset + start * ROW_BYTES)
        except OSError as err:
            raise io_error(err, self.temp, f"writing rows {start}-{stop - 1} of {self.path.name}") from None
        self._crcs[start:stop] = row_crc32(rows)
        self._written[start:stop] = True

    def commit(self, metadata: Mapping[str, Any], *, replace: bool = True) -> Dict[str, Any]:
        """Check, record and rename the file into place; returns the sidecar written.

        ``replace=False`` leaves a final file that appeared meanwhile (another
        exporter of the same items finished first) where it is and discards
        this one, so that nobody serving it sees it swapped for identical bytes.
        """
        missing = np.flatnonzero(~self._written)
        if len(missing):
            raise StorageError(f"{self.path}: {len(missing)} rows were never written (first: {missing[0]}); "
                               "nothing was renamed into place")
        try:
            os.fsync(self._fd)
        except OSError as err:
            raise io_error(err, self.temp, f"writing {self.path.name}") from None
        view = np.memmap(self.temp, mode="r", dtype=np.uint8, shape=(self.rows, *ITEM_SHAPE), offset=self.offset) \
            if self.rows else np.empty((0, *ITEM_SHAPE), np.uint8)
        sha, crcs = scan_rows(view)
        del view
        with open(self.temp, "rb") as f:
            header = f.read(self.offset)
        if header != self.header:
            raise StorageError(f"{self.path}: its .npy header read back differs from the one written; nothing was "
                               "renamed into place: run the export again")
        differ = np.flatnonzero(crcs != self._crcs)
        if len(differ):
            raise StorageError(
                f"{self.path}: {len(differ)} rows read back differ from the rows written (first: row {differ[0]}; "
                "a failing disk or another process writing the same temporary file?); nothing was renamed into "
                "place: run the export again"
            )
        sidecar = dict(metadata, file_format=self.file_format, header_bytes=self.offset, sha256=sha,
                       completed=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        os.close(self._fd)  # Windows cannot rename an open file
        self._fd = None
        if not replace and self.path.exists():
            self._discard()
            return sidecar
        try:
            sidecar["checksums_sha256"] = write_checksums(self.path, self._crcs)
            # Sidecar and checksums before the rows: a crash in between leaves no file under the final
            # name, and a final file always has the records it is checked against.
            write_json_atomic(sidecar_path(self.path), sidecar)
            os.replace(self.temp, self.path)
        except OSError as err:
            self._discard()
            raise io_error(err, self.path, "renaming the finished export into place") from None
        fsync_dir(self.path.parent)
        return sidecar

    def _discard(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        try:
            self.temp.unlink()
        except FileNotFoundError:
            pass

    def __exit__(self, *exc: Any) -> None:
        # After a commit the temporary name is gone; otherwise it must not outlive this writer.
        self._discard()
