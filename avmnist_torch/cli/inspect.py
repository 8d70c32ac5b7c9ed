"""``avmnist info`` and ``avmnist preview``: looking at the data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..common import SPLITS
from ..inspection import format_info, info, preview
from ..rendering import RENDERERS, STYLES
from ._options import add_command, add_source_arguments, non_negative_int, source_kwargs


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``info`` and ``preview``."""
    p = add_command(
        subparsers, "info", run_info,
        help="what data was found where: counts per split and digit, test noise categories, MNIST's images, "
             "exports",
        description="Report the recordings, noises and labels found (per split and digit), the five "
                    "held-out noise categories, MNIST's image files (the image half), and exported files under "
                    "ROOT/avmnist/audio. Exit status 1 when a source of the audio half (recordings, noises, "
                    "labels) is missing; missing image files are reported with the command that fetches them, "
                    "but only the image half needs them.",
    )
    add_source_arguments(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = add_command(
        subparsers, "preview", run_preview,
        help="a PNG grid: one digit under each scheme and clean, plus random items (--images: image and audio)",
        description="Draw one item under every scheme and clean, then a few random items, "
                    "each tile titled with its scheme, index and digit. With --images, AV-MNIST side by side: "
                    "one row per item (--index, then --random others) with MNIST's image, its pca25 image half "
                    "and the spectrogram under every scheme, titled with the index and the digit.",
    )
    add_source_arguments(p)
    p.add_argument("--out", type=Path, default=Path("preview.png"), help="PNG to write (default preview.png)")
    p.add_argument("--split", default="test", choices=SPLITS, help="the split drawn (default test)")
    p.add_argument("--index", type=int, default=None,
                   help="the item shown under every scheme, from 0 (default 0)")
    p.add_argument("--random", type=non_negative_int, default=6, help="random items after the first row (default 6)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seeds the items' random streams and the choice of random items (default 0)")
    p.add_argument("--renderer", default="fast", choices=RENDERERS,
                   help="fast (default): matplotlib's pixels without it; matplotlib: the installed one draws")
    p.add_argument("--style", default=None, choices=STYLES,
                   help="matplotlib version whose pixels the fast renderer draws (default 3.10, the notebook's)")
    p.add_argument("--images", nargs="?", type=Path, const=True, default=False, metavar="PATH",
                   help="draw MNIST's image beside the audio; its image files are looked for under ROOT "
                        "('avmnist download --root ROOT --only mnist_images' puts them there), or in PATH "
                        "(the split's idx3 file or a folder holding it)")


def run_info(args: argparse.Namespace) -> int:
    """Print what was found; exit status 0 when every source is there, else 1."""
    report = info(args.root, **source_kwargs(args))
    print(json.dumps(report, indent=1) if args.json else format_info(report))
    ok = report["recordings"].get("found") and report["noises"].get("found") and all(
        report["labels"][s]["found"] for s in SPLITS)
    return 0 if ok else 1


def run_preview(args: argparse.Namespace) -> int:
    """Draw the grid and print where it went; exit status 0."""
    out = preview(args.root, args.out, split=args.split, index=args.index, random_items=args.random,
                  seed=args.seed, renderer=args.renderer, style=args.style, images=args.images,
                  **source_kwargs(args))
    print(out)
    return 0
