"""Getting each source into place, so that nothing unverified is ever where the dataset reads.

Something already in place is verified where it lies and never overwritten; a complete file in ``ROOT/.downloads``
is used as it is, else fetched; archives are extracted and verified in a temporary tree, then moved into place with
one rename. A file that fails is moved to ``*.rejected`` so that the next run fetches it afresh.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ...common import SPLITS, DownloadError, VerificationError
from ...files import write_bytes
from ..mnist_idx import MNIST_IMAGE_FILES, MNIST_LABEL_FILES, is_gzip, read_idx_labels
from .archives import CORRUPT_ARCHIVE, iter_archive
from .checksums import (check_mnist_file, failure, load_fsdd_manifest, verify_esc50, verify_fsdd, verify_mnist_images,
                        verify_mnist_labels)
from .http import FetchFailed, fetch
from .releases import ESC50_COMMIT, ESC50_URL, FSDD_TAG, FSDD_URL, MNIST_BASE_URLS, apply_mirror
from .workspace import DOWNLOADS, marker_ok, reject, temp_tree, write_marker


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


def _obtain(ctx: Context, title: str, dest: Path, originals: Sequence[str], copies: Sequence[Path],
            also: str = "") -> tuple[Path, str]:
    """(file, where it came from): the first of `copies` that exists, else `dest` fetched from a mirrored URL."""
    for local in copies:
        if local.is_file():
            return local, f"local file {local}"
    urls = [apply_mirror(url, ctx.mirror) for url in originals]
    ctx.say(f"{title}: downloading {urls[0]}")
    try:
        return dest, fetch(urls, dest, retries=ctx.retries, timeout=ctx.timeout, progress=ctx.progress,
                           label=dest.name)
    except FetchFailed as exc:
        raise DownloadError(f"{title}: download failed.\n  {exc}\nTo install by hand, download {' or '.join(originals)}"
                            f"\n  and save it as {dest}, then run the same command again (a complete file there is "
                            "used without downloading)." + (f"\n{also}" if also else "")) from None


def _install_archive(ctx: Context, name: str, title: str, url: str, archive_name: str, target: Path, marked: Path,
                     members: Mapping[str, str], count: int, verify: Callable[[Path], None], also: str,
                     size: str = "") -> None:
    """Install `target` from its release archive unless it is already verified (a marker counting `count` ``.wav``
    files in `marked`) or verifies in place. Members matching a pattern of `members` go into its folder (relative to
    the root) of a temporary tree, whose `target` folder is checked by `verify`, then renamed into place."""
    if marker_ok(ctx.downloads, name, marked):
        ctx.say(f"{title}: {target} already verified")
        return
    if target.exists():
        try:
            verify(target)
        except VerificationError as exc:
            raise failure(f"{title}: {target} exists but does not verify; move it away (or fix it) and run again",
                          exc.problems) from None
        write_marker(ctx.downloads, name, count, f"verified in place: {target}")
        ctx.say(f"{title}: existing {target} verified")
        return
    dest = ctx.downloads / archive_name
    # A manual copy may also be GitHub's .zip of the same tree (iter_archive sniffs the format).
    archive, origin = _obtain(ctx, title, dest, [url],
                              [dest, dest.with_name(archive_name.removesuffix(".tar.gz") + ".zip")], also)
    ctx.say(f"{title}: extracting and verifying{size}")
    tmp = temp_tree(ctx.root, target.name)
    try:
        (tmp / target.name).mkdir()  # an archive without a member wanted is reported as missing them all
        problem = None
        try:
            for member, fobj in iter_archive(archive):
                folder = next((f for pattern, f in members.items() if member.match(pattern)), None)
                if folder is None:
                    continue
                out = tmp / folder / member.name
                if out.exists():
                    problem = f"holds {out.name} twice (again as {member})"
                    break
                out.parent.mkdir(parents=True, exist_ok=True)
                with open(out, "wb") as f:
                    shutil.copyfileobj(fobj, f)
        except CORRUPT_ARCHIVE as exc:
            problem = f"unreadable archive ({type(exc).__name__}: {exc})"
        if problem:
            raise DownloadError(f"{title}: {archive}: {problem} (from {origin}); moved to {reject(archive)}. "
                                "Run again to download it afresh.")
        try:
            verify(tmp / target.name)
        except VerificationError as exc:
            raise failure(f"{title}: {archive.name} (from {origin}) failed verification and was moved to "
                          f"{reject(archive)}; nothing was installed", exc.problems) from None
        os.rename(tmp / target.name, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_marker(ctx.downloads, name, count, origin)
    if not ctx.keep_archives:
        archive.unlink(missing_ok=True)
    ctx.say(f"{title}: installed {target}")


def install_fsdd(ctx: Context) -> None:
    """FSDD's recordings as ``ROOT/recordings/*.wav``, each checked against the manifest."""
    target = ctx.root / "recordings"
    manifest = load_fsdd_manifest() if ctx.fsdd_manifest is None else ctx.fsdd_manifest
    # Any top folder: a repacked copy may not name it as GitHub does.
    _install_archive(ctx, "fsdd", f"FSDD {FSDD_TAG}", FSDD_URL, f"free-spoken-digit-dataset-{FSDD_TAG[1:]}.tar.gz",
                     target, target, {"recordings/*.wav": "recordings"}, len(manifest),
                     lambda folder: verify_fsdd(folder, manifest),
                     f"Or put the {len(manifest):,} recordings themselves in {target}/ (they are checked against the "
                     "shipped sha256 manifest).")


