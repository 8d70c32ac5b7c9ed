"""Renderer inputs checked at the door: a bad clip or rate is a ParameterError naming it, not a crash deep inside."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..common import ParameterError
from .settings import STYLES


def check_sample_rate(sample_rate) -> int:
    """The sample rate as an ``int`` (``8000.0`` is 8000), or a ParameterError saying why it cannot be one."""
    if isinstance(sample_rate, (bool, np.bool_)) or not isinstance(sample_rate, numbers.Real):
        raise ParameterError(f"sample_rate must be a positive whole number of samples per second, "
                             f"got {type(sample_rate).__name__} {sample_rate!r}")
    value = float(sample_rate)
    if not math.isfinite(value) or value <= 0:
        raise ParameterError(f"sample_rate must be a positive finite number of samples per second, got {sample_rate!r}")
    if value != math.floor(value):
        raise ParameterError(f"sample_rate must be a whole number of samples per second, got {sample_rate!r}")
    return int(value)


def check_clip(samples, position=None) -> np.ndarray:
    """The clip as a 1-D real numpy array with a sample or more, else a ParameterError naming its ``position``."""
    where = "samples" if position is None else f"clip {position} of the batch"
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ParameterError(f"{where} must be a 1-D waveform, got an array of shape {x.shape}")
    if x.size == 0:
        raise ParameterError(f"{where} is empty: a waveform needs at least one sample")
    if x.dtype.kind not in "iuf":
        raise ParameterError(f"{where} must hold real numbers (a mono waveform), got dtype {x.dtype}")
    return x


def check_style(style) -> str:
    """``style`` as one of :data:`~.settings.STYLES` (a string), or a ParameterError listing them."""
    style = str(style)
    if style not in STYLES:
        raise ParameterError(f"unknown style {style!r}: choose one of {', '.join(STYLES)} (matplotlib versions)")
    return style
