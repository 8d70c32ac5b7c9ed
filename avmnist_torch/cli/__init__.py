"""``avmnist``: the command line.

One module per command, each with ``add_parser(subparsers)``; the work itself
lives in the library (:mod:`avmnist_torch.export`, :mod:`avmnist_torch.verify`,
...), which never imports this package. This module assembles the parser and
turns errors into what a person at a terminal needs:

- the package's own errors (:class:`~avmnist_torch.AVMNISTError`: they name the
  file and what to do) as one line, ``avmnist CMD: error: ...``, exit
  status 2 for a bad option (:class:`~avmnist_torch.ParameterError`, as
  argparse's own usage errors) and 1 for the rest;
- anything else (a bug, or a library failing in a way nobody foresaw) as the
  full traceback, exit status 1: that is what a bug report needs;
- Ctrl-C as ``interrupted``, exit status 130.

``--traceback`` (before or after the command) prints the traceback for every error.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import List, Optional

from ..common import AVMNISTError, ParameterError, __version__
from . import cache, demo, download, export, inspect, verify

__all__ = ["build_parser", "main", "COMMANDS"]

#: The command modules, in the order ``--help`` lists them.
COMMANDS = (demo, download, export, verify, inspect, cache)

#: Exit statuses: 2 is argparse's own for a bad command line, 130 the shell's for SIGINT.
EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    """The ``avmnist`` parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="avmnist",
        description="AV-MNIST from public sources: the audio half exactly as the reference notebook makes it, "
                    "the image half by the published recipe; downloaded, exported, verified and inspected.",
    )
    parser.add_argument("--version", action="version", version=f"avmnist-torch {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="on any error, print the full traceback instead of one line")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; returns its exit status (see the module's docstring for errors)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if args.traceback:
            traceback.print_exc()
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except AVMNISTError as err:
        if args.traceback:
            traceback.print_exc()
        else:
            print(f"avmnist {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE if isinstance(err, ParameterError) else EXIT_ERROR
    except Exception:
        traceback.print_exc()
        print(f"avmnist {args.command}: unexpected error (the traceback above); "
              "if it is not about your files or system, please report it", file=sys.stderr)
        return EXIT_ERROR
