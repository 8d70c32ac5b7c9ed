"""The fast renderer: matplotlib's specgram pixels, without matplotlib.

It reproduces, bit for bit, what the notebook's ``wav_to_spectrogram`` draws
(a 112x112 figure at dpi 100, white, one axes covering it, ``ax.specgram``
with NFFT 256, noverlap 128, ``gray_r``, Agg, red channel) under a chosen
matplotlib version: ``"3.10"`` (the notebook's), ``"3.11"`` or ``"3.9"``
(see docs/rendering.md).

Two routes give the same bytes:

* the numpy route (:mod:`.psd`, then :mod:`.resample`): every step spelled
  out; style 3.9, non-finite spectra, unusual dtypes and machines whose numpy
  rounds in a way the kernels do not reproduce take it, and it is what the
  fused route is tested against;
* the fused route (styles 3.10 and 3.11): the clips of a batch are windowed
  into one array, go through numpy's FFT and log10 in one call each, and a
  numba kernel draws all clips of one frame count in one call, with the
  geometry (:func:`.taps.geometry`) shared by them.
"""

from __future__ import annotations

import threading
from typing import Iterable, Optional

import numpy as np
from numpy.fft import _pocketfft_umath

from ..common import ParameterError, probe_once
from . import kernels
from .inputs import check_clip, check_sample_rate
from .psd import GRAY_R, WINDOW, WINDOW_SQ_SUM, decibels, frames, psd_db
from .resample import draw
from .settings import DEFAULT_STYLE, HOP, IMAGE_SIZE, N_ROWS, NFFT, STYLES, frame_count
from .taps import geometry

__all__ = ["FastRenderer", "fused_mode"]

_INV_WINDOW_SQ_SUM = 1.0 / WINDOW_SQ_SUM
#: Spectrogram frames (of NFFT = 256 samples) windowed, transformed and coloured per pass of the fused route:
#: enough to pay each call's overhead over many clips, few enough that the
#: FFT's input and output (16 bytes x 256 per frame each) stay in cache.
RENDER_CHUNK_FRAMES = 256
#: Clips per ``psd_db`` call of the numpy route's batches.
_NUMPY_CHUNK_CLIPS = 256
#: Sample dtypes the fused route reads (widened to float64 exactly as numpy's
#: ``frames * window`` widens them); others take the numpy route.
_FUSED_DTYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
                                                 np.uint8, np.uint16, np.uint32, np.uint64))


def _fft_into(spec_in: np.ndarray, spec_out: np.ndarray) -> None:
    """``spec_out[:] = np.fft.fft(spec_in, axis=-1)``: numpy's own transform, frame by frame.

    It calls the ufunc behind ``np.fft.fft`` (numpy >= 2, a declared
    dependency): the same transform, without the wrapper's overhead.
    """
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
    """Per-thread buffers of the fused route, grown on demand and then reused.

    Reusing them matters: a fresh array of a few hundred KiB is a fresh mmap
    whose page faults cost more than the FFT. A clip longer than
    ``8 * RENDER_CHUNK_FRAMES`` frames gets buffers of its own that are not kept
    (about 8 KiB a frame: an hour at 8 kHz would pin 1.8 GB).
    """

    spectra = _Spectra(0)
    work_elements = 0
    n_canvases = 0

    def spectra_for(self, n_frames: int) -> _Spectra:
        if n_frames > 8 * RENDER_CHUNK_FRAMES:
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


def _padded(x: np.ndarray) -> np.ndarray:
    """mlab zero-pads input shorter than NFFT."""
    if len(x) >= NFFT:
        return x
    y = np.zeros(NFFT, x.dtype)
    y[: len(x)] = x
    return y


