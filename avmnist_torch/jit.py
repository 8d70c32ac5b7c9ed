"""numba compilation that never breaks import.

``numba.njit(cache=True)`` needs a writable folder for its cache: beside the
source file, or under ``$NUMBA_CACHE_DIR``. In a read-only site-packages (a
container image, a cluster's shared install) with no writable cache folder it
raises ``RuntimeError("cannot cache function ...: no locator available")``
when the function is decorated, that is, at import. :func:`njit` then
compiles the same function without caching (each process compiles it on first
use, about a second) and says so once, quietly (a ``logging`` info line).
Without numba at all it returns None and callers take their numpy route.
"""

from __future__ import annotations

import logging
from typing import Callable, Optional

try:
    import numba
except ImportError:  # pragma: no cover - numba arrives with librosa; an install without it still works
    numba = None

_log = logging.getLogger("avmnist_torch")
_said = False

AVAILABLE = numba is not None


def njit(func: Callable, **options) -> Optional[Callable]:
    """``numba.njit(cache=True, **options)(func)``, without the cache where none can be written; None without numba."""
    global _said
    if numba is None:
        return None
    try:
        return numba.njit(cache=True, **options)(func)
    except RuntimeError as err:
        if not _said:
            _said = True
            _log.info("numba cannot cache compiled kernels here (%s); compiling them in each process instead. "
                      "Set NUMBA_CACHE_DIR to a writable folder to keep them between runs.", err)
        return numba.njit(cache=False, **options)(func)
