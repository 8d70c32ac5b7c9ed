"""render_batch against render, clip by clip, and the per-geometry work done once per process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _render_cases import SR, real_clips
from avmnist_torch.rendering import STYLES, render_batch, render_spectrogram
from avmnist_torch.rendering import fast as fast_module
from avmnist_torch.rendering import kernels, taps
from avmnist_torch.rendering.fast import RENDER_CHUNK_FRAMES, FastRenderer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _mixed_clips(seed=0):
    """Mixed frame counts (several clips per count, shorter than one frame too), silence, masked spans, dtypes."""
    rng = np.random.default_rng(seed)
    clips = []
    for frames in (15, 25, 25, 26, 25, 112, 113, 141, 15, 60):
        n = 128 * (frames + 1) + int(rng.integers(0, 128))
        clips.append((rng.standard_normal(n) * rng.uniform(1e-3, 2.0)).astype(np.float32))
    clips.append(np.zeros(3000, np.float32))  # silent: every cell masked
    masked = rng.standard_normal(6000).astype(np.float32)
    masked[1000:2600] = 0  # time-masked span: whole silent frames
    masked[4000:4300] = 0
    clips.append(masked)
    edge = rng.standard_normal(5000).astype(np.float32)
    edge[:1500] = 0  # masked at the left edge, where taps reflect
    clips.append(edge)
    clips.append(rng.standard_normal(200).astype(np.float32))  # shorter than NFFT: zero-padded
    clips.append(rng.standard_normal(256).astype(np.float32))
    clips.append(rng.standard_normal(7000))  # float64
    clips.append(rng.integers(-3000, 3000, 4000).astype(np.int16))
    clips.append(np.full(3000, 0.25, np.float32))  # DC
    clips.append(rng.standard_normal(9000).astype(np.float32)[::2])  # not contiguous
    clips.append(rng.standard_normal(4000).astype(">f4"))  # big-endian: not a dtype numba reads
    readonly = rng.standard_normal(4500).astype(np.float32)
    readonly.setflags(write=False)
    clips.append(readonly)
    return clips


def _per_clip(style, clips, sr=SR):
    return np.stack([render_spectrogram(x, sr, style=style) for x in clips])


@pytest.mark.parametrize("style", STYLES)
def test_batch_equals_render_per_clip_mixed_frame_counts(style):
    clips = _mixed_clips()
    one = _per_clip(style, clips)
    assert np.array_equal(render_batch(clips, SR, style=style), one)
    assert np.array_equal(render_batch(clips[::-1], SR, style=style), one[::-1])
    ref = FastRenderer(style)
    assert np.array_equal(one, np.stack([ref._render_numpy(x, SR) for x in clips]))


@pytest.mark.parametrize("style", STYLES)
def test_batches_of_one_and_empty(style):
    for x in _mixed_clips(seed=1):
        got = render_batch([x], SR, style=style)
        assert got.shape == (1, 112, 112) and np.array_equal(got[0], FastRenderer(style)._render_numpy(x, SR))
    assert render_batch([], SR, style=style).shape == (0, 112, 112)


@pytest.mark.parametrize("style", ("3.10", "3.11"))
def test_batch_larger_than_a_chunk_with_non_finite_clips_amid(style):
    """Several chunks, frame counts interleaved, NaN/inf clips (numpy route) mixed into the fused ones."""
    rng = np.random.default_rng(5)
    clips = _mixed_clips(seed=2) * 3
    bad = rng.standard_normal(5000).astype(np.float32)
    bad[2000] = np.nan
    huge = rng.standard_normal(4000) * 1e200  # the PSD overflows to inf
    clips[4:4] = [bad]
    clips[20:20] = [huge]
    assert sum(len(x) // 128 for x in clips) > 2 * RENDER_CHUNK_FRAMES
    order = rng.permutation(len(clips))
    clips = [clips[i] for i in order]
    ref = FastRenderer(style)
    assert np.array_equal(render_batch(clips, SR, style=style), np.stack([ref._render_numpy(x, SR) for x in clips]))


def test_long_clip_amid_short_ones():
    """A clip of more frames than the kept scratch holds gets buffers of its own; the others are unaffected."""
    rng = np.random.default_rng(4)
    clips = _mixed_clips(seed=3)[:4] + [rng.standard_normal(128 * (8 * RENDER_CHUNK_FRAMES + 40)).astype(np.float32)]
    clips += _mixed_clips(seed=4)[:3]
    for style in ("3.10", "3.11"):
        ref = FastRenderer(style)
        got = render_batch(clips, SR, style=style)
        assert np.array_equal(got, np.stack([ref._render_numpy(x, SR) for x in clips]))
    assert fast_module._SCRATCH.spectra.frames < 8 * RENDER_CHUNK_FRAMES


def test_out_argument():
    clips = _mixed_clips()[:5]
    out = np.full((5, 112, 112), 7, np.uint8)
    assert render_batch(clips, SR, out=out) is out
    assert np.array_equal(out, _per_clip("3.10", clips))
    with pytest.raises(ValueError, match="out must be"):
        render_batch(clips, SR, out=np.empty((4, 112, 112), np.uint8))
    with pytest.raises(ValueError, match="out must be"):
        render_batch(clips, SR, out=np.empty((5, 112, 112), np.float32))


@pytest.mark.realdata
def test_real_clips_batch_equals_numpy_route_per_clip():
    try:
        real = [x for _, x in real_clips(DATA, 40)]
    except FileNotFoundError as exc:
        pytest.skip(f"real data not found at {DATA}: {exc}")
    clips = real + [np.zeros(2048, np.float32)] + real[:5]
    for style in STYLES:
        ref = FastRenderer(style)
        assert np.array_equal(render_batch(clips, SR, style=style), np.stack([ref._render_numpy(x, SR) for x in clips]))


def test_geometry_built_once_per_process_and_shared_by_renderers():
    taps.geometry.cache_clear()
    clips = _mixed_clips()
    n_geometries = len({max(len(x), 256) // 128 - 1 for x in clips})
    render_batch(clips, SR)
    built = taps.geometry.cache_info().misses
    assert built == n_geometries
    FastRenderer("3.10").render_batch(clips, SR)  # another renderer, the same geometries
    for x in clips:
        FastRenderer("3.10").render(x, SR)
    assert taps.geometry.cache_info().misses == built
    render_batch(clips, 16000)  # another sample rate: new geometries
    assert taps.geometry.cache_info().misses == 2 * built


def test_one_fft_and_one_kernel_call_per_frame_count(monkeypatch):
    if fast_module.fused_mode() is None:
        pytest.skip("the fused route is not available here: it cannot reproduce this numpy's rounding")
    calls = {"fft": 0, "draw": []}
    fft_into = fast_module._fft_into
    draw = kernels.draw

    def counting_fft(spec_in, spec_out):
        calls["fft"] += 1
        fft_into(spec_in, spec_out)

    def counting_draw(z, starts, n_frames, *args):
        calls["draw"].append((n_frames, len(starts)))
        draw(z, starts, n_frames, *args)

    monkeypatch.setattr(fast_module, "_fft_into", counting_fft)
    monkeypatch.setattr(kernels, "draw", counting_draw)
    rng = np.random.default_rng(9)
    counts = [20, 31, 20, 25, 31, 20, 25]
    clips = [rng.standard_normal(128 * (n + 1)).astype(np.float32) for n in counts]
    assert sum(counts) <= RENDER_CHUNK_FRAMES
    got = render_batch(clips, SR)
    assert calls["fft"] == 1
    assert sorted(calls["draw"]) == [(20, 3), (25, 2), (31, 2)]
    monkeypatch.undo()
    assert np.array_equal(got, _per_clip("3.10", clips))
