"""Renderer inputs checked at the door, so a bad clip or rate fails where it is given.

Unchecked, a sample rate of 0 would reach the geometry code and fail there with
a ZeroDivisionError, and a 2-D or empty clip would fail deep in the FFT; each
raises :class:`~avmnist_torch.common.ParameterError` here instead, naming the
argument and what is wrong with it.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..common import ParameterError


def check_sample_rate(sample_rate) -> int:
    """The sample rate as an ``int``, or a ParameterError saying why it cannot be one.

    A rate must be a positive, finite, whole number of samples per second;
    ``8000.0`` is accepted as 8000 (it divides the PSD to the same bits).
    """
    if isinstance(sample_rate, (bool, np.bool_)) or not isinstance(sample_rate, numbers.Real):
        raise ParameterError(
            f"sample_rate must be a positive whole number of samples per second, "
            f"got {type(sample_rate).__name__} {sample_rate!r}"
        )
    value = float(sample_rate)
    if not math.isfinite(value) or value <= 0:
        raise ParameterError(f"sample_rate must be a positive finite number of samples per second, got {sample_rate!r}")
    if value != math.floor(value):
        raise ParameterError(f"sample_rate must be a whole number of samples per second, got {sample_rate!r}")
    return int(value)


def check_clip(samples, position=None) -> np.ndarray:
    """The clip as a 1-D real numpy array with at least one sample, else a ParameterError.

    ``position`` names the clip's place in a batch in the message.
    """
    where = "samples" if position is None else f"clip {position} of the batch"
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ParameterError(f"{where} must be a 1-D waveform, got an array of shape {x.shape}")
    if x.size == 0:
        raise ParameterError(f"{where} is empty: a waveform needs at least one sample")
    if x.dtype.kind not in "iuf":
        raise ParameterError(f"{where} must hold real numbers (a mono waveform), got dtype {x.dtype}")
    return x
