"""Items per second, per scheme: the notebook's pipeline vs ds[i] vs a 2-worker DataLoader.

Run from the repository root, with the real data beside it (../shared/data) or
any data root in the notebook's layout::

    python benchmarks/throughput.py                       # ../shared/data
    python benchmarks/throughput.py --root DATA --items 3000

(a) the notebook's own functions, copied literally in tests/notebook_reference.py
    (librosa.load, librosa.resample of the noise for every item, a new figure
    per item), on the same items;
(b) ``AVMNISTAudioDataset(..., renderer="fast")[i]`` in this process: a pass on
    empty clip tables (cold: every recording decoded and noise clip resampled
    once), then passes on the filled tables (warm), which the ratio uses;
(c) a ``DataLoader`` with 2 persistent workers over the same items, in a fresh
    process (so its workers inherit nothing of (a)), timed on its second epoch;
    worker RSS is the largest worker's peak.
``--full-esc50`` links the clips at hand into a full-size ESC-50 (2,000 clips,
1,900 train rows in the noise table) so memory is measured at full size.
All in one run, one thread per process, (a) and (b) warm as the best of
``--rounds`` passes each, so the ratios compare like with like on a noisy machine. Peak resident memory: this process, and the largest worker.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
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


def notebook_rate(p, scheme, n, rounds):
    """(a): the best of ``rounds`` passes of the notebook's own functions over the first n items."""
    import notebook_reference as nb

    index = nb.build_index(str(p["recordings"]) + "/", str(p["noises"]))
    labels = np.load(p["labels"])
    aug = nb.AugmentationType[scheme.upper()]
    random.seed(0)
    items = list(nb.generate_items(index, labels, True, aug, limit=n))
    nb.wav_to_spectrogram(*nb.augment_audio(items[0][1], items[0][2], aug))  # imports, first figure
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _, audio_file, noise_file in items:
            samples, sr = nb.augment_audio(audio_file, noise_file, aug)
            nb.wav_to_spectrogram(samples, sr)
        best = max(best, n / (time.perf_counter() - start))
    return best


def dataset_rate(p, scheme, n, cache, rounds):
    """(b): first-item latency, items/s on empty clip tables (cold), then the best of
    ``rounds`` passes on the filled table (warm)."""
    start = time.perf_counter()
    ds = AVMNISTAudioDataset(split="train", scheme=scheme, renderer="fast", noise_cache=cache, **p)
    ds[0]
    first = time.perf_counter() - start
    rates = []
    for _ in range(1 + rounds):
        start = time.perf_counter()
        for i in range(1, n):
            ds[i]
        rates.append((n - 1) / (time.perf_counter() - start))
    return rates[0], max(rates[1:]), first


