"""Files of rendered items: .npy headers, the notebook's raw files, provenance, crash-safe writing.

A finished export is a real .npy file, ``(N, 112, 112) uint8``, with a sidecar
``<file>.json`` recording what made it. While an export runs, nothing carries
the final name:

``<file>.partial``
    the data, header and all, allocated to its full size up front (so a full
    disk is reported before any work, not as a crash in the middle);
``<file>.partial.json``
    the parameters of the run that started it; a rerun with other parameters
    is refused rather than mixing rows of two runs;
``<file>.partial.done/*.log``
    one log per exporter of the chunk numbers it has written; a chunk's bytes
    are fsynced before its number is logged, so a log never claims rows that
    a crash lost;
``<file>.lock``
    POSIX byte-range locks: byte 0 guards creating and finishing the file,
    byte ``1 + c`` guards chunk ``c``. Two exporters of overlapping rows
    cannot both run; exporters of disjoint rows (shards, even on other
    machines of a shared file system) can.

Whoever logs the last chunk finishes the file: writes the sidecar, then
renames ``.partial`` to the final name, so a file under the final name is
always complete. This module knows nothing of datasets; it must not import
``dataset``, ``export`` or ``cli``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import socket
import struct
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union

import numpy as np

from .common import LockedError, MetadataMismatch, StorageError

PathLike = Union[str, os.PathLike]

ITEM_SHAPE = (112, 112)
ROW_BYTES = ITEM_SHAPE[0] * ITEM_SHAPE[1]
NPY_MAGIC = b"\x93NUMPY"
FORMAT = "avmnist-torch export 1"
#: Sidecar fields that decide whether two files hold the same bytes. Anything
#: else in a sidecar (timestamps, host, renderer name) is provenance only.
IDENTITY_KEYS = ("format", "split", "scheme", "scheme_steps", "seed", "style", "sources", "version", "shape")

__all__ = [
    "ITEM_SHAPE",
    "ROW_BYTES",
    "IDENTITY_KEYS",
    "StorageError",
    "MetadataMismatch",
    "LockedError",
    "notebook_path",
    "multibench_path",
    "sidecar_path",
    "partial_path",
    "sources_fingerprint",
    "metadata_for",
    "npy_header",
    "read_npy_header",
    "open_rows",
    "read_sidecar",
    "write_json_atomic",
    "metadata_differences",
    "open_cached_items",
    "resolve_cache",
    "CacheInfo",
    "cached_rows",
    "done_chunks",
    "ExportTarget",
]


# ----------------------------------------------------------------------------
# names


def notebook_path(root: PathLike, split: str, scheme: str) -> Path:
    """The notebook's output name: ``root/avmnist/audio/{split}_data_augmented_{scheme}.npy``."""
    return Path(root) / "avmnist" / "audio" / f"{split}_data_augmented_{scheme}.npy"


def multibench_path(directory: PathLike, split: str) -> Path:
    """MultiBench's AV-MNIST audio file: ``{directory}/audio/{split}_data.npy``."""
    return Path(directory) / "audio" / f"{split}_data.npy"


def sidecar_path(path: PathLike) -> Path:
    return Path(f"{path}.json")


def partial_path(path: PathLike) -> Path:
    return Path(f"{path}.partial")


def _partial_meta_path(path: PathLike) -> Path:
    return Path(f"{path}.partial.json")


def _done_dir(path: PathLike) -> Path:
    return Path(f"{path}.partial.done")


def _lock_path(path: PathLike) -> Path:
    return Path(f"{path}.lock")


# ----------------------------------------------------------------------------
# provenance


