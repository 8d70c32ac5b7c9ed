"""Items per second, per scheme: the notebook's pipeline vs ds[i] vs a 2-worker DataLoader.

Run from the repository root, with the real data beside it (../shared/data) or
any data root in the notebook's layout::

    python benchmarks/throughput.py                       # ../shared/data
    python benchmarks/throughput.py --root DATA --items 3000

(a) the notebook's own functions, copied literally in tests/notebook_reference.py
    (librosa.load, librosa.resample of the noise for every item, a new figure
    per item), on the same items;
(b) ``AVMNISTAudioDataset(..., renderer="fast")[i]`` in this process, starting
    with an empty noise table (its filling is part of the figure);
(c) a ``DataLoader`` with 2 workers over the same items.
All in one run, one thread per process, so the ratios compare like with like on
a noisy machine. Peak resident memory: this process, and the largest worker.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from avmnist_torch import SCHEME_NAMES, AVMNISTAudioDataset  # noqa: E402

SCHEMES = [s for s in SCHEME_NAMES if s != "clean"]


def parts(args):
    if args.root:
        root = Path(args.root)
        return dict(recordings=root / "recordings", noises=root / "noise_recordings",
                    labels=root / "avmnist" / "train_labels.npy")
    data = REPO.parent / "shared" / "data"
    if not data.is_dir():
        sys.exit(f"no data: {data} is absent; pass --root DATA (see 'avmnist-audio download')")
    return dict(recordings=data / "fsdd" / "recordings", noises=data / "esc50",
                labels=data / "mnist" / "train_labels.npy")


def notebook_rate(p, scheme, n):
    import notebook_reference as nb

    index = nb.build_index(str(p["recordings"]) + "/", str(p["noises"]))
    labels = np.load(p["labels"])
    aug = nb.AugmentationType[scheme.upper()]
    random.seed(0)
    items = list(nb.generate_items(index, labels, True, aug, limit=n))
    nb.wav_to_spectrogram(*nb.augment_audio(items[0][1], items[0][2], aug))  # imports, first figure
    start = time.perf_counter()
    for _, audio_file, noise_file in items:
        samples, sr = nb.augment_audio(audio_file, noise_file, aug)
        nb.wav_to_spectrogram(samples, sr)
    return n / (time.perf_counter() - start)


def dataset_rate(p, scheme, n, cache):
    start = time.perf_counter()
    ds = AVMNISTAudioDataset(split="train", scheme=scheme, renderer="fast", noise_cache=cache, **p)
    ds[0]
    first = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(1, n):
        ds[i]
    return (n - 1) / (time.perf_counter() - start), first, ds


def loader_rate(ds, n, workers):
    subset = torch.utils.data.Subset(ds, range(n))
    loader = torch.utils.data.DataLoader(subset, batch_size=64, num_workers=workers)
    start = time.perf_counter()
    count = sum(len(y) for _, y in loader)
    assert count == n
    return n / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="data root in the notebook's layout (default ../shared/data)")
    parser.add_argument("--items", type=int, default=2000, help="items for (b) and (c)")
    parser.add_argument("--notebook-items", type=int, default=150, help="items for (a)")
    parser.add_argument("--schemes", nargs="*", default=SCHEMES)
    args = parser.parse_args()
    torch.set_num_threads(1)
    p = parts(args)
    print(f"cores: {os.cpu_count()}  items: (a) {args.notebook_items}, (b)/(c) {args.items}  torch threads: 1")
    header = f"{'scheme':<14}{'(a) notebook':>14}{'(b) ds[i]':>12}{'(c) 2 workers':>15}{'b/a':>8}{'c/b':>7}{'first item':>12}"
    print(header)
    print("-" * len(header))
    ratios = []
    with tempfile.TemporaryDirectory() as cache_root:
        for scheme in args.schemes:
            a = notebook_rate(p, scheme, args.notebook_items)
            b, first, ds = dataset_rate(p, scheme, args.items, Path(cache_root) / scheme)
            c = loader_rate(ds, args.items, 2)
            ratios.append(b / a)
            print(f"{scheme:<14}{a:>10.1f} it/s{b:>8.0f} it/s{c:>11.0f} it/s{b / a:>7.1f}x{c / b:>6.2f}x{first * 1e3:>9.0f} ms")
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("-" * len(header))
    print(f"median (b)/(a) over schemes: {statistics.median(ratios):.1f}x   lowest: {min(ratios):.1f}x")
    print(f"peak resident memory: this process {self_peak:.0f} MB, largest DataLoader worker {child_peak:.0f} MB")


if __name__ == "__main__":
    main()
