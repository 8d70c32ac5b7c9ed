"""``export --layout multibench`` writes the image half, and MultiBench's own loader reads the folder.

MNIST's image files are synthetic here (the real train images are not in ../shared/data), laid out
where ``avmnist download`` puts them: ``ROOT/mnist/{train,t10k}-images-idx3-ubyte.gz`` with
their idx1 label files beside them, which is what the pairing check reads. Being synthetic under
MNIST's names, they are read with ``check_mnist=False`` (``check=False``).
"""

from __future__ import annotations

import shutil
import stat
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from _mnist_fixtures import synthetic_images, synthetic_pca25, write_idx_images, write_idx_labels
from avmnist_torch.cli import main
from avmnist_torch.common import ParameterError, SourceError, StorageError
from avmnist_torch.dataset import AVMNISTAudioDataset
from avmnist_torch.export import ImageHalfSkipped, export
from avmnist_torch.image_pca import image_half, write_image_half
from avmnist_torch.paired import AVMNISTDataset, check_pairing
from avmnist_torch.sources.mnist_idx import read_idx_images, read_idx_labels
from avmnist_torch.sources.synthetic import make_synthetic_tree, synthetic_mnist_images, write_synthetic_mnist

N_TRAIN, N_TEST = 48, 30
PREFIX = {"train": "train", "test": "t10k"}


def _add_mnist(root: Path, folder: Path = None, *, labels_of=None, prefix: str = "") -> Path:
    """MNIST-format images (and their labels) for the tree's labels, in ``root/mnist`` or `folder`.

    `prefix` goes before MNIST's names (``synthetic-t10k-images-idx3-ubyte.gz``): files of one's own,
    which no md5 check applies to.
    """
    folder = folder if folder is not None else root / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for seed, split in enumerate(("train", "test")):
        labels = np.load(root / "avmnist" / f"{split}_labels.npy")
        write_idx_images(folder / f"{prefix}{PREFIX[split]}-images-idx3-ubyte.gz",
                         synthetic_images(len(labels), seed + 1))
        beside = labels if labels_of is None else labels_of(split, labels)
        write_idx_labels(folder / f"{prefix}{PREFIX[split]}-labels-idx1-ubyte.gz", beside)
    return folder


@pytest.fixture(scope="module")
def tree(synthetic_tree, tmp_path_factory) -> Path:
    """Audio sources and labels, no MNIST images (each test adds them where it needs them)."""
    return synthetic_tree(tmp_path_factory.mktemp("image-half"), n_train=N_TRAIN, n_test=N_TEST,
                               noise_seconds=1.0)


@pytest.fixture(scope="module")
def tree_with_mnist(tmp_path_factory, tree) -> Path:
    root = tmp_path_factory.mktemp("image-half-mnist") / "data"
    shutil.copytree(tree, root)
    _add_mnist(root)
    return root


def _pixels(root: Path, split: str) -> np.ndarray:
    return read_idx_images(root / "mnist" / f"{PREFIX[split]}-images-idx3-ubyte.gz", check=False)


def test_notebook_layout_gets_labels_and_image_half_where_the_notebook_reads_them(tree_with_mnist, tmp_path):
    out = tmp_path / "DATA"
    paths = export(tree_with_mnist, "test", "burst_noise", out=out, progress=False, check_mnist=False)
    base = out / "avmnist"
    assert paths == [base / "audio" / "test_data_augmented_burst_noise.npy", base / "image" / "test_data.npy"]
    assert np.array_equal(np.load(base / "image" / "test_data.npy"),
                          image_half(_pixels(tree_with_mnist, "test"), cache_dir=None))
    labels = np.load(base / "test_labels.npy")
    source = np.load(tree_with_mnist / "avmnist" / "test_labels.npy")
    assert labels.dtype == np.int64 and labels.tolist() == source.tolist()
    # other labels already there are never replaced
    np.save(base / "test_labels.npy", labels[::-1])
    (base / "audio" / "test_data_augmented_burst_noise.npy").unlink()
    with pytest.raises(StorageError, match=r"test_labels\.npy: holds other labels than this export's test split"):
        export(tree_with_mnist, "test", "burst_noise", out=out, progress=False, check_mnist=False)


