"""Every file the package writes (:class:`FileWriter`) and reads back (:class:`StoredFile`), one design for
all: ``docs/formats.md``, "One design for every file"."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import secrets
import socket
import stat
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar

import filelock
import numpy as np
import platformdirs

from .common import PathLike, StorageError

#: Environment variable that overrides the cache folder.
CACHE_ENV = "AVMNIST_CACHE"
_BLOCK = 1 << 22
_OPEN_LIMIT = 16
_FLAGS = getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
_REMEDY = "delete it and its .json, and make it again"
_DENIED = "not writable or not readable (permission denied or read-only file system)"
_REASONS = {errno.ENOSPC: "no space left on device", getattr(errno, "EDQUOT", -1): "disk quota exceeded",
            errno.EACCES: _DENIED, errno.EPERM: _DENIED, errno.EROFS: _DENIED}
Identity = Tuple[int, int, int, int, int]  # (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)
T = TypeVar("T")

__all__ = ["CACHE_ENV", "default_cache_dir", "os_error_reason", "io_error", "sidecar_path", "host_name",
           "temporary_pid", "process_running", "leftover_temporaries", "FileWriter", "write_bytes", "write_json",
           "read_sidecar", "npy_header", "read_npy_header", "StoredFile", "RowReader", "file_lock", "open_or_make",
           "open_cached", "stat_identity"]


def default_cache_dir() -> Path:
    """``$AVMNIST_CACHE``, else the platform's user cache folder (``platformdirs``; see ``docs/formats.md``)."""
    return Path(os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("avmnist-torch", appauthor=False))


def os_error_reason(err: OSError) -> str:
    """Why a file operation failed, in plain words: "no space left on device", ..."""
    return _REASONS.get(err.errno) or (os.strerror(err.errno) if err.errno else str(err))


def io_error(err: OSError, path: PathLike, doing: str, cls: type = StorageError) -> StorageError:
    """A package error naming ``path``, what was being done and, in plain words, why it failed."""
    return cls(f"{path}: {os_error_reason(err)} while {doing}")


def sidecar_path(path: PathLike) -> Path:
    """``<file>.json``: what made a file, its size and its sha256."""
    return Path(f"{path}.json")


def host_name() -> str:
    """This machine's name as temporary names hold it: letters, digits and "_" (no "-", which separates fields)."""
    return re.sub(r"\W", "_", socket.gethostname()) or "host"


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{host_name()}-{os.getpid()}-{secrets.token_hex(4)}")


def temporary_pid(name: str) -> Optional[int]:
    """The pid in a :class:`FileWriter` temporary name, ``.<name>.tmp-<host>-<pid>-<hex>``, of this host; else None."""
    found = re.fullmatch(r"\..*\.tmp-(\w+)-(\d+)-[0-9a-f]{8}", name)
    return int(found[2]) if found and found[1] == host_name() else None


def process_running(pid: int) -> bool:
    """Whether process ``pid`` on this machine still runs (always True on Windows, which cannot tell cheaply)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it runs, as another user
        pass
    return True


def leftover_temporaries(folder: PathLike, prefix: str = ".") -> List[Path]:
    """Temporary files in ``folder`` (names starting with ``prefix``) whose writer on this machine no longer runs."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [Path(folder, name) for name in names
            if name.startswith(prefix) and (pid := temporary_pid(name)) is not None and not process_running(pid)]


def _pwrite(fd: int, data: memoryview, offset: int) -> None:
    while data:
        if hasattr(os, "pwrite"):
            n = os.pwrite(fd, data, offset)
        else:  # Windows: the descriptor is this writer's own, so seek and write cannot interleave
            os.lseek(fd, offset, os.SEEK_SET)
            n = os.write(fd, data)
        if n == 0:
            raise OSError(errno.EIO, "short write")
        data, offset = data[n:], offset + n


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    """Fill ``view`` from ``offset``; returns the bytes read (fewer only at the end of the file)."""
    done = 0
    while done < len(view) and (n := _preadv(fd, view[done:], offset + done)):
        done += n
    return done


