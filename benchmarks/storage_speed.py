"""This checkout against another revision, in one process: batched items, a 2-worker DataLoader, serving an export.

What a change to how files are written and read must not slow down::

    python benchmarks/storage_speed.py --against 3dcc92b            # ../shared/data
    python benchmarks/storage_speed.py --against 3dcc92b --items 640 --passes 5 --schemes burst_noise

The other revision's package is taken with ``git archive`` into a temporary folder and imported under
another name (``avmnist_torch_old``; the package imports itself only relatively), so both sides run in
this one process, each with its own warm clip tables, and alternate batch by batch (epoch by epoch for
the DataLoader, whose workers are forked from here): both meet the same load, which on a shared machine
moves absolute times by tens of percent from one minute to the next. Each ratio is new/old within one
pass; the figure reported is the median over the passes.

(b) batched: CPU time of ``ds.__getitems__`` over ``--items`` train items in batches of 128;
(d) loader: wall time of an epoch of a DataLoader with 2 persistent workers over the same items, and its
    CPU time (the main process and both workers, from /proc): on a shared machine the CPU time is the
    steadier figure;
(s) served: CPU time of ``from_export=`` batches of 128 in a shuffled order, from an export of the test
    split that each side wrote itself (burst_noise).
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model, versions  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCHEMES = ["extreme_noise", "multi_band", "burst_noise", "aliased", "distorted"]


def batches(order, size=128):
    return [order[k:k + size] for k in range(0, len(order), size)]


def alternate_cpu(datasets, order, passes):
    """Per pass: CPU seconds of each dataset over ``order`` in batches, batch by batch alternately."""
    ratios, best = [], [float("inf")] * len(datasets)
    for p in range(passes):
        spent = [0.0] * len(datasets)
        for k, part in enumerate(batches(order)):
            sides = range(len(datasets)) if (k + p) % 2 == 0 else reversed(range(len(datasets)))
            for side in sides:
                start = time.process_time()
                datasets[side].__getitems__(part)
                spent[side] += time.process_time() - start
        ratios.append(spent[0] / spent[1])
        best = [min(b, s) for b, s in zip(best, spent)]
    return statistics.median(ratios), [b / len(order) * 1e3 for b in best]


def _cpu_seconds(pids) -> float:
    """utime + stime of processes ``pids`` (Linux /proc; NaN elsewhere)."""
    try:
        total = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")


def alternate_loaders(datasets, n, passes):
    """Per pass: one epoch of each side's DataLoader (2 persistent workers), alternately: the ratios of
    wall time and of CPU time (the main process and the workers), and each side's best items/s (wall)."""
    loaders = [torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(n)), batch_size=128, num_workers=2,
                                           persistent_workers=True) for ds in datasets]
    for loader in loaders:  # workers started, tables opened
        for _ in loader:
            pass
    pids = [[os.getpid()] + [w.pid for w in loader._iterator._workers] for loader in loaders]
    walls, cpus, best = [], [], [float("inf")] * len(loaders)
    for p in range(passes):
        wall, cpu = [0.0] * len(loaders), [0.0] * len(loaders)
        for side in (range(len(loaders)) if p % 2 == 0 else reversed(range(len(loaders)))):
            start, used = time.perf_counter(), _cpu_seconds(pids[side])
            for _ in loaders[side]:
                pass
            wall[side], cpu[side] = time.perf_counter() - start, _cpu_seconds(pids[side]) - used
        walls.append(wall[0] / wall[1])
        cpus.append(cpu[0] / cpu[1] if cpu[1] else float("nan"))
        best = [min(b, w) for b, w in zip(best, wall)]
    del loaders
    return statistics.median(walls), statistics.median(cpus), [n / b for b in best]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", default="3dcc92b", help="the revision to compare with")
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"),
                        help="real data: fsdd/recordings, esc50, mnist (default ../shared/data)")
    parser.add_argument("--items", type=int, default=1280)
    parser.add_argument("--passes", type=int, default=7)
    parser.add_argument("--schemes", nargs="*", default=SCHEMES)
    parser.add_argument("--no-loader", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    revision = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.against], check=True,
                              capture_output=True, text=True).stdout.strip()
    print(f"CPU: {cpu_model()}  ({os.cpu_count()} logical cores)  python {sys.version.split()[0]}")
    print(f"versions: {versions()}")
    print(f"new: this checkout; old: {revision}; {args.items} train items, {args.passes} passes; ratios are "
          "new/old per pass (median), times the best pass")
    p = dict(recordings=f"{args.root}/fsdd/recordings", noises=f"{args.root}/esc50", labels=f"{args.root}/mnist")
    with tempfile.TemporaryDirectory() as scratch:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "avmnist_torch"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", scratch], input=archive, check=True)
        os.rename(Path(scratch) / "avmnist_torch", Path(scratch) / "avmnist_torch_old")
        sys.path.insert(0, scratch)
        sys.path.insert(0, str(REPO))
        packages = [importlib.import_module("avmnist_torch"), importlib.import_module("avmnist_torch_old")]
        export_modules = [importlib.import_module(f"{pkg.__name__}.export") for pkg in packages]
        print(f"{'scheme':<14}{'(b) new ms':>11}{'(b) old ms':>11}{'b new/old':>10}{'(d) new /s':>12}"
              f"{'(d) old /s':>12}{'d new/old':>10}{'d cpu new/old':>15}")
        order = list(range(args.items))
        for scheme in args.schemes:
            datasets = [pkg.AVMNISTAudioDataset(split="train", scheme=scheme,
                                                clip_tables=f"{scratch}/cache-{k}/{scheme}", **p)
                        for k, pkg in enumerate(packages)]
            for ds in datasets:  # every clip these items need in the tables, kernels compiled
                for part in batches(order):
                    ds.__getitems__(part)
            b_ratio, b_ms = alternate_cpu(datasets, order, args.passes)
            d_wall, d_cpu, d_rate = (float("nan"), float("nan"), [float("nan")] * 2) if args.no_loader else \
                alternate_loaders(datasets, args.items, args.passes)
            # d_wall is a ratio of times, new/old; as a rate (items/s) it is old/new
            print(f"{scheme:<14}{b_ms[0]:>11.3f}{b_ms[1]:>11.3f}{b_ratio:>10.3f}{d_rate[0]:>12.0f}{d_rate[1]:>12.0f}"
                  f"{1 / d_wall:>10.3f}{d_cpu:>15.3f}", flush=True)
        served = []
        for k, (pkg, ex) in enumerate(zip(packages, export_modules)):
            [path] = ex.export(split="test", scheme="burst_noise", out=Path(scratch) / f"export-{k}" / "test.npy",
                               workers=2, progress=False, clip_tables=f"{scratch}/cache-{k}/burst_noise", **p)
            served.append(pkg.AVMNISTAudioDataset(split="test", scheme="burst_noise", from_export=path,
                                                  clip_tables=f"{scratch}/cache-{k}/burst_noise", **p))
        shuffled = list(range(len(served[0])))
        random.Random(0).shuffle(shuffled)
        shuffled = shuffled[:args.items]
        s_ratio, s_ms = alternate_cpu(served, shuffled, args.passes)
        print(f"(s) served from an export: new {s_ms[0] * 1e3:.1f} us, old {s_ms[1] * 1e3:.1f} us an item; "
              f"new/old {s_ratio:.3f}")
    print("(b), (s): CPU time per item, lower is better, new/old below 1 is faster; (d): items/s (wall), new/old "
          "above 1 is faster; d cpu: CPU time of the main process and both workers per epoch, new/old below 1 is "
          "cheaper")


if __name__ == "__main__":
    main()
