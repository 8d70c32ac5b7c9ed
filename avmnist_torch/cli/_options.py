"""Options several commands share, and the one way every command is registered."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict

from ..common import ParameterError

__all__ = ["add_command", "add_root_argument", "add_source_arguments", "require_sources", "source_kwargs"]


def add_command(subparsers: argparse._SubParsersAction, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """``subparsers.add_parser(name, **kwargs)`` plus the options every command takes (``--traceback``).

    ``--traceback`` is accepted before the command too (``avmnist-audio --traceback export ...``);
    here it defaults to "not given" so that it never resets the value given there.
    """
    p = subparsers.add_parser(name, **kwargs)
    p.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                   help="on any error, print the full traceback instead of one line")
    return p


def add_root_argument(p: argparse.ArgumentParser, help: str = "data root (recordings/, noise_recordings/, avmnist/)",
                      ) -> None:
    """The ``--root`` option of the data-reading commands."""
    p.add_argument("--root", type=Path, default=None, help=help)


def add_source_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--recordings/--noises/--labels`` options every data-reading subcommand shares."""
    p.add_argument("--recordings", type=Path, default=None, help="FSDD recordings folder (default ROOT/recordings)")
    p.add_argument("--noises", type=Path, default=None,
                   help="ESC-50 folder with audio/ and meta/esc50.csv (default ROOT/noise_recordings)")
    p.add_argument("--labels", type=Path, default=None,
                   help="labels: a folder holding {train,test}_labels.npy or a torchvision MNIST root "
                        "(default ROOT)")


def require_sources(args: argparse.Namespace) -> None:
    """A :class:`ParameterError` saying what to give when neither --root nor --recordings was given."""
    if args.root is None and args.recordings is None:
        raise ParameterError("give --root (or --recordings, --noises and --labels)")


def source_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """The dataset keywords given by :func:`add_source_arguments`'s options."""
    return {k: getattr(args, k) for k in ("recordings", "noises", "labels") if getattr(args, k, None) is not None}
