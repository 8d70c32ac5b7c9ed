"""Milliseconds per clip for each rendering route, on real clips, with ratios taken in the same run.

Single process, one core (thread pools pinned to 1 before numpy/numba load)::

    python benchmarks/render.py [--n 512] [--batch 128] [--style 3.10] [--repeat 5] [--no-figure]

Timings are CPU time of this process (``time.process_time``), the minimum over
``--repeat`` rounds, the variants interleaved round by round, so that other
load on a shared machine disturbs them less. An absolute time says little on
a shared machine; the ratios, taken in one run, say more. Routes:

* numpy route: the spelled-out reference (style 3.9 and every fallback take it);
* fast, one clip at a time: ``render`` per clip (the fused route for 3.10/3.11);
* fast, batched: ``render_batch`` over batches of ``--batch`` clips (as a
  DataLoader batch), one FFT per chunk and one kernel call per frame count;
* figure route: the installed matplotlib, as the notebook draws (``--no-figure`` skips it).

Clips: FSDD recordings (padded to 2,048) with ESC-50 noise and time masks,
from ../shared/data, by the test recipe (tests/_render_cases.py).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _machine import cpu_model, versions  # noqa: E402
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
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--style", default="3.10")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-figure", action="store_true", help="skip the matplotlib figure route")
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass
    data = ROOT.parent / "shared" / "data"
    try:
        clips = [x for _, x in real_clips(data, args.n)]
    except FileNotFoundError as exc:
        print(f"real data not found at {data}: {exc}", file=sys.stderr)
        return 2
    n = len(clips)
    frames = [(len(x) - 128) // 128 for x in clips]
    batches = [clips[i : i + args.batch] for i in range(0, n, args.batch)]

    from avmnist_torch.rendering import fast, render_batch, render_spectrogram

    renderer = fast.FastRenderer(args.style)
    t0 = time.process_time()
    render_batch(clips, SR, style=args.style)  # compile or load the kernels, probe, build the geometries
    warm = time.process_time() - t0
    for x in clips:
        renderer._render_numpy(x, SR)

    best = _interleaved(
        {
            "numpy": lambda: [renderer._render_numpy(x, SR) for x in clips],
            "single": lambda: [render_spectrogram(x, SR, style=args.style) for x in clips],
            "batch": lambda: [render_batch(b, SR, style=args.style) for b in batches],
        },
        args.repeat,
    )
    ms = lambda t: t / n * 1e3  # noqa: E731
    print(f"CPU: {cpu_model()}; python {platform.python_version()}, {versions()}")
    print(f"{n} real clips (frames per clip: median {int(np.median(frames))}, mean {np.mean(frames):.1f}, "
          f"max {max(frames)}), sample rate {SR}, one core; fast style {args.style}; "
          f"fused route {'on' if args.style != '3.9' and fast.fused_mode() is not None else 'off'}")
    print(f"first call (kernels, probe, geometries): {warm:.2f} s CPU")
    print(f"CPU time per clip, min of {args.repeat} interleaved rounds:")
    print(f"  numpy route                     : {ms(best['numpy']):7.3f} ms")
    print(f"  fast, one clip at a time        : {ms(best['single']):7.3f} ms   "
          f"({best['numpy'] / best['single']:5.1f}x the numpy route)")
    print(f"  fast, batched ({args.batch:3d} a batch)     : {ms(best['batch']):7.3f} ms   "
          f"({best['numpy'] / best['batch']:5.1f}x the numpy route, "
          f"{best['single'] / best['batch']:4.2f}x one at a time)")
    got = np.concatenate([render_batch(b, SR, style=args.style) for b in batches])
    same = np.array_equal(got, np.stack([renderer._render_numpy(x, SR) for x in clips]))
    print(f"batched == numpy route on all {n} clips: {same}")
    if args.no_figure:
        return 0 if same else 1
    from avmnist_torch.rendering.figure import FigureRenderer

    fig = FigureRenderer()
    fig.render(clips[0], SR)
    t = time.process_time()
    ref = [fig.render(x, SR) for x in clips]
    t_fig = time.process_time() - t
    print(f"  figure route (matplotlib {fig.style}) : {ms(t_fig):7.3f} ms   "
          f"(batched fast is {t_fig / best['batch']:5.1f}x faster, one at a time {t_fig / best['single']:5.1f}x)")
    if fig.style == args.style:
        equal = np.array_equal(np.stack(ref), got)
        print(f"pixels equal to the figure route on all {n} clips: {equal}")
        same = same and equal
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
