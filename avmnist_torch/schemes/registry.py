"""Schemes: named sequences of steps, the notebook's five, and running one over a clip or a batch."""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..common import ParameterError
from .steps import (
    AddNoise,
    BandKeep,
    Distortion,
    DownUpResample,
    FrequencyMasks,
    SNR_LIMIT_DB,
    ItemContext,
    Step,
    TimeMasks,
    _is_real,
    pad_to_min_length,
)
from .streams import ItemRandom

@dataclass(frozen=True)
class Scheme:
    """A named, ordered sequence of steps: callables ``step(samples, ctx) -> samples``.

    A ParameterError for an empty name or a step that is not callable.
    """

    name: str
    steps: Tuple[Step, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ParameterError(f"Scheme(name={self.name!r}): name must be a non-empty string")
        try:
            steps = tuple(self.steps)
        except TypeError:
            raise ParameterError(f"Scheme({self.name!r}): steps must be a sequence of steps, "
                                 f"got {type(self.steps).__name__}") from None
        for k, step in enumerate(steps):
            if not callable(step):
                raise ParameterError(f"Scheme({self.name!r}): step {k} ({step!r}) is not a step: a step is called as "
                                     "step(samples, ctx) and returns the new samples")
        object.__setattr__(self, "steps", steps)

    @property
    def uses_noise(self) -> bool:
        """Whether a step mixes in noise (then the item needs a noise clip)."""
        return any(getattr(step, "uses_noise", False) for step in self.steps)


#: The notebook's ``get_augmentation_config``, in its order of operations.
SCHEMES: Dict[str, Scheme] = {
    s.name: s for s in (
        Scheme("extreme_noise", (AddNoise(snr_db=0), TimeMasks(ratio=0.1, count=2))),
        Scheme("multi_band", (FrequencyMasks(ratio=0.2, count=3), BandKeep(bands=((50, 1000), (2000, 3500))))),
        Scheme("burst_noise", (AddNoise(snr_db=3), TimeMasks(ratio=0.15, count=4))),
        Scheme("aliased", (DownUpResample(factor=4), FrequencyMasks(ratio=0.3, count=1))),
        Scheme("distorted", (AddNoise(snr_db=5), Distortion(factor=2.0))),
        Scheme("clean", ()),
    )
}
SCHEME_NAMES = tuple(SCHEMES)


def get_scheme(scheme: Union[str, Scheme]) -> Scheme:
    """Look a scheme up by name (the notebook's upper-case names work too); a Scheme is returned as it is.

    A ParameterError for an unknown name, a TypeError for neither a name nor a Scheme.
    """
    if isinstance(scheme, Scheme):
        return scheme
    if not isinstance(scheme, str):
        raise TypeError(f"scheme must be a name or a Scheme, got {type(scheme).__name__}")
    key = scheme.strip().lower()
    if key not in SCHEMES:
        raise ParameterError(f"unknown scheme {scheme!r}: choose one of {', '.join(SCHEME_NAMES)} or pass a Scheme")
    return SCHEMES[key]


def with_snr_range(scheme: Scheme, spread_db: float) -> Scheme:
    """``scheme`` with each ``AddNoise``'s SNR (a value or a range) widened by ``spread_db`` on both sides.

    The name stays, so the items' streams stay keyed on it.

    Raises
    ------
    ParameterError
        If `spread_db` is not a finite number of decibels, 0 or more, or a widened range would leave
        -200 to 200 dB (:data:`~avmnist_torch.schemes.steps.SNR_LIMIT_DB`).
    """
    if not (_is_real(spread_db) and math.isfinite(spread_db) and spread_db >= 0):
        raise ParameterError(f"snr_range_db={spread_db!r}: must be a finite number of decibels, 0 or more")
    steps = []
    for step in scheme.steps:
        if isinstance(step, AddNoise):
            low, high = step.snr_db if isinstance(step.snr_db, tuple) else (step.snr_db, step.snr_db)
            if low - spread_db < -SNR_LIMIT_DB or high + spread_db > SNR_LIMIT_DB:
                raise ParameterError(f"snr_range_db={spread_db!r}: scheme {scheme.name!r} would draw SNRs from "
                                     f"{low - spread_db:g} to {high + spread_db:g} dB, outside the {-SNR_LIMIT_DB:g} "
                                     f"to {SNR_LIMIT_DB:g} dB an AddNoise step accepts; use at most "
                                     f"{min(low + SNR_LIMIT_DB, SNR_LIMIT_DB - high):g}")
            step = dataclasses.replace(step, snr_db=(low - spread_db, high + spread_db))
        steps.append(step)
    return Scheme(scheme.name, tuple(steps))


def _declared(step, attribute: str):
    """The step's class ``attribute`` if the class declaring it also defines the step's ``__call__``, else None."""
    cls = type(step)
    for klass in cls.__mro__:
        if attribute in vars(klass):
            return vars(klass)[attribute] if vars(klass).get("__call__") is cls.__call__ else None
    return None


def recording_prefix(scheme: Scheme) -> Tuple[Step, ...]:
    """The scheme's leading steps that declare ``recording_only = True``: computed once per recording, not per item."""
    return tuple(itertools.takewhile(lambda step: _declared(step, "recording_only"), scheme.steps))


def prepare_recording(samples: np.ndarray, sample_rate: int, steps: Sequence[Step]) -> np.ndarray:
    """Pad, then run ``steps`` (a :func:`recording_prefix`): what every item of this recording starts from."""
    ctx = ItemContext(sample_rate=sample_rate, rng=None)
    out = pad_to_min_length(samples)
    for step in steps:
        out = step(out, ctx)
    return out


def apply_scheme(samples: np.ndarray, sample_rate: int, scheme: Scheme, *, rng: "ItemRandom",
                 noise: Optional[Callable[[], np.ndarray]] = None, prepared: int = 0) -> Tuple[np.ndarray, List[dict]]:
    """Pad, then run the scheme's steps in order.

    Parameters
    ----------
    samples : float32 array, the recording as loaded.
    noise : callable returning the noise at ``sample_rate``, or None (no noise is added).
    prepared : int
        n > 0: ``samples`` is :func:`prepare_recording` of the scheme's first n steps, which are skipped.

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


def apply_scheme_many(samples: Sequence[np.ndarray], sample_rates: Sequence[int], scheme: Scheme, *,
                      rngs: Sequence["ItemRandom"],
                      noises: Optional[Sequence[Optional[Callable[[], np.ndarray]]]] = None,
                      prepared: int = 0) -> Tuple[List[np.ndarray], List[List[dict]]]:
    """:func:`apply_scheme` for many clips: the same waveforms and draws, computed step by step over the batch.

    ``sample_rates``, ``rngs`` and ``noises`` (optional) hold one per clip (else a ValueError); ``prepared``
    holds for every clip. Steps with an ``apply_batch`` transform all clips at once; each clip keeps its own
    stream and draws.

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
        if _declared(step, "apply_batch"):
            out = step.apply_batch(out, contexts)
        else:
            out = [step(x, ctx) for x, ctx in zip(out, contexts)]
    return out, [ctx.draws for ctx in contexts]
