"""The real consumers of an export, restated in our own code, read exactly the package's items.

Each reader below restates what one project's loader does with the files (named with its source);
run on a fresh export of its layout, it must yield the package's items: audio bytes, image half
and labels equal. Restated rather than imported: neither project is a package we can install, and
what matters is the exact reading they do (offsets, dtypes, scaling, axes).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from _consumers import multibench_items, thesis_items
from _mnist_fixtures import synthetic_images, write_idx_images, write_idx_labels
from avmnist_torch.dataset import AVMNISTAudioDataset
from avmnist_torch.export import ImageHalfSkipped, export
from avmnist_torch.image_pca import image_half
from avmnist_torch.sources.mnist_idx import read_idx_images

N_TRAIN, N_TEST = 48, 30
PREFIX = {"train": "train", "test": "t10k"}


@pytest.fixture(scope="module")
def root(synthetic_tree, tmp_path_factory) -> Path:
    """Audio sources, labels and MNIST-format images showing the labels' digits."""
    root = synthetic_tree(tmp_path_factory.mktemp("consumers") / "data", n_train=N_TRAIN, n_test=N_TEST,
                               noise_seconds=1.0)
    folder = root / "mnist"
    folder.mkdir()
    for seed, split in enumerate(("train", "test")):
        labels = np.load(root / "avmnist" / f"{split}_labels.npy")
        write_idx_images(folder / f"{PREFIX[split]}-images-idx3-ubyte.gz", synthetic_images(len(labels), seed + 1))
        write_idx_labels(folder / f"{PREFIX[split]}-labels-idx1-ubyte.gz", labels)
    return root


def _package_items(root: Path, split: str, scheme: str):
    ds = AVMNISTAudioDataset(root, split=split, scheme=scheme)
    audio = ds.spectrograms(range(len(ds)))
    pixels = read_idx_images(root / "mnist" / f"{PREFIX[split]}-images-idx3-ubyte.gz", check=False)  # synthetic
    return audio, image_half(pixels, cache_dir=None), ds.labels


# --- the thesis' training code ---------------------------------------------------------------




@pytest.mark.parametrize("out_is_root", [False, True])
@pytest.mark.slow
def test_thesis_datamodule_reads_a_notebook_layout_export(root, tmp_path, out_is_root):
    # the sources' own root (labels already there: checked, not rewritten), or a folder of its own
    base = tmp_path / ("copy" if out_is_root else "DATA")
    if out_is_root:
        shutil.copytree(root, base)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageHalfSkipped)
        paths = export(base, "all", "burst_noise", out=None if out_is_root else base, progress=False, check_mnist=False,
                       **({} if out_is_root else {"recordings": root / "recordings",
                                                  "noises": root / "noise_recordings", "labels": root,
                                                  "images": root / "mnist"}))
    assert base / "avmnist" / "image" / "test_data.npy" in paths
    for split in ("train", "test"):
        audio, image, labels = _package_items(root, split, "burst_noise")
        got = list(thesis_items(f"{base}/avmnist/", split, "burst_noise"))
        assert len(got) == len(labels)
        assert np.array_equal(np.stack([a for _, a, _ in got]), audio[:, None] / 255.0)
        assert np.array_equal(np.stack([i for i, _, _ in got]), image.reshape(-1, 1, 28, 28) / 255.0)
        assert [y for _, _, y in got] == labels.tolist()


def test_thesis_reader_on_a_npy_file_reads_shifted_rows(root, tmp_path):
    """Why the notebook layout is raw: a .npy header shifts every item the thesis' code reads."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImageHalfSkipped)
        [path] = export(root, "test", "clean", out=tmp_path, format="npy", progress=False, check_mnist=False)[:1]
    shape = (N_TEST, 112, 112)
    read = np.memmap(path, mode="r", dtype="uint8", shape=shape)
    assert not np.array_equal(read, np.load(path))
    assert np.array_equal(np.asarray(read).reshape(-1)[128:], np.load(path).reshape(-1)[:-128])


# --- MultiBench ------------------------------------------------------------------------------




@pytest.mark.slow  # a whole export of both splits, read back
def test_multibench_loader_reads_a_multibench_layout_export(root, tmp_path):
    out = tmp_path / "mb"
    paths = export(root, "all", "burst_noise", out=out, layout="multibench", progress=False, check_mnist=False)
    assert paths == [out / "audio" / "train_data.npy", out / "image" / "train_data.npy",
                     out / "audio" / "test_data.npy", out / "image" / "test_data.npy"]
    trains, valids, tests = multibench_items(str(out), N_TRAIN, N_TEST, 40)
    for split, items in (("train", trains + valids), ("test", tests)):
        audio, image, labels = _package_items(root, split, "burst_noise")
        assert np.array_equal(np.stack([a for _, a, _ in items]), audio[:, None] / 255.0)
        assert np.array_equal(np.stack([i for i, _, _ in items]), image.reshape(-1, 1, 28, 28) / 255.0)
        assert [int(y) for _, _, y in items] == labels.tolist()
    assert [int(y) for _, _, y in valids] == _package_items(root, "train", "burst_noise")[2][40:].tolist()