def test_rerun_leaves_an_identical_image_file_alone(tree_with_mnist, tmp_path):
    out = tmp_path / "mb"
    export(tree_with_mnist, "test", "burst_noise", out=out, layout="multibench", progress=False, check_mnist=False)
    image_file = out / "image" / "test_data.npy"
    before = image_file.stat()
    again = export(tree_with_mnist, "test", "burst_noise", out=out, layout="multibench", progress=False,
                   check_mnist=False)
    assert again == [out / "audio" / "test_data.npy", image_file]
    after = image_file.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_different_image_file_already_there_is_kept_with_a_warning(tree_with_mnist, tmp_path):
    # e.g. the user's copy of the published image half, put in the MultiBench folder on purpose
    out = tmp_path / "mb"
    (out / "image").mkdir(parents=True)
    theirs = np.random.default_rng(5).normal(size=(N_TEST, 784))
    np.save(out / "image" / "test_data.npy", theirs)
    with pytest.warns(ImageHalfSkipped, match=r"test_data\.npy: kept as it is, not replaced"):
        paths = export(tree_with_mnist, "test", "burst_noise", out=out, layout="multibench", progress=False,
                       check_mnist=False)
    assert paths == [out / "audio" / "test_data.npy"]
    assert np.array_equal(np.load(out / "image" / "test_data.npy"), theirs)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_image_file_honours_the_umask_like_the_audio_file(tree_with_mnist, tmp_path):
    out = tmp_path / "mb"
    export(tree_with_mnist, "test", "burst_noise", out=out, layout="multibench", progress=False, check_mnist=False)
    audio_mode = stat.S_IMODE((out / "audio" / "test_data.npy").stat().st_mode)
    image_mode = stat.S_IMODE((out / "image" / "test_data.npy").stat().st_mode)
    assert image_mode == audio_mode and image_mode & stat.S_IRGRP  # mkstemp's 0600 would fail both


def test_mismatched_pairing_is_refused_before_anything_is_written(tree, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tree, root)
    # MNIST's files whose labels are the tree's labels shifted by one: image i shows another digit
    _add_mnist(root, labels_of=lambda split, y: (y + 1) % 10)
    out = tmp_path / "mb"
    with pytest.raises(SourceError, match=r"t10k-labels-idx1-ubyte\.gz.*differ from the AV-MNIST test labels"):
        export(root, "test", "burst_noise", out=out, layout="multibench", progress=False, check_mnist=False)
    assert not out.exists()  # no audio rendered, no labels, nothing under image/


def test_images_of_the_other_split_are_refused(tree_with_mnist, tmp_path):
    out = tmp_path / "mb"
    train_images = tree_with_mnist / "mnist" / "train-images-idx3-ubyte.gz"
    with pytest.raises(SourceError, match=f"{N_TRAIN} images but {N_TEST} AV-MNIST test labels"):
        export(tree_with_mnist, "test", "burst_noise", out=out, layout="multibench", images=train_images,
               progress=False, check_mnist=False)
    assert not out.exists()


def test_images_argument_finds_a_folder_elsewhere(tree, tmp_path):
    elsewhere = _add_mnist(tree, tmp_path / "my-mnist")
    assert not (tree / "mnist").exists()
    out = tmp_path / "mb"
    paths = export(tree, "test", "burst_noise", out=out, layout="multibench", images=elsewhere, progress=False,
                   check_mnist=False)
    assert paths[-1] == out / "image" / "test_data.npy"
    want = image_half(read_idx_images(elsewhere / "t10k-images-idx3-ubyte.gz", check=False), cache_dir=None)
    assert np.array_equal(np.load(paths[-1]), want)


