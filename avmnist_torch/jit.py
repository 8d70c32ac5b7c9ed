"""numba compilation that never breaks import.

``numba.njit(cache=True)`` needs a writable folder for its cache: beside the
source file, or under ``$NUMBA_CACHE_DIR``. In a read-only site-packages (a
container image, a cluster's shared install) with no writable cache folder it
raises ``RuntimeError("cannot cache function ...: no locator available")``
when the function is decorated, that is, at import. :func:`njit` then
compiles the same function without caching (each process compiles it on first
use, about a second) and says so once, quietly (a ``logging`` info line).
"""

from __future__ import annotations

import logging
from typing import Callable

import numba

_log = logging.getLogger("avmnist_torch")
_said = False


def njit(func: Callable, **options) -> Callable:
    """``numba.njit(cache=True, **options)(func)``, without the cache where none can be written."""
    global _said
    try:
        return numba.njit(cache=True, **options)(func)
    except RuntimeError as err:
        if not _said:
            _said = True
            _log.info("numba cannot cache compiled kernels here (%s); compiling them in each process instead. "
                      "Set NUMBA_CACHE_DIR to a writable folder to keep them between runs.", err)
        return numba.njit(cache=False, **options)(func)
