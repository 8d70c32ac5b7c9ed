"""Names every layer shares: the version, the splits, the error family, argument checks, two small helpers.

It imports nothing from the package. Every error the package raises on purpose is an :class:`AVMNISTError` (one
``except`` catches them all), and also the builtin it replaced (``ValueError``, ``RuntimeError``, ...).
"""

from __future__ import annotations

import numbers
import operator
import os
import threading
from typing import Any, Callable, Dict, Hashable, Iterable, List, TypeVar, Union

__version__ = "0.1.0"

#: The two splits of AV-MNIST, in the order the notebook makes them.
SPLITS = ("train", "test")

PathLike = Union[str, "os.PathLike[str]"]


class AVMNISTError(Exception):
    """Base of every error this package raises on purpose; the message names the file and what to do."""


class SourceError(AVMNISTError, ValueError):
    """A data source (recordings, noises, labels, images) is missing or not what it should be."""


class AudioFileError(SourceError):
    """An audio file cannot be decoded, or is not mono audio at a usable rate."""


class ParameterError(AVMNISTError, ValueError):
    """An option or step parameter is out of range; raised where it is given, never later in a worker."""


class StorageError(AVMNISTError, RuntimeError):
    """A file of items cannot be read, written or trusted; the message names it and says what to do."""


class MetadataMismatch(StorageError):
    """A file was made with other parameters than the ones asked for."""


class CacheError(StorageError):
    """A cache folder or clip table cannot be created, reserved or read."""


class WorkerError(AVMNISTError, RuntimeError):
    """A worker process of an export or a verify died (killed, out of memory); the message says which job."""


class DownloadError(AVMNISTError, RuntimeError):
    """A source could not be fetched; the message says what was tried and how to get the files by hand."""


class VerificationError(DownloadError):
    """Fetched or local files do not match the published checksums; ``problems`` lists each (name: reason)."""

    def __init__(self, message: str, problems=()):
        super().__init__(message)
        self.problems = list(problems)


def check_split(split: str) -> str:
    """``split`` if it is one of :data:`SPLITS`, else a :class:`ParameterError` listing them."""
    if split not in SPLITS:
        raise ParameterError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    return split


def check_seed(seed: Any) -> int:
    """``seed`` as an int if it is an integer (numpy's too, never a boolean) in ``0 <= seed < 2**64``, else a
    :class:`ParameterError`: the items' random streams are keyed by 64 bits."""
    try:
        value = None if isinstance(seed, bool) or type(seed).__name__ == "bool_" else operator.index(seed)
    except TypeError:
        value = None
    if value is None or not 0 <= value < 2**64:
        raise ParameterError(f"seed must be a non-negative integer below 2**64 (the items' random streams are keyed "
                             f"by 64 bits), got {seed!r}")
    return value


def check_index(index, n: int, split: str) -> int:
    """``index`` as a position in ``0..n-1`` (negative ones count from the end, as for lists).

    A ``TypeError`` for anything but an integer (a bool included), an ``IndexError`` for one out of range.
    """
    if not isinstance(index, numbers.Integral) or isinstance(index, bool):
        raise TypeError(f"index must be an integer, got {type(index).__name__}")
    if index < -n or index >= n:
        raise IndexError(f"index {index} out of range for {n} {split} items")
    return int(index) % n


_T = TypeVar("_T")
_K = TypeVar("_K", bound=Hashable)
_PROBE_LOCK = threading.RLock()


def probe_once(results: dict, key: Hashable, probe: Callable[[], _T]) -> _T:
    """``results[key]``, filled by ``probe()`` the first time it is asked for (threads asking together wait for one).

    For the once-per-process checks of what this machine's numpy or soxr does; tests may put a result in
    ``results`` to choose a route.
    """
    if key in results:
        return results[key]
    with _PROBE_LOCK:
        if key not in results:
            results[key] = probe()
        return results[key]


def positions_by_key(keys: Iterable[_K]) -> Dict[_K, List[int]]:
    """The positions of each distinct key in ``keys``, keys in order of first appearance.

    ``positions_by_key([8000, 16000, 8000])`` is ``{8000: [0, 2], 16000: [1]}``.
    """
    groups: Dict[_K, List[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(key, []).append(position)
    return groups
