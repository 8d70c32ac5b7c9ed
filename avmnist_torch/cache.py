"""Serving a dataset's items from a finished export: what the items are, and whether a file holds them.

The identity of a dataset's items (:func:`metadata_for`) is what an export
records in its sidecar and what a ``cache=`` file must match: the same
identity means the same bytes, so a cache changes speed, never bytes. Files
themselves are read through :mod:`avmnist_torch.storage`.
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
    describe_differences,
    metadata_differences,
    notebook_path,
    open_rows,
    partial_path,
    read_sidecar,
    sources_fingerprint,
)

__all__ = ["metadata_for", "CacheInfo", "open_cached_items", "resolve_cache", "cached_rows"]


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
        The split's source files in index order (fingerprinted by name and size).
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
    ``"external"`` so callers can say so. A file cut short or not of items
    raises :class:`StorageError` naming it.
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
            f"cache {path} does not hold this dataset's items: {describe_differences(diffs, 'file', 'dataset')}; "
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
            raise ParameterError("cache='auto' looks under root/avmnist/audio/: give root, or cache=PATH")
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
                          f"{describe_differences(diffs, 'file', 'dataset')}", stacklevel=3)
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
