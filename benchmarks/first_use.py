"""First use of the clip tables: a dataset on an empty cache folder, then another on the warm one.

    python benchmarks/first_use.py                  # ../shared/data, its 512 ESC-50 clips
    python benchmarks/first_use.py --root DATA      # a data root made by 'avmnist download'

Prints the time to make the dataset and read its first item with the tables built whole (every
recording and noise clip of the split decoded and resampled once), per 1,000 clips, and the same on
the warm cache, where nothing is decoded again.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _machine import cpu_model, versions

from avmnist_torch import AVMNISTAudioDataset

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="a data root made by 'avmnist download' (default: ../shared/data)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--scheme", default="burst_noise")
    args = parser.parse_args(argv)
    data = REPO.parent / "shared" / "data"
    options = {} if args.root else dict(recordings=data / "fsdd" / "recordings", noises=data / "esc50_512",
                                        labels=data / "mnist")
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical cores); {versions()}")
    with tempfile.TemporaryDirectory() as cache:
        for state in ("empty", "warm"):
            start = time.perf_counter()
            dataset = AVMNISTAudioDataset(args.root, args.split, args.scheme, clip_tables=cache, **options)
            dataset[0]
            seconds = time.perf_counter() - start
            clips = len(dataset.index.recordings) + len(dataset.index.noises)
            print(f"{state} cache folder: {args.split} {args.scheme} dataset and its first item in {seconds:.2f} s "
                  f"({clips:,} clips, {seconds / clips * 1000:.2f} s per 1,000 clips)")


if __name__ == "__main__":
    main()
