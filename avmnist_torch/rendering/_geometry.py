"""Where matplotlib puts the spectrogram image, replayed without matplotlib.

The figure route's pixels depend on float details of matplotlib's transform
chain: ``(112 / 100) * 100`` is ``112.00000000000001``, and matplotlib 3.9 and
3.10 take the ``ceil`` of the transformed image extent, so whether the image is
resampled to 112 or 113 columns depends on the last bit of a product of 3x3
matrices. This module replays that chain with the same operations in the same
order (``np.dot`` of the same matrices, element-wise scale and translate, the
same bounding-box arithmetic), so the result is the same to the bit.

The agg side (``trans_affine::invert``, ``span_interpolator_linear``,
``dda2_line_interpolator``, ``span_image_resample_affine::prepare``) is
replayed in plain Python floats and ints, which follow the same IEEE double
operations as the C++ (matplotlib's wheels are built for baseline x86-64 and
aarch64 without floating-point contraction in these expressions).
"""

from __future__ import annotations

import math

import numpy as np

from .spec import DPI, IMAGE_SIZE, NFFT, NOVERLAP

N_ROWS = NFFT // 2 + 1  # 129 frequency bins

_SUBPIXEL_SHIFT = 8
_SUBPIXEL_SCALE = 1 << _SUBPIXEL_SHIFT
_SUBPIXEL_MASK = _SUBPIXEL_SCALE - 1


def _iround(v: float) -> int:
    """agg::iround: round half away from zero, then truncate to int."""
    return int(v - 0.5) if v < 0 else int(v + 0.5)


def _uround(v: float) -> int:
    return int(v + 0.5)


def _scale_translate(sx, sy, tx, ty, translate_first):
    """An ``Affine2D()`` built by ``.scale(sx, sy).translate(tx, ty)`` (or the other order)."""
    m = np.identity(3)
    if translate_first:
        m[0, 2] += tx
        m[1, 2] += ty
        m[0, :] *= sx  # Affine2D.scale multiplies each element of the row in place
        m[1, :] *= sy
    else:
        m[0, :] *= sx
        m[1, :] *= sy
        m[0, 2] += tx
        m[1, 2] += ty
    return m


def _bbox_to(x0, y0, x1, y1):
    """``BboxTransformTo(bbox).get_matrix()``."""
    return np.array([[x1 - x0, 0.0, x0], [0.0, y1 - y0, y0], [0.0, 0.0, 1.0]], float)


def _bbox_from(x0, y0, x1, y1):
    """``BboxTransformFrom(bbox).get_matrix()``."""
    xs = 1.0 / (x1 - x0)
    ys = 1.0 / (y1 - y0)
    return np.array([[xs, 0.0, -x0 * xs], [0.0, ys, -y0 * ys], [0.0, 0.0, 1.0]], float)


def _apply(m, x, y):
    """``matplotlib._path.affine_transform`` of one point."""
    return x * m[0, 0] + y * m[0, 1] + m[0, 2], x * m[1, 0] + y * m[1, 1] + m[1, 2]


def _extent(n_frames: int, fs: float):
    """``Axes.specgram``'s image extent (xmin, xmax, fmin, fmax)."""
    hop = NFFT - NOVERLAP
    t0 = (NFFT / 2) / fs
    t1 = (NFFT / 2 + (n_frames - 1) * hop) / fs  # np.arange(NFFT/2, ..., hop) is exact on integers
    pad = hop / fs / 2
    freqs = np.fft.fftfreq(NFFT, 1 / fs)[:N_ROWS]
    freqs[-1] *= -1
    freqs = freqs + 0  # Fc
    return t0 - pad, t1 + pad, float(freqs[0]), float(freqs[-1])


