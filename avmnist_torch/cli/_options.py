"""Options several commands share, and the one way every command is registered."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any, Callable, Dict

from ..common import ParameterError
from ..schemes import SCHEME_NAMES

__all__ = ["add_command", "add_source_arguments", "source_kwargs",
           "positive_int", "non_negative_int", "scheme_name", "scheme_name_or_all"]


def add_command(subparsers: argparse._SubParsersAction, name: str, run: Any = None,
                **kwargs: Any) -> argparse.ArgumentParser:
    """``subparsers.add_parser(name, **kwargs)`` running ``run(args)``, plus the option every command takes
    (``--traceback``)."""
    p = subparsers.add_parser(name, **kwargs)
    if run is not None:
        p.set_defaults(func=run)
    # Also accepted before the command (avmnist --traceback export): SUPPRESS never resets the value given there.
    p.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                   help="on any error, print the full traceback instead of one line")
    return p


def add_source_arguments(p: argparse.ArgumentParser,
                         root_help: str = "data root (recordings/, noise_recordings/, avmnist/)") -> None:
    """The ``--root`` and ``--recordings/--noises/--labels`` options every data-reading command shares."""
    p.add_argument("--root", type=Path, default=None, help=root_help)
    p.add_argument("--recordings", type=Path, default=None, help="FSDD recordings folder (default ROOT/recordings)")
    p.add_argument("--noises", type=Path, default=None,
                   help="ESC-50 folder with audio/ and meta/esc50.csv (default ROOT/noise_recordings)")
    p.add_argument("--labels", type=Path, default=None,
                   help="labels: a folder holding {train,test}_labels.npy or a torchvision MNIST root "
                        "(default ROOT)")


def source_kwargs(args: argparse.Namespace, required: bool = True) -> Dict[str, Any]:
    """The dataset keywords given by :func:`add_source_arguments`'s options; `required`: a :class:`ParameterError`
    saying what to give when neither --root nor --recordings was given."""
    if required and args.root is None and args.recordings is None:
        raise ParameterError("give --root (or --recordings, --noises and --labels)")
    return {k: getattr(args, k) for k in ("recordings", "noises", "labels") if getattr(args, k, None) is not None}


def _whole_number(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= `low`, else a usage error naming the option, before any data is read."""
    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return whole_number


positive_int = _whole_number(1)  # worker and row counts
non_negative_int = _whole_number(0)  # seeds, counts that may be zero


def scheme_name(text: str, also: tuple = ()) -> str:
    """An argparse type: one of the package's scheme names (any case, as ``get_scheme`` accepts), or of `also`."""
    if text.strip().lower() not in (*SCHEME_NAMES, *also):
        raise argparse.ArgumentTypeError(f"unknown scheme {text!r}: choose one of {', '.join(SCHEME_NAMES)}"
                                         + "".join(f", or {name} (the five)" for name in also))
    return text


scheme_name_or_all = functools.partial(scheme_name, also=("all",))  # all: the notebook's five schemes
