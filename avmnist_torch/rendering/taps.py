"""Agg's hanning filter: its weight table, and which source cells each output pixel reads, once per
(frame count, sample rate, style), in Python floats that follow the C++'s operations (docs/rendering.md)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .settings import IMAGE_SIZE, N_ROWS
from .transform import figure_affine

FILTER_SHIFT = 14
FILTER_SCALE = 1 << FILTER_SHIFT  # tap weights are fixed point with 14 fraction bits
_SUBPIXEL_SHIFT = 8
_SUBPIXEL_SCALE = 1 << _SUBPIXEL_SHIFT
_SUBPIXEL_MASK = _SUBPIXEL_SCALE - 1


def _iround(v: float) -> int:
    """agg::iround: round half away from zero, then truncate to int."""
    return int(v - 0.5) if v < 0 else int(v + 0.5)


@functools.lru_cache(maxsize=None)
def hanning_lut(fixed: bool) -> np.ndarray:
    """``agg::image_filter_lut`` for ``image_filter_hanning`` (radius 1), as int64.

    ``fixed``: built with ``MPL_FIX_AGG_IMAGE_FILTER_LUT_BUGS`` (3.11), else the original code (3.9, 3.10).
    """
    diameter = 2
    size = diameter << 8
    w = [0] * size

    def calc(x):
        return 0.5 + 0.5 * math.cos(math.pi * x)  # libm cos, as agg

    if not fixed:
        pivot = diameter << 7
        for i in range(pivot):
            w[pivot + i] = w[pivot - i] = _iround(calc(float(i) / 256.0) * FILTER_SCALE)
        w[0] = w[size - 1]
    else:
        pivot = (diameter << 7) - 1
        for i in range(pivot + 1):
            w[pivot + i] = w[pivot - i] = _iround(calc(float(i) / 256.0) * FILTER_SCALE)
        w[size - 1] = _iround(calc(diameter / 2) * FILTER_SCALE)

    # image_filter_lut::normalize; int16 storage does not overflow for this filter.
    flip = 1
    for i in range(256):
        while True:
            total = sum(w[j * 256 + i] for j in range(diameter))
            if total == FILTER_SCALE:
                break
            k = float(FILTER_SCALE) / float(total)
            total = 0
            for j in range(diameter):
                w[j * 256 + i] = _iround(w[j * 256 + i] * k)
                total += w[j * 256 + i]
            total -= FILTER_SCALE
            inc = -1 if total > 0 else 1
            j = 0
            while j < diameter and total:
                flip ^= 1
                idx = diameter // 2 + j // 2 if flip else diameter // 2 - j // 2
                if w[idx * 256 + i] < FILTER_SCALE:
                    w[idx * 256 + i] += inc
                    total += inc
                j += 1
    if not fixed:
        pivot = diameter << 7
        for i in range(pivot):
            w[pivot + i] = w[pivot - i]
        w[0] = w[size - 1]
    lut = np.asarray(w, dtype=np.int64)
    lut.setflags(write=False)
    return lut


def _dda(y1: int, y2: int, count: int, n: int):
    """agg::dda2_line_interpolator (forward-adjusted): the first n values."""
    cnt = count if count > 0 else 1
    d = y2 - y1
    lft = int(d / cnt)  # C integer division truncates toward zero
    rem = d - lft * cnt
    mod = rem
    if mod <= 0:
        mod += count
        rem += count
        lft -= 1
    mod -= count
    y = y1
    out = [y]
    for _ in range(n - 1):
        mod += rem
        y += lft
        if mod > 0:
            mod -= cnt
            y += 1
        out.append(y)
    return out


def _reflect(v: int, size: int) -> int:
    """``image_accessor_wrap<wrap_mode_reflect>``: taps past an edge read back inwards."""
    m = v % (2 * size)
    return 2 * size - m - 1 if m >= size else m


@dataclass(frozen=True, eq=False)
class AxisTaps:
    """Source cell ``index[i, t]`` and LUT ``weight[i, t]`` of tap t of output pixel i; past ``count[i]``, 0 and 0."""

    index: np.ndarray
    weight: np.ndarray
    count: np.ndarray


def _axis_taps(coords, r, r_inv, size, weights) -> AxisTaps:
    """Source indices and LUT weights of the filter taps along one axis (span_image_resample_*::generate)."""
    filter_scale = 2 << _SUBPIXEL_SHIFT  # diameter 2 (hanning)
    radius = (2 * r) >> 1
    taps = []
    for c in coords:
        c = c + (_SUBPIXEL_SCALE // 2) - radius
        lr = c >> _SUBPIXEL_SHIFT
        hr = ((_SUBPIXEL_MASK - (c & _SUBPIXEL_MASK)) * r_inv) >> _SUBPIXEL_SHIFT
        row = []
        while True:
            row.append((_reflect(lr, size), int(weights[hr])))
            hr += r_inv
            if hr >= filter_scale:
                break
            lr += 1
        taps.append(row)
    n = max(len(t) for t in taps)
    index = np.array([[j for j, _ in row] + [0] * (n - len(row)) for row in taps], np.int64)
    weight = np.array([[w for _, w in row] + [0] * (n - len(row)) for row in taps], np.int64)
    return AxisTaps(index, weight, np.array([len(row) for row in taps], np.int64))


def _filter_radius(scale: float):
    """``span_image_resample_affine::prepare``: the widened radius and its inverse on one axis."""
    return int(scale * _SUBPIXEL_SCALE + 0.5), int(1.0 / scale * _SUBPIXEL_SCALE + 0.5)  # agg::uround


@dataclass(frozen=True, eq=False)
class Geometry:
    """Everything about drawing a clip that depends only on (frame count, sample rate, style).

    Attributes
    ----------
    out_w, out_h : int
        Size of the resampled image (113 wide or high under the 3.9/3.10 stretch).
    xdst, ydst : int
        Canvas column of its first column and canvas row of its last row (canvas row ``k`` shows image
        row ``out_h - 1 - (k - ydst)``).
    rows, cols, canvas_taps
        The image rows' and columns' :class:`AxisTaps`, and both re-laid for the fused kernel.
    canvas_rows, canvas_cols : slice
        The canvas rows and columns the image covers (white elsewhere).
    """

    n_frames: int
    sample_rate: int
    style: str
    out_w: int
    out_h: int
    xdst: int
    ydst: int
    rows: AxisTaps
    cols: AxisTaps
    canvas_rows: slice
    canvas_cols: slice
    canvas_taps: tuple


def _canvas_taps(rows: AxisTaps, cols: AxisTaps, out_h: int, xdst: int, ydst: int, canvas_rows, canvas_cols):
    """``(row_index, row_weight / 2**14, col_index, col_weight)`` of the drawn canvas, (taps, pixels) each."""
    image_rows = [out_h - 1 - (k - ydst) for k in range(canvas_rows.start, canvas_rows.stop)]
    image_cols = slice(canvas_cols.start - xdst, canvas_cols.stop - xdst)
    return (
        np.ascontiguousarray(rows.index[image_rows].T),
        np.ascontiguousarray(rows.weight[image_rows].T, np.float64) / FILTER_SCALE,
        np.ascontiguousarray(cols.index[image_cols].T),
        np.ascontiguousarray(cols.weight[image_cols].T, np.float64),
    )


def _inverse(m: np.ndarray) -> tuple:
    """``trans_affine::invert`` of the image-to-canvas matrix ``m``: (sx, shx, tx, shy, sy, ty) of the inverse."""
    sx, shx, tx = float(m[0, 0]), float(m[0, 1]), float(m[0, 2])
    shy, sy, ty = float(m[1, 0]), float(m[1, 1]), float(m[1, 2])
    d = 1.0 / (sx * sy - shy * shx)
    t0 = sy * d
    sy = sx * d
    shy = -shy * d
    shx = -shx * d
    t4 = -tx * t0 - ty * shx
    ty = -tx * shy - ty * sy
    sx = t0
    tx = t4
    return sx, shx, tx, shy, sy, ty


def _apply(inverse: tuple, x: float, y: float):
    """``trans_affine::transform``: canvas point (x, y) to image coordinates."""
    sx, shx, tx, shy, sy, ty = inverse
    return x * sx + y * shx + tx, x * shy + y * sy + ty


def _filter_radii(inverse: tuple):
    """``span_image_resample_affine::prepare``: (rx, rx_inv, ry, ry_inv), the radii widened by the scale."""
    sx, shx, _, shy, sy, _ = inverse
    scale_x = math.sqrt(sx * sx + shx * shx)
    scale_y = math.sqrt(shy * shy + sy * sy)
    limit = 200.0
    if scale_x * scale_y > limit:
        scale_x = scale_x * limit / (scale_x * scale_y)
        scale_y = scale_y * limit / (scale_x * scale_y)
    scale_x = max(min(max(scale_x, 1.0), limit) * 1.0, 1.0)
    scale_y = max(min(max(scale_y, 1.0), limit) * 1.0, 1.0)
    return _filter_radius(scale_x) + _filter_radius(scale_y)


def _subpixel_coords(inverse: tuple, out_w: int, out_h: int, style: str):
    """``span_interpolator_linear::begin``: the subpixel source x of each column and y of each row.

    3.11 has the endpoint fix (``len - 1`` steps per scanline); 3.9 and 3.10 take ``len`` steps.
    """
    span_len = out_w
    count = span_len - 1 if style == "3.11" else span_len
    xa, _ = _apply(inverse, 0.0 + 0.5, 0.5)
    xb, _ = _apply(inverse, 0.0 + 0.5 + count, 0.5)
    xs = _dda(_iround(xa * _SUBPIXEL_SCALE), _iround(xb * _SUBPIXEL_SCALE), count, span_len)
    ys = []
    for row in range(out_h):
        _, ya = _apply(inverse, 0.5, row + 0.5)
        _, yb = _apply(inverse, 0.5 + count, row + 0.5)
        ys.append(_dda(_iround(ya * _SUBPIXEL_SCALE), _iround(yb * _SUBPIXEL_SCALE), count, 1)[0])
    return xs, ys


def _placement(x0, y0, out_w: int, out_h: int):
    """``RendererAgg::draw_image``: (xdst, ydst, canvas_rows, canvas_cols), the bottom-left corner at (x0, y0)."""
    xdst = int(x0)
    ydst = int(IMAGE_SIZE - (y0 + out_h))
    canvas_rows = slice(max(ydst, 0), min(ydst + out_h, IMAGE_SIZE))
    canvas_cols = slice(max(xdst, 0), min(xdst + out_w, IMAGE_SIZE))
    return xdst, ydst, canvas_rows, canvas_cols


def _frozen(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.setflags(write=False)  # shared by every clip and thread of this geometry


@functools.lru_cache(maxsize=4096)
def geometry(n_frames: int, sample_rate: int, style: str) -> Geometry:
    """The :class:`Geometry` of ``n_frames`` frames at ``sample_rate`` in ``style``, built once per process."""
    out_w, out_h, m, x0, y0 = figure_affine(n_frames, float(sample_rate), style)
    inverse = _inverse(m)
    rx, rx_inv, ry, ry_inv = _filter_radii(inverse)
    xs, ys = _subpixel_coords(inverse, out_w, out_h, style)
    lut = hanning_lut(fixed=(style == "3.11"))
    cols = _axis_taps(xs, rx, rx_inv, n_frames, lut)
    rows = _axis_taps(ys, ry, ry_inv, N_ROWS, lut)
    for taps in (rows, cols):
        _frozen(taps.index, taps.weight, taps.count)
    xdst, ydst, canvas_rows, canvas_cols = _placement(x0, y0, out_w, out_h)
    canvas_taps = _canvas_taps(rows, cols, out_h, xdst, ydst, canvas_rows, canvas_cols)
    _frozen(*canvas_taps)
    return Geometry(n_frames=n_frames, sample_rate=sample_rate, style=style, out_w=out_w, out_h=out_h,
                    xdst=xdst, ydst=ydst, rows=rows, cols=cols, canvas_rows=canvas_rows, canvas_cols=canvas_cols,
                    canvas_taps=canvas_taps)
