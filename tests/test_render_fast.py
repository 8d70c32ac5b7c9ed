"""The fast renderer against the installed matplotlib's figure route, pixel for pixel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import notebook_reference as nb
from _render_cases import SR, real_clips, synthetic_clips

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
N_REAL = 1000

mpl = pytest.importorskip("matplotlib")

from avmnist_torch.rendering import STYLES, get_renderer, render_batch, render_spectrogram  # noqa: E402
from avmnist_torch.rendering.fast import FastRenderer  # noqa: E402
from avmnist_torch.rendering.figure import FigureRenderer, installed_matplotlib_version  # noqa: E402

INSTALLED = installed_matplotlib_version()
if INSTALLED not in STYLES:
    pytest.skip(f"installed matplotlib {INSTALLED} is not one of the styles {STYLES}", allow_module_level=True)


notebook_wav_to_spectrogram = nb.wav_to_spectrogram  # the notebook's function, copied literally there


@pytest.fixture(scope="module")
def real():
    try:
        return real_clips(DATA, N_REAL)
    except FileNotFoundError as exc:
        pytest.skip(f"real data not found at {DATA}: {exc}")


def _assert_same(names, got, ref):
    diff = got != ref
    bad = [names[i] for i in np.flatnonzero(diff.reshape(len(names), -1).any(axis=1))]
    assert not bad, f"{len(bad)} of {len(names)} clips differ, {int(diff.sum())} pixels; first: {bad[:5]}"


def test_synthetic_equals_installed_figure_route():
    clips = synthetic_clips()
    fig = FigureRenderer()
    fast = FastRenderer(INSTALLED)
    names = list(clips)
    ref = np.stack([fig.render(clips[k], SR) for k in names])
    got = np.stack([fast.render(clips[k], SR) for k in names])
    _assert_same(names, got, ref)


def test_edge_inputs_shapes_and_dtypes():
    fast = FastRenderer(INSTALLED)
    fig = FigureRenderer()
    rng = np.random.default_rng(3)
    x64 = rng.standard_normal(5000)
    for x in (x64, x64.astype(np.float32), np.full(3000, 0.25, np.float32), rng.standard_normal(200).astype(np.float32)):
        got = fast.render(x, SR)
        assert got.dtype == np.uint8 and got.shape == (112, 112)
        assert np.array_equal(got, fig.render(x, SR))
    for sr in (16000, 22050):
        x = rng.standard_normal(6000).astype(np.float32)
        assert np.array_equal(fast.render(x, sr), fig.render(x, sr))


@pytest.mark.slow
def test_real_clips_equal_installed_figure_route(real):
    assert len(real) >= 1000
    names = [n for n, _ in real]
    clips = [x for _, x in real]
    ref = FigureRenderer().render_batch(clips, SR)
    got = FastRenderer(INSTALLED).render_batch(clips, SR)
    _assert_same(names, got, ref)
    one = np.stack([FastRenderer(INSTALLED).render(x, SR) for x in clips[:200]])
    assert np.array_equal(one, got[:200]), "render_batch and render disagree"


@pytest.mark.slow
def test_notebook_function_literally_on_a_subset(real):
    clips = synthetic_clips()
    subset = [x for _, x in real[:60]] + [clips[k] for k in ("silence", "dc", "impulse", "tiny", "huge", "random00")]
    ref = np.stack([notebook_wav_to_spectrogram(x, SR) for x in subset])
    got = FastRenderer(INSTALLED).render_batch(subset, SR)
    assert np.array_equal(got, ref)
    assert np.array_equal(FigureRenderer().render_batch(subset, SR), ref)


def test_function_api_and_default_style():
    x = synthetic_clips()["random01"]
    assert get_renderer().style == "3.10"
    assert np.array_equal(render_spectrogram(x, SR), FastRenderer("3.10").render(x, SR))
    b = render_batch([x, x[:3000]], SR, style="3.11")
    assert b.shape == (2, 112, 112) and b.dtype == np.uint8
    assert np.array_equal(b[1], FastRenderer("3.11").render(x[:3000], SR))
    with pytest.raises(ValueError):
        FastRenderer("3.8")


@pytest.mark.slow  # a fresh interpreter
def test_fast_renderer_does_not_import_matplotlib():
    code = (
        "import sys, numpy as np\n"
        "from avmnist_torch.rendering import render_spectrogram, render_batch\n"
        "x = np.random.default_rng(0).standard_normal(4000).astype(np.float32)\n"
        "for s in ('3.9', '3.10', '3.11'):\n"
        "    render_spectrogram(x, 8000, style=s); render_batch([x, x[:2500]], 8000, style=s)\n"
        "bad = sorted(m for m in sys.modules if m == 'matplotlib' or m.startswith('matplotlib.'))\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_pure_function_same_bytes_any_order():
    clips = list(synthetic_clips().values())
    fast = FastRenderer("3.10")
    a = fast.render_batch(clips, SR)
    b = FastRenderer("3.10").render_batch(clips[::-1], SR)[::-1]
    assert np.array_equal(a, b)


def test_fused_kernels_equal_numpy_route_all_styles():
    """The fused numba route (3.10, 3.11) against the spelled-out numpy route, incl. the clips it leaves to numpy."""
    rng = np.random.default_rng(11)
    clips = list(synthetic_clips(seed=5, n_random=12).values())
    clips += [rng.standard_normal(128 * (w + 1) + 5).astype(np.float32) for w in (1, 2, 111, 112, 113, 141, 142, 200)]
    masked = rng.standard_normal(6000).astype(np.float32)
    masked[1000:2600] = 0
    clips += [masked, rng.standard_normal(7000), np.zeros(100, np.float32)]
    bad = rng.standard_normal(5000).astype(np.float32)
    bad[3000] = np.nan
    big = rng.standard_normal(5000) * 1e200  # the PSD overflows to inf
    inf = rng.standard_normal(5000)
    inf[10] = np.inf
    clips += [bad, big, inf, rng.integers(-100, 100, 4000).astype(np.int16)]
    for style in ("3.10", "3.11"):
        fast = FastRenderer(style)
        ref = np.stack([fast._render_numpy(x, sr) for x in clips for sr in (SR, 16000)])
        got = np.stack([fast.render(x, sr) for x in clips for sr in (SR, 16000)])
        assert np.array_equal(got, ref), style
        for sr in (SR, 16000):
            # non-finite clips amid others: the batch's shared FFT scratch must survive the fallback
            batch = fast.render_batch(clips[::-1], sr)[::-1]
            assert np.array_equal(batch, np.stack([fast._render_numpy(x, sr) for x in clips])), style