def sources_fingerprint(recordings: Sequence[PathLike], noises: Sequence[PathLike], labels: np.ndarray) -> str:
    """sha256 over the recordings' and noises' names and sizes, in index order, and the labels.

    Order matters (it decides which recording item ``i`` gets), so the lists
    are hashed as given. Names, not full paths, so a tree moved elsewhere or
    mounted at another path on another machine keeps its fingerprint. Sizes
    rather than contents: hashing 5,000 audio files would cost seconds on
    every start, and a changed recording almost always changes its size.
    """
    h = hashlib.sha256()
    for kind, paths in (("recordings", recordings), ("noises", noises)):
        h.update(f"{kind}:{len(paths)}\n".encode())
        for p in paths:
            p = Path(p)
            h.update(f"{p.name}\t{p.stat().st_size}\n".encode())
    h.update(b"labels:")
    h.update(np.ascontiguousarray(np.asarray(labels, dtype=np.int64)).tobytes())
    return h.hexdigest()


def metadata_for(dataset: Any) -> Dict[str, Any]:
    """The identity of the items a dataset generates, as stored beside an export.

    Duck-typed on ``AVMNISTAudioDataset`` (split, scheme, seed, renderer,
    style, index), so this module need not import it. The style is resolved
    (``renderer="matplotlib"`` draws in the installed version's style), and it,
    not the renderer's name, is what decides the pixels: the fast renderer and
    the figure route of one style give the same bytes.
    """
    from .common import __version__

    style = dataset.style
    if style is None:
        from .rendering import get_renderer

        style = get_renderer(dataset.renderer).style
    index = dataset.index
    return {
        "format": FORMAT,
        "split": dataset.split,
        "scheme": dataset.scheme.name,
        "scheme_steps": repr(tuple(dataset.scheme.steps)),
        "seed": int(dataset.seed),
        "style": str(style),
        "renderer": dataset.renderer,
        "sources": sources_fingerprint(index.recordings, index.noises, index.labels),
        "version": __version__,
        "shape": [len(index), *ITEM_SHAPE],
        "dtype": "uint8",
    }


def metadata_differences(found: Mapping[str, Any], expected: Mapping[str, Any],
                         keys: Iterable[str] = IDENTITY_KEYS) -> List[Tuple[str, Any, Any]]:
    """``(key, found, expected)`` for every identity field that differs."""
    out = []
    for key in keys:
        a, b = found.get(key), expected.get(key)
        if isinstance(a, tuple):
            a = list(a)
        if isinstance(b, tuple):
            b = list(b)
        if a != b:
            out.append((key, found.get(key), expected.get(key)))
    return out


def _short(key: str, value: Any) -> str:
    if key == "sources" and isinstance(value, str):
        return f"{key}={value[:12]}... (a fingerprint of the recordings, noises and labels)"
    return f"{key}={value}"


def _describe_differences(diffs: Sequence[Tuple[str, Any, Any]], found_word: str, expected_word: str) -> str:
    return ", ".join(f"{_short(k, a)} ({found_word}) vs {_short(k, b)} ({expected_word})" for k, a, b in diffs)


def read_sidecar(path: PathLike) -> Optional[Dict[str, Any]]:
    """The sidecar metadata of ``path``, or None when it has none."""
    side = sidecar_path(path)
    try:
        text = side.read_text()
    except FileNotFoundError:
        return None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as err:
        raise StorageError(f"{side}: not valid JSON ({err}); delete it and the file beside it, then export again") from None
    if not isinstance(meta, dict):
        raise StorageError(f"{side}: expected a JSON object; delete it and export again")
    return meta


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory; the rename is still atomic
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: PathLike, data: Mapping[str, Any]) -> None:
    """Write JSON so that ``path`` holds either the old content or all of the new."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


# ----------------------------------------------------------------------------
# reading


def npy_header(shape: Sequence[int], dtype: Any = np.uint8) -> bytes:
    """The .npy header numpy itself writes for a C-ordered array of ``shape`` and ``dtype``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
    )
    return buf.getvalue()