def figure_affine(n_frames: int, fs: float, style: str):
    """The image-to-output-pixel affine and output size of ``_make_image``.

    Returns
    -------
    (out_w, out_h, matrix, x0, y0)
        ``matrix`` is the 3x3 affine passed to ``_image.resample``; ``x0, y0``
        the position the image is drawn at on the canvas.
    """
    # Figure: set_size_inches(112 / dpi) then dpi_scale_trans.
    inches = IMAGE_SIZE / DPI
    dpi_scale = _scale_translate(DPI, DPI, 0.0, 0.0, False)
    fx0, fy0 = _apply(dpi_scale, 0.0, 0.0)
    fx1, fy1 = _apply(dpi_scale, inches, inches)
    trans_subfigure = _bbox_to(fx0, fy0, fx1, fy1)
    ax0 = _apply(trans_subfigure, 0.0, 0.0)
    ax1 = _apply(trans_subfigure, 1.0, 1.0)
    trans_axes = _bbox_to(ax0[0], ax0[1], ax1[0], ax1[1])

    xmin, xmax, fmin, fmax = _extent(n_frames, fs)
    trans_limits = _bbox_from(xmin, fmin, xmax, fmax)
    trans_data = np.dot(np.dot(trans_axes, trans_limits), np.identity(3))

    ob0 = _apply(trans_data, xmin, fmin)
    ob1 = _apply(trans_data, xmax, fmax)
    # Bbox.intersection(out_bbox, clip_bbox = axes bbox)
    cx0 = max(min(ob0[0], ob1[0]), min(ax0[0], ax1[0]))
    cy0 = max(min(ob0[1], ob1[1]), min(ax0[1], ax1[1]))
    cx1 = min(max(ob0[0], ob1[0]), max(ax0[0], ax1[0]))
    cy1 = min(max(ob0[1], ob1[1]), max(ax0[1], ax1[1]))

    a1 = _scale_translate(1.0, -1.0, 0.0, -N_ROWS, True)  # origin='upper' flip
    a2 = _scale_translate((xmax - xmin) / n_frames, (fmax - fmin) / N_ROWS, xmin, fmin, False)
    t0 = np.dot(np.dot(trans_data, a2), a1)

    if style == "3.11":
        x0 = math.floor(cx0 + 0.5)
        y0 = math.ceil(cy0 - 0.5 - 1e-8)
        x1 = math.floor(cx1 + 0.5 + 1e-8)
        y1 = math.ceil(cy1 - 0.5)
        a3 = _scale_translate(1.0, 1.0, -float(x0), -float(y0), False)
        t = np.dot(a3, t0)
        out_w, out_h = int(float(x1) - float(x0)), int(float(y1) - float(y0))
        return out_w, out_h, t, float(x0), float(y0)

    a3 = _scale_translate(1.0, 1.0, -cx0, -cy0, True)
    t = np.dot(a3, t0)
    wb = (cx1 - cx0) * 1.0
    hb = (cy1 - cy0) * 1.0
    if wb % 1.0 != 0.0 or hb % 1.0 != 0.0:
        out_w, out_h = math.ceil(wb), math.ceil(hb)
        a4 = _scale_translate(1.0 + (out_w - wb) / wb, 1.0 + (out_h - hb) / hb, 0.0, 0.0, False)
        t = np.dot(a4, t)
    else:
        out_w, out_h = int(wb), int(hb)
    return out_w, out_h, t, cx0, cy0


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
    m = v % (2 * size)
    return 2 * size - m - 1 if m >= size else m


def _axis_taps(coords, r, r_inv, size, weights):
    """Source indices and LUT weights of the filter taps along one axis."""
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
    idx = np.zeros((len(taps), n), np.int64)
    wts = np.zeros((len(taps), n), np.int64)
    cnt = np.zeros(len(taps), np.int64)
    for i, row in enumerate(taps):
        cnt[i] = len(row)
        for k, (j, w) in enumerate(row):
            idx[i, k] = j
            wts[i, k] = w
    return idx, wts, cnt


def resample_plan(n_frames: int, fs: float, style: str, weights: np.ndarray):
    """Everything about one clip's drawing that depends only on its frame count.

    Returns a dict with the output size, the canvas offset and, for each output
    column and row, the source indices and LUT weights of its filter taps.
    """
    out_w, out_h, m, x0, y0 = figure_affine(n_frames, fs, style)
    sx, shx, tx = float(m[0, 0]), float(m[0, 1]), float(m[0, 2])
    shy, sy, ty = float(m[1, 0]), float(m[1, 1]), float(m[1, 2])
    # trans_affine::invert
    d = 1.0 / (sx * sy - shy * shx)
    t0 = sy * d
    sy = sx * d
    shy = -shy * d
    shx = -shx * d
    t4 = -tx * t0 - ty * shx
    ty = -tx * shy - ty * sy
    sx = t0
    tx = t4

    def transform(x, y):
        return x * sx + y * shx + tx, x * shy + y * sy + ty

    # span_image_resample_affine::prepare
    scale_x = math.sqrt(sx * sx + shx * shx)
    scale_y = math.sqrt(shy * shy + sy * sy)
    limit = 200.0
    if scale_x * scale_y > limit:
        scale_x = scale_x * limit / (scale_x * scale_y)
        scale_y = scale_y * limit / (scale_x * scale_y)
    scale_x = min(max(scale_x, 1.0), limit)
    scale_y = min(max(scale_y, 1.0), limit)
    scale_x = max(scale_x * 1.0, 1.0)
    scale_y = max(scale_y * 1.0, 1.0)
    rx = _uround(scale_x * _SUBPIXEL_SCALE)
    rx_inv = _uround(1.0 / scale_x * _SUBPIXEL_SCALE)
    ry = _uround(scale_y * _SUBPIXEL_SCALE)
    ry_inv = _uround(1.0 / scale_y * _SUBPIXEL_SCALE)

    # span_interpolator_linear::begin, one scanline span covering the row.
    span_len = out_w
    count = span_len - 1 if style == "3.11" else span_len
    xa, _ = transform(0.0 + 0.5, 0.5)
    xb, _ = transform(0.0 + 0.5 + count, 0.5)
    xs = _dda(_iround(xa * _SUBPIXEL_SCALE), _iround(xb * _SUBPIXEL_SCALE), count, span_len)
    ys = []
    for row in range(out_h):
        _, ya = transform(0.5, row + 0.5)
        _, yb = transform(0.5 + count, row + 0.5)
        ys.append(_dda(_iround(ya * _SUBPIXEL_SCALE), _iround(yb * _SUBPIXEL_SCALE), count, 1)[0])
    col_idx, col_w, col_n = _axis_taps(xs, rx, rx_inv, n_frames, weights)
    row_idx, row_w, row_n = _axis_taps(ys, ry, ry_inv, N_ROWS, weights)
    return {
        "out_w": out_w,
        "out_h": out_h,
        "x0": x0,
        "y0": y0,
        "col": (col_idx, col_w, col_n),
        "row": (row_idx, row_w, row_n),
    }
