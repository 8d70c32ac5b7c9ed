"""Where the files of an export live: the final names and the files beside them while it runs.

See :mod:`avmnist_torch.storage` for what each file is for.
"""

from __future__ import annotations

from pathlib import Path

from ..common import PathLike

__all__ = [
    "notebook_path",
    "multibench_path",
    "sidecar_path",
    "partial_path",
    "partial_meta_path",
    "done_dir",
    "lock_path",
]


def notebook_path(root: PathLike, split: str, scheme: str) -> Path:
    """The notebook's output name: ``root/avmnist/audio/{split}_data_augmented_{scheme}.npy``."""
    return Path(root) / "avmnist" / "audio" / f"{split}_data_augmented_{scheme}.npy"


def multibench_path(directory: PathLike, split: str) -> Path:
    """MultiBench's AV-MNIST audio file: ``{directory}/audio/{split}_data.npy``."""
    return Path(directory) / "audio" / f"{split}_data.npy"


def sidecar_path(path: PathLike) -> Path:
    """``<file>.json``: what made a finished file."""
    return Path(f"{path}.json")


def partial_path(path: PathLike) -> Path:
    """``<file>.partial``: the data of an export in progress, header and all."""
    return Path(f"{path}.partial")


def partial_meta_path(path: PathLike) -> Path:
    """``<file>.partial.json``: the parameters of the run that started an export in progress."""
    return Path(f"{path}.partial.json")


def done_dir(path: PathLike) -> Path:
    """``<file>.partial.done/``: one log per exporter of the chunks it has written."""
    return Path(f"{path}.partial.done")


def lock_path(path: PathLike) -> Path:
    """``<file>.lock``: the byte-range locks that keep exporters of the same rows apart."""
    return Path(f"{path}.lock")
