"""Reading release archives (.tar.gz, .tar, .zip) member by member, without trusting their paths.

Not pooch's ``Untar``/``Unzip``: they write every member under its own path, and tarfile stops before
a gzip stream's CRC trailer. Here the caller names where each member it wants goes, and the gzip stream
is drained to its end so a flipped bit anywhere in the file is caught.
"""

from __future__ import annotations

import gzip
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

_CHUNK = 1 << 20

#: What the standard library's archive readers raise for a damaged or truncated archive.
CORRUPT_ARCHIVE = (ValueError, tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, gzip.BadGzipFile)


def iter_archive(path: Path) -> Iterator[tuple[PurePosixPath, IO[bytes]]]:
    """Yield (member path, readable file) for each regular file, streaming; the format is sniffed.

    A damaged or truncated archive raises one of `CORRUPT_ARCHIVE`, while iterating or where a member is read.
    """
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"PK\x03\x04" or zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                with zf.open(info) as member:
                    yield PurePosixPath(info.filename), member
    elif magic[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as gz:
            with tarfile.open(fileobj=gz, mode="r|") as tf:
                yield from _iter_tar(tf)
            while gz.read(_CHUNK):  # drain to EOF so gzip verifies CRC and length
                pass
    else:
        with tarfile.open(path, mode="r|*") as tf:
            yield from _iter_tar(tf)


def _iter_tar(tf: tarfile.TarFile) -> Iterator[tuple[PurePosixPath, IO[bytes]]]:
    for member in tf:
        if member.isfile():
            yield PurePosixPath(member.name), tf.extractfile(member)
