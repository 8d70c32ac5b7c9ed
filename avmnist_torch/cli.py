"""``avmnist-audio``: the command line.

Each subcommand's logic lives in the module it belongs to; this file only
assembles the parser.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .demo import add_cli_parser as add_demo
    from .sources.download import add_cli_parser as add_download

    parser = argparse.ArgumentParser(
        prog="avmnist-audio",
        description="Generate the audio modality of AV-MNIST exactly as the reference notebook does.",
    )
    parser.add_argument("--version", action="version", version=f"avmnist-torch {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_demo(subparsers)
    add_download(subparsers)
    from .export import add_export_parser, add_verify_parser

    add_export_parser(subparsers)
    add_verify_parser(subparsers)
    from .inspection import add_info_parser, add_preview_parser

    add_info_parser(subparsers)
    add_preview_parser(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as err:
        # Errors of this package name the file and the problem; a traceback adds nothing for a user.
        print(f"avmnist-audio {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
