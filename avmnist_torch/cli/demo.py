"""``avmnist demo``: the whole job on a small tree the package makes itself."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..demo import run_demo
from ._options import add_command, positive_int

DESCRIPTION = """\
With nothing downloaded, shows what the package does: writes a
small tree in the shapes of FSDD, ESC-50, the labels and MNIST's image files,
generates a split under every scheme, exports it in the notebook's layout and
one scheme in MultiBench's, checks the files, and draws preview.png (the audio
under every scheme) and preview_av.png (image and audio). --root runs the same
on real data instead.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``demo``."""
    p = add_command(
        subparsers, "demo", run,
        help="run the whole job on a small synthetic tree (or --root DATA): items, exports (notebook, "
             "MultiBench with the image half), checks, preview PNGs",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default ./demo)")
    p.add_argument("--root", type=Path, default=None, help="a real data root instead of the synthetic tree")
    p.add_argument("--split", choices=("train", "test"), default="test",
                   help="the split generated, timed and exported in the notebook's layout (default test)")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes for the exports (default 1)")
    p.add_argument("--items", type=positive_int, default=100, help="synthetic items per split, and items timed per scheme")


def run(args: argparse.Namespace) -> int:
    """Run the demo; exit status 0 when the exported files equal the dataset's items."""
    return run_demo(args.out, root=args.root, split=args.split, workers=args.workers, items=args.items)
