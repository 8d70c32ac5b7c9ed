"""Exporting whole splits to files that AV-MNIST's training code reads unchanged.

The notebook's layout or MultiBench's, ``(N, 112, 112) uint8``, with the split's labels and, when MNIST's
image files are at hand, the image half, so that either project's loader runs on the folder with nothing
else. Every item is a pure function of its options, so a file is written whole by worker processes: the
bytes do not depend on the number of workers. Names and formats: ``docs/formats.md``.
"""

from __future__ import annotations

import functools
import io
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from tqdm.auto import tqdm

from .common import SPLITS, MetadataMismatch, ParameterError, PathLike, SourceError, StorageError
from .exported import check_sidecar
from .files import FileWriter, StoredFile, npy_header, read_sidecar, write_bytes
from .generator import AudioItemGenerator
from .image_pca import holds_image_half, image_half, write_image_half
from .item_options import describe_differences, first_items_identity, identity_differences
from .paired import check_pairing
from .schemes import SCHEME_NAMES, Scheme, get_scheme
from .sources.mnist_idx import find_mnist_images, read_idx_images
from .storage import FILE_FORMATS, FORMAT, ITEM_SHAPE, ROW_BYTES, multibench_path, notebook_path
from .workers import render_rows, row_tasks

LAYOUTS = ("notebook", "multibench")
#: The notebook's five schemes, which ``scheme="all"`` means (not "clean", which it never wrote).
NOTEBOOK_SCHEMES = tuple(name for name in SCHEME_NAMES if name != "clean")
#: Rows per task a worker renders: small enough for a steady progress bar, large enough for the batched path.
TASK_ROWS = 256

__all__ = ["export", "output_path", "image_half_path", "stopped_note", "LAYOUTS", "NOTEBOOK_SCHEMES",
           "ImageHalfSkipped"]


def _schemes(scheme: Union[str, Scheme, Sequence[Union[str, Scheme]]]) -> Tuple[Scheme, ...]:
    if isinstance(scheme, str) and scheme.strip().lower() == "all":
        scheme = NOTEBOOK_SCHEMES
    return tuple(map(get_scheme, [scheme] if isinstance(scheme, (str, Scheme)) else scheme))


