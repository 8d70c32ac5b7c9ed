"""The five degradation schemes of the notebook, as data and pure functions on arrays.

A scheme is an ordered tuple of steps; each step is a small frozen dataclass
holding its parameters (audiomentations-style), and does its work through the
pure functions below. Randomness is explicit: a step draws its mask positions
from the item's :class:`ItemRandom` stream and records them, so an item's
draws can be reported (``AVMNISTAudioDataset.describe``) and replayed.

The notebook's order of operations and float32 arithmetic are kept exactly:
every function here computes what the notebook's line does, with the same
numpy expression (``dsp`` stands in for librosa's stft/istft/resample with the
same arithmetic), so the waveforms are byte-identical.

Every step checks its parameters when it is made (``TimeMasks(ratio=1.5)``
raises :class:`~avmnist_torch.common.ParameterError` there, not later in a
DataLoader worker). :func:`apply_scheme_many` runs a scheme over a batch of
clips: the built-in steps that transform (frequency masks, band keep,
down-up resampling) then work on all clips at once with the same bytes per
clip as :func:`apply_scheme`.

Adding a scheme needs no change to the library::

    from avmnist_torch.schemes import Scheme, AddNoise, TimeMasks
    mine = Scheme("soft_burst", (AddNoise(snr_db=10), TimeMasks(ratio=0.05, count=3)))
    ds = AVMNISTAudioDataset(root, scheme=mine)
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import dsp
from .common import ParameterError, check_seed

MIN_LENGTH = 2048
SPLIT_IDS = {"train": 0, "test": 1}

__all__ = [
    "MIN_LENGTH",
    "AddNoise",
    "TimeMasks",
    "FrequencyMasks",
    "BandKeep",
    "DownUpResample",
    "Distortion",
    "Scheme",
    "SCHEMES",
    "SCHEME_NAMES",
    "get_scheme",
    "ItemRandom",
    "item_rng",
    "epoch_rng",
    "epoch_rngs",
    "STEPS_STREAM",
    "SOURCES_STREAM",
    "with_snr_range",
    "pad_to_min_length",
    "fit_noise_length",
    "add_noise",
    "draw_time_masks",
    "apply_time_masks",
    "draw_frequency_masks",
    "apply_frequency_masks",
    "apply_frequency_masks_many",
    "keep_bands",
    "keep_bands_many",
    "down_up_resample",
    "down_up_resample_many",
    "distort",
    "apply_scheme",
    "apply_scheme_many",
    "recording_prefix",
    "prepare_recording",
]


# ----------------------------------------------------------------------------
# pure functions


def pad_to_min_length(samples: np.ndarray, min_length: int = MIN_LENGTH) -> np.ndarray:
    """Right-pad with zeros to at least ``min_length`` samples (the notebook's first step)."""
    if len(samples) < min_length:
        # np.pad(samples, (0, n), mode="constant"), without its 40 us of argument handling
        padded = np.zeros(min_length, dtype=samples.dtype)
        padded[: len(samples)] = samples
        return padded
    return samples


def fit_noise_length(noise: np.ndarray, length: int) -> np.ndarray:
    """The first ``length`` samples of ``noise``, tiling it when it is shorter.

    The notebook keeps ``noise[:len(x)]`` and crashes when the noise is shorter
    than the recording (never with real ESC-50: 5 s against at most 2.3 s).
    Project rule: a short noise is repeated end to end until it is long enough,
    so its level and character stay those of the clip.
    """
    if len(noise) >= length:
        return noise[:length]
    if len(noise) == 0:
        raise ValueError("the noise clip is empty")
    reps = -(-length // len(noise))
    return np.tile(noise, reps)[:length]


def _rms(x: np.ndarray):
    """``np.sqrt(np.mean(x ** 2))`` with np.mean's own steps (pairwise sum in x's dtype, then
    ``dtype(sum / n)``) minus its Python overhead; the same bits."""
    total = np.add.reduce(x * x)
    return np.sqrt(total.dtype.type(total / x.size))


def add_noise(samples: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix ``noise`` into ``samples`` at ``snr_db`` (RMS ratio), as the notebook's ``add_noise``.

    ``noise`` must already be at the samples' rate; it is cut (or tiled, see
    :func:`fit_noise_length`) to the samples' length. A silent noise adds nothing.
    """
    samples_noise = fit_noise_length(noise, len(samples))
    a_signal = _rms(samples)
    a_noise = _rms(samples_noise)
    if a_noise != 0:
        a_noise_target = a_signal / (10 ** (snr_db / 20))
        return samples + samples_noise * (a_noise_target / a_noise)
    return samples


def draw_time_masks(n_samples: int, ratio: float, count: int, rng: "ItemRandom") -> List[Tuple[int, int]]:
    """Draw ``count`` (start, length) spans of ``int(n_samples * ratio)`` samples; starts uniform, inclusive."""
    length = int(n_samples * ratio)
    return [(rng.integers(0, n_samples - length), length) for _ in range(count)]


def apply_time_masks(samples: np.ndarray, spans: Sequence[Tuple[int, int]]) -> np.ndarray:
    """Zero each (start, length) span; spans may overlap. Returns a new array."""
    out = samples.copy()
    for start, length in spans:
        out[start : start + length] = 0
    return out


def draw_frequency_masks(n_bins: int, ratio: float, count: int, rng: "ItemRandom") -> List[Tuple[int, int]]:
    """Draw ``count`` (start, size) bin ranges of ``int(n_bins * ratio)`` bins; starts uniform, inclusive."""
    size = int(n_bins * ratio)
    return [(rng.integers(0, n_bins - size), size) for _ in range(count)]


def apply_frequency_masks(samples: np.ndarray, ranges: Sequence[Tuple[int, int]]) -> np.ndarray:
    """Zero STFT bin ranges and resynthesise: ``librosa.stft`` -> zero rows -> ``librosa.istft`` (no ``length``)."""
    spectrum = dsp.stft(samples)
    for start, size in ranges:
        spectrum[start : start + size, :] = 0
    return dsp.istft(spectrum)


def apply_frequency_masks_many(
    clips: Sequence[np.ndarray], ranges: Sequence[Sequence[Tuple[int, int]]]
) -> List[np.ndarray]:
    """:func:`apply_frequency_masks` of each clip with its own ranges, the transforms over all clips at once."""
    spectra, offsets = dsp.stft_many(clips)
    for k, clip_ranges in enumerate(ranges):
        frames = spectra[offsets[k] : offsets[k + 1]]
        for start, size in clip_ranges:
            frames[:, start : start + size] = 0
    return dsp.istft_many(spectra, offsets)


@functools.lru_cache(maxsize=64)
def _band_response(sample_rate, bands: Tuple[Tuple[float, float], ...], n_freqs: int) -> np.ndarray:
    """1 for the bins whose frequency ``linspace(0, sr / 2, n_freqs)[f]`` lies in a band (inclusive), else 0.

    complex64, where the notebook multiplies its complex64 spectrum by a float64 array (numpy
    widens both to complex128 and rounds back). With factors of 0 and 1 every product in the
    complex multiply is exact (``x * 1 = x``, ``x * 0`` a signed zero), and so is each sum of
    a value and a signed zero, so complex64 arithmetic gives the same bits, signed zeros
    included, without widening a batch of spectra twice (four times faster).
    """
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


def keep_bands_many(
    clips: Sequence[np.ndarray], sample_rates: Sequence[int], bands: Sequence[Tuple[float, float]]
) -> List[np.ndarray]:
    """:func:`keep_bands` of each clip, the transforms over all clips at once.

    The response holds only 0 and 1, so every product in numpy's complex
    multiply is exact and each bin gets the same bits however the batch is laid
    out in memory (and in complex64, see :func:`_band_response`).
    """
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
        raise ParameterError(
            f"DownUpResample(factor={factor!r}): a {sample_rate} Hz clip divided by {factor} leaves no sample rate; "
            f"use a factor of at most {sample_rate}"
        )
    return low_rate


def down_up_resample(samples: np.ndarray, sample_rate: int, factor: int) -> np.ndarray:
    """Resample to ``sample_rate // factor`` and back with ``librosa.resample`` (soxr_hq)."""
    low_rate = _low_rate(sample_rate, factor)
    return dsp.resample(dsp.resample(samples, sample_rate, low_rate), low_rate, sample_rate)


def down_up_resample_many(clips: Sequence[np.ndarray], sample_rates: Sequence[int], factor: int) -> List[np.ndarray]:
    """:func:`down_up_resample` of each clip, with fewer soxr calls (see :func:`dsp.resample_many`)."""
    out: List[np.ndarray] = [None] * len(clips)  # type: ignore[list-item]
    by_rate: Dict[int, List[int]] = {}
    for k, rate in enumerate(sample_rates):
        by_rate.setdefault(rate, []).append(k)
    for rate, members in by_rate.items():
        low_rate = _low_rate(rate, factor)
        down = dsp.resample_many([clips[k] for k in members], rate, low_rate)
        for k, y in zip(members, dsp.resample_many(down, low_rate, rate)):
            out[k] = y
    return out


def distort(samples: np.ndarray, factor: float) -> np.ndarray:
    """``tanh(factor * x / (max|x| + 1e-6))``: peak-normalise, then soft-clip."""
    normalised = samples / (np.max(np.abs(samples)) + 1e-6)
    return np.tanh(normalised * factor)


# ----------------------------------------------------------------------------
# steps: parameters as data


@dataclass
class ItemContext:
    """What a step may use besides the waveform: the rate, the item's generator and noise."""

    sample_rate: int
    rng: "ItemRandom"
    noise: Optional[Callable[[], np.ndarray]] = None
    draws: List[dict] = field(default_factory=list)

    def noise_for(self, length: int) -> np.ndarray:
        """The noise to mix into ``length`` samples.

        ``noise()`` itself, unless the noise has a ``window(length, draws)``
        method (per-epoch draws: a random window of a whole clip, recorded in
        ``draws``); :func:`add_noise` fits either to ``length``.
        """
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


def _check_count(step, name: str, value) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise ParameterError(
            f"{type(step).__name__}({name}={value!r}): {name} must be a whole number, 0 or more"
        )


@dataclass(frozen=True)
class AddNoise:
    """Mix the item's ESC-50 noise in at ``snr_db`` dB SNR.

    ``snr_db`` is a number, or a ``(low, high)`` pair: each item then draws
    its SNR uniformly from ``[low, high)`` (the first draw of its stream at
    this step, recorded as ``{"step": "snr", "snr_db": value}``).
    """

    snr_db: Union[float, Tuple[float, float]]
    uses_noise = True
    recording_only = False

    def __post_init__(self) -> None:
        if isinstance(self.snr_db, (tuple, list)):
            pair = tuple(self.snr_db)
            if len(pair) != 2 or not all(_is_real(v) and math.isfinite(v) for v in pair) or pair[0] > pair[1]:
                raise ParameterError(
                    f"AddNoise(snr_db={self.snr_db!r}): a range of SNRs must be a (low, high) pair of finite "
                    "numbers of decibels with low <= high"
                )
            # floats in a tuple, so a scheme made from a list is hashable and compares equal
            object.__setattr__(self, "snr_db", (float(pair[0]), float(pair[1])))
            return
        _check_number(self, "snr_db", self.snr_db,
                      what="a finite number of decibels (the notebook uses 0, 3 and 5), or a (low, high) pair")

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
class TimeMasks:
    """Zero ``count`` spans of ``ratio`` of the clip's length, at uniform random starts."""

    ratio: float
    count: int = 1
    uses_noise = False
    recording_only = False

    def __post_init__(self) -> None:
        _check_number(self, "ratio", self.ratio, low=0, high=1, what="a fraction of the clip's length, 0 to 1")
        _check_count(self, "count", self.count)

    def __call__(self, samples: np.ndarray, ctx: ItemContext) -> np.ndarray:
        spans = draw_time_masks(len(samples), self.ratio, self.count, ctx.rng)
        ctx.draws.extend({"step": "time_mask", "start": s, "length": n} for s, n in spans)
        return apply_time_masks(samples, spans)


@dataclass(frozen=True)
class FrequencyMasks:
    """Zero ``count`` ranges of ``ratio`` of the 1,025 STFT bins, at uniform random starts."""

    ratio: float
    count: int = 1
    uses_noise = False
    recording_only = False

    def __post_init__(self) -> None:
        _check_number(self, "ratio", self.ratio, low=0, high=1, what="a fraction of the 1,025 STFT bins, 0 to 1")
        _check_count(self, "count", self.count)

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
    uses_noise = False
    recording_only = True

    def __post_init__(self) -> None:
        try:
            bands = tuple(tuple(band) for band in self.bands)
        except TypeError:
            bands = None
        if not bands:
            raise ParameterError(
                f"BandKeep(bands={self.bands!r}): bands must be a non-empty sequence of (low, high) pairs in Hz"
            )
        for band in bands:
            if len(band) != 2 or not all(_is_real(f) and math.isfinite(f) for f in band) or not 0 <= band[0] <= band[1]:
                raise ParameterError(
                    f"BandKeep(bands={self.bands!r}): band {band!r} must be a (low, high) pair of finite "
                    "frequencies in Hz with 0 <= low <= high"
                )
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
    uses_noise = False
    recording_only = True

    def __post_init__(self) -> None:
        if not isinstance(self.factor, numbers.Integral) or isinstance(self.factor, bool) or self.factor < 1:
            raise ParameterError(
                f"DownUpResample(factor={self.factor!r}): factor must be a whole number, 1 or more "
                "(the low rate is the clip's rate // factor)"
            )

    def __call__(self, samples: np.ndarray, ctx: ItemContext) -> np.ndarray:
        return down_up_resample(samples, ctx.sample_rate, self.factor)

    def apply_batch(self, samples: Sequence[np.ndarray], contexts: Sequence[ItemContext]) -> List[np.ndarray]:
        """``[self(x, ctx) for ...]``, the same bytes, with clips of similar length sharing soxr calls."""
        return down_up_resample_many(samples, [ctx.sample_rate for ctx in contexts], self.factor)


@dataclass(frozen=True)
class Distortion:
    """Peak-normalise, then ``tanh(factor * x)``."""

    factor: float
    uses_noise = False
    recording_only = True

    def __post_init__(self) -> None:
        _check_number(self, "factor", self.factor, low=0, low_open=True,
                      what="a finite number above 0 (the notebook uses 2.0)")

    def __call__(self, samples: np.ndarray, ctx: ItemContext) -> np.ndarray:
        return distort(samples, self.factor)


Step = Union[AddNoise, TimeMasks, FrequencyMasks, BandKeep, DownUpResample, Distortion]


@dataclass(frozen=True)
class Scheme:
    """A named, ordered sequence of steps.

    A step is any callable ``step(samples, ctx) -> samples`` (``ctx`` is an
    :class:`ItemContext`); the built-in ones are the dataclasses above.
    """

    name: str
    steps: Tuple[Step, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ParameterError(f"Scheme(name={self.name!r}): name must be a non-empty string")
        try:
            steps = tuple(self.steps)
        except TypeError:
            raise ParameterError(
                f"Scheme({self.name!r}): steps must be a sequence of steps, got {type(self.steps).__name__}"
            ) from None
        for k, step in enumerate(steps):
            if not callable(step):
                raise ParameterError(
                    f"Scheme({self.name!r}): step {k} ({step!r}) is not a step: a step is called as "
                    "step(samples, ctx) and returns the new samples"
                )
        object.__setattr__(self, "steps", steps)

    @property
    def uses_noise(self) -> bool:
        return any(getattr(step, "uses_noise", False) for step in self.steps)


#: The notebook's ``get_augmentation_config``, in its order of operations.
SCHEMES: Dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("extreme_noise", (AddNoise(snr_db=0), TimeMasks(ratio=0.1, count=2))),
        Scheme(
            "multi_band",
            (FrequencyMasks(ratio=0.2, count=3), BandKeep(bands=((50, 1000), (2000, 3500)))),
        ),
        Scheme("burst_noise", (AddNoise(snr_db=3), TimeMasks(ratio=0.15, count=4))),
        Scheme("aliased", (DownUpResample(factor=4), FrequencyMasks(ratio=0.3, count=1))),
        Scheme("distorted", (AddNoise(snr_db=5), Distortion(factor=2.0))),
        Scheme("clean", ()),
    )
}
SCHEME_NAMES = tuple(SCHEMES)


def get_scheme(scheme: Union[str, Scheme]) -> Scheme:
    """Look a scheme up by name; the notebook's upper-case names (``BURST_NOISE``) are accepted."""
    if isinstance(scheme, Scheme):
        return scheme
    if not isinstance(scheme, str):
        raise TypeError(f"scheme must be a name or a Scheme, got {type(scheme).__name__}")
    key = scheme.strip().lower()
    if key not in SCHEMES:
        raise ParameterError(f"unknown scheme {scheme!r}: choose one of {', '.join(SCHEME_NAMES)} or pass a Scheme")
    return SCHEMES[key]


_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _fold(state: int, parts) -> int:
    """The key's initial state: ``s = f(s ^ p)`` for each part (see docs/items.md, "Random draws")."""
    for part in parts:
        # _splitmix64(state ^ part), inlined: this runs for every key part of every item
        x = ((state ^ (part & _MASK64)) + 0x9E3779B97F4A7C15) & _MASK64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
        state = x ^ (x >> 31)
    return state


class ItemRandom:
    """The random stream of one item: SplitMix64 over a key of (seed, split, scheme, index).

    Plain Python integer arithmetic, so the draws are the same on every machine
    and cost about a microsecond each (numpy's SeedSequence costs 40 us an item).
    ``integers(low, high)`` is uniform over ``low..high`` inclusive, like the
    notebook's ``random.randint``; ``numpy()`` gives a numpy Generator derived
    from the same key, for custom steps that want one.
    """

    __slots__ = ("_key", "_state")

    def __init__(self, *key: int) -> None:
        self._key = tuple(int(k) for k in key)
        self._state = _fold(0, self._key)

    @classmethod
    def _made(cls, key: Tuple[int, ...], state: int) -> "ItemRandom":
        """A stream whose initial ``state`` is already ``_fold(0, key)`` (ints only; not checked)."""
        out = object.__new__(cls)
        out._key, out._state = key, state
        return out

    def extended(self, *parts: int) -> "ItemRandom":
        """A new stream keyed on this one's key followed by ``parts``, as ``ItemRandom(*key, *parts)``.

        Folds only ``parts`` into this stream's initial state, so call it before
        drawing from this stream.
        """
        out = ItemRandom.__new__(ItemRandom)
        out._key = self._key + tuple(int(p) for p in parts)
        out._state = _fold(self._state, out._key[len(self._key):])
        return out

    def next_uint64(self) -> int:
        self._state = (self._state + 0x9E3779B97F4A7C15) & _MASK64
        return _splitmix64(self._state)

    def integers(self, low: int, high: int) -> int:
        """A uniform integer in ``[low, high]``, both ends included (Lemire's multiply-shift, with rejection)."""
        span = high - low + 1
        if span <= 0:
            raise ValueError(f"empty range [{low}, {high}]")
        threshold = ((1 << 64) - span) % span
        while True:
            product = self.next_uint64() * span
            if (product & _MASK64) >= threshold:
                return low + (product >> 64)

    def uniform(self, low: float, high: float) -> float:
        """A uniform float in ``[low, high)``: the top 53 bits of one output as a fraction of 2**53.

        Python float (IEEE double) arithmetic, so the same value on every machine;
        ``low`` when ``low == high``.
        """
        fraction = (self.next_uint64() >> 11) * (1.0 / (1 << 53))
        return float(low) + (float(high) - float(low)) * fraction

    def numpy(self) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(self._key) + [self.next_uint64()])))


