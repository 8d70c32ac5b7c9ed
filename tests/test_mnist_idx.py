"""MNIST idx1 label files: reading, encoding, torchvision layout, checked against the real labels."""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from _mnist_fixtures import synthetic_images, write_idx_images, write_idx_labels
from avmnist_torch.common import SourceError
from avmnist_torch.paired import AVMNISTImageDataset
from avmnist_torch.sources.labels import load_labels
from avmnist_torch.sources.mnist_idx import (
    MNIST_LABEL_FILES,
    MNIST_RAW_MD5,
    find_labels_beside,
    find_mnist_images,
    idx1_label_bytes,
    idx3_image_bytes,
    labels_md5,
    read_idx_images,
    read_idx_labels,
)

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
MNIST_DIR = SHARED / "mnist"


def _real_labels(split: str) -> np.ndarray:
    path = MNIST_DIR / f"{split}_labels.npy"
    if not path.is_file():
        pytest.skip(f"real MNIST labels not found at {path} (../shared/data is absent in a user's clone)")
    return np.load(path)


def test_roundtrip_raw_and_gz(tmp_path):
    labels = np.array([5, 0, 4, 1, 9, 2, 1, 3, 1, 4], dtype=np.int64)
    raw = tmp_path / "labels-idx1-ubyte"
    raw.write_bytes(idx1_label_bytes(labels))
    # A gzip file named without .gz: compression must be sniffed from content, not the name.
    gz = tmp_path / "renamed"
    gz.write_bytes(gzip.compress(idx1_label_bytes(labels)))
    for path in (raw, gz):
        out = read_idx_labels(path)
        assert out.dtype == np.int64
        np.testing.assert_array_equal(out, labels)


def test_header_layout():
    data = idx1_label_bytes(np.array([7, 3]))
    assert data == b"\x00\x00\x08\x01" + b"\x00\x00\x00\x02" + b"\x07\x03"


def test_bad_magic_names_file(tmp_path):
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(struct.pack(">IIII", 2051, 1, 28, 28) + bytes(784))
    with pytest.raises(ValueError, match=r"images-idx3-ubyte.*magic number 2051.*image file"):
        read_idx_labels(path)


def test_size_mismatch_names_file(tmp_path):
    path = tmp_path / "short-idx1-ubyte"
    path.write_bytes(struct.pack(">II", 2049, 100) + bytes(99))
    with pytest.raises(ValueError, match=r"short-idx1-ubyte.*100 labels.*107 bytes"):
        read_idx_labels(path)


def test_too_short_and_bad_gzip(tmp_path):
    short = tmp_path / "tiny"
    short.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="tiny.*too short"):
        read_idx_labels(short)
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(idx1_label_bytes(np.arange(10)))[:-12])
    with pytest.raises(ValueError, match="broken.gz"):
        read_idx_labels(broken)


def test_label_out_of_range(tmp_path):
    path = tmp_path / "odd-idx1-ubyte"
    path.write_bytes(struct.pack(">II", 2049, 3) + bytes([1, 12, 3]))
    with pytest.raises(ValueError, match=r"odd-idx1-ubyte.*label 12 at index 1"):
        read_idx_labels(path)


def test_missing_file(tmp_path):
    with pytest.raises(SourceError, match="nope"):
        read_idx_labels(tmp_path / "nope")


def _take_as_mnists(monkeypatch, labels: np.ndarray) -> None:
    """Synthetic labels under MNIST's names: their md5 stands in for MNIST's published one, for one test."""
    from avmnist_torch.sources import mnist_idx

    for split in MNIST_LABEL_FILES:
        monkeypatch.setitem(mnist_idx.MNIST_RAW_MD5, split, labels_md5(labels))


@pytest.mark.parametrize("layout", ["root", "MNIST", "raw"])
@pytest.mark.parametrize("compressed", [False, True])
def test_load_labels_finds_torchvision_layouts(tmp_path, layout, compressed, monkeypatch):
    raw_dir = tmp_path / "MNIST" / "raw"
    raw_dir.mkdir(parents=True)
    labels = np.arange(10) % 10
    _take_as_mnists(monkeypatch, labels)
    for split, name in MNIST_LABEL_FILES.items():
        data = idx1_label_bytes(labels)
        if compressed:
            (raw_dir / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (raw_dir / name).write_bytes(data)
    given = {"root": tmp_path, "MNIST": tmp_path / "MNIST", "raw": raw_dir}[layout]
    for split in MNIST_LABEL_FILES:
        np.testing.assert_array_equal(load_labels(given, split), labels)


def test_load_labels_prefers_the_decompressed_file(tmp_path, monkeypatch):
    raw_dir = tmp_path / "MNIST" / "raw"
    raw_dir.mkdir(parents=True)
    _take_as_mnists(monkeypatch, np.array([1, 2, 3]))
    (raw_dir / "t10k-labels-idx1-ubyte").write_bytes(idx1_label_bytes(np.array([1, 2, 3])))
    (raw_dir / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx1_label_bytes(np.array([4, 5, 6]))))
    np.testing.assert_array_equal(load_labels(tmp_path, "test"), [1, 2, 3])


