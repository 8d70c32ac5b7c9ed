"""The fused route's numba kernels: :mod:`.psd` and :mod:`.resample` (styles 3.10, 3.11) with the same float
operations in the same order, over many clips per call (docs/rendering.md). No fast-math: flat regions sit on
uint8 truncation boundaries."""

from __future__ import annotations

import numpy as np
from numba import types as _types
from numba.extending import intrinsic as _intrinsic

from .. import jit


@_intrinsic
def _fma(typingctx, a, b, c):
    """A fused multiply-add (one rounding), as numpy's FMA-built complex multiply."""
    sig = _types.float64(_types.float64, _types.float64, _types.float64)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)  # llvm.fma.f64: always fused, whatever the CPU

    return sig, codegen


def _window_frames(flat, clip_starts, frame_starts, frame_counts, hop, window, out):
    """``out[frame_starts[i] + f]`` = ``flat[clip_starts[i] + f * hop :][:NFFT]`` times the window, into the
    float64 view ``out`` of the complex FFT input (imaginary parts written 0: contiguous stores vectorise)."""
    nfft = window.shape[0]
    for i in range(clip_starts.shape[0]):
        for f in range(frame_counts[i]):
            base = clip_starts[i] + f * hop
            src = flat[base : base + nfft]
            row = out[frame_starts[i] + f]
            for k in range(nfft):
                row[2 * k] = np.float64(src[k]) * window[k]
                row[2 * k + 1] = 0.0


def _power(spec, n_frames, scl_fs, scl_win, cmul_fma, z):
    """mlab's PSD before the dB, flipped (``z[f, 128 - b]``): ``conj(r) * r`` (an FMA where numpy's is), bins
    1..127 times 2, and numpy's complex division by ``Fs`` and ``sum(window**2)``: a multiply by each reciprocal."""
    n_rows = z.shape[1]
    last = n_rows - 1
    for f in range(n_frames):
        row = spec[f]
        zf = z[f]
        for b in range(n_rows):
            re = row[b].real
            im = row[b].imag
            if cmul_fma:
                p = _fma(re, re, im * im)
            else:
                p = re * re + im * im
            zf[last - b] = p * 2.0 if b != 0 and b != last else p
        for i in range(n_rows):  # a pass of its own: it vectorises
            zf[i] = (zf[i] * scl_fs) * scl_win


def work_size(n_clips, n_frames, n_rows, n_row_taps, n_canvas_rows):
    """Float64 scratch elements ``draw`` needs for ``n_clips`` clips of ``n_frames`` frames."""
    return 2 * n_frames * n_rows + 2 * n_clips * n_frames * n_row_taps * n_canvas_rows


