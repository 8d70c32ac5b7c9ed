"""issue 11's "done when": on a fresh machine, ``download``, ``export --layout multibench`` and
MultiBench's own loader make the whole AV-MNIST with no other source.

The sources are served by the loopback server of the download tests, in the real archives' shapes
and at the real URLs' paths: an FSDD with train and test takes, an ESC-50 with enough categories
for the held-out test noises, and MNIST's label and image files (small synthetic ones, with the
published checksums patched to theirs as the download tests do). As ``download`` installs them,
no label file lies beside the images, so the pairing is the one for MNIST's published files:
their content md5 and MNIST's label sequence.
"""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
import torch

from _download_helpers import (  # noqa: F401  (fixtures are used by name)
    ESC50_PATH,
    FSDD_PATH,
    MNIST_IMAGE_PATHS,
    MNIST_PATHS,
    _loopback_only,
    _wav_bytes,
    esc50,
    fsdd,
    server,
)
from _mnist_fixtures import synthetic_images
from avmnist_torch.cli import main
from avmnist_torch.dataset import AVMNISTAudioDataset
from avmnist_torch.image_pca import image_half
from avmnist_torch.paired import AVMNISTDataset
from avmnist_torch.sources import download as dl
from avmnist_torch.sources import mnist_idx
from avmnist_torch.sources.mnist_idx import idx1_label_bytes, idx3_image_bytes, labels_md5, read_idx_images
from _consumers import multibench_items

COUNTS = {"train": 60, "test": 30}
CATEGORIES = ("dog", "rain", "wind", "siren", "engine", "clock_tick", "sea_waves", "chirping_birds")


def _serve_the_sources(server, fsdd, esc50, monkeypatch):
    """Put every source on the server; returns the FSDD manifest to check the recordings by."""
    recordings = {f"{d}_{spk}_{take}.wav": _wav_bytes(400 + 37 * d + take, 8000, 100 * d + 10 * k + take)
                  for d in range(10) for k, spk in enumerate(("alice", "bob")) for take in range(7)}
    server.files[FSDD_PATH] = fsdd.archive(recordings)
    clips = {f"{1 + t % 5}-20{t}-A-{t}.wav": _wav_bytes(dl.ESC50_FRAMES, dl.ESC50_RATE, 50 + t)
             for t in range(len(CATEGORIES))}
    csv = "filename,fold,target,category,esc10,src_file,take\n" + "".join(
        f"{name},{1 + t % 5},{t},{CATEGORIES[t]},False,20{t},A\n" for t, name in enumerate(clips))
    server.files[ESC50_PATH] = esc50.archive(clips, csv.encode())
    rng = np.random.default_rng(0)
    for k, (split, n) in enumerate(COUNTS.items()):
        labels = rng.integers(0, 10, n)
        images = idx3_image_bytes(synthetic_images(n, k + 1))
        server.files[MNIST_PATHS[split][0]] = gzip.compress(idx1_label_bytes(labels), mtime=0)
        server.files[MNIST_IMAGE_PATHS[split][0]] = gzip.compress(images, mtime=0)
        # these stand for MNIST's published files: their md5s play the published ones
        monkeypatch.setitem(mnist_idx.MNIST_LABEL_COUNTS, split, n)
        monkeypatch.setitem(mnist_idx.MNIST_RAW_MD5, split, labels_md5(labels))
        monkeypatch.setitem(mnist_idx.MNIST_GZ_MD5, split, "0" * 32)
        monkeypatch.setitem(mnist_idx.MNIST_IMAGE_RAW_MD5, split, hashlib.md5(images).hexdigest())
        monkeypatch.setitem(mnist_idx.MNIST_IMAGE_GZ_MD5, split, "0" * 32)
    return {name: hashlib.sha256(data).hexdigest() for name, data in recordings.items()}, len(clips)


@pytest.mark.slow  # download, export and read back, end to end
def test_download_export_multibench_loader(tmp_path, server, fsdd, esc50, monkeypatch, capsys):
    manifest, n_clips = _serve_the_sources(server, fsdd, esc50, monkeypatch)
    root = tmp_path / "DATA"
    dl.download(root, sources=dl.SOURCES, mirror=server.url, progress=False, fsdd_manifest=manifest,
                esc50_expected=n_clips)
    assert not any(p.name.startswith(("train-labels", "t10k-labels")) for p in (root / "mnist").iterdir())

    out = tmp_path / "avmnist"
    assert main(["export", "--root", str(root), "--split", "all", "--scheme", "burst_noise",
                 "--layout", "multibench", "--out", str(out), "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err

    n_train, n_test = COUNTS["train"], COUNTS["test"]
    trains, valids, tests = multibench_items(str(out), n_train, n_test, 50)
    for split, items in (("train", trains + valids), ("test", tests)):
        images, audio, labels = (torch.from_numpy(np.stack(parts)) for parts in zip(*items))
        pixels = read_idx_images(mnist_idx.find_mnist_images(root, split))
        want = torch.from_numpy(image_half(pixels, cache_dir=None) / 255.0).reshape(-1, 1, 28, 28)
        assert torch.equal(images, want)
        ds = AVMNISTAudioDataset(root, split=split, scheme="burst_noise")
        assert torch.equal(audio, torch.stack([ds[i][0] for i in range(len(ds))]).double() / 255.0)
        assert labels.tolist() == ds.labels.tolist()
    paired = AVMNISTDataset(root, "test", "burst_noise")
    assert paired.pairing.startswith("MNIST's published images (md5)")
