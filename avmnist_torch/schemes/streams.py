"""The random streams items draw from: SplitMix64 keyed by (seed, split, scheme, index[, stream, epoch]) alone
(docs/items.md, "Random draws")."""

from __future__ import annotations

import functools
import zlib
from typing import Tuple

import numpy as np

from ..common import check_seed

SPLIT_IDS = {"train": 0, "test": 1}
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
    """The random stream of one item: SplitMix64 over a key of ints, in plain Python integer arithmetic.

    The same draws on every machine, at about a microsecond each (numpy's SeedSequence costs 40 us).
    """

    __slots__ = ("_key", "_state")

    def __init__(self, *key: int) -> None:
        self._key = tuple(int(k) for k in key)
        self._state = _fold(0, self._key)

    @classmethod
    def _made(cls, key: Tuple[int, ...], state: int) -> "ItemRandom":
        """A stream whose ``state`` is already ``_fold(0, key)`` (not checked)."""
        out = object.__new__(cls)
        out._key, out._state = key, state
        return out

    def extended(self, *parts: int) -> "ItemRandom":
        """``ItemRandom(*key, *parts)``, folding only ``parts`` into this stream's state: call it before drawing."""
        key = self._key + tuple(int(p) for p in parts)
        return ItemRandom._made(key, _fold(self._state, key[len(self._key):]))

    def next_uint64(self) -> int:
        """The next 64-bit output."""
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
        """A uniform float in ``[low, high)`` (``low`` when equal): the top 53 bits of one output over 2**53."""
        fraction = (self.next_uint64() >> 11) * (1.0 / (1 << 53))
        return float(low) + (float(high) - float(low)) * fraction

    def numpy(self) -> np.random.Generator:
        """A numpy Generator derived from the key and the next output, for custom steps that want one."""
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(self._key) + [self.next_uint64()])))


def item_rng(seed: int, split: str, scheme_name: str, index: int) -> ItemRandom:
    """The random stream a fixed item draws from, keyed on (seed, split, scheme, index) alone.

    A ParameterError for a seed outside 0 to 2**64 - 1, a ValueError for a negative index.
    """
    seed = check_seed(seed)
    if index < 0:
        raise ValueError(f"index must be non-negative, got index={index}")
    return ItemRandom(seed, SPLIT_IDS[split], _scheme_id(scheme_name), index)


#: Key parts that tell an item's per-epoch streams apart (see :func:`epoch_rng`).
STEPS_STREAM = 1
SOURCES_STREAM = 2


def epoch_rngs(seed: int, split: str, scheme_name: str, index: int, epoch: int) -> Tuple[ItemRandom, ItemRandom]:
    """An item's two per-epoch streams, steps and sources: ``epoch_rng`` of each, folding the shared key once."""
    if seed < 0 or index < 0 or epoch < 0:
        raise ValueError(f"seed, index and epoch must be non-negative, got seed={seed}, index={index}, epoch={epoch}")
    key = (int(seed), SPLIT_IDS[split], _scheme_id(scheme_name), int(index))
    base, epoch = _fold(0, key), int(epoch)
    return (ItemRandom._made(key + (STEPS_STREAM, epoch), _fold(base, (STEPS_STREAM, epoch))),
            ItemRandom._made(key + (SOURCES_STREAM, epoch), _fold(base, (SOURCES_STREAM, epoch))))


@functools.lru_cache(maxsize=64)
def _scheme_id(scheme_name: str) -> int:
    return zlib.crc32(scheme_name.encode("utf-8"))


def epoch_rng(seed: int, split: str, scheme_name: str, index: int, epoch: int, stream: int) -> ItemRandom:
    """A per-epoch random stream of an item: key (seed, split, scheme, index, stream, epoch).

    ``stream`` is :data:`STEPS_STREAM` (the steps' draws) or :data:`SOURCES_STREAM` (the recording and
    noise clip). Six key parts, where fixed items have four, so no epoch's stream is a fixed item's.
    """
    if seed < 0 or index < 0 or epoch < 0:
        raise ValueError(f"seed, index and epoch must be non-negative, got seed={seed}, index={index}, epoch={epoch}")
    return ItemRandom(seed, SPLIT_IDS[split], _scheme_id(scheme_name), index, stream, epoch)

