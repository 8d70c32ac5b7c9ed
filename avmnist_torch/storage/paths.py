"""Where the files of an export live: the notebook's names and MultiBench's.

See :mod:`avmnist_torch.storage` for what each file is for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..common import PathLike

__all__ = ["notebook_path", "multibench_path"]


def notebook_path(root: PathLike, split: str, scheme: str, *, epoch: Optional[int] = None) -> Path:
    """The notebook's output name: ``root/avmnist/audio/{split}_data_augmented_{scheme}.npy``.

    One epoch of per-epoch items (`epoch` given) is ``..._{scheme}_epoch{epoch}.npy``.
    """
    suffix = "" if epoch is None else f"_epoch{epoch}"
    return Path(root) / "avmnist" / "audio" / f"{split}_data_augmented_{scheme}{suffix}.npy"


def multibench_path(directory: PathLike, split: str) -> Path:
    """MultiBench's AV-MNIST audio file: ``{directory}/audio/{split}_data.npy``."""
    return Path(directory) / "audio" / f"{split}_data.npy"