def read_npy_header(path: PathLike) -> Tuple[Tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, data offset)`` of a .npy file."""
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
        except (ValueError, OSError) as err:
            raise StorageError(f"{path}: not a readable .npy file ({err})") from None
        if fortran:
            raise StorageError(f"{path}: Fortran-ordered arrays are not item files")
        return tuple(shape), dtype, f.tell()


def _is_npy(path: PathLike) -> bool:
    with open(path, "rb") as f:
        return f.read(len(NPY_MAGIC)) == NPY_MAGIC


def open_rows(path: PathLike, rows: Optional[int] = None) -> Tuple[np.ndarray, str]:
    """Map a file of items read-only: ``(array (N, 112, 112) uint8, kind)``.

    ``kind`` is ``"npy"`` for a .npy file and ``"raw"`` for the notebook's
    headerless files (``np.memmap(..., mode='w+')`` despite the .npy name),
    recognised as a file without the .npy magic of exactly ``N * 112 * 112``
    bytes. ``rows``, when given, is the N the caller expects; without it a raw
    file's N is its size divided by 12,544.
    """
    path = Path(path)
    if not path.is_file():
        if partial_path(path).exists():
            raise StorageError(f"{path}: not finished yet ({partial_path(path)} is in progress); "
                               "rerun the export command to complete it")
        raise StorageError(f"{path}: no such file")
    if _is_npy(path):
        shape, dtype, _ = read_npy_header(path)
        if dtype != np.uint8 or len(shape) != 3 or tuple(shape[1:]) != ITEM_SHAPE:
            raise StorageError(f"{path}: holds {dtype} {shape}, not (N, 112, 112) uint8 items")
        if rows is not None and shape[0] != rows:
            raise StorageError(f"{path}: has {shape[0]} rows, expected {rows} (one per label of the split)")
        return np.load(path, mmap_mode="r"), "npy"
    size = path.stat().st_size
    if rows is None:
        if size == 0 or size % ROW_BYTES:
            raise StorageError(f"{path}: neither a .npy file nor a raw file of whole 112x112 uint8 rows "
                               f"({size} bytes is not a multiple of {ROW_BYTES})")
        rows = size // ROW_BYTES
    elif size != rows * ROW_BYTES:
        raise StorageError(f"{path}: neither a .npy file nor a raw notebook file of {rows} rows "
                           f"({size} bytes, expected {rows * ROW_BYTES})")
    return np.memmap(path, mode="r", dtype=np.uint8, shape=(rows, *ITEM_SHAPE)), "raw"


@dataclass(frozen=True)
class CacheInfo:
    """What a dataset's cache serves: the file, its kind and whether its provenance is known."""

    path: str
    kind: str  # "npy" or "raw"
    rows: int
    provenance: str  # "sidecar": made by this package with matching metadata; "external": no sidecar


def open_cached_items(path: PathLike, expected_metadata: Mapping[str, Any]) -> Tuple[np.ndarray, CacheInfo]:
    """Open a finished file to serve items from, checking that it holds what is expected.

    A file with a sidecar must match ``expected_metadata`` on every identity
    field, or :class:`MetadataMismatch` says which differ. A file without one
    (the notebook's own raw files) is served as it is, provided it has one row
    per item: its bytes are whatever made it, and ``CacheInfo.provenance`` is
    ``"external"`` so callers can say so.
    """
    path = Path(path)
    rows = int(expected_metadata["shape"][0])
    if not path.is_file() and not partial_path(path).exists():
        raise StorageError(f"cache {path}: no such file; export it first "
                           f"('avmnist-audio export ... --out {path}') or pass cache=None")
    array, kind = open_rows(path, rows)
    meta = read_sidecar(path)
    if meta is None:
        return array, CacheInfo(str(path), kind, rows, "external")
    diffs = metadata_differences(meta, expected_metadata)
    if diffs:
        raise MetadataMismatch(
            f"cache {path} does not hold this dataset's items: {_describe_differences(diffs, 'file', 'dataset')}; "
            "export it again with these options, or pass cache=None"
        )
    return array, CacheInfo(str(path), kind, rows, "sidecar")


