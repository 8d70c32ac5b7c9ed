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


# ---------------------------------------------------------------------------
# The fused per-clip kernels of the fast path (numba only; without numba the
# spelled-out numpy path in fast.py runs instead).
#
# ``_window`` writes the Hann-windowed frames into the complex input of numpy's
# FFT; ``_finish`` does everything after the FFT for styles 3.10 and 3.11: the
# PSD's element-wise steps and dB (the float operations numpy performs, in its
# order), the colour lookup, Agg's resampling and the blend over white. The
# resampling loops run y tap outer, x tap inner for every pixel, exactly as Agg
# sums; the loop over output columns is innermost only so that it vectorises,
# which does not change any pixel's order of additions. Taps are padded to a
# fixed count with weight 0: adding ``red * 0 == 0.0`` to a non-negative sum
# leaves it unchanged, so padding is exact (the colour and alpha are finite).
# ---------------------------------------------------------------------------

if _njit is not None:
    from numba import types as _types
    from numba.extending import intrinsic as _intrinsic

    @_intrinsic
    def _fma(typingctx, a, b, c):
        """A fused multiply-add (one rounding), as numpy's FMA-built complex multiply."""
        sig = _types.float64(_types.float64, _types.float64, _types.float64)

        def codegen(context, builder, signature, args):
            return builder.fma(*args)  # llvm.fma.f64: always fused, whatever the CPU

        return sig, codegen

    _kernel = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")

    @_kernel
    def _window(x, start, n_frames, hop, window, out):
        """out[start + f, k] = x[f * hop + k] * window[k] (float64), as real parts.

        ``out`` is a float64 view of the complex FFT input; its imaginary parts
        (odd columns) must already be 0 (the caller's buffer is zeroed once
        and the FFT does not write its input).
        """
        nfft = window.shape[0]
        for f in range(n_frames):
            base = f * hop
            row = out[start + f]
            for k in range(nfft):
                row[2 * k] = np.float64(x[base + k]) * window[k]

    def work_size(n_frames, n_rows, n_rt, nk):
        """Scratch elements ``_finish`` needs."""
        return 2 * n_frames * n_rows + 2 * n_frames * n_rt * nk

    @_kernel
    def _finish(spec, start, n_frames, scl_fs, scl_win, cmul_fma, lut,
                ridx, rwy, cidx, cwx, k0, cc0, premultiplied, z, work, canvas):
        """PSD -> dB -> colour -> Agg resample -> canvas, for one clip (styles 3.10, 3.11).

        ``spec[start:start + n_frames, :129]`` is the FFT of the clip's frames.
        ``z`` (n_frames, 129) receives the dB values, bins flipped (Nyquist first).
        ``ridx``/``rwy`` (3, nk): source row and LUT weight / 2**14 of each row tap of
        canvas rows ``k0 .. k0 + nk - 1``; ``cidx``/``cwx`` (2 or 3, nc): the
        column taps of canvas columns ``cc0 .. cc0 + nc - 1``. Returns 1 when
        the spectrum holds a non-finite value (the caller then takes the numpy
        route, whose NaN/inf propagation this kernel does not replay), else 0.
        ``work`` is float64 scratch of at least ``work_size`` elements (reused
        between calls by the caller: fresh large arrays cost page faults).
        """
        n_rows = z.shape[1]
        last = n_rows - 1
        # mlab: conj(r) * r, bins 1..last-1 times 2, / Fs, / sum(window**2)
        # (numpy's complex division by a real: (re + im * 0) * (1 / d)), then
        # Axes.specgram's 10 * log10 and flipud.
        # Three passes (the element-wise steps vectorise; log10 is a libm call).
        for f in range(n_frames):
            row = spec[start + f]
            zf = z[f]
            for b in range(n_rows):
                re = row[b].real
                im = row[b].imag
                if cmul_fma:
                    p = _fma(re, re, im * im)
                else:
                    p = re * re + im * im
                zf[last - b] = p * 2.0 if b != 0 and b != last else p
            for i in range(n_rows):
                zf[i] = (zf[i] * scl_fs) * scl_win
            for i in range(n_rows):
                zf[i] = 10.0 * math.log10(zf[i])
        # Normalize's limits: min and max of the finite cells.
        vmin = np.inf
        vmax = -np.inf
        n_neg_inf = 0
        n_bad = 0
        for f in range(n_frames):
            zf = z[f]
            for i in range(n_rows):
                t = zf[i]
                fin = -np.inf < t < np.inf
                vmin = min(vmin, t) if fin else vmin
                vmax = max(vmax, t) if fin else vmax
                n_neg_inf += t == -np.inf  # PSD 0 (a silent frame): a masked cell
                n_bad += not (t == t) or t == np.inf
        if n_bad:
            # +inf or NaN: the spectrum held inf/NaN (any such re or im makes
            # p inf or NaN) or p overflowed; numpy's route then.
            return 1
        masked = n_neg_inf > 0
        # Normalize and gray_r: index int(x * 256), x == 1 -> 255, i.e.
        # int(min(x * 256, 255)) as x is in [0, 1]; masked cells are (0, 0).
        cells = n_frames * n_rows
        red = work[:cells].reshape((n_frames, n_rows))
        alpha = work[cells : 2 * cells].reshape((n_frames, n_rows))
        span = vmax - vmin
        flat = vmin == vmax
        for f in range(n_frames):
            zf = z[f]
            rf = red[f]
            af = alpha[f]
            if not masked and not flat:
                for i in range(n_rows):
                    rf[i] = lut[int(min(((zf[i] - vmin) / span) * 256, 255.0))]
                    af[i] = 1.0
                continue
            if not flat:  # finite or -inf here (+inf/NaN returned above)
                for i in range(n_rows):
                    t = zf[i]
                    if t == -np.inf:
                        rf[i] = 0.0
                        af[i] = 0.0
                    else:
                        rf[i] = lut[int(min(((t - vmin) / span) * 256, 255.0))]
                        af[i] = 1.0
                continue
            for i in range(n_rows):
                t = zf[i]
                if -np.inf < t < np.inf:
                    if flat:
                        xv = 0.0
                    else:
                        xv = (t - vmin) / span
                    xv = xv * 256
                    if xv == 256:
                        xv = 255.0
                    rf[i] = lut[int(xv)]
                    af[i] = 1.0
                else:
                    rf[i] = 0.0
                    af[i] = 0.0
        size = canvas.shape[0]
        for i in range(size):
            for j in range(size):
                canvas[i, j] = 255
        n_rt = ridx.shape[0]
        nk = ridx.shape[1]
        n_ct = cidx.shape[0]
        nc = cidx.shape[1]
        if nk == 0 or nc == 0:
            return 0
        # Source values per (source column, row tap, canvas row), so that the
        # pixel loop below reads contiguous vectors (no gathers).
        taps = n_frames * n_rt * nk
        fr = work[2 * cells : 2 * cells + taps].reshape((n_frames, n_rt, nk))
        for ci in range(n_frames):
            for j in range(n_rt):
                for t in range(nk):
                    fr[ci, j, t] = red[ci, ridx[j, t]]
        # Masked cells usually fill whole frames (silent spans). Output columns
        # whose taps touch no frame with a masked cell have alpha exactly 1
        # (the integer weights sum exactly) and take the unmasked formula.
        col_bad = np.zeros(n_frames, np.bool_)
        n_ct = cidx.shape[0]
        nc = cidx.shape[1]
        fa = work[2 * cells + taps : 2 * cells + 2 * taps].reshape((n_frames, n_rt, nk))
        if masked:
            for ci in range(n_frames):
                for i in range(n_rows):
                    if alpha[ci, i] != 1.0:
                        col_bad[ci] = True
                        break
            # alpha taps of every frame that an output column touching a bad frame reads
            need = np.zeros(n_frames, np.bool_)
            for u in range(nc):
                bad = False
                for q in range(n_ct):
                    bad = bad or col_bad[cidx[q, u]]
                if bad:
                    for q in range(n_ct):
                        need[cidx[q, u]] = True
            for ci in range(n_frames):
                if need[ci]:
                    for j in range(n_rt):
                        for t in range(nk):
                            fa[ci, j, t] = alpha[ci, ridx[j, t]]
        acc = np.empty(nk, np.float64)
        acc_a = np.empty(nk, np.float64)
        tot = np.empty(nk, np.float64)
        col = np.empty(nk, np.uint8)
        # Tap weight (wy * wx + 8192) >> 14 == floor(wy / 2**14 * wx + 0.5), every
        # step exact in float64 (``rwy`` arrives divided by 2**14; products < 2**28);
        # np.floor keeps it a float, so the loops vectorise over canvas rows.
        for u in range(nc):
            umasked = False
            if masked:
                for q in range(n_ct):
                    if col_bad[cidx[q, u]]:
                        umasked = True
            if n_rt == 3 and n_ct == 2:
                wy0 = rwy[0]
                wy1 = rwy[1]
                wy2 = rwy[2]
                wxa = cwx[0, u]
                wxb = cwx[1, u]
                a0 = fr[cidx[0, u], 0]
                b0 = fr[cidx[1, u], 0]
                a1 = fr[cidx[0, u], 1]
                b1 = fr[cidx[1, u], 1]
                a2 = fr[cidx[0, u], 2]
                b2 = fr[cidx[1, u], 2]
                for t in range(nk):
                    w00 = np.floor(wy0[t] * wxa + 0.5)
                    w01 = np.floor(wy0[t] * wxb + 0.5)
                    w10 = np.floor(wy1[t] * wxa + 0.5)
                    w11 = np.floor(wy1[t] * wxb + 0.5)
                    w20 = np.floor(wy2[t] * wxa + 0.5)
                    w21 = np.floor(wy2[t] * wxb + 0.5)
                    s = 0.0
                    s += a0[t] * w00
                    s += b0[t] * w01
                    s += a1[t] * w10
                    s += b1[t] * w11
                    s += a2[t] * w20
                    s += b2[t] * w21
                    acc[t] = s
                    tot[t] = ((((w00 + w01) + w10) + w11) + w20) + w21
                if umasked:
                    a0 = fa[cidx[0, u], 0]
                    b0 = fa[cidx[1, u], 0]
                    a1 = fa[cidx[0, u], 1]
                    b1 = fa[cidx[1, u], 1]
                    a2 = fa[cidx[0, u], 2]
                    b2 = fa[cidx[1, u], 2]
                    for t in range(nk):
                        w00 = np.floor(wy0[t] * wxa + 0.5)
                        w01 = np.floor(wy0[t] * wxb + 0.5)
                        w10 = np.floor(wy1[t] * wxa + 0.5)
                        w11 = np.floor(wy1[t] * wxb + 0.5)
                        w20 = np.floor(wy2[t] * wxa + 0.5)
                        w21 = np.floor(wy2[t] * wxb + 0.5)
                        s = 0.0
                        s += a0[t] * w00
                        s += b0[t] * w01
                        s += a1[t] * w10
                        s += b1[t] * w11
                        s += a2[t] * w20
                        s += b2[t] * w21
                        acc_a[t] = s
            else:
                # Any tap counts: y taps outer, x taps inner, per pixel.
                for t in range(nk):
                    acc[t] = 0.0
                    acc_a[t] = 0.0
                    tot[t] = 0.0
                for j in range(n_rt):
                    wy = rwy[j]
                    for q in range(n_ct):
                        wx = cwx[q, u]
                        e = fr[cidx[q, u], j]
                        for t in range(nk):
                            w = np.floor(wy[t] * wx + 0.5)
                            acc[t] += e[t] * w
                            tot[t] += w
                        if umasked:
                            e = fa[cidx[q, u], j]
                            for t in range(nk):
                                acc_a[t] += e[t] * np.floor(wy[t] * wx + 0.5)
            cc = cc0 + u
            if not umasked:
                # Alpha is 1 everywhere, so the resampled alpha is exactly 1 and
                # both styles reduce to the clamped colour, truncated.
                for t in range(nk):
                    v = acc[t] / tot[t]
                    v = min(max(v, 0.0), 1.0)
                    col[t] = np.uint8(v * 255)
                for t in range(nk):
                    canvas[k0 + t, cc] = col[t]
            elif premultiplied:
                # _draw_rgba_py's per-pixel rules for 3.11, branch-free: every canvas value comes out of
                # fixed_blender_rgba_plain's formula (a8 == 255 gives r8, a8 == 0
                # gives the white 255), in float64 where all values are exact
                # integers and floor(N / D) is exact (N < 2**31, D <= 65535).
                for t in range(nk):
                    v = max(acc[t] / tot[t], 0.0)
                    a = min(max(acc_a[t] / tot[t], 0.0), 1.0)
                    v = min(v, a)
                    part = a < 1.0
                    a2 = a * 255 / 255 if part else a
                    v2 = v * 255 / 255 if part else v
                    v3 = v2 / a2 if a > 0.0 else 0.0
                    r8 = np.floor(v3 * 255)
                    a8 = np.floor(a2 * 255) if a > 0.0 else 0.0
                    col[t] = np.uint8(np.floor(((r8 * 256 - 65025) * a8 + 65025 * 256) / (a8 + 65280)))
                for t in range(nk):
                    canvas[k0 + t, cc] = col[t]
            else:
                # _draw_rgba_py's per-pixel rules for 3.10, branch-free as above.
                for t in range(nk):
                    v = min(max(acc[t] / tot[t], 0.0), 1.0)
                    r8 = np.floor(v * 255)
                    a8 = np.floor((acc_a[t] / tot[t]) * 255)
                    col[t] = np.uint8(np.floor(((r8 * 256 - 65025) * a8 + 65025 * 256) / (a8 + 65280)))
                for t in range(nk):
                    canvas[k0 + t, cc] = col[t]
        return 0
else:  # pragma: no cover
    _window = None
    _finish = None
    work_size = None
