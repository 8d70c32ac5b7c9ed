"""``avmnist export``: whole splits into the files AV-MNIST's training code reads."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ..common import SPLITS, ParameterError
from ..export import LAYOUTS, export
from ..item_options import DRAW_MODES
from ..storage import FILE_FORMATS
from ..rendering import RENDERERS, STYLES
from ..schemes import SCHEME_NAMES
from ._options import (add_command, add_source_arguments, non_negative_int, positive_int,
                       scheme_name_or_all, source_kwargs)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``export``."""
    p = add_command(
        subparsers, "export", run,
        help="generate whole splits into files (notebook or MultiBench layout), with labels and image half",
        description=(
            "Generate splits into files of (N, 112, 112) uint8 items: the notebook's "
            "avmnist/audio/{split}_data_augmented_{scheme}.npy (raw rows without a header, as the notebook wrote "
            "them; --format npy for a real .npy) or MultiBench's {dir}/audio/{split}_data.npy (always .npy), "
            "each with the split's labels and image half (MNIST's images through the published PCA recipe; "
            "without MNIST's image files, under ROOT/mnist or --images PATH, the audio is exported all the same, "
            "with a warning). Each file is written under a temporary name, read back and checked, then renamed "
            "into place after FILE.json (what made it, its size and sha256). Ctrl-C or SIGTERM leaves no partial "
            "file; running the same command again skips the files that are as recorded and writes the rest. "
            "docs/formats.md describes every name and file."
        ),
    )
    p.add_argument("--split", default="train", choices=(*SPLITS, "all"),
                   help="the split to export, or all (both; default train)")
    p.add_argument("--scheme", default="burst_noise", type=scheme_name_or_all,
                   help=f"one of {', '.join(SCHEME_NAMES)}, or all (the five)")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes (default 1)")
    p.add_argument("--layout", default="notebook", choices=LAYOUTS,
                   help="notebook (default): the thesis' avmnist/ folder; multibench: MultiBench's folder")
    p.add_argument("--format", default=None, choices=FILE_FORMATS,
                   help="raw: rows without a header, as the notebook wrote them (default for the notebook layout); "
                        "npy: a real .npy file (the multibench layout's only format)")
    p.add_argument("--out", type=Path, default=None,
                   help="output root (notebook), folder (multibench) or a .npy file (default under ROOT)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seeds every item's own random stream, 0 to 2**64 - 1 (default 0, the notebook's items); "
                        "recorded in FILE.json")
    p.add_argument("--draws", default="fixed", choices=DRAW_MODES,
                   help="fixed: the notebook's items (default); per_epoch: one epoch of items drawn anew every "
                        "epoch (--epoch), recorded in FILE.json")
    p.add_argument("--epoch", type=non_negative_int, default=None, metavar="K",
                   help="with --draws per_epoch: which epoch's items to write (default 0), as ..._epochK.npy")
    p.add_argument("--redraw-recording", action="store_true",
                   help="with --draws per_epoch: draw each item's recording too (any of its digit's)")
    p.add_argument("--snr-range-db", type=float, default=None, metavar="DB",
                   help="with --draws per_epoch: each item's SNR drawn from the scheme's value +- DB")
    p.add_argument("--renderer", default="fast", choices=RENDERERS,
                   help="fast (default): matplotlib's pixels without it; matplotlib: the installed one draws")
    p.add_argument("--style", default=None, choices=STYLES, help="matplotlib pixel style for the fast renderer")
    p.add_argument("--images", type=Path, default=None, metavar="PATH",
                   help="MNIST's image files for the image half, an idx3 file "
                        "(one --split) or a folder holding them (default: searched under ROOT)")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="only the first N items of each split, to try things: a partial export, named "
                        "..._firstN.npy (never a name a full export or MultiBench's loader reads), the range "
                        "recorded in FILE.json, no labels or image half; from_export= refuses it for a whole split")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_source_arguments(p)


def _warn_in_one_line(message, category, filename, lineno, file=None, line=None) -> None:
    # A warning at a terminal is one line a person reads, not a source location.
    print(f"avmnist export: warning: {message}", file=sys.stderr)


def _draw_options(args: argparse.Namespace) -> dict:
    """The per-epoch options given, for the item generator (none for the default fixed items)."""
    given = [flag for flag, value in (("--epoch", args.epoch), ("--redraw-recording", args.redraw_recording or None),
                                      ("--snr-range-db", args.snr_range_db)) if value is not None]
    if args.draws == "fixed" and given:  # said here to name the flags, not the keywords
        raise ParameterError(f"{', '.join(given)}: only with --draws per_epoch")
    return {} if args.draws == "fixed" else dict(draws=args.draws, epoch=args.epoch or 0,
                                                 redraw_recording=args.redraw_recording, snr_range_db=args.snr_range_db)


def run(args: argparse.Namespace) -> int:
    """Export what ``args`` asks for and print each completed file; exit status 0."""
    with warnings.catch_warnings():
        warnings.showwarning = _warn_in_one_line
        paths = export(
            args.root, args.split, args.scheme, out=args.out, layout=args.layout, format=args.format,
            workers=args.workers, seed=args.seed, renderer=args.renderer, style=args.style,
            progress=not args.quiet, images=args.images, limit=args.limit, **source_kwargs(args),
            **_draw_options(args),
        )
    for path in paths:
        print(path)
    return 0
