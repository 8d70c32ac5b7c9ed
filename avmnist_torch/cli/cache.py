"""``avmnist cache``: list and remove what the package keeps in its cache folder.

That is the clip tables (decoded recordings, resampled noises), the cached
image halves (``image-pca/``) and what a killed process left half-written in
either. The folder is ``$AVMNIST_CACHE``, else the platform's user cache
folder; ``--dir`` overrides both. A moved or changed data tree leaves its old
tables behind, which ``prune`` removes.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import List

from ..common import CacheError, ParameterError
from ..filesystem import CACHE_ENV, default_cache_dir, leftover_temporaries
from ..image_pca import ImageHalfInfo, clear_image_halves, list_image_halves, prune_image_halves
from ..sources.clip_tables import TableInfo, clear_tables, format_tables, list_tables, prune_tables
from ._options import add_command

DESCRIPTION = """\
List what the package keeps in its cache folder, and remove it: the clip
tables (decoded recordings and resampled noises that every process maps
instead of decoding again), the cached PCA image halves (image-pca/), and
temporary files left by processes that were killed while writing. The folder
is $AVMNIST_CACHE, else the platform's user cache folder; --dir overrides
both. 'prune' removes the tables whose source files are gone or changed, the
image halves that would not be served (torn or changed), and the leftover
temporary files; 'clear' removes all. Removing any of them never changes an
item, only the time of its first use.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``cache`` with its actions ``list`` (the default), ``clear`` and ``prune``."""
    p = add_command(
        subparsers,
        "cache",
        help="list the clip tables and image halves in the cache folder (size, kind, sources, last use), "
             "or remove them",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_dir(p)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    for name, help in (
        ("list", "list the tables, image halves and leftover temporary files (the default)"),
        ("clear", "remove every table and image half, and the leftover temporary files"),
        ("prune", "remove the tables whose source files are gone, broken image halves and leftover temporary files"),
    ):
        # ``--dir`` after the action too; SUPPRESS keeps a --dir given before it.
        _add_dir(add_command(actions, name, help=help), default=argparse.SUPPRESS)
    p.set_defaults(func=run, action="list")
    return p


def _add_dir(p: argparse.ArgumentParser, default=None) -> None:
    p.add_argument("--dir", type=Path, default=default,
                   help="the cache folder (default: $AVMNIST_CACHE, else the platform's user cache folder)")


def _total(tables: List[TableInfo]) -> str:
    size = sum(t.size_bytes for t in tables)
    return f"{len(tables)} table{'s' if len(tables) != 1 else ''}, {size / 1e6:.1f} MB"  # decimal MB, as the table rows print


def _leftovers(folder: Path) -> List[Path]:
    """Temporary files of processes no longer running, in the tables' folder and in image-pca/."""
    return leftover_temporaries(folder) + leftover_temporaries(folder / "image-pca")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _print_image_halves(halves: List[ImageHalfInfo], heading: str) -> None:
    size = sum(h.size_bytes for h in halves)
    print(f"{heading}: {len(halves)} image {'half' if len(halves) == 1 else 'halves'}, {size / 1e6:.1f} MB")
    for h in halves:
        rows = f"{h.images:,} images" if h.images is not None else "? images"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(h.last_used))
        state = f"  (would be computed again: {h.problem})" if h.problem else ""
        print(f"{size_text(h.size_bytes):>9}  image-half  {rows:>14}  {when}  {h.path.name}{state}")


def size_text(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e5 else f"{n_bytes / 1e3:.1f} kB"


def _print_leftovers(paths: List[Path], heading: str) -> None:
    print(f"{heading}: {len(paths)} temporary file{'' if len(paths) == 1 else 's'} of processes no longer running, "
          f"{sum(_size(p) for p in paths) / 1e6:.1f} MB")
    for p in paths:
        print(f"{size_text(_size(p)):>9}  {p}")


def run(args: argparse.Namespace) -> int:
    """List, clear or prune; print what is there or what was removed; exit status 0."""
    folder = args.dir if args.dir is not None else default_cache_dir()
    if folder.exists() and not folder.is_dir():
        if args.dir is not None:
            raise ParameterError(f"--dir {folder} is a file, not a folder: give the cache folder, or leave --dir "
                                 "out for the default one")
        raise CacheError(f"${CACHE_ENV}={folder} is a file, not a folder: point {CACHE_ENV} at a folder, or unset "
                         "it for the platform's user cache folder")
    if args.action == "list":
        tables = list_tables(args.dir)
        halves = list_image_halves(args.dir)
        leftovers = _leftovers(folder)
        print(f"clip tables in {folder}: {_total(tables)}")
        verb = "in"
    else:
        leftovers = _leftovers(folder)
        for path in leftovers:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
        if args.action == "clear":
            tables, halves = clear_tables(args.dir), clear_image_halves(args.dir)
        else:
            tables, halves = prune_tables(args.dir), prune_image_halves(args.dir)
        print(f"removed from {folder}: {_total(tables)}")
        verb = "removed from"
    if tables:
        print(format_tables(tables))
    if halves:
        _print_image_halves(halves, f"image halves {verb} {folder / 'image-pca'}")
    if leftovers:
        _print_leftovers(leftovers, f"{'left over' if verb == 'in' else 'removed'}")
    return 0