def test_images_given_but_not_there_is_an_error(tree, tmp_path):
    with pytest.raises(SourceError, match="no MNIST test image file under"):
        export(tree, "test", "burst_noise", out=tmp_path / "mb", layout="multibench", images=tmp_path / "empty",
               progress=False, check_mnist=False)
    assert not (tmp_path / "mb").exists()


def test_images_with_out_naming_one_file_is_a_parameter_error(tree_with_mnist, tmp_path):
    with pytest.raises(ParameterError, match="names one .npy file, which gets no image half"):
        export(tree_with_mnist, "test", "burst_noise", out=tmp_path / "x.npy", images=tree_with_mnist,
               progress=False, check_mnist=False)
    with pytest.raises(ParameterError, match="one file, but 2 splits"):
        export(tree_with_mnist, "all", "burst_noise", out=tmp_path / "mb", layout="multibench",
               images=tree_with_mnist / "mnist" / "t10k-images-idx3-ubyte.gz", progress=False, check_mnist=False)


def test_missing_images_warn_and_write_the_audio_then_a_rerun_adds_them(tree, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tree, root)
    out = tmp_path / "mb"
    with pytest.warns(ImageHalfSkipped) as caught:
        paths = export(root, "all", "burst_noise", out=out, layout="multibench", progress=False, check_mnist=False)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "\n" not in message and "no MNIST train/test image file under" in message
    assert f"avmnist download --root {root} --only mnist_images" in message and "--images PATH" in message
    assert paths == [out / "audio" / "train_data.npy", out / "audio" / "test_data.npy"]
    assert (out / "train_labels.npy").is_file() and not (out / "image").exists()

    audio = (out / "audio" / "test_data.npy").stat()
    _add_mnist(root)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageHalfSkipped)
        paths = export(root, "all", "burst_noise", out=out, layout="multibench", progress=False, check_mnist=False)
    assert out / "image" / "train_data.npy" in paths and out / "image" / "test_data.npy" in paths
    assert (out / "audio" / "test_data.npy").stat().st_mtime_ns == audio.st_mtime_ns  # not rendered again


# --- the command line ------------------------------------------------------------------------


def test_cli_images_option(tree, tmp_path, capsys):
    # images of one's own go under a name of their own (no md5 check), their labels beside them named alike
    elsewhere = _add_mnist(tree, tmp_path / "downloads", prefix="synthetic-")
    out = tmp_path / "mb"
    status = main(["export", "--root", str(tree), "--split", "test", "--scheme", "burst_noise", "--layout",
                   "multibench", "--out", str(out), "--quiet", "--images",
                   str(elsewhere / "synthetic-t10k-images-idx3-ubyte.gz")])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.out.split() == [str(out / "audio" / "test_data.npy"), str(out / "image" / "test_data.npy")]
    want = image_half(read_idx_images(elsewhere / "synthetic-t10k-images-idx3-ubyte.gz"), cache_dir=None)
    assert np.array_equal(np.load(out / "image" / "test_data.npy"), want)


