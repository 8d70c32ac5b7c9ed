"""``avmnist verify``: check an exported file against its records, and regenerate rows to compare."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..common import SPLITS
from ..verify import verify
from ..rendering import RENDERERS, STYLES
from ._options import (add_command, add_source_arguments, non_negative_int, positive_int,
                       scheme_name, source_kwargs)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``verify``."""
    p = add_command(
        subparsers, "verify", run,
        help="check an exported file against its recorded size and sha256, and regenerate rows to compare",
        description="Check FILE against the size and sha256 recorded when it was written (FILE.json); then "
                    "regenerate a sample of rows (or all) and compare them byte for byte, naming the rows that "
                    "differ. A notebook-layout file with a .npy header is reported with the command that fixes "
                    "it. Exit status 0 when all match, 1 when anything differs.",
    )
    p.add_argument("file", type=Path, help="the exported file of items (.npy name; raw rows or a real .npy)")
    p.add_argument("--sample", type=positive_int, default=64,
                   help="rows to regenerate (default 64, first and last included); the whole file is checked "
                        "against its recorded sha256 regardless")
    p.add_argument("--all", action="store_true", help="regenerate every row")
    p.add_argument("--rows", type=int, nargs="+", default=None,
                   help="check exactly these rows (0 to the file's row count - 1)")
    p.add_argument("--split", default=None, choices=SPLITS, help="override the sidecar / file name")
    p.add_argument("--scheme", default=None, type=scheme_name, help="override the sidecar / file name")
    p.add_argument("--seed", type=non_negative_int, default=None, help="override the sidecar's seed (default: its own)")
    p.add_argument("--renderer", default=None, choices=RENDERERS,
                   help="renderer that regenerates the rows (default: the sidecar's, else fast)")
    p.add_argument("--style", default=None, choices=STYLES,
                   help="matplotlib pixel style to regenerate with (default: the sidecar's)")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes regenerating rows (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_source_arguments(p, root_help="data root (default: inferred from ROOT/avmnist/audio/FILE)")


def run(args: argparse.Namespace) -> int:
    """Verify and print the report; exit status 0 when every checked row matches, else 1."""
    report = verify(
        args.file, args.root, sample=None if args.all else args.sample, rows=args.rows, split=args.split,
        scheme=args.scheme, seed=args.seed, renderer=args.renderer, style=args.style, workers=args.workers,
        progress=not args.quiet, **source_kwargs(args, required=False),
    )
    print(report.summary())
    return 0 if report.ok else 1
