"""The image half of AV-MNIST: MNIST's images with 75% of their energy removed by PCA.

The recipe followed, as published with CentralNet (Vielzeuf et al., "CentralNet: a
multilayer approach for multimodal fusion", ECCV workshops 2018) and re-implemented in the
``mnist_gen`` function of ``avmnist_gen.py`` in the MFAS fork that generates AV-MNIST (the
same steps reappear in ludwig's AV-MNIST loader), for each split on its own:

1. the split's ``N`` images, flattened to an ``(N, 784)`` matrix ``X`` (uint8 read as float64);
2. PCA fitted on that split alone, with all 784 components (scikit-learn's ``PCA`` with its
   defaults: centred, not whitened);
3. ``n`` = the first index at which the cumulative explained-variance ratio is > 0.25. The
   components *before* that index are kept, so the kept ones explain at most 25% of the
   variance (about 23% for MNIST, ``n = 3``): "75% of the energy removed";
4. the image is ``projected[:, :n] @ components[:n]``: the centred image projected onto the
   first ``n`` components. The mean is *not* added back, so values are centred around 0
   (-211 to 291 on MNIST's test images), not pixel intensities;
5. stored as float64 (what scikit-learn returns for uint8 input), shape ``(N, 784)``.

MultiBench's AV-MNIST loader (``datasets/avmnist/get_data.py``) then divides that array by
255 in place and reshapes it to ``(N, 28, 28)``. The published file could not be compared
byte for byte with this one (it is not publicly available); this module documents the
recipe it follows and is tested against a literal scikit-learn run of it.

How it is computed here (numpy only, deterministic): the covariance matrix of the centred
images, accumulated over fixed blocks of rows, then its eigendecomposition
(``numpy.linalg.eigh``), eigenvalues in decreasing order, negative rounding residues clipped
to 0. This is the route scikit-learn (1.5 and later) itself takes for this shape (fewer than
1,000 features, more than ten times as many samples); in 2020 it took a full SVD of the
centred data. Both give the same subspace; the image does not depend on the sign of a
component (it appears twice in ``projected[:, k] * components[k]``), but the components are
given scikit-learn's sign convention anyway (largest-magnitude entry positive) so that they
compare directly. Results agree with scikit-learn and across BLAS libraries to float
rounding only. Measured on MNIST's test images (values from -211 to 291), as the largest
absolute difference from this module's result: two runs in one process 0 (the same bytes);
OpenBLAS with 1 thread instead of 2, 1.1e-12; OpenBLAS's SSE kernels instead of AVX2, 7.1e-13;
the same steps through torch's MKL, 4.9e-12; scikit-learn 1.9's PCA, 1.5e-12 (its default
solver) and 4.5e-12 (full SVD, the 2020 route). Items served as float32 round these away,
except for a value that falls within about 1e-12 of a float32 rounding boundary.

The fit runs once per split and its result is kept in the cache folder under a fingerprint
of the images, the recipe and the versions of this package and numpy; every process
(DataLoader workers, DDP ranks) maps the same file read-only, and a file lock makes
concurrent first users compute it once. The file is served only while it is what its sidecar
records: :class:`ImageHalfCache` checks its identity in every process that opens it and each
row's CRC-32 as it is first read (see there).
"""

from __future__ import annotations

import base64
import hashlib
import json
import operator
import os
import threading
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

from .common import CacheError, PathLike, SourceError, __version__, check_split
from .filesystem import (
    announced_lock,
    default_cache_dir,
    file_lock,
    fsync_dir,
    io_error,
    os_error_reason,
    reserve_space,
    write_json_atomic,
)
from .sources.mnist_idx import find_mnist_images, read_idx_images

__all__ = [
    "ENERGY_KEPT",
    "RECIPE",
    "PCAFit",
    "fit_pca",
    "kept_components",
    "reconstruct",
    "pca25",
    "images_fingerprint",
    "image_half",
    "image_half_cache",
    "image_half_path",
    "ImageHalfCache",
    "ImageHalfInfo",
    "clear_image_halves",
    "list_image_halves",
    "open_image_half",
    "prune_image_halves",
    "write_image_half",
]

