"""Where matplotlib puts the spectrogram image: its transform chain, replayed with the same operations in the
same order, since 112 or 113 columns hangs on the last bit of a matrix product (docs/rendering.md, section 2)."""

from __future__ import annotations

import math

import numpy as np

from .settings import DPI, HOP, IMAGE_SIZE, N_ROWS, NFFT


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
    t0 = (NFFT / 2) / fs
    t1 = (NFFT / 2 + (n_frames - 1) * HOP) / fs  # np.arange(NFFT/2, ..., hop) is exact on integers
    pad = HOP / fs / 2
    freqs = np.fft.fftfreq(NFFT, 1 / fs)[:N_ROWS]
    freqs[-1] *= -1
    freqs = freqs + 0  # Fc
    return t0 - pad, t1 + pad, float(freqs[0]), float(freqs[-1])


def figure_affine(n_frames: int, fs: float, style: str):
    """``_make_image``'s output size, the 3x3 affine it passes to ``_image.resample``, and where it draws.

    Returns
    -------
    (out_w, out_h, matrix, x0, y0)
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
