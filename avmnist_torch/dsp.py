"""librosa's ``stft``, ``istft`` and ``resample`` for the notebook's settings, bit for bit, with less overhead.

The schemes call ``librosa.stft`` / ``librosa.istft`` with their defaults
(n_fft 2048, hop 512, Hann window, centred with zero padding) on clips of a few
thousand samples, where librosa's argument handling and block bookkeeping cost
ten times the transforms themselves. These functions do the same arithmetic in
the same order and dtypes (float64 window times float32 frames, numpy's
``rfft``/``irfft``, complex64 spectra, float32 overlap-add in frame order,
division by the float32 window sum-square), so their output is byte-identical to
librosa's; ``tests/test_dsp.py`` checks that against the installed librosa.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import as_strided

N_FFT = 2048
HOP = 512


@functools.lru_cache(maxsize=1)
def _window() -> np.ndarray:
    # librosa.filters.get_window("hann", n_fft, fftbins=True): scipy's periodic Hann, float64
    from scipy.signal import get_window

    window = get_window("hann", N_FFT, fftbins=True)
    window.setflags(write=False)
    return window


@functools.lru_cache(maxsize=512)
def _window_sumsquare(n_frames: int) -> np.ndarray:
    """librosa.filters.window_sumsquare(window="hann", n_frames=...): float32, frames added in order."""
    from scipy.signal import get_window

    win_sq = get_window("hann", N_FFT) ** 2  # librosa asks without fftbins: its default, True
    out = np.zeros(N_FFT + HOP * (n_frames - 1), dtype=np.float32)
    for frame in range(n_frames):
        sample = frame * HOP
        out[sample : min(len(out), sample + N_FFT)] += win_sq[: max(0, min(N_FFT, len(out) - sample))]
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=512)
def _normaliser(n_frames: int):
    """The trimmed window sum-square of ``istft`` and where librosa divides by it (> float32 tiny)."""
    start = N_FFT // 2
    wss = _window_sumsquare(n_frames)[start : start + HOP * (n_frames - 1)]
    nonzero = wss > np.finfo(np.float32).tiny
    nonzero.setflags(write=False)
    return wss, nonzero


def stft(samples: np.ndarray) -> np.ndarray:
    """``librosa.stft(samples)`` for a 1-D float32 array: complex64, shape (1025, 1 + len // 512).

    The result is laid out frame-major (its transpose is C-contiguous); only
    the values, not the memory order, match librosa's Fortran-ordered array.
    """
    # np.pad and sliding_window_view cost more than the transform at these sizes
    padded = np.zeros(len(samples) + N_FFT, dtype=samples.dtype)
    padded[N_FFT // 2 : N_FFT // 2 + len(samples)] = samples
    n_frames = 1 + len(samples) // HOP
    step = padded.strides[0]
    frames = as_strided(padded, shape=(n_frames, N_FFT), strides=(HOP * step, step), writeable=False)
    spectrum = np.fft.rfft(_window() * frames, axis=-1).astype(np.complex64)
    return spectrum.T


def istft(spectrum: np.ndarray) -> np.ndarray:
    """``librosa.istft(spectrum)`` (no ``length``): float32 of ``512 * (frames - 1)`` samples."""
    n_frames = spectrum.shape[1]
    frames = np.fft.irfft(spectrum.T, n=N_FFT, axis=-1)
    wss, nonzero = _normaliser(n_frames)
    return _overlap_add(frames, _window(), wss, nonzero)


def _overlap_add_numpy(frames, window, wss, nonzero):
    # Overlap-add in frame order, as librosa's loop does: sample block b receives
    # frame b-3's last quarter first and frame b's first quarter last. Adding one
    # quarter of every frame at a time, last quarter first, keeps that order per
    # sample (float64 add, float32 store) while leaving the loop to numpy.
    n_frames = frames.shape[0]
    frames = window * frames
    quarters = N_FFT // HOP
    blocks = np.zeros((n_frames + quarters - 1, HOP), dtype=np.float32)
    parts = frames.reshape(n_frames, quarters, HOP)
    for q in range(quarters - 1, -1, -1):
        blocks[q : q + n_frames] += parts[:, q, :]
    start = N_FFT // 2
    out = blocks.reshape(-1)[start : start + HOP * (n_frames - 1)].copy()
    # librosa: y[nonzero] /= wss[nonzero]; the same float32 divisions, without fancy indexing
    np.divide(out, wss, out=out, where=nonzero)
    return out


def _overlap_add_kernel(frames, window, wss, nonzero):
    # The numpy route's arithmetic element by element (float64 window product,
    # float64 add rounded to float32, float32 division), in one pass without
    # temporaries. numba contracts nothing into FMAs without fastmath, so the
    # bits are the same; tests/test_dsp.py checks that against librosa.
    n_frames = frames.shape[0]
    start = N_FFT // 2
    n_out = HOP * (n_frames - 1)
    out = np.zeros(n_out, dtype=np.float32)
    for k in range(n_frames):
        base = k * HOP - start
        lo = max(0, -base)
        hi = min(N_FFT, n_out - base)
        for j in range(lo, hi):
            out[base + j] = np.float32(np.float64(out[base + j]) + window[j] * np.float64(frames[k, j]))
    for i in range(n_out):
        if nonzero[i]:
            out[i] = out[i] / wss[i]
    return out


try:
    import numba

    _overlap_add = numba.njit(cache=True, nogil=True)(_overlap_add_kernel)
except ImportError:  # pragma: no cover - numba comes with librosa
    _overlap_add = _overlap_add_numpy


def resample(samples: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """``librosa.resample(samples, orig_sr=..., target_sr=...)`` with its default soxr_hq, 1-D."""
    if orig_sr == target_sr:
        return samples
    import soxr

    n_samples = int(np.ceil(samples.shape[-1] * (float(target_sr) / orig_sr)))
    out = soxr.resample(samples, orig_sr, target_sr, quality="soxr_hq")
    if len(out) > n_samples:
        out = out[:n_samples]
    elif len(out) < n_samples:
        out = np.pad(out, (0, n_samples - len(out)))
    return np.asarray(out, dtype=samples.dtype)
