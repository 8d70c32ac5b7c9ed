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

from _mnist_fixtures import synthetic_images, write_idx_images, write_idx_labels
from avmnist_torch.dataset import AVMNISTAudioDataset
from avmnist_torch.export import ImageHalfSkipped, export
from avmnist_torch.image_pca import image_half
from avmnist_torch.sources.mnist_idx import read_idx_images
from avmnist_torch.sources.synthetic import make_synthetic_tree

N_TRAIN, N_TEST = 48, 30
PREFIX = {"train": "train", "test": "t10k"}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """Audio sources, labels and MNIST-format images showing the labels' digits."""
    root = make_synthetic_tree(tmp_path_factory.mktemp("consumers") / "data", n_train=N_TRAIN, n_test=N_TEST,
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
    pixels = read_idx_images(root / "mnist" / f"{PREFIX[split]}-images-idx3-ubyte.gz")
    return audio, image_half(pixels, cache_dir=None), ds.labels


# --- the thesis' training code ---------------------------------------------------------------


def thesis_items(data_dir: str, split: str, scheme: str):
    """What the thesis' ``AVMNISTDataModule(data_dir=..., type=scheme)`` feeds its models, item by item.

    Restates wardvdnb/Multimodal-SSL-AVMNIST, ``AVMNIST_Experiments/utils/get_data.py``:
    ``BaseAVMNISTDataModule`` builds the paths by string concatenation (``data_dir`` ends in ``/``):
    ``{data_dir}image/{split}_data.npy``, ``{data_dir}audio/{split}_data_augmented_{type}.npy``,
    ``{data_dir}{split}_labels.npy``. ``BaseAVMNISTDataset`` loads the labels with ``np.load`` and
    ``.astype(int)``, the images with ``np.load(..., mmap_mode='r')``, and the audio through its
    ``MemmapWrapper``: ``np.memmap(path, mode='r', dtype='uint8', shape=(len(labels), 112, 112))``,
    at offset 0, because the notebook wrote the audio headerless. ``_process_image_audio`` (default
    options) reshapes the image row to 28x28 and divides by 255, divides the audio by 255 (then
    subtracts mean 0.0 and divides by std 1.0), and adds a leading channel axis to both;
    ``AVMNISTDataset.__getitem__`` returns ``(image, audio, label)`` with the label a long tensor.
    """
    labels = np.load(f"{data_dir}{split}_labels.npy").astype(int)
    images = np.load(f"{data_dir}image/{split}_data.npy", mmap_mode="r")
    audio = np.memmap(f"{data_dir}audio/{split}_data_augmented_{scheme}.npy", mode="r", dtype="uint8",
                      shape=(len(labels), 112, 112))
    for i in range(len(labels)):
        image = np.array(images[i]).reshape(28, 28) / 255.0
        sound = (np.array(audio[i]) / 255.0 - 0.0) / 1.0
        yield np.expand_dims(image, 0), np.expand_dims(sound, 0), int(labels[i])


@pytest.mark.parametrize("out_is_root", [False, True])
def test_thesis_datamodule_reads_a_notebook_layout_export(root, tmp_path, out_is_root):
    # the sources' own root (labels already there: checked, not rewritten), or a folder of its own
    base = tmp_path / ("copy" if out_is_root else "DATA")
    if out_is_root:
        shutil.copytree(root, base)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageHalfSkipped)
        paths = export(base, "all", "burst_noise", out=None if out_is_root else base, progress=False,
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
        [path] = export(root, "test", "clean", out=tmp_path, format="npy", progress=False)[:1]
    shape = (N_TEST, 112, 112)
    read = np.memmap(path, mode="r", dtype="uint8", shape=shape)
    assert not np.array_equal(read, np.load(path))
    assert np.array_equal(np.asarray(read).reshape(-1)[128:], np.load(path).reshape(-1)[:-128])


# --- MultiBench ------------------------------------------------------------------------------


def multibench_items(data_dir: str, n_train: int, n_test: int, valid_start: int):
    """What MultiBench's ``get_dataloader(data_dir)`` yields with its default options: (trains, valids, tests).

    Restates pliang279/MultiBench, ``datasets/avmnist/get_data.py``, ``get_dataloader``: it reads
    ``{dir}/image/{split}_data.npy``, ``{dir}/audio/{split}_data.npy`` and ``{dir}/{split}_labels.npy``
    with ``np.load`` (so the audio must be a real .npy file); divides the images by 255 in place (so
    they must be floating point) and the audio by 255; reshapes the images to ``(N, 28, 28)``; adds a
    channel axis at 1 to both; casts the labels with ``astype(int)``; and serves ``[image, audio,
    label]`` per item, train rows ``[0, 55000)`` for training and ``[55000, 60000)`` for validation
    (here ``valid_start`` and the split sizes are parameters: a 60,000-row fixture would take minutes).
    """
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = np.load(f"{data_dir}/image/{split}_data.npy")
        audio = np.load(f"{data_dir}/audio/{split}_data.npy")
        labels = np.load(f"{data_dir}/{split}_labels.npy").astype(int)
        images /= 255.0
        audio = audio / 255.0
        images = np.expand_dims(images.reshape(n, 28, 28), 1)
        audio = np.expand_dims(audio, 1)
        out[split] = [[images[i], audio[i], labels[i]] for i in range(n)]
    return out["train"][:valid_start], out["train"][valid_start:], out["test"]


def test_multibench_loader_reads_a_multibench_layout_export(root, tmp_path):
    out = tmp_path / "mb"
    paths = export(root, "all", "burst_noise", out=out, layout="multibench", progress=False)
    assert paths == [out / "audio" / "train_data.npy", out / "image" / "train_data.npy",
                     out / "audio" / "test_data.npy", out / "image" / "test_data.npy"]
    trains, valids, tests = multibench_items(str(out), N_TRAIN, N_TEST, 40)
    for split, items in (("train", trains + valids), ("test", tests)):
        audio, image, labels = _package_items(root, split, "burst_noise")
        assert np.array_equal(np.stack([a for _, a, _ in items]), audio[:, None] / 255.0)
        assert np.array_equal(np.stack([i for i, _, _ in items]), image.reshape(-1, 1, 28, 28) / 255.0)
        assert [int(y) for _, _, y in items] == labels.tolist()
    assert [int(y) for _, _, y in valids] == _package_items(root, "train", "burst_noise")[2][40:].tolist()
