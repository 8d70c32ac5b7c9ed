"""Export throughput: wall time and items/s to export the test split (10,000 items) per scheme.

Usage::

    python benchmarks/export.py                     # every scheme, 1 and 2 workers, test split
    python benchmarks/export.py --workers 2 --all   # also all ten files (2 splits x 5 schemes), timed
    python benchmarks/export.py --limit 2000        # the first 2,000 labels only, for a quick look

Reads the real data in ../shared/data (FSDD, the ESC-50 subset, MNIST labels); writes into a
temporary folder that is removed afterwards. Each file is exported from scratch; the first
export in a process also pays numba's compilation, so one warm-up item is rendered first.
The target: all ten files in under 4 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"

from avmnist_torch import AVMNISTAudioDataset  # noqa: E402
from avmnist_torch.export import NOTEBOOK_SCHEMES, export  # noqa: E402
from avmnist_torch.files import read_sidecar  # noqa: E402


def sources(tmp: Path, limit: int | None) -> dict:
    labels_dir = tmp / "labels"
    labels_dir.mkdir()
    for split in ("train", "test"):
        labels = np.load(DATA / "mnist" / f"{split}_labels.npy")
        np.save(labels_dir / f"{split}_labels.npy", labels[:limit] if limit else labels)
    return {"recordings": DATA / "fsdd" / "recordings", "noises": DATA / "esc50", "labels": labels_dir}


def timed_export(kwargs: dict, split: str, scheme: str, workers: int, out: Path) -> tuple[float, int]:
    start = time.perf_counter()
    paths = export(None, split, scheme, out=out, workers=workers, progress=False, **kwargs)
    wall = time.perf_counter() - start
    # audio files only (an image half is listed after its audio file when MNIST's images are at hand)
    rows = sum(int(read_sidecar(p)["shape"][0]) for p in paths if p.parent.name == "audio")
    shutil.rmtree(out)
    return wall, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--schemes", nargs="+", default=list(NOTEBOOK_SCHEMES))
    parser.add_argument("--limit", type=int, default=None, help="use only the first LIMIT labels of each split")
    parser.add_argument("--all", action="store_true", help="also time all ten files with the most workers")
    parser.add_argument("--skip-per-scheme", action="store_true")
    args = parser.parse_args()
    if not (DATA / "fsdd" / "recordings").is_dir():
        print(f"real data not found under {DATA}", file=sys.stderr)
        return 2
    print(f"{platform.node()}: {os.cpu_count()} cores, python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="avmnist-bench-") as tmp:
        tmp = Path(tmp)
        kwargs = sources(tmp, args.limit)
        AVMNISTAudioDataset(None, "test", "burst_noise", **kwargs).spectrogram(0)  # compile numba kernels once
        if not args.skip_per_scheme:
            print(f"{'scheme':15s} {'workers':>7s} {'items':>7s} {'wall s':>8s} {'items/s':>8s}")
            for scheme in args.schemes:
                for workers in args.workers:
                    wall, rows = timed_export(kwargs, "test", scheme, workers, tmp / "out")
                    print(f"{scheme:15s} {workers:7d} {rows:7d} {wall:8.1f} {rows / wall:8.0f}", flush=True)
        if args.all:
            workers = max(args.workers)
            wall, rows = timed_export(kwargs, "all", "all", workers, tmp / "out")
            print(f"all ten files, {workers} workers: {rows} items in {wall:.1f} s ({rows / wall:.0f} items/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
