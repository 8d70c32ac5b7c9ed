"""Exporting whole splits to .npy files, and the pool of worker processes that renders them.

``export`` writes the notebook's files (``avmnist/audio/{split}_data_augmented_{scheme}.npy``)
or MultiBench's (``{dir}/audio/{split}_data.npy``), as real .npy files of
``(N, 112, 112) uint8``, using several worker processes, resumable after any
interruption and shardable across machines; see :mod:`avmnist_torch.storage`
for how a file in progress is kept safe. The bytes do not depend on the number
of workers, shards or interruptions: every item is a pure function of its index.
Checking a file against regeneration is :mod:`avmnist_torch.verify`.

MultiBench's layout also gets the labels (``{dir}/{split}_labels.npy``) and the
image half (``{dir}/image/{split}_data.npy``, made from MNIST's image files by
:func:`avmnist_torch.image_pca.write_image_half`), so that MultiBench's own
loader runs on the folder with nothing else.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import re
import signal
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from .common import SPLITS, ParameterError, SourceError
from .dataset import AVMNISTAudioDataset
from .image_pca import image_half, write_image_half
from .paired import check_pairing
from .schemes import SCHEME_NAMES, Scheme, get_scheme
from .sources.mnist_idx import find_mnist_images, read_idx_images
from .storage import (
    ExportTarget,
    StorageError,
    multibench_path,
    notebook_path,
)

PathLike = Union[str, os.PathLike]
LAYOUTS = ("notebook", "multibench")
#: The notebook's five schemes, which ``scheme="all"`` means (not "clean", which it never wrote).
NOTEBOOK_SCHEMES = tuple(name for name in SCHEME_NAMES if name != "clean")
DEFAULT_CHUNK_ROWS = 250

__all__ = ["export", "parse_shard", "output_path", "image_half_path", "worker_pool", "worker_image", "LAYOUTS",
           "NOTEBOOK_SCHEMES", "ImageHalfSkipped"]


# ----------------------------------------------------------------------------
# what to write where


def _splits(split: str) -> Tuple[str, ...]:
    if split == "all":
        return SPLITS
    if split not in SPLITS:
        raise ParameterError(f"unknown split {split!r}: choose 'train', 'test' or 'all'")
    return (split,)


def _schemes(scheme: Union[str, Scheme, Sequence[Union[str, Scheme]]]) -> Tuple[Scheme, ...]:
    if isinstance(scheme, str) and scheme.strip().lower() == "all":
        return tuple(get_scheme(name) for name in NOTEBOOK_SCHEMES)
    if isinstance(scheme, (str, Scheme)):
        return (get_scheme(scheme),)
    return tuple(get_scheme(s) for s in scheme)


def output_path(
    root: Optional[PathLike], split: str, scheme: str, *, out: Optional[PathLike] = None,
    layout: str = "notebook", several_schemes: bool = False,
) -> Path:
    """Where ``export`` writes one (split, scheme).

    notebook layout
        ``{out or root}/avmnist/audio/{split}_data_augmented_{scheme}.npy``.
    multibench layout
        ``{dir}/audio/{split}_data.npy``, where ``dir`` is ``out`` for one
        scheme, ``out/{scheme}`` for several, and ``root/multibench/{scheme}``
        when ``out`` is not given. MultiBench's names carry no scheme, so each
        scheme needs its own folder.
    ``out`` ending in ``.npy`` (one split and one scheme only) is the file itself.
    """
    if layout not in LAYOUTS:
        raise ParameterError(f"unknown layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    if out is not None and str(out).endswith(".npy"):
        return Path(out)
    if layout == "notebook":
        base = out if out is not None else root
        if base is None:
            raise ParameterError("give root or out: where to write avmnist/audio/...")
        return notebook_path(base, split, scheme)
    if out is None:
        if root is None:
            raise ParameterError("give root or out: where to write the MultiBench layout")
        directory = Path(root) / "multibench" / scheme
    else:
        directory = Path(out) / scheme if several_schemes else Path(out)
    return multibench_path(directory, split)


def image_half_path(audio_path: PathLike, split: str) -> Path:
    """MultiBench's image file beside its audio file ``{dir}/audio/{split}_data.npy``.

    That is ``{dir}/image/{split}_data.npy``.
    """
    return Path(audio_path).parent.parent / "image" / f"{split}_data.npy"


def parse_shard(shard: Union[None, str, Tuple[int, int]]) -> Tuple[int, int]:
    """``(K, N)`` from ``"K/N"``, a tuple, or torchrun's ``RANK``/``WORLD_SIZE``; ``(0, 1)`` when none.

    K counts from 0, like torchrun's RANK: the shards of 3 are 0/3, 1/3 and 2/3.
    """
    if shard is None:
        rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
        if rank is None or world is None:
            return 0, 1
        shard = (rank, world)
        origin = f"RANK={rank}, WORLD_SIZE={world}"
    else:
        origin = f"shard {shard!r}"
    if isinstance(shard, str):
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", shard)
        if not m:
            raise ParameterError(f"{origin}: write K/N, e.g. 0/3 (K counts from 0)")
        shard = (m.group(1), m.group(2))
    try:
        k, n = int(shard[0]), int(shard[1])
    except (TypeError, ValueError, IndexError):
        raise ParameterError(f"{origin}: expected K/N with integers, e.g. 0/3") from None
    if n < 1 or not 0 <= k < n:
        raise ParameterError(f"{origin}: need N >= 1 and 0 <= K < N (K counts from 0: 0/{max(n, 1)} .. "
                             f"{max(n, 1) - 1}/{max(n, 1)})")
    return k, n


# ----------------------------------------------------------------------------
# workers: processes that each hold a copy of one dataset and render rows of it

_WORKER_DATASET: Optional[AVMNISTAudioDataset] = None


def _limit_threads() -> None:
    # Each worker is one of N processes on N cores; library thread pools would only contend.
    torch.set_num_threads(1)
    numba = sys.modules.get("numba")
    if numba is not None:
        try:
            numba.set_num_threads(1)
        except Exception:  # pragma: no cover
            pass


def _init_worker(dataset: AVMNISTAudioDataset) -> None:
    global _WORKER_DATASET
    _WORKER_DATASET = dataset
    _limit_threads()
    # Ctrl-C reaches the whole process group. A worker that dies of it mid-task leaves
    # the pool waiting for a result forever; the parent alone handles it, by terminating the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork starts workers in milliseconds with the parent's index and caches already built;
    # elsewhere (macOS, Windows) spawn is the safe choice.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def worker_pool(dataset: AVMNISTAudioDataset, workers: int) -> multiprocessing.pool.Pool:
    """A pool of ``workers`` processes, each holding ``dataset`` (see :func:`worker_image`).

    Workers use one thread each and ignore Ctrl-C: the parent handles it by
    terminating the pool, so no worker dies mid-task and leaves the pool waiting.
    """
    return _pool_context().Pool(workers, initializer=_init_worker, initargs=(dataset,))


def worker_image(index: int) -> np.ndarray:
    """Item ``index`` of the pool's dataset (run inside a :func:`worker_pool` worker)."""
    return _WORKER_DATASET.spectrogram(index)


