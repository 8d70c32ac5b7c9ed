"""The numpy route's drawing: Agg's resampling, matplotlib's image stages and the canvas (docs/rendering.md)."""

from __future__ import annotations

import functools

import numpy as np

from .psd import GRAY_R, colour, to_u8
from .settings import IMAGE_SIZE
from .taps import FILTER_SCALE, FILTER_SHIFT, Geometry


@functools.lru_cache(maxsize=128)
def _pixel_taps(geom: Geometry):
    """Per (row tap, column tap), in Agg's order: (source rows, source columns, ``(wy * wx + 8192) >> 14``, real)."""
    rows, cols = geom.rows, geom.cols
    pairs = []
    for j in range(rows.index.shape[1]):
        for q in range(cols.index.shape[1]):
            real = (rows.count[:, None] > j) & (cols.count[None, :] > q)
            w = (rows.weight[:, j, None] * cols.weight[None, :, q] + FILTER_SCALE // 2) >> FILTER_SHIFT
            w = np.where(real, w, 0).astype(np.int16)  # weights are at most 2**14
            for a in (w, real):
                a.setflags(write=False)
            pairs.append((rows.index[:, j], cols.index[:, q], w, real))
    return tuple(pairs)


def resample(channels, geom: Geometry):
    """Agg's filtered resampling (not clamped) of each finite, non-negative channel: (out_h, out_w) float64 each."""
    acc = [np.zeros((geom.out_h, geom.out_w), np.float64) for _ in channels]
    total = np.zeros((geom.out_h, geom.out_w), np.int64)
    for src_rows, src_cols, w, _ in _pixel_taps(geom):
        total += w
        for a, values in zip(acc, channels):
            a += values.take(src_rows, axis=0).take(src_cols, axis=1) * w
    return [a / total for a in acc]


def touches(mask: np.ndarray, geom: Geometry) -> np.ndarray:
    """Output pixels whose filter footprint holds a True cell of ``mask``, even with weight 0 (where a NaN lands)."""
    out = np.zeros((geom.out_h, geom.out_w), bool)
    for src_rows, src_cols, _, real in _pixel_taps(geom):
        out |= mask.take(src_rows, axis=0).take(src_cols, axis=1) & real
    return out


def rgba_stage(red: np.ndarray, alpha: np.ndarray, geom: Geometry):
    """3.10 and 3.11: resample the colours, then convert to bytes. Returns (r8, a8) of the resampled image."""
    if geom.style == "3.11":
        # image.py premultiplies before resampling (a no-op when alpha is all 1).
        c, a = resample([red * alpha, alpha], geom)
        # span_image_resample_rgba_affine clamps A to [0, 1] and R to [0, A].
        a = np.clip(a, 0.0, 1.0)
        c = np.minimum(np.maximum(c, 0.0), a)
        # The output pixfmt (blender_rgba_pre over zeros) copies opaque pixels,
        # drops transparent ones and stores partly covered ones times cover
        # 255 / 255; image.py then demultiplies.
        partial = (a > 0) & (a < 1)
        a_s = np.where(partial, a * 255 / 255, np.where(a >= 1, a, 0.0))
        c_s = np.where(partial, c * 255 / 255, np.where(a >= 1, c, 0.0))
        c_f = c_s / np.where(a_s != 0, a_s, 1.0)
        return to_u8(c_f), to_u8(a_s)
    # 3.10: RGB resampled with alpha 1 everywhere (the clamp to [0, 1]), alpha resampled apart.
    c, a = resample([red, alpha], geom)
    return to_u8(np.minimum(np.maximum(c, 0.0), 1.0)), to_u8(a)


def data_stage(z: np.ndarray, finite: np.ndarray, geom: Geometry):
    """3.9: resample the dB values themselves, then colour (image.py 3.9.4:424-534). Returns (r8, a8).

    Pixels whose footprint touches a masked (-inf or NaN) cell are masked: transparent, white on the canvas.
    """
    h, w = geom.out_h, geom.out_w
    if not finite.any():
        return np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
    vals = z[finite]
    a_min = vals.min()
    a_max = vals.max()
    vmin, vmax = a_min, a_max  # Normalize.autoscale_None on the masked array
    a_scaled = np.array(z, dtype=np.float64)
    dv = np.float64(vmax) - np.float64(vmin)
    vmid = np.float64(vmin) + dv / 2
    fact = 1e7
    newmin = vmid - dv * fact
    if newmin < a_min:
        newmin = None
    else:
        a_min = np.float64(newmin)
    newmax = vmid + dv * fact
    if newmax > a_max:
        newmax = None
    else:
        a_max = np.float64(newmax)
    if newmax is not None or newmin is not None:
        np.clip(a_scaled, newmin, newmax, out=a_scaled)
    offset = 0.1
    frac = 0.8
    vrange = np.array([vmin, vmax], dtype=np.float64)
    a_scaled -= a_min
    vrange -= a_min
    a_min = a_min.astype(np.float64).item()
    a_max = a_max.astype(np.float64).item()
    if a_min != a_max:
        a_scaled /= (a_max - a_min) / frac
        vrange /= (a_max - a_min) / frac
    a_scaled += offset
    vrange += offset
    # Masked cells turn every pixel that reads them into NaN (masked below);
    # the other pixels never read them, so they are summed as 0 here.
    a_scaled[~finite] = 0.0
    (res,) = resample([a_scaled], geom)
    out_mask = touches(~finite, geom)
    res -= offset
    vrange -= offset
    if a_min != a_max:
        res *= (a_max - a_min) / frac
        vrange *= (a_max - a_min) / frac
    res += a_min
    vrange += a_min
    s_vmin, s_vmax = vrange
    # Normalize.__call__ with the shifted limits, then Colormap.__call__.
    if s_vmin == s_vmax:
        x = np.zeros_like(res)
    else:
        x = res.copy()
        x -= s_vmin
        x /= s_vmax - s_vmin
    x *= 256
    x[x == 256] = 255
    under = x < 0
    over = x >= 256
    with np.errstate(invalid="ignore"):
        idx = x.astype(np.int64)
    idx[under] = 0
    idx[over] = 255
    idx[out_mask] = 0
    r8 = to_u8(GRAY_R)[idx]
    a8 = np.where(out_mask, 0, 255).astype(np.uint8)
    r8[out_mask] = 0
    return r8, a8


def over_white(r8: np.ndarray, a8: np.ndarray) -> np.ndarray:
    """Agg's ``fixed_blender_rgba_plain`` of (r, a) over the opaque white canvas."""
    r = r8.astype(np.int64)
    a = a8.astype(np.int64)
    blended = ((r * 256 - 65025) * a + 65025 * 256) // (a + 65280)
    out = np.where(a == 255, r, blended)
    out = np.where(a == 0, 255, out)
    return out.astype(np.uint8)


def place(img: np.ndarray, geom: Geometry) -> np.ndarray:
    """``RendererAgg::draw_image``: flip to canvas rows, offset, clip, white elsewhere."""
    canvas = np.full((IMAGE_SIZE, IMAGE_SIZE), 255, np.uint8)
    rs, cs = geom.canvas_rows, geom.canvas_cols
    flipped = img[::-1]
    canvas[rs, cs] = flipped[rs.start - geom.ydst : rs.stop - geom.ydst, cs.start - geom.xdst : cs.stop - geom.xdst]
    return canvas


def draw(z: np.ndarray, geom: Geometry) -> np.ndarray:
    """The reference route from dB values (129, frames), Nyquist first, to the (112, 112) canvas."""
    if geom.style == "3.9":
        r8, a8 = data_stage(z, np.isfinite(z), geom)
    else:
        r8, a8 = rgba_stage(*colour(z), geom)
    return place(over_white(r8, a8), geom)