def item_rng(seed: int, split: str, scheme_name: str, index: int) -> ItemRandom:
    """The random stream an item draws from, derived from (seed, split, scheme, index) alone.

    The notebook used Python's global ``random``, so an item's masks depended on
    every item generated before it. Here each item has its own stream, so its
    output does not depend on order, worker count or machine.
    """
    seed = check_seed(seed)
    if index < 0:
        raise ValueError(f"index must be non-negative, got index={index}")
    scheme_id = zlib.crc32(scheme_name.encode("utf-8"))
    return ItemRandom(seed, SPLIT_IDS[split], scheme_id, index)


#: Key parts that tell an item's per-epoch streams apart (see :func:`epoch_rng`).
STEPS_STREAM = 1
SOURCES_STREAM = 2


def epoch_rngs(seed: int, split: str, scheme_name: str, index: int, epoch: int) -> Tuple[ItemRandom, ItemRandom]:
    """An item's two per-epoch streams, steps and sources: ``epoch_rng`` of each, sharing their key's first four parts."""
    if seed < 0 or index < 0 or epoch < 0:
        raise ValueError(f"seed, index and epoch must be non-negative, got seed={seed}, index={index}, epoch={epoch}")
    key = (int(seed), SPLIT_IDS[split], _scheme_id(scheme_name), int(index))
    base, epoch = _fold(0, key), int(epoch)
    # the same streams as ItemRandom(*key, stream, epoch), folding the shared first four parts once
    return (ItemRandom._made(key + (STEPS_STREAM, epoch), _fold(base, (STEPS_STREAM, epoch))),
            ItemRandom._made(key + (SOURCES_STREAM, epoch), _fold(base, (SOURCES_STREAM, epoch))))


