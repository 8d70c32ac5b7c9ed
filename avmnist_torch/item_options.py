"""What decides an item's bytes besides its sources: one frozen options object.

:class:`ItemOptions` is made once by the generator from its keyword options, checked there.
:func:`items_identity` is the identity of every file of items the package stores: equal identities, the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .common import ParameterError, PathLike, __version__, check_seed, check_split
from .rendering import DEFAULT_STYLE, IMAGE_SIZE, RENDERERS, STYLES, get_renderer
from .schemes import Scheme, get_scheme, with_snr_range
from .storage import sources_fingerprint

__all__ = ["ItemOptions", "DRAW_MODES", "MAX_EPOCH", "check_epoch", "items_identity", "first_items_identity",
           "identity_differences", "describe_differences"]

#: ``draws=``: the notebook's fixed items, or new draws every epoch.
DRAW_MODES = ("fixed", "per_epoch")
#: The largest epoch: the datasets hold the epoch in an int64 tensor.
MAX_EPOCH = 2**63 - 1


def check_epoch(epoch: Any) -> int:
    """``epoch`` as an int, or a ``ParameterError`` saying why it is not one: a whole number, 0 to 2**63 - 1."""
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or not 0 <= int(epoch) <= MAX_EPOCH:
        raise ParameterError(f"epoch={epoch!r}: an epoch is a whole number, 0 to 2**63 - 1")
    return int(epoch)


@dataclass(frozen=True)
class ItemOptions:
    """The options that define a split's items, checked and normalised when made.

    Attributes are the generator's keyword options (see :class:`~avmnist_torch.generator.AudioItemGenerator`);
    ``scheme`` is the :class:`~avmnist_torch.schemes.Scheme` with ``snr_range_db`` applied, and ``style`` is
    None only with ``renderer="matplotlib"`` (the installed version's).
    """

    split: str = "train"
    scheme: Union[str, Scheme] = "burst_noise"
    seed: int = 0
    renderer: str = "fast"
    style: Optional[str] = None
    draws: str = "fixed"
    redraw_recording: bool = False
    snr_range_db: Optional[float] = None
    epoch: int = 0

    def __post_init__(self) -> None:
        check_split(self.split)
        if self.draws not in DRAW_MODES:
            raise ParameterError(f"unknown draws={self.draws!r}: choose one of {', '.join(map(repr, DRAW_MODES))}")
        if self.draws == "fixed" and (self.redraw_recording or self.snr_range_db is not None or self.epoch != 0):
            raise ParameterError("redraw_recording=, snr_range_db= and epoch= are about drawing every epoch: "
                                 "use them with draws='per_epoch'")
        if self.renderer not in RENDERERS:
            raise ParameterError(f"unknown renderer {self.renderer!r}: choose one of {', '.join(RENDERERS)}")
        if self.style is not None and str(self.style) not in STYLES:
            raise ParameterError(f"unknown style {self.style!r}: choose one of {', '.join(STYLES)} "
                                 "(matplotlib versions)")
        scheme = get_scheme(self.scheme)
        snr = self.snr_range_db
        if snr is not None:
            scheme = with_snr_range(scheme, snr)  # checks the value
            snr = float(snr)
        style = str(self.style) if self.style is not None else (DEFAULT_STYLE if self.renderer == "fast" else None)
        for name, value in (("scheme", scheme), ("snr_range_db", snr), ("style", style),
                            ("seed", check_seed(self.seed)), ("epoch", check_epoch(self.epoch)),
                            ("redraw_recording", bool(self.redraw_recording))):
            object.__setattr__(self, name, value)

    per_epoch = property(lambda self: self.draws == "per_epoch", doc="Whether items are drawn anew every epoch.")

    @property
    def drawn_style(self) -> str:
        """The matplotlib style whose pixels the items have (the installed version's for the figure route)."""
        return self.style if self.style is not None else get_renderer(self.renderer).style

    def identity(self, epoch: Optional[int] = None) -> Dict[str, Any]:
        """The options that decide the bytes, as JSON values. The renderer's name is not among them: the
        fast renderer and the figure route of one style give the same bytes. Per-epoch items add
        ``"draws"`` (which epoch: ``epoch``, default :attr:`epoch`)."""
        scheme = self.scheme
        assert isinstance(scheme, Scheme)
        out: Dict[str, Any] = {"split": self.split, "scheme": scheme.name, "scheme_steps": repr(tuple(scheme.steps)),
                               "seed": self.seed, "style": self.drawn_style}
        if self.per_epoch:
            out["draws"] = {"mode": self.draws, "epoch": self.epoch if epoch is None else check_epoch(epoch),
                            "redraw_recording": self.redraw_recording, "snr_range_db": self.snr_range_db}
        return out


def items_identity(options: ItemOptions, recordings: Sequence[PathLike], noises: Sequence[PathLike],
                   labels: np.ndarray, epoch: Optional[int] = None) -> Dict[str, Any]:
    """The identity a stored file of these items records: the options' identity, the sources' fingerprint
    (:func:`~avmnist_torch.storage.sources_fingerprint`), the package version and the shape, and ``"key"``,
    a sha256 of all of them."""
    return _keyed(dict(options.identity(epoch), sources=sources_fingerprint(recordings, noises, labels),
                       version=__version__, shape=[len(labels), IMAGE_SIZE, IMAGE_SIZE]))


def first_items_identity(identity: Dict[str, Any], n: int) -> Dict[str, Any]:
    """The identity of a file holding only the first ``n`` of the items ``identity`` describes (``export
    --limit``): its shape, and ``"items"`` saying that it is not the whole split; a new key."""
    out = {k: v for k, v in identity.items() if k != "key"}
    return _keyed(dict(out, shape=[n, *identity["shape"][1:]], items={"start": 0, "stop": n, "of": identity["shape"][0]}))


def _keyed(identity: Dict[str, Any]) -> Dict[str, Any]:
    """``identity`` with ``"key"``, the sha256 of all its fields."""
    return dict(identity, key=hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest())


def identity_differences(found: Any, expected: Dict[str, Any]) -> List[Tuple[str, Any, Any]]:
    """``(field, found, expected)`` for every field of two identities that differs (none when the keys agree)."""
    if not isinstance(found, dict):
        return [("identity", found, "an identity")]
    if found.get("key") == expected.get("key"):
        return []
    keys = [k for k in expected if k != "key"] + [k for k in found if k not in expected and k != "key"]
    return [(k, found.get(k), expected.get(k)) for k in keys if found.get(k) != expected.get(k)] or \
        [("key", found.get("key"), expected.get("key"))]


def _describe_value(key: str, value: Any) -> str:
    if key == "sources" and isinstance(value, str):
        return f"{key}={value[:12]}... (a fingerprint of the recordings, noises and labels)"
    return f"{key}={value}"


def describe_differences(diffs: Sequence[Tuple[str, Any, Any]], found_word: str, expected_word: str) -> str:
    """:func:`identity_differences` in words, e.g. ``seed=0 (file) vs seed=3 (dataset)``."""
    return ", ".join(f"{_describe_value(k, a)} ({found_word}) vs {_describe_value(k, b)} ({expected_word})"
                     for k, a, b in diffs)