def _draw(z, starts, n_frames, dest, lut, ridx, rwy, cidx, cwx, k0, cc0, premultiplied, work, out_t, status):
    """dB -> colour -> Agg resample -> canvas for clips of one geometry (styles 3.10, 3.11).

    Clip ``i``'s dB ``z[starts[i] : starts[i] + n_frames]`` (frames, 129, Nyquist first) is drawn transposed
    into ``out_t[dest[i]]``; ``ridx``/``rwy``, ``cidx``/``cwx``: ``Geometry.canvas_taps`` of canvas rows ``k0 ..``
    and columns ``cc0 ..``. ``status[i]`` = 1 where the dB hold +inf or NaN (left to the numpy route).
    Each pixel sums y taps outer, x taps inner, as Agg; the canvas-row loop is innermost to vectorise.
    """
    n_clips = starts.shape[0]
    n_rows = z.shape[1]
    size = out_t.shape[1]
    n_rt = ridx.shape[0]
    nk = ridx.shape[1]
    n_ct = cidx.shape[0]
    nc = cidx.shape[1]
    cells = n_frames * n_rows
    taps = n_frames * n_rt * nk
    red = work[:cells].reshape((n_frames, n_rows))
    alpha = work[cells : 2 * cells].reshape((n_frames, n_rows))
    fr = work[2 * cells : 2 * cells + n_clips * taps].reshape((n_clips, n_frames, n_rt, nk))
    fa = work[2 * cells + n_clips * taps : 2 * cells + 2 * n_clips * taps].reshape((n_clips, n_frames, n_rt, nk))
    col_bad = np.zeros((n_clips, n_frames), np.bool_)
    clip_masked = np.zeros(n_clips, np.bool_)
    index = np.empty(n_rows, np.int64)
    for i in range(n_clips):
        zc = z[starts[i] : starts[i] + n_frames]
        canvas_t = out_t[dest[i]]
        # Normalize's limits: min and max of the finite cells.
        vmin = np.inf
        vmax = -np.inf
        n_neg_inf = 0
        n_bad = 0
        for f in range(n_frames):
            zf = zc[f]
            for b in range(n_rows):
                t = zf[b]
                fin = -np.inf < t < np.inf
                vmin = min(vmin, t) if fin else vmin
                vmax = max(vmax, t) if fin else vmax
                n_neg_inf += t == -np.inf  # PSD 0 (a silent frame): a masked cell
                n_bad += not (t == t) or t == np.inf
        if n_bad:
            status[i] = 1
            continue
        status[i] = 0
        masked = n_neg_inf > 0
        clip_masked[i] = masked
        # Normalize and gray_r: index int(x * 256) with x == 1 -> 255, i.e. int(min(x * 256, 255)) for x
        # in [0, 1]; masked cells are (0, 0); equal limits map every cell to 0.
        span = vmax - vmin
        flat = vmin == vmax
        for f in range(n_frames):
            zf = zc[f]
            rf = red[f]
            af = alpha[f]
            if not masked and not flat:
                for b in range(n_rows):  # the index apart: this loop vectorises, the lookup does not
                    index[b] = np.int64(min(((zf[b] - vmin) / span) * 256, 255.0))
                for b in range(n_rows):
                    rf[b] = lut[index[b]]
                    af[b] = 1.0
                continue
            for b in range(n_rows):
                t = zf[b]
                if t == -np.inf:
                    rf[b] = 0.0
                    af[b] = 0.0
                else:
                    rf[b] = lut[0] if flat else lut[int(min(((t - vmin) / span) * 256, 255.0))]
                    af[b] = 1.0
        for c in range(size):
            for r in range(size):
                canvas_t[c, r] = 255
        # Source values per (source column, row tap, canvas row): the pixel loop reads contiguous vectors.
        for ci in range(n_frames):
            for j in range(n_rt):
                for t in range(nk):
                    fr[i, ci, j, t] = red[ci, ridx[j, t]]
        if masked:
            # Output columns whose taps touch no frame with a masked cell have alpha exactly 1 and take
            # the unmasked formula; the others need the alpha taps of the frames they read.
            for ci in range(n_frames):
                for b in range(n_rows):
                    if alpha[ci, b] != 1.0:
                        col_bad[i, ci] = True
                        break
            need = np.zeros(n_frames, np.bool_)
            for u in range(nc):
                bad = False
                for q in range(n_ct):
                    bad = bad or col_bad[i, cidx[q, u]]
                if bad:
                    for q in range(n_ct):
                        need[cidx[q, u]] = True
            for ci in range(n_frames):
                if need[ci]:
                    for j in range(n_rt):
                        for t in range(nk):
                            fa[i, ci, j, t] = alpha[ci, ridx[j, t]]
    if nk == 0 or nc == 0:
        return
    # Tap weight (wy * wx + 8192) >> 14 == floor(wy / 2**14 * wx + 0.5), exact in float64 (products
    # < 2**28) and vectorisable; w[j * n_ct + q] holds the weights of row tap j and column tap q.
    w = np.empty((n_rt * n_ct, nk), np.float64)
    tot = np.empty(nk, np.float64)
    acc = np.empty(nk, np.float64)
    acc_a = np.empty(nk, np.float64)
    fast_path = n_rt == 3 and n_ct == 2
    for u in range(nc):
        for j in range(n_rt):
            for q in range(n_ct):
                wx = cwx[q, u]
                wy = rwy[j]
                wjq = w[j * n_ct + q]
                for t in range(nk):
                    wjq[t] = np.floor(wy[t] * wx + 0.5)
        for t in range(nk):
            tot[t] = 0.0
        for p in range(n_rt * n_ct):  # integers: exact in any order
            for t in range(nk):
                tot[t] += w[p, t]
        for i in range(n_clips):
            if status[i]:
                continue
            umasked = False
            if clip_masked[i]:
                for q in range(n_ct):
                    if col_bad[i, cidx[q, u]]:
                        umasked = True
            for pass_ in range(2 if umasked else 1):
                src = fr[i] if pass_ == 0 else fa[i]
                dst = acc if pass_ == 0 else acc_a
                if fast_path:
                    w00 = w[0]
                    w01 = w[1]
                    w10 = w[2]
                    w11 = w[3]
                    w20 = w[4]
                    w21 = w[5]
                    a0 = src[cidx[0, u], 0]
                    b0 = src[cidx[1, u], 0]
                    a1 = src[cidx[0, u], 1]
                    b1 = src[cidx[1, u], 1]
                    a2 = src[cidx[0, u], 2]
                    b2 = src[cidx[1, u], 2]
                    for t in range(nk):
                        s = 0.0
                        s += a0[t] * w00[t]
                        s += b0[t] * w01[t]
                        s += a1[t] * w10[t]
                        s += b1[t] * w11[t]
                        s += a2[t] * w20[t]
                        s += b2[t] * w21[t]
                        dst[t] = s
                else:
                    # Any tap counts: y taps outer, x taps inner, per pixel.
                    for t in range(nk):
                        dst[t] = 0.0
                    for j in range(n_rt):
                        for q in range(n_ct):
                            e = src[cidx[q, u], j]
                            wjq = w[j * n_ct + q]
                            for t in range(nk):
                                dst[t] += e[t] * wjq[t]
            col = out_t[dest[i], cc0 + u, k0 : k0 + nk]
            if not umasked:
                # Alpha is exactly 1: both styles reduce to the clamped colour, truncated.
                for t in range(nk):
                    v = acc[t] / tot[t]
                    v = min(max(v, 0.0), 1.0)
                    col[t] = np.uint8(v * 255)
            elif premultiplied:
                # resample.rgba_stage's 3.11 rules and over_white, branch-free: fixed_blender_rgba_plain's
                # formula gives r8 at a8 == 255 and 255 at a8 == 0, exact in float64 (N < 2**31, D <= 65535).
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
            else:
                # resample.rgba_stage's 3.10 rules and over_white, branch-free as above.
                for t in range(nk):
                    v = min(max(acc[t] / tot[t], 0.0), 1.0)
                    r8 = np.floor(v * 255)
                    a8 = np.floor((acc_a[t] / tot[t]) * 255)
                    col[t] = np.uint8(np.floor(((r8 * 256 - 65025) * a8 + 65025 * 256) / (a8 + 65280)))


_OPTIONS = dict(nogil=True, fastmath=False, error_model="numpy")
window_frames = jit.njit(_window_frames, **_OPTIONS)
power = jit.njit(_power, **_OPTIONS)
draw = jit.njit(_draw, **_OPTIONS)