def _render_rows(dataset: AVMNISTAudioDataset, start: int, stop: int) -> np.ndarray:
    out = np.empty((stop - start, 112, 112), dtype=np.uint8)
    for k, i in enumerate(range(start, stop)):
        out[k] = dataset.spectrogram(i)
    return out


def _render_chunk(task: Tuple[int, int, int]) -> Tuple[int, np.ndarray]:
    chunk, start, stop = task
    return chunk, _render_rows(_WORKER_DATASET, start, stop)


def _rendered_chunks(dataset: AVMNISTAudioDataset, target: ExportTarget, chunks: List[int],
                     workers: int) -> Iterator[Tuple[int, np.ndarray]]:
    tasks = [(c, *target.chunk_range(c)) for c in chunks]
    if workers <= 1 or len(tasks) <= 1:
        for c, start, stop in tasks:
            yield c, _render_rows(dataset, start, stop)
        return
    pool = worker_pool(dataset, min(workers, len(tasks)))
    try:
        yield from pool.imap_unordered(_render_chunk, tasks)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


# ----------------------------------------------------------------------------
# export


def _write_multibench_labels(path: Path, labels: np.ndarray) -> None:
    """MultiBench reads ``{dir}/{split}_labels.npy`` beside ``audio/``; write it or check it."""
    split = path.stem.split("_")[0]
    labels_file = path.parent.parent / f"{split}_labels.npy"
    if labels_file.exists():
        try:
            existing = np.load(labels_file)
        except Exception as err:
            raise StorageError(f"{labels_file}: unreadable ({err}); delete it and export again") from None
        if existing.shape != labels.shape or not np.array_equal(existing, labels):
            raise StorageError(f"{labels_file}: holds other labels than this export's {split} split; "
                               "delete it or export to another --out")
        return
    tmp = labels_file.with_name(f".{labels_file.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(labels, dtype=np.int64))
        os.replace(tmp, labels_file)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"{labels_file}: cannot write the labels ({os.strerror(err.errno or 0)})") from None


