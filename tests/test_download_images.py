"""MNIST's image files: fetched from the labels' mirrors, checked by md5, installed as published.

The files are made synthetically (small ones, and once train-sized: 60,000 images); the tests
patch the published checksums to theirs, as the label tests do. The real test images in ../shared/data (a
re-compressed copy: its .gz md5 differs, its decompressed md5 is the published one) are checked
against the real published checksum.
"""

from __future__ import annotations

import gzip
import hashlib

import pytest

from _mnist_fixtures import synthetic_idx3_gz, synthetic_images
from _download_helpers import (  # noqa: F401  (fixtures are used by name)
    MNIST_IMAGE_PATHS,
    SHARED,
    _loopback_only,
    apply_md5_patches,
    closed_port,
    idx3_image_bytes,
    image_md5_patches,
    server,
)
from avmnist_torch.sources import download as dl
from avmnist_torch.sources.mnist_idx import (
    MNIST_IMAGE_FILES,
    MNIST_IMAGE_GZ_MD5,
    MNIST_IMAGE_RAW_MD5,
    idx1_label_bytes,
)

REAL_T10K = SHARED / "mnist" / "t10k-images-idx3-ubyte.gz"


@pytest.fixture(scope="module")
def images() -> dict[str, bytes]:
    """Uncompressed idx3 files of 600 and 100 synthetic 28x28 images (the checks do not depend on the count)."""
    return {"train": idx3_image_bytes(synthetic_images(600, 1)),
            "test": idx3_image_bytes(synthetic_images(100, 2))}


@pytest.fixture(scope="module")
def images_gz(images) -> dict[str, bytes]:
    return {s: gzip.compress(b, compresslevel=1, mtime=0) for s, b in images.items()}


@pytest.fixture
def patched(images, monkeypatch):
    apply_md5_patches(image_md5_patches(images), monkeypatch)


@pytest.fixture
def train_sized(monkeypatch):
    """MNIST's sizes, 60,000 and 10,000 images (shared with the image-half tests), their checksums patched in."""
    sizes = {"train": (60_000, 1), "test": (10_000, 2)}
    raw = {s: idx3_image_bytes(synthetic_images(*k)) for s, k in sizes.items()}
    apply_md5_patches(image_md5_patches(raw), monkeypatch)
    return raw, {s: synthetic_idx3_gz(*k) for s, k in sizes.items()}


def _get_images(root, mirror, **kw):
    return dl.download(root, sources=["mnist_images"], mirror=mirror, progress=False, **kw)


def _installed(root, split, gz=True):
    return root / "mnist" / (MNIST_IMAGE_FILES[split] + (".gz" if gz else ""))


def test_published_checksums_are_the_known_ones():
    # The values torchvision checks for the .gz files, and the md5 of their content.
    assert MNIST_IMAGE_GZ_MD5 == {"train": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                                  "test": "9fb629c4189551a2d022fa330f9573f3"}
    assert MNIST_IMAGE_RAW_MD5 == {"train": "6bbc9ace898e44ae57da46a324031adb",
                                   "test": "2646ac647ad5339dbf082846283269ea"}
    assert dl.SOURCES == dl.AUDIO_SOURCES + ("mnist_images",)


@pytest.mark.slow
def test_train_sized_images_download_install_and_rerun_free(tmp_path, server, train_sized):
    images, images_gz = train_sized
    server.files[MNIST_IMAGE_PATHS["train"][0]] = images_gz["train"]
    server.files[MNIST_IMAGE_PATHS["test"][1]] = images_gz["test"]  # only on the second mirror
    root = tmp_path / "DATA"
    assert _get_images(root, server.url) == root.resolve()

    for split in ("train", "test"):
        target = _installed(root, split)
        assert target.read_bytes() == images_gz[split]  # installed as fetched
        assert gzip.decompress(target.read_bytes()) == images[split]
        dl.verify_mnist_images(target, split)
    assert server.requests(MNIST_IMAGE_PATHS["test"][0]) == [None]  # 404, then the next mirror
    assert sorted(p.name for p in (root / "mnist").iterdir()) == \
        ["t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz"]
    assert sorted(p.name for p in (root / ".downloads").iterdir()) == ["download.lock"]
    assert not (root / "avmnist").exists()  # labels were not asked for

    n = len(server.log)
    _get_images(root, server.url)
    assert len(server.log) == n, "a rerun over verified images made HTTP requests"


def test_images_are_not_in_the_default_download(tmp_path, closed_port):
    # download() without sources gets what the audio modality needs; a failing run on an
    # unreachable mirror names every URL it tried, and no image URL is among them.
    with pytest.raises(dl.DownloadError) as info:
        dl.download(tmp_path, mirror=f"http://127.0.0.1:{closed_port}", progress=False, timeout=5)
    assert "images-idx3" not in str(info.value)


