"""Named, picklable scalings: what AV-MNIST's training code feeds its models, as transforms.

Each transform is a small class whose instances are plain picklable objects, so they travel to
DataLoader workers under every start method (``fork``, ``spawn``, ``forkserver``), where a
``lambda`` fails with "Can't pickle <function <lambda>>" under ``spawn`` (the default on macOS
and Windows). Pass them as ``transform=`` (:class:`~avmnist_torch.dataset.AVMNISTAudioDataset`)
or ``transform_image=`` / ``transform_audio=`` (:class:`~avmnist_torch.paired.AVMNISTDataset`).

What the two loaders in use feed a model (both read the files this package exports):

- MultiBench's ``datasets/avmnist/get_data.py`` (``get_dataloader``, defaults
  ``normalize_image=True, normalize_audio=True``) divides the image array (float64) and the audio
  array (uint8, promoted to float64) by 255.0 in numpy, and its training loops call ``.float()``
  on each batch.
- The thesis' ``AVMNIST_Experiments/utils/get_data.py`` (``BaseAVMNISTDataset``, defaults
  ``normalize_image=True, normalize_audio=True, compute_stats=False``) computes ``image / 255.0``
  and ``(audio / 255.0 - mean) / std`` in float64, with ``mean, std = 0.0, 1.0`` unless
  ``compute_stats=True``; its ``AVMNISTDataModule`` never passes ``compute_stats``, so it always
  uses 0 and 1. Subtracting 0.0 and dividing by 1.0 are exact in IEEE arithmetic, so the default
  reduces to ``x / 255`` exactly. Its training loops call ``.float()`` too.

So a model sees ``float32(float64(x) / 255)`` in both: :class:`DivideBy255`. With
``compute_stats=True`` the thesis standardises the audio with the mean of the items' means and
the mean of the items' standard deviations (of ``x / 255``): :class:`Standardize` with those
two numbers.
"""

from __future__ import annotations

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


def _check_dtype(dtype: Any) -> torch.dtype:
    if dtype not in _FLOAT_DTYPES:
        raise ParameterError(f"dtype must be a torch floating dtype ({', '.join(map(str, _FLOAT_DTYPES))}), got {dtype!r}")
    return dtype


class DivideBy255:
    """``x / 255`` as floats: the scaling MultiBench's and the thesis' AV-MNIST loaders apply.

    It divides, nothing more: uint8 spectrograms land in [0, 1], but the ``"pca25"`` image half
    (centred values, roughly -211 to 291 on MNIST) lands around [-0.83, 1.14], as those loaders
    feed it.

    Parameters
    ----------
    dtype : torch.dtype
        The result's dtype; default ``torch.float32``, what the loaders' training loops hand the
        model after ``.float()``. ``torch.float64`` gives the loaders' own float64 arrays.

    Notes
    -----
    For uint8 spectrograms the result equals ``float32(float64(x) / 255)``, the loaders' value,
    bit for bit: dividing in float32 and rounding a float64 quotient to float32 give the same
    number for every float32 input (a correctly rounded quotient, rounded twice with 53 >= 2*24+2
    bits, is rounded once). For the ``"pca25"`` image half, which the datasets serve as float32,
    the result can differ from the thesis' (which divides the stored float64 values) in the last
    bit of float32.

    Examples
    --------
    >>> DivideBy255()(torch.tensor([0, 51, 255], dtype=torch.uint8))
    tensor([0.0000, 0.2000, 1.0000])
    """

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        self.dtype = _check_dtype(dtype)

    def __call__(self, x: Any) -> torch.Tensor:
        return _as_tensor(x).to(self.dtype) / 255

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dtype={self.dtype})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.dtype == self.dtype

    def __hash__(self) -> int:
        return hash((type(self), self.dtype))


class Standardize:
    """``(x / 255 - mean) / std`` as floats: the thesis' audio normalisation.

    Computed in float64, as the thesis' numpy code does, then cast to `dtype`. With the defaults
    ``mean=0.0, std=1.0`` (the thesis' values unless ``compute_stats=True``) it equals
    :class:`DivideBy255` exactly.

    Parameters
    ----------
    mean, std : float
        The thesis' ``compute_audio_stats`` gives the mean over items of each item's mean of
        ``x / 255``, and the mean over items of each item's standard deviation (numpy's, ``ddof=0``).
    dtype : torch.dtype
        The result's dtype (default ``torch.float32``).
    """

    def __init__(self, mean: float = 0.0, std: float = 1.0, dtype: torch.dtype = torch.float32) -> None:
        mean, std = float(mean), float(std)
        if not np.isfinite(mean):
            raise ParameterError(f"mean must be a finite number, got {mean!r}")
        if not np.isfinite(std) or std <= 0:
            raise ParameterError(f"std must be a finite positive number, got {std!r}")
        self.mean = mean
        self.std = std
        self.dtype = _check_dtype(dtype)

    def __call__(self, x: Any) -> torch.Tensor:
        return ((_as_tensor(x).to(torch.float64) / 255 - self.mean) / self.std).to(self.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean!r}, std={self.std!r}, dtype={self.dtype})"

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and (other.mean, other.std, other.dtype) == (self.mean, self.std, self.dtype))

    def __hash__(self) -> int:
        return hash((type(self), self.mean, self.std, self.dtype))
