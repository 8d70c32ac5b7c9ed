"""Agg's hanning image filter and resampling span generator, bit for bit.

matplotlib resamples the coloured spectrogram with Agg's
``span_image_resample_rgba_affine`` (3.10, 3.11) or ``..._gray_affine``
(3.9, on the data). The pixels depend on integer details: a 512-entry int16
weight table, integer tap weights ``(wy * wx + 8192) >> 14``, and float64 sums
taken tap by tap, y outer and x inner. Flat regions of the image sit exactly on
uint8 truncation boundaries, so any other summation order changes pixels; the
kernel below keeps Agg's order and uses no fast-math.
"""

from __future__ import annotations

import math

import numpy as np

try:  # numba comes with librosa; without it the same loops run in numpy below.
    import numba

    _njit = numba.njit(cache=True, nogil=True, fastmath=False)
except Exception:  # pragma: no cover
    numba = None
    _njit = None

_FILTER_SHIFT = 14
_FILTER_SCALE = 1 << _FILTER_SHIFT
_SUBPIXEL_SCALE = 256


def _iround(v: float) -> int:
    return int(v - 0.5) if v < 0 else int(v + 0.5)


def hanning_lut(fixed: bool) -> np.ndarray:
    """``agg::image_filter_lut`` for ``image_filter_hanning`` (radius 1).

    Parameters
    ----------
    fixed : bool
        True for matplotlib >= 3.11, built with ``MPL_FIX_AGG_IMAGE_FILTER_LUT_BUGS``
        (table centred at index 255 and not re-symmetrised after normalising);
        False for the original Agg code that 3.9 and 3.10 use.
    """
    diameter = 2
    size = diameter << 8
    w = [0] * size

    def calc(x):
        return 0.5 + 0.5 * math.cos(math.pi * x)  # libm cos, as agg

    if not fixed:
        pivot = diameter << 7
        for i in range(pivot):
            y = (calc(float(i) / 256.0))
            w[pivot + i] = w[pivot - i] = _iround(y * _FILTER_SCALE)
        end = size - 1
        w[0] = w[end]
    else:
        pivot = (diameter << 7) - 1
        for i in range(pivot + 1):
            y = (calc(float(i) / 256.0))
            w[pivot + i] = w[pivot - i] = _iround(y * _FILTER_SCALE)
        end = size - 1
        w[end] = _iround((calc(diameter / 2)) * _FILTER_SCALE)

    # image_filter_lut::normalize; int16 storage does not overflow for this filter.
    flip = 1
    for i in range(256):
        while True:
            total = sum(w[j * 256 + i] for j in range(diameter))
            if total == _FILTER_SCALE:
                break
            k = float(_FILTER_SCALE) / float(total)
            total = 0
            for j in range(diameter):
                w[j * 256 + i] = _iround(w[j * 256 + i] * k)
                total += w[j * 256 + i]
            total -= _FILTER_SCALE
            inc = -1 if total > 0 else 1
            j = 0
            while j < diameter and total:
                flip ^= 1
                idx = diameter // 2 + j // 2 if flip else diameter // 2 - j // 2
                v = w[idx * 256 + i]
                if v < _FILTER_SCALE:
                    w[idx * 256 + i] += inc
                    total += inc
                j += 1
    if not fixed:
        pivot = diameter << 7
        for i in range(pivot):
            w[pivot + i] = w[pivot - i]
        w[0] = w[size - 1]
    return np.asarray(w, dtype=np.int64)


def _resample_py(chan, alpha, row_idx, row_w, row_n, col_idx, col_w, col_n, out_c, out_a):
    """Reference loops (used when numba is unavailable)."""
    out_h, out_w = out_c.shape
    for r in range(out_h):
        for c in range(out_w):
            acc_c = 0.0
            acc_a = 0.0
            total = 0
            for j in range(row_n[r]):
                wy = row_w[r, j]
                ri = row_idx[r, j]
                for k in range(col_n[c]):
                    w = (wy * col_w[c, k] + _FILTER_SCALE // 2) >> _FILTER_SHIFT
                    ci = col_idx[c, k]
                    acc_c += chan[ri, ci] * w
                    acc_a += alpha[ri, ci] * w
                    total += w
            out_c[r, c] = acc_c / total
            out_a[r, c] = acc_a / total


if _njit is not None:
    _resample = _njit(_resample_py)
else:  # pragma: no cover
    _resample = _resample_py


def resample(chan, alpha, plan):
    """Filter two channels (colour and alpha) with Agg's taps and order.

    Returns the per-pixel weighted sums divided by the integer weight total,
    before any clamping, as float64 arrays of the plan's output shape.
    """
    out_c = np.empty((plan["out_h"], plan["out_w"]), np.float64)
    out_a = np.empty_like(out_c)
    _resample(chan, alpha, *plan["row"], *plan["col"], out_c, out_a)
    return out_c, out_a


def _draw_rgba_py(chan, alpha, row_idx, row_w, row_n, col_idx, col_w, col_n,
                  out_h, out_w, xdst, ydst, premultiplied, canvas):
    """Resample (3.10 or 3.11 rules), convert to bytes and blend over white, fused.

    ``canvas`` (112, 112) uint8 must arrive filled with 255. Canvas row k shows
    resampled row ``out_h - 1 - (k - ydst)`` (draw_image attaches the image
    bottom-up), column c shows column ``c - xdst``.
    """
    size = canvas.shape[0]
    for k in range(size):
        r = out_h - 1 - (k - ydst)
        if r < 0 or r >= out_h:
            continue
        for cc in range(size):
            c = cc - xdst
            if c < 0 or c >= out_w:
                continue
            acc_c = 0.0
            acc_a = 0.0
            total = 0
            for j in range(row_n[r]):
                wy = row_w[r, j]
                ri = row_idx[r, j]
                for q in range(col_n[c]):
                    w = (wy * col_w[c, q] + 8192) >> 14
                    ci = col_idx[c, q]
                    acc_c += chan[ri, ci] * w
                    acc_a += alpha[ri, ci] * w
                    total += w
            v = acc_c / total
            a = acc_a / total
            if premultiplied:
                # span_image_resample_rgba_affine's clamps, then blender_rgba_pre
                # into the zeroed output and image.py's demultiply.
                if v < 0.0:
                    v = 0.0
                if a < 0.0:
                    a = 0.0
                if a > 1.0:
                    a = 1.0
                if v > a:
                    v = a
                if a <= 0.0:
                    continue
                if a < 1.0:
                    a = a * 255 / 255
                    v = v * 255 / 255
                v = v / a
            else:
                # RGB resampled with alpha 1 (A is exactly 1), alpha on its own.
                if v < 0.0:
                    v = 0.0
                if v > 1.0:
                    v = 1.0
            r8 = int(v * 255)
            a8 = int(a * 255)
            if a8 == 0:
                continue
            if a8 == 255:
                canvas[k, cc] = r8
            else:
                canvas[k, cc] = ((r8 * 256 - 65025) * a8 + 65025 * 256) // (a8 + 65280)


if _njit is not None:
    _draw_rgba = _njit(_draw_rgba_py)
else:  # pragma: no cover
    _draw_rgba = _draw_rgba_py