@functools.lru_cache(maxsize=64)
def _scheme_id(scheme_name: str) -> int:
    return zlib.crc32(scheme_name.encode("utf-8"))


def epoch_rng(seed: int, split: str, scheme_name: str, index: int, epoch: int, stream: int) -> ItemRandom:
    """A per-epoch random stream of an item: key (seed, split, scheme, index, stream, epoch).

    ``stream`` is :data:`STEPS_STREAM` (what the scheme's steps draw: SNRs from
    a range, the noise window, mask starts) or :data:`SOURCES_STREAM` (which
    recording and which noise clip the item takes). Six key parts, where
    :func:`item_rng`'s fixed items have four, so no epoch's stream is a fixed
    item's stream.
    """
    if seed < 0 or index < 0 or epoch < 0:
        raise ValueError(f"seed, index and epoch must be non-negative, got seed={seed}, index={index}, epoch={epoch}")
    scheme_id = zlib.crc32(scheme_name.encode("utf-8"))
    return ItemRandom(seed, SPLIT_IDS[split], scheme_id, index, stream, epoch)


def with_snr_range(scheme: Scheme, spread_db: float) -> Scheme:
    """``scheme`` with each ``AddNoise``'s SNR widened by ``spread_db`` on both sides.

    A value ``v`` becomes the range ``(v - spread_db, v + spread_db)``; a range
    ``(low, high)`` becomes ``(low - spread_db, high + spread_db)``. The name
    stays, so the items' streams stay keyed on it.
    """
    if not (_is_real(spread_db) and math.isfinite(spread_db) and spread_db >= 0):
        raise ParameterError(f"snr_range_db={spread_db!r}: must be a finite number of decibels, 0 or more")
    steps = []
    for step in scheme.steps:
        if isinstance(step, AddNoise):
            low, high = step.snr_db if isinstance(step.snr_db, tuple) else (step.snr_db, step.snr_db)
            step = dataclasses.replace(step, snr_db=(low - spread_db, high + spread_db))
        steps.append(step)
    return Scheme(scheme.name, tuple(steps))


