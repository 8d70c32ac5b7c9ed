"""The README's first command, end to end: ``avmnist-audio demo`` on a tree it makes itself."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from avmnist_torch import AVMNISTAudioDataset
from conftest import REPO


def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "avmnist_torch.cli", "demo", "--out", str(out), "--items", "24"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "MISMATCH" not in result.stdout
    for scheme in ("extreme_noise", "multi_band", "burst_noise", "aliased", "distorted"):
        path = out / "avmnist" / "audio" / f"test_data_augmented_{scheme}.npy"
        rows = np.load(path, mmap_mode="r")
        assert rows.shape == (24, 112, 112) and rows.dtype == np.uint8
        ds = AVMNISTAudioDataset(out / "data", split="test", scheme=scheme)
        assert np.array_equal(rows[7], ds.image(7))
    png = (out / "preview.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