def resolve_cache(
    cache: PathLike, root: Optional[PathLike], split: str, scheme: str, metadata: Callable[[], Dict[str, Any]],
) -> Optional[CacheInfo]:
    """Decide what a dataset's ``cache=`` option serves; None when it serves nothing.

    ``"auto"`` takes the notebook-layout file under ``root`` only when its
    sidecar matches the dataset exactly; a missing file, or one that does not
    match (another seed, the notebook's own file), is passed over with a
    warning saying why, and items are generated. A path is used or refused:
    see :func:`open_cached_items`. ``metadata`` is called only when a file is
    there, since it stats every source file.
    """
    if isinstance(cache, str) and cache == "auto":
        if root is None:
            raise ValueError("cache='auto' looks under root/avmnist/audio/: give root, or cache=PATH")
        path = notebook_path(root, split, scheme)
        if not path.is_file():
            return None
        meta = read_sidecar(path)
        if meta is None:
            warnings.warn(f"cache='auto': {path} has no sidecar metadata (a notebook file?), so it is not used; "
                          f"pass cache='{path}' to serve its rows as they are", stacklevel=3)
            return None
        expected = metadata()
        diffs = metadata_differences(meta, expected)
        if diffs:
            warnings.warn(f"cache='auto': {path} is not used, it was made with other options: "
                          f"{_describe_differences(diffs, 'file', 'dataset')}", stacklevel=3)
            return None
        _, info = open_cached_items(path, expected)
        return info
    _, info = open_cached_items(cache, metadata())
    return info


_OPEN_CACHES: Dict[Tuple[int, str, int], np.ndarray] = {}


def cached_rows(path: PathLike, rows: int) -> np.ndarray:
    """The rows of a cache file, mapped once per process.

    Keyed by process id: a DataLoader worker forked from a parent that had the
    file open maps it afresh instead of sharing the parent's mapping object,
    and datasets carry only the path, never a memmap (which would pickle as a
    full copy of the array).
    """
    key = (os.getpid(), str(path), int(rows))
    array = _OPEN_CACHES.get(key)
    if array is None:
        array, _ = open_rows(path, rows)
        _OPEN_CACHES[key] = array
    return array


# ----------------------------------------------------------------------------
# locking


_FLOCK = "hhqqi4x"  # Linux struct flock: l_type, l_whence, l_start, l_len, l_pid (+ padding)


def _holder_pid(fd: int, start: int, length: int) -> Optional[int]:
    """The pid holding a lock that conflicts with ``[start, start+length)``, where the OS says."""
    try:
        arg = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
        res = fcntl.fcntl(fd, fcntl.F_GETLK, arg)
        l_type, _, _, _, pid = struct.unpack(_FLOCK, res[: struct.calcsize(_FLOCK)])
    except (OSError, struct.error):
        return None
    return pid if l_type != fcntl.F_UNLCK and pid > 0 else None


def _try_lock(fd: int, start: int, length: int) -> bool:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, length, start, os.SEEK_SET)
        return True
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise


# ----------------------------------------------------------------------------
# writing


def done_chunks(path: PathLike) -> Set[int]:
    """Chunk numbers recorded as written for the export in progress to ``path``.

    A line counts only when it is complete (newline-terminated): a log torn by
    a crash loses at most the chunk it was recording, which is then rewritten.
    """
    done: Set[int] = set()
    folder = _done_dir(path)
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


def _io_error(err: OSError, path: Path, doing: str) -> StorageError:
    if err.errno == errno.ENOSPC:
        what = "no space left on device"
    elif err.errno == errno.EDQUOT:
        what = "disk quota exceeded"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        what = "not writable (permission denied or read-only file system)"
    else:
        what = os.strerror(err.errno) if err.errno else str(err)
    return StorageError(f"{path}: {what} while {doing}")


_ACTIVE: Set[str] = set()


