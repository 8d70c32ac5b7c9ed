"""Files of rendered items: the two file formats, where they live, and what made them.

:mod:`~avmnist_torch.storage.paths`
    the final names (notebook, MultiBench);
:mod:`~avmnist_torch.storage.npy`
    .npy headers, and opening raw or .npy files of items for reading after checking that
    they are whole;
:mod:`~avmnist_torch.storage.provenance`
    the fingerprint of an export's sources.

A finished export is ``(N, 112, 112) uint8`` rows, either raw (no header: what the notebook
wrote, and what its training code maps at offset 0) or a real .npy file, with ``<file>.json``
beside it (what made it, its format, size and sha256). Files are written and read as every
file of the package is (:mod:`avmnist_torch.files`). Serving a dataset's items from a finished
file is :mod:`avmnist_torch.exported`.
"""

from __future__ import annotations

from .npy import FILE_FORMATS, ITEM_SHAPE, NPY_MAGIC, ROW_BYTES, check_npy_items, is_npy, npy_header, open_items, \
    read_npy_header
from .paths import multibench_path, notebook_path
from .provenance import FORMAT, file_crc32, sources_fingerprint

__all__ = ["ITEM_SHAPE", "ROW_BYTES", "NPY_MAGIC", "FILE_FORMATS", "FORMAT", "notebook_path", "multibench_path",
           "sources_fingerprint", "file_crc32", "npy_header", "read_npy_header", "is_npy", "check_npy_items",
           "open_items"]
