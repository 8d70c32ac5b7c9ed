"""``avmnist``: the command line, one module per command (each with ``add_parser(subparsers)``).

The work lives in the library, which never imports this package; here errors become what a person
at a terminal needs:

- the package's own errors (:class:`~avmnist_torch.AVMNISTError`) as one line,
  ``avmnist CMD: error: ...``, exit status 2 for a :class:`~avmnist_torch.ParameterError`
  (as argparse's usage errors) and 1 for the rest; anything else (a bug) as the full traceback,
  exit status 1; ``--traceback`` (before or after the command) prints it for every error;
- Ctrl-C as ``avmnist CMD: interrupted`` (exit status 130), SIGTERM as ``terminated (SIGTERM)``
  (143): both stop worker processes and remove temporary files on the way out;
- a reader that went away (``avmnist info | head -3``) quietly, exit status 1.
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
    """SIGTERM, raised in the main thread: a ``KeyboardInterrupt``, so all that cleans up after Ctrl-C does."""


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


def _reader_went_away() -> bool:
    """Whether stdout's reader went away (flushing fails again with a broken pipe); if so, silence stdout."""
    try:
        sys.stdout.flush()
        return False
    except BrokenPipeError:
        pass
    except (OSError, ValueError):
        return False
    # Python's documented way (signal module, "Note on SIGPIPE"): what is still buffered, and the
    # flush at exit, go to devnull instead of raising BrokenPipeError again.
    with contextlib.suppress(AttributeError, OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return True


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
        said = f": {stop}" if str(stop) else ""  # what the command kept (an export: the finished files)
        print(f"avmnist {args.command}: {'terminated (SIGTERM)' if terminated else 'interrupted'}{said}",
              file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except AVMNISTError as err:
        if args.traceback:
            traceback.print_exc()
        else:
            print(f"avmnist {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE if isinstance(err, ParameterError) else EXIT_ERROR
    except Exception as err:
        # `avmnist info | head -3`: nobody reads the rest, nothing to report
        if not (isinstance(err, BrokenPipeError) and _reader_went_away()):
            traceback.print_exc()
            print(f"avmnist {args.command}: unexpected error (the traceback above); "
                  "if it is not about your files or system, please report it", file=sys.stderr)
        return EXIT_ERROR
