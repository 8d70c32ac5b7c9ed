"""avmnist export / verify / info / preview, end to end: the entry point in subprocesses, and ``main()``
in this process for the commands that follow a first export (each subprocess pays for importing torch)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avmnist_torch import AVMNISTAudioDataset
from _helpers import REPO, digest


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avmnist_torch.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    """``avmnist ARGS`` through ``main()`` in this process: the same exit code, stdout and stderr."""
    from avmnist_torch.cli import main

    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(["avmnist", *args], code, captured.out, captured.err)


@pytest.fixture(scope="module")
def tree(synthetic_tree) -> Path:
    return synthetic_tree(n_train=16, n_test=14, noise_seconds=0.5)


@pytest.mark.slow
def test_export_verify_info(tree, tmp_path, capsys):
    out = tmp_path / "mb"
    run = cli("export", "--root", str(tree), "--split", "test", "--scheme", "distorted", "--workers", "2",
              "--layout", "multibench", "--out", str(out))
    assert run.returncode == 0, run.stderr
    path = out / "audio" / "test_data.npy"
    assert run.stdout.strip() == str(path)
    assert "item/s" in run.stderr  # the progress bar shows a rate
    ds = AVMNISTAudioDataset(tree, split="test", scheme="distorted")
    assert digest(np.load(path)) == digest(np.stack([ds.spectrogram(i) for i in range(len(ds))]))
    assert np.array_equal(np.load(out / "test_labels.npy"), ds.labels)

    run = in_process(capsys, "verify", str(path), "--all", "--quiet")
    assert run.returncode == 0, run.stderr
    assert "regenerated 14" in run.stdout and "all regenerated rows match" in run.stdout

    data = np.load(path)
    data[5, 0, 0] ^= 1
    np.save(path, data)  # same header, one pixel changed
    run = in_process(capsys, "verify", str(path), "--rows", "4", "5", "--quiet")
    assert run.returncode == 1 and "MISMATCH in 1 of 2 rows: row 5 (1 px)" in run.stdout
    assert "DAMAGED:" in run.stdout and "sha256 is not the one its sidecar records" in run.stdout

    run = in_process(capsys, "export", "--root", str(tree), "--split", "test", "--scheme", "distorted",
                     "--seed", "3", "--layout", "multibench", "--out", str(out), "--quiet")
    assert run.returncode == 1
    assert f"{path} already exists and was made with other options: seed=0 (file) vs seed=3" in run.stderr
    assert "Traceback" not in run.stderr

    in_process(capsys, "export", "--root", str(tree), "--split", "train", "--scheme", "clean", "--quiet")
    run = in_process(capsys, "info", "--root", str(tree), "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["labels"]["test"]["items"] == 14
    assert sum(report["labels"]["train"]["per_digit"]) == 16
    assert report["recordings"]["test"]["per_digit"] == [15] * 10  # 3 speakers x takes 0-4
    assert len(report["noises"]["test_categories"]) == 5
    [exported] = report["exports"]
    assert exported["path"].endswith("train_data_augmented_clean.npy") and exported["rows"] == 16
    text = in_process(capsys, "info", "--root", str(tree)).stdout
    assert "test categories:" in text and "train_data_augmented_clean.npy: 16 rows, raw, seed 0" in text


def test_info_reports_what_is_missing(tmp_path, capsys):
    run = in_process(capsys, "info", "--root", str(tmp_path))
    assert run.returncode == 1
    assert "recordings: NOT FOUND" in run.stdout and f"{tmp_path}/recordings" in run.stdout


def test_preview_writes_a_png(tree, tmp_path, capsys):
    out = tmp_path / "grid.png"
    run = in_process(capsys, "preview", "--root", str(tree), "--out", str(out), "--random", "3")
    assert run.returncode == 0, run.stderr
    import matplotlib.image

    img = matplotlib.image.imread(out)
    assert img.shape[0] > 300 and img.shape[1] > 800  # two rows of six titled tiles
    assert img[..., :3].std() > 0.1  # not blank