def test_cli_missing_images_is_one_warning_line(tree, tmp_path, capsys):
    out = tmp_path / "mb"
    status = main(["export", "--root", str(tree), "--split", "test", "--scheme", "burst_noise", "--layout",
                   "multibench", "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    warned = [line for line in captured.err.splitlines() if "image half" in line]
    assert len(warned) == 1 and warned[0].startswith("avmnist export: warning: the image half")
    assert "--only mnist_images" in warned[0] and captured.out.split() == [str(out / "audio" / "test_data.npy")]


def test_cli_images_with_out_naming_one_file_is_a_usage_error(tree, tmp_path, capsys):
    status = main(["export", "--root", str(tree), "--split", "test", "--out", str(tmp_path / "x.npy"), "--quiet",
                   "--images", str(tmp_path)])
    assert status == 2 and "gets no image half" in capsys.readouterr().err


# --- the synthetic tree's MNIST files --------------------------------------------------------


def test_synthetic_tree_mnist_images_pair_with_its_labels(tmp_path):
    plain = make_synthetic_tree(tmp_path / "plain", n_train=20, n_test=10, noise_seconds=0.5)
    root = make_synthetic_tree(tmp_path / "with", n_train=20, n_test=10, noise_seconds=0.5, mnist_images=True)
    for path in plain.rglob("*"):  # the rest of the tree does not change with the option
        if path.is_file():
            assert (root / path.relative_to(plain)).read_bytes() == path.read_bytes(), path
    for split in ("train", "test"):
        labels = np.load(root / "avmnist" / f"{split}_labels.npy")
        image_file = root / "mnist" / f"{PREFIX[split]}-images-idx3-ubyte.gz"
        pixels = read_idx_images(image_file, check=False)
        assert pixels.shape == (len(labels), 28, 28)
        assert np.array_equal(read_idx_labels(root / "mnist" / f"{PREFIX[split]}-labels-idx1-ubyte.gz", check=False),
                              labels)
        assert "labels beside the images" in check_pairing(image_file, pixels, labels, split, check_mnist=False)
    again = tmp_path / "again"
    shutil.copytree(plain, again)
    write_synthetic_mnist(again)
    assert (again / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes() == \
        (root / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes()


def test_synthetic_mnist_images_show_their_digit():
    # Made-up handwriting, but each image must look like its own digit: a nearest-class-mean
    # classifier fitted on one draw recognises the digits of another draw.
    fit_labels = np.random.default_rng(0).integers(0, 10, 600)
    test_labels = np.random.default_rng(1).integers(0, 10, 200)
    fit = synthetic_mnist_images(fit_labels, seed=0).reshape(-1, 784).astype(np.float64)
    test = synthetic_mnist_images(test_labels, seed=9).reshape(-1, 784).astype(np.float64)
    means = np.stack([fit[fit_labels == d].mean(axis=0) for d in range(10)])
    predicted = np.argmin(((test[:, None, :] - means[None]) ** 2).sum(axis=-1), axis=1)
    assert (predicted == test_labels).mean() > 0.8
    assert test.min() == 0 and test.max() <= 255 and (test == 0).mean() > 0.5  # black background, white ink


# --- real shapes on the image side -----------------------------------------------------------


@pytest.mark.slow
def test_real_shaped_image_half_through_the_loaders_image_steps(tmp_path):
    """60,000 train and 10,000 test rows: the image file MultiBench reads at its published size."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    out = tmp_path / "mb"
    for split, n, seed in (("train", 60_000, 1), ("test", 10_000, 2)):
        pixels = synthetic_images(n, seed)
        labels = np.random.default_rng(seed).integers(0, 10, n)
        image_file = write_idx_images(folder / f"{PREFIX[split]}-images-idx3-ubyte.gz", pixels)
        write_idx_labels(folder / f"{PREFIX[split]}-labels-idx1-ubyte.gz", labels)
        # what export does for a split: check the pairing, then write the image half
        check_pairing(image_file, read_idx_images(image_file, check=False), labels, split, check_mnist=False)
        # (the cache beside it is the image-PCA tests' subject: not written again here)
        write_image_half(out / "image" / f"{split}_data.npy", pixels, cache_dir=None)
        # MultiBench's get_dataloader, image steps: np.load, /= 255.0 in place, reshape (N, 28, 28)
        x = np.load(str(out) + f"/image/{split}_data.npy")
        x /= 255.0
        x = x.reshape(n, 28, 28)
        want = (synthetic_pca25(n, seed) / 255.0).reshape(n, 28, 28)  # pca25 of the same images, made once
        assert x.dtype == np.float64 and np.array_equal(x, want)
        assert np.abs(x.mean(axis=0)).max() < 1e-9  # the recipe's image is centred, mean not added back
