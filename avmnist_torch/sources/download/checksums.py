"""Checks that files are the published sources, however they were packed or fetched.

FSDD: every recording's sha256 (GitHub regenerates release archives, so an archive's own hash is not
stable). ESC-50: its own csv (no hashes are published). MNIST: the md5 of the published ``.gz`` or of
the decompressed content.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import re
import zlib
from collections import Counter
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np
import pooch
import soundfile

from ...common import VerificationError
from ..mnist_idx import (MNIST_GZ_MD5, MNIST_IMAGE_FILES, MNIST_IMAGE_GZ_MD5, MNIST_IMAGE_RAW_MD5, MNIST_LABEL_COUNTS,
                         MNIST_LABEL_FILES, MNIST_RAW_MD5, idx_kind, is_gzip, labels_md5)
from .archives import listed
from .releases import ESC50_COLUMNS, ESC50_COUNT, ESC50_FRAMES, ESC50_RATE, FSDD_TAG

_MANIFEST = "data/fsdd_v1.0.10.sha256.txt"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def load_fsdd_manifest() -> dict[str, str]:
    """The sha256 of each of FSDD v1.0.10's 3,000 recordings by file name, from the shipped pooch registry.

    Raises
    ------
    RuntimeError
        If the shipped file is damaged (a line that is not a name and a sha256, a name twice).
    """
    text = resources.files("avmnist_torch").joinpath(_MANIFEST).read_text("ascii")
    manifest: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2 or not _SHA256.fullmatch(fields[1].lower()) or fields[0] in manifest:
            raise RuntimeError(f"avmnist_torch/{_MANIFEST}, line {number}: {line!r} is not a "
                               "new '<file name> <sha256>' entry (package damaged? reinstall it)")
        manifest[fields[0]] = fields[1].lower()
    return manifest


def check_fsdd(found: Mapping[str, str], manifest: Mapping[str, str]) -> list[str]:
    """Problems with recordings `found` (name -> sha256) against `manifest`; empty if none."""
    missing = sorted(set(manifest) - set(found))
    extra = sorted(set(found) - set(manifest))
    wrong = sorted(n for n in found if n in manifest and found[n] != manifest[n])
    problems = []
    if missing:
        problems.append(f"{len(missing)} recordings missing: {listed(missing)}")
    if extra:
        problems.append(f"{len(extra)} recordings not in FSDD {FSDD_TAG}: {listed(extra)}")
    if wrong:
        problems.append(f"{len(wrong)} recordings with the wrong content (sha256 differs): {listed(wrong)}")
    return problems


def verify_fsdd(recordings: str | Path, manifest: Mapping[str, str] | None = None) -> None:
    """Check a folder of FSDD recordings against `manifest` (file name to sha256; default FSDD v1.0.10's).

    Raises
    ------
    VerificationError
        Naming the missing, extra and altered recordings.
    """
    recordings = Path(recordings)
    manifest = load_fsdd_manifest() if manifest is None else manifest
    if not recordings.is_dir():
        raise VerificationError(f"{recordings}: not a folder", [f"{recordings} missing"])
    found = {p.name: pooch.file_hash(str(p), alg="sha256") for p in recordings.glob("*.wav") if p.is_file()}
    problems = check_fsdd(found, manifest)
    if problems:
        raise VerificationError(f"{recordings} is not FSDD {FSDD_TAG}:\n  " + "\n  ".join(problems), problems)


def verify_esc50(noise_root: str | Path, expected_count: int = ESC50_COUNT) -> None:
    """Check an ESC-50 folder against its ``meta/esc50.csv``: ESC-50's columns, `expected_count` rows with
    unique file names, each row's clip in ``audio/``, mono, 44.1 kHz and 5 s, and no other ``.wav`` there.

    Raises
    ------
    VerificationError
        Naming each problem and file.
    """
    noise_root = Path(noise_root)
    meta = noise_root / "meta" / "esc50.csv"
    audio = noise_root / "audio"
    if not meta.is_file():
        raise VerificationError(f"{meta}: missing", [f"{meta} missing"])
    with open(meta, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = tuple(reader.fieldnames or ())
        rows = list(reader)
    if columns != ESC50_COLUMNS:
        msg = f"{meta}: columns {list(columns)}, expected {list(ESC50_COLUMNS)}"
        raise VerificationError(f"ESC-50 check failed:\n  {msg}", [msg])
    problems: list[str] = []
    names = [r["filename"] for r in rows]
    if len(rows) != expected_count:
        problems.append(f"{meta}: {len(rows)} rows, expected {expected_count}")
    dupes = sorted(n for n, k in Counter(names).items() if k > 1)
    if dupes:
        problems.append(f"{meta}: file names listed twice: {listed(dupes)}")
    present = {p.name for p in audio.glob("*.wav")} if audio.is_dir() else set()
    missing = sorted(set(names) - present)
    if missing:
        problems.append(f"{len(missing)} clips in the csv missing from {audio}: {listed(missing)}")
    extra = sorted(present - set(names))
    if extra:
        problems.append(f"{len(extra)} clips in {audio} not in the csv: {listed(extra)}")
    bad = []
    for name in sorted(set(names) & present):
        try:
            info = soundfile.info(str(audio / name))
        except Exception as exc:  # soundfile raises its own LibsndfileError (a RuntimeError)
            bad.append(f"{name} (unreadable: {exc})")
            continue
        if (info.samplerate, info.channels, info.frames) != (ESC50_RATE, 1, ESC50_FRAMES):
            bad.append(f"{name} ({info.channels} ch, {info.samplerate} Hz, {info.frames} frames)")
    if bad:
        problems.append(f"{len(bad)} clips not mono 44.1 kHz 5 s (220,500 frames): {listed(bad)}")
    if problems:
        raise VerificationError(f"{noise_root} is not ESC-50:\n  " + "\n  ".join(problems), problems)


def verify_mnist_labels(path: str | Path, split: str) -> np.ndarray:
    """Load ``avmnist/{split}_labels.npy`` and return it if it is MNIST's label sequence, in order (the md5
    of its idx1 encoding is that of MNIST's decompressed label file).

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


_MNIST_TABLES = {"labels": (MNIST_LABEL_FILES, MNIST_GZ_MD5, MNIST_RAW_MD5),
                 "images": (MNIST_IMAGE_FILES, MNIST_IMAGE_GZ_MD5, MNIST_IMAGE_RAW_MD5)}


def check_mnist_file(path: Path, kind: str, split: str) -> None:
    """Accept MNIST's published `kind` file of `split`: the ``.gz`` by its md5, any copy by its content's.

    A ValueError names `path`, both checksums and, where its header shows it, what the file is instead.
    """
    name, gz_md5, raw_md5 = (table[split] for table in _MNIST_TABLES[kind])
    if pooch.file_hash(str(path), alg="md5") == gz_md5:
        return
    try:
        with (gzip.open if is_gzip(path) else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt gzip ({exc})") from exc
    if hashlib.md5(data).hexdigest() == raw_md5:
        return
    hint = f"; it is {idx_kind(data)}" if len(data) >= 4 else ""
    raise ValueError(f"{path}: md5 matches neither the published {name}.gz ({gz_md5}) nor its decompressed content "
                     f"({raw_md5}){hint}")


def verify_mnist_images(path: str | Path, split: str) -> Path:
    """Return `path` if it is MNIST's image file for `split`, gzip-compressed or not.

    Raises
    ------
    VerificationError
        If the file is missing, unreadable, or matches neither the published ``.gz``'s md5 nor
        the decompressed file's.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: missing"
        raise VerificationError(msg, [msg])
    try:
        check_mnist_file(path, "images", split)
    except ValueError as exc:
        raise VerificationError(f"not MNIST's {split} images: {exc}", [str(exc)]) from None
    return path