def _declares(step, attribute: str) -> bool:
    """``step.<attribute>`` as declared by the class that also defines the step's ``__call__``.

    A subclass that overrides ``__call__`` without restating the attribute
    does not inherit a promise about what its own ``__call__`` does.
    """
    cls = type(step)
    for klass in cls.__mro__:
        if attribute in vars(klass):
            return bool(vars(klass)[attribute]) and vars(klass).get("__call__") is cls.__call__
    return False


def recording_prefix(scheme: Scheme) -> Tuple[Step, ...]:
    """The scheme's leading steps whose result depends on the recording alone (no draws, no noise).

    Their output can be computed once per recording and shared by every item
    that uses it (``aliased``'s down-up resampling); the steps declare it with
    ``recording_only = True``.
    """
    prefix = []
    for step in scheme.steps:
        if not _declares(step, "recording_only"):
            break
        prefix.append(step)
    return tuple(prefix)


def prepare_recording(samples: np.ndarray, sample_rate: int, steps: Sequence[Step]) -> np.ndarray:
    """Pad, then run ``steps`` (a :func:`recording_prefix`): what every item of this recording starts from."""
    ctx = ItemContext(sample_rate=sample_rate, rng=None)
    out = pad_to_min_length(samples)
    for step in steps:
        out = step(out, ctx)
    return out


