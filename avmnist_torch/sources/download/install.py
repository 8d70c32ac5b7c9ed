"""Getting each source into place: use what is there, else fetch, verify, then move into place.

Every part follows the same order, so that nothing unverified is ever where the dataset reads:

1. Already verified (a marker) or already in place (a manual copy, verified where it lies):
   done, no network. A folder that is there but does not verify is an error and is never
   overwritten.
2. A complete file in ``ROOT/.downloads`` (a manual download) is used as it is; otherwise it is
   fetched (``http.py``).
3. Archives are extracted into a temporary tree inside the root and verified there; one rename
   moves the verified tree into place. A file that fails is moved to ``*.rejected`` so the next
   run fetches it afresh, and the error names it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from ...common import SPLITS, DownloadError, VerificationError
from ..mnist_idx import MNIST_IMAGE_FILES, MNIST_LABEL_FILES, read_idx_labels
from .archives import CORRUPT_ARCHIVE, copy_stream, iter_archive
from .http import FetchFailed, fetch
from .releases import ESC50_COMMIT, ESC50_URL, FSDD_TAG, FSDD_URL, MNIST_BASE_URLS, apply_mirror
from .checksums import (
    check_fsdd,
    check_mnist_images_file,
    check_mnist_labels_file,
    is_gzip,
    load_fsdd_manifest,
    verify_esc50,
    verify_fsdd,
    verify_mnist_images,
    verify_mnist_labels,
)
from .workspace import DOWNLOADS, marker_ok, reject, temp_tree, write_marker

__all__ = ["Context", "INSTALLERS"]


@dataclass
class Context:
    """What one ``download()`` call was asked for, shared by the parts' installers."""

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
        return self.root / DOWNLOADS

    def say(self, msg: str) -> None:
        if self.progress:
            print(msg, file=sys.stderr, flush=True)


def _manual_hint(dest: Path, originals: Sequence[str], also: str = "") -> str:
    lines = [f"To install by hand, download {' or '.join(originals)}",
             f"  and save it as {dest}, then run the same command again"
             " (a complete file there is used without downloading)."]
    if also:
        lines.append(also)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Archives (FSDD, ESC-50)


def _get_archive(ctx: Context, title: str, dest: Path, url: str, also: str) -> tuple[Path, str]:
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
        used = fetch([mirrored], dest, retries=ctx.retries, timeout=ctx.timeout,
                     progress=ctx.progress, label=dest.name)
    except FetchFailed as exc:
        raise DownloadError(
            f"{title}: download failed.\n  " + "\n  ".join(exc.attempts) + "\n"
            + _manual_hint(dest, [url], also)
        ) from None
    return dest, used


