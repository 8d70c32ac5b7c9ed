"""Reading release archives (.tar.gz, .tar, .zip) member by member, without trusting their paths.

Why not pooch's ``Untar``/``Unzip`` processors: they extract every member to disk under the
member's own path and hand back a file list, and a gzip stream's CRC trailer is never read when
tarfile stops at the end-of-archive blocks. Here the archive is streamed once: the caller picks
the members it wants and names where each goes (a member's path never becomes a path on disk),
hashes each while copying it (the FSDD manifest check needs those hashes), and the gzip stream is
drained to its end so a flipped bit anywhere in the file is caught, even in a member no other
check looks at.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import IO

__all__ = ["CORRUPT_ARCHIVE", "iter_archive", "copy_stream", "listed"]

_CHUNK = 1 << 20
_MAX_LISTED = 10

#: What the standard library's archive readers raise for a damaged or truncated archive.
CORRUPT_ARCHIVE = (
    ValueError, tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, gzip.BadGzipFile
)


def iter_archive(path: Path) -> Iterator[tuple[PurePosixPath, IO[bytes]]]:
    """Yield (member path, readable file) for each regular file, streaming.

    The format is sniffed from the content (a manual copy may be GitHub's ``.zip`` of the same
    tree). zipfile checks each member's CRC; for gzip the stream is read to its end after the
    last member so that its CRC and length trailer are checked too.

    Raises
    ------
    ValueError
        If the archive is unreadable (corrupt, truncated, not an archive), naming `path`.
        A member's content is read by the caller, so errors in it arrive there as one of
        `CORRUPT_ARCHIVE`.
    """
    with open(path, "rb") as f:
        magic = f.read(4)
    try:
        if magic[:4] == b"PK\x03\x04" or zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if info.is_dir():
                        continue
                    with zf.open(info) as member:
                        yield PurePosixPath(info.filename), member
            return
        if magic[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as gz:
                with tarfile.open(fileobj=gz, mode="r|") as tf:
                    yield from _iter_tar(tf)
                while gz.read(_CHUNK):  # drain to EOF so gzip verifies CRC and length
                    pass
            return
        with tarfile.open(path, mode="r|*") as tf:
            yield from _iter_tar(tf)
    except CORRUPT_ARCHIVE as exc:
        raise ValueError(f"{path}: unreadable archive ({type(exc).__name__}: {exc})") from exc


def _iter_tar(tf: tarfile.TarFile) -> Iterator[tuple[PurePosixPath, IO[bytes]]]:
    for member in tf:
        if not member.isfile():
            continue
        fobj = tf.extractfile(member)
        if fobj is not None:
            yield PurePosixPath(member.name), fobj


def copy_stream(src: IO[bytes], dest: Path, digest: "hashlib._Hash | None" = None) -> None:
    """Copy `src` to a new file `dest`, feeding `digest` (if given) with every block."""
    with open(dest, "wb") as out:
        while True:
            block = src.read(_CHUNK)
            if not block:
                break
            out.write(block)
            if digest is not None:
                digest.update(block)


def listed(names: Sequence[str]) -> str:
    """The first few `names`, comma-separated, with how many more there are."""
    names = list(names)
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else "")
