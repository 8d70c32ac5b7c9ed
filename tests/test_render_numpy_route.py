"""The numpy route on its own against the matplotlib goldens: what machines whose numpy rounds in a way the fused
kernels do not reproduce draw, for every style."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _render_cases import SR, synthetic_clips
from avmnist_torch.rendering import STYLES, render_batch, render_spectrogram
from avmnist_torch.rendering import fast as fast_module

GOLDENS = Path(__file__).resolve().parent / "data" / "render_goldens"


@pytest.fixture
def numpy_route_only(monkeypatch):
    """As where the probe matched neither arithmetic: the fused route reports itself unavailable."""
    monkeypatch.setattr(fast_module, "_MODE", {"cmul_fma": None})
    assert fast_module.fused_mode() is None


@pytest.mark.parametrize("style", STYLES)
def test_numpy_route_reproduces_goldens(style, numpy_route_only):
    path = GOLDENS / f"goldens_{style}.npz"
    if not path.exists():
        pytest.fail(f"golden file missing: {path} (run scripts/make_render_goldens.py)")
    g = np.load(path)
    clips = synthetic_clips()
    names = list(clips)
    got = render_batch([clips[k] for k in names], SR, style=style)
    bad = [k for k, img in zip(names, got) if not np.array_equal(img, g[f"syn:{k}"])]
    assert not bad, f"style {style}: {len(bad)} of {len(names)} synthetic clips differ: {bad[:5]}"
    one = [k for k in names[:8] if not np.array_equal(render_spectrogram(clips[k], SR, style=style), g[f"syn:{k}"])]
    assert not one, one

