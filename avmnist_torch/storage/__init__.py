"""Files of rendered items: the two file formats, provenance, checksums, and writing them safely.

One module per job:

:mod:`~avmnist_torch.storage.paths`
    the final names (notebook, MultiBench) and the files beside them;
:mod:`~avmnist_torch.storage.npy`
    .npy headers, mapping rows read-only from raw or .npy files, and the checks
    that a file is whole before it is mapped;
:mod:`~avmnist_torch.storage.provenance`
    the sources fingerprint, sidecars and comparing them;
:mod:`~avmnist_torch.storage.integrity`
    stat identity, per-row CRC-32s, the sha256 of the rows, checking a finished file;
:mod:`~avmnist_torch.storage.writer`
    writing a file into a temporary name beside it, checking it, renaming it.

A finished export is ``(N, 112, 112) uint8`` rows, either raw (no header: what
the notebook wrote, and what its training code maps at offset 0) or a real
.npy file, with ``<file>.json`` (the sidecar: what made it, its format, the
sha256 of its rows) and ``<file>.crc32`` (one CRC-32 per row) beside it. This
package knows nothing of datasets: it imports only :mod:`avmnist_torch.common`
and :mod:`avmnist_torch.filesystem`. Serving a dataset's items from a finished
file is :mod:`avmnist_torch.exported`.
"""

from __future__ import annotations

from ..common import MetadataMismatch, StorageError
from .integrity import (
    FileCheck,
    StatIdentity,
    check_finished,
    read_checksums,
    row_crc32,
    scan_rows,
    stat_identity,
    write_checksums,
)
from .npy import (
    FILE_FORMATS,
    ITEM_SHAPE,
    NPY_MAGIC,
    ROW_BYTES,
    check_npy_items,
    is_npy,
    map_rows,
    npy_header,
    open_rows,
    read_npy_header,
)
from .paths import (
    LEGACY_SUFFIXES,
    checksums_path,
    multibench_path,
    notebook_path,
    parse_writing_path,
    sidecar_path,
    writing_path,
)
from .provenance import (
    FORMAT,
    IDENTITY_KEYS,
    LEGACY_FORMAT,
    describe_differences,
    describe_value,
    file_crc32,
    metadata_differences,
    read_sidecar,
    sources_fingerprint,
    write_json_atomic,
)
from .writer import ItemFileWriter, remove_dead_leftovers

__all__ = [
    "ITEM_SHAPE",
    "ROW_BYTES",
    "NPY_MAGIC",
    "FILE_FORMATS",
    "FORMAT",
    "LEGACY_FORMAT",
    "IDENTITY_KEYS",
    "LEGACY_SUFFIXES",
    "StorageError",
    "MetadataMismatch",
    "notebook_path",
    "multibench_path",
    "sidecar_path",
    "checksums_path",
    "writing_path",
    "parse_writing_path",
    "sources_fingerprint",
    "file_crc32",
    "npy_header",
    "read_npy_header",
    "is_npy",
    "check_npy_items",
    "open_rows",
    "map_rows",
    "read_sidecar",
    "write_json_atomic",
    "metadata_differences",
    "describe_value",
    "describe_differences",
    "StatIdentity",
    "stat_identity",
    "row_crc32",
    "scan_rows",
    "write_checksums",
    "read_checksums",
    "FileCheck",
    "check_finished",
    "ItemFileWriter",
    "remove_dead_leftovers",
]