#: Name and revision of the recipe; part of every cache key and of the sidecar metadata.
RECIPE = "centralnet-pca25-v1"
#: The cumulative explained-variance ratio that the kept components must not exceed.
ENERGY_KEPT = 0.25
#: Rows per block when accumulating the covariance and projecting. Fixed (never derived from
#: the machine) so that the summation order, and so the rounding, is the same everywhere.
BLOCK_ROWS = 8192
_CACHE_SUBDIR = "image-pca"
#: Revision of the cached file's sidecar (what it records to check the file by).
_LAYOUT = "image-half-v2"


@dataclass(frozen=True)
class PCAFit:
    """A PCA fitted on one split's images, in scikit-learn's terms.

    Attributes
    ----------
    mean : numpy.ndarray
        ``(784,)`` float64, the per-pixel mean.
    components : numpy.ndarray
        ``(784, 784)`` float64, one unit-length component per row, by decreasing variance.
    explained_variance : numpy.ndarray
        ``(784,)`` float64, the variance along each component (``ddof=1``).
    explained_variance_ratio : numpy.ndarray
        ``(784,)`` float64, ``explained_variance / explained_variance.sum()``.
    n_components : int
        How many leading components the recipe keeps (:func:`kept_components`).
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    n_components: int


def _as_rows(images: np.ndarray, origin: str = "images") -> np.ndarray:
    """``images`` as an ``(N, pixels)`` matrix without copying; checks shape and type."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr.reshape(arr.shape[0], -1)
    if arr.ndim != 2:
        raise SourceError(f"{origin}: expected images of shape (N, 28, 28) or (N, 784), got {arr.shape}")
    if arr.shape[0] < 2:
        raise SourceError(f"{origin}: PCA needs at least 2 images, got {arr.shape[0]}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise SourceError(f"{origin}: images must be numbers (MNIST's are uint8), got dtype {arr.dtype}")
    return arr


def _blocks(n_rows: int):
    for start in range(0, n_rows, BLOCK_ROWS):
        yield start, min(start + BLOCK_ROWS, n_rows)


def kept_components(explained_variance_ratio: np.ndarray, threshold: float = ENERGY_KEPT) -> int:
    """The recipe's ``n``: the first index where the cumulative ratio exceeds `threshold`.

    The components before that index are kept. When no cumulative value exceeds the threshold
    (only possible when every image is the same, so every ratio is 0 or undefined), ``n`` is 0,
    as ``argmax`` of an all-False array gives in the original.
    """
    cumulative = np.cumsum(np.asarray(explained_variance_ratio, dtype=np.float64))
    above = np.flatnonzero(cumulative > threshold)
    return int(above[0]) if above.size else 0


def fit_pca(images: np.ndarray) -> PCAFit:
    """Fit PCA with all components on a split's images, as the recipe does (see the module).

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, 28, 28)`` or ``(N, 784)``, normally MNIST's uint8 images; ``N >= 2``.

    Returns
    -------
    PCAFit
    """
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
    """The recipe's image: ``((images - mean) @ components[:n].T) @ components[:n]``, float64.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, 28, 28)`` or ``(N, 784)``.
    fit : PCAFit
        Normally fitted on the same images (the recipe fits each split on itself).
    out : numpy.ndarray, optional
        A float64 ``(N, 784)`` array to write into (e.g. a memory-mapped ``.npy``).

    Returns
    -------
    numpy.ndarray
        ``(N, 784)`` float64: centred (the mean is not added back).
    """
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


# ----------------------------------------------------------------------------
# the shared, cached result


def images_fingerprint(images: np.ndarray) -> str:
    """sha256 of the images' shape, dtype and bytes: which images a cached result belongs to."""
    arr = np.ascontiguousarray(np.asarray(images))
    digest = hashlib.sha256(f"{arr.dtype.str}|{arr.shape}|".encode())
    digest.update(memoryview(arr).cast("B"))
    return digest.hexdigest()


def _cache_key(fingerprint: str) -> str:
    identity = f"{RECIPE}|avmnist-torch={__version__}|numpy={np.__version__}|block={BLOCK_ROWS}|{fingerprint}"
    return hashlib.sha256(identity.encode()).hexdigest()[:24]


def image_half_path(fingerprint: str, cache_dir: PathLike) -> Path:
    """Where the cached image half of the images with this fingerprint lives under `cache_dir`."""
    return Path(cache_dir) / _CACHE_SUBDIR / f"pca25-{_cache_key(fingerprint)}.npy"


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _file_identity(st: os.stat_result) -> List[int]:
    """Size, modification and change times, inode: any write, replacement or copy changes one of them."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _row_crcs(rows: np.ndarray) -> np.ndarray:
    """One CRC-32 per row of a C-ordered float64 array, as the reader checks them."""
    return np.array([zlib.crc32(rows[i]) for i in range(len(rows))], dtype="<u4")


class ImageHalfCache:
    """A cached image half, served only while it is what its sidecar says it is.

    What is checked, and when:

    - when opened, in every process (DataLoader workers and DDP ranks reopen it from
      the path this object pickles to): the sidecar is whole and of this layout, and
      the ``.npy``'s size, modification and change times and inode are the ones
      recorded when it was written. A file replaced or written to since then (even
      with the same shape, even with its modification time set back) fails here;
    - when a row is first read in a process: its CRC-32 against the one recorded
      for it at write time;
    - :meth:`check_all` checks every row at once; :func:`image_half` runs it before
      serving a cached file, and recomputes the file when it fails.

    A row corrupted on disk after this process checked it is trusted, as a clip
    table's row is. Failures raise :class:`~avmnist_torch.common.CacheError` naming
    the file and what to do.

    Parameters
    ----------
    path : path
        The cached ``.npy`` (its sidecar ``.json`` lies beside it).
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self._meta = self._read_sidecar()
        self._open()

    @property
    def n_components(self) -> int:
        """How many components the recipe kept for these images."""
        return int(self._meta["n_components"])

    @property
    def fingerprint(self) -> str:
        """:func:`images_fingerprint` of the images this file was computed from."""
        return str(self._meta["images_sha256"])

    @property
    def shape(self) -> tuple:
        return (int(self._meta["images"]), 784)

    def __len__(self) -> int:
        return self.shape[0]

    def _read_sidecar(self) -> dict:
        sidecar = _sidecar(self.path)
        try:
            meta = json.loads(sidecar.read_text())
            if meta.get("layout") != _LAYOUT:
                raise ValueError(f"layout {meta.get('layout')!r}, expected {_LAYOUT!r}")
            n_rows = int(meta["images"])
            int(meta["n_components"])
            str(meta["images_sha256"])
            identity = [int(v) for v in meta["file"]]
            crcs = np.frombuffer(base64.b64decode(meta["rows_crc32"]), dtype="<u4")
            if len(identity) != 4 or len(crcs) != n_rows:
                raise ValueError("its file identity or row checksums are incomplete")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise CacheError(
                f"{sidecar}: the description of the cached image half {self.path.name} is missing, torn or "
                f"not this version's ({type(err).__name__}: {err}); remove both files (avmnist cache "
                "prune) and the image half is computed again"
            ) from None
        self._crcs = crcs
        return meta

    def _open(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError as err:
            raise CacheError(f"{self.path}: the cached image half cannot be read ({os_error_reason(err)})") from None
        if _file_identity(st) != list(self._meta["file"]):
            # Recomputed by another process since this one checked it (a new file, a new
            # sidecar that describes it): the rows are the recipe's again and are checked as read.
            fresh = None
            try:
                fresh = ImageHalfCache.__new__(ImageHalfCache)
                fresh.path = self.path
                meta = fresh._read_sidecar()
            except CacheError:
                meta = None
            if (meta is None or _file_identity(st) != list(meta["file"])
                    or meta["images_sha256"] != self._meta["images_sha256"]):
                raise CacheError(
                    f"{self.path}: the cached image half was changed or replaced since it was written (its size, "
                    "times or inode differ from those its sidecar recorded), so its rows cannot be trusted; remove "
                    "it (avmnist cache prune) and it is computed again"
                )
            self._meta, self._crcs = meta, fresh._crcs
        try:
            arr = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise CacheError(f"{self.path}: the cached image half is not a readable .npy ({err}); remove it "
                             "(avmnist cache prune) and it is computed again") from None
        if arr.shape != self.shape or arr.dtype != np.float64 or not arr.flags.c_contiguous:
            raise CacheError(f"{self.path}: holds {arr.dtype} {arr.shape}, its sidecar says float64 {self.shape}; "
                             "remove it (avmnist cache prune) and it is computed again")
        self._array = arr
        self._verified = np.zeros(len(arr), dtype=bool)
        self._pid = os.getpid()

    def __getstate__(self) -> dict:
        # Each process maps the file itself, and checks it again when it does.
        state = self.__dict__.copy()
        state["_array"] = None
        state["_verified"] = None
        return state

    def _rows(self) -> np.ndarray:
        # A forked DataLoader worker inherits the parent's map and checks: it checks again itself.
        if self._array is None or self._pid != os.getpid():
            self._open()
        return self._array

    def _bad_row(self, index: int) -> CacheError:
        return CacheError(
            f"{self.path}: row {index} does not match the checksum recorded when the file was written; the cached "
            "image half was damaged or changed on disk. Remove it (avmnist cache prune) and it is computed "
            "again"
        )

    def __getitem__(self, index: int) -> np.ndarray:
        """Row ``index``: ``(784,)`` float64, read-only, checked against its CRC on first read in this process."""
        rows = self._rows()
        row = rows[index]
        index = operator.index(index) % len(rows)
        if not self._verified[index]:
            if zlib.crc32(row) != int(self._crcs[index]):
                raise self._bad_row(index)
            self._verified[index] = True
        return row

    def check_all(self) -> None:
        """Check every row's CRC now (about 1 s a GB); raise :class:`CacheError` naming the first bad one."""
        rows = self._rows()
        for start, stop in _blocks(len(rows)):
            got = _row_crcs(rows[start:stop])
            bad = np.flatnonzero(got != self._crcs[start:stop])
            if bad.size:
                raise self._bad_row(start + int(bad[0]))
        self._verified[:] = True

    def array(self) -> np.ndarray:
        """All rows, checked (:meth:`check_all`), as the read-only memory map."""
        self.check_all()
        return self._rows()


def open_image_half(path: PathLike) -> ImageHalfCache:
    """The cached image half at ``path`` (see :class:`ImageHalfCache`); CacheError if it cannot be trusted."""
    return ImageHalfCache(path)


def _open_cached(path: Path, n_rows: int, fingerprint: str) -> Tuple[Optional[ImageHalfCache], Optional[str]]:
    """The cached file, fully checked, or None and why not (None, None: not there)."""
    if not path.is_file():
        return None, None
    try:
        cache = ImageHalfCache(path)
        if cache.fingerprint != fingerprint or len(cache) != n_rows:
            return None, f"{path}: its sidecar describes other images"
        cache.check_all()
    except CacheError as err:
        return None, str(err)
    return cache, None


def _temporary_beside(path: Path) -> Path:
    # Not tempfile.mkstemp: its files are 0600 whatever the umask, and the finished file keeps
    # the mode of the temporary one, so a dataset folder or a shared cache would be readable by
    # its writer only. A plain open honours the umask, like the audio files beside it. The pid
    # in the name lets ``avmnist cache`` tell a dead writer's leftover from a live one's.
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")


def _write_rows_atomic(path: Path, n_rows: int, fill) -> np.ndarray:
    """Write a float64 ``(n_rows, 784)`` .npy at `path` whole or not at all: ``fill(out)`` writes the rows.

    Its blocks are reserved before a row is written through the map, so a full disk is an
    ``OSError`` here (the temporary file removed), never SIGBUS. Returns the rows' CRC-32s.
    """
    tmp = _temporary_beside(path)
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float64, shape=(n_rows, 784))
        with open(tmp, "rb+") as f:
            reserve_space(f.fileno(), out.offset + out.nbytes)
        fill(out)
        crcs = _row_crcs(out)
        out.flush()
        del out
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return crcs


def _write_cached(path: Path, images: np.ndarray, fingerprint: str) -> None:
    fit = fit_pca(images)
    n_rows = len(images)
    # The old sidecar goes first: a file without one is never served.
    _sidecar(path).unlink(missing_ok=True)
    crcs = _write_rows_atomic(path, n_rows, lambda out: reconstruct(images, fit, out=out))
    write_json_atomic(_sidecar(path), {
        "layout": _LAYOUT,
        "recipe": RECIPE,
        "avmnist_torch": __version__,
        "numpy": np.__version__,
        "images_sha256": fingerprint,
        "images": n_rows,
        "n_components": fit.n_components,
        "kept_variance_ratio": float(fit.explained_variance_ratio[: fit.n_components].sum()),
        "explained_variance_ratio_head": [float(r) for r in fit.explained_variance_ratio[:10]],
        "file": _file_identity(os.stat(path)),
        "rows_crc32": base64.b64encode(crcs.tobytes()).decode("ascii"),
    })


def image_half_cache(
    images: Union[np.ndarray, PathLike],
    split: Optional[str] = None,
    *,
    cache_dir: Union[PathLike, str] = "auto",
) -> Union[ImageHalfCache, np.ndarray]:
    """One split's image half from the cache folder, as a checked :class:`ImageHalfCache`.

    Made (once, under a lock) when it is not there, or when the file there fails its
    checks. Where an ``"auto"`` cache folder cannot be written, the rows are computed in
    memory instead (with a warning) and returned as an array. Parameters as for
    :func:`image_half`; ``cache_dir`` None is not accepted here.
    """
    rows = _images_rows(images, split)
    explicit = cache_dir != "auto"
    folder = (Path(cache_dir) if explicit else default_cache_dir()) / _CACHE_SUBDIR
    fingerprint = images_fingerprint(rows)
    path = folder / image_half_path(fingerprint, ".").name
    cached, _ = _open_cached(path, len(rows), fingerprint)
    if cached is not None:
        return cached
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with announced_lock(folder / f"{path.stem}.lock", "computing the PCA image half"):
            cached, why = _open_cached(path, len(rows), fingerprint)  # another process may have made it
            if cached is None:
                if why is not None:  # the advice in the message is what happens now
                    warnings.warn(f"{why.split('; remove')[0]}; computing it again", RuntimeWarning, stacklevel=2)
                _write_cached(path, rows, fingerprint)
                cached, why = _open_cached(path, len(rows), fingerprint)
    except OSError as err:
        if explicit:
            raise io_error(err, path, "writing the image-half cache", CacheError) from None
        warnings.warn(f"{path}: cannot keep the image half in the cache ({os_error_reason(err)}); computing it "
                      "in memory", RuntimeWarning, stacklevel=2)
        return pca25(rows)
    if cached is None:  # written but unreadable: a broken file system, not a recipe problem
        raise CacheError(f"{path}: written but cannot be read back ({why}); remove it and try again")
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


def image_half(
    images: Union[np.ndarray, PathLike],
    split: Optional[str] = None,
    *,
    cache_dir: Union[PathLike, str, None] = "auto",
) -> np.ndarray:
    """One split's image half of AV-MNIST: ``(N, 784)`` float64, the recipe's values as stored.

    Parameters
    ----------
    images : numpy.ndarray or path
        The split's MNIST images, ``(N, 28, 28)`` uint8; or an MNIST idx3 file
        (``t10k-images-idx3-ubyte[.gz]``); or a data root where
        :func:`~avmnist_torch.sources.mnist_idx.find_mnist_images` finds the split's file
        (then `split` is required).
    split : {"train", "test"}, optional
        Which split's file to find under a data root.
    cache_dir : path, "auto" or None
        Where the result is kept (under ``image-pca/``) and looked up by the images'
        fingerprint. "auto" is ``$AVMNIST_CACHE`` or the user cache folder, falling back to
        memory with a warning when it cannot be written; None always computes in memory.

    Returns
    -------
    numpy.ndarray
        ``(N, 784)`` float64. From the cache, a read-only memory map that every process shares;
        without one, an array in memory.

    Raises
    ------
    SourceError
        If the images cannot be found or read, or are not ``(N, 28, 28)``/``(N, 784)``.
    CacheError
        If an explicit `cache_dir` cannot be written.
    """
    rows = _images_rows(images, split)
    if cache_dir is None:
        return pca25(rows)
    cached = image_half_cache(rows, cache_dir=cache_dir)
    return cached.array() if isinstance(cached, ImageHalfCache) else cached


def write_image_half(
    path: PathLike,
    images: Union[np.ndarray, PathLike],
    split: Optional[str] = None,
    *,
    cache_dir: Union[PathLike, str, None] = "auto",
) -> Path:
    """Write one split's image half where MultiBench reads it (``{dir}/image/{split}_data.npy``).

    The file is a standard ``.npy`` of float64, shape ``(N, 784)``: the recipe's values as it
    stored them. MultiBench's ``get_dataloader`` loads it, divides it by 255 in place (so it
    must be a float array) and reshapes it to ``(N, 28, 28)``, then adds a channel axis.

    Parameters
    ----------
    path : path
        The file to write, e.g. ``out/image/train_data.npy``; its folder is created.
    images, split, cache_dir
        As for :func:`image_half`.

    Returns
    -------
    Path
        `path`. It is written to a temporary file beside it and renamed into place, so an
        interrupted run never leaves a complete-looking file; a file already there with the same
        content is left as it is.
    """
    rows = image_half(images, split, cache_dir=cache_dir)
    path = Path(path)
    try:
        if path.is_file():
            try:
                existing = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError):
                existing = None
            if existing is not None and existing.shape == rows.shape and existing.dtype == rows.dtype:
                if all(np.array_equal(existing[a:b], rows[a:b]) for a, b in _blocks(len(rows))):
                    return path
        path.parent.mkdir(parents=True, exist_ok=True)

        def copy_rows(out: np.ndarray) -> None:
            for a, b in _blocks(len(rows)):
                out[a:b] = rows[a:b]

        _write_rows_atomic(path, len(rows), copy_rows)
    except OSError as err:
        raise io_error(err, path, "writing the image half") from None
    return path


# ----------------------------------------------------------------------------
# listing and removing cached image halves


@dataclass(frozen=True)
class ImageHalfInfo:
    """One cached image half, as :func:`list_image_halves` finds it.

    Attributes
    ----------
    path : Path
        The ``.npy`` (its sidecar is the ``.json`` beside it).
    size_bytes : int
        Bytes of the ``.npy`` and its sidecar.
    images : int or None
        How many rows its sidecar says it holds (None: no readable sidecar).
    problem : str
        Empty when the file is what its sidecar records (identity only; rows are
        checked when served); else why it would be computed again.
    last_used : float
        When it was written (seconds since the epoch).
    """

    path: Path
    size_bytes: int
    images: Optional[int]
    problem: str
    last_used: float


def _image_folder(cache_dir: Optional[PathLike]) -> Path:
    return (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / _CACHE_SUBDIR


def list_image_halves(cache_dir: Optional[PathLike] = None) -> List[ImageHalfInfo]:
    """The cached image halves in ``cache_dir/image-pca`` (default: the cache folder), oldest first."""
    folder = _image_folder(cache_dir)
    if not folder.is_dir():
        return []
    found = []
    for npy in sorted(folder.glob("pca25-*.npy")):
        try:
            st = npy.stat()
        except OSError:
            continue
        size, last_used, images, problem = st.st_size, st.st_mtime, None, ""
        try:
            side = _sidecar(npy).stat()
            size += side.st_size
            last_used = max(last_used, side.st_mtime)
        except OSError:
            pass
        try:
            reader = ImageHalfCache(npy)
            images = len(reader)
        except CacheError as err:
            problem = str(err).split("; remove")[0].split(": ", 1)[-1]
        found.append(ImageHalfInfo(npy, size, images, problem, last_used))
    return sorted(found, key=lambda info: (info.last_used, info.path.name))


def _remove_image_halves(cache_dir: Optional[PathLike], which) -> List[ImageHalfInfo]:
    import filelock

    removed = []
    for info in list_image_halves(cache_dir):
        if not which(info):
            continue
        lock = info.path.parent / f"{info.path.stem}.lock"
        try:
            with file_lock(lock, timeout=0):  # not while a process is computing it
                _sidecar(info.path).unlink(missing_ok=True)  # first: a .npy without one is never served
                info.path.unlink(missing_ok=True)
        except filelock.Timeout:
            warnings.warn(f"{info.path}: not removed, a process is computing it now; run this again when it is "
                          "done", RuntimeWarning, stacklevel=3)
            continue
        except OSError as err:
            warnings.warn(f"{info.path}: not removed ({os_error_reason(err)}); it is probably in use by a running "
                          "process (Windows cannot remove a mapped file)", RuntimeWarning, stacklevel=3)
            continue
        removed.append(info)
    return removed


def clear_image_halves(cache_dir: Optional[PathLike] = None) -> List[ImageHalfInfo]:
    """Remove every cached image half (the next use computes it again); returns the removed ones."""
    return _remove_image_halves(cache_dir, lambda info: True)


def prune_image_halves(cache_dir: Optional[PathLike] = None) -> List[ImageHalfInfo]:
    """Remove the cached image halves that would not be served (torn sidecar, changed file)."""
    return _remove_image_halves(cache_dir, lambda info: bool(info.problem))
