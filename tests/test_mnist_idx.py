"""MNIST idx1 label files: reading, encoding, torchvision layout, checked against the real labels."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from avmnist_torch.sources.mnist_idx import (
    MNIST_LABEL_FILES,
    MNIST_RAW_MD5,
    find_torchvision_mnist_labels,
    idx1_label_bytes,
    labels_md5,
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
    with pytest.raises(FileNotFoundError, match="nope"):
        read_idx_labels(tmp_path / "nope")


@pytest.mark.parametrize("layout", ["root", "MNIST", "raw"])
@pytest.mark.parametrize("compressed", [False, True])
def test_find_torchvision_layouts(tmp_path, layout, compressed):
    raw_dir = tmp_path / "MNIST" / "raw"
    raw_dir.mkdir(parents=True)
    labels = np.arange(10) % 10
    for split, name in MNIST_LABEL_FILES.items():
        data = idx1_label_bytes(labels)
        if compressed:
            (raw_dir / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (raw_dir / name).write_bytes(data)
    given = {"root": tmp_path, "MNIST": tmp_path / "MNIST", "raw": raw_dir}[layout]
    for split, name in MNIST_LABEL_FILES.items():
        found = find_torchvision_mnist_labels(given, split)
        assert found.parent == raw_dir
        assert found.name == name + (".gz" if compressed else "")
        np.testing.assert_array_equal(read_idx_labels(found), labels)


def test_find_prefers_decompressed(tmp_path):
    raw_dir = tmp_path / "MNIST" / "raw"
    raw_dir.mkdir(parents=True)
    (raw_dir / "t10k-labels-idx1-ubyte").write_bytes(idx1_label_bytes(np.zeros(3)))
    (raw_dir / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx1_label_bytes(np.zeros(3))))
    assert find_torchvision_mnist_labels(tmp_path, "test").name == "t10k-labels-idx1-ubyte"


def test_find_missing_lists_paths(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        find_torchvision_mnist_labels(tmp_path, "train")
    msg = str(info.value)
    assert str(tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte") in msg
    assert "train-labels-idx1-ubyte.gz" in msg
    with pytest.raises(ValueError, match="split"):
        find_torchvision_mnist_labels(tmp_path, "val")


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