class ImageHalfSkipped(UserWarning):
    """A MultiBench export wrote the audio but not the image half.

    Either MNIST's image files were not found, or another image file was already there (kept).
    """


def _image_sources(root: Optional[PathLike], images: Optional[PathLike], splits: Sequence[str],
                   labels: Dict[str, np.ndarray]) -> Dict[str, Tuple[Path, np.ndarray]]:
    """Each split's MNIST image file and pixels, checked against the split's labels.

    Runs before any row is rendered, so that a wrong pairing costs nothing. `images` given
    must be found; otherwise a split whose images are not under `root` is left out, and one
    :class:`ImageHalfSkipped` warning line says which, why and how to get them.
    """
    found: Dict[str, Tuple[Path, np.ndarray]] = {}
    missing: List[str] = []
    for split in splits:
        if images is not None:
            given = Path(images)
            if given.is_file() and len(splits) > 1:
                raise ParameterError(f"--images {given} is one file, but {len(splits)} splits are exported: "
                                     "give the folder holding both splits' MNIST image files, or one --split")
            image_file = given if given.is_file() else find_mnist_images(given, split)
        elif root is None:
            missing.append(split)
            continue
        else:
            try:
                image_file = find_mnist_images(root, split)
            except SourceError:
                missing.append(split)
                continue
        pixels = read_idx_images(image_file)
        check_pairing(image_file, pixels, labels[split], split)
        found[split] = (image_file, pixels)
    if missing:
        where = f"no MNIST {'/'.join(missing)} image file under {root}" if root is not None else \
            "no --root to look for MNIST's image files in"
        get = f"avmnist-audio download --root {root if root is not None else 'DATA'} --only mnist_images"
        files = f"image/{missing[0]}_data.npy" if len(missing) == 1 else f"image/{{{','.join(missing)}}}_data.npy"
        warnings.warn(
            f"the image half ({files}) is not written: {where}; get them with "
            f"'{get}' (or pass --images PATH, images= in Python) and run this export again: the audio is kept "
            "and only the image half is added",
            ImageHalfSkipped, stacklevel=3,
        )
    return found


