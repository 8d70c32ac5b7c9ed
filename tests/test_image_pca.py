"""The image half: reading MNIST's idx3 images and the CentralNet PCA recipe, against scikit-learn."""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _mnist_fixtures import synthetic_images, synthetic_pca25, write_idx_images, write_idx_labels
from avmnist_torch.common import CacheError, SourceError
from avmnist_torch.image_pca import (
    fit_pca,
    image_half,
    write_image_half,
    images_fingerprint,
    kept_components,
    pca25,
    reconstruct,
)
from avmnist_torch.sources.mnist_idx import (
    find_labels_beside,
    find_mnist_images,
    idx3_image_bytes,
    read_idx_images,
)
from avmnist_torch.sources import mnist_idx
from _helpers import REPO, SHARED_DATA

T10K = SHARED_DATA / "mnist" / "t10k-images-idx3-ubyte.gz"
T10K_RAW_MD5 = "2646ac647ad5339dbf082846283269ea"  # MNIST's published decompressed t10k images


@pytest.fixture(scope="module")
def t10k() -> np.ndarray:
    if not T10K.is_file():
        pytest.skip(f"real MNIST test images not found at {T10K} (../shared/data is absent in a user's clone)")
    return read_idx_images(T10K)


@pytest.fixture(scope="module")
def small() -> np.ndarray:
    """A few images, for the tests where the count does not matter."""
    return synthetic_images(100, seed=1)


@pytest.fixture(scope="module")
def train_sized() -> np.ndarray:
    # the train-sized set the download and image-half tests use too: made once per session
    return synthetic_images(60_000, seed=1)


def sklearn_recipe(images: np.ndarray, svd_solver: str = "auto") -> np.ndarray:
    """The recipe as avmnist_gen.py ran it, restated literally with scikit-learn's PCA."""
    decomposition = pytest.importorskip("sklearn.decomposition")
    num = images.shape[0]
    pca = decomposition.PCA(n_components=784, svd_solver=svd_solver)
    projected = pca.fit_transform(images.reshape(num, 784))
    n_comp = ((np.cumsum(pca.explained_variance_ratio_) > 0.25) != 0).argmax()
    return np.matmul(projected[:, :n_comp], pca.components_[:n_comp])


# ----------------------------------------------------------------------------
# reading idx3


def test_reads_real_t10k_byte_for_byte(t10k):
    assert t10k.shape == (10_000, 28, 28) and t10k.dtype == np.uint8
    # Re-encoding gives MNIST's published decompressed file: header and every pixel in order.
    assert hashlib.md5(idx3_image_bytes(t10k)).hexdigest() == T10K_RAW_MD5
    assert not t10k.flags.writeable


@pytest.mark.slow  # 60,000 images written and read twice
def test_train_sized_roundtrip_raw_and_gz(tmp_path, train_sized):
    raw = write_idx_images(tmp_path / "train-images-idx3-ubyte", train_sized, gz=False)
    gz = write_idx_images(tmp_path / "renamed-without-suffix", train_sized, gz=True)
    for path in (raw, gz):
        out = read_idx_images(path, check=False)  # synthetic, under MNIST's name
        assert out.shape == (60_000, 28, 28) and out.dtype == np.uint8
        np.testing.assert_array_equal(out, train_sized)


def _header(magic=2051, count=2, rows=28, cols=28) -> bytes:
    return struct.pack(">IIII", magic, count, rows, cols)


@pytest.mark.parametrize(
    "content, message",
    [
        (struct.pack(">II", 2049, 3) + bytes(3), "magic number 2049.*expected 2051.*label file"),
        (_header(magic=2052) + bytes(2 * 784), "magic number 2052"),
        (_header() + bytes(2 * 784 - 5), "so 1584 bytes, but the file has 1579 bytes \\(truncated\\)"),
        (_header() + bytes(2 * 784 + 1), "trailing bytes"),
        (_header(rows=32, cols=32) + bytes(2 * 1024), "32x32 pixels, expected 28x28"),
        (b"\x00\x00\x08", "too short for an idx3 header"),
        (b"\x1f\x8b" + b"not really gzip", "not a readable gzip file"),
    ],
)
def test_bad_image_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=message) as err:
        read_idx_images(path)
    assert str(path) in str(err.value)


def test_truncated_gz_is_a_source_error(tmp_path, small):
    whole = gzip.compress(idx3_image_bytes(small))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SourceError, match=str(path)):
        read_idx_images(path)


def test_missing_file(tmp_path):
    with pytest.raises(SourceError, match="not found.*download"):
        read_idx_images(tmp_path / "nothing.gz")