def apply_scheme(
    samples: np.ndarray,
    sample_rate: int,
    scheme: Scheme,
    *,
    rng: "ItemRandom",
    noise: Optional[Callable[[], np.ndarray]] = None,
    prepared: int = 0,
) -> Tuple[np.ndarray, List[dict]]:
    """Pad, then run the scheme's steps in order.

    Parameters
    ----------
    samples : float32 array, the recording as loaded.
    noise : callable returning the noise at ``sample_rate``, or None (no noise is added).
    prepared : int
        0: ``samples`` is the recording. n > 0: ``samples`` is already
        :func:`prepare_recording` of it with the scheme's first n steps (its
        :func:`recording_prefix`), so padding and those steps are skipped.

    Returns
    -------
    samples : the degraded waveform
    draws : the random draws, in the order they were made
    """
    ctx = ItemContext(sample_rate=sample_rate, rng=rng, noise=noise)
    out = pad_to_min_length(samples) if not prepared else samples
    for step in scheme.steps[prepared:]:
        out = step(out, ctx)
    return out, ctx.draws


def _batch_form(step) -> Optional[Callable]:
    """The step's ``apply_batch`` when it does what the step's own ``__call__`` does, else None.

    A subclass that overrides ``__call__`` but not ``apply_batch`` would have
    its batches computed by the parent's code: it runs item by item instead.
    """
    cls = type(step)
    for klass in cls.__mro__:
        if "apply_batch" in vars(klass):
            return step.apply_batch if vars(klass).get("__call__") is cls.__call__ else None
    return None