def install_esc50(ctx: Context) -> None:
    """ESC-50's clips and csv as ``ROOT/noise_recordings/{audio,meta}``, checked against its csv."""
    target = ctx.root / "noise_recordings"
    _install_archive(ctx, "esc50", f"ESC-50 ({ESC50_COMMIT[:7]})", ESC50_URL, f"ESC-50-{ESC50_COMMIT}.tar.gz",
                     target, target / "audio",
                     {"audio/*.wav": "noise_recordings/audio", "meta/esc50.csv": "noise_recordings/meta"},
                     ctx.esc50_expected, lambda folder: verify_esc50(folder, ctx.esc50_expected),
                     f"Or put ESC-50's audio/ and meta/esc50.csv in {target}/ (every clip in the csv must be there, "
                     "mono, 44.1 kHz, 5 s).", " (about 900 MB on disk)")


def install_mnist(ctx: Context, kind: str) -> None:
    """MNIST's `kind` of each split, verified where it is installed, else fetched (or taken from ``ROOT/.downloads``),
    checked and installed: labels as ``ROOT/avmnist/{train,test}_labels.npy`` (int64, MNIST order), images as
    ``ROOT/mnist/{train,t10k}-images-idx3-ubyte[.gz]``, as fetched or supplied (no ``.gz`` when decompressed)."""
    labels = kind == "labels"
    errors: list[str] = []
    for split in SPLITS:
        name = (MNIST_LABEL_FILES if labels else MNIST_IMAGE_FILES)[split]
        npy = ctx.root / "avmnist" / f"{split}_labels.npy"
        installed = [p for p in ([npy] if labels else [ctx.root / "mnist" / (name + ".gz"), ctx.root / "mnist" / name])
                     if p.is_file()]
        for path in installed:
            try:
                (verify_mnist_labels if labels else verify_mnist_images)(path, split)
            except VerificationError as exc:
                raise failure(f"MNIST {kind}: {path} exists but is not MNIST's {split} {kind}; move it away and run "
                              "again", exc.problems) from None
            ctx.say(f"MNIST {kind}: {path} already verified")
        if installed:
            continue
        dest = ctx.downloads / (name + ".gz")
        try:
            path, origin = _obtain(ctx, f"MNIST {split} {kind}", dest, [base + dest.name for base in MNIST_BASE_URLS],
                                   [dest, dest.with_suffix("")])
        except DownloadError as exc:
            errors.append(str(exc))
            continue
        try:
            check_mnist_file(path, kind, split)
            if labels:
                buffer = io.BytesIO()
                np.save(buffer, read_idx_labels(path))
                target, data = npy, buffer.getvalue()
            else:
                target, data = ctx.root / "mnist" / (name + ".gz" if is_gzip(path) else name), path.read_bytes()
            write_bytes(target, data)  # whole or not at all
        except ValueError as exc:
            errors.append(f"MNIST {split} {kind}: {exc} (from {origin}); moved to {reject(path)}. "
                          "Run again to download it afresh.")
            continue
        if not ctx.keep_archives:
            path.unlink(missing_ok=True)
        ctx.say(f"MNIST {kind}: installed {target}")
    if errors:
        raise DownloadError("\n".join(errors))


#: Each source's installer, by the name ``download(sources=...)`` takes.
INSTALLERS: dict[str, Callable[[Context], None]] = {
    "fsdd": install_fsdd,
    "esc50": install_esc50,
    "mnist": partial(install_mnist, kind="labels"),
    "mnist_images": partial(install_mnist, kind="images"),
}
