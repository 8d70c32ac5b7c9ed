"""The fast renderer: matplotlib's specgram pixels, without matplotlib.

It reproduces, bit for bit, what the notebook's ``wav_to_spectrogram`` draws
(a 112x112 figure at dpi 100, white, one axes covering it, ``ax.specgram``
with NFFT 256, noverlap 128, ``gray_r``, Agg, red channel) under a chosen
matplotlib version: ``"3.10"`` (the notebook's), ``"3.11"`` or ``"3.9"``.
The facts it follows are in ``RENDERING.md``; each step below names the
matplotlib or Agg code it replays.

Styles 3.10 and 3.11 normally take the fused route: the windowed frames go
through numpy's own FFT ufunc, then one numba kernel (``_agg._finish``) does
the PSD steps, dB, colour, Agg's resampling and the blend, with the same float
operations in the same order as the spelled-out numpy route below (which 3.9,
non-float input, non-finite spectra and installs without numba take, and which
the tests compare the fused route with).
"""

from __future__ import annotations

import math
import threading
from typing import Iterable, Sequence

import numpy as np

from . import _agg, _geometry
from .spec import DEFAULT_STYLE, IMAGE_SIZE, NFFT, NOVERLAP, STYLES

__all__ = ["FastRenderer", "render", "render_batch"]

_N_ROWS = _geometry.N_ROWS
_WINDOW = np.hanning(NFFT)
_WINDOW_COL = _WINDOW.reshape((-1, 1))
_WINDOW_SQ_SUM = (_WINDOW**2).sum()
_LUT = np.linspace(1.0, 0.0, 256)  # gray_r's red channel (equal to matplotlib's _lut)
_HOP = NFFT - NOVERLAP
_INV_WINDOW_SQ_SUM = 1.0 / _WINDOW_SQ_SUM

try:  # the ufunc behind np.fft.fft (numpy >= 2): same transform, without the wrapper's overhead
    from numpy.fft import _pocketfft_umath as _pfu

    _PFU_FFT = _pfu.fft
except Exception:  # pragma: no cover
    _PFU_FFT = None


_FUSED_MODE: list = []  # [None | (cmul_fma,)]: how numpy's complex multiply rounds here (decided once)
_FUSED_LOCK = threading.Lock()


def _fused_mode():
    """Whether the fused kernels reproduce ``_psd_db`` here, and how: ``(cmul_fma,)`` or None.

    numpy's complex multiply is built with FMA on x86-64-v3 machines
    (``conj(r) * r`` has real part ``fma(re, re, im * im)``) and without it
    elsewhere, and its log10 may be a SIMD one rather than the C library's.
    Instead of assuming, the kernel's dB values are compared with ``_psd_db``
    on probe clips once per process; if neither variant is bit-identical the
    numpy route is used.
    """
    if _FUSED_MODE:
        return _FUSED_MODE[0]
    with _FUSED_LOCK:
        if _FUSED_MODE:
            return _FUSED_MODE[0]
        mode = None
        if _agg._finish is not None:
            rng = np.random.default_rng(12345)
            probes = [(rng.standard_normal(6000) * s).astype(np.float32) for s in (1e-3, 1.0, 3e3)]
            probes += [rng.standard_normal(4000), rng.uniform(-1, 1, 9000).astype(np.float32)]
            for candidate in ((True,), (False,)):
                ok = True
                for x in probes:
                    for fs in (8000, 22050):
                        ref = _psd_db(_frames(x), fs)
                        z = _fused_z(x, fs, candidate)
                        if z is None or not np.array_equal(z, ref, equal_nan=True):
                            ok = False
                            break
                    if not ok:
                        break
                if ok:
                    mode = candidate
                    break
        _FUSED_MODE.append(mode)
        return mode


_TLS = threading.local()


def _scratch(n_frames: int):
    """Per-thread buffers for the fused path, grown on demand.

    Returns (capacity, FFT input as float64 pairs, z, work, views) where
    ``views[n]`` caches the (FFT input, FFT output) views of n rows. Reusing
    the buffers matters: a fresh array of a few hundred KiB is a fresh mmap and
    its page faults cost more than the FFT.
    """
    s = getattr(_TLS, "bufs", None)
    if s is None or s[0] < n_frames:
        cap = max(n_frames, 2 * NFFT)
        buf_in = np.zeros((cap, NFFT), np.complex128)  # imaginary parts stay 0: _window writes real parts
        buf_out = np.empty((cap, NFFT), np.complex128)
        views = {}
        s = (
            cap,
            buf_in.view(np.float64),
            np.empty((cap, _N_ROWS), np.float64),
            np.empty(_agg.work_size(cap, _N_ROWS, 3, IMAGE_SIZE + 2), np.float64),
            views,
            buf_in,
            buf_out,
        )
        _TLS.bufs = s
    return s