def apply_scheme_many(
    samples: Sequence[np.ndarray],
    sample_rates: Sequence[int],
    scheme: Scheme,
    *,
    rngs: Sequence["ItemRandom"],
    noises: Optional[Sequence[Optional[Callable[[], np.ndarray]]]] = None,
    prepared: int = 0,
) -> Tuple[List[np.ndarray], List[List[dict]]]:
    """:func:`apply_scheme` for many clips: the same waveforms and draws, computed step by step over the batch.

    Each clip keeps its own generator and draws in its own order, so a clip's
    result does not depend on the others in the batch. Steps with a batch form
    (frequency masks, band keep, down-up resampling) transform all clips at
    once; any other step runs clip by clip.

    Parameters
    ----------
    samples : float32 arrays, the recordings as loaded.
    sample_rates : each clip's rate.
    rngs : each clip's :class:`ItemRandom`.
    noises : each clip's noise callable (or None), as for :func:`apply_scheme`.
    prepared : as for :func:`apply_scheme`, for every clip.

    Returns
    -------
    samples : the degraded waveforms
    draws : each clip's random draws, in the order they were made
    """
    if not len(samples) == len(sample_rates) == len(rngs) or (noises is not None and len(noises) != len(samples)):
        raise ValueError("apply_scheme_many: samples, sample_rates, rngs (and noises) must have one entry per clip")
    if noises is None:
        noises = [None] * len(samples)
    contexts = [ItemContext(sample_rate=rate, rng=rng, noise=noise)
                for rate, rng, noise in zip(sample_rates, rngs, noises)]
    out = [pad_to_min_length(x) for x in samples] if not prepared else list(samples)
    for step in scheme.steps[prepared:]:
        batch = _batch_form(step)
        out = batch(out, contexts) if batch is not None else [step(x, ctx) for x, ctx in zip(out, contexts)]
    return out, [ctx.draws for ctx in contexts]
