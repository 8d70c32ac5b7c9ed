"""Synthetic MNIST-shaped images and idx files, for tests that need train-sized (60,000) data.

The real MNIST train images are not in ../shared/data; these stand in for them where only the
format and size matter. Images are smooth "strokes" mixed per item plus noise, so PCA has a
leading subspace with a slowly falling spectrum, as MNIST's has.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from avmnist_torch.sources.mnist_idx import idx1_label_bytes, idx3_image_bytes


def synthetic_images(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 28, 28)`` uint8 images with MNIST's value range and a low-rank structure."""
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
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8).reshape(n, 28, 28)


def write_idx_images(path: Path, images: np.ndarray, gz: bool = True) -> Path:
    data = idx3_image_bytes(images)
    path.write_bytes(gzip.compress(data, compresslevel=1, mtime=0) if gz else data)
    return path


def write_idx_labels(path: Path, labels: np.ndarray, gz: bool = True) -> Path:
    data = idx1_label_bytes(np.asarray(labels))
    path.write_bytes(gzip.compress(data, compresslevel=1, mtime=0) if gz else data)
    return path
