"""The image half of AV-MNIST: MNIST's images with 75% of their energy removed by PCA.

The recipe published with CentralNet (Vielzeuf et al., ECCV workshops 2018) and re-implemented in
``avmnist_gen.py`` of the MFAS fork that generated AV-MNIST, for each split on its own: the split's ``N``
images as an ``(N, 784)`` float64 matrix; PCA on all 784 components (scikit-learn's defaults: centred,
not whitened); ``n`` = the first index at which the cumulative explained-variance ratio exceeds 0.25,
the components before it kept (MNIST: 3, about 23% of the variance); each image is
``projected[:, :n] @ components[:n]``, the mean *not* added back (values from -211 to 291 on MNIST's test
images); stored as float64 ``(N, 784)``, which MultiBench's loader divides by 255.

Computed with numpy only, deterministically: the covariance of the centred images summed over fixed
blocks of rows, then ``numpy.linalg.eigh`` (scikit-learn's own route for this shape), components given
scikit-learn's sign convention. It agrees with scikit-learn and across BLAS libraries to float rounding
(``docs/exactness.md``). The result is kept in the cache folder per split under a fingerprint of the
images, written and read as every file is (:mod:`avmnist_torch.files`; ``docs/formats.md``).
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .common import CacheError, PathLike, SourceError, StorageError, __version__, check_split
from .files import FileWriter, RowReader, StoredFile, default_cache_dir, npy_header, open_cached, open_or_make
from .sources.mnist_idx import find_mnist_images, read_idx_images

__all__ = ["ENERGY_KEPT", "RECIPE", "PCAFit", "fit_pca", "kept_components", "reconstruct", "pca25",
           "images_fingerprint", "image_half", "image_half_cache", "image_half_path", "ImageHalfCache",
           "write_image_half", "holds_image_half"]

#: Name and revision of the recipe; part of every cache key and of the sidecar metadata.
RECIPE = "centralnet-pca25-v1"
#: The cumulative explained-variance ratio that the kept components must not exceed.
ENERGY_KEPT = 0.25
#: Rows per block when accumulating the covariance and projecting. Fixed (never derived from
#: the machine) so that the summation order, and so the rounding, is the same everywhere.
BLOCK_ROWS = 8192
_LAYOUT = "image-half-v3"  # revision of the cached file's sidecar


@dataclass(frozen=True)
class PCAFit:
    """A PCA fitted on one split's images, in scikit-learn's terms: the per-pixel ``mean``, the ``components``
    (one unit-length component per row, by decreasing variance), their ``explained_variance`` (``ddof=1``)
    and ``explained_variance_ratio``, all float64, and ``n_components``, how many the recipe keeps."""

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    n_components: int


def _as_rows(images: np.ndarray) -> np.ndarray:
    """``images`` as an ``(N, pixels)`` matrix without copying; checks shape and type."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr.reshape(arr.shape[0], -1)
    if arr.ndim != 2:
        raise SourceError(f"images: expected images of shape (N, 28, 28) or (N, 784), got {arr.shape}")
    if arr.shape[0] < 2:
        raise SourceError(f"images: PCA needs at least 2 images, got {arr.shape[0]}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise SourceError(f"images: images must be numbers (MNIST's are uint8), got dtype {arr.dtype}")
    return arr


def _blocks(n_rows: int):
    for start in range(0, n_rows, BLOCK_ROWS):
        yield start, min(start + BLOCK_ROWS, n_rows)


def kept_components(explained_variance_ratio: np.ndarray, threshold: float = ENERGY_KEPT) -> int:
    """The recipe's ``n``: the first index where the cumulative ratio exceeds `threshold` (the components
    before it are kept); 0 when none does (every image the same), as ``argmax`` gives in the original."""
    cumulative = np.cumsum(np.asarray(explained_variance_ratio, dtype=np.float64))
    above = np.flatnonzero(cumulative > threshold)
    return int(above[0]) if above.size else 0


def fit_pca(images: np.ndarray) -> PCAFit:
    """Fit PCA with all components on a split's ``(N, 28, 28)`` or ``(N, 784)`` images (``N >= 2``), as the
    recipe does (see the module)."""
    rows = _as_rows(images)
    n, d = rows.shape
    mean = np.zeros(d, dtype=np.float64)
    for start, stop in _blocks(n):
        mean += rows[start:stop].sum(axis=0, dtype=np.float64)
    mean /= n
    scatter = np.zeros((d, d), dtype=np.float64)
    for start, stop in _blocks(n):
        centred = rows[start:stop].astype(np.float64) - mean
        scatter += centred.T @ centred
    covariance = scatter / (n - 1)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    # eigh sorts ascending; PCA lists components by decreasing variance. Pixels that never vary
    # (MNIST's borders) give eigenvalues of 0 that rounding can make slightly negative.
    variance = np.clip(eigenvalues[::-1], 0.0, None)
    components = np.ascontiguousarray(eigenvectors[:, ::-1].T)
    # scikit-learn's sign convention (svd_flip on the components): each component's
    # largest-magnitude entry is positive. The image does not depend on it; comparisons do.
    largest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(d), largest])
    signs[signs == 0] = 1.0
    components *= signs[:, None]
    total = variance.sum()
    ratio = variance / total if total > 0 else np.zeros_like(variance)
    return PCAFit(mean, components, variance, ratio, kept_components(ratio))


