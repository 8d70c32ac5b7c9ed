"""The training order, epoch by epoch, and telling the dataset which epoch it is (before any worker sees an index)."""

from __future__ import annotations

from typing import Any, Callable, Iterator, List, Optional

import numpy as np
import torch

from .common import check_seed
from .item_options import check_epoch


def epoch_target(dataset: Any) -> Optional[Any]:
    """The object whose ``set_epoch`` a sampler over `dataset` must call (through any ``Subset``), or None."""
    while isinstance(dataset, torch.utils.data.Subset):
        dataset = dataset.dataset
    return dataset if callable(getattr(dataset, "set_epoch", None)) else None


def epoch_seed(seed: int, epoch: int) -> int:
    """One 63-bit seed from ``(seed, epoch)`` through numpy's ``SeedSequence``."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, np.uint64)[0] >> np.uint64(1))


class EpochSampler(torch.utils.data.Sampler):
    """Indices ``0 .. len(data_source) - 1`` in a per-epoch order; sets the dataset's epoch first.

    Parameters
    ----------
    data_source : Dataset
        What the ``DataLoader`` reads (a ``Subset`` is looked through for ``set_epoch``).
    seed : int
        With the epoch, seeds ``torch.randperm(n)`` (:func:`epoch_seed`): the same order in every process.
    shuffle : bool
        False keeps the order ``0 .. n - 1`` every epoch (the epoch is still set).
    epoch : callable, optional
        Returns the current epoch, or None when it does not know (then the epoch last given to
        :meth:`set_epoch` is used); the Lightning DataModule passes its trainer's ``current_epoch``.
        Outside Lightning, call ``loader.sampler.set_epoch(epoch)`` before each epoch, as with
        PyTorch's ``DistributedSampler``.
    """

    def __init__(self, data_source: Any, *, seed: int = 0, shuffle: bool = True,
                 epoch: Optional[Callable[[], Optional[int]]] = None) -> None:
        self.data_source = data_source
        self.seed = check_seed(seed)
        self.shuffle = bool(shuffle)
        self.epoch_source = epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch to use when no `epoch` callable was given or it does not know."""
        self.epoch = check_epoch(epoch)

    def current_epoch(self) -> int:
        """The epoch the next iteration is for."""
        epoch = None if self.epoch_source is None else self.epoch_source()
        return self.epoch if epoch is None else int(epoch)

    def order(self, epoch: int) -> List[int]:
        """The indices epoch `epoch` yields, in order."""
        n = len(self.data_source)
        if not self.shuffle:
            return list(range(n))
        generator = torch.Generator()
        generator.manual_seed(epoch_seed(self.seed, epoch))
        return torch.randperm(n, generator=generator).tolist()

    def __len__(self) -> int:
        return len(self.data_source)

    def __iter__(self) -> Iterator[int]:
        # Not a generator function: the epoch is set when the DataLoader asks for the iterator,
        # before it sends any index to a worker.
        epoch = self.current_epoch()
        target = epoch_target(self.data_source)
        if target is not None:
            target.set_epoch(epoch)
        return iter(self.order(epoch))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)}, seed={self.seed}, shuffle={self.shuffle})"