def _extract_and_install(
    ctx: Context,
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
    tmp = temp_tree(ctx.root, target.name)
    try:
        hashes: dict[str, str] = {}
        try:
            for member, fobj in iter_archive(archive):
                rel = pick(member)
                if rel is None:
                    continue
                out = tmp / rel
                if out.exists():
                    raise ValueError(f"{archive}: holds {out.name} twice (again as {member})")
                out.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                copy_stream(fobj, out, digest)
                hashes[out.name] = digest.hexdigest()
        except CORRUPT_ARCHIVE as exc:
            # Reading a member's content happens here, outside iter_archive, so the archive
            # library's own errors for a damaged stream arrive here unwrapped.
            if not isinstance(exc, ValueError):
                exc = f"{archive}: unreadable archive ({type(exc).__name__}: {exc})"
            rejected = reject(archive)
            raise DownloadError(
                f"{title}: {exc} (from {origin}); moved to {rejected}. "
                "Run again to download it afresh."
            ) from None
        try:
            verify(tmp / target.name, hashes)
        except VerificationError as exc:
            rejected = reject(archive)
            raise VerificationError(
                f"{title}: {archive.name} (from {origin}) failed verification and was moved "
                f"to {rejected}; nothing was installed.\n  " + "\n  ".join(exc.problems),
                exc.problems,
            ) from None
        os.rename(tmp / target.name, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _already_in_place(ctx: Context, name: str, title: str, target: Path, marked: Path,
                      count: int, check: Callable[[], None]) -> bool:
    """True when `target` is already verified (marker) or verifies in place (a manual copy).

    A folder that exists but does not verify is an error: it is never overwritten.
    """
    if marker_ok(ctx.downloads, name, marked):
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
    write_marker(ctx.downloads, name, count, f"verified in place: {target}")
    ctx.say(f"{title}: existing {target} verified")
    return True


def _install_archive(ctx: Context, name: str, title: str, archive: Path, origin: str,
                     pick: Callable[[PurePosixPath], str | None],
                     verify: Callable[[Path, dict[str, str]], None],
                     target: Path, count: int) -> None:
    _extract_and_install(ctx, title, archive, origin, pick, verify, target)
    write_marker(ctx.downloads, name, count, origin)
    if not ctx.keep_archives:
        archive.unlink(missing_ok=True)
    ctx.say(f"{title}: installed {target}")


def install_fsdd(ctx: Context) -> None:
    """FSDD's recordings as ``ROOT/recordings/*.wav``, each checked against the manifest."""
    title = f"FSDD {FSDD_TAG}"
    target = ctx.root / "recordings"
    manifest = load_fsdd_manifest() if ctx.fsdd_manifest is None else ctx.fsdd_manifest
    if _already_in_place(ctx, "fsdd", title, target, target, len(manifest),
                         lambda: verify_fsdd(target, manifest)):
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
        problems = check_fsdd(hashes, manifest)
        if problems:
            raise VerificationError("FSDD check failed", problems)

    ctx.say(f"{title}: extracting and verifying")
    _install_archive(ctx, "fsdd", title, archive, origin, pick, verify, target, len(manifest))


def install_esc50(ctx: Context) -> None:
    """ESC-50's clips and csv as ``ROOT/noise_recordings/{audio,meta}``, checked against its csv."""
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
    _install_archive(ctx, "esc50", title, archive, origin, pick, verify, target,
                     ctx.esc50_expected)


# --------------------------------------------------------------------------------------------
# MNIST's files (labels and images): single .gz files from a list of mirrors


def _fetch_mnist(ctx: Context, kind: str, files: Mapping[str, str],
                 splits: Sequence[str]) -> tuple[list[tuple[str, Path, str]], list[str]]:
    """Get each split's ``files[split].gz`` (MNIST's `kind`: labels or images) into
    ``ROOT/.downloads``, trying every mirror.

    Returns (fetched as (split, path, origin), errors). A manual copy there, ``.gz`` or
    decompressed, is used as it is.
    """
    errors: list[str] = []
    fetched: list[tuple[str, Path, str]] = []
    for split in splits:
        fname = files[split] + ".gz"
        dest = ctx.downloads / fname
        originals = [base + fname for base in MNIST_BASE_URLS]
        local = next((p for p in (dest, dest.with_suffix("")) if p.is_file()), None)
        if local is not None:
            fetched.append((split, local, f"local file {local}"))
            continue
        urls = [apply_mirror(u, ctx.mirror) for u in originals]
        ctx.say(f"MNIST {kind}: downloading {fname}")
        try:
            used = fetch(urls, dest, retries=ctx.retries, timeout=ctx.timeout,
                         progress=ctx.progress, label=fname)
        except FetchFailed as exc:
            errors.append(f"MNIST {split} {kind}: download failed.\n  "
                          + "\n  ".join(exc.attempts) + "\n" + _manual_hint(dest, originals))
            continue
        fetched.append((split, dest, used))
    return fetched, errors


def install_mnist_labels(ctx: Context) -> None:
    """MNIST's labels as ``ROOT/avmnist/{train,test}_labels.npy`` (int64, MNIST order)."""
    title = "MNIST labels"
    out_dir = ctx.root / "avmnist"
    todo = []
    for split in SPLITS:
        target = out_dir / f"{split}_labels.npy"
        if target.exists():
            try:
                verify_mnist_labels(target, split)
            except VerificationError as exc:
                raise VerificationError(
                    f"{title}: {target} exists but is not MNIST's {split} labels; move it "
                    f"away and run again.\n  {exc}", exc.problems
                ) from None
            ctx.say(f"{title}: {target} already verified")
        else:
            todo.append(split)
    if not todo:
        return

    fetched, errors = _fetch_mnist(ctx, "labels", MNIST_LABEL_FILES, todo)
    for split, path, origin in fetched:
        try:
            check_mnist_labels_file(path, split)
            labels = read_idx_labels(path)
        except ValueError as exc:
            rejected = reject(path)
            errors.append(f"MNIST {split} labels: {exc} (from {origin}); moved to {rejected}. "
                          "Run again to download it afresh.")
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"{split}_labels.npy"
        # Write beside the target, then rename: a killed run leaves no half-written .npy. A plain
        # open (not mkstemp, whose files are 0600) so the labels get the umask's mode like the rest.
        tmp_name = out_dir / f".{split}_labels.{os.getpid()}.tmp"
        try:
            with open(tmp_name, "wb") as f:
                np.save(f, labels.astype(np.int64))
            os.replace(tmp_name, target)
        except BaseException:
            tmp_name.unlink(missing_ok=True)
            raise
        if not ctx.keep_archives:
            path.unlink(missing_ok=True)
        ctx.say(f"{title}: wrote {target} ({labels.size:,} labels)")
    if errors:
        raise DownloadError("\n".join(errors))


def mnist_image_paths(root: Path, split: str) -> list[Path]:
    """Where a split's image file is installed: ``ROOT/mnist/<name>.gz``, or ``<name>``
    when the copy supplied was decompressed; the existing ones."""
    name = MNIST_IMAGE_FILES[split]
    return [p for p in (root / "mnist" / (name + ".gz"), root / "mnist" / name) if p.is_file()]


def install_mnist_images(ctx: Context) -> None:
    """MNIST's image files as ``ROOT/mnist/{train,t10k}-images-idx3-ubyte[.gz]``, as published.

    The file is installed as it was fetched or supplied (``.gz`` when its content is gzip,
    without the suffix when it was decompressed), after its md5 matched.
    """
    title = "MNIST images"
    out_dir = ctx.root / "mnist"
    todo = []
    for split in SPLITS:
        present = mnist_image_paths(ctx.root, split)
        if not present:
            todo.append(split)
            continue
        for path in present:
            try:
                verify_mnist_images(path, split)
            except VerificationError as exc:
                raise VerificationError(
                    f"{title}: {path} exists but is not MNIST's {split} images; move it away "
                    f"and run again.\n  {exc}", exc.problems
                ) from None
            ctx.say(f"{title}: {path} verified")
    if not todo:
        return

    fetched, errors = _fetch_mnist(ctx, "images", MNIST_IMAGE_FILES, todo)
    for split, path, origin in fetched:
        name = MNIST_IMAGE_FILES[split]
        try:
            check_mnist_images_file(path, split)
        except ValueError as exc:
            rejected = reject(path)
            errors.append(f"MNIST {split} images: {exc} (from {origin}); moved to {rejected}. "
                          "Run again to download it afresh.")
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / (name + ".gz" if is_gzip(path) else name)
        if ctx.keep_archives:
            # Copy beside the target, then rename: a killed run leaves no half-written file.
            tmp = out_dir / f".{target.name}.{os.getpid()}.tmp"
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        else:
            os.replace(path, target)  # same file system: one rename
        ctx.say(f"{title}: installed {target}")
    if errors:
        raise DownloadError("\n".join(errors))


#: Each source's installer, by the name ``download(sources=...)`` takes.
INSTALLERS: dict[str, Callable[[Context], None]] = {
    "fsdd": install_fsdd,
    "esc50": install_esc50,
    "mnist": install_mnist_labels,
    "mnist_images": install_mnist_images,
}
