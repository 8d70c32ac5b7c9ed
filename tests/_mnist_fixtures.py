"""Synthetic MNIST-shaped images and idx files, for tests that need train-sized (60,000) data.

The real MNIST train images are not in ../shared/data; these stand in for them where only the
format and size matter. Images are smooth "strokes" mixed per item plus noise, so PCA has a
leading subspace with a slowly falling spectrum, as MNIST's has.

Train-sized sets take seconds to make and to compress, and several test files use the same
ones: each ``(n, seed)`` is made once per process (read-only, shared), and so is its gzipped
idx3 file.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np

from avmnist_torch.sources.mnist_idx import idx1_label_bytes, idx3_image_bytes

#: id(array) -> (n, seed) for the arrays synthetic_images has handed out.
_MADE: dict = {}


def synthetic_images(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 28, 28)`` uint8 images with MNIST's value range and a low-rank structure (read-only, shared)."""
    return _images(int(n), int(seed))


@functools.lru_cache(maxsize=16)
def _images(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    centres = rng.uniform(5, 23, size=(100, 2))
    widths = rng.uniform(1.2, 2.5, size=100)
    strokes = np.exp(-((yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2)
                     / (2 * widths[:, None, None] ** 2)).reshape(100, 784)
    # Sparse, independent stroke weights spread the variance over many components, so the
    # recipe keeps 2 of them (cumulative ratio about 0.21, then 0.31), not 0.
    weights = rng.gamma(0.3, 1.0, size=(n, 100))
    pixels = weights @ strokes * 150 + rng.normal(0, 8, size=(n, 784))
    images = np.clip(np.round(pixels), 0, 255).astype(np.uint8).reshape(n, 28, 28)
    images.setflags(write=False)
    _MADE[id(images)] = (n, seed)
    return images


@functools.lru_cache(maxsize=4)
def _gz_of(n: int, seed: int) -> bytes:
    return gzip.compress(idx3_image_bytes(_images(n, seed)), compresslevel=1, mtime=0)


def synthetic_idx3_gz(n: int, seed: int = 0) -> bytes:
    """``synthetic_images(n, seed)`` as a gzipped idx3 file (level 1, no timestamp), compressed once per process."""
    return _gz_of(int(n), int(seed))


def write_idx_images(path: Path, images: np.ndarray, gz: bool = True) -> Path:
    made = _MADE.get(id(images))
    if gz and made is not None and _images(*made) is images:
        path.write_bytes(_gz_of(*made))  # the same bytes as below, compressed once per process
        return path
    data = idx3_image_bytes(images)
    path.write_bytes(gzip.compress(data, compresslevel=1, mtime=0) if gz else data)
    return path


def write_idx_labels(path: Path, labels: np.ndarray, gz: bool = True) -> Path:
    data = idx1_label_bytes(np.asarray(labels))
    path.write_bytes(gzip.compress(data, compresslevel=1, mtime=0) if gz else data)
    return path


@functools.lru_cache(maxsize=4)
def synthetic_pca25(n: int, seed: int = 0) -> np.ndarray:
    """``pca25(synthetic_images(n, seed))``, computed once per process (read-only): several tests compare
    a train-sized file or route against it."""
    from avmnist_torch.image_pca import pca25

    out = pca25(synthetic_images(n, seed))
    out.setflags(write=False)
    return out