def test_load_labels_missing_names_where_it_looked(tmp_path):
    with pytest.raises(SourceError) as info:
        load_labels(tmp_path, "train")
    msg = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in msg and str(tmp_path / "raw") in msg
    assert "train-labels-idx1-ubyte[.gz]" in msg
    with pytest.raises(ValueError, match="split"):
        load_labels(tmp_path, "val")


@pytest.mark.realdata
@pytest.mark.parametrize("split", ["train", "test"])
def test_idx_encoding_matches_published_md5(tmp_path, split):
    """Our idx1 bytes of the real labels are MNIST's decompressed file, byte for byte."""
    labels = _real_labels(split)
    assert labels.shape == ({"train": 60_000, "test": 10_000}[split],)
    data = idx1_label_bytes(labels)
    assert hashlib.md5(data).hexdigest() == MNIST_RAW_MD5[split]
    assert labels_md5(labels) == MNIST_RAW_MD5[split]
    # And the reader turns that file (as torchvision would keep it, .gz) back into the array.
    path = tmp_path / (MNIST_LABEL_FILES[split] + ".gz")
    path.write_bytes(gzip.compress(data))
    out = read_idx_labels(path)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, labels)


@pytest.mark.realdata
def test_one_changed_label_changes_md5():
    labels = _real_labels("test").copy()
    labels[1234] = (labels[1234] + 1) % 10
    assert labels_md5(labels) != MNIST_RAW_MD5["test"]


# --------------------------------------------------------------------------------------------
# Files under MNIST's names must be MNIST's (checked by md5 of the uncompressed bytes).


def _as_published(monkeypatch, images: np.ndarray, labels: np.ndarray, split: str = "test") -> None:
    """Make these small synthetic arrays MNIST's published test images and labels, for one test."""
    from avmnist_torch.sources import mnist_idx

    monkeypatch.setitem(mnist_idx.MNIST_IMAGE_RAW_MD5, split, hashlib.md5(idx3_image_bytes(images)).hexdigest())
    monkeypatch.setitem(mnist_idx.MNIST_RAW_MD5, split, labels_md5(labels))
    monkeypatch.setitem(mnist_idx.MNIST_LABEL_COUNTS, split, len(labels))


@pytest.fixture()
def published(tmp_path, monkeypatch):
    """``root/mnist/`` holding this test's "MNIST": 6 test images and labels, as .gz."""
    labels = np.array([7, 2, 1, 0, 4, 1])
    images = synthetic_images(len(labels), seed=5)
    _as_published(monkeypatch, images, labels)
    folder = tmp_path / "root" / "mnist"
    folder.mkdir(parents=True)
    write_idx_images(folder / "t10k-images-idx3-ubyte.gz", images)
    write_idx_labels(folder / "t10k-labels-idx1-ubyte.gz", labels)
    return folder, images, labels


def test_a_blank_uncompressed_file_beside_the_gz_is_refused_naming_it(published):
    """The uncompressed file is found first; one of zeros (valid header) must not replace MNIST's images."""
    folder, images, labels = published
    blank = write_idx_images(folder / "t10k-images-idx3-ubyte", np.zeros_like(images), gz=False)
    assert find_mnist_images(folder.parent, "test") == blank
    with pytest.raises(SourceError, match=r"mnist/t10k-images-idx3-ubyte: not MNIST's test images") as err:
        read_idx_images(blank)
    message = str(err.value)
    assert "every pixel is 0" in message and "read before the t10k-images-idx3-ubyte.gz beside it" in message
    assert "Delete it or move it away" in message and "avmnist download" in message and "check_mnist=False" in message
    # the same through a dataset, at construction
    with pytest.raises(SourceError, match="t10k-images-idx3-ubyte: not MNIST's test images"):
        AVMNISTImageDataset(folder.parent, "test", image="raw", labels=labels, image_cache=None)
    # zeros through and through (no idx header either): refused too, naming it
    blank.write_bytes(bytes(100))
    with pytest.raises(SourceError, match=r"t10k-images-idx3-ubyte: magic number 0"):
        read_idx_images(blank)
    # deleted, as the message says: MNIST's .gz is used
    blank.unlink()
    ds = AVMNISTImageDataset(folder.parent, "test", image="raw", labels=labels, image_cache=None)
    assert ds.image_half.file.name == "t10k-images-idx3-ubyte.gz" and np.array_equal(ds[2][0][0].numpy(), images[2])


