"""The fast renderer: the notebook's pixels for a matplotlib version, without matplotlib, by two routes with
the same bytes, numpy (:mod:`.psd`, :mod:`.resample`) and fused (:mod:`.kernels`): docs/rendering.md."""

from __future__ import annotations

import threading
from typing import Iterable, Optional

import numpy as np
from numpy.fft import _pocketfft_umath

from ..common import ParameterError, probe_once
from . import kernels
from .inputs import check_clip, check_sample_rate, check_style
from .psd import GRAY_R, WINDOW, WINDOW_SQ_SUM, decibels, frames, padded, psd_db
from .resample import draw
from .settings import DEFAULT_STYLE, HOP, IMAGE_SIZE, N_ROWS, NFFT, frame_count
from .taps import geometry

__all__ = ["FastRenderer", "fused_mode"]

_INV_WINDOW_SQ_SUM = 1.0 / WINDOW_SQ_SUM
#: Frames per pass of the fused route: enough to pay each call's overhead, few enough to stay in cache.
RENDER_CHUNK_FRAMES = 256
#: Clips per ``psd_db`` call of the numpy route's batches.
_NUMPY_CHUNK_CLIPS = 256
#: Sample dtypes the fused route reads (widened to float64 as ``frames * window`` does); others take numpy's.
_FUSED_DTYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
                                                 np.uint8, np.uint16, np.uint32, np.uint64))


def _fft_into(spec_in: np.ndarray, spec_out: np.ndarray) -> None:
    """``spec_out[:] = np.fft.fft(spec_in, axis=-1)`` through the ufunc behind it (numpy >= 2), without the wrapper."""
    _pocketfft_umath.fft(spec_in, 1, out=spec_out)  # the core dimension is the last axis


class _Spectra:
    """FFT input and output and dB buffers for ``frames`` frames."""

    def __init__(self, frames: int) -> None:
        self.fft_in = np.empty((frames, NFFT), np.complex128)
        self.fft_in_real = self.fft_in.view(np.float64)  # what window_frames writes
        self.fft_out = np.empty((frames, NFFT), np.complex128)
        self.z = np.empty((frames, N_ROWS), np.float64)
        self.frames = frames


