"""An export in progress: the ``.partial`` file, its locks and its chunk log, and finishing it.

See :mod:`avmnist_torch.storage` for the files involved and why they are safe
against crashes, full disks and concurrent exporters.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, List, Mapping, Optional, Set, Tuple

import numpy as np

from ..common import LockedError, MetadataMismatch, ParameterError, PathLike, StorageError
from ..filesystem import (
    RangeLocks,
    check_writable_dir,
    fsync_dir,
    io_error,
    os_error_reason,
    pwrite_all,
    reserve_space,
    write_json_atomic,
)
from .npy import ITEM_SHAPE, ROW_BYTES, check_npy_items, npy_header
from .paths import done_dir, lock_path, partial_meta_path, partial_path, sidecar_path
from .provenance import describe_differences, describe_value, metadata_differences, read_sidecar

__all__ = ["ExportTarget", "done_chunks"]

# Windows opens files in text mode unless told otherwise, and would turn every
# 0x0A byte written through os.write into 0x0D 0x0A.
_BINARY = getattr(os, "O_BINARY", 0)
#: Byte 0 of the lock file guards creating and finishing; byte 1 + c guards chunk c.
_ADMIN = (0, 1)


def done_chunks(path: PathLike) -> Set[int]:
    """Chunk numbers recorded as written for the export in progress to ``path``.

    A line counts only when it is complete (newline-terminated): a log torn by
    a crash loses at most the chunk it was recording, which is then rewritten.
    """
    done: Set[int] = set()
    folder = done_dir(path)
    try:
        logs = sorted(folder.glob("*.log"))
    except OSError:
        return done
    for log in logs:
        try:
            text = log.read_text()
        except FileNotFoundError:
            continue
        for line in text.split("\n")[:-1]:
            if line.strip().isdigit():
                done.add(int(line))
    return done


_SHARING_VIOLATION = 32  # Windows' ERROR_SHARING_VIOLATION: another handle has the file open
_RENAME_TRIES = 20


def _replace_when_closed(source: Path, target: Path) -> bool:
    """``os.replace``, waiting up to a second for other handles of ``source`` to close (Windows).

    POSIX renames open files; Windows refuses while any other process has the
    file open. Returns False if it stayed open.
    """
    for _ in range(_RENAME_TRIES):
        try:
            os.replace(source, target)
            return True
        except PermissionError as err:
            if getattr(err, "winerror", None) != _SHARING_VIOLATION:
                raise
            time.sleep(0.05)
    return False


#: Files this process is exporting: one process's byte-range locks cannot keep its own exporters apart.
_ACTIVE: Set[str] = set()


class ExportTarget:
    """One output file being written, possibly by several exporters over disjoint chunks.

    Parameters
    ----------
    path : path
        The final file name.
    metadata : dict
        What the rows are: the identity fields (:data:`~avmnist_torch.storage.IDENTITY_KEYS`), which a
        finished file must match, and any provenance; ``metadata["shape"][0]``
        is the number of rows.
    chunk_rows : int
        Rows per chunk, the unit of progress and of locking. A resumed export
        keeps the chunk size it was started with.

    Use :meth:`open` first: it returns ``"complete"`` when the file is already
    there with matching metadata, else ``"partial"``, after which
    :meth:`claim`, :meth:`write_chunk` and :meth:`finish` do the work.

    Raises
    ------
    UnsupportedPlatformError
        From :meth:`open`, on a platform with neither POSIX (``fcntl``) nor
        Windows (``msvcrt``) byte-range locks; nothing is created then.
    """

    def __init__(self, path: PathLike, metadata: Mapping[str, Any], chunk_rows: int = 250) -> None:
        if chunk_rows < 1:
            raise ParameterError(f"chunk_rows must be at least 1, got {chunk_rows}")
        self.path = Path(path)
        self.metadata = dict(metadata)
        self.rows = int(self.metadata["shape"][0])
        self.chunk_rows = int(chunk_rows)
        self.partial = partial_path(self.path)
        self._lock_fd: Optional[int] = None
        self._locks: Optional[RangeLocks] = None
        self._data_fd: Optional[int] = None
        self._log = None
        self._active_key: Optional[str] = None
        self._offset = len(npy_header(self.metadata["shape"]))
        self.claimed: Tuple[int, int] = (0, 0)

    # -- geometry ----------------------------------------------------------
    @property
    def n_chunks(self) -> int:
        return -(-self.rows // self.chunk_rows)

    def chunk_range(self, chunk: int) -> Tuple[int, int]:
        start = chunk * self.chunk_rows
        return start, min(self.rows, start + self.chunk_rows)

    def shard_chunks(self, shard: int = 0, shards: int = 1) -> Tuple[int, int]:
        """Chunks ``[first, stop)`` of shard ``shard`` of ``shards``: contiguous, disjoint, covering all."""
        if not 0 <= shard < shards:
            raise ParameterError(f"shard {shard}/{shards}: K must be in 0..{shards - 1} (K/N counts from 0)")
        n = self.n_chunks
        return shard * n // shards, (shard + 1) * n // shards

    # -- locks -------------------------------------------------------------
    def _open_lock(self) -> None:
        """Open the lock file and hold byte 0, checking that the file is still the live one.

        The finisher deletes the lock file; an exporter that opened it before
        would otherwise lock an orphaned inode that nobody else sees.
        """
        lock = lock_path(self.path)
        while True:
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | _BINARY, 0o644)
            except OSError as err:
                raise io_error(err, lock, "creating the lock file") from None
            try:
                locks = RangeLocks(fd)
                locks.acquire(*_ADMIN)
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._lock_fd, self._locks = fd, locks
                return
            os.close(fd)

    def _release_admin(self) -> None:
        if self._locks is not None:
            self._locks.release(*_ADMIN)

    def close(self) -> None:
        """Release every lock and close every file (finished chunks stay recorded)."""
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._data_fd is not None:
            os.close(self._data_fd)
            self._data_fd = None
        if self._lock_fd is not None:
            first, stop = self.claimed
            if stop > first:
                # POSIX drops a process's locks when it closes the fd; Windows does too, but
                # only "eventually", so release the claim explicitly first.
                self._locks.release(1 + first, stop - first)
            os.close(self._lock_fd)
            self._lock_fd, self._locks = None, None
            self.claimed = (0, 0)
        if self._active_key is not None:
            _ACTIVE.discard(self._active_key)
            self._active_key = None

    def __enter__(self) -> "ExportTarget":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- states ------------------------------------------------------------
    def _check_final(self) -> bool:
        if not self.path.exists():
            return False
        side = sidecar_path(self.path)
        meta = read_sidecar(self.path)
        if meta is None:
            raise StorageError(
                f"{self.path} already exists and has no {side.name} saying what made it "
                "(a notebook file?); delete or move it, or export to another --out"
            )
        diffs = metadata_differences(meta, self.metadata)
        if diffs:
            raise MetadataMismatch(
                f"{self.path} already exists and was made with other options: "
                f"{describe_differences(diffs, 'file', 'this run')}; delete it (and its .json) to replace it, "
                "or export to another --out"
            )
        # A matching sidecar says what the file should be, not that all of it is there
        # (a copy cut short keeps its sidecar): check the header and the size, which is
        # cheap, rather than the sha256, which would read every row at every rerun.
        check_npy_items(
            self.path, self.rows,
            remedy=f"its {side.name} matches this run but the file does not: delete it and {side.name}, "
                   "then rerun the export",
        )
        header = meta.get("header_bytes")
        if header is not None and int(header) != self._offset:
            raise StorageError(f"{self.path}: its .npy header is {self._offset} bytes, its {side.name} says "
                               f"{header}; delete it and {side.name}, then rerun the export")
        return True

    def open(self) -> str:
        """Find or create the file; ``"complete"`` if it is already finished, else ``"partial"``."""
        RangeLocks.check_available()
        check_writable_dir(self.path.parent, "output folder")
        key = str(self.path.resolve())
        if key in _ACTIVE:
            # Byte-range locks belong to the process on POSIX, so they cannot keep two exporters
            # of one process apart; and closing either's lock fd would drop the other's locks.
            raise LockedError(f"{self.path}: already being exported by this process (pid {os.getpid()})")
        self._open_lock()
        _ACTIVE.add(key)
        self._active_key = key
        try:
            if self._check_final():
                self.close()
                return "complete"
            self._open_or_create_partial()
        except BaseException:
            self.close()
            raise
        self._release_admin()
        return "partial"

    def _open_or_create_partial(self) -> None:
        pmeta_path = partial_meta_path(self.path)
        started = None
        if pmeta_path.exists():
            try:
                started = json.loads(pmeta_path.read_text())
            except json.JSONDecodeError:
                started = None  # torn by a crash before any chunk could be logged: start over
        if started is not None:
            diffs = metadata_differences(started, self.metadata)
            if diffs:
                started_with = ", ".join(describe_value(k, a) for k, a, _ in diffs)
                asked = ", ".join(describe_value(k, b) for k, _, b in diffs)
                raise MetadataMismatch(
                    f"{self.path} was started with {started_with}, this run has {asked}; "
                    f"delete {self.partial} (and {pmeta_path.name}, {done_dir(self.path).name}) "
                    "or use the same options"
                )
            self.chunk_rows = int(started.get("chunk_rows", self.chunk_rows))
        expected_size = self._offset + self.rows * ROW_BYTES
        if started is not None and self.partial.exists() and self.partial.stat().st_size == expected_size:
            pass
        else:
            # No rows can have been logged for a partial file that was never fully created.
            self._clear_progress()
            record = dict(self.metadata, chunk_rows=self.chunk_rows, started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            try:
                write_json_atomic(pmeta_path, record)
            except OSError as err:
                raise io_error(err, pmeta_path, "starting the export") from None
            self._create_partial(expected_size)
        try:
            done_dir(self.path).mkdir(exist_ok=True)
            self._data_fd = os.open(self.partial, os.O_RDWR | _BINARY)
        except OSError as err:
            raise io_error(err, self.partial, "opening the export in progress") from None

    def _clear_progress(self) -> None:
        folder = done_dir(self.path)
        if folder.is_dir():
            for log in folder.glob("*"):
                log.unlink(missing_ok=True)

    def _create_partial(self, size: int) -> None:
        tmp = self.path.with_name(f".{self.path.name}.creating-{os.getpid()}")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | _BINARY, 0o644)
            try:
                # Reserve every block now: a full disk fails here, clearly, and never
                # later as a short write or a SIGBUS through a memory map.
                reserve_space(fd, size)
                pwrite_all(fd, npy_header(self.metadata["shape"]), 0)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.partial)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise StorageError(
                f"{self.path}: cannot allocate {size / 2**20:.1f} MiB for the export "
                f"({os_error_reason(err)}); free space or choose another --out"
            ) from None
        fsync_dir(self.path.parent)

    # -- work --------------------------------------------------------------
    def claim(self, first: int, stop: int) -> List[int]:
        """Lock chunks ``[first, stop)`` for this exporter and return those not yet written.

        Raises :class:`LockedError` naming the holder's pid (where the OS tells
        it: Linux, macOS) when another exporter holds any of them.
        """
        assert self._locks is not None and self._data_fd is not None, "open() first"
        if stop > first and not self._locks.acquire(1 + first, stop - first, blocking=False):
            pid = self._locks.holder_pid(1 + first, stop - first)
            who = f"pid {pid}" if pid else "another process"
            lo, hi = self.chunk_range(first)[0], self.chunk_range(stop - 1)[1]
            raise LockedError(
                f"{self.path}: rows {lo}-{hi - 1} are being written by another exporter ({who}); "
                "wait for it to finish or stop it, then rerun"
            )
        self.claimed = (first, stop)
        done = done_chunks(self.path)
        log = done_dir(self.path) / f"chunks-{first}-{stop}-{socket.gethostname()}-{os.getpid()}.log"
        self._log = open(log, "a")
        return [c for c in range(first, stop) if c not in done]

    def write_chunk(self, chunk: int, rows: np.ndarray) -> None:
        """Write one chunk's rows, make them durable, then record the chunk as done."""
        start, stop = self.chunk_range(chunk)
        rows = np.ascontiguousarray(rows, dtype=np.uint8)
        if rows.shape != (stop - start, *ITEM_SHAPE):
            raise ValueError(f"chunk {chunk} needs shape {(stop - start, *ITEM_SHAPE)}, got {rows.shape}")
        try:
            pwrite_all(self._data_fd, rows.tobytes(), self._offset + start * ROW_BYTES)
            os.fsync(self._data_fd)
        except OSError as err:
            raise StorageError(
                io_error(err, self.partial, f"writing rows {start}-{stop - 1}").args[0]
                + "; rows already written are kept: free space, then rerun the same command to continue"
            ) from None
        try:
            self._log.write(f"{chunk}\n")
            self._log.flush()
            os.fsync(self._log.fileno())
        except OSError as err:
            raise io_error(err, Path(self._log.name), "recording progress") from None

    def finish(self) -> bool:
        """Complete the file if every chunk is written (by anyone); True if it is complete now."""
        # Re-take byte 0 on the fd we hold: opening a second fd of the lock file and closing
        # it would drop every POSIX lock of this process on it, chunk claims included.
        self._locks.acquire(*_ADMIN)
        try:
            try:
                live = os.stat(lock_path(self.path)).st_ino == os.fstat(self._lock_fd).st_ino
            except FileNotFoundError:
                live = False
            if not live:
                # Another exporter finished the file and removed the lock file after the rename.
                return self._check_final()
            if self._check_final():
                return True
            missing = set(range(self.n_chunks)) - done_chunks(self.path)
            if missing:
                return False
            os.fsync(self._data_fd)
            digest = hashlib.sha256()
            with open(self.partial, "rb") as f:
                f.seek(self._offset)
                for block in iter(lambda: f.read(1 << 22), b""):
                    digest.update(block)
            sidecar = dict(
                self.metadata,
                sha256=digest.hexdigest(),
                header_bytes=self._offset,
                completed=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            )
            # Windows cannot rename a file that is open, ours included.
            os.close(self._data_fd)
            self._data_fd = None
            try:
                # Sidecar first: a crash between the two leaves a .partial that the next run
                # finishes, never a final file without its provenance.
                write_json_atomic(sidecar_path(self.path), sidecar)
                if not _replace_when_closed(self.partial, self.path):
                    # Another exporter of this file (a shard done at the same moment) still has it
                    # open; it finishes the file when it gets byte 0, or a rerun does.
                    return False
            except OSError as err:
                raise io_error(err, self.path, "finishing the export") from None
            fsync_dir(self.path.parent)
            partial_meta_path(self.path).unlink(missing_ok=True)
            self._clear_progress()
            try:
                done_dir(self.path).rmdir()
            except OSError:
                pass
            try:
                lock_path(self.path).unlink(missing_ok=True)
            except OSError:
                pass  # Windows cannot delete a file another exporter has open; an empty lock file is harmless
            return True
        finally:
            self._release_admin()
