"""Milliseconds per clip: the matplotlib figure route vs the fast renderer, on real clips.

Single process, one core (thread pools pinned to 1 before numpy/numba load)::

    python benchmarks/render.py [--n 500] [--style 3.10] [--repeat 5] [--no-figure]

Fast-renderer timings are CPU time of this process (``time.process_time``),
the minimum over ``--repeat`` rounds, the variants interleaved round by round,
so that other load on a shared machine disturbs them less. "numpy route" is
the spelled-out path the fused kernels replaced (still used for style 3.9 and
as the fallback), timed in the same rounds for an A/B ratio.

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


def _interleaved(fns: dict, repeat: int) -> dict:
    """Min CPU seconds per variant over ``repeat`` rounds, each round running every variant once."""
    best = {k: float("inf") for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.process_time()
            fn()
            best[k] = min(best[k], time.process_time() - t)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--style", default="3.10")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-figure", action="store_true", help="skip the matplotlib figure route")
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass
    data = ROOT.parent / "shared" / "data"
    clips = [x for _, x in real_clips(data, args.n)]
    n = len(clips)
    frames = [(len(x) - 128) // 128 for x in clips]

    from avmnist_torch.rendering.fast import FastRenderer

    fast = FastRenderer(args.style)
    fast.render_batch(clips, SR)  # compile numba (cached), probe, fill the geometry cache
    for x in clips:
        fast._render_numpy(x, SR)

    best = _interleaved(
        {
            "numpy": lambda: [fast._render_numpy(x, SR) for x in clips],
            "single": lambda: [fast.render(x, SR) for x in clips],
            "batch": lambda: fast.render_batch(clips, SR),
        },
        args.repeat,
    )
    ms = lambda t: t / n * 1e3  # noqa: E731
    print(f"{n} real clips (frames per clip: median {int(np.median(frames))}, mean {np.mean(frames):.1f}, "
          f"max {max(frames)}), sample rate {SR}, one core; fast style {args.style}")
    print(f"CPU time, min of {args.repeat} interleaved rounds:")
    print(f"numpy route (previous fast)  : {ms(best['numpy']):7.3f} ms/clip")
    print(f"fast, one clip at a time     : {ms(best['single']):7.3f} ms/clip   "
          f"({best['numpy'] / best['single']:4.1f}x the numpy route)")
    print(f"fast, batched (render_batch) : {ms(best['batch']):7.3f} ms/clip   "
          f"({best['numpy'] / best['batch']:4.1f}x the numpy route)")
    same = np.array_equal(fast.render_batch(clips, SR), np.stack([fast._render_numpy(x, SR) for x in clips]))
    print(f"fused == numpy route on all {n} clips: {same}")
    if args.no_figure:
        return 0
    from avmnist_torch.rendering.figure import FigureRenderer

    fig = FigureRenderer()
    fig.render(clips[0], SR)
    t = time.process_time()
    ref = [fig.render(x, SR) for x in clips]
    t_fig = time.process_time() - t
    print(f"figure route (matplotlib {fig.style}): {ms(t_fig):7.3f} ms/clip   "
          f"(fast single is {t_fig / best['single']:5.1f}x faster)")
    if fig.style == args.style:
        print(f"pixels equal to the figure route on all {n} clips: "
              f"{np.array_equal(np.stack(ref), fast.render_batch(clips, SR))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
