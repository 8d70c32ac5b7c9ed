"""The steps of a scheme: the notebook's lines as pure functions on arrays, byte for byte (docs/items.md), and
the frozen dataclasses that hold their parameters, check them when made, and draw and record from the item's stream.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import dsp
from ..common import ParameterError, positions_by_key
from .streams import ItemRandom

MIN_LENGTH = 2048

#: The SNRs ``AddNoise`` accepts, in dB: beyond them float32 loses the weaker signal, and far beyond
#: the gain overflows into an infinite or NaN waveform (docs/items.md, "The five schemes").
SNR_LIMIT_DB = 200.0

#: The most masks a ``TimeMasks`` or ``FrequencyMasks`` step draws (each is drawn and recorded per item).
MAX_MASKS = 1_000

#: The largest ``Distortion`` factor: past float32's range the silent samples would become NaN.
MAX_DISTORTION = 1e6


def pad_to_min_length(samples: np.ndarray, min_length: int = MIN_LENGTH) -> np.ndarray:
    """Right-pad with zeros to at least ``min_length`` samples (the notebook's first step)."""
    if len(samples) < min_length:
        # np.pad(samples, (0, n), mode="constant"), without its 40 us of argument handling
        padded = np.zeros(min_length, dtype=samples.dtype)
        padded[: len(samples)] = samples
        return padded
    return samples


def fit_noise_length(noise: np.ndarray, length: int) -> np.ndarray:
    """The first ``length`` samples of ``noise``, tiled end to end when shorter (a project rule); empty: ValueError."""
    if len(noise) >= length:
        return noise[:length]
    if len(noise) == 0:
        raise ValueError("the noise clip is empty")
    reps = -(-length // len(noise))
    return np.tile(noise, reps)[:length]


def _rms(x: np.ndarray):
    """``np.sqrt(np.mean(x ** 2))``, the same bits without np.mean's Python overhead."""
    total = np.add.reduce(x * x)
    return np.sqrt(total.dtype.type(total / x.size))


def add_noise(samples: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix ``noise`` (at the samples' rate) into ``samples`` at ``snr_db`` (RMS ratio), as the notebook's ``add_noise``.

    The noise is fitted to the samples' length with :func:`fit_noise_length`; a silent noise adds nothing.
    """
    samples_noise = fit_noise_length(noise, len(samples))
    a_signal = _rms(samples)
    a_noise = _rms(samples_noise)
    if a_noise != 0:
        a_noise_target = a_signal / (10 ** (snr_db / 20))
        return samples + samples_noise * (a_noise_target / a_noise)
    return samples


def draw_time_masks(n_samples: int, ratio: float, count: int, rng: "ItemRandom") -> List[Tuple[int, int]]:
    """Draw ``count`` (start, length) spans of ``int(n_samples * ratio)`` samples (or STFT bins); starts uniform."""
    length = int(n_samples * ratio)
    return [(rng.integers(0, n_samples - length), length) for _ in range(count)]


draw_frequency_masks = draw_time_masks


def apply_time_masks(samples: np.ndarray, spans: Sequence[Tuple[int, int]]) -> np.ndarray:
    """Zero each (start, length) span; spans may overlap. Returns a new array."""
    out = samples.copy()
    for start, length in spans:
        out[start : start + length] = 0
    return out


def apply_frequency_masks(samples: np.ndarray, ranges: Sequence[Tuple[int, int]]) -> np.ndarray:
    """Zero STFT bin ranges and resynthesise: ``librosa.stft`` -> zero rows -> ``librosa.istft`` (no ``length``)."""
    spectrum = dsp.stft(samples)
    for start, size in ranges:
        spectrum[start : start + size, :] = 0
    return dsp.istft(spectrum)


def apply_frequency_masks_many(clips: Sequence[np.ndarray],
                               ranges: Sequence[Sequence[Tuple[int, int]]]) -> List[np.ndarray]:
    """:func:`apply_frequency_masks` of each clip with its own ranges, the transforms over all clips at once."""
    spectra, offsets = dsp.stft_many(clips)
    for k, clip_ranges in enumerate(ranges):
        frames = spectra[offsets[k] : offsets[k + 1]]
        for start, size in clip_ranges:
            frames[:, start : start + size] = 0
    return dsp.istft_many(spectra, offsets)


@functools.lru_cache(maxsize=64)
def _band_response(sample_rate, bands: Tuple[Tuple[float, float], ...], n_freqs: int) -> np.ndarray:
    """1 for the bins whose frequency ``linspace(0, sr / 2, n_freqs)[f]`` lies in a band (inclusive), else 0:
    complex64, where the notebook's is float64, the same bits (products by 0 and 1 are exact, signed zeros too)."""
    response = np.zeros(n_freqs)
    freq_bins = np.linspace(0, sample_rate / 2, n_freqs)
    for low, high in bands:
        response[(freq_bins >= low) & (freq_bins <= high)] = 1
    response = response.astype(np.complex64)
    response.setflags(write=False)
    return response


def keep_bands(samples: np.ndarray, sample_rate: int, bands: Sequence[Tuple[float, float]]) -> np.ndarray:
    """Keep only STFT bins whose frequency lies inside a band (inclusive); zero the rest; resynthesise."""
    spectrum = dsp.stft(samples)
    response = _band_response(sample_rate, tuple(map(tuple, bands)), spectrum.shape[0])
    spectrum *= response[:, np.newaxis]
    return dsp.istft(spectrum)


def keep_bands_many(clips: Sequence[np.ndarray], sample_rates: Sequence[int],
                    bands: Sequence[Tuple[float, float]]) -> List[np.ndarray]:
    """:func:`keep_bands` of each clip, the transforms over all clips at once (the same bits per clip)."""
    spectra, offsets = dsp.stft_many(clips)
    bands = tuple(map(tuple, bands))
    rates = set(sample_rates)
    if len(rates) == 1:
        spectra *= _band_response(next(iter(rates)), bands, spectra.shape[1])
    else:
        for k, rate in enumerate(sample_rates):
            spectra[offsets[k] : offsets[k + 1]] *= _band_response(rate, bands, spectra.shape[1])
    return dsp.istft_many(spectra, offsets)


def _low_rate(sample_rate: int, factor: int) -> int:
    if not sample_rate > 0:
        raise ParameterError(f"DownUpResample(factor={factor!r}): the clip's sample rate is {sample_rate!r}, not a "
                             "positive number of Hz")
    low_rate = sample_rate // factor
    if low_rate <= 0:
        raise ParameterError(f"DownUpResample(factor={factor!r}): a {sample_rate} Hz clip divided by {factor} "
                             f"leaves no sample rate; use a factor of at most {sample_rate}")
    return low_rate


def down_up_resample(samples: np.ndarray, sample_rate: int, factor: int) -> np.ndarray:
    """Resample to ``sample_rate // factor`` and back with ``librosa.resample`` (soxr_hq).

    A ParameterError if the rate is not positive or ``sample_rate // factor`` is 0.
    """
    low_rate = _low_rate(sample_rate, factor)
    return dsp.resample(dsp.resample(samples, sample_rate, low_rate), low_rate, sample_rate)


def down_up_resample_many(clips: Sequence[np.ndarray], sample_rates: Sequence[int], factor: int) -> List[np.ndarray]:
    """:func:`down_up_resample` of each clip, with fewer soxr calls (see :func:`dsp.resample_many`)."""
    out: List[np.ndarray] = [None] * len(clips)  # type: ignore[list-item]
    for rate, members in positions_by_key(sample_rates).items():
        low_rate = _low_rate(rate, factor)
        down = dsp.resample_many([clips[k] for k in members], rate, low_rate)
        for k, y in zip(members, dsp.resample_many(down, low_rate, rate)):
            out[k] = y
    return out


def distort(samples: np.ndarray, factor: float) -> np.ndarray:
    """``tanh(factor * x / (max|x| + 1e-6))``: peak-normalise, then soft-clip."""
    normalised = samples / (np.max(np.abs(samples)) + 1e-6)
    return np.tanh(normalised * factor)


@dataclass
class ItemContext:
    """What a step may use besides the waveform: the rate, the item's stream and noise, and the draws so far."""

    sample_rate: int
    rng: "ItemRandom"
    noise: Optional[Callable[[], np.ndarray]] = None
    draws: List[dict] = field(default_factory=list)

    def noise_for(self, length: int) -> np.ndarray:
        """The noise for ``length`` samples: ``noise.window(length, draws)`` if it has one, else ``noise()``."""
        window = getattr(self.noise, "window", None)
        if window is None:
            return self.noise()
        return window(length, self.draws)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_number(step, name: str, value, *, low=None, high=None, low_open=False, what: str = "") -> None:
    """A finite real ``value`` in ``[low, high]`` (``(low, high]`` with ``low_open``), else a ParameterError."""
    ok = _is_real(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        raise ParameterError(f"{type(step).__name__}({name}={value!r}): {name} must be {what}")


@dataclass(frozen=True)
class AddNoise:
    """Mix the item's ESC-50 noise in at ``snr_db`` dB SNR.

    ``snr_db`` is a number, or a ``(low, high)`` pair from which each item draws its SNR uniformly
    (recorded as ``{"step": "snr", "snr_db": value}``).
    """

    snr_db: Union[float, Tuple[float, float]]
    uses_noise = True

    def __post_init__(self) -> None:
        if isinstance(self.snr_db, (tuple, list)):
            pair = tuple(self.snr_db)
            in_limits = all(_is_real(v) and math.isfinite(v) and abs(v) <= SNR_LIMIT_DB for v in pair)
            if len(pair) != 2 or not in_limits or pair[0] > pair[1]:
                raise ParameterError(f"AddNoise(snr_db={self.snr_db!r}): a range of SNRs must be a (low, high) "
                                     f"pair of finite numbers of decibels from {-SNR_LIMIT_DB:g} to "
                                     f"{SNR_LIMIT_DB:g}, with low <= high")
            # floats in a tuple, so a scheme made from a list is hashable and compares equal
            object.__setattr__(self, "snr_db", (float(pair[0]), float(pair[1])))
            return
        _check_number(self, "snr_db", self.snr_db, low=-SNR_LIMIT_DB, high=SNR_LIMIT_DB,
                      what=f"a finite number of decibels from {-SNR_LIMIT_DB:g} to {SNR_LIMIT_DB:g} (the notebook "
                           "uses 0, 3 and 5), or a (low, high) pair of them")

    def draw_snr(self, ctx: ItemContext) -> float:
        """The SNR of this item: ``snr_db`` itself, or a uniform draw from its range (recorded)."""
        if not isinstance(self.snr_db, tuple):
            return self.snr_db
        low, high = self.snr_db
        value = ctx.rng.uniform(low, high)
        ctx.draws.append({"step": "snr", "snr_db": value})
        return value

    def __call__(self, samples: np.ndarray, ctx: ItemContext) -> np.ndarray:
        if ctx.noise is None:
            return samples
        snr_db = self.draw_snr(ctx)
        return add_noise(samples, ctx.noise_for(len(samples)), snr_db)


@dataclass(frozen=True)
class _Masks:
    """The parameters of ``TimeMasks`` and ``FrequencyMasks``: ``count`` masks of ``ratio`` of ``_fraction_of``."""

    ratio: float
    count: int = 1

    def __post_init__(self) -> None:
        _check_number(self, "ratio", self.ratio, low=0, high=1, what=f"a fraction of {self._fraction_of}, 0 to 1")
        count = self.count
        if not isinstance(count, numbers.Integral) or isinstance(count, bool) or not 0 <= count <= MAX_MASKS:
            raise ParameterError(f"{type(self).__name__}(count={count!r}): count must be a whole number "
                                 f"from 0 to {MAX_MASKS:,}")


@dataclass(frozen=True)
class TimeMasks(_Masks):
    """Zero ``count`` spans of ``ratio`` of the clip's length, at uniform random starts."""

    _fraction_of = "the clip's length"

    def __call__(self, samples: np.ndarray, ctx: ItemContext) -> np.ndarray:
        spans = draw_time_masks(len(samples), self.ratio, self.count, ctx.rng)
        ctx.draws.extend({"step": "time_mask", "start": s, "length": n} for s, n in spans)
        return apply_time_masks(samples, spans)


@dataclass(frozen=True)
class FrequencyMasks(_Masks):
    """Zero ``count`` ranges of ``ratio`` of the 1,025 STFT bins, at uniform random starts."""

    _fraction_of = "the 1,025 STFT bins"

    def _draw(self, ctx: ItemContext) -> List[Tuple[int, int]]:
        ranges = draw_frequency_masks(dsp.N_FFT // 2 + 1, self.ratio, self.count, ctx.rng)
        ctx.draws.extend({"step": "frequency_mask", "start": s, "length": n} for s, n in ranges)
        return ranges

    def __call__(self, samples: np.ndarray, ctx: ItemContext) -> np.ndarray:
        return apply_frequency_masks(samples, self._draw(ctx))

    def apply_batch(self, samples: Sequence[np.ndarray], contexts: Sequence[ItemContext]) -> List[np.ndarray]:
        """``[self(x, ctx) for ...]``, the same bytes and draws, with the transforms over the whole batch."""
        return apply_frequency_masks_many(samples, [self._draw(ctx) for ctx in contexts])


@dataclass(frozen=True)
class BandKeep:
    """Keep only the given frequency bands (Hz, inclusive)."""

    bands: Tuple[Tuple[float, float], ...]
    recording_only = True

    def __post_init__(self) -> None:
        try:
            bands = tuple(tuple(band) for band in self.bands)
        except TypeError:
            bands = None
        if not bands:
            raise ParameterError(f"BandKeep(bands={self.bands!r}): bands must be a non-empty sequence of "
                                 "(low, high) pairs in Hz")
        for band in bands:
            if len(band) != 2 or not all(_is_real(f) and math.isfinite(f) for f in band) or not 0 <= band[0] <= band[1]:
                raise ParameterError(f"BandKeep(bands={self.bands!r}): band {band!r} must be a (low, high) pair "
                                     "of finite frequencies in Hz with 0 <= low <= high")
        # tuples, so that a scheme made from lists is still hashable and compares equal
        object.__setattr__(self, "bands", bands)

    def __call__(self, samples: np.ndarray, ctx: ItemContext) -> np.ndarray:
        return keep_bands(samples, ctx.sample_rate, self.bands)

    def apply_batch(self, samples: Sequence[np.ndarray], contexts: Sequence[ItemContext]) -> List[np.ndarray]:
        """``[self(x, ctx) for ...]``, the same bytes, with the transforms over the whole batch."""
        return keep_bands_many(samples, [ctx.sample_rate for ctx in contexts], self.bands)


@dataclass(frozen=True)
class DownUpResample:
    """Resample down by ``factor`` and back up (soxr_hq: in effect a low-pass at rate / (2 * factor))."""

    factor: int
    recording_only = True

    def __post_init__(self) -> None:
        if not isinstance(self.factor, numbers.Integral) or isinstance(self.factor, bool) or self.factor < 1:
            raise ParameterError(f"DownUpResample(factor={self.factor!r}): factor must be a whole number, 1 or more "
                                 "(the low rate is the clip's rate // factor)")

    def __call__(self, samples: np.ndarray, ctx: ItemContext) -> np.ndarray:
        return down_up_resample(samples, ctx.sample_rate, self.factor)

    def apply_batch(self, samples: Sequence[np.ndarray], contexts: Sequence[ItemContext]) -> List[np.ndarray]:
        """``[self(x, ctx) for ...]``, the same bytes, with clips of similar length sharing soxr calls."""
        return down_up_resample_many(samples, [ctx.sample_rate for ctx in contexts], self.factor)


@dataclass(frozen=True)
class Distortion:
    """Peak-normalise, then ``tanh(factor * x)``."""

    factor: float
    recording_only = True

    def __post_init__(self) -> None:
        _check_number(self, "factor", self.factor, low=0, low_open=True, high=MAX_DISTORTION,
                      what=f"a finite number above 0 and at most {MAX_DISTORTION:g} (the notebook uses 2.0)")

    def __call__(self, samples: np.ndarray, ctx: ItemContext) -> np.ndarray:
        return distort(samples, self.factor)


Step = Union[AddNoise, TimeMasks, FrequencyMasks, BandKeep, DownUpResample, Distortion]