class _Scratch(threading.local):
    """Per-thread buffers of the fused route, grown and reused (a fresh mmap's page faults cost more than the FFT)."""

    spectra = _Spectra(0)
    work_elements = 0
    n_canvases = 0

    def spectra_for(self, n_frames: int) -> _Spectra:
        if n_frames > 8 * RENDER_CHUNK_FRAMES:  # a long clip's buffers are its own, not kept
            return _Spectra(n_frames)
        if n_frames > self.spectra.frames:
            self.spectra = _Spectra(max(n_frames, 2 * RENDER_CHUNK_FRAMES))
        return self.spectra

    def ensure_work(self, work_elements: int) -> np.ndarray:
        if work_elements > self.work_elements:
            self.work = np.empty(max(work_elements, 2 * self.work_elements), np.float64)
            self.work_elements = len(self.work)
        return self.work

    def canvases(self, n: int) -> np.ndarray:
        """(n, 112, 112) uint8 staging canvases for the draw kernel (transposed images)."""
        if n > self.n_canvases:
            self.canvas_buffer = np.empty((max(n, 2 * self.n_canvases), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
            self.n_canvases = len(self.canvas_buffer)
        return self.canvas_buffer[:n]


_SCRATCH = _Scratch()


def _fused_decibels(clips, sample_rate: int, cmul_fma: bool) -> np.ndarray:
    """The fused route's dB values of ``clips``, stacked (frames, 129), Nyquist first (this thread's scratch)."""
    clips = [padded(x) for x in clips]
    lengths = np.array([len(x) for x in clips], np.int64)
    counts = (lengths - NFFT) // HOP + 1  # settings.frame_count of each (padded) clip
    frame_starts = np.zeros(len(clips), np.int64)
    np.cumsum(counts[:-1], out=frame_starts[1:])
    total = int(frame_starts[-1] + counts[-1])
    sample_starts = np.zeros(len(clips), np.int64)
    np.cumsum(lengths[:-1], out=sample_starts[1:])
    if len(clips) == 1:
        flat = clips[0]
    else:  # the kernel widens every sample to float64, as numpy's frames * window does; so may this
        same = all(x.dtype == np.float32 for x in clips)
        flat = np.concatenate(clips, dtype=np.float32 if same else np.float64)
    s = _SCRATCH.spectra_for(total)
    kernels.window_frames(flat, sample_starts, frame_starts, counts, HOP, WINDOW, s.fft_in_real)
    _fft_into(s.fft_in[:total], s.fft_out[:total])
    z = s.z[:total]
    kernels.power(s.fft_out, total, 1.0 / sample_rate, _INV_WINDOW_SQ_SUM, cmul_fma, z)
    return decibels(z, out=z)


_MODE: dict = {}  # "cmul_fma" -> None | bool: decided once per process (probe_once)


def fused_mode() -> Optional[bool]:
    """Whether the fused route reproduces the numpy route's dB here: the ``cmul_fma`` to use, or None.

    Whether numpy's complex multiply uses an FMA is probed once per process on a few clips; None sends
    every clip to the numpy route (docs/rendering.md, section 1).
    """
    return probe_once(_MODE, "cmul_fma", _probe_cmul_fma)


def _probe_cmul_fma() -> Optional[bool]:
    """The first ``cmul_fma`` whose fused dB values equal :func:`.psd.psd_db` on every probe clip, or None."""
    rng = np.random.default_rng(12345)
    probes = [(rng.standard_normal(6000) * s).astype(np.float32) for s in (1e-3, 1.0, 3e3)]
    probes += [rng.standard_normal(4000), rng.uniform(-1, 1, 9000).astype(np.float32)]
    for candidate in (True, False):
        if all(np.array_equal(_fused_decibels([x], fs, candidate).T, psd_db(frames(x), fs))
               for x in probes for fs in (8000, 22050)):
            return candidate
    return None


class FastRenderer:
    """Render spectrograms with a chosen matplotlib version's exact pixels, without importing matplotlib.

    Parameters
    ----------
    style : {"3.10", "3.11", "3.9"}, default "3.10"
        The matplotlib ``major.minor`` whose figure route to reproduce (the notebook ran 3.10); another
        is a ParameterError.
    """

    name = "fast"

    def __init__(self, style: str = DEFAULT_STYLE) -> None:
        self.style = check_style(style)

    def __repr__(self) -> str:
        return f"FastRenderer(style={self.style!r})"

    def render(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """Render one clip (any real dtype) at ``sample_rate``: (112, 112) uint8, row 0 the Nyquist, dark loud.

        Raises
        ------
        ParameterError
            For a clip that is not 1-D, empty or not real, or a sample rate that is not a positive whole number.
        """
        return self.render_batch([check_clip(samples)], sample_rate)[0]

    def render_batch(self, clips: Iterable[np.ndarray], sample_rate: int, *, out: Optional[np.ndarray] = None):
        """Render many clips of one sample rate, lengths may differ: the same bytes as ``render`` on each.

        ``out``, a C-contiguous (N, 112, 112) uint8 array, is drawn into and returned; the errors are
        ``render``'s, and a ParameterError for an unfit ``out``.
        """
        fs = check_sample_rate(sample_rate)
        clips = [check_clip(c, i) for i, c in enumerate(clips)]
        shape = (len(clips), IMAGE_SIZE, IMAGE_SIZE)
        if out is None:
            out = np.empty(shape, np.uint8)
        elif out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous or not out.flags.writeable:
            raise ParameterError(f"out must be a writeable C-contiguous uint8 array of shape {shape}, "
                             f"got {out.dtype} {out.shape}")
        fused = []
        numpy_route = []
        cmul_fma = fused_mode() if self.style != "3.9" else None
        for i, x in enumerate(clips):
            (fused if cmul_fma is not None and x.dtype in _FUSED_DTYPES else numpy_route).append(i)
        if fused:
            numpy_route += self._render_fused(clips, fused, fs, cmul_fma, out)
        self._render_numpy_batch(clips, sorted(numpy_route), fs, out)
        return out

    def _render_numpy(self, x: np.ndarray, sample_rate) -> np.ndarray:
        """The numpy route for one clip: ``psd.psd_db``, then ``resample.draw``."""
        z = psd_db(frames(x), sample_rate)
        return draw(z, geometry(z.shape[1], int(sample_rate), self.style))

    def _render_numpy_batch(self, clips, indices, sample_rate: int, out) -> None:
        """The numpy route over many clips: one ``psd_db`` over their frames side by side (each step is per column)."""
        for first in range(0, len(indices), _NUMPY_CHUNK_CLIPS):
            part = indices[first : first + _NUMPY_CHUNK_CLIPS]
            dtypes = {clips[i].dtype for i in part}
            if len(dtypes) != 1:  # mixed dtypes would be widened together: keep each clip's own arithmetic
                for i in part:
                    out[i] = self._render_numpy(clips[i], sample_rate)
                continue
            cols = [frames(clips[i]) for i in part]
            z_all = psd_db(np.concatenate(cols, axis=1), sample_rate)
            start = 0
            for i, c in zip(part, cols):
                n = c.shape[1]
                out[i] = draw(np.ascontiguousarray(z_all[:, start : start + n]), geometry(n, sample_rate, self.style))
                start += n

    def _render_fused(self, clips, indices, sample_rate: int, cmul_fma: bool, out) -> list:
        """Draw ``clips[indices]`` into ``out`` in chunks of about ``RENDER_CHUNK_FRAMES`` frames, one kernel call
        per frame count; returns the indices it left to the numpy route."""
        counts = {i: frame_count(len(clips[i])) for i in indices}
        order = sorted(indices, key=counts.__getitem__)
        premultiplied = self.style == "3.11"
        left = []
        pos = 0
        while pos < len(order):
            chunk = [order[pos]]
            total = counts[order[pos]]
            pos += 1
            while pos < len(order) and total + counts[order[pos]] <= RENDER_CHUNK_FRAMES:
                chunk.append(order[pos])
                total += counts[order[pos]]
                pos += 1
            z = _fused_decibels([clips[i] for i in chunk], sample_rate, cmul_fma)
            staging = _SCRATCH.canvases(len(chunk))
            start = 0
            g = 0
            while g < len(chunk):  # runs of one frame count: one geometry, one kernel call
                n = counts[chunk[g]]
                end = g
                while end < len(chunk) and counts[chunk[end]] == n:
                    end += 1
                geom = geometry(n, sample_rate, self.style)
                taps = geom.canvas_taps
                need = kernels.work_size(end - g, n, N_ROWS, taps[0].shape[0], taps[0].shape[1])
                work = _SCRATCH.ensure_work(need)
                starts = np.arange(start, start + (end - g) * n, n, dtype=np.int64)
                dest = np.arange(g, end, dtype=np.int64)
                status = np.empty(end - g, np.int64)
                kernels.draw(z, starts, n, dest, GRAY_R, *taps, geom.canvas_rows.start, geom.canvas_cols.start,
                             premultiplied, work, staging, status)
                if status.any():
                    left += [chunk[g + k] for k in np.flatnonzero(status)]
                start += (end - g) * n
                g = end
            if len(clips) == 1:  # a batch of one: skip the fancy indexing
                np.copyto(out, staging.transpose(0, 2, 1))
            else:
                out[chunk] = staging.transpose(0, 2, 1)
        return left