def export(
    root: Optional[PathLike] = None,
    split: str = "train",
    scheme: Union[str, Scheme, Sequence[Union[str, Scheme]]] = "burst_noise",
    *,
    out: Optional[PathLike] = None,
    layout: str = "notebook",
    workers: int = 1,
    seed: int = 0,
    renderer: str = "fast",
    style: Optional[str] = None,
    shard: Union[None, str, Tuple[int, int]] = None,
    progress: bool = True,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    images: Optional[PathLike] = None,
    **dataset_kwargs: Any,
) -> List[Path]:
    """Generate whole splits into .npy files.

    Parameters
    ----------
    root : path, optional
        The data root, as for :class:`~avmnist_torch.AVMNISTAudioDataset`.
    split : {"train", "test", "all"}
    scheme : str, Scheme or list of them, or "all"
        ``"all"`` means the notebook's five schemes.
    out : path, optional
        Where to write; see :func:`output_path` (default: under ``root``).
    layout : {"notebook", "multibench"}
        The notebook's names, or MultiBench's ``{dir}/audio/{split}_data.npy``,
        which also gets ``{dir}/{split}_labels.npy`` and the image half
        ``{dir}/image/{split}_data.npy`` (see Notes).
    workers : int
        Worker processes generating rows; the parent writes them.
    seed, renderer, style, **dataset_kwargs
        Passed to the dataset; they decide the bytes and are recorded beside
        the file.
    shard : "K/N" or (K, N), optional
        Write only the K-th of N contiguous, disjoint row ranges (K from 0).
        Default: torchrun's ``RANK``/``WORLD_SIZE`` when set, else everything.
        The shard that writes the last missing rows completes the file, and
        only it (or a later run that finds the file complete) writes the
        split's labels and image half (multibench layout); the other shards
        check the pairing and skip them.
    progress : bool
        Show a progress bar (items/s, ETA) on stderr.
    chunk_rows : int
        Rows per unit of progress and locking. An interrupted export resumes
        with the chunk size it started with.
    images : path, optional
        Multibench layout only: where MNIST's image files are, an idx3 file
        (``t10k-images-idx3-ubyte[.gz]``, for one split) or a folder searched
        like `root` (``mnist/``, torchvision's ``MNIST/raw/``, or the folder
        itself). Default: look under `root`.

    Returns
    -------
    list of Path
        The files that are complete after this call: each audio file, followed
        by its image half when one was written. A shard whose file still awaits
        other shards does not list it.

    Raises
    ------
    ParameterError
        An option is out of range (split, layout, workers, shard, an ``out``
        naming one file for several, `images` without a MultiBench folder or
        naming one file for two splits).
    SourceError
        Multibench layout: MNIST's image file is broken, or its images do not
        show the digits of the labels the audio follows (see
        :func:`~avmnist_torch.paired.check_pairing`); raised before anything is
        written. `images` given but no image file found there.
    StorageError
        The output cannot be written (the message names the file and why), a
        file or an export in progress has other parameters (never mixed), or
        another exporter holds the same rows (:class:`~avmnist_torch.storage.LockedError`).

    Notes
    -----
    Interrupting (Ctrl-C, ``kill -9``, a crash, a full disk) never leaves a
    file under the final name; rerunning the same call continues from the last
    chunk written and gives the same bytes as an uninterrupted run.

    The image half (multibench layout) is MNIST's images of the split through
    the published PCA recipe (:mod:`avmnist_torch.image_pca`), float64
    ``(N, 784)``, fitted once per split and kept in the cache folder, so each
    scheme's folder gets a copy without a second fit. Before any row is
    rendered, every split's images are read and checked to show the digits of
    the labels (:func:`~avmnist_torch.paired.check_pairing`); a mismatch is
    refused with nothing written. The image file is written after the split's
    audio file and labels are complete, atomically; an identical file already
    there is left alone, and a different one (say, a copy of the published
    file) is kept, with an :class:`ImageHalfSkipped` warning saying so. When
    MNIST's image files are not found (and `images` was not given), the audio
    is exported all the same and one :class:`ImageHalfSkipped` warning says
    how to get them
    (``avmnist-audio download --root DATA --only mnist_images``); running the
    export again afterwards adds the image half without re-rendering audio.
    """
    if workers < 1:
        raise ParameterError(f"workers must be at least 1, got {workers}")
    splits, schemes = _splits(split), _schemes(scheme)
    one_file = out is not None and str(out).endswith(".npy")
    if one_file and len(splits) * len(schemes) > 1:
        raise ParameterError(f"--out {out} names one file, but {len(splits) * len(schemes)} are to be written")
    with_images = layout == "multibench" and not one_file
    if images is not None and not with_images:
        raise ParameterError(f"--images {images}: only the multibench layout, written to a folder, has an image "
                             "half (use --layout multibench and an --out folder, not a .npy file)")
    k, n = parse_shard(shard)

    def dataset_for(sc: Scheme, sp: str) -> AVMNISTAudioDataset:
        return AVMNISTAudioDataset(root, split=sp, scheme=sc, seed=seed, renderer=renderer, style=style,
                                   **dataset_kwargs)

    first = {sp: dataset_for(schemes[0], sp) for sp in splits} if with_images else {}
    image_sources = _image_sources(root, images, splits, {sp: ds.labels for sp, ds in first.items()}) \
        if with_images else {}
    # Provenance only (not compared): lets `verify` find the sources again.
    made_from = {"root": None if root is None else str(Path(root).resolve())}
    made_from.update({key: str(Path(v).resolve()) for key, v in dataset_kwargs.items()
                      if key in ("recordings", "noises", "labels") and isinstance(v, (str, os.PathLike))})
    done: List[Path] = []
    for sc in schemes:
        for sp in splits:
            path = output_path(root, sp, sc.name, out=out, layout=layout, several_schemes=len(schemes) > 1)
            dataset = first.pop(sp) if sc is schemes[0] and sp in first else dataset_for(sc, sp)
            if not _export_one(dataset, path, workers=workers, shard=(k, n), progress=progress,
                               chunk_rows=chunk_rows, made_from=made_from):
                continue
            done.append(path)
            if with_images:
                _write_multibench_labels(path, dataset.labels)
                written = _write_image_half(path, sp, *image_sources[sp], progress=progress) \
                    if sp in image_sources else None
                if written is not None:
                    done.append(written)
    return done


