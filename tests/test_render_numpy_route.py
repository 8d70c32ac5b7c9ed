"""The numpy route on its own against the matplotlib goldens: what installs without numba (or whose numpy rounds
in a way the fused kernels do not reproduce) draw, for every style."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _render_cases import SR, synthetic_clips
from avmnist_torch.rendering import STYLES, render_batch, render_spectrogram
from avmnist_torch.rendering import fast as fast_module

GOLDENS = Path(__file__).resolve().parent / "data" / "render_goldens"


@pytest.fixture
def numpy_route_only(monkeypatch):
    """As without numba: the fused route reports itself unavailable."""
    monkeypatch.setattr(fast_module, "_MODE", [None])
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


def test_without_numba_the_renderer_imports_and_draws_the_goldens():
    """numba absent (``import numba`` fails): no kernels, every clip through the numpy route."""
    code = f"""
import sys
sys.modules["numba"] = None  # import numba -> ImportError
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
import numpy as np
from _render_cases import SR, synthetic_clips
from avmnist_torch.rendering import fast, kernels, render_batch
assert not kernels.AVAILABLE and fast.fused_mode() is None
clips = synthetic_clips()
for style in ("3.9", "3.10", "3.11"):
    g = np.load({str(GOLDENS)!r} + f"/goldens_{{style}}.npz")
    got = render_batch(list(clips.values()), SR, style=style)
    assert all(np.array_equal(img, g["syn:" + k]) for k, img in zip(clips, got)), style
print("ok")
"""
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-3000:]
