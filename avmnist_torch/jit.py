"""numba compilation that never breaks import: without a writable cache folder, compile uncached (logged once)."""

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
