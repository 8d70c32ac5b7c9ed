"""AVMNISTDataset: image and audio of the same MNIST item, pairing checks, image modes, workers."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from _mnist_fixtures import synthetic_images, write_idx_images, write_idx_labels
from avmnist_torch.common import ParameterError, SourceError
from avmnist_torch.dataset import AVMNISTAudioDataset
from avmnist_torch.image_pca import RECIPE, image_half, pca25
from avmnist_torch.paired import AVMNISTDataset
from _helpers import SHARED_DATA, digest

AUDIO_OPTIONS = dict(renderer="matplotlib")
#: The image files of these trees are synthetic, under MNIST's names: not checked against MNIST's md5s.
OPTIONS = dict(AUDIO_OPTIONS, check_mnist=False)


@pytest.fixture(scope="module")
def root(synthetic_tree, tmp_path_factory) -> Path:
    """A synthetic data root with MNIST-like image files (and their labels) in root/mnist/."""
    
    root = synthetic_tree(tmp_path_factory.mktemp("paired"), n_train=48, n_test=24, noise_seconds=1.0)
    (root / "mnist").mkdir()
    for split, prefix, seed in (("train", "train", 1), ("test", "t10k", 2)):
        labels = np.load(root / "avmnist" / f"{split}_labels.npy")
        write_idx_images(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", synthetic_images(len(labels), seed))
        write_idx_labels(root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


@pytest.fixture()
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def _images(root: Path, split: str = "test") -> np.ndarray:
    from avmnist_torch.sources.mnist_idx import read_idx_images

    prefix = "t10k" if split == "test" else "train"
    return read_idx_images(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", check=False)


def test_item_pairs_mnist_image_with_the_audio_datasets_item(root, cache):
    ds = AVMNISTDataset(root, "test", "burst_noise", seed=3, image_cache=cache, **OPTIONS)
    audio_only = AVMNISTAudioDataset(root, "test", "burst_noise", seed=3, **AUDIO_OPTIONS)
    labels = np.load(root / "avmnist" / "test_labels.npy")
    assert len(ds) == len(labels) == 24
    expected = image_half(_images(root), cache_dir=None)
    for i in (0, 7, 23, -1):
        image, audio, label = ds[i]
        assert isinstance(image, torch.Tensor) and image.dtype == torch.float32 and image.shape == (1, 28, 28)
        assert audio.dtype == torch.uint8 and audio.shape == (1, 112, 112)
        ref_audio, ref_label = audio_only[i]
        assert torch.equal(audio, ref_audio) and label == ref_label == labels[i]
        np.testing.assert_array_equal(image.numpy().ravel(), expected[i].astype(np.float32))
    with pytest.raises(IndexError, match="out of range"):
        ds[24]


def test_raw_mode_serves_mnist_pixels(root):
    ds = AVMNISTDataset(root, "train", "clean", image="raw", **OPTIONS)
    pixels = _images(root, "train")
    image, _, label = ds[5]
    assert image.dtype == torch.uint8 and image.shape == (1, 28, 28)
    assert torch.equal(image[0], torch.from_numpy(pixels[5].copy()))
    assert ds.describe(5)["image"]["mode"] == "raw"



def test_transforms(root, cache):
    ds = AVMNISTDataset(root, "test", "clean", image_cache=cache, transform_image=lambda x: x / 255,
                        transform_audio=lambda a: a.float() / 255, target_transform=lambda y: y + 100, **OPTIONS)
    plain = AVMNISTDataset(root, "test", "clean", image_cache=cache, **OPTIONS)
    image, audio, label = ds[2]
    p_image, p_audio, p_label = plain[2]
    assert torch.equal(image, p_image / 255) and torch.equal(audio, p_audio.float() / 255) and label == p_label + 100
    with pytest.raises(TypeError) as refused:
        AVMNISTDataset(root, "test", "clean", transform=lambda x: x, **OPTIONS)
    assert str(refused.value) == ("AVMNISTDataset() takes no transform=: each part has its own, transform_image= "
                                  "(the image), transform_audio= (the spectrogram) and target_transform= (the label)")


def test_describe_says_where_both_halves_come_from(root, cache):
    ds = AVMNISTDataset(root, "test", "burst_noise", image_cache=cache, **OPTIONS)
    info = ds.describe(4)
    assert info["label"] == ds[4][2] and info["index"] == 4
    assert info["image"]["file"].endswith("mnist/t10k-images-idx3-ubyte.gz") and info["image"]["row"] == 4
    assert info["image"]["recipe"] == RECIPE and "t10k-labels-idx1-ubyte.gz" in info["image"]["pairing"]
    assert info["audio"] == AVMNISTAudioDataset(root, "test", "burst_noise", **AUDIO_OPTIONS).describe(4)
    assert "Image: pca25 (" in repr(ds) and repr(ds).startswith("Dataset AVMNISTDataset\n    Number of datapoints: 24")


@pytest.mark.parametrize("mode", ["pca25", "raw"])
def test_same_bytes_with_0_and_2_workers(root, cache, mode):
    ds = AVMNISTDataset(root, "test", "extreme_noise", image=mode, image_cache=cache, **OPTIONS)
    direct = [(digest(x.numpy()), digest(a.numpy()), y) for x, a, y in (ds[i] for i in range(len(ds)))]
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(ds, batch_size=5, num_workers=workers)
        batched = [(digest(x.numpy()), digest(a.numpy()), int(y))
                   for xb, ab, yb in loader for x, a, y in zip(xb, ab, yb)]
        assert batched == direct, f"num_workers={workers}"


# ----------------------------------------------------------------------------
# a user's copy of the published image files


def _multibench_folder(tmp_path: Path, root: Path, split: str = "test", labels=True) -> Path:
    out = tmp_path / "avmnist"
    (out / "image").mkdir(parents=True)
    stored = pca25(_images(root, split))
    np.save(out / "image" / f"{split}_data.npy", stored)
    if labels:
        np.save(out / f"{split}_labels.npy", np.load(root / "avmnist" / f"{split}_labels.npy"))
    return out


def test_path_serves_a_users_file_as_stored(tmp_path, root):
    folder = _multibench_folder(tmp_path, root)
    stored = np.load(folder / "image" / "test_data.npy")
    for given in (folder, folder / "image", folder / "image" / "test_data.npy"):
        ds = AVMNISTDataset(root, "test", "clean", image_file=given, **OPTIONS)
        image, _, _ = ds[9]
        assert image.dtype == torch.float32
        np.testing.assert_array_equal(image.numpy().ravel(), stored[9].astype(np.float32))
    assert "test_labels.npy" in ds.describe(0)["image"]["pairing"]


def test_path_pairing_checks(tmp_path, root):
    folder = _multibench_folder(tmp_path, root)
    wrong = np.load(folder / "test_labels.npy")
    wrong[6] = (wrong[6] + 1) % 10
    np.save(folder / "test_labels.npy", wrong)
    with pytest.raises(SourceError, match="first at item 6"):
        AVMNISTDataset(root, "test", "clean", image_file=folder, **OPTIONS)
    (folder / "test_labels.npy").unlink()
    ds = AVMNISTDataset(root, "test", "clean", image_file=folder, **OPTIONS)
    assert ds.describe(0)["image"]["pairing"].startswith("by count only")
    with pytest.raises(SourceError, match="24 images but 48 AV-MNIST train labels"):  # the test file given for train
        AVMNISTDataset(root, "train", "clean", image_file=folder / "image" / "test_data.npy", **OPTIONS)
    stored = folder / "image" / "test_data.npy"
    whole = stored.read_bytes()
    stored.write_bytes(whole[:-8])  # the last row cut short: refused when made, not "changed" mid-epoch
    with pytest.raises(SourceError, match=rf"{stored}: not a readable .npy image file .*{len(whole) - 8} bytes, but "
                                          rf"it should hold {len(whole)}: cut short"):
        AVMNISTDataset(root, "test", "clean", image_file=folder, **OPTIONS)
    np.save(folder / "image" / "test_data.npy", np.zeros((24, 30)))
    with pytest.raises(SourceError, match=r"shape \(24, 30\)"):
        AVMNISTDataset(root, "test", "clean", image_file=folder, **OPTIONS)
    with pytest.raises(SourceError, match="no train image file.*image/train_data.npy"):
        AVMNISTDataset(root, "train", "clean", image_file=folder, **OPTIONS)


# ----------------------------------------------------------------------------
# pairing of MNIST's files with the AV-MNIST labels


def _copy_root(tmp_path: Path, root: Path) -> Path:
    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    return copy


def test_labels_beside_the_images_must_equal_the_avmnist_labels(tmp_path, root):
    copy = _copy_root(tmp_path, root)
    labels = np.load(copy / "avmnist" / "test_labels.npy")
    shifted = np.roll(labels, 1)
    write_idx_labels(copy / "mnist" / "t10k-labels-idx1-ubyte.gz", shifted)
    first = int(np.flatnonzero(shifted != labels)[0])
    with pytest.raises(SourceError, match=f"t10k-labels-idx1-ubyte.gz: the labels of the images.*first at item {first}"):
        AVMNISTDataset(copy, "test", "clean", image="raw", **OPTIONS)


def test_image_count_must_equal_label_count(tmp_path, root):
    copy = _copy_root(tmp_path, root)
    write_idx_images(copy / "mnist" / "t10k-images-idx3-ubyte.gz", synthetic_images(30))
    with pytest.raises(SourceError, match="30 images but 24 AV-MNIST test labels"):
        AVMNISTDataset(copy, "test", "clean", image="raw", **OPTIONS)


def test_unknown_images_without_labels_are_refused(tmp_path, root):
    copy = _copy_root(tmp_path, root)
    (copy / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(SourceError, match="not MNIST's published test images and no label file"):
        AVMNISTDataset(copy, "test", "clean", image="raw", **OPTIONS)


def test_missing_images_and_bad_modes(tmp_path, root):
    copy = _copy_root(tmp_path, root)
    shutil.rmtree(copy / "mnist")
    with pytest.raises(SourceError) as err:
        AVMNISTDataset(copy, "test", "clean", image="pca25", **OPTIONS)
    # one line: what needs the files, which file, where it was looked for, the command that fetches it
    assert str(err.value) == (
        f"image='pca25' makes the image half from MNIST's test images: no MNIST test image file under {copy}: "
        f"looked for t10k-images-idx3-ubyte[.gz] in {copy / 'mnist'}, {copy / 'MNIST' / 'raw'}, {copy / 'raw'}, "
        f"{copy}; get it with 'avmnist download --root {copy} --only mnist_images' (download=True in Python), "
        f"or put MNIST's t10k-images-idx3-ubyte.gz in {copy / 'mnist'}")
    with pytest.raises(ParameterError, match="unknown image mode 'pca-25'"):
        AVMNISTDataset(copy, "test", "clean", image="pca-25", **OPTIONS)  # a typo is a typo, not a path
    with pytest.raises(SourceError, match="no test image file"):
        AVMNISTDataset(copy, "test", "clean", image_file=copy / "nowhere", **OPTIONS)
    with pytest.raises(ParameterError, match="split"):
        AVMNISTDataset(root, "valid", "clean", **OPTIONS)
    with pytest.raises(ParameterError, match="unknown image mode 3"):
        AVMNISTDataset(root, "test", "clean", image=3, **OPTIONS)
    # images= points at the file directly, wherever it is.
    ds = AVMNISTDataset(copy, "test", "clean", image="raw",
                        images=root / "mnist" / "t10k-images-idx3-ubyte.gz", **OPTIONS)
    assert len(ds) == 24


@pytest.mark.realdata
@pytest.mark.slow  # the image half of MNIST's 10,000 real test images, and their pairing checks
def test_real_mnist_test_images_pair_with_mnist_labels(tmp_path, cache):
    images = SHARED_DATA / "mnist" / "t10k-images-idx3-ubyte.gz"
    if not images.is_file():
        pytest.skip(f"real MNIST test images not found at {images} (../shared/data is absent in a user's clone)")
    sources = dict(recordings=SHARED_DATA / "fsdd" / "recordings", noises=SHARED_DATA / "esc50", **AUDIO_OPTIONS)
    ds = AVMNISTDataset(None, "test", "clean", images=images, labels=SHARED_DATA / "mnist" / "test_labels.npy",
                        image_cache=cache, **sources)
    assert len(ds) == 10_000 and ds.n_components == 3
    assert ds.describe(0)["image"]["pairing"].startswith("MNIST's published images")
    image, audio, label = ds[0]
    assert label == 7 and image.shape == (1, 28, 28)  # MNIST's first test digit is a 7
    wrong = np.load(SHARED_DATA / "mnist" / "test_labels.npy").copy()
    wrong[[0, 1]] = wrong[[1, 0]]
    with pytest.raises(SourceError, match="not MNIST's test label sequence"):
        AVMNISTDataset(None, "test", "clean", images=images, labels=wrong, image="raw", **sources)


def test_download_fetches_the_image_files_only_when_the_image_half_needs_them(tmp_path, root, monkeypatch):
    """download=True asks for MNIST's image files for "pca25"/"raw", and only the audio sources for a user's file."""
    import avmnist_torch.generator as generator
    from avmnist_torch.sources.download import AUDIO_SOURCES, SOURCES

    asked = []
    monkeypatch.setattr(generator, "download_sources", lambda where, sources: asked.append((Path(where), tuple(sources))))
    AVMNISTDataset(root, "test", "clean", image="raw", download=True, **OPTIONS)
    assert asked[-1] == (root, tuple(SOURCES)) and "mnist_images" in SOURCES
    folder = _multibench_folder(tmp_path, root)
    AVMNISTDataset(root, "test", "clean", image_file=folder, download=True, **OPTIONS)
    assert asked[-1] == (root, tuple(AUDIO_SOURCES)) and "mnist_images" not in AUDIO_SOURCES
    with pytest.raises(ParameterError, match="download=True needs root"):
        AVMNISTDataset(None, "test", "clean", download=True, recordings=root / "recordings",
                       labels=root / "avmnist" / "test_labels.npy", **OPTIONS)


@pytest.mark.parametrize("mode", ["raw", "pca25"])
def test_getitems_equals_items_one_at_a_time(root, cache, mode):
    """A batch (what the DataLoader asks for) is exactly the items one by one, transforms included."""
    ds = AVMNISTDataset(root, "test", "burst_noise", image=mode, image_cache=cache,
                        transform_image=lambda x: x.float() / 255, target_transform=lambda y: y + 100,
                        check_mnist=False)
    indices = [5, 0, 23, 5, -1, 7]
    batch = ds.__getitems__(indices)
    assert len(batch) == len(indices)
    for (image, audio, label), i in zip(batch, indices):
        one = ds[i]
        assert torch.equal(image, one[0]) and torch.equal(audio, one[1]) and label == one[2]
        assert label == int(ds.labels[i]) + 100  # the label transform applied exactly once
    calls = []
    original = AVMNISTDataset.__getitems__
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=0)
    try:
        AVMNISTDataset.__getitems__ = lambda self, idx: calls.append(list(idx)) or original(self, idx)
        first = next(iter(loader))
    finally:
        AVMNISTDataset.__getitems__ = original
    assert calls == [[0, 1, 2, 3]]
    assert torch.equal(first[1], torch.stack([ds[i][1] for i in range(4)]))



