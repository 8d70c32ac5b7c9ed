"""Serving items from an exported file: what the items are, and serving a file only while it holds them.

The identity of a dataset's items (:func:`metadata_for`) is what an export
records in its sidecar and what a ``from_export=`` file must match: the same
identity means the same bytes, so a cache changes speed, never bytes. A file
is served only while it is what its records say (see
:mod:`avmnist_torch.storage.integrity`):

* when it is opened (:func:`open_export`, :func:`resolve_export`): its sidecar
  matches the expected identity, its size and header are those of the
  recorded format, and its row checksums file is the one recorded;
* whenever a process maps it and on every read (:meth:`ExportedItems.read`):
  its stat identity (device, inode, size, mtime) is the one taken when it was
  opened, so a file replaced or rewritten since is never served;
* for every row served: the row's CRC-32 equals the recorded one.

Files themselves are read through :mod:`avmnist_torch.storage`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .common import MetadataMismatch, ParameterError, PathLike, StorageError, __version__
from .rendering import get_renderer
from .schemes import Scheme, get_scheme
from .storage import (
    FORMAT,
    ITEM_SHAPE,
    LEGACY_FORMAT,
    StatIdentity,
    describe_differences,
    map_rows,
    metadata_differences,
    notebook_path,
    read_checksums,
    read_sidecar,
    row_crc32,
    sources_fingerprint,
    stat_identity,
)

__all__ = ["metadata_for", "ExportedItems", "open_export", "resolve_export"]


def metadata_for(
    split: str,
    scheme: Union[str, Scheme],
    seed: int,
    style: Optional[str],
    renderer: str,
    recordings: Sequence[PathLike],
    noises: Sequence[PathLike],
    labels: np.ndarray,
) -> Dict[str, Any]:
    """The identity of a split's items, as stored beside an export.

    Parameters
    ----------
    split, scheme, seed, renderer
        As given to the dataset.
    style : str or None
        The matplotlib style drawn; None means the renderer's own (with
        ``renderer="matplotlib"``, the installed version's). The style, not
        the renderer's name, decides the pixels: the fast renderer and the
        figure route of one style give the same bytes.
    recordings, noises : sequences of paths
        The split's source files in index order (fingerprinted by name, size
        and content; see :func:`~avmnist_torch.storage.sources_fingerprint`).
    labels : array
        The split's labels, one per item.
    """
    scheme = get_scheme(scheme)
    if style is None:
        style = get_renderer(renderer).style
    return {
        "format": FORMAT,
        "split": split,
        "scheme": scheme.name,
        "scheme_steps": repr(tuple(scheme.steps)),
        "seed": int(seed),
        "style": str(style),
        "renderer": renderer,
        "sources": sources_fingerprint(recordings, noises, labels),
        "version": __version__,
        "shape": [len(labels), *ITEM_SHAPE],
        "dtype": "uint8",
    }


# Per process: (pid, path, identity) -> (descriptor of the mapped file, rows, checksums). A DataLoader worker forked
# from a parent that had the file mapped maps it afresh, and checks it again, itself.
_MAPPED: Dict[Tuple[int, str, StatIdentity], Tuple[int, np.ndarray, Optional[np.ndarray]]] = {}
_WARNED: set = set()


@dataclass(frozen=True)
class ExportedItems:
    """A finished export to serve items from: its path and what it must be, nothing mapped.

    Pickles as these few fields, so a DataLoader worker gets no copy of the
    rows; each process maps the file on first use and checks it then (see
    :meth:`read`). Made by :func:`open_export` or :func:`resolve_export`.

    Attributes
    ----------
    path : str
    rows : int
        Items in the file.
    file_format : {"raw", "npy"}
        Headerless rows, or a .npy file.
    offset : int
        Where row 0 starts (the header's length).
    identity : tuple
        ``(device, inode, size, mtime_ns)`` when the file was opened.
    provenance : {"sidecar", "external"}
        ``"sidecar"``: made by this package with the expected identity, every
        row checked against its CRC-32 when served; ``"external"``: no sidecar
        (the notebook's own files), served as stored.
    checksums_sha256 : str or None
        The sha256 of ``<file>.crc32`` the sidecar records (None when external).
    regenerate : bool
        True for ``from_export="auto"``: a check that fails makes :meth:`read` report
        those rows as not served (with one warning per process) so the caller
        generates them, instead of raising.
    """

    path: str
    rows: int
    file_format: str
    offset: int
    identity: StatIdentity
    provenance: str
    checksums_sha256: Optional[str] = None
    regenerate: bool = False

    @property
    def kind(self) -> str:
        """The file format (``"raw"`` or ``"npy"``)."""
        return self.file_format

    def _changed(self, now: StatIdentity) -> str:
        if now[:2] != self.identity[:2]:
            return "was replaced by another file"
        if now[2] != self.identity[2]:
            return f"changed size ({self.identity[2]} bytes when opened, {now[2]} now)"
        # A file deleted and another written in its place may get the same inode back.
        return "was modified or replaced"

    def _fail(self, message: str) -> None:
        if not self.regenerate:
            raise StorageError(message)
        key = (os.getpid(), self.path, message)
        if key not in _WARNED:
            _WARNED.add(key)
            warnings.warn(f"from_export='auto': {message}; generating those items instead", stacklevel=4)

    def _mapped(self) -> Optional[Tuple[int, np.ndarray, Optional[np.ndarray]]]:
        key = (os.getpid(), self.path, self.identity)
        entry = _MAPPED.get(key)
        if entry is not None:
            return entry
        try:
            handle = open(self.path, "rb")
        except OSError as err:
            self._fail(f"{self.path}: cannot be opened ({err.strerror or err}) since it was checked; "
                       "export it again, or pass from_export=None")
            return None
        with handle:
            now = stat_identity(handle.fileno())
            if now != self.identity:
                self._fail(f"{self.path} {self._changed(now)} since this dataset checked it: its rows are not "
                           "served; create the dataset again (it checks the file anew), or pass from_export=None")
                return None
            array = np.memmap(handle, mode="r", dtype=np.uint8, shape=(self.rows, *ITEM_SHAPE), offset=self.offset)
            # A descriptor of the very file mapped, to notice it rewritten or truncated in place later.
            fd = os.dup(handle.fileno())
        crcs = None
        if self.provenance == "sidecar":
            try:
                crcs = read_checksums(self.path, self.rows, self.checksums_sha256)
            except StorageError as err:
                os.close(fd)
                self._fail(str(err))
                return None
        entry = (fd, array, crcs)
        _MAPPED[key] = entry
        return entry

    def read(self, indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        """Rows ``indices`` (each in ``0 .. rows-1``), checked: ``(rows (k, 112, 112) uint8, served (k,) bool)``.

        Before reading, the file's stat identity (by path, and of the file this
        process mapped) must still be the one taken when it was opened; each
        row read must match its recorded CRC-32. A failed check raises
        :class:`StorageError` naming the file and what changed, or, with
        ``regenerate``, leaves ``served`` False for the rows concerned (all of
        them when the file itself changed) and their bytes zero.
        """
        indices = [int(i) for i in indices]
        out = np.zeros((len(indices), *ITEM_SHAPE), dtype=np.uint8)
        served = np.zeros(len(indices), dtype=bool)
        if not indices:
            return out, served
        entry = self._mapped()
        if entry is None:
            return out, served
        fd, array, crcs = entry
        # A file renamed over ours, or ours rewritten or truncated in place (which would make the
        # mapping fault), is noticed before any byte of it is read.
        try:
            by_path = stat_identity(self.path)
        except OSError:
            by_path = None
        held = stat_identity(fd)
        if held != self.identity or by_path != self.identity:
            self._fail(f"{self.path} {self._changed(held if held != self.identity else by_path or (0, 0, 0, 0))} "
                       "while in use: its rows are not served; create the dataset again, or pass from_export=None")
            return out, served
        np.take(array, indices, axis=0, out=out)
        if crcs is None:
            served[:] = True
            return out, served
        served[:] = row_crc32(out) == crcs[indices]
        if not served.all():
            bad = [indices[k] for k in np.flatnonzero(~served)]
            self._fail(f"{self.path}: row {bad[0]}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
                       + " differs from the CRC-32 recorded when it was exported: the file was changed; "
                       f"run 'avmnist verify {self.path}' to see which rows, and export it again")
            out[~served] = 0
        return out, served

    def items(self, indices: Sequence[int]) -> np.ndarray:
        """Rows ``indices``, checked as :meth:`read` does; raises :class:`StorageError` on any failed check."""
        rows, served = self.read(indices)
        if not served.all():
            raise StorageError(f"{self.path}: {int((~served).sum())} of the rows asked for failed their checks")
        return rows


def _open(path: Path, rows: int, meta: Optional[Mapping[str, Any]], regenerate: bool) -> ExportedItems:
    file_format = None if meta is None else meta.get("file_format")
    _, file_format, offset = map_rows(path, rows, file_format)
    identity = stat_identity(path)
    if meta is None:
        return ExportedItems(str(path), rows, file_format, offset, identity, "external", None, regenerate)
    items = ExportedItems(str(path), rows, file_format, offset, identity, "sidecar", meta.get("checksums_sha256"),
                          regenerate)
    read_checksums(path, rows, items.checksums_sha256)  # refused now rather than at the first item
    return items


def _legacy_note(path: Path, meta: Mapping[str, Any]) -> Optional[str]:
    if meta.get("format") == LEGACY_FORMAT:
        return (f"{path} was written by an older version of avmnist-torch (a .npy file without row checksums): "
                "export it again with this version (it replaces the file in seconds)")
    return None


def _partial_note(path: Path, meta: Mapping[str, Any]) -> Optional[str]:
    items = meta.get("items")
    if isinstance(items, Mapping):
        return (f"{path} is a partial export (the first {items.get('stop')} of the split's {items.get('of')} "
                "items, made with --limit / limit=): it cannot serve a whole split; export it without --limit, "
                "or pass from_export=None")
    return None


def open_export(path: PathLike, expected_metadata: Mapping[str, Any], *, regenerate: bool = False) -> ExportedItems:
    """Open a finished file to serve items from, checking that it holds what is expected.

    A file with a sidecar must match ``expected_metadata`` on every identity
    field, or :class:`MetadataMismatch` says which differ; its size and header
    must be those of the format the sidecar records, and its row checksums
    file the one it records. A file without one (the notebook's own raw files)
    is served as it is, provided it has one row per item: its bytes are
    whatever made it, and ``provenance`` is ``"external"`` so callers can say
    so. A file cut short or not of items raises :class:`StorageError` naming it.
    """
    path = Path(path)
    rows = int(expected_metadata["shape"][0])
    if not path.is_file():
        raise StorageError(f"from_export {path}: no such file; export it first "
                           f"('avmnist export ... --out {path}') or pass from_export=None")
    meta = read_sidecar(path)
    if meta is not None:
        partial = _partial_note(path, meta)
        if partial:
            raise MetadataMismatch(f"from_export {partial}")
        diffs = metadata_differences(meta, expected_metadata)
        if diffs:
            note = _legacy_note(path, meta)
            raise MetadataMismatch(note or (
                f"from_export {path} does not hold this dataset's items: "
                f"{describe_differences(diffs, 'file', 'dataset')}; "
                "export it again with these options, or pass from_export=None"))
    return _open(path, rows, meta, regenerate)


def resolve_export(
    cache: Union[PathLike, str, None], root: Optional[PathLike], split: str, scheme: str,
    metadata: Callable[[], Dict[str, Any]], *, epoch: Optional[int] = None,
) -> Optional[ExportedItems]:
    """Decide what a dataset's ``from_export=`` option serves; None when it serves nothing.

    ``"auto"`` takes the notebook-layout file under ``root`` (for one epoch of
    per-epoch items, `epoch` given, the one named with that epoch: see
    :func:`~avmnist_torch.storage.notebook_path`) only when its
    sidecar matches the dataset exactly and the file passes the checks of
    :func:`open_export`; a missing file is passed over silently, one that does
    not match or fails a check (another seed, the notebook's own file, a
    source edited since) with a warning saying why, and items are generated.
    What it serves is checked on every read as :meth:`ExportedItems.read`
    says, generating any row that fails. A path is used or refused: see
    :func:`open_export`. ``metadata`` is called only when a file is there,
    since it reads every source file.
    """
    if cache is None:
        return None
    if isinstance(cache, str) and cache == "auto":
        if root is None:
            raise ParameterError("from_export='auto' looks under root/avmnist/audio/: give root, or from_export=PATH")
        path = notebook_path(root, split, scheme, epoch=epoch)
        if not path.is_file():
            return None
        meta = read_sidecar(path)
        if meta is None:
            warnings.warn(f"from_export='auto': {path} has no sidecar metadata (a notebook file?), so it is not used; "
                          f"pass from_export='{path}' to serve its rows as they are", stacklevel=3)
            return None
        expected = metadata()
        diffs = metadata_differences(meta, expected)
        if diffs:
            why = _legacy_note(path, meta) or _partial_note(path, meta) or \
                f"it was made with other options: {describe_differences(diffs, 'file', 'dataset')}"
            warnings.warn(f"from_export='auto': {path} is not used, {why}", stacklevel=3)
            return None
        try:
            return _open(path, int(expected["shape"][0]), meta, regenerate=True)
        except StorageError as err:
            warnings.warn(f"from_export='auto': {path} is not used: {err}", stacklevel=3)
            return None
    return open_export(cache, metadata())