def output_path(
    root: Optional[PathLike], split: str, scheme: str, *, out: Optional[PathLike] = None,
    layout: str = "notebook", several_schemes: bool = False, epoch: Optional[int] = None,
    limit: Optional[int] = None,
) -> Path:
    """Where ``export`` writes one (split, scheme): see ``docs/formats.md`` ("Output names")."""
    if layout not in LAYOUTS:
        raise ParameterError(f"unknown layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    if out is not None and str(out).endswith(".npy"):
        return Path(out)
    if out is None and root is None:
        raise ParameterError("give root or out: where to write "
                             + ("avmnist/audio/..." if layout == "notebook" else "the MultiBench layout"))
    if layout == "notebook":
        path = notebook_path(out if out is not None else root, split, scheme, epoch=epoch)
    elif out is None:
        folder = scheme + ("" if epoch is None else f"_epoch{epoch}")
        path = multibench_path(Path(root) / "multibench" / folder, split)
    else:
        path = multibench_path(Path(out) / scheme if several_schemes else Path(out), split)
    return path if limit is None else path.with_name(f"{path.stem}_first{limit}{path.suffix}")


def image_half_path(audio_path: PathLike, split: str) -> Path:
    """The image file ``{dir}/image/{split}_data.npy`` beside the audio file ``{dir}/audio/...``."""
    return Path(audio_path).parent.parent / "image" / f"{split}_data.npy"


def _write_labels(path: Path, split: str, labels: np.ndarray) -> None:
    """Write the split's labels beside ``{dir}/audio/``, or check the file there."""
    labels_file = path.parent.parent / f"{split}_labels.npy"
    if labels_file.exists():
        try:
            existing = np.load(io.BytesIO(StoredFile.open(labels_file).read(0, labels_file.stat().st_size)))
        except (OSError, ValueError, StorageError) as err:
            raise StorageError(f"{labels_file}: unreadable ({err}); delete it and export again") from None
        if existing.shape != labels.shape or not np.array_equal(existing, labels):
            raise StorageError(f"{labels_file}: holds other labels than this export's {split} split; "
                               "delete it or export to another --out")
        return
    rows = np.ascontiguousarray(labels, dtype="<i8")
    write_bytes(labels_file, npy_header(rows.shape, "<i8") + rows.tobytes())


class ImageHalfSkipped(UserWarning):
    """An export wrote the audio but not the image half: no MNIST image files, or another image file kept."""


def _image_sources(root: Optional[PathLike], images: Optional[PathLike], splits: Sequence[str],
                   labels: Dict[str, np.ndarray], check_mnist: bool = True) -> Dict[str, Tuple[Path, np.ndarray]]:
    """Each split's MNIST image file and pixels, checked against its labels before any row is rendered; a
    split without images under `root` (no `images` given) is left out, with one :class:`ImageHalfSkipped`."""
    given = None if images is None else Path(images)
    if given is not None and given.is_file() and len(splits) > 1:
        raise ParameterError(f"--images {given} is one file, but {len(splits)} splits are exported: "
                             "give the folder holding both splits' MNIST image files, or one --split")
    found: Dict[str, Tuple[Path, np.ndarray]] = {}
    for split in splits if given is not None or root is not None else ():
        try:
            image_file = given if given is not None and given.is_file() else find_mnist_images(given or root, split)
        except SourceError:
            if given is not None:  # where the user said they are
                raise
            continue
        pixels = read_idx_images(image_file, check=check_mnist)
        check_pairing(image_file, pixels, labels[split], split, check_mnist=check_mnist)
        found[split] = (image_file, pixels)
    missing = [split for split in splits if split not in found]
    if missing:
        where = f"no MNIST {'/'.join(missing)} image file under {root}" if root is not None else \
            "no --root to look for MNIST's image files in"
        get = f"avmnist download --root {root if root is not None else 'DATA'} --only mnist_images"
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
    format: Optional[str] = None,
    workers: int = 1,
    seed: int = 0,
    renderer: str = "fast",
    style: Optional[str] = None,
    progress: bool = True,
    images: Optional[PathLike] = None,
    check_mnist: bool = True,
    limit: Optional[int] = None,
    **dataset_kwargs: Any,
) -> List[Path]:
    """Generate whole splits into files, with their labels and image half.

    Parameters
    ----------
    root : path, optional
        The data root, as for the datasets.
    split : {"train", "test", "all"}
    scheme : str, Scheme or list of them, or "all"
        ``"all"`` means the notebook's five schemes.
    out : path, optional
        Where to write; see :func:`output_path` (default: under ``root``).
    layout : {"notebook", "multibench"}
        The notebook's names or MultiBench's, each with the labels and the image half beside.
    format : {"raw", "npy"}, optional
        ``"raw"``: rows without a header, as the notebook wrote them (the notebook layout's default);
        ``"npy"``: a real .npy file (MultiBench's only one).
    workers : int
        Worker processes generating rows; the parent writes them.
    seed, renderer, style, **dataset_kwargs
        Passed to the :class:`~avmnist_torch.generator.AudioItemGenerator` (with ``draws="per_epoch"``
        and ``epoch=K``, epoch K's items); they decide the bytes and are recorded in the sidecar.
    progress : bool
        Show a progress bar on stderr.
    images : path, optional
        MNIST's image files: an idx3 file (one split) or a folder searched like `root` (default: `root`).
    check_mnist : bool, default True
        As for :class:`~avmnist_torch.paired.AVMNISTDataset`.
    limit : int, optional
        Write only each split's first `limit` items, to try things: a partial export, named
        ``..._first{limit}.npy``, its range recorded in the sidecar, with no labels or image half.

    Returns
    -------
    list of Path
        The audio files complete after this call, each followed by its image half when one is there.

    Raises
    ------
    ParameterError
        An option is out of range, or ``out`` or `images` names one file for several.
    SourceError
        MNIST's image file is broken, not found where `images` says, or its images do not show the
        digits of the labels; raised before anything is written.
    StorageError
        The output cannot be written, or a file there was made with other options
        (:class:`~avmnist_torch.common.MetadataMismatch`) or by something else: never overwritten.
    WorkerError
        A worker process died; nothing was finished.

    Notes
    -----
    A file already there with a matching sidecar and sha256 is left alone; a damaged one, or another
    version's, is written again. A different image file already there is kept, with :class:`ImageHalfSkipped`.
    """
    if workers < 1:
        raise ParameterError(f"workers must be at least 1, got {workers}")
    if split != "all" and split not in SPLITS:
        raise ParameterError(f"unknown split {split!r}: choose 'train', 'test' or 'all'")
    file_format = ("raw" if layout == "notebook" else "npy") if format is None else format
    if file_format not in FILE_FORMATS:
        raise ParameterError(f"unknown format {format!r}: choose one of {', '.join(FILE_FORMATS)}")
    if layout == "multibench" and file_format != "npy":
        raise ParameterError("--format raw: the multibench layout is always a .npy file, since MultiBench's "
                             "loader reads it with np.load")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ParameterError(f"limit must be a whole number of items, 1 or more, got {limit!r}")
    splits, schemes = SPLITS if split == "all" else (split,), _schemes(scheme)
    one_file = out is not None and str(out).endswith(".npy")
    if one_file and len(splits) * len(schemes) > 1:
        raise ParameterError(f"--out {out} names one file, but {len(splits) * len(schemes)} are to be written")
    # One epoch of per-epoch items carries its epoch in its name, as from_export="auto" looks for it.
    epoch = int(dataset_kwargs.get("epoch", 0)) if dataset_kwargs.get("draws") == "per_epoch" else None
    targets = [(sc, sp, output_path(root, sp, sc.name, out=out, layout=layout, several_schemes=len(schemes) > 1,
                                    epoch=epoch, limit=limit)) for sc in schemes for sp in splits]
    # A partial export is the audio alone: labels and image half of the whole split would not pair with it.
    with_images = not one_file and limit is None
    if images is not None and not with_images:
        raise ParameterError(f"--images {images}: " + ("--out names one .npy file, which gets no image half "
                             "(give an --out folder)" if one_file else "a partial export (--limit) gets no image half"))
    items_for = functools.partial(AudioItemGenerator, root, seed=seed, renderer=renderer, style=style, **dataset_kwargs)
    first = {sp: items_for(sp, schemes[0]) for sp in splits} if with_images else {}
    image_sources = _image_sources(root, images, splits, {sp: ds.labels for sp, ds in first.items()},
                                   check_mnist) if with_images else {}
    # Provenance only (not compared): lets `verify` find the sources again.
    made_from = {"root": None if root is None else str(Path(root).resolve())}
    made_from.update({key: str(Path(v).resolve()) for key, v in dataset_kwargs.items()
                      if key in ("recordings", "noises", "labels") and isinstance(v, (str, os.PathLike))})
    done: List[Path] = []
    writing: Optional[Path] = None
    try:
        for sc, sp, path in targets:
            writing = path
            items = first.pop(sp) if sc is schemes[0] and sp in first else items_for(sp, sc)
            _export_one(items, path, file_format=file_format, workers=workers, progress=progress,
                        made_from=made_from, limit=limit)
            done.append(path)
            if with_images:
                writing = image_half_path(path, sp)
                _write_labels(path, sp, items.labels)
                if sp in image_sources and _write_image_half(writing, *image_sources[sp], progress=progress):
                    done.append(writing)
            writing = None
    except KeyboardInterrupt as stop:
        # Ctrl-C, or SIGTERM as the command line raises it: the workers are stopped and the temporary
        # file removed by now; say once what is kept.
        raise type(stop)(stopped_note(writing, done)).with_traceback(stop.__traceback__) from None
    return done