def test_find_images_in_download_and_torchvision_layouts(tmp_path, small):
    small = small[:10]
    download_root = tmp_path / "data"
    (download_root / "mnist").mkdir(parents=True)
    gz = write_idx_images(download_root / "mnist" / "t10k-images-idx3-ubyte.gz", small)
    assert find_mnist_images(download_root, "test") == gz
    raw = write_idx_images(download_root / "mnist" / "t10k-images-idx3-ubyte", small, gz=False)
    assert find_mnist_images(download_root, "test") == raw  # decompressed preferred

    tv_root = tmp_path / "tv"
    (tv_root / "MNIST" / "raw").mkdir(parents=True)
    tv = write_idx_images(tv_root / "MNIST" / "raw" / "train-images-idx3-ubyte", small, gz=False)
    for given in (tv_root, tv_root / "MNIST", tv_root / "MNIST" / "raw"):
        assert find_mnist_images(given, "train") == tv
    assert find_labels_beside(tv, "train") is None
    labels = write_idx_labels(tv_root / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz", np.arange(10) % 10)
    assert find_labels_beside(tv, "train") == labels



def test_kept_components_is_the_first_index_above_a_quarter():
    assert kept_components([0.10, 0.08, 0.06, 0.05, 0.71]) == 3  # cumulative 0.24 -> 0.29 at index 3
    assert kept_components([0.10, 0.15, 0.75]) == 2  # exactly 0.25 is not above it
    assert kept_components([0.30, 0.70]) == 0  # the first component alone exceeds it: keep none
    assert kept_components(np.zeros(5)) == 0  # constant images: as argmax of all-False


@pytest.mark.slow
def test_matches_sklearn_on_real_test_images(t10k):
    ours = pca25(t10k)
    fit = fit_pca(t10k)
    assert fit.n_components == 3  # MNIST: 10.0% + 7.5% + 6.1% = 23.7% kept, the fourth crosses 25%
    assert ours.shape == (10_000, 784) and ours.dtype == np.float64
    for solver in ("auto", "full"):  # scikit-learn 1.5+ picks covariance_eigh here; in 2020, a full SVD
        reference = sklearn_recipe(t10k, solver)
        assert reference.shape == ours.shape
        # Values span about -211..291; the routes differ by float rounding only (measured 1.5e-12 / 4.5e-12).
        assert np.abs(reference - ours).max() < 1e-9, solver


@pytest.mark.slow
def test_matches_sklearn_on_train_sized_images(train_sized):
    ours = synthetic_pca25(60_000, 1)  # pca25(train_sized), made once per session
    reference = sklearn_recipe(train_sized)
    assert ours.shape == (60_000, 784)
    assert fit_pca(train_sized).n_components == 2 and np.abs(ours).max() > 50  # not the trivial all-zero case
    assert np.abs(reference - ours).max() < 1e-9


def test_fit_agrees_with_sklearn_attributes(t10k):
    decomposition = pytest.importorskip("sklearn.decomposition")
    pca = decomposition.PCA(n_components=784).fit(t10k.reshape(-1, 784))
    fit = fit_pca(t10k)
    np.testing.assert_allclose(fit.mean, pca.mean_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fit.explained_variance_ratio[:50], pca.explained_variance_ratio_[:50], rtol=1e-9)
    # Same sign convention, so the leading components compare entry by entry.
    np.testing.assert_allclose(fit.components[:20], pca.components_[:20], rtol=0, atol=1e-9)


@pytest.mark.slow
def test_recipe_properties(train_sized):
    fit = fit_pca(train_sized)
    out = reconstruct(train_sized, fit)
    n = fit.n_components
    assert 0 < n < 784 and fit.explained_variance_ratio[:n].sum() <= 0.25 < fit.explained_variance_ratio[: n + 1].sum()
    # Centred and not shifted back: every pixel's mean over the split is 0.
    assert np.abs(out.mean(axis=0)).max() < 1e-9
    # It lies in the span of the first n components.
    assert np.linalg.matrix_rank(out[:2000]) == n
    # And it is the projection of the centred images onto that span.
    centred = train_sized[:100].reshape(100, 784) - fit.mean
    basis = fit.components[:n]
    np.testing.assert_allclose(out[:100], centred @ basis.T @ basis, atol=1e-9)


def test_constant_images_give_zeros():
    out = pca25(np.full((5, 28, 28), 7, dtype=np.uint8))
    assert out.shape == (5, 784) and not out.any()


@pytest.mark.parametrize("bad, message", [
    (np.zeros((1, 28, 28), np.uint8), "at least 2 images"),
    (np.zeros((4, 28), np.uint8).reshape(4, 28, 1, 1), "shape"),
    (np.zeros((3, 784), dtype=object), "dtype"),
])
def test_bad_images_are_refused(bad, message):
    with pytest.raises(SourceError, match=message):
        pca25(bad)


# ----------------------------------------------------------------------------
# closeness: two runs, two thread counts, two BLAS libraries

_SUBPROCESS = """
import sys, numpy as np
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[1] + '/tests')
from _mnist_fixtures import synthetic_images
from avmnist_torch.image_pca import pca25
np.save(sys.argv[2], pca25(synthetic_images(20_000, seed=5)))
"""


def _in_subprocesses(tmp_path: Path, **envs) -> dict:
    """``{name: pca25 of the same images}`` from one fresh process per entry of `envs`, run side by side."""
    runs = {name: subprocess.Popen([sys.executable, "-c", _SUBPROCESS, str(REPO), str(tmp_path / f"{name}.npy")],
                                   env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for name, env in envs.items()}
    for name, run in runs.items():
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, f"{name}: {err.decode()[-2000:]}"
    return {name: np.load(tmp_path / f"{name}.npy") for name in runs}


@pytest.mark.slow
def test_two_runs_are_identical_and_thread_counts_agree(tmp_path):
    images = synthetic_images(20_000, seed=5)
    first, second = pca25(images), pca25(images)
    assert first.tobytes() == second.tobytes()
    runs = _in_subprocesses(tmp_path, one=dict(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"),
                            two=dict(OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2"))
    one, two = runs["one"], runs["two"]
    # Measured on real t10k (values -211..291): 1 vs 2 threads differ by at most 1.1e-12,
    # OpenBLAS's SSE kernels (OPENBLAS_CORETYPE=Nehalem) by 7.1e-13: float rounding only.
    assert np.abs(one - two).max() < 1e-10
    assert np.abs(one - first).max() < 1e-10


def test_another_blas_library_agrees(t10k):
    """The same recipe through torch's BLAS and LAPACK (MKL on x86 builds), not numpy's OpenBLAS."""
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(t10k.reshape(-1, 784).astype(np.float64))
    centred = x - x.mean(dim=0)
    variance, vectors = torch.linalg.eigh(centred.T @ centred / (len(x) - 1))
    variance, vectors = variance.flip(0).clamp(min=0), vectors.flip(1)
    n = kept_components((variance / variance.sum()).numpy())
    basis = vectors[:, :n]
    theirs = ((centred @ basis) @ basis.T).numpy()
    ours = pca25(t10k)
    assert n == 3
    assert np.abs(theirs - ours).max() < 1e-9


# ----------------------------------------------------------------------------
# the shared cache


@pytest.mark.slow
def test_cache_computes_once_and_serves_the_same_bytes(tmp_path, t10k):
    cache = tmp_path / "cache"
    first = image_half(t10k, cache_dir=cache)
    files = sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock"))
    assert len(files) == 2 and files[0].endswith(".f64") and files[1].endswith(".f64.json")
    cached = next(cache.glob("*.f64"))
    stamp = cached.stat().st_mtime_ns
    second = image_half(t10k, cache_dir=cache)
    assert cached.stat().st_mtime_ns == stamp  # served, not recomputed
    assert first.tobytes() == second.tobytes() == pca25(t10k).tobytes()  # caches change speed, not bytes
    # Other images, another entry.
    image_half(t10k[:5000], cache_dir=cache)
    assert len(list(cache.glob("*.f64"))) == 2


def test_cache_from_a_path(tmp_path, monkeypatch):
    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    images = synthetic_images(3000, seed=1)  # not the session's train-sized set: 6 s to make
    write_idx_images(root / "mnist" / "train-images-idx3-ubyte.gz", images)
    # synthetic images under MNIST's name: their md5 stands in for MNIST's published one
    monkeypatch.setitem(mnist_idx.MNIST_IMAGE_RAW_MD5, "train", hashlib.md5(idx3_image_bytes(images)).hexdigest())
    from_root = image_half(root, "train", cache_dir=tmp_path / "c")
    from_file = image_half(root / "mnist" / "train-images-idx3-ubyte.gz", cache_dir=None)
    assert from_root.tobytes() == from_file.tobytes()
    with pytest.raises(SourceError, match="split"):
        image_half(root, cache_dir=None)



def test_unwritable_cache(tmp_path, t10k, monkeypatch):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    with pytest.raises(CacheError, match="file-not-folder"):
        image_half(t10k[:100], cache_dir=blocked)
    monkeypatch.setenv("AVMNIST_CACHE", str(blocked))
    with pytest.warns(RuntimeWarning, match="computing it in memory"):
        out = image_half(t10k[:100], cache_dir="auto")
    assert out.tobytes() == pca25(t10k[:100]).tobytes()


_RACE = """
import sys, numpy as np
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[1] + '/tests')
from _mnist_fixtures import synthetic_images
import avmnist_torch.image_pca as ip
fits = []
real_fit = ip.fit_pca
ip.fit_pca = lambda images: fits.append(1) or real_fit(images)
out = ip.image_half(synthetic_images(20_000, seed=9), cache_dir=sys.argv[2])
print(len(fits), ip.images_fingerprint(np.asarray(out)))
"""


@pytest.mark.slow
def test_concurrent_processes_compute_once(tmp_path):
    """Like DDP ranks starting together: one fits, the others wait for the lock and read its file."""
    cache = tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, "-c", _RACE, str(REPO), str(cache)], stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    outputs = [p.communicate(timeout=300)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(int(o[0]) for o in outputs) == [0, 0, 1]
    assert len({o[1] for o in outputs}) == 1
    leftovers = [p.name for p in cache.iterdir() if p.suffix not in (".f64", ".json", ".lock")]
    assert leftovers == []


def test_fingerprint_depends_on_content_and_shape():
    a = synthetic_images(10)
    b = a.copy()
    b[3, 4, 5] ^= 1
    assert images_fingerprint(a) != images_fingerprint(b)
    assert images_fingerprint(a) != images_fingerprint(a.reshape(10, 784))
    assert images_fingerprint(a) == images_fingerprint(a.copy())


# ----------------------------------------------------------------------------
# the file MultiBench reads


def multibench_image_steps(data_dir: str, n_train: int, n_test: int):
    """The image half of MultiBench's avmnist get_dataloader (normalize_image=True, flatten_image=False,
    unsqueeze_channel=True), restated step by step: np.load, divide by 255 in place, reshape, add a channel."""
    trains = np.load(data_dir + "/image/train_data.npy")
    tests = np.load(data_dir + "/image/test_data.npy")
    trains /= 255.0  # in place: fails on an integer array
    tests /= 255.0
    trains = trains.reshape(n_train, 28, 28)
    tests = tests.reshape(n_test, 28, 28)
    return np.expand_dims(trains, 1), np.expand_dims(tests, 1)


@pytest.mark.slow
def test_written_image_half_is_what_multibench_reads(tmp_path, t10k, train_sized):
    from avmnist_torch.image_pca import write_image_half

    out = tmp_path / "mb"
    cache = tmp_path / "cache"
    train_path = write_image_half(out / "image" / "train_data.npy", train_sized, cache_dir=cache)
    test_path = write_image_half(out / "image" / "test_data.npy", t10k, cache_dir=cache)
    assert [p.name for p in sorted((out / "image").iterdir())] == ["test_data.npy", "train_data.npy"]
    stored = np.load(test_path)
    assert stored.dtype == np.float64 and stored.shape == (10_000, 784)
    trains, tests = multibench_image_steps(str(out), 60_000, 10_000)
    assert trains.shape == (60_000, 1, 28, 28) and tests.shape == (10_000, 1, 28, 28)
    np.testing.assert_array_equal(tests[123, 0], (pca25(t10k)[123] / 255.0).reshape(28, 28))
    np.testing.assert_array_equal(trains[59_999, 0], (pca25(train_sized)[59_999] / 255.0).reshape(28, 28))
    # A rerun leaves an identical file alone; a different one is replaced whole.
    stamp = train_path.stat().st_mtime_ns
    write_image_half(train_path, train_sized, cache_dir=cache)
    assert train_path.stat().st_mtime_ns == stamp
    write_image_half(train_path, train_sized[:100], cache_dir=cache)
    assert np.load(train_path).shape == (100, 784)
    assert not [p for p in (out / "image").iterdir() if p.name.startswith(".")]


# ----------------------------------------------------------------------------
# a full disk (the other faults of the cached file: tests/test_storage_faults.py)


def test_a_full_disk_is_a_clear_error_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    def no_space(fd, offset, size):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space, raising=False)
    cache = tmp_path / "cache"
    with pytest.raises(CacheError, match=r"pca25-.*\.f64: cannot keep the image half there .*no space left"):
        image_half(synthetic_images(50, seed=3), cache_dir=cache)
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []
