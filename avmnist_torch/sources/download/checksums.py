"""Checks that files are the published sources, however they were packed or fetched.

FSDD: every recording's sha256 (GitHub regenerates release archives, so an archive's own hash is not
stable). ESC-50: its own csv (no hashes are published). MNIST: the md5 of the published ``.gz`` or of
the decompressed content.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import pooch
import soundfile

from ...common import VerificationError
from ..mnist_idx import (MNIST_GZ_MD5, MNIST_IMAGE_FILES, MNIST_IMAGE_GZ_MD5, MNIST_IMAGE_RAW_MD5, MNIST_LABEL_COUNTS,
                         MNIST_LABEL_FILES, MNIST_RAW_MD5, content_md5, idx_kind, is_gzip, labels_md5)
from .releases import ESC50_COLUMNS, ESC50_COUNT, ESC50_FRAMES, ESC50_RATE, FSDD_TAG

_MANIFEST = "data/fsdd_v1.0.10.sha256.txt"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_LISTED = 10


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
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 2 or not _SHA256.fullmatch(fields[1].lower()) or fields[0] in manifest:
            raise RuntimeError(f"avmnist_torch/{_MANIFEST}, line {number}: {line!r} is not a "
                               "new '<file name> <sha256>' entry (package damaged? reinstall it)")
        manifest[fields[0]] = fields[1].lower()
    return manifest


def _named(names: Sequence[str], what: str) -> list[str]:
    """One problem naming the first few `names` and how many there are; none when there are none."""
    if not names:
        return []
    more = f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else ""
    return [f"{len(names)} {what}: " + ", ".join(names[:_MAX_LISTED]) + more]


def failure(what: str, problems: Sequence[str]) -> VerificationError:
    """A VerificationError saying `what`, then listing `problems`, one indented line each."""
    return VerificationError(f"{what}:\n  " + "\n  ".join(problems), problems)


def verify_fsdd(recordings: str | Path, manifest: Mapping[str, str] | None = None) -> None:
    """Check a folder of FSDD recordings against `manifest` (file name to sha256; default FSDD v1.0.10's).

    Raises
    ------
    VerificationError
        Naming the missing, extra and altered recordings.
    """
    recordings = Path(recordings)
    manifest = load_fsdd_manifest() if manifest is None else manifest
    what = f"{recordings} is not FSDD {FSDD_TAG}"
    if not recordings.is_dir():
        raise failure(what, [f"{recordings}: not a folder"])
    found = {p.name: pooch.file_hash(str(p), alg="sha256") for p in recordings.glob("*.wav") if p.is_file()}
    problems = (_named(sorted(set(manifest) - set(found)), "recordings missing")
                + _named(sorted(set(found) - set(manifest)), f"recordings not in FSDD {FSDD_TAG}")
                + _named(sorted(n for n in found if n in manifest and found[n] != manifest[n]),
                         "recordings with the wrong content (sha256 differs)"))
    if problems:
        raise failure(what, problems)


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
    what = f"{noise_root} is not ESC-50"
    if not meta.is_file():
        raise failure(what, [f"{meta}: missing"])
    with open(meta, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = tuple(reader.fieldnames or ())
        rows = list(reader)
    if columns != ESC50_COLUMNS:
        raise failure(what, [f"{meta}: columns {list(columns)}, expected {list(ESC50_COLUMNS)}"])
    names = [r["filename"] for r in rows]
    present = {p.name for p in audio.glob("*.wav")} if audio.is_dir() else set()
    bad = []
    for name in sorted(set(names) & present):
        try:
            info = soundfile.info(str(audio / name))
        except Exception as exc:  # soundfile raises its own LibsndfileError (a RuntimeError)
            bad.append(f"{name} (unreadable: {exc})")
            continue
        if (info.samplerate, info.channels, info.frames) != (ESC50_RATE, 1, ESC50_FRAMES):
            bad.append(f"{name} ({info.channels} ch, {info.samplerate} Hz, {info.frames} frames)")
    problems = ([f"{meta}: {len(rows)} rows, expected {expected_count}"] if len(rows) != expected_count else [])
    problems += (_named(sorted(n for n, k in Counter(names).items() if k > 1), f"file names listed twice in {meta}")
                 + _named(sorted(set(names) - present), f"clips in the csv missing from {audio}")
                 + _named(sorted(present - set(names)), f"clips in {audio} not in the csv")
                 + _named(bad, "clips not mono 44.1 kHz 5 s (220,500 frames)"))
    if problems:
        raise failure(what, problems)


def verify_mnist_labels(path: str | Path, split: str) -> np.ndarray:
    """Load ``avmnist/{split}_labels.npy`` and return it if it is MNIST's label sequence, in order (the md5
    of its idx1 encoding is that of MNIST's decompressed label file).

    Raises
    ------
    VerificationError
        If the file is unreadable or is not MNIST's labels for `split`.
    """
    path = Path(path)
    what = f"not MNIST's {split} labels"
    try:
        labels = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise failure(what, [f"{path}: unreadable ({exc})"]) from exc
    n = MNIST_LABEL_COUNTS[split]
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise failure(what, [f"{path}: shape {labels.shape} dtype {labels.dtype}, expected ({n},) integers"])
    if labels_md5(labels) != MNIST_RAW_MD5[split]:
        raise failure(what, [f"{path}: not MNIST's {split} label sequence (md5 of its idx1 encoding differs)"])
    return labels


_MNIST_TABLES = {"labels": (MNIST_LABEL_FILES, MNIST_GZ_MD5, MNIST_RAW_MD5),
                 "images": (MNIST_IMAGE_FILES, MNIST_IMAGE_GZ_MD5, MNIST_IMAGE_RAW_MD5)}


def check_mnist_file(path: Path, kind: str, split: str) -> None:
    """Accept MNIST's published `kind` file of `split`: the ``.gz`` by its md5, any copy by its content's.

    A ValueError names `path`, both checksums and, where its header shows it, what the file is instead.
    """
    name, gz_md5, raw_md5 = (table[split] for table in _MNIST_TABLES[kind])
    if pooch.file_hash(str(path), alg="md5") == gz_md5 or content_md5(path) == raw_md5:
        return
    with (gzip.open if is_gzip(path) else open)(path, "rb") as f:
        head = f.read(4)
    hint = f"; it is {idx_kind(head)}" if len(head) == 4 else ""
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
    what = f"not MNIST's {split} images"
    if not path.is_file():
        raise failure(what, [f"{path}: missing"])
    try:
        check_mnist_file(path, "images", split)
    except ValueError as exc:
        raise failure(what, [str(exc)]) from None
    return path