def test_mnist_files_pass_compressed_recompressed_or_not(published):
    folder, images, labels = published
    gz = folder / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(idx3_image_bytes(images), compresslevel=9))  # another .gz, same content
    raw = write_idx_images(folder / "t10k-images-idx3-ubyte", images, gz=False)
    for path in (gz, raw):
        assert np.array_equal(read_idx_images(path), images)
    assert np.array_equal(read_idx_labels(folder / "t10k-labels-idx1-ubyte.gz"), labels)


def test_a_label_file_under_mnists_name_is_checked(published):
    folder, _, labels = published
    wrong = write_idx_labels(folder / "t10k-labels-idx1-ubyte.gz", np.roll(labels, 1))
    with pytest.raises(SourceError, match=r"t10k-labels-idx1-ubyte.gz: not MNIST's test labels.*check_mnist=False"):
        read_idx_labels(wrong)
    with pytest.raises(SourceError, match="not MNIST's test labels"):  # also where labels are loaded
        load_labels(wrong, "test")
    assert np.array_equal(read_idx_labels(wrong, check=False), np.roll(labels, 1))


def test_opting_out_files_of_your_own(published):
    """check_mnist=False, or another name: synthetic or altered images in MNIST's format are paired by their labels."""
    folder, images, labels = published
    altered = 255 - images
    write_idx_images(folder / "t10k-images-idx3-ubyte.gz", altered)
    with pytest.raises(SourceError, match="not MNIST's test images"):
        AVMNISTImageDataset(folder.parent, "test", image="raw", labels=labels, image_cache=None)
    ds = AVMNISTImageDataset(folder.parent, "test", image="raw", labels=labels, image_cache=None, check_mnist=False)
    assert np.array_equal(ds[0][0][0].numpy(), altered[0]) and "labels beside the images" in ds.image_half.pairing
    # under a name of its own, with its label file named the same way: nothing to opt out of
    own = write_idx_images(folder / "inverted-t10k-images-idx3-ubyte.gz", altered)
    own_labels = write_idx_labels(folder / "inverted-t10k-labels-idx1-ubyte.gz", labels)
    assert find_labels_beside(own, "test") == own_labels
    ds = AVMNISTImageDataset(None, "test", image="raw", images=own, labels=labels, image_cache=None)
    assert np.array_equal(ds[5][0][0].numpy(), altered[5]) and own_labels.name in ds.image_half.pairing


def test_each_file_is_hashed_once_per_process_until_it_changes(published, monkeypatch):
    from avmnist_torch.sources import mnist_idx

    folder, images, _ = published
    path = folder / "t10k-images-idx3-ubyte.gz"
    hashed = []
    md5 = hashlib.md5
    monkeypatch.setattr(mnist_idx.hashlib, "md5", lambda data=b"": hashed.append(len(data)) or md5(data))
    for _ in range(3):
        read_idx_images(path)
    assert len(hashed) <= 1  # the fixture's own reads may have hashed it already
    before = len(hashed)
    os.utime(path, ns=(1, 1))  # a new mtime and ctime: the file may have changed
    read_idx_images(path)
    assert len(hashed) == before + 1
    write_idx_images(path, np.zeros_like(images))  # rewritten in place
    with pytest.raises(SourceError, match="not MNIST's test images"):
        read_idx_images(path)


@pytest.mark.realdata
def test_real_t10k_images_pass_and_a_copy_with_one_pixel_changed_does_not(tmp_path):
    real = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
    if not real.is_file():
        pytest.skip(f"real MNIST test images not found at {real} (../shared/data is absent in a user's clone)")
    images = read_idx_images(real)
    changed = images.copy()
    changed[9999, 27, 27] ^= 1
    write_idx_images(tmp_path / "t10k-images-idx3-ubyte", changed, gz=False)
    with pytest.raises(SourceError, match="not MNIST's test images"):
        read_idx_images(tmp_path / "t10k-images-idx3-ubyte")
