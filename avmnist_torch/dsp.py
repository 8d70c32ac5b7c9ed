"""librosa's ``stft``, ``istft`` and ``resample`` at its defaults, bit for bit, without its argument handling
(ten times the transforms on clips this short); the ``*_many`` forms share FFT and soxr calls between clips."""

from __future__ import annotations

import functools
import threading
from typing import List, Sequence, Tuple

import numpy as np
import soxr

from .common import positions_by_key, probe_once
from .jit import njit

N_FFT = 2048
HOP = 512


def periodic_hann(n: int) -> np.ndarray:
    """``scipy.signal.get_window("hann", n, fftbins=True)`` bit for bit, without importing scipy.signal (slow)."""
    if n <= 1:
        return np.ones(n, dtype=np.float64)
    fac = np.linspace(-np.pi, np.pi, n + 1, dtype=np.float64)
    w = np.zeros(n + 1, dtype=np.float64)
    for k, a in enumerate((0.5, 0.5)):
        w += np.float64(a) * np.cos(k * fac)
    return w[:-1]


@functools.lru_cache(maxsize=1)
def _window() -> np.ndarray:
    window = periodic_hann(N_FFT)
    window.setflags(write=False)
    return window


@functools.lru_cache(maxsize=512)
def _normaliser(n_frames: int):
    """``istft``'s trimmed window sum-square (float32, frames added in order) and where librosa divides by it."""
    win_sq = _window() ** 2  # librosa asks get_window without fftbins: its default, True (periodic)
    out = np.zeros(N_FFT + HOP * (n_frames - 1), dtype=np.float32)
    for frame in range(n_frames):
        sample = frame * HOP
        out[sample : min(len(out), sample + N_FFT)] += win_sq[: max(0, min(N_FFT, len(out) - sample))]
    out.setflags(write=False)
    start = N_FFT // 2
    wss = out[start : start + HOP * (n_frames - 1)]
    nonzero = wss > np.finfo(np.float32).tiny
    nonzero.setflags(write=False)
    return wss, nonzero


#: STFT frames per FFT call in the ``*_many`` forms: 64 x 2048 float64 is 1 MiB, so input and output stay in L2.
STFT_CHUNK_FRAMES = 64


def frame_count(n_samples: int) -> int:
    """Frames of ``stft`` for ``n_samples`` samples (centred): ``1 + n_samples // 512``."""
    return 1 + n_samples // HOP


