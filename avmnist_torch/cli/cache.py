"""``avmnist cache``: list and remove what the package keeps in its cache folder (see ``DESCRIPTION``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

from ..cache_folder import CachedFile, format_cached, human_size, leftover_temporaries, list_cached, remove_cached
from ..common import CacheError, ParameterError
from ..files import CACHE_ENV, default_cache_dir
from ._options import add_command

DESCRIPTION = """\
List what the package keeps in its cache folder, and remove it: the clip
tables (decoded recordings and resampled noises that every process reads
instead of decoding again), the cached PCA image halves, and
temporary files left by processes that were killed while writing. The folder
is $AVMNIST_CACHE, else the platform's user cache folder; --dir overrides
both. 'prune' removes the files that would not be used again (source files
gone or changed, the file not what its sidecar records) and the leftover
temporary files; 'clear' removes all. Removing any of them never changes an
item, only the time of its first use.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``cache`` with its actions ``list`` (the default), ``clear`` and ``prune``."""
    p = add_command(
        subparsers, "cache", run,
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
    p.set_defaults(action="list")


def _add_dir(p: argparse.ArgumentParser, default=None) -> None:
    p.add_argument("--dir", type=Path, default=default,
                   help="the cache folder (default: $AVMNIST_CACHE, else the platform's user cache folder)")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _total(files: List[CachedFile]) -> str:
    return f"{len(files)} file{'s' if len(files) != 1 else ''}, {human_size(sum(f.size_bytes for f in files))}"


def run(args: argparse.Namespace) -> int:
    """List, clear or prune; print what is there or what was removed."""
    folder = args.dir if args.dir is not None else default_cache_dir()
    if folder.exists() and not folder.is_dir():
        if args.dir is not None:
            raise ParameterError(f"--dir {folder} is a file, not a folder: give the cache folder, or leave --dir "
                                 "out for the default one")
        raise CacheError(f"${CACHE_ENV}={folder} is a file, not a folder: point {CACHE_ENV} at a folder, or unset "
                         "it for the platform's user cache folder")
    leftovers = leftover_temporaries(folder)
    leftover_bytes = sum(_size(p) for p in leftovers)  # before 'clear' or 'prune' removes them
    if args.action == "list":
        files = list_cached(folder)
        print(f"in {folder}: {_total(files)}")
    else:
        for path in leftovers:
            path.unlink(missing_ok=True)
        files = remove_cached(folder, (lambda info: True) if args.action == "clear" else
                              (lambda info: info.problem is not None))
        print(f"removed from {folder}: {_total(files)}")
    if files:
        print(format_cached(files))
    if leftovers:
        verb = "left over" if args.action == "list" else "removed"
        print(f"{verb}: {len(leftovers)} temporary file{'' if len(leftovers) == 1 else 's'} of processes no longer "
              f"running, {human_size(leftover_bytes)}")
        for p in leftovers:
            print(f"  {p}")
    return 0
