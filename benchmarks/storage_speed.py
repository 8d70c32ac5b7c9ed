"""This checkout against another revision, in the same run: batched items, a 2-worker DataLoader, serving an export.

What a change to how files are written and read must not slow down, measured on both sides
alternately so that both meet the same load::

    python benchmarks/storage_speed.py --against 3dcc92b            # ../shared/data
    python benchmarks/storage_speed.py --against 3dcc92b --items 640 --rounds 3 --schemes burst_noise

The other revision's package is taken with ``git archive`` into a temporary folder; each round runs
one fresh process per side (the order alternates between rounds), each with its own warm clip tables.

(b) batched: CPU ms per item of ``ds.__getitems__`` over ``--items`` train items in batches of 128;
(d) loader: items/s (wall) of a DataLoader with 2 persistent workers, the epoch after the first;
(s) served: CPU ms per item of ``from_export=`` batches of 128 in a shuffled order, from an export of
    the test split that each side wrote itself (burst_noise).

Each figure is the median over the rounds; new/old is this checkout's over the other's (time per
item: below 1 is faster; loader rate: above 1 is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model, versions  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCHEMES = ["extreme_noise", "multi_band", "burst_noise", "aliased", "distorted"]

_MEASURE = r"""
import json, os, random, sys, time
package, root, cache, schemes, n, export_dir = sys.argv[1:7]
sys.path.insert(0, package)
import numpy as np, torch
torch.set_num_threads(1)
from avmnist_torch import AVMNISTAudioDataset
n = int(n)
p = dict(recordings=f"{root}/fsdd/recordings", noises=f"{root}/esc50", labels=f"{root}/mnist")
out = {}
for scheme in schemes.split(","):
    ds = AVMNISTAudioDataset(split="train", scheme=scheme, clip_tables=f"{cache}/{scheme}", **p)
    for start in range(0, n, 128):  # warm: every clip these items need in the tables, kernels compiled
        ds.__getitems__(list(range(start, min(n, start + 128))))
    t = time.process_time()
    for start in range(0, n, 128):
        ds.__getitems__(list(range(start, min(n, start + 128))))
    batched = (time.process_time() - t) / n * 1e3
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(n)), batch_size=128, num_workers=2,
                                         persistent_workers=True)
    for _ in loader:
        pass
    t = time.perf_counter()
    for _ in loader:
        pass
    rate = n / (time.perf_counter() - t)
    del loader
    out[scheme] = {"batched": batched, "loader": rate}
served = AVMNISTAudioDataset(split="test", scheme="burst_noise", clip_tables=f"{cache}/burst_noise",
                             from_export=export_dir, **p)
order = list(range(len(served)))
random.Random(0).shuffle(order)
order = order[:n]
served.__getitems__(order[:128])
t = time.process_time()
for start in range(0, n, 128):
    served.__getitems__(order[start:start + 128])
out["served"] = (time.process_time() - t) / n * 1e3
print(json.dumps(out))
"""

_EXPORT = r"""
import sys, warnings
package, root, cache, out = sys.argv[1:5]
sys.path.insert(0, package)
warnings.simplefilter("ignore")
from avmnist_torch.export import export
p = dict(recordings=f"{root}/fsdd/recordings", noises=f"{root}/esc50", labels=f"{root}/mnist")
print(export(split="test", scheme="burst_noise", out=out, workers=2, progress=False, clip_tables=cache, **p)[0])
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", default="3dcc92b", help="the revision to compare with")
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"),
                        help="real data: fsdd/recordings, esc50, mnist (default ../shared/data)")
    parser.add_argument("--items", type=int, default=1280)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--schemes", nargs="*", default=SCHEMES)
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}  ({os.cpu_count()} logical cores)  python {sys.version.split()[0]}")
    print(f"versions: {versions()}")
    revision = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.against], check=True,
                              capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as scratch:
        old = Path(scratch) / "old"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "avmnist_torch"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        sides = {"new": str(REPO), "old": str(old)}
        exports = {}
        for name, package in sides.items():
            out = Path(scratch) / f"export-{name}"
            exports[name] = subprocess.run(
                [sys.executable, "-c", _EXPORT, package, args.root, str(Path(scratch) / f"cache-{name}" / "export"),
                 str(out / "test.npy")], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results = {name: [] for name in sides}
        for r in range(args.rounds):
            for name in (("new", "old") if r % 2 == 0 else ("old", "new")):
                done = subprocess.run(
                    [sys.executable, "-c", _MEASURE, sides[name], args.root, str(Path(scratch) / f"cache-{name}"),
                     ",".join(args.schemes), str(args.items), exports[name]],
                    check=True, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
                results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"round {r + 1} {name} done", file=sys.stderr, flush=True)
    print(f"this checkout (new) against {revision} (old); {args.items} items, median of {args.rounds} rounds")
    print(f"{'scheme':<14}{'(b) old ms':>11}{'(b) new ms':>11}{'new/old':>9}{'(d) old /s':>12}{'(d) new /s':>12}"
          f"{'new/old':>9}")
    for scheme in args.schemes:
        b = {k: statistics.median(r[scheme]["batched"] for r in v) for k, v in results.items()}
        d = {k: statistics.median(r[scheme]["loader"] for r in v) for k, v in results.items()}
        print(f"{scheme:<14}{b['old']:>11.3f}{b['new']:>11.3f}{b['new'] / b['old']:>9.3f}{d['old']:>12.0f}"
              f"{d['new']:>12.0f}{d['new'] / d['old']:>9.3f}")
    s = {k: statistics.median(r["served"] for r in v) for k, v in results.items()}
    print(f"(s) served from an export, ms per item: old {s['old']:.4f}, new {s['new']:.4f}, "
          f"new/old {s['new'] / s['old']:.3f}")


if __name__ == "__main__":
    main()
