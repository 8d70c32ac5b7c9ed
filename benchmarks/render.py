"""Milliseconds per clip: the matplotlib figure route vs the fast renderer, on real clips.

Single process, one core (thread pools pinned to 1 before numpy/numba load)::

    python benchmarks/render.py [--n 500] [--style 3.10]

Clips: FSDD recordings (padded to 2,048) with ESC-50 noise and time masks,
from ../shared/data, by the test recipe (tests/_render_cases.py).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _render_cases import SR, real_clips  # noqa: E402


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--style", default="3.10")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass
    data = ROOT.parent / "shared" / "data"
    clips = [x for _, x in real_clips(data, args.n)]
    n = len(clips)

    from avmnist_torch.rendering.fast import FastRenderer
    from avmnist_torch.rendering.figure import FigureRenderer

    fig = FigureRenderer()
    fast = FastRenderer(args.style)
    fast.render_batch(clips, SR)  # compile numba (cached) and fill the geometry cache
    fig.render(clips[0], SR)

    t_fig = _best(lambda: [fig.render(x, SR) for x in clips], 1)
    t_one = _best(lambda: [fast.render(x, SR) for x in clips], args.repeat)
    t_batch = _best(lambda: fast.render_batch(clips, SR), args.repeat)
    same = fig.style == args.style and np.array_equal(fig.render_batch(clips[:50], SR), fast.render_batch(clips[:50], SR))
    ms = lambda t: t / n * 1e3  # noqa: E731
    print(f"{n} real clips, sample rate {SR}, one core; fast style {args.style}, installed matplotlib {fig.style}")
    print(f"figure route (matplotlib)    : {ms(t_fig):7.3f} ms/clip")
    print(f"fast, one clip at a time     : {ms(t_one):7.3f} ms/clip   ({t_fig / t_one:5.1f}x faster)")
    print(f"fast, batched (render_batch) : {ms(t_batch):7.3f} ms/clip   ({t_fig / t_batch:5.1f}x faster)")
    if fig.style == args.style:
        print(f"pixels equal on the first 50 clips: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
