"""Files of rendered items: .npy headers, the notebook's raw files, provenance, crash-safe writing.

One module per job:

:mod:`~avmnist_torch.storage.paths`
    the final names (notebook, MultiBench) and the files beside them;
:mod:`~avmnist_torch.storage.npy`
    .npy headers, mapping rows read-only, the notebook's raw files, and the
    checks that a file is whole before it is mapped;
:mod:`~avmnist_torch.storage.provenance`
    the sources fingerprint, sidecars and comparing them;
:mod:`~avmnist_torch.storage.target`
    an export in progress: its locks, its chunk log, finishing it.

A finished export is a real .npy file, ``(N, 112, 112) uint8``, with a sidecar
``<file>.json`` recording what made it. While an export runs, nothing carries
the final name:

``<file>.partial``
    the data, header and all, allocated to its full size up front (so a full
    disk is reported before any work, not as a crash in the middle);
``<file>.partial.json``
    the parameters of the run that started it; a rerun with other parameters
    is refused rather than mixing rows of two runs;
``<file>.partial.done/*.log``
    one log per exporter of the chunk numbers it has written; a chunk's bytes
    are fsynced before its number is logged, so a log never claims rows that
    a crash lost;
``<file>.lock``
    byte-range locks (``fcntl.lockf`` on Linux and macOS, ``msvcrt.locking``
    on Windows): byte 0 guards creating and finishing the file, byte ``1 + c``
    guards chunk ``c``. Two exporters of overlapping rows cannot both run;
    exporters of disjoint rows (shards, even on other machines of a shared
    file system) can.

Whoever logs the last chunk finishes the file: writes the sidecar, then
renames ``.partial`` to the final name, so a file under the final name is
always complete. This package knows nothing of datasets: it imports only
:mod:`avmnist_torch.common` and :mod:`avmnist_torch.filesystem`. The
dataset-side cache (serving a dataset's items from a finished file) is
:mod:`avmnist_torch.cache`.
"""

from __future__ import annotations

from ..common import LockedError, MetadataMismatch, StorageError
from .npy import ITEM_SHAPE, NPY_MAGIC, ROW_BYTES, check_npy_items, is_npy, npy_header, open_rows, read_npy_header
from .paths import (
    done_dir,
    lock_path,
    multibench_path,
    notebook_path,
    partial_meta_path,
    partial_path,
    sidecar_path,
)
from .provenance import (
    FORMAT,
    IDENTITY_KEYS,
    describe_differences,
    describe_value,
    metadata_differences,
    read_sidecar,
    sources_fingerprint,
    write_json_atomic,
)
from .target import ExportTarget, done_chunks

__all__ = [
    "ITEM_SHAPE",
    "ROW_BYTES",
    "NPY_MAGIC",
    "FORMAT",
    "IDENTITY_KEYS",
    "StorageError",
    "MetadataMismatch",
    "LockedError",
    "notebook_path",
    "multibench_path",
    "sidecar_path",
    "partial_path",
    "partial_meta_path",
    "done_dir",
    "lock_path",
    "sources_fingerprint",
    "npy_header",
    "read_npy_header",
    "is_npy",
    "check_npy_items",
    "open_rows",
    "read_sidecar",
    "write_json_atomic",
    "metadata_differences",
    "describe_value",
    "describe_differences",
    "done_chunks",
    "ExportTarget",
]
