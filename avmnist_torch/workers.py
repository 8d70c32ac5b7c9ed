"""Worker processes that each hold a copy of one item generator and render row ranges of it.

:func:`render_rows` is what ``export`` and ``verify`` render with: any number of processes, rows in any
order, a dead worker or Ctrl-C/SIGTERM answered within about a second, nothing left running.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import multiprocessing.connection
import signal
import sys
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .common import WorkerError
from .generator import AudioItemGenerator

__all__ = ["render_rows", "row_tasks"]


_WORKER_ITEMS: Optional[AudioItemGenerator] = None


def _init_worker(items: AudioItemGenerator) -> None:
    global _WORKER_ITEMS
    _WORKER_ITEMS = items
    # Each worker is one of N processes on N cores; library thread pools would only contend.
    torch.set_num_threads(1)
    numba = sys.modules.get("numba")
    if numba is not None:
        with contextlib.suppress(Exception):
            numba.set_num_threads(1)
    # Ctrl-C reaches the whole process group; the parent alone handles it, by stopping the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM ends a worker at once: the parent's inherited Python handler would act only when the
    # compiled code of the current task returns, seconds later.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _render_task(task: Tuple[int, Sequence[int]]) -> Tuple[int, np.ndarray]:
    key, indices = task
    return key, _WORKER_ITEMS.spectrograms(list(indices))  # the batched path: faster, and the same bytes


def _stop(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Kill the pool's workers now and let its manager thread end, so that this process can exit at once."""
    # Taken before shutdown() forgets them: a task already running would otherwise keep its worker (and
    # this process, at exit) busy until done, seconds later.
    workers = list((getattr(pool, "_processes", None) or {}).values())
    results = getattr(pool, "_result_queue", None)
    manager = getattr(pool, "_executor_manager_thread", None)
    # SIGKILL: nothing in a worker needs cleaning up, and no handler it inherited can delay it.
    for process in workers:
        with contextlib.suppress(Exception):  # already gone
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    # A worker killed while sending its rows leaves half a message in the results pipe, whose rest the
    # pool's manager thread (joined at exit) would wait for for ever, as this process holds the write end
    # too: closing it once the workers are gone gives that thread an end of file instead.
    with contextlib.suppress(OSError, ValueError):  # a sentinel already closed: that worker is gone
        multiprocessing.connection.wait([process.sentinel for process in workers], timeout=5)
    writer = getattr(results, "_writer", None)
    if writer is not None:
        with contextlib.suppress(OSError):  # already closed
            writer.close()
    # Wound up here rather than at exit, where Python's exit hook for pools could race its last steps.
    if manager is not None:
        manager.join(timeout=5)


def row_tasks(indices: Sequence[int], workers: int, most: int) -> List[Tuple[int, Sequence[int]]]:
    """Tasks ``(k, indices[k:k + size])`` for :func:`render_rows`: about four a worker, at most `most` rows each."""
    size = max(1, min(most, -(-len(indices) // (4 * workers))))
    return [(k, indices[k:k + size]) for k in range(0, len(indices), size)]


def render_rows(items: AudioItemGenerator, tasks: Sequence[Tuple[int, Sequence[int]]], workers: int,
                what: str) -> Iterator[Tuple[int, np.ndarray]]:
    """``(key, rows)`` for each task ``(key, indices)``, in any order, rendered by ``workers`` processes.

    A worker that dies stops everything within a second or so with a
    :class:`~avmnist_torch.common.WorkerError` naming ``what``; a ``KeyboardInterrupt`` (Ctrl-C, the
    command line's SIGTERM) kills the workers and is raised here.
    """
    if workers <= 1 or len(tasks) <= 1:
        for key, indices in tasks:
            yield key, items.spectrograms(list(indices))
        return
    # fork starts workers in milliseconds with the parent's index and caches already built;
    # elsewhere (macOS, Windows) spawn is the safe choice.
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pool = concurrent.futures.ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context,
                                                  initializer=_init_worker, initargs=(items,))
    try:
        futures = [pool.submit(_render_task, task) for task in tasks]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()
    except BrokenProcessPool:
        _stop(pool)
        raise WorkerError(f"{what}: a worker process died (killed, or out of memory); nothing was finished: "
                          "run it again (with fewer --workers if memory is short)") from None
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)


