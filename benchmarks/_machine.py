"""What a benchmark prints about the machine it ran on: figures mean little without it."""

from __future__ import annotations

import platform
from importlib import metadata

DEFAULT_PACKAGES = ("numpy", "matplotlib", "numba", "torch", "librosa", "soxr")


def cpu_model() -> str:
    """The CPU's model name, as the OS reports it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions(packages=DEFAULT_PACKAGES) -> str:
    """``name version`` of each installed package (``absent`` when it is not)."""
    found = []
    for package in packages:
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{package} absent")
    return ", ".join(found)