def _window_frames_kernel(samples, window, out, row):
    # librosa.stft's centring, framing and windowing, product by product; widening into a padded
    # float64 copy first leaves the product loop branch-free, which numba vectorises.
    n = samples.shape[0]
    padded = np.zeros(n + N_FFT, np.float64)
    for i in range(n):
        padded[N_FFT // 2 + i] = samples[i]
    for k in range(1 + n // HOP):
        target = out[row + k]
        source = padded[k * HOP : k * HOP + N_FFT]
        for j in range(N_FFT):
            target[j] = window[j] * source[j]


def _overlap_add_kernel(frames, window, wss, nonzero):
    # librosa.istft's overlap-add (in frame order, each sum rounded to float32 as librosa's buffer is)
    # and normalisation; without fastmath numba contracts nothing into FMAs, so the bits are librosa's.
    n_frames = frames.shape[0]
    start = N_FFT // 2
    n_out = HOP * (n_frames - 1)
    out = np.zeros(n_out, dtype=np.float32)
    for k in range(n_frames):
        base = k * HOP - start
        lo = max(0, -base)
        hi = min(N_FFT, n_out - base)
        # slices of equal length with unit stride: numba vectorises this loop (twice as fast as indexing)
        target = out[base + lo : base + hi]
        weights = window[lo:hi]
        frame = frames[k, lo:hi]
        for j in range(hi - lo):
            target[j] = np.float32(np.float64(target[j]) + weights[j] * np.float64(frame[j]))
    for i in range(n_out):
        if nonzero[i]:
            out[i] = out[i] / wss[i]
    return out


_overlap_add = njit(_overlap_add_kernel, nogil=True)
_window_frames = njit(_window_frames_kernel, nogil=True)

_TLS = threading.local()


def _scratch(kind: str, shape: Tuple[int, int], dtype) -> np.ndarray:
    """A per-thread buffer reused between calls (a fresh mmap's page faults cost more than the FFT)."""
    key = (kind, np.dtype(dtype).str)
    buffers = getattr(_TLS, "buffers", None)
    if buffers is None:
        buffers = _TLS.buffers = {}
    buf = buffers.get(key)
    if buf is None or buf.shape[0] < shape[0] or buf.shape[1] != shape[1]:
        buf = buffers[key] = np.empty((max(shape[0], STFT_CHUNK_FRAMES), shape[1]), dtype)
    return buf[: shape[0]]


def _chunks(counts: Sequence[int]):
    """Runs of clips of about ``STFT_CHUNK_FRAMES`` frames: (first clip, end clip, first frame, end frame)."""
    first, frame, start = 0, 0, 0
    for k, count in enumerate(counts):
        frame += count
        if frame - start >= STFT_CHUNK_FRAMES:
            yield first, k + 1, start, frame
            first, start = k + 1, frame
    if first < len(counts):
        yield first, len(counts), start, frame


def _real(spectrum: np.ndarray):
    """The dtype numpy's ``irfft`` returns for ``spectrum`` (float32 for complex64, float64 otherwise)."""
    return np.float32 if spectrum.dtype == np.complex64 else np.float64


def stft_many(clips: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """``librosa.stft`` of each 1-D float clip, the frames of all clips stacked.

    Returns ``(spectra, offsets)``: complex64 (total frames, 1025) and int64 (len(clips) + 1,); clip
    ``k``'s spectrum is ``spectra[offsets[k]:offsets[k + 1]].T``.
    """
    counts = [frame_count(len(x)) for x in clips]
    offsets = np.zeros(len(clips) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    spectra = np.empty((int(offsets[-1]), N_FFT // 2 + 1), dtype=np.complex64)
    window = _window()
    for first, end, lo, hi in _chunks(counts):
        windowed = _scratch("stft-in", (hi - lo, N_FFT), np.float64)
        for k in range(first, end):
            _window_frames(clips[k], window, windowed, int(offsets[k]) - lo)
        transformed = np.fft.rfft(windowed, axis=-1, out=_scratch("stft-out", (hi - lo, N_FFT // 2 + 1), np.complex128))
        spectra[lo:hi] = transformed  # rounds to complex64 as librosa's astype does
    return spectra, offsets


def istft_many(spectra: np.ndarray, offsets: np.ndarray) -> List[np.ndarray]:
    """``librosa.istft`` (no ``length``) of each clip's frames in ``spectra`` (as :func:`stft_many` lays them out)."""
    counts = np.diff(offsets).tolist()
    out: List[np.ndarray] = [None] * len(counts)  # type: ignore[list-item]
    window = _window()
    for first, end, lo, hi in _chunks(counts):
        frames = np.fft.irfft(spectra[lo:hi], n=N_FFT, axis=-1, out=_scratch("istft", (hi - lo, N_FFT), _real(spectra)))
        for k in range(first, end):
            a, b = int(offsets[k]) - lo, int(offsets[k + 1]) - lo
            wss, nonzero = _normaliser(b - a)
            out[k] = _overlap_add(frames[a:b], window, wss, nonzero)
    return out


def stft(samples: np.ndarray) -> np.ndarray:
    """``librosa.stft(samples)`` for a 1-D float32 array: complex64, shape (1025, 1 + len // 512), frame-major."""
    # stft_many for one clip, without its bookkeeping (a tenth of the cost at these sizes)
    count = frame_count(len(samples))
    windowed = _scratch("stft-in", (count, N_FFT), np.float64)
    _window_frames(samples, _window(), windowed, 0)
    transformed = np.fft.rfft(windowed, axis=-1, out=_scratch("stft-out", (count, N_FFT // 2 + 1), np.complex128))
    return transformed.astype(np.complex64).T


def istft(spectrum: np.ndarray) -> np.ndarray:
    """``librosa.istft(spectrum)`` (no ``length``): float32 of ``512 * (frames - 1)`` samples."""
    count = spectrum.shape[1]
    frames = np.fft.irfft(spectrum.T, n=N_FFT, axis=-1, out=_scratch("istft", (count, N_FFT), _real(spectrum)))
    wss, nonzero = _normaliser(count)
    return _overlap_add(frames, _window(), wss, nonzero)


def _librosa_length(n_samples: int, orig_sr, target_sr) -> int:
    # librosa.resample: int(np.ceil(n * float(target_sr) / orig_sr))
    return int(np.ceil(n_samples * (float(target_sr) / orig_sr)))


def _fit(out: np.ndarray, n_samples: int, dtype) -> np.ndarray:
    """librosa's fix_length of soxr's output: cut, or right-pad with zeros."""
    if len(out) > n_samples:
        out = out[:n_samples]
    elif len(out) < n_samples:
        out = np.pad(out, (0, n_samples - len(out)))
    return np.asarray(out, dtype=dtype)


def resample(samples: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """``librosa.resample(samples, orig_sr=..., target_sr=...)`` with its default soxr_hq, 1-D."""
    if orig_sr == target_sr:
        return samples
    out = soxr.resample(samples, orig_sr, target_sr, quality="soxr_hq")
    return _fit(out, _librosa_length(samples.shape[-1], orig_sr, target_sr), samples.dtype)


def _soxr_length(n_samples: int, orig_sr, target_sr) -> int:
    """How many samples ``soxr.resample`` returns for ``n_samples`` (checked by :func:`_channels_are_exact`)."""
    return int(n_samples * float(target_sr) / float(orig_sr) + 0.5)


_EXACT_CHANNELS: dict = {}  # (rates, dtype) -> bool, probed once per process (probe_once)
#: Longest over shortest clip in one soxr call: zero padding costs soxr work, so only near lengths share a call.
GROUP_SPREAD = 1.25
#: Most clips in one soxr call; measured: beyond ~16 channels the call gets slower per channel.
GROUP_SIZE = 16


def _resample_group(clips: Sequence[np.ndarray], orig_sr, target_sr) -> List[np.ndarray]:
    """One soxr call for all ``clips`` (same dtype), as channels zero-padded to the longest."""
    longest = max(len(x) for x in clips)
    channels = np.zeros((len(clips), longest), dtype=clips[0].dtype)
    for k, x in enumerate(clips):
        channels[k, : len(x)] = x
    # (samples, channels) with each channel contiguous: soxr's split-channel route, no interleaving copy
    resampled = soxr.resample(channels.T, orig_sr, target_sr, quality="soxr_hq")
    out = []
    for k, x in enumerate(clips):
        own = resampled[: _soxr_length(len(x), orig_sr, target_sr), k]
        out.append(_fit(np.ascontiguousarray(own), _librosa_length(len(x), orig_sr, target_sr), x.dtype))
    return out


def _channels_are_exact(orig_sr, target_sr, dtype) -> bool:
    """Whether one multi-channel soxr call gives each channel the bytes of its own call here (probed once)."""
    key = (float(orig_sr), float(target_sr), np.dtype(dtype).str)
    return probe_once(_EXACT_CHANNELS, key, lambda: _probe_channels(orig_sr, target_sr, dtype))


def _probe_channels(orig_sr, target_sr, dtype) -> bool:
    """Whether :func:`_resample_group` gives clips of awkward lengths the bytes of their own calls."""
    rng = np.random.default_rng(20240611)
    probes = [rng.standard_normal(n).astype(dtype) for n in (2048, 2049, 2050, 2561, 3001, 3333, 4097)]
    probes[3][:700] = 0
    probes[5] *= 1e-20
    try:
        alone = [resample(x, orig_sr, target_sr) for x in probes]
        together = _resample_group(probes, orig_sr, target_sr)
    except (ValueError, TypeError, RuntimeError):
        return False
    return all(a.dtype == b.dtype and a.tobytes() == b.tobytes() for a, b in zip(alone, together))


def resample_many(clips: Sequence[np.ndarray], orig_sr: int, target_sr: int) -> List[np.ndarray]:
    """:func:`resample` of each 1-D clip, the same bytes, with fewer soxr calls.

    Clips within ``GROUP_SPREAD`` of each other's length (at most ``GROUP_SIZE``) share a call as
    zero-padded channels, where :func:`_channels_are_exact` found that exact.
    """
    if orig_sr == target_sr:
        return list(clips)
    out: List[np.ndarray] = [None] * len(clips)  # type: ignore[list-item]
    for x in clips:
        if x.ndim != 1:
            raise ValueError(f"resample_many takes 1-D clips, got shape {x.shape}")
    for dtype, members in positions_by_key(x.dtype for x in clips).items():
        if (len(members) == 1 or dtype not in (np.float32, np.float64)
                or not _channels_are_exact(orig_sr, target_sr, dtype)):
            for k in members:
                out[k] = resample(clips[k], orig_sr, target_sr)
            continue
        members.sort(key=lambda k: len(clips[k]))
        i = 0
        while i < len(members):
            j = i + 1
            limit = len(clips[members[i]]) * GROUP_SPREAD
            while j < len(members) and j - i < GROUP_SIZE and len(clips[members[j]]) <= limit:
                j += 1
            group = members[i:j]
            if len(group) == 1:
                out[group[0]] = resample(clips[group[0]], orig_sr, target_sr)
            else:
                for k, y in zip(group, _resample_group([clips[k] for k in group], orig_sr, target_sr)):
                    out[k] = y
            i = j
    return out
