"""The fast renderer against golden images from matplotlib 3.9.4, 3.10.9 and 3.11.2.

The goldens were drawn by the notebook's ``wav_to_spectrogram`` under each
version in a throwaway environment (``scripts/make_render_goldens.py``, which
says how to remake them). Synthetic inputs are regenerated from a seeded
Generator; real-data inputs from ``../shared/data`` by the same recipe as the
script (skipped when the data are absent).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _render_cases import SR, real_clips, synthetic_clips
from avmnist_torch.rendering.fast import FastRenderer

ROOT = Path(__file__).resolve().parents[1]
GOLDENS = ROOT / "tests" / "data" / "render_goldens"
DATA = ROOT.parent / "shared" / "data"
N_REAL = 60  # as scripts/make_render_goldens.py
STYLES = ("3.9", "3.10", "3.11")


def _goldens(style):
    path = GOLDENS / f"goldens_{style}.npz"
    if not path.exists():
        pytest.fail(f"golden file missing: {path} (run scripts/make_render_goldens.py)")
    return np.load(path)


@pytest.mark.parametrize("style", STYLES)
def test_synthetic_goldens(style):
    g = _goldens(style)
    assert str(g["__version__"]).startswith(style + ".")
    fast = FastRenderer(style)
    clips = synthetic_clips()
    bad = [k for k, x in clips.items() if not np.array_equal(fast.render(x, SR), g[f"syn:{k}"])]
    assert not bad, f"style {style}: {len(bad)} of {len(clips)} synthetic clips differ: {bad[:5]}"


@pytest.fixture(scope="module")
def real():
    try:
        return real_clips(DATA, N_REAL)
    except FileNotFoundError as exc:
        pytest.skip(f"real data not found at {DATA}: {exc}")


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_real_goldens(style, real):
    g = _goldens(style)
    keys = [f"real:{name}" for name, _ in real]
    missing = [k for k in keys if k not in g.files]
    assert not missing, f"goldens lack {len(missing)} real clips; remake them"
    got = FastRenderer(style).render_batch([x for _, x in real], SR)
    bad = [k for k, img in zip(keys, got) if not np.array_equal(img, g[k])]
    assert not bad, f"style {style}: {len(bad)} of {len(keys)} real clips differ: {bad[:5]}"
