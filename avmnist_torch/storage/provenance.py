"""What made a file of items: the sources fingerprint, sidecar metadata, and comparing two of them.

A finished export has a sidecar ``<file>.json``: the identity fields
(:data:`IDENTITY_KEYS`, which decide the bytes) and provenance only (times,
host, renderer name, where the sources were). Two files hold the same bytes
when their identity fields agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..common import PathLike, StorageError
from ..filesystem import write_json_atomic
from .paths import sidecar_path

FORMAT = "avmnist-torch export 2"
#: The sidecar format of older versions: a .npy file for every layout, no row checksums.
LEGACY_FORMAT = "avmnist-torch export 1"
#: Sidecar fields that decide whether two files hold the same bytes. Anything
#: else in a sidecar (timestamps, host, renderer name) is provenance only.
#: "draws" is present only for per-epoch items (which epoch, which options); fixed items have none.
IDENTITY_KEYS = ("format", "split", "scheme", "scheme_steps", "seed", "style", "sources", "version", "shape",
                 "draws")

__all__ = [
    "FORMAT",
    "LEGACY_FORMAT",
    "IDENTITY_KEYS",
    "file_crc32",
    "sources_fingerprint",
    "read_sidecar",
    "write_json_atomic",
    "metadata_differences",
    "describe_value",
    "describe_differences",
]


_CONTENT_MEMO: Dict[Tuple[str, int, int, int, int, int], int] = {}


def file_crc32(path: PathLike) -> int:
    """CRC-32 of a file's bytes, remembered per process while its stat stays the same.

    The stat compared includes the change time (``st_ctime_ns``), which any
    write and any ``utime`` move and nobody can set back, so an edit that
    keeps the size and restores the modification time is read again.
    """
    st = os.stat(path)
    key = (os.fspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    crc = _CONTENT_MEMO.get(key)
    if crc is None:
        crc = 0
        with open(path, "rb", buffering=0) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                crc = zlib.crc32(block, crc)
        _CONTENT_MEMO[key] = crc
    return crc


def sources_fingerprint(recordings: Sequence[PathLike], noises: Sequence[PathLike], labels: np.ndarray) -> str:
    """sha256 over the recordings' and noises' names, sizes and contents, in index order, and the labels.

    Order matters (it decides which recording item ``i`` gets), so the lists
    are hashed as given. Names, not full paths, so a tree moved elsewhere or
    mounted at another path on another machine keeps its fingerprint. Each
    file's content enters as its CRC-32, so a recording edited in place (even
    to the same size, even with its modification time put back) changes the
    fingerprint; CRC-32 rather than a cryptographic hash because it runs at
    the speed of reading the file (all 3,000 FSDD recordings, 21 MB, in about
    0.05 s; 512 ESC-50 clips, 226 MB, in about 0.4 s, from the page cache), and
    it guards against accidents, not forgery. Each file is read once per
    process while its stat (change time included) stays the same.
    """
    h = hashlib.sha256()
    for kind, paths in (("recordings", recordings), ("noises", noises)):
        h.update(f"{kind}:{len(paths)}\n".encode())
        for p in paths:
            p = Path(p)
            h.update(f"{p.name}\t{p.stat().st_size}\t{file_crc32(p):08x}\n".encode())
    h.update(b"labels:")
    h.update(np.ascontiguousarray(np.asarray(labels, dtype=np.int64)).tobytes())
    return h.hexdigest()


def metadata_differences(found: Mapping[str, Any], expected: Mapping[str, Any],
                         keys: Iterable[str] = IDENTITY_KEYS) -> List[Tuple[str, Any, Any]]:
    """``(key, found, expected)`` for every identity field that differs."""
    out = []
    for key in keys:
        a, b = found.get(key), expected.get(key)
        if isinstance(a, tuple):
            a = list(a)
        if isinstance(b, tuple):
            b = list(b)
        if a != b:
            out.append((key, found.get(key), expected.get(key)))
    return out


def describe_value(key: str, value: Any) -> str:
    """``key=value`` for a message; the sources fingerprint shortened and explained."""
    if key == "sources" and isinstance(value, str):
        return f"{key}={value[:12]}... (a fingerprint of the recordings, noises and labels)"
    return f"{key}={value}"


def describe_differences(diffs: Sequence[Tuple[str, Any, Any]], found_word: str, expected_word: str) -> str:
    """The differences of :func:`metadata_differences` in words, e.g. ``seed=0 (file) vs seed=3 (dataset)``."""
    return ", ".join(
        f"{describe_value(k, a)} ({found_word}) vs {describe_value(k, b)} ({expected_word})" for k, a, b in diffs
    )


def read_sidecar(path: PathLike) -> Optional[Dict[str, Any]]:
    """The sidecar metadata of ``path``, or None when it has none."""
    side = sidecar_path(path)
    try:
        text = side.read_text()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StorageError(f"{side}: cannot be read ({err.strerror or err})") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as err:
        raise StorageError(f"{side}: not valid JSON ({err}); delete it and the file beside it, "
                           "then export again") from None
    if not isinstance(meta, dict):
        raise StorageError(f"{side}: expected a JSON object; delete it and export again")
    return meta
