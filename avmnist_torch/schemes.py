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

Adding a scheme needs no change to the library::

    from avmnist_torch.schemes import Scheme, AddNoise, TimeMasks
    mine = Scheme("soft_burst", (AddNoise(snr_db=10), TimeMasks(ratio=0.05, count=3)))
    ds = AVMNISTAudioDataset(root, scheme=mine)
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import dsp

MIN_LENGTH = 2048
N_FFT = 2048  # librosa.stft's default, which the notebook used
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
    "pad_to_min_length",
    "fit_noise_length",
    "add_noise",
    "draw_time_masks",
    "apply_time_masks",
    "draw_frequency_masks",
    "apply_frequency_masks",
    "keep_bands",
    "down_up_resample",
    "distort",
    "apply_scheme",
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


def keep_bands(samples: np.ndarray, sample_rate: int, bands: Sequence[Tuple[float, float]]) -> np.ndarray:
    """Keep only STFT bins whose frequency lies inside a band (inclusive); zero the rest; resynthesise."""
    spectrum = dsp.stft(samples)
    n_freqs = spectrum.shape[0]
    response = np.zeros(n_freqs)
    freq_bins = np.linspace(0, sample_rate / 2, n_freqs)
    for low, high in bands:
        response[(freq_bins >= low) & (freq_bins <= high)] = 1
    spectrum *= response[:, np.newaxis]
    return dsp.istft(spectrum)


def down_up_resample(samples: np.ndarray, sample_rate: int, factor: int) -> np.ndarray:
    """Resample to ``sample_rate // factor`` and back with ``librosa.resample`` (soxr_hq)."""
    low_rate = sample_rate // factor
    return dsp.resample(dsp.resample(samples, sample_rate, low_rate), low_rate, sample_rate)


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


@dataclass(frozen=True)
class AddNoise:
    """Mix the item's ESC-50 noise in at ``snr_db`` dB SNR."""

    snr_db: float
    uses_noise = True

    def __call__(self, samples: np.ndarray, ctx: ItemContext) -> np.ndarray:
        if ctx.noise is None:
            return samples
        return add_noise(samples, ctx.noise(), self.snr_db)


@dataclass(frozen=True)
class TimeMasks:
    """Zero ``count`` spans of ``ratio`` of the clip's length, at uniform random starts."""

    ratio: float
    count: int = 1
    uses_noise = False

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

    def __call__(self, samples: np.ndarray, ctx: ItemContext) -> np.ndarray:
        ranges = draw_frequency_masks(N_FFT // 2 + 1, self.ratio, self.count, ctx.rng)
        ctx.draws.extend({"step": "frequency_mask", "start": s, "length": n} for s, n in ranges)
        return apply_frequency_masks(samples, ranges)


@dataclass(frozen=True)
class BandKeep:
    """Keep only the given frequency bands (Hz, inclusive)."""

    bands: Tuple[Tuple[float, float], ...]
    uses_noise = False

    def __call__(self, samples: np.ndarray, ctx: ItemContext) -> np.ndarray:
        return keep_bands(samples, ctx.sample_rate, self.bands)


@dataclass(frozen=True)
class DownUpResample:
    """Resample down by ``factor`` and back up (soxr_hq: in effect a low-pass at rate / (2 * factor))."""

    factor: int
    uses_noise = False

    def __call__(self, samples: np.ndarray, ctx: ItemContext) -> np.ndarray:
        return down_up_resample(samples, ctx.sample_rate, self.factor)


@dataclass(frozen=True)
class Distortion:
    """Peak-normalise, then ``tanh(factor * x)``."""

    factor: float
    uses_noise = False

    def __call__(self, samples: np.ndarray, ctx: ItemContext) -> np.ndarray:
        return distort(samples, self.factor)


Step = Union[AddNoise, TimeMasks, FrequencyMasks, BandKeep, DownUpResample, Distortion]


@dataclass(frozen=True)
class Scheme:
    """A named, ordered sequence of steps."""

    name: str
    steps: Tuple[Step, ...] = ()

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
        raise ValueError(f"unknown scheme {scheme!r}: choose one of {', '.join(SCHEME_NAMES)} or pass a Scheme")
    return SCHEMES[key]


_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


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
        state = 0
        for part in key:
            state = _splitmix64(state ^ (int(part) & _MASK64))
        self._key = tuple(int(k) for k in key)
        self._state = state

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

    def numpy(self) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(self._key) + [self.next_uint64()])))


def item_rng(seed: int, split: str, scheme_name: str, index: int) -> ItemRandom:
    """The random stream an item draws from, derived from (seed, split, scheme, index) alone.

    The notebook used Python's global ``random``, so an item's masks depended on
    every item generated before it. Here each item has its own stream, so its
    output does not depend on order, worker count or machine.
    """
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed}, index={index}")
    scheme_id = zlib.crc32(scheme_name.encode("utf-8"))
    return ItemRandom(seed, SPLIT_IDS[split], scheme_id, index)


def apply_scheme(
    samples: np.ndarray,
    sample_rate: int,
    scheme: Scheme,
    *,
    rng: "ItemRandom",
    noise: Optional[Callable[[], np.ndarray]] = None,
) -> Tuple[np.ndarray, List[dict]]:
    """Pad, then run the scheme's steps in order.

    Parameters
    ----------
    samples : float32 array, the recording as loaded.
    noise : callable returning the noise at ``sample_rate``, or None (no noise is added).

    Returns
    -------
    samples : the degraded waveform
    draws : the random draws, in the order they were made
    """
    ctx = ItemContext(sample_rate=sample_rate, rng=rng, noise=noise)
    out = pad_to_min_length(samples)
    for step in scheme.steps:
        out = step(out, ctx)
    return out, ctx.draws