def reconstruct(images: np.ndarray, fit: PCAFit, out: Optional[np.ndarray] = None) -> np.ndarray:
    """The recipe's image, ``((images - mean) @ components[:n].T) @ components[:n]``: ``(N, 784)`` float64,
    centred (the mean is not added back), written into ``out`` when given. The recipe fits each split
    on itself."""
    rows = _as_rows(images)
    n_rows, d = rows.shape
    if fit.mean.shape != (d,):
        raise SourceError(f"images have {d} pixels but the PCA was fitted on {fit.mean.shape[0]}")
    if out is None:
        out = np.empty((n_rows, d), dtype=np.float64)
    elif out.shape != (n_rows, d) or out.dtype != np.float64:
        raise ValueError(f"out must be float64 {(n_rows, d)}, got {out.dtype} {out.shape}")
    kept = fit.components[: fit.n_components]
    for start, stop in _blocks(n_rows):
        centred = rows[start:stop].astype(np.float64) - fit.mean
        projected = centred @ kept.T
        out[start:stop] = projected @ kept
    return out


def pca25(images: np.ndarray) -> np.ndarray:
    """Fit and apply the recipe on one split's images, without any cache: ``(N, 784)`` float64."""
    return reconstruct(images, fit_pca(images))


def images_fingerprint(images: np.ndarray) -> str:
    """sha256 of the images' shape, dtype and bytes: which images a cached result belongs to."""
    arr = np.ascontiguousarray(np.asarray(images))
    digest = hashlib.sha256(f"{arr.dtype.str}|{arr.shape}|".encode())
    digest.update(memoryview(arr).cast("B"))
    return digest.hexdigest()


def image_half_path(fingerprint: str, cache_dir: PathLike) -> Path:
    """Where the cached image half of the images with this fingerprint lives in `cache_dir`."""
    key = f"{RECIPE}|avmnist-torch={__version__}|numpy={np.__version__}|block={BLOCK_ROWS}|{fingerprint}"
    return Path(cache_dir) / f"pca25-{hashlib.sha256(key.encode()).hexdigest()[:24]}.f64"


@dataclass(frozen=True)
class ImageHalfCache(RowReader):
    """A cached image half, made by :func:`image_half_cache`: its ``(N, 784)`` float64 rows, read as every stored
    file is, and the recipe's number of components."""

    n_components: int


def _open_cached(path: Path, n_rows: int, fingerprint: str,
                 in_memory: bool) -> Union[ImageHalfCache, np.ndarray, None]:
    found = open_cached(path, {"layout": _LAYOUT, "images_sha256": fingerprint, "rows": n_rows},
                        "it is computed again", sys.maxsize if in_memory else 0)
    if found is None:
        return None
    stored, meta, data = found
    if in_memory:  # the bytes its sha256 was checked on, not a second read
        return data.view("<f8").reshape(n_rows, 784)
    return ImageHalfCache(stored, 0, (n_rows, 784), "<f8", int(meta["n_components"]))


def _write_cached(path: Path, images: np.ndarray, fingerprint: str) -> None:
    fit = fit_pca(images)
    out = np.empty((BLOCK_ROWS, 784), dtype=np.float64)
    with FileWriter(path, size=len(images) * 784 * 8) as writer:
        for start, stop in _blocks(len(images)):
            block = out[: stop - start]
            reconstruct(images[start:stop], fit, out=block)
            writer.append(block)
        writer.commit({
            "what": "image half", "kind": "pca25", "layout": _LAYOUT, "recipe": RECIPE, "avmnist_torch": __version__,
            "numpy": np.__version__, "images_sha256": fingerprint, "rows": len(images),
            "n_components": fit.n_components,
            "kept_variance_ratio": float(fit.explained_variance_ratio[: fit.n_components].sum()),
            "explained_variance_ratio_head": [float(r) for r in fit.explained_variance_ratio[:10]],
        })