def stopped_note(unfinished: Optional[Path], finished: Sequence[Path]) -> str:
    """What an interrupted export leaves, in one line: the file it was writing is not there, finished ones are kept."""
    said = [f"{unfinished} was not written (nothing of it is left)"] if unfinished is not None else []
    if not finished:
        return "; ".join(said + ["nothing is finished: the same command run again starts from the beginning"])
    kept, it = (f"{finished[0]} is finished and", "it") if len(finished) == 1 else \
        (f"the {len(finished)} files finished are", "them")
    return "; ".join(said + [f"{kept} kept: the same command run again checks {it}, skips {it} and writes the rest"])


def _write_image_half(path: Path, image_file: Path, pixels: np.ndarray, *, progress: bool) -> bool:
    """Write the image half of `pixels` to `path`; False when another file there is kept."""
    if path.exists():  # perhaps the user's copy of the published file, put there on purpose
        if holds_image_half(path, image_half(pixels)):
            return True
        warnings.warn(
            f"{path}: kept as it is, not replaced by the image half made from {image_file}: it holds other "
            "values (a copy of the published file, or another recipe's); delete it and run this export again "
            "to have it written",
            ImageHalfSkipped, stacklevel=3,
        )
        return False
    _note(progress, f"{path}: image half from {image_file} (PCA recipe, see avmnist_torch.image_pca)")
    write_image_half(path, pixels)
    return True


