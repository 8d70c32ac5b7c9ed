"""Where the files of an export live: the final names and the files beside them.

See :mod:`avmnist_torch.storage` for what each file is for.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Optional, Tuple

from ..common import PathLike

__all__ = [
    "notebook_path",
    "multibench_path",
    "sidecar_path",
    "checksums_path",
    "writing_path",
    "parse_writing_path",
    "LEGACY_SUFFIXES",
]

#: What an older version of this package left beside an interrupted export (a chunk log and
#: row locks); nothing reads them now, and ``info`` lists them as safe to delete.
LEGACY_SUFFIXES = (".partial", ".partial.json", ".partial.done", ".lock")

_WRITING = re.compile(r"^\.(?P<name>.+)\.writing-(?P<host>[^/]*)-(?P<pid>\d+)$")


def notebook_path(root: PathLike, split: str, scheme: str, *, epoch: Optional[int] = None) -> Path:
    """The notebook's output name: ``root/avmnist/audio/{split}_data_augmented_{scheme}.npy``.

    One epoch of per-epoch items (`epoch` given) is ``..._{scheme}_epoch{epoch}.npy``.
    """
    suffix = "" if epoch is None else f"_epoch{epoch}"
    return Path(root) / "avmnist" / "audio" / f"{split}_data_augmented_{scheme}{suffix}.npy"


def multibench_path(directory: PathLike, split: str) -> Path:
    """MultiBench's AV-MNIST audio file: ``{directory}/audio/{split}_data.npy``."""
    return Path(directory) / "audio" / f"{split}_data.npy"


def sidecar_path(path: PathLike) -> Path:
    """``<file>.json``: what made a finished file."""
    return Path(f"{path}.json")


def checksums_path(path: PathLike) -> Path:
    """``<file>.crc32``: one CRC-32 per row of a finished file, little-endian uint32."""
    return Path(f"{path}.crc32")


def _host() -> str:
    # '-' separates the fields of the name; a host name keeps its dots.
    return socket.gethostname().replace("-", "_").replace("/", "_") or "host"


def writing_path(path: PathLike, pid: int) -> Path:
    """``.<name>.writing-{host}-{pid}``: the file an exporter writes before renaming it to ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.writing-{_host()}-{pid}")


def parse_writing_path(candidate: PathLike) -> Optional[Tuple[str, str, int]]:
    """``(final name, host, pid)`` of a :func:`writing_path` name; None for any other name."""
    m = _WRITING.match(Path(candidate).name)
    if not m:
        return None
    return m.group("name"), m.group("host"), int(m.group("pid"))


def this_host() -> str:
    """This machine's name as :func:`writing_path` writes it."""
    return _host()