def image_half_cache(images: np.ndarray, *, cache_dir: Union[PathLike, str] = "auto",
                     in_memory: bool = False) -> Union[ImageHalfCache, np.ndarray]:
    """The image half of ``images`` (one split's, ``(N, 28, 28)`` or ``(N, 784)``) from the cache folder, as a
    checked :class:`ImageHalfCache` (with ``in_memory``: the whole array, read once); computed (once, under a
    lock) when missing or failing its checks. Where an ``"auto"`` folder cannot be used, computed in memory
    instead, with a warning, and returned as an array. ``cache_dir`` as for :func:`image_half`, not None."""
    rows = _images_rows(images, None)
    explicit = not (isinstance(cache_dir, str) and cache_dir == "auto")
    fingerprint = images_fingerprint(rows)
    path = image_half_path(fingerprint, cache_dir if explicit else default_cache_dir())
    try:
        cached = open_or_make(path, lambda: _open_cached(path, len(rows), fingerprint, in_memory),
                              lambda: _write_cached(path, rows, fingerprint))
    except StorageError as err:
        if explicit:
            raise CacheError(f"{path}: cannot keep the image half there ({err})") from None
        warnings.warn(f"{path}: cannot keep the image half in the cache folder ({err}); computing it in memory",
                      RuntimeWarning, stacklevel=2)
        return pca25(rows)
    if cached is None:
        raise CacheError(f"{path}: written, but does not read back as written; remove it and try again")
    return cached


def _images_rows(images: Union[np.ndarray, PathLike], split: Optional[str]) -> np.ndarray:
    if isinstance(images, (str, os.PathLike)):
        path = Path(images)
        if path.is_dir():
            if split is None:
                raise SourceError(f"{path} is a folder: say which split's images to use (split='train' or 'test')")
            path = find_mnist_images(path, check_split(split))
        images = read_idx_images(path)
    rows = _as_rows(images)
    if rows.shape[1] != 784:
        raise SourceError(f"images have {rows.shape[1]} pixels, expected 784 (28x28 MNIST images)")
    return rows


def image_half(images: Union[np.ndarray, PathLike], split: Optional[str] = None, *,
               cache_dir: Union[PathLike, str, None] = "auto") -> np.ndarray:
    """One split's image half of AV-MNIST: ``(N, 784)`` float64 in memory, the recipe's values as stored.

    Parameters
    ----------
    images : numpy.ndarray or path
        The split's MNIST images, ``(N, 28, 28)`` uint8; or an MNIST idx3 file; or a data root where
        :func:`~avmnist_torch.sources.mnist_idx.find_mnist_images` finds the file of `split`.
    split : {"train", "test"}, optional
        Which split's file to find under a data root.
    cache_dir : path, "auto" or None
        Where the result is kept, by the images' fingerprint. "auto" is the cache folder, falling back
        to memory with a warning when it cannot be used; None always computes in memory.

    Raises
    ------
    SourceError
        If the images cannot be found or read, or are not ``(N, 28, 28)``/``(N, 784)``.
    CacheError
        If an explicit `cache_dir` cannot be used.
    """
    rows = _images_rows(images, split)
    if cache_dir is None:
        return pca25(rows)
    return image_half_cache(rows, cache_dir=cache_dir, in_memory=True)


def write_image_half(path: PathLike, images: Union[np.ndarray, PathLike], split: Optional[str] = None, *,
                     cache_dir: Union[PathLike, str, None] = "auto") -> Path:
    """Write one split's image half where MultiBench reads it (``{dir}/image/{split}_data.npy``).

    A standard ``.npy`` of float64, shape ``(N, 784)`` (MultiBench's loader divides it by 255 in place),
    written as every file here is; a file already there with the same bytes is left as it is.

    Parameters
    ----------
    path : path
        The file to write, e.g. ``out/image/train_data.npy``; its folder is created.
    images, split, cache_dir
        As for :func:`image_half`.
    """
    rows = np.ascontiguousarray(image_half(images, split, cache_dir=cache_dir), dtype="<f8")
    path = Path(path)
    if not holds_image_half(path, rows):
        header = npy_header(rows.shape, "<f8")
        with FileWriter(path, size=len(header) + rows.nbytes) as writer:
            writer.append(header)
            writer.append(rows)
            writer.commit()
    return path


def holds_image_half(path: PathLike, rows: np.ndarray) -> bool:
    """Whether ``path`` is the ``.npy`` file :func:`write_image_half` writes for ``rows``, byte for byte
    (compared by sha256, the file read once and never mapped)."""
    rows = np.ascontiguousarray(rows, dtype="<f8")
    header = npy_header(rows.shape, "<f8")
    digest = hashlib.sha256(header)
    digest.update(memoryview(rows).cast("B"))
    try:
        StoredFile.open(path, sha256=digest.hexdigest(), size=len(header) + rows.nbytes)
    except StorageError:
        return False
    return True
