"""Download, verify and lay out the three inputs of AV-MNIST's audio modality.

One call (or ``avmnist-audio download --root DATA``) gives a data root in the notebook's layout
(SPEC.md, Inputs)::

    DATA/recordings/*.wav                      FSDD v1.0.10, 3,000 recordings
    DATA/noise_recordings/audio/*.wav          ESC-50, 2,000 clips
    DATA/noise_recordings/meta/esc50.csv
    DATA/avmnist/train_labels.npy              MNIST's labels, int64, 60,000
    DATA/avmnist/test_labels.npy               MNIST's labels, int64, 10,000

How it stays safe:

- Downloads stream to ``DATA/.downloads/<file>.part`` and resume with an HTTP ``Range``
  request, after a dropped connection within a run (a few retries) and across runs.
- Archives are extracted into a temporary folder inside ``DATA`` and moved into place with one
  rename only after every file verified, so an interrupted or rejected run never leaves a
  complete-looking tree.
- Verification does not depend on how an archive was packed: FSDD's recordings against a
  shipped manifest of their sha256, ESC-50 against its own csv (every clip present, mono,
  44.1 kHz, 5 s), MNIST's labels against the md5 of the published ``.gz`` or of its
  decompressed content.
- A verified part leaves a marker in ``DATA/.downloads`` so reruns are cheap; a part whose
  files are already in place (a manual copy) is verified in place and never downloaded.
- ``mirror`` (or the ``AVMNIST_MIRROR`` environment variable) replaces the scheme and host of
  every URL and keeps its path, for a proxy or a local copy of the sources.

Only the standard library talks HTTP (``urllib``).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import http.client
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit, urlunsplit
from urllib.request import Request, urlopen

import numpy as np

from ..common import DownloadError, VerificationError

from .mnist_idx import (
    MNIST_GZ_MD5,
    MNIST_LABEL_COUNTS,
    MNIST_LABEL_FILES,
    MNIST_RAW_MD5,
    labels_md5,
    read_idx_labels,
)

__all__ = [
    "SOURCES",
    "MIRROR_ENV",
    "FSDD_TAG",
    "FSDD_URL",
    "ESC50_COMMIT",
    "ESC50_URL",
    "MNIST_BASE_URLS",
    "DownloadError",
    "VerificationError",
    "download",
    "apply_mirror",
    "load_fsdd_manifest",
    "verify_fsdd",
    "verify_esc50",
    "verify_mnist_labels",
    "add_cli_parser",
]

SOURCES = ("fsdd", "esc50", "mnist")
MIRROR_ENV = "AVMNIST_MIRROR"

FSDD_TAG = "v1.0.10"
FSDD_URL = (
    "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/"
    f"{FSDD_TAG}.tar.gz"
)
FSDD_COUNT = 3000

# ESC-50's master branch moves, so an archive of a fixed commit is what makes a download
# reproducible. This commit's tree has audio/*.wav (2,000 clips) and meta/esc50.csv; the clips
# and csv have not changed since v2.0.0 (2017-12-13).
ESC50_COMMIT = "5983fb0c35e751b452e7c562d9207f27b76ddf0d"
ESC50_URL = f"https://github.com/karolpiczak/ESC-50/archive/{ESC50_COMMIT}.tar.gz"
ESC50_COUNT = 2000
ESC50_RATE = 44_100
ESC50_FRAMES = 5 * ESC50_RATE
ESC50_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")

#: The MNIST mirrors torchvision uses, tried in this order.
MNIST_BASE_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

_DOWNLOADS = ".downloads"
_TMP_PREFIX = ".avmnist-tmp-"
_USER_AGENT = "avmnist-torch (python urllib)"
_CHUNK = 1 << 20
# Seconds before the k-th retry of a dropped transfer is base * 2**k; a module constant so
# that tests can set it to 0.
_RETRY_BASE_S = 1.0
_MAX_LISTED = 10


class _Transient(Exception):
    """A transfer that may succeed if retried (dropped connection, short body, 5xx)."""


# --------------------------------------------------------------------------------------------
# URLs


def apply_mirror(url: str, mirror: str | None) -> str:
    """Replace a URL's scheme and host with a mirror's, keeping the URL's path.

    Parameters
    ----------
    url : str
        The original URL, e.g. ``https://ossci-datasets.s3.amazonaws.com/mnist/x.gz``.
    mirror : str or None
        ``scheme://host[:port][/prefix]``. A path prefix is put in front of the URL's path, so
        a local copy can live under a subfolder. None or empty returns `url` unchanged.

    Returns
    -------
    str

    Examples
    --------
    >>> apply_mirror("https://github.com/a/b/archive/v1.tar.gz", "http://127.0.0.1:8000")
    'http://127.0.0.1:8000/a/b/archive/v1.tar.gz'
    """
    if not mirror:
        return url
    m = urlsplit(mirror)
    if not m.scheme or not m.netloc:
        raise ValueError(
            f"mirror {mirror!r} must look like scheme://host[:port][/prefix], "
            "e.g. http://127.0.0.1:8000"
        )
    u = urlsplit(url)
    return urlunsplit((m.scheme, m.netloc, m.path.rstrip("/") + u.path, u.query, ""))


# --------------------------------------------------------------------------------------------
# HTTP with resume


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """Parse ``bytes START-END/TOTAL`` or ``bytes */TOTAL`` into (start, total)."""
    if not value or not value.startswith("bytes "):
        return None, None
    spec, _, total_s = value[6:].partition("/")
    total = int(total_s) if total_s.strip().isdigit() else None
    start_s = spec.split("-", 1)[0].strip()
    start = int(start_s) if start_s.isdigit() else None
    return start, total


def _fetch_once(url: str, part: Path, *, timeout: float, progress: bool, label: str) -> None:
    """One HTTP request appending to `part`; returns when the body is complete.

    Raises `_Transient` for a failure worth retrying (what arrived stays in `part`, so the
    retry resumes), `HTTPError`/`URLError` otherwise.
    """
    offset = part.stat().st_size if part.exists() else 0
    req = Request(url, headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    try:
        resp = urlopen(req, timeout=timeout)
    except HTTPError as exc:
        if exc.code == 416 and offset:
            # Our range starts at or past the end: either the part is already whole (a run
            # killed between the last byte and the rename) or it is longer than the file.
            _, total = _content_range(exc.headers.get("Content-Range"))
            exc.close()
            if total == offset:
                return
            part.unlink()
            raise _Transient(f"HTTP 416 for a resume at byte {offset}; restarting") from exc
        if exc.code >= 500:
            exc.close()
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        raise
    except (TimeoutError, ConnectionResetError, http.client.RemoteDisconnected) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc

    with resp:
        mode = "wb"
        if offset and resp.status == 206:
            start, _ = _content_range(resp.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise _Transient(
                    f"server resumed at byte {start}, asked for {offset}; restarting"
                )
            mode = "ab"
        else:
            offset = 0  # the server ignored Range and sends the whole file
        length = resp.headers.get("Content-Length")
        expected = offset + int(length) if length and length.isdigit() else None
        received = offset
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=expected, initial=offset, unit="B", unit_scale=True,
                       unit_divisor=1024, desc=label, leave=False)
        try:
            with open(part, mode) as f:
                while True:
                    try:
                        chunk = resp.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _Transient(
                            f"connection lost after {received} bytes ({type(exc).__name__}: {exc})"
                        ) from exc
                    if not chunk:
                        break
                    f.write(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        if expected is not None and received != expected:
            raise _Transient(
                f"connection closed after {received} of {expected} bytes"
            )


def _fetch(urls: Sequence[str], dest: Path, *, retries: int, timeout: float, progress: bool,
           label: str) -> str:
    """Download the first URL that works to `dest` (via ``dest.part``); return that URL.

    Each URL gets ``1 + retries`` attempts for transient failures, each resuming where the
    last stopped; a 4xx answer or an unreachable host moves on to the next URL at once.
    """
    part = dest.with_name(dest.name + ".part")
    attempts: list[str] = []
    for url in urls:
        for attempt in range(retries + 1):
            try:
                _fetch_once(url, part, timeout=timeout, progress=progress, label=label)
            except _Transient as exc:
                if attempt == retries:
                    attempts.append(f"{url}: {exc} (gave up after {retries + 1} attempts; "
                                    f"{_size(part)} kept in {part} for the next run to resume)")
                    break
                time.sleep(_RETRY_BASE_S * 2**attempt)
                continue
            except HTTPError as exc:
                attempts.append(f"{url}: HTTP {exc.code} {exc.reason}")
                exc.close()
                break
            except URLError as exc:
                attempts.append(f"{url}: unreachable ({exc.reason})")
                break
            except OSError as exc:
                attempts.append(f"{url}: {type(exc).__name__}: {exc}")
                break
            os.replace(part, dest)
            return url
    raise _FetchFailed(attempts)


class _FetchFailed(Exception):
    def __init__(self, attempts: list[str]):
        super().__init__("; ".join(attempts))
        self.attempts = attempts


def _size(path: Path) -> str:
    n = path.stat().st_size if path.exists() else 0
    return f"{n:,} bytes"


# --------------------------------------------------------------------------------------------
# Archives


_CORRUPT_ARCHIVE = (
    ValueError, tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, gzip.BadGzipFile
)


def _iter_archive(path: Path) -> Iterator[tuple[PurePosixPath, IO[bytes]]]:
    """Yield (member path, readable file) for each regular file, streaming.

    Raises ValueError if the archive is unreadable (corrupt, truncated, not an archive).
    gzip's CRC is checked by reading the compressed stream to its end after the last member,
    so a flipped bit anywhere in a .tar.gz is caught even in files no check looks at.
    """
    with open(path, "rb") as f:
        magic = f.read(4)
    try:
        if magic[:4] == b"PK\x03\x04" or zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if info.is_dir():
                        continue
                    with zf.open(info) as member:  # zipfile checks each member's CRC
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
    except _CORRUPT_ARCHIVE as exc:
        raise ValueError(f"{path}: unreadable archive ({type(exc).__name__}: {exc})") from exc


def _iter_tar(tf: tarfile.TarFile) -> Iterator[tuple[PurePosixPath, IO[bytes]]]:
    for member in tf:
        if not member.isfile():
            continue
        fobj = tf.extractfile(member)
        if fobj is not None:
            yield PurePosixPath(member.name), fobj


def _copy(src: IO[bytes], dest: Path, digest: "hashlib._Hash | None" = None) -> None:
    with open(dest, "wb") as out:
        while True:
            block = src.read(_CHUNK)
            if not block:
                break
            out.write(block)
            if digest is not None:
                digest.update(block)


def _listed(names: Sequence[str]) -> str:
    names = list(names)
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else "")


# --------------------------------------------------------------------------------------------
# Verification


def load_fsdd_manifest() -> dict[str, str]:
    """The sha256 of each of FSDD v1.0.10's 3,000 recordings, by file name.

    Returns
    -------
    dict of str to str
        ``{"0_george_0.wav": "228ab6...", ...}``; shipped as
        ``avmnist_torch/data/fsdd_sha256.csv`` (made by ``scripts/make_fsdd_manifest.py``).
    """
    text = resources.files("avmnist_torch").joinpath("data/fsdd_sha256.csv").read_text("ascii")
    rows = list(csv.reader(text.splitlines()))
    if not rows or rows[0] != ["filename", "sha256"]:
        raise RuntimeError("avmnist_torch/data/fsdd_sha256.csv: bad header (package damaged?)")
    return {name: digest for name, digest in rows[1:]}


def _check_fsdd(found: Mapping[str, str], manifest: Mapping[str, str]) -> list[str]:
    """Problems with recordings `found` (name -> sha256) against `manifest`."""
    missing = sorted(set(manifest) - set(found))
    extra = sorted(set(found) - set(manifest))
    wrong = sorted(n for n in found if n in manifest and found[n] != manifest[n])
    problems = []
    if missing:
        problems.append(f"{len(missing)} recordings missing: {_listed(missing)}")
    if extra:
        problems.append(f"{len(extra)} recordings not in FSDD {FSDD_TAG}: {_listed(extra)}")
    if wrong:
        problems.append(f"{len(wrong)} recordings with the wrong content (sha256 differs): "
                        f"{_listed(wrong)}")
    return problems


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify_fsdd(recordings: str | Path, manifest: Mapping[str, str] | None = None) -> None:
    """Check a folder of FSDD recordings against the sha256 manifest.

    Parameters
    ----------
    recordings : str or Path
        The folder holding ``{digit}_{speaker}_{take}.wav``.
    manifest : mapping of str to str, optional
        File name to sha256; default :func:`load_fsdd_manifest` (FSDD v1.0.10).

    Raises
    ------
    VerificationError
        Naming the missing, extra and altered recordings.
    """
    recordings = Path(recordings)
    manifest = load_fsdd_manifest() if manifest is None else manifest
    if not recordings.is_dir():
        raise VerificationError(f"{recordings}: not a folder", [f"{recordings} missing"])
    found = {p.name: _hash_file(p) for p in recordings.glob("*.wav") if p.is_file()}
    problems = _check_fsdd(found, manifest)
    if problems:
        raise VerificationError(
            f"{recordings} is not FSDD {FSDD_TAG}:\n  " + "\n  ".join(problems), problems
        )


def verify_esc50(noise_root: str | Path, expected_count: int = ESC50_COUNT) -> None:
    """Check an ESC-50 folder (``audio/`` and ``meta/esc50.csv``) against its csv.

    Every row's clip must be present in ``audio/`` and be mono, 44.1 kHz and exactly 5 s
    (220,500 frames); the csv must have ESC-50's columns and `expected_count` rows with unique
    file names, and ``audio/`` must hold no other ``.wav``.

    Parameters
    ----------
    noise_root : str or Path
        The folder holding ``audio/`` and ``meta/`` (``DATA/noise_recordings``).
    expected_count : int, default 2000
        Rows and clips expected; the real ESC-50 has 2,000.

    Raises
    ------
    VerificationError
        Naming each problem and file.
    """
    import soundfile  # imported here so that the rest of the module needs only numpy

    noise_root = Path(noise_root)
    meta = noise_root / "meta" / "esc50.csv"
    audio = noise_root / "audio"
    if not meta.is_file():
        raise VerificationError(f"{meta}: missing", [f"{meta} missing"])
    with open(meta, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = tuple(reader.fieldnames or ())
        rows = list(reader)
    problems: list[str] = []
    if columns != ESC50_COLUMNS:
        problems.append(f"{meta}: columns {list(columns)}, expected {list(ESC50_COLUMNS)}")
        raise VerificationError("ESC-50 check failed:\n  " + "\n  ".join(problems), problems)
    names = [r["filename"] for r in rows]
    if len(rows) != expected_count:
        problems.append(f"{meta}: {len(rows)} rows, expected {expected_count}")
    dupes = sorted({n for n in names if names.count(n) > 1}) if len(set(names)) != len(names) else []
    if dupes:
        problems.append(f"{meta}: file names listed twice: {_listed(dupes)}")
    present = {p.name for p in audio.glob("*.wav")} if audio.is_dir() else set()
    missing = sorted(set(names) - present)
    if missing:
        problems.append(f"{len(missing)} clips in the csv missing from {audio}: {_listed(missing)}")
    extra = sorted(present - set(names))
    if extra:
        problems.append(f"{len(extra)} clips in {audio} not in the csv: {_listed(extra)}")
    bad = []
    for name in sorted(set(names) & present):
        path = audio / name
        try:
            info = soundfile.info(str(path))
        except Exception as exc:  # soundfile raises its own LibsndfileError (a RuntimeError)
            bad.append(f"{name} (unreadable: {exc})")
            continue
        if (info.samplerate, info.channels, info.frames) != (ESC50_RATE, 1, ESC50_FRAMES):
            bad.append(f"{name} ({info.channels} ch, {info.samplerate} Hz, {info.frames} frames)")
    if bad:
        problems.append(f"{len(bad)} clips not mono 44.1 kHz 5 s (220,500 frames): {_listed(bad)}")
    if problems:
        raise VerificationError(
            f"{noise_root} is not ESC-50:\n  " + "\n  ".join(problems), problems
        )


def verify_mnist_labels(path: str | Path, split: str) -> np.ndarray:
    """Load ``avmnist/{split}_labels.npy`` and check it is MNIST's label sequence.

    The check encodes the array as an idx1 file and compares its md5 with that of MNIST's
    decompressed label file, so it verifies order as well as values.

    Returns
    -------
    numpy.ndarray
        The labels (int64).

    Raises
    ------
    VerificationError
        If the file is unreadable or is not MNIST's labels for `split`.
    """
    path = Path(path)
    try:
        labels = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise VerificationError(f"{path}: unreadable ({exc})", [f"{path} unreadable"]) from exc
    n = MNIST_LABEL_COUNTS[split]
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        msg = f"{path}: shape {labels.shape} dtype {labels.dtype}, expected ({n},) integers"
        raise VerificationError(msg, [msg])
    if labels_md5(labels) != MNIST_RAW_MD5[split]:
        msg = f"{path}: not MNIST's {split} label sequence (md5 of its idx1 encoding differs)"
        raise VerificationError(msg, [msg])
    return labels


def _check_mnist_file(path: Path, split: str) -> None:
    """Accept the published .gz (by its md5) or any copy whose decompressed md5 matches."""
    data = path.read_bytes()
    if hashlib.md5(data).hexdigest() == MNIST_GZ_MD5[split]:
        return
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: corrupt gzip ({exc})") from exc
    if hashlib.md5(data).hexdigest() != MNIST_RAW_MD5[split]:
        raise ValueError(
            f"{path}: md5 matches neither the published {MNIST_LABEL_FILES[split]}.gz "
            f"({MNIST_GZ_MD5[split]}) nor its decompressed content ({MNIST_RAW_MD5[split]})"
        )


# --------------------------------------------------------------------------------------------
# Parts


@dataclass
class _Ctx:
    root: Path
    mirror: str | None
    retries: int
    timeout: float
    progress: bool
    keep_archives: bool
    fsdd_manifest: Mapping[str, str] | None
    esc50_expected: int

    @property
    def downloads(self) -> Path:
        return self.root / _DOWNLOADS

    def say(self, msg: str) -> None:
        if self.progress:
            print(msg, file=sys.stderr, flush=True)


def _marker(ctx: _Ctx, name: str) -> Path:
    return ctx.downloads / f"{name}.verified"


def _marker_ok(ctx: _Ctx, name: str, folder: Path) -> bool:
    """A marker counts only while the folder still holds the number of files it recorded."""
    marker = _marker(ctx, name)
    if not marker.is_file() or not folder.is_dir():
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return sum(1 for _ in folder.glob("*.wav")) == info.get("files")


def _write_marker(ctx: _Ctx, name: str, files: int, source: str) -> None:
    ctx.downloads.mkdir(parents=True, exist_ok=True)
    _marker(ctx, name).write_text(json.dumps({"files": files, "source": source}) + "\n")


def _manual_hint(ctx: _Ctx, dest: Path, originals: Sequence[str], also: str = "") -> str:
    lines = [f"To install by hand, download {' or '.join(originals)}",
             f"  and save it as {dest}, then run the same command again"
             " (a complete file there is used without downloading)."]
    if also:
        lines.append(also)
    return "\n".join(lines)


def _get_archive(ctx: _Ctx, title: str, dest: Path, url: str, also: str) -> tuple[Path, str]:
    """Return (archive path, where it came from), downloading unless a copy is there.

    A manual copy may be the .tar.gz or GitHub's .zip of the same tree under the same stem;
    the format is sniffed from the content.
    """
    zip_copy = dest.with_name(dest.name.removesuffix(".tar.gz") + ".zip")
    for local in (dest, zip_copy):
        if local.is_file():
            return local, f"local file {local}"
    mirrored = apply_mirror(url, ctx.mirror)
    ctx.say(f"{title}: downloading {mirrored}")
    try:
        used = _fetch([mirrored], dest, retries=ctx.retries, timeout=ctx.timeout,
                      progress=ctx.progress, label=dest.name)
    except _FetchFailed as exc:
        raise DownloadError(
            f"{title}: download failed.\n  " + "\n  ".join(exc.attempts) + "\n"
            + _manual_hint(ctx, dest, [url], also)
        ) from None
    return dest, used


def _reject(path: Path) -> Path:
    """Move a rejected download aside so that the next run fetches it again."""
    rejected = path.with_name(path.name + ".rejected")
    os.replace(path, rejected)
    return rejected


def _extract_and_install(
    ctx: _Ctx,
    title: str,
    archive: Path,
    origin: str,
    pick: Callable[[PurePosixPath], str | None],
    verify: Callable[[Path, dict[str, str]], None],
    target: Path,
) -> None:
    """Extract the members `pick` selects into a temp tree, verify it, rename it to `target`.

    `pick` maps a member path to a path relative to the temp tree (or None to skip); the temp
    tree's top-level folder named like `target` is what gets renamed into place.
    """
    tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX + target.name + "-", dir=ctx.root))
    try:
        hashes: dict[str, str] = {}
        try:
            for member, fobj in _iter_archive(archive):
                rel = pick(member)
                if rel is None:
                    continue
                out = tmp / rel
                if out.exists():
                    raise ValueError(f"{archive}: holds {out.name} twice (again as {member})")
                out.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                _copy(fobj, out, digest)
                hashes[out.name] = digest.hexdigest()
        except _CORRUPT_ARCHIVE as exc:
            # Reading a member's content happens here, outside _iter_archive, so the archive
            # library's own errors for a damaged stream arrive here unwrapped.
            if not isinstance(exc, ValueError):
                exc = f"{archive}: unreadable archive ({type(exc).__name__}: {exc})"
            rejected = _reject(archive)
            raise DownloadError(
                f"{title}: {exc} (from {origin}); moved to {rejected}. "
                "Run again to download it afresh."
            ) from None
        try:
            verify(tmp / target.name, hashes)
        except VerificationError as exc:
            rejected = _reject(archive)
            raise VerificationError(
                f"{title}: {archive.name} (from {origin}) failed verification and was moved "
                f"to {rejected}; nothing was installed.\n  " + "\n  ".join(exc.problems),
                exc.problems,
            ) from None
        os.rename(tmp / target.name, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _already_in_place(ctx: _Ctx, name: str, title: str, target: Path, marked: Path, count: int,
                      check: Callable[[], None]) -> bool:
    """True when ``target`` is already verified (marker) or verifies in place (a manual copy).

    A folder that exists but does not verify is an error: it is never overwritten.
    """
    if _marker_ok(ctx, name, marked):
        ctx.say(f"{title}: {target} already verified")
        return True
    if not target.exists():
        return False
    try:
        check()
    except VerificationError as exc:
        raise VerificationError(
            f"{title}: {target} exists but does not verify; move it away (or fix it) and "
            "run again.\n  " + "\n  ".join(exc.problems), exc.problems
        ) from None
    _write_marker(ctx, name, count, f"verified in place: {target}")
    ctx.say(f"{title}: existing {target} verified")
    return True


def _install_archive(ctx: _Ctx, name: str, title: str, archive: Path, origin: str,
                     pick: Callable[[PurePosixPath], str | None], verify: Callable[[Path, dict[str, str]], None],
                     target: Path, count: int) -> None:
    _extract_and_install(ctx, title, archive, origin, pick, verify, target)
    _write_marker(ctx, name, count, origin)
    if not ctx.keep_archives:
        archive.unlink(missing_ok=True)
    ctx.say(f"{title}: installed {target}")


def _install_fsdd(ctx: _Ctx) -> None:
    title = f"FSDD {FSDD_TAG}"
    target = ctx.root / "recordings"
    manifest = load_fsdd_manifest() if ctx.fsdd_manifest is None else ctx.fsdd_manifest
    if _already_in_place(ctx, "fsdd", title, target, target, len(manifest), lambda: verify_fsdd(target, manifest)):
        return

    dest = ctx.downloads / f"free-spoken-digit-dataset-{FSDD_TAG.lstrip('v')}.tar.gz"
    also = (f"Or put the {len(manifest):,} recordings themselves in {target}/ "
            "(they are checked against the shipped sha256 manifest).")
    archive, origin = _get_archive(ctx, title, dest, FSDD_URL, also)

    def pick(member: PurePosixPath) -> str | None:
        # Any top folder: GitHub names it free-spoken-digit-dataset-1.0.10/, a repacked copy
        # may not.
        if member.suffix == ".wav" and member.parent.name == "recordings":
            return f"recordings/{member.name}"
        return None

    def verify(folder: Path, hashes: dict[str, str]) -> None:
        problems = _check_fsdd(hashes, manifest)
        if problems:
            raise VerificationError("FSDD check failed", problems)

    ctx.say(f"{title}: extracting and verifying")
    _install_archive(ctx, "fsdd", title, archive, origin, pick, verify, target, len(manifest))


def _install_esc50(ctx: _Ctx) -> None:
    title = f"ESC-50 ({ESC50_COMMIT[:7]})"
    target = ctx.root / "noise_recordings"
    if _already_in_place(ctx, "esc50", title, target, target / "audio", ctx.esc50_expected,
                         lambda: verify_esc50(target, ctx.esc50_expected)):
        return

    dest = ctx.downloads / f"ESC-50-{ESC50_COMMIT}.tar.gz"
    also = (f"Or put ESC-50's audio/ and meta/esc50.csv in {target}/ "
            "(every clip in the csv must be there, mono, 44.1 kHz, 5 s).")
    archive, origin = _get_archive(ctx, title, dest, ESC50_URL, also)

    def pick(member: PurePosixPath) -> str | None:
        if member.suffix == ".wav" and member.parent.name == "audio":
            return f"noise_recordings/audio/{member.name}"
        if member.name == "esc50.csv" and member.parent.name == "meta":
            return "noise_recordings/meta/esc50.csv"
        return None

    def verify(folder: Path, hashes: dict[str, str]) -> None:
        verify_esc50(folder, ctx.esc50_expected)

    ctx.say(f"{title}: extracting and verifying (about 900 MB on disk)")
    _install_archive(ctx, "esc50", title, archive, origin, pick, verify, target, ctx.esc50_expected)


def _install_mnist(ctx: _Ctx) -> None:
    out_dir = ctx.root / "avmnist"
    todo = []
    for split in ("train", "test"):
        target = out_dir / f"{split}_labels.npy"
        if target.exists():
            try:
                verify_mnist_labels(target, split)
            except VerificationError as exc:
                raise VerificationError(
                    f"MNIST labels: {target} exists but is not MNIST's {split} labels; move it "
                    f"away and run again.\n  {exc}", exc.problems
                ) from None
            ctx.say(f"MNIST labels: {target} already verified")
        else:
            todo.append(split)
    if not todo:
        return

    errors = []
    fetched: list[tuple[str, Path, str]] = []
    for split in todo:
        fname = MNIST_LABEL_FILES[split] + ".gz"
        dest = ctx.downloads / fname
        originals = [base + fname for base in MNIST_BASE_URLS]
        local = next((p for p in (dest, dest.with_suffix("")) if p.is_file()), None)
        if local is not None:  # a manual copy, .gz or decompressed
            fetched.append((split, local, f"local file {local}"))
            continue
        urls = [apply_mirror(u, ctx.mirror) for u in originals]
        ctx.say(f"MNIST labels: downloading {fname}")
        try:
            used = _fetch(urls, dest, retries=ctx.retries, timeout=ctx.timeout,
                          progress=ctx.progress, label=fname)
        except _FetchFailed as exc:
            errors.append(f"MNIST {split} labels: download failed.\n  "
                          + "\n  ".join(exc.attempts) + "\n" + _manual_hint(ctx, dest, originals))
            continue
        fetched.append((split, dest, used))

    for split, path, origin in fetched:
        try:
            _check_mnist_file(path, split)
            labels = read_idx_labels(path)
        except ValueError as exc:
            rejected = _reject(path)
            errors.append(f"MNIST {split} labels: {exc} (from {origin}); moved to {rejected}. "
                          "Run again to download it afresh.")
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"{split}_labels.npy"
        # Write beside the target, then rename: a killed run leaves no half-written .npy.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{split}_labels.", suffix=".tmp", dir=out_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, labels.astype(np.int64))
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        if not ctx.keep_archives:
            path.unlink(missing_ok=True)
        ctx.say(f"MNIST labels: wrote {target} ({labels.size:,} labels)")
    if errors:
        raise DownloadError("\n".join(errors))


_INSTALLERS = {"fsdd": _install_fsdd, "esc50": _install_esc50, "mnist": _install_mnist}


def download(
    root: str | os.PathLike[str],
    *,
    sources: Sequence[str] = SOURCES,
    mirror: str | None = None,
    progress: bool = True,
    retries: int = 3,
    timeout: float = 60.0,
    keep_archives: bool = False,
    fsdd_manifest: Mapping[str, str] | None = None,
    esc50_expected: int = ESC50_COUNT,
) -> Path:
    """Download, verify and lay out FSDD, ESC-50 and MNIST's labels under `root`.

    Idempotent: a part already verified (marker in ``root/.downloads``) is skipped, a part
    whose files are already in place is verified in place, and a complete archive already in
    ``root/.downloads`` is used without downloading. Each part is attempted even if another
    fails; the error raised at the end names every failure.

    Parameters
    ----------
    root : path-like
        The data root; created if missing.
    sources : sequence of {"fsdd", "esc50", "mnist"}
        The parts to get, default all three.
    mirror : str, optional
        ``scheme://host[:port][/prefix]`` replacing the scheme and host of every URL (paths
        kept). Default: the ``AVMNIST_MIRROR`` environment variable, else the real hosts.
    progress : bool, default True
        Print progress to stderr.
    retries : int, default 3
        Extra attempts per URL after a dropped connection or a 5xx answer; each resumes with
        an HTTP Range request.
    timeout : float, default 60
        Socket timeout in seconds.
    keep_archives : bool, default False
        Keep the downloaded archives in ``root/.downloads`` after installing.
    fsdd_manifest : mapping of str to str, optional
        Recording name to sha256; default the shipped manifest of FSDD v1.0.10. For a
        different FSDD release, or for tests.
    esc50_expected : int, default 2000
        Number of ESC-50 clips the csv must list; for tests on a small copy.

    Returns
    -------
    Path
        `root`, absolute.

    Raises
    ------
    DownloadError
        Naming each URL tried, the reason, and where to put a manual copy.
    VerificationError
        (a DownloadError) when files arrived or were present but are not the right ones,
        naming them; nothing unverified is ever moved into place.
    ValueError
        For an unknown source name or a malformed mirror.
    """
    unknown = [s for s in sources if s not in _INSTALLERS]
    if unknown:
        raise ValueError(f"unknown source(s) {unknown}; choose from {list(SOURCES)}")
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    if mirror:
        apply_mirror("http://x/", mirror)  # fail fast on a malformed mirror
    root = Path(root).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    ctx = _Ctx(root, mirror, retries, timeout, progress, keep_archives, fsdd_manifest,
               esc50_expected)
    ctx.downloads.mkdir(exist_ok=True)
    # Temp trees left by a killed run are ours and never complete; clear them so they do not
    # pile up (about 900 MB each for ESC-50).
    for stale in root.glob(_TMP_PREFIX + "*"):
        shutil.rmtree(stale, ignore_errors=True)

    failures: list[DownloadError] = []
    for name in dict.fromkeys(sources):  # keep order, drop repeats
        try:
            _INSTALLERS[name](ctx)
        except DownloadError as exc:
            failures.append(exc)
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise DownloadError("\n\n".join(str(e) for e in failures))
    return root


# --------------------------------------------------------------------------------------------
# CLI


def add_cli_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``download`` subcommand on an argparse subparsers object.

    Parameters
    ----------
    subparsers
        What ``ArgumentParser.add_subparsers()`` returned.

    Returns
    -------
    argparse.ArgumentParser
        The subcommand's parser; its ``func`` default is the handler returning an exit code.
    """
    p = subparsers.add_parser(
        "download",
        help="download and verify FSDD, ESC-50 and MNIST's labels into the notebook's layout",
        description=(
            "Download FSDD v1.0.10, ESC-50 (a pinned commit) and MNIST's labels, verify "
            "them, and lay them out under ROOT as recordings/, noise_recordings/ and "
            "avmnist/{train,test}_labels.npy. Reruns skip what is already verified; partial "
            "downloads resume."
        ),
    )
    p.add_argument("--root", required=True, type=Path, help="data root to fill")
    p.add_argument(
        "--mirror",
        default=None,
        help=f"scheme://host[:port][/prefix] replacing the host of every URL, paths kept "
             f"(default: ${MIRROR_ENV}, else the original hosts)",
    )
    p.add_argument("--only", action="append", choices=SOURCES, default=None,
                   help="get only this part (repeatable); default all")
    p.add_argument("--keep-archives", action="store_true",
                   help="keep the downloaded archives in ROOT/.downloads")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cli_download)
    return p


def _cli_download(args: argparse.Namespace) -> int:
    try:
        root = download(
            args.root,
            sources=tuple(args.only) if args.only else SOURCES,
            mirror=args.mirror,
            progress=not args.quiet,
            keep_archives=args.keep_archives,
        )
    except ValueError as exc:
        print(f"avmnist-audio download: {exc}", file=sys.stderr)
        return 2
    except DownloadError as exc:
        print(f"avmnist-audio download failed:\n{exc}", file=sys.stderr)
        return 1
    print(f"data ready under {root}")
    return 0
