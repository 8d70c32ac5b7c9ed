"""The cache folder: what is in it, and removing what can no longer be used (``avmnist cache``).

Clip tables and image halves live side by side, each with a sidecar that says what it is (``"what"``),
how many rows it holds and, for clip tables, which source files it was made from with their stat identity.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from .common import CacheError, PathLike, StorageError
from .files import default_cache_dir, io_error, leftover_temporaries, read_sidecar, sidecar_path, stat_identity

__all__ = ["CachedFile", "describe_sources", "list_cached", "remove_cached", "format_cached", "leftover_temporaries"]


def describe_sources(paths: Sequence[str]) -> Dict[str, list]:
    """What a sidecar records of the files a cached file was made from: folders, then names and stat identities."""
    folders: List[str] = []
    files = []
    for p in paths:
        folder, name = os.path.split(os.path.abspath(p))
        if folder not in folders:
            folders.append(folder)
        files.append([folders.index(folder), name, *stat_identity(os.stat(p))])
    return {"folders": folders, "files": files}


def _sources_unchanged(sources: Dict[str, list]) -> bool:
    try:
        folders = sources["folders"]
        return all(list(stat_identity(os.stat(os.path.join(folders[k], name)))) == identity
                   for k, name, *identity in sources["files"])
    except (OSError, KeyError, IndexError, TypeError, ValueError):
        return False


@dataclass(frozen=True)
class CachedFile:
    """One file in the cache folder, as :func:`list_cached` finds it: ``what`` (``"clip table"``, ``"image
    half"``), ``kind`` (``"recordings"``, ``"pca25"``, ...), ``sources`` (the folders its rows were read from),
    ``problem`` (why no dataset would use it again; None when usable) and ``last_used`` (the sidecar's
    modification time, touched when a process first opens the file)."""

    path: Path
    what: str
    kind: str
    size_bytes: int
    rows: Optional[int]
    sources: List[str]
    problem: Optional[str]
    last_used: float


def _cached_file(side: Path) -> Optional[CachedFile]:
    path = side.with_suffix("")
    try:
        st = path.stat()
        meta = read_sidecar(path, "avmnist cache prune removes it")
        last_used = side.stat().st_mtime
    except (OSError, StorageError) as err:
        if not path.exists():
            return None
        return CachedFile(path, "unknown", path.name, path.stat().st_size, None, [], str(err), 0.0)
    if meta is None or meta.get("what") not in ("clip table", "image half"):
        return None
    sources = meta.get("sources") or {}
    problem = None
    if meta.get("size") != st.st_size:
        problem = f"{st.st_size} bytes, its sidecar records {meta.get('size')}"
    elif sources and not _sources_unchanged(sources):
        problem = "its source files are gone or changed"
    return CachedFile(path, meta["what"], str(meta.get("kind", "?")), st.st_size, meta.get("rows"),
                      [str(f) for f in sources.get("folders", [])], problem, last_used)


def list_cached(cache_dir: Optional[PathLike] = None) -> List[CachedFile]:
    """The clip tables and image halves in ``cache_dir`` (default: the cache folder), oldest use first.

    Raises :class:`CacheError` when ``cache_dir`` is a file or cannot be read.
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if folder.exists() and not folder.is_dir():
        raise CacheError(f"{folder}: not a folder; give the cache folder with --dir, or set $AVMNIST_CACHE")
    try:  # a missing folder holds nothing
        found = [info for info in map(_cached_file, folder.glob("*.json")) if info is not None]
    except OSError as err:
        raise io_error(err, folder, "listing the cache folder", CacheError) from None
    return sorted(found, key=lambda info: (info.last_used, info.path.name))


def remove_cached(cache_dir: Optional[PathLike], which: Callable[[CachedFile], bool]) -> List[CachedFile]:
    """Remove the cached files ``which`` selects, each with its sidecar; returns those removed.

    A process reading one keeps reading the bytes it checked (POSIX); on Windows a file in use cannot be
    removed: :class:`CacheError` naming it.
    """
    removed = [info for info in list_cached(cache_dir) if which(info)]
    for info in removed:
        for path in (sidecar_path(info.path), info.path):  # the sidecar first: a file without one is never used
            try:
                path.unlink(missing_ok=True)
            except OSError as err:
                raise io_error(err, path, "removing it (in use by a running process?)", CacheError) from None
    return removed


def human_size(n_bytes: float) -> str:
    """``n_bytes`` for people: MB from 0.1 MB, else kB."""
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e5 else f"{n_bytes / 1e3:.1f} kB"


def format_cached(files: Sequence[CachedFile]) -> str:
    """A table for people: size, what, kind, rows, last use, sources and state of each file, and the total."""
    if not files:
        return "nothing cached"
    lines = []
    for info in files:
        sources = ", ".join(info.sources) or "(keyed by the images' content)"
        state = f"  (unusable: {info.problem})" if info.problem else ""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.last_used))
        rows = "?" if info.rows is None else f"{info.rows:,}"
        lines.append(f"{human_size(info.size_bytes):>9}  {info.what:<10}  {info.kind:<22}  {rows:>7} rows  {when}  "
                     f"{sources}{state}")
    total = sum(info.size_bytes for info in files)
    lines.append(f"{human_size(total)} in {len(files)} file{'s' if len(files) != 1 else ''}")
    return "\n".join(lines)
