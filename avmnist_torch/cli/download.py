"""``avmnist download``: fetch, verify and lay out FSDD, ESC-50, MNIST's labels and MNIST's images."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..sources.download import MIRROR_ENV, SOURCES, download
from ._options import add_command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``download``."""
    p = add_command(
        subparsers, "download", run,
        help="download and verify FSDD, ESC-50 and MNIST's labels and images into the notebook's layout",
        description=(
            "Download FSDD v1.0.10, ESC-50 (a pinned commit), MNIST's labels and MNIST's image "
            "files, verify them, and lay them out under ROOT as recordings/, noise_recordings/, "
            "avmnist/{train,test}_labels.npy and mnist/{train,t10k}-images-idx3-ubyte.gz. Reruns "
            "skip what is already verified; partial downloads resume; several processes on one "
            "root take turns."
        ),
    )
    p.add_argument("--root", required=True, type=Path, help="data root to fill")
    p.add_argument("--mirror", default=None, help=f"scheme://host[:port][/prefix] replacing the host of every URL, "
                                                 f"paths kept (default: ${MIRROR_ENV}, else the original hosts)")
    p.add_argument("--only", action="append", choices=SOURCES, default=None,
                   help="get only this part (repeatable); default all")
    p.add_argument("--keep-archives", action="store_true",
                   help="keep the downloaded archives in ROOT/.downloads")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    """Download; exit status 0 when everything is in place (failures raise a DownloadError: status 1)."""
    root = download(args.root, sources=tuple(args.only) if args.only else SOURCES, mirror=args.mirror,
                    progress=not args.quiet, keep_archives=args.keep_archives)
    print(f"data ready under {root}")
    return 0
