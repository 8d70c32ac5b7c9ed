"""Named, picklable scalings: what AV-MNIST's training code feeds its models, as transforms.

Instances are plain picklable objects, so they travel to DataLoader workers under every start method, where a
``lambda`` fails with "Can't pickle <function <lambda>>" under ``spawn`` (the default on macOS and Windows).
Pass them as ``transform=`` (:class:`~avmnist_torch.dataset.AVMNISTAudioDataset`) or ``transform_image=`` /
``transform_audio=`` (:class:`~avmnist_torch.paired.AVMNISTDataset`).

MultiBench's and the thesis' loaders feed a model ``float32(float64(x) / 255)``, which is :class:`DivideBy255`;
the thesis' ``compute_stats=True`` is :class:`Standardize` (docs/training-code.md says how each loader gets there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .common import ParameterError

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _as_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    raise TypeError(f"expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def _check_dtype(dtype: Any) -> None:
    if dtype not in _FLOAT_DTYPES:
        raise ParameterError(f"dtype must be a torch floating dtype ({', '.join(map(str, _FLOAT_DTYPES))}), got {dtype!r}")


@dataclass(unsafe_hash=True)
class DivideBy255:
    """``x / 255`` as floats: the scaling MultiBench's and the thesis' AV-MNIST loaders apply.

    It divides, nothing more: uint8 spectrograms land in [0, 1], the ``"pca25"`` image half (centred values,
    roughly -211 to 291 on MNIST) around [-0.83, 1.14], as those loaders feed it.

    Parameters
    ----------
    dtype : torch.dtype
        Default ``torch.float32``, what the loaders' training loops hand the model after ``.float()``;
        ``torch.float64`` gives the loaders' own float64 arrays.

    Notes
    -----
    For uint8 spectrograms the result is the loaders' ``float32(float64(x) / 255)`` bit for bit (a correctly
    rounded quotient, rounded again with 53 >= 2*24+2 bits, is rounded once). The float32 ``"pca25"`` image half
    can differ from the thesis' float64 division in float32's last bit.

    Examples
    --------
    >>> DivideBy255()(torch.tensor([0, 51, 255], dtype=torch.uint8))
    tensor([0.0000, 0.2000, 1.0000])
    """

    dtype: torch.dtype = torch.float32

    def __post_init__(self) -> None:
        _check_dtype(self.dtype)

    def __call__(self, x: Any) -> torch.Tensor:
        return _as_tensor(x).to(self.dtype) / 255


@dataclass(unsafe_hash=True)
class Standardize:
    """``(x / 255 - mean) / std`` as floats: the thesis' audio normalisation.

    Computed in float64, as the thesis' numpy code does, then cast to `dtype`; the defaults equal
    :class:`DivideBy255` exactly.

    Parameters
    ----------
    mean, std : float
        The thesis' ``compute_audio_stats``: the mean over items of each item's mean of ``x / 255``, and of each
        item's standard deviation (numpy's, ``ddof=0``).
    dtype : torch.dtype
        The result's dtype (default ``torch.float32``).
    """

    mean: float = 0.0
    std: float = 1.0
    dtype: torch.dtype = torch.float32

    def __post_init__(self) -> None:
        self.mean, self.std = float(self.mean), float(self.std)
        if not np.isfinite(self.mean):
            raise ParameterError(f"mean must be a finite number, got {self.mean!r}")
        if not np.isfinite(self.std) or self.std <= 0:
            raise ParameterError(f"std must be a finite positive number, got {self.std!r}")
        _check_dtype(self.dtype)

    def __call__(self, x: Any) -> torch.Tensor:
        return ((_as_tensor(x).to(torch.float64) / 255 - self.mean) / self.std).to(self.dtype)
