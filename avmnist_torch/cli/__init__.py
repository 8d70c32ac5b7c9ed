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
- Ctrl-C as one line, ``avmnist CMD: interrupted`` (with what was kept, where the
  command says), exit status 130; SIGTERM (what a batch scheduler sends) the same
  way, ``terminated (SIGTERM)``, exit status 143: both stop worker processes and
  remove temporary files on the way out;
- a reader that went away (``avmnist info | head -3``) quietly, exit status 1,
  the standard Python way (stdout redirected to devnull).

``--traceback`` (before or after the command) prints the traceback for every error.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import traceback
from typing import Iterator, List, Optional

from ..common import AVMNISTError, ParameterError, __version__
from . import cache, demo, download, export, inspect, verify

__all__ = ["build_parser", "main", "COMMANDS"]

#: The command modules, in the order ``--help`` lists them.
COMMANDS = (demo, download, export, verify, inspect, cache)

#: Exit statuses: 2 is argparse's own for a bad command line, 130 and 143 the shell's for SIGINT and SIGTERM.
EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a command stops as it does on Ctrl-C.

    A ``KeyboardInterrupt``, so that everything that cleans up after Ctrl-C (stopping an export's
    worker processes, removing its temporary file) does so after SIGTERM too.
    """


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_raises_terminated() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` while the command runs (only the main thread can handle signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stdout_is_gone() -> bool:
    """Whether stdout's reader went away: flushing what is left fails again with a broken pipe."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    return False


def _silence_stdout() -> None:
    # Python's documented way (signal module, "Note on SIGPIPE"): what is still buffered, and the
    # flush at exit, go to devnull instead of raising BrokenPipeError again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        pass


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
        with _sigterm_raises_terminated():
            status = int(args.func(args) or 0)
            sys.stdout.flush()  # a reader that went away shows here, not in the flush at exit
            return status
    except KeyboardInterrupt as stop:
        if args.traceback:
            traceback.print_exc()
        terminated = isinstance(stop, Terminated)
        # The command may say what it kept (an export: which files are finished); one line either way.
        said = f": {stop}" if str(stop) else ""
        print(f"avmnist {args.command}: {'terminated (SIGTERM)' if terminated else 'interrupted'}{said}",
              file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except AVMNISTError as err:
        if args.traceback:
            traceback.print_exc()
        else:
            print(f"avmnist {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE if isinstance(err, ParameterError) else EXIT_ERROR
    except BrokenPipeError:
        if _stdout_is_gone():  # `avmnist info | head -3`: nobody reads the rest, nothing to report
            _silence_stdout()
            return EXIT_ERROR
        _report_unexpected(args.command)
        return EXIT_ERROR
    except Exception:
        _report_unexpected(args.command)
        return EXIT_ERROR


def _report_unexpected(command: str) -> None:
    traceback.print_exc()
    print(f"avmnist {command}: unexpected error (the traceback above); "
          "if it is not about your files or system, please report it", file=sys.stderr)