_REMEDY = "delete it (and its .json) to replace it, or export to another --out"


def _note(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr)


def _already_there(path: Path, identity: Dict[str, Any], file_format: str, progress: bool) -> bool:
    """Whether ``path`` already holds these items, its sha256 checked; False when it must be (re)written.
    Refuses (never overwrites) a file without a sidecar, or one made with other options."""
    if not path.exists() and not path.is_symlink():
        return False
    meta = read_sidecar(path, _REMEDY)
    if meta is None:
        raise StorageError(f"{path} already exists and has no {path.name}.json saying what made it "
                           "(a notebook file?); delete or move it, or export to another --out")
    if str(meta.get("format", "")).startswith("avmnist-torch export") and meta.get("format") != FORMAT:
        _note(progress, f"{path}: written by another version of this package ({meta.get('format')}); writing it again")
        return False
    check_sidecar(path, meta, None, _REMEDY)
    diffs = identity_differences(meta["identity"], identity)
    if diffs:
        raise MetadataMismatch(f"{path} already exists and was made with other options: "
                               f"{describe_differences(diffs, 'file', 'this run')}; {_REMEDY}")
    if meta.get("file_format") != file_format:
        _note(progress, f"{path}: holds these items as a {meta.get('file_format')} file; writing it again as "
                        f"{file_format}")
        return False
    try:
        StoredFile.open(path, sha256=meta.get("sha256"), size=meta.get("size"), remedy="it is written again")
    except StorageError as err:
        _note(progress, f"{path}: damaged since it was written ({err}); writing it again")
        return False
    _note(progress, f"{path}: already complete (its sha256 checked)")
    return True


def _export_one(items: AudioItemGenerator, path: Path, *, file_format: str, workers: int, progress: bool,
                made_from: Dict[str, Any], limit: Optional[int]) -> None:
    n = len(items) if limit is None else min(limit, len(items))
    identity = items.metadata() if limit is None else first_items_identity(items.metadata(), n)
    if _already_there(path, identity, file_format, progress):
        return
    header = npy_header((n, *ITEM_SHAPE)) if file_format == "npy" else b""
    sidecar = {"format": FORMAT, "identity": identity, "file_format": file_format, "header_bytes": len(header),
               "renderer": items.renderer, "made_from": made_from, "host": platform.node(),
               "completed": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with tqdm(total=n, unit="item", desc=path.name, file=sys.stderr, dynamic_ncols=True, disable=not progress) as bar, \
            FileWriter(path, size=len(header) + n * ROW_BYTES) as writer:
        writer.append(header)
        tasks = row_tasks(range(n), workers, TASK_ROWS)
        for start, rows in render_rows(items, tasks, workers, f"export of {path}"):
            writer.write_at(len(header) + start * ROW_BYTES, np.ascontiguousarray(rows, dtype=np.uint8))
            bar.update(len(rows))
        bar.close()
        writer.commit(sidecar)