if hasattr(os, "preadv"):
    def _preadv(fd: int, view: memoryview, offset: int) -> int:
        return os.preadv(fd, [view], offset)
else:  # Windows has no pread: one seek-and-read at a time per process
    _SEEK_LOCK = threading.Lock()

    def _preadv(fd: int, view: Any, offset: int) -> int:
        view = memoryview(view).cast("B")
        with _SEEK_LOCK:
            os.lseek(fd, offset, os.SEEK_SET)
            chunk = os.read(fd, len(view))
        view[:len(chunk)] = chunk
        return len(chunk)


class FileWriter:
    """One file written whole, or not at all (see the module), as a context manager.

    Bytes go in with :meth:`write_at` (any order) or :meth:`append`; :meth:`commit` requires every byte up
    to the end written once. Leaving the ``with`` block without a commit removes the temporary file.

    Parameters
    ----------
    path : path
        The final name; its folder is created if need be.
    size : int, optional
        The file's size, reserved up front where the platform can (``posix_fallocate``): a full disk is
        then a :class:`StorageError` naming the file before any work.
    """

    def __init__(self, path: PathLike, size: Optional[int] = None) -> None:
        self.path = Path(path)
        self.size = size
        self.temporary: Optional[Path] = None
        self._fd: Optional[int] = None
        self._regions: Dict[int, Tuple[int, int]] = {}  # offset -> (length, CRC-32 of what was written)
        self._end = 0

    def __enter__(self) -> "FileWriter":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise io_error(err, self.path.parent, "creating the folder") from None
        for leftover in leftover_temporaries(self.path.parent, f".{self.path.name}.tmp-"):  # a killed writer's
            with contextlib.suppress(OSError):
                os.unlink(leftover)  # a link is removed itself, its target untouched
        try:
            for _ in range(16):  # a name taken, or a link planted at it, is never opened: another is drawn
                self.temporary = _temporary_name(self.path)
                with contextlib.suppress(FileExistsError):
                    self._fd = os.open(self.temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | _FLAGS, 0o666)
                    break
            else:
                raise StorageError(f"{self.path}: could not create a temporary file beside it")
        except OSError as err:
            raise io_error(err, self.path, "creating its temporary file") from None
        if self.size and hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(self._fd, 0, self.size)
            except OSError as err:
                if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
                    self.__exit__()
                    raise StorageError(f"{self.path}: cannot reserve {self.size / 2**20:.1f} MiB "
                                       f"({os_error_reason(err)}); free space or write it elsewhere") from None
        return self

    def write_at(self, offset: int, data: Any) -> None:
        """Write ``data`` (bytes or a C-contiguous array) at ``offset``."""
        view = memoryview(data).cast("B")
        try:
            _pwrite(self._fd, view, offset)
        except OSError as err:
            raise io_error(err, self.path, f"writing bytes {offset}-{offset + len(view)}") from None
        self._regions[offset] = (len(view), zlib.crc32(view))
        self._end = max(self._end, offset + len(view))

    def append(self, data: Any) -> None:
        """Write ``data`` after everything written so far."""
        self.write_at(self._end, data)

    def commit(self, sidecar: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Check the file, write ``<file>.json`` (with ``sidecar`` only), rename the file into place; returns
        ``sidecar`` with the file's size and sha256."""
        size = self._end if self.size is None else self.size
        try:
            os.ftruncate(self._fd, size)  # a reservation larger than what was written is not file content
            os.fsync(self._fd)
            digest = self._read_back(size)
        except OSError as err:
            raise io_error(err, self.path, "writing it") from None
        record = dict(sidecar or {}, size=size, sha256=digest)
        if sidecar is not None:
            write_json(sidecar_path(self.path), record)
        os.close(self._fd)  # Windows cannot rename an open file
        self._fd = None
        try:
            os.replace(self.temporary, self.path)
        except OSError as err:
            raise io_error(err, self.path, "renaming the finished file into place") from None
        self.temporary = None
        with contextlib.suppress(OSError):  # Windows cannot open a folder, nor some file systems fsync one
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return record

    def _read_back(self, size: int) -> str:  # every region read back against its CRC-32, and the sha256
        digest = hashlib.sha256()
        position = 0
        for offset, (length, crc) in sorted(self._regions.items()):
            if offset != position:
                raise StorageError(f"{self.path}: bytes {position}-{offset} were never written; "
                                   "nothing was renamed into place")
            buffer = bytearray(length)
            if _pread_into(self._fd, memoryview(buffer), offset) != length or zlib.crc32(buffer) != crc:
                raise StorageError(f"{self.path}: bytes {offset}-{offset + length} read back differ from those "
                                   "written (a failing disk?); nothing was renamed into place: write it again")
            digest.update(buffer)
            position = offset + length
        if position != size:
            raise StorageError(f"{self.path}: {position} bytes written, {size} expected; nothing was renamed "
                               "into place")
        return digest.hexdigest()

    def __exit__(self, *exc: Any) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        if self.temporary is not None:
            with contextlib.suppress(OSError):
                self.temporary.unlink()
        self._fd = self.temporary = None


def write_bytes(path: PathLike, data: Any, sidecar: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Write ``data`` as the whole file ``path`` (:class:`FileWriter`); returns the record."""
    with FileWriter(path) as writer:
        writer.append(data)
        return writer.commit(sidecar)


def write_json(path: PathLike, data: Mapping[str, Any]) -> None:
    """Write ``data`` as a JSON file, whole or not at all."""
    write_bytes(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def read_sidecar(path: PathLike, remedy: str = _REMEDY) -> Optional[Dict[str, Any]]:
    """The sidecar of ``path`` as a dict; None when there is none. ``remedy`` ends every error message."""
    side = sidecar_path(path)
    try:
        with open(side, "rb") as f:
            meta = json.loads(f.read(1 << 24).decode("utf-8"))
    except FileNotFoundError:
        return None
    except OSError as err:
        raise io_error(err, side, "reading it") from None
    except ValueError as err:  # UnicodeDecodeError included
        raise StorageError(f"{side}: not a JSON sidecar ({type(err).__name__}: {err}); {remedy}") from None
    if not isinstance(meta, dict):
        raise StorageError(f"{side}: holds {type(meta).__name__}, not a JSON object; {remedy}")
    return meta


def npy_header(shape: Sequence[int], dtype: Any = np.uint8) -> bytes:
    """The .npy header (format 1.0) numpy itself writes for a C-ordered array of ``shape`` and ``dtype``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def read_npy_header(path: PathLike, remedy: str = _REMEDY) -> Tuple[Tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, data offset)`` of a C-ordered .npy file; :class:`StorageError` naming it otherwise."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            offset = f.tell()
    except ValueError as err:
        raise StorageError(f"{path}: not a readable .npy file ({err}); {remedy}") from None
    except OSError as err:
        raise io_error(err, path, "reading it") from None
    if fortran:
        raise StorageError(f"{path}: holds a Fortran-ordered array, not C-ordered rows; save it with "
                           f"np.save(path, np.ascontiguousarray(array)), or {remedy}")
    return tuple(shape), dtype, offset


def file_lock(path: PathLike):
    """A whole-file lock between processes (``filelock``), for making one file once."""
    return filelock.FileLock(str(path))


def open_or_make(path: Path, open_: Callable[[], Optional[T]], make: Callable[[], None]) -> Optional[T]:
    """``open_()``; if None, under a lock beside ``path`` (so that concurrent first users make it once),
    ``open_()`` again, else ``make()`` then ``open_()``. Raises :class:`StorageError` naming ``path`` when
    the folder, the lock or the file cannot be made."""
    found = open_()
    if found is None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with file_lock(path.with_name(f".{path.name}.lock")):
                found = open_()  # another process may have made it meanwhile
                if found is None:
                    make()
                    found = open_()
        except OSError as err:
            raise io_error(err, path, "making it") from None
    return found


def open_cached(path: Path, expected: Mapping[str, Any], remedy: str,
                whole_bytes: int = 0) -> Optional[Tuple["StoredFile", Dict[str, Any], Optional[np.ndarray]]]:
    """A cached file whose sidecar records ``expected``, checked: ``(stored file, sidecar, its bytes read whole into
    a new writable array and checked on the bytes read when at most ``whole_bytes``, else None)``; None when
    missing, not whole or made from something else. Marks its last use (the sidecar's mtime, ``avmnist cache``)."""
    try:
        meta = read_sidecar(path, remedy)
        if meta is None or any(meta.get(key) != value for key, value in expected.items()):
            return None
        whole = isinstance(meta.get("size"), int) and meta["size"] <= whole_bytes
        stored = StoredFile.open(path, sha256=None if whole else meta.get("sha256"), size=meta.get("size"),
                                 remedy=remedy)
        data = stored.read(0, stored.size) if whole else None  # a new buffer, the caller's own
        if whole and hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            return None
    except StorageError:
        return None
    if os.utime in os.supports_follow_symlinks:  # a link planted at the sidecar's name: its target untouched
        with contextlib.suppress(OSError):
            os.utime(sidecar_path(path), follow_symlinks=False)
    return stored, meta, None if data is None else np.frombuffer(data, dtype=np.uint8)


def stat_identity(st: os.stat_result) -> Identity:
    """``(device, inode, size, mtime_ns, ctime_ns)``: any write moves the change time, which nothing can set back."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


# Per process: descriptors open for reading, and the files whose sha256 this process checked.
_OPEN: "OrderedDict[Tuple[str, Identity], int]" = OrderedDict()
_CHECKED: set = set()
_STATE_LOCK = threading.RLock()


def _forget_parents() -> None:
    # A forked child checks files again itself, and its copies of the parent's descriptors are closed.
    # The lock may have been held by another of the parent's threads at the fork: a new one.
    global _STATE_LOCK
    _STATE_LOCK = threading.RLock()
    for fd in _OPEN.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _OPEN.clear()
    _CHECKED.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parents)


@dataclass(frozen=True)
class StoredFile:
    """A finished file, read with positioned reads while it stays the file that was checked.

    Made by :meth:`open`; pickles as its fields, so each process (a DataLoader worker, a DDP rank) opens
    the file itself and checks it again. ``identity`` is its :func:`stat_identity` when checked, ``sha256``
    what its sidecar records (None: read as stored), ``remedy`` what to do about a failed check.
    """

    path: str
    identity: Identity
    sha256: Optional[str]
    remedy: str

    @classmethod
    def open(cls, path: PathLike, *, sha256: Optional[str] = None, size: Optional[int] = None,
             remedy: str = _REMEDY) -> "StoredFile":
        """Open ``path`` and check it now: its size and its sha256, each when given."""
        fd, identity = cls._open_fd(str(path), remedy, lambda found: None if size in (None, found[2]) else (
            f"{found[2]} bytes, but it should hold {size}: cut short or changed since it was written"))
        stored = cls(str(path), identity, sha256, remedy)
        with _STATE_LOCK:
            stored._keep(fd)
        return stored

    @staticmethod
    def _open_fd(path: str, remedy: str, problem: Callable[[Identity], Optional[str]]) -> Tuple[int, Identity]:
        """A descriptor of the regular file ``path`` and its identity, unless ``problem(identity)`` says why not."""
        try:
            fd = os.open(path, os.O_RDONLY | _FLAGS)
        except FileNotFoundError:
            raise StorageError(f"{path}: no such file; {remedy}") from None
        except OSError as err:
            raise io_error(err, path, "opening it for reading") from None
        st = os.fstat(fd)
        why = problem(stat_identity(st)) if stat.S_ISREG(st.st_mode) else "not a regular file"
        if why:
            os.close(fd)
            raise StorageError(f"{path}: {why}; {remedy}")
        return fd, stat_identity(st)

    @property
    def size(self) -> int:
        return self.identity[2]

    def _keep(self, fd: int) -> None:
        key = (self.path, self.identity)
        try:
            if self.sha256 is not None and key not in _CHECKED:
                self._check_sha256(fd)
                _CHECKED.add(key)
        except BaseException:
            os.close(fd)
            raise
        if key in _OPEN:  # opened again: the new descriptor replaces the old
            os.close(_OPEN.pop(key))
        _OPEN[key] = fd
        while len(_OPEN) > _OPEN_LIMIT:
            os.close(_OPEN.popitem(last=False)[1])

    def _check_sha256(self, fd: int) -> None:  # a short read hashes fewer bytes: a mismatch
        digest = hashlib.sha256()
        buffer = memoryview(bytearray(_BLOCK))
        for offset in range(0, self.size, _BLOCK):
            digest.update(buffer[:_pread_into(fd, buffer[:min(_BLOCK, self.size - offset)], offset)])
        if stat_identity(os.fstat(fd)) != self.identity:
            raise StorageError(f"{self.path}: changed while it was being checked; {self.remedy}")
        if digest.hexdigest() != self.sha256:
            raise StorageError(f"{self.path}: its sha256 is not the one its sidecar records: changed or damaged "
                               f"since it was written; {self.remedy}")

    def _descriptor(self) -> int:
        key = (self.path, self.identity)
        with _STATE_LOCK:
            fd = _OPEN.get(key)
            if fd is not None:
                _OPEN.move_to_end(key)
                return fd
            fd, _ = self._open_fd(self.path, self.remedy, lambda found: None if found == self.identity else
                                  "replaced or changed since it was checked")
            self._keep(fd)
            return fd

    def read_into(self, buffer: Any, offset: int) -> None:
        """Fill ``buffer`` (a writable C-contiguous array or bytearray) with the bytes from ``offset``."""
        self.read_rows((memoryview(buffer).cast("B"),), (offset,))

    def read_rows(self, out: Sequence[Any], offsets: Sequence[int]) -> None:
        """Fill ``out[k]`` (each a writable C-contiguous row) from ``offsets[k]``; the identity compared once, after."""
        fd = self._descriptor()
        whole = True
        for row, offset in zip(out, offsets):
            if _preadv(fd, row, offset) != row.nbytes:
                view = memoryview(row).cast("B")
                whole = _pread_into(fd, view, offset) == len(view) and whole
        now = stat_identity(os.fstat(fd))
        if not whole or now != self.identity:
            self.close()
            raise StorageError(f"{self.path}: changed while in use ({self.size} bytes when checked, {now[2]} now); "
                               f"nothing more is read from it; {self.remedy}")

    def read(self, offset: int, size: int) -> bytearray:
        """``size`` bytes from ``offset``, in a new buffer."""
        out = bytearray(size)
        self.read_into(out, offset)
        return out

    def close(self) -> None:
        """Close this process's descriptor of the file (it is opened, and checked, again on the next read)."""
        with _STATE_LOCK:
            key = (self.path, self.identity)
            fd = _OPEN.pop(key, None)
            _CHECKED.discard(key)
            if fd is not None:
                os.close(fd)


@dataclass(frozen=True)
class RowReader:
    """Rows of ``dtype`` (with its byte order: ``"|u1"``, ``"<f8"``), ``shape`` ``(rows, *row_shape)``, one after
    another in a :class:`StoredFile` from ``offset`` (a .npy header's length, 0 for raw rows)."""

    stored: StoredFile
    offset: int
    shape: Tuple[int, ...]
    dtype: str

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, indices: Sequence[int]) -> np.ndarray:
        """Rows ``indices`` (each in ``0 .. len-1``), in a new array."""
        out = np.empty((len(indices), *self.shape[1:]), dtype=self.dtype)
        row_bytes = out.nbytes // max(len(out), 1)
        self.stored.read_rows(out, [self.offset + int(i) * row_bytes for i in indices])
        return out

    def row(self, index: int) -> np.ndarray:
        return self.rows([index])[0]

    def all(self) -> np.ndarray:
        """Every row, in a new array, read at once."""
        out = np.empty(self.shape, dtype=self.dtype)
        self.stored.read_into(out, self.offset)
        return out