def test_wrong_image_file_rejected_and_named(tmp_path, server, images, images_gz, patched):
    bad = bytearray(images["train"])
    bad[5000] ^= 0x10
    server.files[MNIST_IMAGE_PATHS["train"][0]] = gzip.compress(bytes(bad), compresslevel=1, mtime=0)
    server.files[MNIST_IMAGE_PATHS["test"][0]] = images_gz["test"]
    with pytest.raises(dl.DownloadError) as info:
        _get_images(tmp_path, server.url)
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and "md5 matches neither" in msg
    assert not _installed(tmp_path, "train").exists()
    assert _installed(tmp_path, "test").is_file()  # the good split is installed
    assert (tmp_path / ".downloads" / "train-images-idx3-ubyte.gz.rejected").is_file()

    # The next run fetches it afresh.
    server.files[MNIST_IMAGE_PATHS["train"][0]] = images_gz["train"]
    _get_images(tmp_path, server.url)
    dl.verify_mnist_images(_installed(tmp_path, "train"), "train")


def test_decompressed_manual_copy_installs_without_gz(tmp_path, closed_port, images,
                                                      images_gz, patched):
    downloads = tmp_path / ".downloads"
    downloads.mkdir()
    (downloads / "train-images-idx3-ubyte").write_bytes(images["train"])
    (downloads / "t10k-images-idx3-ubyte.gz").write_bytes(images_gz["test"])
    _get_images(tmp_path, f"http://127.0.0.1:{closed_port}")
    assert _installed(tmp_path, "train", gz=False).read_bytes() == images["train"]
    assert not _installed(tmp_path, "train").exists()
    assert _installed(tmp_path, "test").read_bytes() == images_gz["test"]


def test_copy_in_place_is_verified_and_a_wrong_one_never_overwritten(tmp_path, closed_port,
                                                                      images, images_gz,
                                                                      patched):
    mirror = f"http://127.0.0.1:{closed_port}"
    (tmp_path / "mnist").mkdir()
    _installed(tmp_path, "train", gz=False).write_bytes(images["train"])
    _installed(tmp_path, "test").write_bytes(images_gz["test"])
    _get_images(tmp_path, mirror)  # no network: both verify where they lie

    # A label file where the test images should be: reported with what it is, left in place.
    wrong = gzip.compress(idx1_label_bytes([1, 2, 3]), mtime=0)
    _installed(tmp_path, "test").write_bytes(wrong)
    with pytest.raises(dl.VerificationError,
                       match=r"(?s)t10k-images-idx3-ubyte\.gz exists but is not MNIST's test "
                             r"images.*idx1 label file"):
        _get_images(tmp_path, mirror)
    assert _installed(tmp_path, "test").read_bytes() == wrong


def test_verify_mnist_images_names_the_problem(tmp_path, images, patched):
    with pytest.raises(dl.VerificationError, match="missing"):
        dl.verify_mnist_images(tmp_path / "nope.gz", "train")
    truncated = tmp_path / "train-images-idx3-ubyte.gz"
    whole = gzip.compress(images["train"], compresslevel=1)
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(dl.VerificationError, match="not a readable gzip file"):
        dl.verify_mnist_images(truncated, "train")
    # The right content under the other split's checksums is not accepted either.
    right = tmp_path / "ok"
    right.write_bytes(images["train"])
    dl.verify_mnist_images(right, "train")
    with pytest.raises(dl.VerificationError, match="not MNIST's test images"):
        dl.verify_mnist_images(right, "test")


@pytest.mark.realdata
def test_real_test_images_verify_against_the_published_md5(tmp_path, server):
    if not REAL_T10K.is_file():
        pytest.skip(f"real data not found at {REAL_T10K} (../shared/data is absent in a user's clone)")
    data = REAL_T10K.read_bytes()
    # A re-compressed copy: only the check of the decompressed content can pass.
    assert hashlib.md5(data).hexdigest() != MNIST_IMAGE_GZ_MD5["test"]
    dl.verify_mnist_images(REAL_T10K, "test")

    # Through download(), with the real checksums, from a mirror that has only this file.
    server.files[MNIST_IMAGE_PATHS["test"][0]] = data
    with pytest.raises(dl.DownloadError, match="MNIST train images: download failed") as info:
        dl.download(tmp_path, sources=["mnist_images"], mirror=server.url, progress=False)
    assert "t10k" not in str(info.value)
    assert (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes() == data

    # One changed pixel fails the real checksum.
    pixels = bytearray(gzip.decompress(data))
    pixels[-1] ^= 1
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(bytes(pixels), mtime=0))
    with pytest.raises(dl.VerificationError, match="md5 matches neither"):
        dl.verify_mnist_images(bad, "test")
