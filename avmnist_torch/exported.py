"""Serving a dataset's items from an exported file whose sidecar records the dataset's identity (the same
identity, the same bytes: a served file changes speed, never bytes), only while the file holds them; what is
checked when: ``docs/formats.md``."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .common import MetadataMismatch, ParameterError, PathLike, StorageError
from .files import RowReader, read_sidecar
from .item_options import describe_differences, identity_differences
from .storage import FORMAT, ITEM_SHAPE, notebook_path, open_items

__all__ = ["ExportedItems", "open_export", "resolve_export", "check_sidecar"]

_REMEDY = "export it again, or pass from_export=None"
_WARNED: set = set()


@dataclass(frozen=True)
class ExportedItems:
    """A finished export to serve items from, made by :func:`open_export`; pickles as its reader's fields.

    ``provenance`` is ``"sidecar"`` (made by this package with the expected identity, its sha256 checked)
    or ``"external"`` (no sidecar: the notebook's own files, served as stored). With ``regenerate``
    (``from_export="auto"``) a failed check makes :meth:`read` report the rows as not served, with one
    warning per process, so the caller generates them.
    """

    reader: RowReader
    file_format: str
    provenance: str
    regenerate: bool = False

    @property
    def path(self) -> str:
        return self.reader.stored.path

    def read(self, indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        """Rows ``indices``: ``(rows (k, 112, 112) uint8, served (k,) bool)``; a failed check raises
        :class:`StorageError`, or with ``regenerate`` leaves every row unserved (bytes zero)."""
        try:
            return self.reader.rows(indices), np.ones(len(indices), dtype=bool)
        except StorageError as err:
            if not self.regenerate:
                raise
            key = (os.getpid(), self.path)
            if key not in _WARNED:
                _WARNED.add(key)
                warnings.warn(f"from_export='auto': {err}; generating those items instead", stacklevel=3)
            return np.zeros((len(indices), *ITEM_SHAPE), dtype=np.uint8), np.zeros(len(indices), dtype=bool)


def check_sidecar(path: Path, meta: Mapping[str, Any], expected: Optional[Mapping[str, Any]], remedy: str) -> None:
    """Raise :class:`StorageError` unless ``meta`` is an export sidecar of this version; with ``expected``,
    :class:`MetadataMismatch` unless it records that identity."""
    if meta.get("format") != FORMAT or not isinstance(meta.get("identity"), dict):
        raise StorageError(f"{path}.json: not the sidecar of an export of this version (format "
                           f"{meta.get('format')!r}, expected {FORMAT!r}); {remedy}")
    if expected is None:
        return
    items = meta["identity"].get("items")
    if isinstance(items, Mapping) and "items" not in expected:
        raise MetadataMismatch(f"from_export {path} is a partial export (the first {items.get('stop')} of the split's "
                               f"{items.get('of')} items, made with --limit / limit=): it cannot serve a whole "
                               "split; export it without --limit, or pass from_export=None")
    diffs = identity_differences(meta["identity"], dict(expected))
    if diffs:
        raise MetadataMismatch(f"{path} does not hold this dataset's items: "
                               f"{describe_differences(diffs, 'file', 'dataset')}; {remedy}")


def open_export(path: PathLike, expected_identity: Mapping[str, Any], *, regenerate: bool = False) -> ExportedItems:
    """Open a finished file to serve items from, checking that it holds what is expected.

    A file with a sidecar must record ``expected_identity`` (else :class:`MetadataMismatch` says which
    fields differ), and its size and sha256 must be those recorded. A file without one (the notebook's
    own raw files) is served as it is, provided it has one row per item, with ``provenance``
    ``"external"``. Anything else raises :class:`StorageError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise StorageError(f"from_export {path}: no such file; export it first "
                           f"('avmnist export ... --out {path}') or pass from_export=None")
    meta = read_sidecar(path, _REMEDY)
    if meta is not None:
        check_sidecar(path, meta, expected_identity, _REMEDY)
    reader, file_format = open_items(path, int(expected_identity["shape"][0]), (meta or {}).get("file_format"),
                                     sha256=(meta or {}).get("sha256"), remedy=_REMEDY)
    return ExportedItems(reader, file_format, "external" if meta is None else "sidecar", regenerate)


def resolve_export(
    from_export: Union[PathLike, str, None], root: Optional[PathLike], split: str, scheme: str,
    identity: Callable[[], Dict[str, Any]], *, epoch: Optional[int] = None,
) -> Optional[ExportedItems]:
    """Decide what a dataset's ``from_export=`` option serves; None when it serves nothing.

    ``"auto"`` takes the notebook-layout file under ``root`` (of ``epoch``, when given) only when it passes
    its checks with the dataset's identity; otherwise the items are generated, with a warning saying why
    unless the file is missing. A path is used or refused (:func:`open_export`). ``identity`` is called
    only when a file is there, since it reads every source file.
    """
    if from_export is None:
        return None
    if isinstance(from_export, str) and from_export == "auto":
        if root is None:
            raise ParameterError("from_export='auto' looks under root/avmnist/audio/: give root, or from_export=PATH")
        path = notebook_path(root, split, scheme, epoch=epoch)
        if not path.is_file():
            return None
        try:
            if read_sidecar(path, _REMEDY) is None:
                warnings.warn(f"from_export='auto': {path} has no sidecar (a notebook file?), so it is not used; "
                              f"pass from_export='{path}' to serve its rows as they are", stacklevel=3)
                return None
            return open_export(path, identity(), regenerate=True)
        except StorageError as err:
            warnings.warn(f"from_export='auto': {path} is not used: {err}", stacklevel=3)
            return None
    if not isinstance(from_export, (str, os.PathLike)):
        raise ParameterError(f"from_export={from_export!r}: give a file, 'auto' or None")
    return open_export(from_export, identity())