def _write_image_half(audio_path: Path, split: str, image_file: Path, pixels: np.ndarray, *,
                      progress: bool) -> Optional[Path]:
    """Write the split's image half beside its audio; None when another file there is kept."""
    path = image_half_path(audio_path, split)
    if path.exists():
        # Perhaps the user's copy of the published file, put there on purpose: never replaced
        # silently. An identical file is simply left alone.
        if _holds(path, image_half(pixels)):
            return path
        warnings.warn(
            f"{path}: kept as it is, not replaced by the image half made from {image_file}: it holds other "
            "values (a copy of the published file, or another recipe's); delete it and run this export again "
            "to have it written",
            ImageHalfSkipped, stacklevel=3,
        )
        return None
    if progress:
        print(f"{path}: image half from {image_file} (PCA recipe, see avmnist_torch.image_pca)", file=sys.stderr)
    return write_image_half(path, pixels)


def _holds(path: Path, rows: np.ndarray) -> bool:
    try:
        existing = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False
    return existing.shape == rows.shape and existing.dtype == rows.dtype and bool(np.array_equal(existing, rows))


def _export_one(dataset: AVMNISTAudioDataset, path: Path, *, workers: int, shard: Tuple[int, int],
                progress: bool, chunk_rows: int, made_from: Optional[Dict[str, Any]] = None) -> bool:
    target = ExportTarget(path, dict(dataset.metadata(), made_from=made_from or {}), chunk_rows)
    if target.open() == "complete":
        if progress:
            print(f"{path}: already complete", file=sys.stderr)
        return True
    with target:
        first, stop = target.shard_chunks(*shard)
        todo = target.claim(first, stop)
        total = sum(b - a for a, b in map(target.chunk_range, todo))
        bar = None
        if progress:
            label = path.name if shard[1] == 1 else f"{path.name} [shard {shard[0]}/{shard[1]}]"
            bar = tqdm(total=total, unit="item", desc=label, file=sys.stderr, dynamic_ncols=True)
        try:
            for chunk, rows in _rendered_chunks(dataset, target, todo, workers):
                target.write_chunk(chunk, rows)
                if bar is not None:
                    bar.update(len(rows))
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
                bar = None
            print(f"\ninterrupted: {path} is not finished; rerun the same command to continue "
                  "(written rows are kept)", file=sys.stderr)
            raise
        finally:
            if bar is not None:
                bar.close()
        complete = target.finish()
    if not complete and progress:
        print(f"{path}: shard {shard[0]}/{shard[1]} written; the file completes when the other shards finish",
              file=sys.stderr)
    return complete