def loader_rate(p, scheme, n, workers, cache):
    """(c) in a fresh process, so the workers inherit nothing of (a)'s matplotlib and librosa.

    Persistent workers; the first epoch (worker start-up) is not timed, the second is, as in training.
    Returns items/s and the largest worker's peak resident memory (MB).
    """
    code = (
        "import json, resource, sys, time, torch\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from avmnist_torch import AVMNISTAudioDataset\n"
        "torch.set_num_threads(1)\n"
        f"ds = AVMNISTAudioDataset(split='train', scheme={scheme!r}, renderer='fast', noise_cache={str(cache)!r},"
        f" recordings={str(p['recordings'])!r}, noises={str(p['noises'])!r}, labels={str(p['labels'])!r})\n"
        f"loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range({n})), batch_size=64,"
        f" num_workers={workers}, persistent_workers=True)\n"
        "sum(len(y) for _, y in loader)\n"
        "start = time.perf_counter()\n"
        "count = sum(len(y) for _, y in loader)\n"
        "rate = count / (time.perf_counter() - start)\n"
        "loader._iterator._shutdown_workers()  # reap the workers so their peak RSS is counted\n"
        "print(json.dumps([rate, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    rate, worker_peak = json.loads(out.stdout.strip().splitlines()[-1])
    return rate, worker_peak


def full_size_esc50(real_esc50: Path, folder: Path) -> Path:
    """An ESC-50 of the real size (50 categories x 40 clips) made of links to the clips at hand.

    Each category's clips are linked under 40 distinct names, so the noise
    table has 1,900 train rows as with the real ESC-50 and memory is measured
    at full size. The audio repeats; the costs do not.
    """
    import pandas as pd

    table = pd.read_csv(real_esc50 / "meta" / "esc50.csv")
    (folder / "audio").mkdir(parents=True)
    (folder / "meta").mkdir()
    rows = []
    for category, group in table.groupby("category"):
        sources = group["filename"].tolist()
        for k in range(40):
            source = sources[k % len(sources)]
            name = f"{k % 5 + 1}-{900000 + 1000 * int(group['target'].iloc[0]) + k}-A-{int(group['target'].iloc[0])}.wav"
            os.symlink(real_esc50 / "audio" / source, folder / "audio" / name)
            row = group[group["filename"] == source].iloc[0].to_dict()
            row["filename"] = name
            rows.append(row)
    pd.DataFrame(rows).sort_values("filename").to_csv(folder / "meta" / "esc50.csv", index=False)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="data root in the notebook's layout (default ../shared/data)")
    parser.add_argument("--items", type=int, default=2000, help="items for (b) and (c)")
    parser.add_argument("--notebook-items", type=int, default=100, help="items for (a)")
    parser.add_argument("--rounds", type=int, default=3, help="(a) and (b) warm report the best of this many passes")
    parser.add_argument("--schemes", nargs="*", default=SCHEMES)
    parser.add_argument("--full-esc50", action="store_true",
                        help="link the ESC-50 clips at hand into a full-size 2,000-clip ESC-50 (memory at full size)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    p = parts(args)
    scratch = tempfile.TemporaryDirectory()
    if args.full_esc50:
        p["noises"] = full_size_esc50(Path(p["noises"]), Path(scratch.name) / "esc50-full")
    print(f"cores: {os.cpu_count()}  items: (a) {args.notebook_items}, (b)/(c) {args.items}  rounds: {args.rounds}"
          "  torch threads: 1"
          f"  noises: {p['noises']}")
    header = (f"{'scheme':<14}{'(a) notebook':>14}{'(b) cold':>11}{'(b) warm':>11}{'(c) 2 workers':>15}"
              f"{'b/a':>8}{'c/b':>7}{'first item':>12}{'worker RSS':>12}")
    print(header)
    print("-" * len(header))
    ratios = []
    with scratch:
        for scheme in args.schemes:
            a = notebook_rate(p, scheme, args.notebook_items, args.rounds)
            # (b) starts on empty clip tables; (c) then finds them filled, as a second epoch would.
            cache = Path(scratch.name) / "cache" / scheme
            cold, b, first = dataset_rate(p, scheme, args.items, cache, args.rounds)
            c, worker_peak = loader_rate(p, scheme, args.items, 2, cache)
            ratios.append(b / a)
            print(f"{scheme:<14}{a:>9.1f} it/s{cold:>7.0f} it/s{b:>7.0f} it/s{c:>11.0f} it/s{b / a:>7.1f}x"
                  f"{c / b:>6.2f}x{first * 1e3:>9.0f} ms{worker_peak:>9.0f} MB")
    print("-" * len(header))
    print("b/a and c/b use (b) warm: the clip tables filled, as from the second pass over the sources on;")
    print("(b) cold pays each recording's decoding and each noise clip's resampling once, as the first epoch does.")
    print(f"median (b)/(a) over schemes: {statistics.median(ratios):.1f}x   lowest: {min(ratios):.1f}x")
    print(f"peak resident memory of this process (notebook pipeline included): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