def _fused_decibels(clips, sample_rate: int, cmul_fma: bool) -> np.ndarray:
    """The fused route's dB values of ``clips``, stacked (frames, 129), Nyquist first.

    Windowing, one FFT and one power pass over all their frames, then
    :func:`.psd.decibels` in one call. Returns a view of this thread's scratch.
    """
    clips = [_padded(x) for x in clips]
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

    numpy's complex multiply is built with FMA on x86-64-v3 machines
    (``conj(r) * r`` has real part ``fma(re, re, im * im)``) and without it
    elsewhere. Instead of assuming, the fused dB values are compared with
    :func:`.psd.psd_db` on probe clips once per process, for each variant;
    if neither is bit-identical it is None and the numpy route is used.
    """
    return probe_once(_MODE, "cmul_fma", _probe_cmul_fma)


def _probe_cmul_fma() -> Optional[bool]:
    """The first ``cmul_fma`` whose fused dB values equal :func:`.psd.psd_db` on every probe clip, or None."""
    rng = np.random.default_rng(12345)
    probes = [(rng.standard_normal(6000) * s).astype(np.float32) for s in (1e-3, 1.0, 3e3)]
    probes += [rng.standard_normal(4000), rng.uniform(-1, 1, 9000).astype(np.float32)]
    for candidate in (True, False):
        if all(
            np.array_equal(_fused_decibels([x], fs, candidate).T, psd_db(frames(x), fs))
            for x in probes
            for fs in (8000, 22050)
        ):
            return candidate
    return None


class FastRenderer:
    """Render spectrograms with a chosen matplotlib version's exact pixels.

    Parameters
    ----------
    style : {"3.10", "3.11", "3.9"}, default "3.10"
        The matplotlib ``major.minor`` whose figure route to reproduce. The
        notebook ran 3.10.

    Notes
    -----
    Never imports matplotlib. Everything that depends only on a clip's frame
    count and the sample rate (transform, filter taps, placement) is built
    once per process (:func:`.taps.geometry`) and shared by every renderer;
    the per-clip work is the FFT, the colour lookup and the filter sums.
    """

    name = "fast"

    def __init__(self, style: str = DEFAULT_STYLE) -> None:
        style = str(style)
        if style not in STYLES:
            raise ParameterError(f"unknown style {style!r}: choose one of {', '.join(STYLES)}")
        self.style = style

    def __repr__(self) -> str:
        return f"FastRenderer(style={self.style!r})"

    def render(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """Render one clip.

        Parameters
        ----------
        samples : 1-D real array
            The waveform (the pipeline gives float32; any real dtype works and
            is treated as matplotlib treats it).
        sample_rate : int
            Samples per second (``Fs``): a positive whole number.

        Returns
        -------
        numpy.ndarray
            (112, 112) uint8: row 0 is the Nyquist frequency, dark is loud.

        Raises
        ------
        ParameterError
            For a clip that is not 1-D, empty or not real, or a sample rate
            that is not a positive whole number.
        """
        return self.render_batch([check_clip(samples)], sample_rate)[0]

    def render_batch(self, clips: Iterable[np.ndarray], sample_rate: int, *, out: Optional[np.ndarray] = None):
        """Render many clips of one sample rate; lengths may differ.

        Parameters
        ----------
        clips : iterable of 1-D real arrays
        sample_rate : int
        out : numpy.ndarray, optional
            A C-contiguous (N, 112, 112) uint8 array to draw into (returned).

        Returns
        -------
        numpy.ndarray
            (N, 112, 112) uint8, the same bytes as ``render`` on each clip.
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
        """The numpy route over many clips: one ``psd_db`` over their frames side by side.

        Every PSD step is per column, so each clip's values are the bits
        ``_render_numpy`` computes (tested), with the per-call overhead paid
        once per chunk instead of once per clip.
        """
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
        """Draw ``clips[indices]`` through the fused route into ``out``; returns the ones it left to numpy.

        The clips are taken in order of frame count, in chunks of about
        ``RENDER_CHUNK_FRAMES`` frames: one windowing call, one FFT, one power pass and
        one log10 per chunk, then one kernel call per frame count in it. The
        FFT transforms each frame on its own, so a frame's spectrum has the
        same bits whichever clips share the call (tested). The kernel draws
        a chunk's images transposed into staging canvases (a chunk holds at
        most RENDER_CHUNK_FRAMES clips, so they stay small and in cache); one numpy
        copy per chunk turns them into ``out``.
        """
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
