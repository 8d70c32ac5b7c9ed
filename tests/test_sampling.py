"""EpochSampler: sets the dataset's epoch when iterated, then yields a permutation seeded by (seed, epoch).

The DataLoader iterates its sampler in the main process before any index reaches a worker, so this is
where per-epoch items learn their epoch; Lightning's DistributedSamplerWrapper (several devices) lists
the wrapped sampler at each epoch, which must keep both.
"""

from __future__ import annotations

import pytest
import torch

from avmnist_torch import EpochSampler, ParameterError
from avmnist_torch.sampling import epoch_seed, epoch_target
from _helpers import Recorder


def test_sampler_sets_the_epoch_then_yields_a_seeded_permutation():
    rec = Recorder(50)
    sub = torch.utils.data.Subset(rec, list(range(10, 40)))
    assert epoch_target(sub) is rec and epoch_target(torch.utils.data.Subset(list(range(3)), [0])) is None
    sampler = EpochSampler(sub, seed=7)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert rec.epochs == [0, 1]
    assert sorted(first) == sorted(second) == list(range(30)) and first != second
    assert list(EpochSampler(sub, seed=7)) == first  # same (seed, epoch), same order
    assert list(EpochSampler(sub, seed=8)) != first
    assert list(EpochSampler(sub, shuffle=False)) == list(range(30))
    assert epoch_seed(0, 1) != epoch_seed(1, 0)
    # a source of the epoch (the trainer's) wins over set_epoch
    current = {"epoch": 5}
    led = EpochSampler(sub, seed=7, epoch=lambda: current["epoch"])
    led.set_epoch(2)
    assert list(led) == led.order(5) and rec.epochs[-1] == 5
    current["epoch"] = None  # does not know: set_epoch's value
    assert list(led) == led.order(2) and rec.epochs[-1] == 2


def test_sampler_survives_lightnings_distributed_wrapping():
    """Lightning wraps a custom sampler in DistributedSamplerWrapper on several devices: the epoch is still set, shards partition the order."""
    pytest.importorskip("lightning")
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

    rec = Recorder(64)
    current = {"epoch": 0}
    shards = {}
    for epoch in (0, 1):
        current["epoch"] = epoch
        for rank in (0, 1):
            sampler = EpochSampler(rec, seed=3, epoch=lambda: current["epoch"])
            wrapped = DistributedSamplerWrapper(sampler, num_replicas=2, rank=rank, shuffle=True, seed=0)
            wrapped.set_epoch(epoch)
            shards[epoch, rank] = list(wrapped)
        assert rec.epochs[-2:] == [epoch, epoch]
        assert sorted(shards[epoch, 0] + shards[epoch, 1]) == list(range(64))
        assert not set(shards[epoch, 0]) & set(shards[epoch, 1])
    assert shards[0, 0] != shards[1, 0]


def test_bad_arguments_are_refused():
    with pytest.raises(ParameterError, match="seed"):
        EpochSampler(range(3), seed=-1)
    with pytest.raises(ParameterError, match="epoch"):
        EpochSampler(range(3)).set_epoch(-2)
