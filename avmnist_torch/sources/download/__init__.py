"""Download, verify and lay out the public sources AV-MNIST is made from, in the notebook's layout.

``download()`` (or ``avmnist download --root DATA``) gets FSDD ("fsdd"), ESC-50 ("esc50"), MNIST's labels
("mnist") and, when asked, MNIST's image files ("mnist_images"). Downloads resume, nothing unverified is
moved into place, and several processes on one root take turns (docs/formats.md lists the files,
docs/downloads.md how they are checked).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ...common import DownloadError, ParameterError, PathLike, VerificationError
# Re-exported so that one import gives a caller checking a data root by hand everything download() checks.
from ..mnist_idx import (MNIST_GZ_MD5, MNIST_IMAGE_FILES, MNIST_IMAGE_GZ_MD5, MNIST_IMAGE_RAW_MD5,  # noqa: F401
                         MNIST_LABEL_COUNTS, MNIST_LABEL_FILES, MNIST_RAW_MD5)
from .checksums import load_fsdd_manifest, verify_esc50, verify_fsdd, verify_mnist_images, verify_mnist_labels
from .install import INSTALLERS, Context
from .releases import (ESC50_COLUMNS, ESC50_COMMIT, ESC50_COUNT, ESC50_FRAMES, ESC50_RATE, ESC50_URL,  # noqa: F401
                       FSDD_COUNT, FSDD_TAG, FSDD_URL, MNIST_BASE_URLS, apply_mirror)
from .workspace import remove_stale_temp_trees, root_lock

__all__ = [
    "SOURCES", "AUDIO_SOURCES", "MIRROR_ENV", "FSDD_TAG", "FSDD_URL", "ESC50_COMMIT", "ESC50_URL", "MNIST_BASE_URLS",
    "DownloadError", "VerificationError", "download", "apply_mirror", "load_fsdd_manifest",
    "verify_fsdd", "verify_esc50", "verify_mnist_labels", "verify_mnist_images",
]

#: The parts ``download()`` gets by default: what the audio modality is made from.
AUDIO_SOURCES = ("fsdd", "esc50", "mnist")
#: Every part ``download()`` knows: the audio sources and MNIST's image files.
SOURCES = AUDIO_SOURCES + ("mnist_images",)
MIRROR_ENV = "AVMNIST_MIRROR"


def download(root: PathLike, *, sources: Sequence[str] = AUDIO_SOURCES, mirror: str | None = None,
             progress: bool = True, retries: int = 3, timeout: float = 60.0, keep_archives: bool = False,
             fsdd_manifest: Mapping[str, str] | None = None, esc50_expected: int = ESC50_COUNT) -> Path:
    """Download, verify and lay out FSDD, ESC-50 and MNIST's labels (and images) under `root`.

    Idempotent: a part already verified is skipped, files already in place are verified in place,
    and a complete archive in ``root/.downloads`` is used without downloading. Each part is
    attempted even if another fails; the error at the end names every failure. Safe from several
    processes on one root: one downloads while the others wait, then find the verified result.

    Parameters
    ----------
    root : path-like
        The data root; created if missing. Returned absolute.
    sources : sequence of {"fsdd", "esc50", "mnist", "mnist_images"}
        The parts to get; default :data:`AUDIO_SOURCES` (the recordings, the noises and
        MNIST's labels). ``"mnist_images"`` adds MNIST's image files; :data:`SOURCES` is all four.
    mirror : str, optional
        ``scheme://host[:port][/prefix]`` replacing the scheme and host of every URL (paths
        kept). Default: the ``AVMNIST_MIRROR`` environment variable, else the real hosts.
    progress : bool, default True
        Print progress to stderr.
    retries, timeout : int, float
        Extra attempts per URL after a dropped connection or a 5xx answer, each resuming; the
        socket timeout in seconds.
    keep_archives : bool, default False
        Keep the downloaded archives in ``root/.downloads`` after installing.
    fsdd_manifest : mapping of str to str, optional
        Recording name to sha256; default the shipped manifest of FSDD v1.0.10.
    esc50_expected : int, default 2000
        Number of ESC-50 clips the csv must list; for tests on a small copy.

    Raises
    ------
    DownloadError
        Naming each URL tried, the reason, and where to put a manual copy; also when `root` cannot
        be written. Its VerificationError names files that arrived or were there but are wrong.
    ParameterError
        (a ValueError) for an unknown source name or a malformed mirror.
    """
    unknown = [s for s in sources if s not in INSTALLERS]
    if unknown:
        raise ParameterError(f"unknown source(s) {unknown}; choose from {list(SOURCES)}")
    mirror = os.environ.get(MIRROR_ENV) if mirror is None else mirror
    apply_mirror("http://x/", mirror)  # refuse a malformed mirror before anything is written
    root = Path(root).expanduser().resolve()
    ctx = Context(root, mirror, retries, timeout, progress, keep_archives, fsdd_manifest, esc50_expected)
    failures: list[DownloadError] = []
    with root_lock(ctx.downloads, ctx.say):
        # Under the lock no other downloader is at work here, so a tree of an ended process is a
        # leftover of a killed run (about 900 MB for ESC-50).
        remove_stale_temp_trees(root, ctx.say)
        for name in dict.fromkeys(sources):  # keep order, drop repeats
            try:
                INSTALLERS[name](ctx)
            except DownloadError as exc:
                failures.append(exc)
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise DownloadError("\n\n".join(str(e) for e in failures))
    return root
