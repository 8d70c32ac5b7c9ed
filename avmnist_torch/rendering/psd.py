"""mlab's PSD, Axes.specgram's dB, Normalize and gray_r in numpy, matplotlib's operations in its order."""

from __future__ import annotations

import numpy as np

from .settings import HOP, N_ROWS, NFFT

WINDOW = np.hanning(NFFT)  # mlab's window_hanning: float64
WINDOW.setflags(write=False)
WINDOW_SQ_SUM = (WINDOW**2).sum()
#: gray_r's red channel, the 256-entry LUT matplotlib builds: 1 (white) for the quietest cell, 0 for the loudest.
GRAY_R = np.linspace(1.0, 0.0, 256)
GRAY_R.setflags(write=False)


def padded(x: np.ndarray) -> np.ndarray:
    """``x`` right-padded with zeros to NFFT samples when shorter, as mlab pads."""
    if len(x) >= NFFT:
        return x
    y = np.zeros(NFFT, x.dtype)
    y[: len(x)] = x
    return y


def frames(x: np.ndarray) -> np.ndarray:
    """mlab's frames as columns: NFFT samples of the :func:`padded` clip every HOP."""
    return np.lib.stride_tricks.sliding_window_view(padded(x), NFFT, axis=0)[::HOP].T


def decibels(power: np.ndarray, out=None) -> np.ndarray:
    """``Axes.specgram``'s ``10 * log10(spec)``, -inf where the power is 0: numpy's log10, on both routes."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(power, out=out)
    return np.multiply(out, 10.0, out=out)


def psd_db(frames_: np.ndarray, sample_rate) -> np.ndarray:
    """``mlab._spectral_helper`` (psd) and ``Axes.specgram``'s dB, flipped: (129, frames), Nyquist first.

    Non-finite samples propagate as in matplotlib, without its RuntimeWarnings.
    """
    result = frames_ * WINDOW.reshape((-1, 1))  # float32 frames times the float64 window -> float64
    result = np.fft.fft(result, n=NFFT, axis=0)[:N_ROWS, :]
    with np.errstate(over="ignore", invalid="ignore"):
        result = np.conj(result) * result
        result[1:-1] *= 2.0
        result /= sample_rate
        result /= WINDOW_SQ_SUM
    return np.flipud(decibels(result.real))


def colour(z: np.ndarray):
    """Normalize + gray_r: the red channel and alpha of every cell; masked (non-finite) cells get (0, 0)."""
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
    red[finite] = GRAY_R[x.astype(np.int64)]
    return red, alpha


def to_u8(v: np.ndarray) -> np.ndarray:
    """``to_rgba(bytes=True)`` on floats: multiply by 255 and truncate."""
    return (v * 255).astype(np.uint8)