class ExportTarget:
    """One output file being written, possibly by several exporters over disjoint chunks.

    Parameters
    ----------
    path : path
        The final file name.
    metadata : dict
        What the rows are (see :func:`metadata_for`); ``metadata["shape"][0]``
        is the number of rows.
    chunk_rows : int
        Rows per chunk, the unit of progress and of locking. A resumed export
        keeps the chunk size it was started with.

    Use :meth:`open` first: it returns ``"complete"`` when the file is already
    there with matching metadata, else ``"partial"``, after which
    :meth:`claim`, :meth:`write_chunk` and :meth:`finish` do the work.
    """

    def __init__(self, path: PathLike, metadata: Mapping[str, Any], chunk_rows: int = 250) -> None:
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
        self.path = Path(path)
        self.metadata = dict(metadata)
        self.rows = int(self.metadata["shape"][0])
        self.chunk_rows = int(chunk_rows)
        self.partial = partial_path(self.path)
        self._lock_fd: Optional[int] = None
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
            raise ValueError(f"shard {shard}/{shards}: K must be in 0..{shards - 1} (K/N counts from 0)")
        n = self.n_chunks
        return shard * n // shards, (shard + 1) * n // shards

    # -- locks -------------------------------------------------------------
    def _open_lock(self) -> None:
        """Open the lock file and hold byte 0, checking that the file is still the live one.

        The finisher deletes the lock file; an exporter that opened it before
        would otherwise lock an orphaned inode that nobody else sees.
        """
        lock = _lock_path(self.path)
        while True:
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise _io_error(err, lock, "creating the lock file") from None
            fcntl.lockf(fd, fcntl.LOCK_EX, 1, 0, os.SEEK_SET)
            try:
                same = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._lock_fd = fd
                return
            os.close(fd)

    def _release_admin(self) -> None:
        if self._lock_fd is not None:
            fcntl.lockf(self._lock_fd, fcntl.LOCK_UN, 1, 0, os.SEEK_SET)

    def close(self) -> None:
        """Release every lock and close every file (finished chunks stay recorded)."""
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._data_fd is not None:
            os.close(self._data_fd)
            self._data_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops every POSIX lock this process holds on the file
            self._lock_fd = None
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
        meta = read_sidecar(self.path)
        if meta is None:
            raise StorageError(
                f"{self.path} already exists and has no {sidecar_path(self.path).name} saying what made it "
                "(a notebook file?); delete or move it, or export to another --out"
            )
        diffs = metadata_differences(meta, self.metadata)
        if diffs:
            raise MetadataMismatch(
                f"{self.path} already exists and was made with other options: "
                f"{_describe_differences(diffs, 'file', 'this run')}; delete it (and its .json) to replace it, "
                "or export to another --out"
            )
        return True

    def open(self) -> str:
        """Find or create the file; ``"complete"`` if it is already finished, else ``"partial"``."""
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise _io_error(err, folder, "creating the output folder") from None
        if not os.access(folder, os.W_OK):
            raise StorageError(f"{folder}: folder is not writable; choose another --out or fix its permissions")
        key = str(self.path.resolve())
        if key in _ACTIVE:
            # POSIX locks belong to the process, so they cannot keep two exporters of one
            # process apart; and closing either's lock fd would drop the other's locks.
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
        pmeta_path = _partial_meta_path(self.path)
        started = None
        if pmeta_path.exists():
            try:
                started = json.loads(pmeta_path.read_text())
            except json.JSONDecodeError:
                started = None  # torn by a crash before any chunk could be logged: start over
        if started is not None:
            diffs = metadata_differences(started, self.metadata)
            if diffs:
                started_with = ", ".join(_short(k, a) for k, a, _ in diffs)
                asked = ", ".join(_short(k, b) for k, _, b in diffs)
                raise MetadataMismatch(
                    f"{self.path} was started with {started_with}, this run has {asked}; "
                    f"delete {self.partial} (and {pmeta_path.name}, {_done_dir(self.path).name}) "
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
                raise _io_error(err, pmeta_path, "starting the export") from None
            self._create_partial(expected_size)
        try:
            _done_dir(self.path).mkdir(exist_ok=True)
            self._data_fd = os.open(self.partial, os.O_RDWR)
        except OSError as err:
            raise _io_error(err, self.partial, "opening the export in progress") from None

    def _clear_progress(self) -> None:
        folder = _done_dir(self.path)
        if folder.is_dir():
            for log in folder.glob("*"):
                log.unlink(missing_ok=True)

    def _create_partial(self, size: int) -> None:
        tmp = self.path.with_name(f".{self.path.name}.creating-{os.getpid()}")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                try:
                    # Reserve every block now: a full disk fails here, clearly, and never
                    # later as a short write or a SIGBUS through a memory map.
                    os.posix_fallocate(fd, 0, size)
                except OSError as err:
                    if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                        raise
                    os.ftruncate(fd, size)
                _pwrite_all(fd, npy_header(self.metadata["shape"]), 0)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.partial)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            need = size / 2**20
            raise StorageError(
                f"{self.path}: cannot allocate {need:.1f} MiB for the export "
                f"({_io_error(err, self.partial, 'allocating').args[0].split(': ', 1)[1]}); "
                "free space or choose another --out"
            ) from None
        _fsync_dir(self.path.parent)

    # -- work --------------------------------------------------------------
    def claim(self, first: int, stop: int) -> List[int]:
        """Lock chunks ``[first, stop)`` for this exporter and return those not yet written.

        Raises :class:`LockedError` naming the holder's pid when another exporter
        holds any of them.
        """
        assert self._lock_fd is not None and self._data_fd is not None, "open() first"
        if stop > first and not _try_lock(self._lock_fd, 1 + first, stop - first):
            pid = _holder_pid(self._lock_fd, 1 + first, stop - first)
            who = f"pid {pid}" if pid else "another process"
            lo, hi = self.chunk_range(first)[0], self.chunk_range(stop - 1)[1]
            raise LockedError(
                f"{self.path}: rows {lo}-{hi - 1} are being written by another exporter ({who}); "
                "wait for it to finish or stop it, then rerun"
            )
        self.claimed = (first, stop)
        done = done_chunks(self.path)
        log = _done_dir(self.path) / f"chunks-{first}-{stop}-{socket.gethostname()}-{os.getpid()}.log"
        self._log = open(log, "a")
        return [c for c in range(first, stop) if c not in done]

    def write_chunk(self, chunk: int, rows: np.ndarray) -> None:
        """Write one chunk's rows, make them durable, then record the chunk as done."""
        start, stop = self.chunk_range(chunk)
        rows = np.ascontiguousarray(rows, dtype=np.uint8)
        if rows.shape != (stop - start, *ITEM_SHAPE):
            raise ValueError(f"chunk {chunk} needs shape {(stop - start, *ITEM_SHAPE)}, got {rows.shape}")
        try:
            _pwrite_all(self._data_fd, rows.tobytes(), self._offset + start * ROW_BYTES)
            os.fsync(self._data_fd)
        except OSError as err:
            raise StorageError(
                _io_error(err, self.partial, f"writing rows {start}-{stop - 1}").args[0]
                + "; rows already written are kept: free space, then rerun the same command to continue"
            ) from None
        try:
            self._log.write(f"{chunk}\n")
            self._log.flush()
            os.fsync(self._log.fileno())
        except OSError as err:
            raise _io_error(err, Path(self._log.name), "recording progress") from None

    def finish(self) -> bool:
        """Complete the file if every chunk is written (by anyone); True if it is complete now."""
        # Re-take byte 0 on the fd we hold: opening a second fd of the lock file and closing
        # it would drop every POSIX lock of this process on it, chunk claims included.
        fcntl.lockf(self._lock_fd, fcntl.LOCK_EX, 1, 0, os.SEEK_SET)
        try:
            try:
                live = os.stat(_lock_path(self.path)).st_ino == os.fstat(self._lock_fd).st_ino
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
            try:
                # Sidecar first: a crash between the two leaves a .partial that the next run
                # finishes, never a final file without its provenance.
                write_json_atomic(sidecar_path(self.path), sidecar)
                os.replace(self.partial, self.path)
            except OSError as err:
                raise _io_error(err, self.path, "finishing the export") from None
            _fsync_dir(self.path.parent)
            _partial_meta_path(self.path).unlink(missing_ok=True)
            self._clear_progress()
            try:
                _done_dir(self.path).rmdir()
            except OSError:
                pass
            _lock_path(self.path).unlink(missing_ok=True)
            return True
        finally:
            self._release_admin()


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        if n == 0:
            raise OSError(errno.EIO, "short write")
        view = view[n:]
        offset += n
