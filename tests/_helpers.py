"""Names the tests share (not fixtures: those are in conftest.py): paths, a digest, a private tmpfs."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def digest(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(array)).tobytes()).hexdigest()


def mount_tmpfs_command(mountpoint, size):
    """A command prefix that runs its argument with a private tmpfs at ``mountpoint``, or None."""
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        return None
    for flags in (["-m"], ["-r", "-m"]):  # root; or an unprivileged user namespace
        probe = subprocess.run(
            [unshare, *flags, "sh", "-c", f"mount -t tmpfs -o size={size} tmpfs '{mountpoint}'"],
            capture_output=True,
        )
        if probe.returncode == 0:
            return [unshare, *flags, "sh", "-c", f"mount -t tmpfs -o size={size} tmpfs '{mountpoint}' && exec \"$@\"",
                    "sh"]
    return None


class Recorder(torch.utils.data.Dataset):
    """A dataset that records the indices read and the epochs set, in this process."""

    def __init__(self, n):
        self.n = n
        self.epochs = []
        self.reads = []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.reads.append(int(i))
        return torch.zeros(1), 0

    def set_epoch(self, epoch):
        self.epochs.append(epoch)
