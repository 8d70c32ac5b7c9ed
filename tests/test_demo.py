"""The README's first command, end to end: ``avmnist demo`` on a tree it makes itself."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from avmnist_torch import AVMNISTAudioDataset
from avmnist_torch.demo import items_per_second, run_demo
from avmnist_torch.paired import AVMNISTDataset
from _helpers import REPO
from _consumers import multibench_items


@pytest.mark.slow  # the whole demo in a fresh process: every scheme, both layouts, two previews
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
        assert path.stat().st_size == 24 * 112 * 112  # raw rows, as the notebook wrote them
        rows = np.memmap(path, mode="r", dtype=np.uint8, shape=(24, 112, 112))
        ds = AVMNISTAudioDataset(out / "data", split="test", scheme=scheme)
        assert np.array_equal(rows[7], ds.spectrogram(7))
    png = (out / "preview.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    # the whole AV-MNIST: MultiBench's own loader reads the demo's MultiBench folder as it is
    assert "MultiBench's layout" in result.stdout and "== AVMNISTDataset[i]: True" in result.stdout
    trains, valids, tests = multibench_items(str(out / "multibench"), 24, 24, 20)
    images, audio, labels = (torch.from_numpy(np.stack(parts)) for parts in zip(*tests))
    paired = AVMNISTDataset(out / "data", "test", "burst_noise", check_mnist=False)  # the demo's MNIST is synthetic
    assert images.shape == (24, 1, 28, 28) and audio.shape == (24, 1, 112, 112)
    assert labels.tolist() == paired.labels.tolist()
    image, sound, _ = paired[7]
    assert torch.equal(sound.double() / 255.0, audio[7])
    assert torch.allclose(image.double(), images[7] * 255.0, rtol=1e-6, atol=1e-4)
    png = (out / "preview_av.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


class _CompilesOnFirstUse:
    """A dataset whose first item costs what compiling numba's kernels costs, and later ones nothing."""

    def __init__(self):
        self.made = 0

    def __getitem__(self, index):
        self.made += 1
        if self.made == 1:
            time.sleep(0.5)
        return torch.zeros(1), 0


def test_items_per_second_leaves_the_first_items_compile_time_out():
    rate, items = items_per_second(_CompilesOnFirstUse(), 10)
    assert len(items) == 10 and rate > 200  # with the 0.5 s first item timed: under 20 items/s


def test_demo_without_image_files_says_so_in_one_line_once(synthetic_tree, tmp_path, capsys):
    root = synthetic_tree(tmp_path / "audio-only", n_train=6, n_test=6, noise_seconds=0.5)
    assert run_demo(tmp_path / "demo", root=root, items=6) == 0
    out, err = capsys.readouterr()
    notes = [line for line in out.splitlines() if "image half (image/test_data.npy) is not written" in line]
    assert len(notes) == 1 and notes[0].startswith("  note: the image half")
    assert "--only mnist_images" in notes[0]
    assert "Warning" not in err and "demo.py" not in err  # no raw Python warning with its source line
