"""Renderer inputs checked at the door; an unverified matplotlib warns; numba without a cache still renders."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import avmnist_torch.rendering as rendering
from avmnist_torch.common import ParameterError
from avmnist_torch.rendering import UnverifiedMatplotlibWarning, get_renderer, render_batch, render_spectrogram

ROOT = Path(__file__).resolve().parents[1]
SR = 8000
CLIP = np.random.default_rng(0).standard_normal(4000).astype(np.float32)


@pytest.mark.parametrize(
    "rate, message",
    [
        (0, "positive finite"),
        (-8000, "positive finite"),
        (float("nan"), "positive finite"),
        (float("inf"), "positive finite"),
        (8000.5, "whole number"),
        ("8000", "got str '8000'"),
        (None, "got NoneType"),
        (True, "got bool"),
    ],
)
@pytest.mark.parametrize("renderer", ["fast", "matplotlib"])
def test_bad_sample_rate(rate, message, renderer):
    if renderer == "matplotlib":
        pytest.importorskip("matplotlib")
    with pytest.raises(ParameterError, match=f"sample_rate .*{message}"):
        render_spectrogram(CLIP, rate, renderer=renderer)
    with pytest.raises(ParameterError, match="sample_rate"):
        render_batch([CLIP], rate, renderer=renderer)


@pytest.mark.parametrize(
    "clip, message",
    [
        (np.zeros((2, 4000), np.float32), r"must be a 1-D waveform, got an array of shape \(2, 4000\)"),
        (np.float32(1.0), r"must be a 1-D waveform, got an array of shape \(\)"),
        (np.zeros(0, np.float32), "is empty"),
        (np.zeros(4000, np.complex64), "must hold real numbers .* complex64"),
        (np.array(["a", "b"]), "must hold real numbers"),
        (np.zeros(4000, bool), "must hold real numbers .* bool"),
    ],
)
def test_bad_clip(clip, message):
    with pytest.raises(ParameterError, match=f"samples {message}"):
        render_spectrogram(clip, SR)
    with pytest.raises(ParameterError, match=f"clip 1 of the batch {message}"):
        render_batch([CLIP, clip], SR)


def test_whole_float_and_numpy_rates_are_the_same_rate():
    want = render_spectrogram(CLIP, 8000)
    for rate in (8000.0, np.int64(8000), np.float32(8000)):
        assert np.array_equal(render_spectrogram(CLIP, rate), want)


def test_unknown_renderer_and_style_are_parameter_errors():
    with pytest.raises(ParameterError, match="unknown renderer 'opengl'"):
        get_renderer("opengl")
    with pytest.raises(ParameterError, match="unknown style '3.8'"):
        get_renderer("fast", "3.8")


def _fresh_matplotlib_renderer(monkeypatch, version):
    mpl = pytest.importorskip("matplotlib")
    monkeypatch.setattr(mpl, "__version__", version)
    monkeypatch.setattr(rendering, "_RENDERERS", {})


def test_unverified_matplotlib_warns_once(monkeypatch):
    _fresh_matplotlib_renderer(monkeypatch, "3.12.1")
    with pytest.warns(UnverifiedMatplotlibWarning, match="matplotlib 3.12, whose pixels this package has not verified"):
        renderer = get_renderer("matplotlib")
    assert renderer.style == "3.12"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert get_renderer("matplotlib") is renderer
        get_renderer("matplotlib").render(CLIP, SR)  # it still draws


@pytest.mark.parametrize("version", ["3.9.4", "3.10.9", "3.11.2"])
def test_verified_matplotlib_does_not_warn(monkeypatch, version):
    _fresh_matplotlib_renderer(monkeypatch, version)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert get_renderer("matplotlib").style == version.rsplit(".", 1)[0]


@pytest.mark.slow  # a fresh process compiles every kernel without a cache
def test_numba_without_a_writable_cache_still_imports_and_gives_the_same_bytes(tmp_path):
    """In a read-only install numba.njit(cache=True) raises 'no locator available' when it decorates.

    Simulated for the rendering package's kernels (the ones this test is about);
    the renderer must still import, take the fused route compiled without a
    cache, and give the same bytes.
    """
    clips = [CLIP, CLIP[:3000].astype(np.float64), np.zeros(2048, np.float32)]
    want = np.stack([render_batch(clips, SR, style=s) for s in ("3.9", "3.10", "3.11")])
    np.save(tmp_path / "clips.npy", np.array(clips, dtype=object), allow_pickle=True)
    code = f"""
import numba, numpy as np
real_njit = numba.njit

def njit(*args, **options):
    if options.get("cache"):
        def decorate(func):
            if not func.__module__.startswith("avmnist_torch.rendering"):
                return real_njit(*args, **options)(func)
            raise RuntimeError(f"cannot cache function {{func.__name__!r}}: no locator available for file 'x.py'")
        return decorate(args[0]) if args else decorate
    return real_njit(*args, **options)

numba.njit = njit
from avmnist_torch.rendering import fast, kernels, render_batch
uncached = [type(k._cache).__name__ for k in (kernels.window_frames, kernels.power, kernels.draw)]
assert uncached == ["NullCache"] * 3, uncached  # the fallback really ran
assert fast.fused_mode() is not None, "the fused route should still compile, without a cache"
clips = list(np.load({str(tmp_path / "clips.npy")!r}, allow_pickle=True))
np.save({str(tmp_path / "got.npy")!r}, np.stack([render_batch(clips, {SR}, style=s) for s in ("3.9", "3.10", "3.11")]))
"""
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert np.array_equal(np.load(tmp_path / "got.npy"), want)