def _fft_views(s, n: int):
    v = s[4].get(n)
    if v is None:
        v = s[4][n] = (s[5][:n], s[6][:n])
    return v


def _fft_into(spec_in: np.ndarray, spec_out: np.ndarray) -> None:
    """``spec_out[:] = np.fft.fft(spec_in, axis=-1)``: numpy's own transform."""
    if _PFU_FFT is not None:
        _PFU_FFT(spec_in, 1, out=spec_out)  # the core dimension is the last axis
    else:  # pragma: no cover
        spec_out[...] = np.fft.fft(spec_in, axis=-1)


def _spectrum(x: np.ndarray, s=None) -> np.ndarray:
    """The FFT of the windowed frames, (frames, NFFT) complex (a view of this thread's scratch)."""
    n_frames = (len(x) - NFFT) // _HOP + 1
    if s is None:
        s = _scratch(n_frames)
    _agg._window(x, 0, n_frames, _HOP, _WINDOW, s[1])
    spec_in, spec = _fft_views(s, n_frames)
    _fft_into(spec_in, spec)
    return spec


_DUMMY_I = np.zeros((3, 0), np.int64)  # no taps: the kernel stops after the colour step
_DUMMY_F = np.zeros((3, 0), np.float64)


def _fused_z(x, fs, mode):
    """The kernel's dB values alone (for the probe): no pixels drawn."""
    x = _fused_input(x)
    spec = _spectrum(x)
    n_frames = spec.shape[0]
    z = np.empty((n_frames, _N_ROWS), np.float64)
    work = np.empty(_agg.work_size(n_frames, _N_ROWS, 3, 0), np.float64)
    canvas = np.empty((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    status = _agg._finish(spec, 0, n_frames, 1.0 / float(fs), _INV_WINDOW_SQ_SUM, *mode, _LUT,
                          _DUMMY_I, _DUMMY_F, _DUMMY_I, _DUMMY_F, 0, 0, False, z, work, canvas)
    return None if status else z.T


def _fused_rate(sample_rate) -> bool:
    """Sample rates the kernel's ``* (1 / Fs)`` replays numpy's complex division for (finite, non-zero)."""
    try:
        fs = float(sample_rate)
    except (TypeError, ValueError):
        return False
    return fs != 0.0 and math.isfinite(fs)


def _fused_input(x: np.ndarray):
    """The samples as the kernels take them (float32/float64, >= NFFT long), or None."""
    if (x.dtype != np.float32 and x.dtype != np.float64) or len(x) == 0:
        return None
    if len(x) < NFFT:  # mlab zero-pads short input to NFFT
        y = np.zeros(NFFT, x.dtype)
        y[: len(x)] = x
        return y
    return np.ascontiguousarray(x)


def _frames(x: np.ndarray) -> np.ndarray:
    """mlab's frames: columns of NFFT samples every NFFT - NOVERLAP."""
    if len(x) < NFFT:
        n = len(x)
        x = np.resize(x, NFFT)
        x[n:] = 0
    return np.lib.stride_tricks.sliding_window_view(x, NFFT, axis=0)[:: NFFT - NOVERLAP].T


def _psd_db(frames: np.ndarray, sample_rate) -> np.ndarray:
    """``mlab._spectral_helper`` (psd) and ``Axes.specgram``'s dB, flipped.

    The complex arithmetic is kept as matplotlib does it (complex multiply,
    in-place complex division by the real scale factors) so the values are
    the same to the last bit, not only to a ULP.
    """
    result = frames * _WINDOW_COL  # float32 frames times the float64 window -> float64
    result = np.fft.fft(result, n=NFFT, axis=0)[:_N_ROWS, :]
    result = np.conj(result) * result
    result[1:-1] *= 2.0
    result /= sample_rate
    result /= _WINDOW_SQ_SUM
    with np.errstate(divide="ignore", invalid="ignore"):
        z = 10.0 * np.log10(result.real)
    return np.flipud(z)


def _colour(z: np.ndarray):
    """Normalize + gray_r: the red channel and alpha of every cell.

    Masked cells (-inf dB, or NaN) get the "bad" colour (0, 0, 0, 0). The
    limits are the min and max of the finite cells; ``Normalize`` maps all
    cells to 0 when they are equal. The index is ``int(x * 256)`` with
    ``x == 1`` going to 255, as ``Colormap.__call__`` does.
    """
    finite = np.isfinite(z)
    red = np.zeros(z.shape, np.float64)
    alpha = finite.astype(np.float64)
    if not finite.any():
        return red, alpha
    vals = z[finite]
    vmin = vals.min()
    vmax = vals.max()
    if vmin == vmax:
        x = np.zeros_like(vals)
    else:
        x = vals - vmin
        x /= vmax - vmin
    x *= 256
    x[x == 256] = 255
    # Normalize does not clip by default; x is in [0, 256) here, so the cast is the lookup index.
    red[finite] = _LUT[x.astype(np.int64)]
    return red, alpha


def _to_u8(v: np.ndarray) -> np.ndarray:
    """``to_rgba(bytes=True)`` on floats: multiply by 255 and truncate."""
    return (v * 255).astype(np.uint8)


def _over_white(r8: np.ndarray, a8: np.ndarray) -> np.ndarray:
    """Agg's ``fixed_blender_rgba_plain`` of (r, a) over the opaque white canvas."""
    r = r8.astype(np.int64)
    a = a8.astype(np.int64)
    blended = ((r * 256 - 65025) * a + 65025 * 256) // (a + 65280)
    out = np.where(a == 255, r, blended)
    out = np.where(a == 0, 255, out)
    return out.astype(np.uint8)


class FastRenderer:
    """Render spectrograms with a chosen matplotlib version's exact pixels.

    Parameters
    ----------
    style : {"3.10", "3.11", "3.9"}, default "3.10"
        The matplotlib ``major.minor`` whose figure route to reproduce. The
        notebook ran 3.10.

    Notes
    -----
    Never imports matplotlib. The geometry of a clip (filter taps per output
    row and column) depends only on its frame count and sample rate and is
    cached; the per-clip work is one FFT, the colour lookup and the filter.
    """

    name = "fast"

    def __init__(self, style: str = DEFAULT_STYLE) -> None:
        style = str(style)
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}: choose one of {', '.join(STYLES)}")
        self.style = style
        self._weights = _agg.hanning_lut(fixed=(style == "3.11"))
        self._plans: dict = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FastRenderer(style={self.style!r})"

    def _plan(self, n_frames: int, sample_rate) -> dict:
        key = (n_frames, float(sample_rate))
        plan = self._plans.get(key)
        if plan is None:
            plan = _geometry.resample_plan(n_frames, float(sample_rate), self.style, self._weights)
            with self._lock:
                self._plans[key] = plan
        return plan

    def _fused_plan(self, n_frames: int, sample_rate) -> tuple:
        """The plan as the fused kernel takes it, per drawn canvas row and column.

        Row taps of canvas rows ``k0 ..`` (draw_image attaches the image bottom
        up: canvas row k shows image row ``out_h - 1 - (k - ydst)``) and column
        taps of canvas columns ``cc0 ..``, padded to fixed counts with weight 0
        (as ``_axis_taps`` pads them), weights as floats (row weights / 2**14).
        Returns (the kernel's plan arguments, the work size it needs).
        """
        key = ("fused", n_frames, float(sample_rate))
        fp = self._plans.get(key)
        if fp is None:
            plan = self._plan(n_frames, sample_rate)
            row_idx, row_w, _ = plan["row"]
            col_idx, col_w, _ = plan["col"]
            h, w = plan["out_h"], plan["out_w"]
            xdst = int(plan["x0"])
            ydst = int(IMAGE_SIZE - (plan["y0"] + h))
            k0, k1 = max(ydst, 0), min(ydst + h, IMAGE_SIZE)
            c0, c1 = max(0, -xdst), min(w, IMAGE_SIZE - xdst)
            rows = [h - 1 - (k - ydst) for k in range(k0, k1)]
            fp = (
                np.ascontiguousarray(row_idx[rows].T, np.int64),
                np.ascontiguousarray(row_w[rows].T, np.float64) / 16384.0,  # exact: a power of 2
                np.ascontiguousarray(col_idx[c0:c1].T, np.int64),
                np.ascontiguousarray(col_w[c0:c1].T, np.float64),
                k0,
                c0 + xdst,
            )
            fp = (fp, _agg.work_size(n_frames, _N_ROWS, fp[0].shape[0], fp[0].shape[1]))
            with self._lock:
                self._plans[key] = fp
        return fp

    def _render_fused(self, x: np.ndarray, sample_rate, spec=None, start=0):
        """3.10/3.11 through the fused kernels; None when the numpy route must be taken."""
        mode = _FUSED_MODE[0] if _FUSED_MODE else _fused_mode()
        if mode is None:
            return None
        n_frames = (len(x) - NFFT) // _HOP + 1
        s = _scratch(n_frames)
        if spec is None:
            spec = _spectrum(x, s)
        fp, need = self._fused_plan(n_frames, sample_rate)
        work = s[3] if len(s[3]) >= need else np.empty(need, np.float64)
        canvas = np.empty((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        status = _agg._finish(spec, start, n_frames, 1.0 / float(sample_rate), _INV_WINDOW_SQ_SUM, *mode, _LUT,
                              *fp, self.style == "3.11", s[2], work, canvas)
        return None if status else canvas

    def _draw(self, z: np.ndarray, sample_rate) -> np.ndarray:
        red, alpha = _colour(z)
        plan = self._plan(z.shape[1], sample_rate)
        if self.style == "3.9":
            r8, a8 = self._draw_data_stage(z, red, alpha, plan)
            return self._place(_over_white(r8, a8), plan)
        # 3.10 and 3.11: one fused pass (the numpy path in _draw_rgba_stage is the spelled-out form).
        canvas = np.full((IMAGE_SIZE, IMAGE_SIZE), 255, np.uint8)
        h = plan["out_h"]
        _agg._draw_rgba(
            red, alpha, *plan["row"], *plan["col"], h, plan["out_w"],
            int(plan["x0"]), int(IMAGE_SIZE - (plan["y0"] + h)), self.style == "3.11", canvas,
        )
        return canvas

    def _draw_rgba_stage(self, red, alpha, plan):
        if self.style == "3.11":
            # image.py premultiplies before resampling (a no-op when alpha is all 1).
            c, a = _agg.resample(red * alpha, alpha, plan)
            # span_image_resample_rgba_affine clamps A to [0, 1] and R to [0, A].
            a = np.clip(a, 0.0, 1.0)
            c = np.minimum(np.maximum(c, 0.0), a)
            # The output pixfmt (blender_rgba_pre over zeros) copies opaque
            # pixels, drops transparent ones and stores partly covered ones
            # times cover 255 / 255; image.py then demultiplies.
            partial = (a > 0) & (a < 1)
            a_s = np.where(partial, a * 255 / 255, np.where(a >= 1, a, 0.0))
            c_s = np.where(partial, c * 255 / 255, np.where(a >= 1, c, 0.0))
            c_f = c_s / np.where(a_s != 0, a_s, 1.0)
            return _to_u8(c_f), _to_u8(a_s)
        # 3.10: RGB resampled with alpha 1 everywhere, alpha resampled apart (gray, no clamp).
        c, a = _agg.resample(red, alpha, plan)
        c = np.minimum(np.maximum(c, 0.0), 1.0)
        return _to_u8(c), _to_u8(a)

    def _draw_data_stage(self, z, red, alpha, plan):
        """3.9: resample the dB values themselves, then colour (image.py 3.9.4:424-534).

        The data are shifted and scaled into [0.1, 0.9] before resampling and
        back after, with matplotlib's float operations in its order; any output
        pixel whose filter footprint touches a masked (-inf) cell is masked
        (bad colour, transparent, so white on the canvas).
        """
        finite = alpha > 0
        h, w = plan["out_h"], plan["out_w"]
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
        mask = np.where(finite, 1.0, np.nan)
        res, out_alpha = _agg.resample(a_scaled, mask, plan)
        res -= offset
        vrange -= offset
        if a_min != a_max:
            res *= (a_max - a_min) / frac
            vrange *= (a_max - a_min) / frac
        res += a_min
        vrange += a_min
        out_mask = np.isnan(out_alpha)
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
        r8 = _to_u8(_LUT)[idx]
        a8 = np.where(out_mask, 0, 255).astype(np.uint8)
        r8[out_mask] = 0
        return r8, a8

    @staticmethod
    def _place(img: np.ndarray, plan) -> np.ndarray:
        """``RendererAgg::draw_image``: flip to canvas rows, offset, clip, white elsewhere."""
        h, w = img.shape
        canvas = np.full((IMAGE_SIZE, IMAGE_SIZE), 255, np.uint8)
        xdst = int(plan["x0"])
        ydst = int(IMAGE_SIZE - (plan["y0"] + h))
        flipped = img[::-1]
        r0, c0 = max(ydst, 0), max(xdst, 0)
        r1, c1 = min(ydst + h, IMAGE_SIZE), min(xdst + w, IMAGE_SIZE)
        canvas[r0:r1, c0:c1] = flipped[r0 - ydst : r1 - ydst, c0 - xdst : c1 - xdst]
        return canvas

    def render(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """Render one clip.

        Parameters
        ----------
        samples : 1-D float array
            The waveform (the pipeline gives float32; any float dtype works
            and is treated as matplotlib treats it).
        sample_rate : int
            Samples per second (``Fs``).

        Returns
        -------
        numpy.ndarray
            (112, 112) uint8: row 0 is the Nyquist frequency, dark is loud.
        """
        x = np.asarray(samples)
        if x.ndim != 1:
            raise ValueError(f"samples must be 1-D, got shape {x.shape}")
        if self.style != "3.9" and _agg._finish is not None and _fused_rate(sample_rate):
            xf = _fused_input(x)
            if xf is not None:
                img = self._render_fused(xf, sample_rate)
                if img is not None:
                    return img
        return self._render_numpy(x, sample_rate)

    def _render_numpy(self, x: np.ndarray, sample_rate) -> np.ndarray:
        """The spelled-out route: numpy PSD as mlab computes it, then ``_draw``."""
        z = _psd_db(_frames(x), sample_rate)
        return self._draw(z, sample_rate)

    def render_batch(self, clips: Iterable[np.ndarray], sample_rate: int) -> np.ndarray:
        """Render many clips of one sample rate (lengths may differ).

        Returns
        -------
        numpy.ndarray
            (N, 112, 112) uint8, the same bytes as ``render`` on each clip.
        """
        clips = [np.asarray(c) for c in clips]
        out = np.empty((len(clips), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        if not clips:
            return out
        for c in clips:
            if c.ndim != 1:
                raise ValueError(f"samples must be 1-D, got shape {c.shape}")
        dtypes = {c.dtype for c in clips}
        if len(dtypes) != 1 or next(iter(dtypes)) not in (np.dtype(np.float32), np.dtype(np.float64)):
            for i, clip in enumerate(clips):
                out[i] = self.render(clip, sample_rate)
            return out
        if (self.style != "3.9" and _agg._finish is not None and _fused_rate(sample_rate)
                and _fused_mode() is not None):
            self._render_batch_fused(clips, sample_rate, out)
            return out
        # One FFT and one pass of the element-wise PSD steps over all clips'
        # frames side by side: every step is per column, so each clip's values
        # are the bits ``render`` computes (tested), with the per-call overhead
        # paid once per chunk instead of once per clip.
        chunk = 256
        for start in range(0, len(clips), chunk):
            part = clips[start : start + chunk]
            frames = [_frames(c) for c in part]
            widths = [f.shape[1] for f in frames]
            z_all = _psd_db(np.concatenate(frames, axis=1), sample_rate)
            col = 0
            for i, w in enumerate(widths):
                out[start + i] = self._draw(np.ascontiguousarray(z_all[:, col : col + w]), sample_rate)
                col += w
        return out

    def _render_batch_fused(self, clips, sample_rate, out) -> None:
        """Window many clips into one array, one FFT call for them all, then the kernel per clip.

        The FFT transforms each frame on its own, so a frame's spectrum has
        the same bits whichever clips share the call (tested).
        """
        max_frames = 64  # 256 KiB of FFT input (and output) per call: stays in L2
        i = 0
        while i < len(clips):
            part = []
            total = 0
            while i < len(clips) and (not part or total < max_frames):
                xf = _fused_input(clips[i])
                if xf is None:
                    out[i] = self._render_numpy(clips[i], sample_rate)
                else:
                    n = (len(xf) - NFFT) // _HOP + 1
                    part.append((i, xf, total, n))
                    total += n
                i += 1
            if not part:
                continue
            s = _scratch(total)
            for _, xf, start, n in part:
                _agg._window(xf, start, n, _HOP, _WINDOW, s[1])
            spec_in, spec = s[5][:total], s[6][:total]
            _fft_into(spec_in, spec)
            for k, xf, start, n in part:
                img = self._render_fused(xf, sample_rate, spec, start)
                # (not self.render: that would overwrite the scratch spectra still in use)
                out[k] = img if img is not None else self._render_numpy(clips[k], sample_rate)


_RENDERERS: dict = {}


def _get(style: str) -> FastRenderer:
    r = _RENDERERS.get(style)
    if r is None:
        r = _RENDERERS.setdefault(style, FastRenderer(style))
    return r


def render(samples: np.ndarray, sample_rate: int, style: str = DEFAULT_STYLE) -> np.ndarray:
    """Render one clip to (112, 112) uint8 in the given matplotlib style."""
    return _get(str(style)).render(samples, sample_rate)


def render_batch(clips: Sequence[np.ndarray], sample_rate: int, style: str = DEFAULT_STYLE) -> np.ndarray:
    """Render many clips to (N, 112, 112) uint8 in the given matplotlib style."""
    return _get(str(style)).render_batch(clips, sample_rate)
