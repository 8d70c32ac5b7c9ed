"""``avmnist-audio cache``: list and remove the clip tables (decoded recordings, resampled noises).

The tables live in the cache folder (``$AVMNIST_CACHE``, else the platform's
user cache folder; ``--dir`` overrides both). Each is one file per (kind, list
of source files, row length, package versions); a moved or changed data tree
leaves its old tables behind, which ``prune`` removes.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

from ..filesystem import default_cache_dir
from ..sources.clips import TableInfo, clear_tables, format_tables, list_tables, prune_tables
from ._options import add_command

DESCRIPTION = """\
List the clip tables (decoded recordings and resampled noises that every
process maps instead of decoding again) and remove them. They live in the
cache folder: $AVMNIST_CACHE, else the platform's user cache folder; --dir
overrides both. A moved or changed data tree leaves its old tables behind:
'prune' removes those whose source files are gone, 'clear' removes all.
Removing a table never changes an item, only the time of its first use.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``cache`` with its actions ``list`` (the default), ``clear`` and ``prune``."""
    p = add_command(
        subparsers,
        "cache",
        help="list the clip tables in the cache folder (size, kind, sources, last use), or remove them",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_dir(p)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    for name, help in (
        ("list", "list the tables: size, kind, sources, last use (the default)"),
        ("clear", "remove every table"),
        ("prune", "remove the tables whose source files are gone"),
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


def run(args: argparse.Namespace) -> int:
    """List, clear or prune; print what is there or what was removed; exit status 0."""
    folder = args.dir if args.dir is not None else default_cache_dir()
    if args.action == "list":
        tables = list_tables(args.dir)
        print(f"clip tables in {folder}: {_total(tables)}")
    else:
        tables = clear_tables(args.dir) if args.action == "clear" else prune_tables(args.dir)
        print(f"removed from {folder}: {_total(tables)}")
    if tables:
        print(format_tables(tables))
    return 0
