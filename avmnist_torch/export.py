"""Exporting whole splits to .npy files, and checking exported files against regeneration.

``export`` writes the notebook's files (``avmnist/audio/{split}_data_augmented_{scheme}.npy``)
or MultiBench's (``{dir}/audio/{split}_data.npy``), as real .npy files of
``(N, 112, 112) uint8``, using several worker processes, resumable after any
interruption and shardable across machines; see :mod:`avmnist_torch.storage`
for how a file in progress is kept safe. The bytes do not depend on the number
of workers, shards or interruptions: every item is a pure function of its index.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .dataset import AVMNISTAudioDataset
from .schemes import SCHEME_NAMES, Scheme, get_scheme
from .sources.fsdd import SPLITS
from .storage import (
    ExportTarget,
    StorageError,
    metadata_differences,
    multibench_path,
    notebook_path,
    open_rows,
    read_sidecar,
)

PathLike = Union[str, os.PathLike]
LAYOUTS = ("notebook", "multibench")
#: The notebook's five schemes, which ``scheme="all"`` means (not "clean", which it never wrote).
NOTEBOOK_SCHEMES = tuple(name for name in SCHEME_NAMES if name != "clean")
DEFAULT_CHUNK_ROWS = 250

__all__ = ["export", "verify", "VerifyReport", "parse_shard", "output_path", "LAYOUTS", "NOTEBOOK_SCHEMES"]


# ----------------------------------------------------------------------------
# what to write where


def _splits(split: str) -> Tuple[str, ...]:
    if split == "all":
        return SPLITS
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose 'train', 'test' or 'all'")
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
        raise ValueError(f"unknown layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    if out is not None and str(out).endswith(".npy"):
        return Path(out)
    if layout == "notebook":
        base = out if out is not None else root
        if base is None:
            raise ValueError("give root or out: where to write avmnist/audio/...")
        return notebook_path(base, split, scheme)
    if out is None:
        if root is None:
            raise ValueError("give root or out: where to write the MultiBench layout")
        directory = Path(root) / "multibench" / scheme
    else:
        directory = Path(out) / scheme if several_schemes else Path(out)
    return multibench_path(directory, split)


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
            raise ValueError(f"{origin}: write K/N, e.g. 0/3 (K counts from 0)")
        shard = (m.group(1), m.group(2))
    try:
        k, n = int(shard[0]), int(shard[1])
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"{origin}: expected K/N with integers, e.g. 0/3") from None
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"{origin}: need N >= 1 and 0 <= K < N (K counts from 0: 0/{max(n, 1)} .. "
                         f"{max(n, 1) - 1}/{max(n, 1)})")
    return k, n


# ----------------------------------------------------------------------------
# workers

_WORKER_DATASET: Optional[AVMNISTAudioDataset] = None


def _limit_threads() -> None:
    # Each worker is one of N processes on N cores; library thread pools would only contend.
    try:
        import torch

        torch.set_num_threads(1)
    except Exception:  # pragma: no cover - torch is a dependency, but threads are only a hint
        pass
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


def _render_rows(dataset: AVMNISTAudioDataset, start: int, stop: int) -> np.ndarray:
    out = np.empty((stop - start, 112, 112), dtype=np.uint8)
    for k, i in enumerate(range(start, stop)):
        out[k] = dataset.image(i)
    return out


def _render_chunk(task: Tuple[int, int, int]) -> Tuple[int, np.ndarray]:
    chunk, start, stop = task
    return chunk, _render_rows(_WORKER_DATASET, start, stop)


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork starts workers in milliseconds with the parent's index and caches already built;
    # elsewhere (macOS, Windows) spawn is the safe choice.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _rendered_chunks(dataset: AVMNISTAudioDataset, target: ExportTarget, chunks: List[int],
                     workers: int) -> Iterator[Tuple[int, np.ndarray]]:
    tasks = [(c, *target.chunk_range(c)) for c in chunks]
    if workers <= 1 or len(tasks) <= 1:
        for c, start, stop in tasks:
            yield c, _render_rows(dataset, start, stop)
        return
    pool = _pool_context().Pool(min(workers, len(tasks)), initializer=_init_worker, initargs=(dataset,))
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
        The notebook's names, or MultiBench's ``{dir}/audio/{split}_data.npy``
        (which also gets ``{dir}/{split}_labels.npy``).
    workers : int
        Worker processes generating rows; the parent writes them.
    seed, renderer, style, **dataset_kwargs
        Passed to the dataset; they decide the bytes and are recorded beside
        the file.
    shard : "K/N" or (K, N), optional
        Write only the K-th of N contiguous, disjoint row ranges (K from 0).
        Default: torchrun's ``RANK``/``WORLD_SIZE`` when set, else everything.
        The shard that writes the last missing rows completes the file.
    progress : bool
        Show a progress bar (items/s, ETA) on stderr.
    chunk_rows : int
        Rows per unit of progress and locking. An interrupted export resumes
        with the chunk size it started with.

    Returns
    -------
    list of Path
        The files that are complete after this call. A shard whose file still
        awaits other shards does not list it.

    Raises
    ------
    StorageError
        The output cannot be written (the message names the file and why), a
        file or an export in progress has other parameters (never mixed), or
        another exporter holds the same rows (:class:`~avmnist_torch.storage.LockedError`).

    Notes
    -----
    Interrupting (Ctrl-C, ``kill -9``, a crash, a full disk) never leaves a
    file under the final name; rerunning the same call continues from the last
    chunk written and gives the same bytes as an uninterrupted run.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    splits, schemes = _splits(split), _schemes(scheme)
    if layout == "multibench" and out is not None and str(out).endswith(".npy") and len(splits) * len(schemes) > 1:
        raise ValueError(f"--out {out} names one file, but {len(splits) * len(schemes)} are to be written")
    if layout == "notebook" and out is not None and str(out).endswith(".npy") and len(splits) * len(schemes) > 1:
        raise ValueError(f"--out {out} names one file, but {len(splits) * len(schemes)} are to be written")
    k, n = parse_shard(shard)
    done: List[Path] = []
    for sc in schemes:
        for sp in splits:
            path = output_path(root, sp, sc.name, out=out, layout=layout, several_schemes=len(schemes) > 1)
            dataset = AVMNISTAudioDataset(root, split=sp, scheme=sc, seed=seed, renderer=renderer, style=style,
                                          **dataset_kwargs)
            # Provenance only (not compared): lets `verify` find the sources again.
            made_from = {"root": None if root is None else str(Path(root).resolve())}
            made_from.update({k: str(Path(v).resolve()) for k, v in dataset_kwargs.items()
                              if k in ("recordings", "noises", "labels") and isinstance(v, (str, os.PathLike))})
            if _export_one(dataset, path, workers=workers, shard=(k, n), progress=progress, chunk_rows=chunk_rows,
                           made_from=made_from):
                if layout == "multibench" and not str(out or "").endswith(".npy"):
                    _write_multibench_labels(path, dataset.labels)
                done.append(path)
    return done


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
            from tqdm.auto import tqdm

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


# ----------------------------------------------------------------------------
# verify

_NOTEBOOK_NAME = re.compile(r"^(train|test)_data_augmented_([a-z_]+)\.npy$")


@dataclass
class VerifyReport:
    """What ``verify`` found: rows compared, rows that differ, and metadata notes."""

    path: Path
    kind: str
    rows: int
    checked: List[int] = field(default_factory=list)
    mismatches: List[Tuple[int, int]] = field(default_factory=list)  # (row, differing pixels)
    notes: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        lines = [f"{self.path}: {self.kind} file, {self.rows} rows; regenerated {len(self.checked)}"]
        lines += [f"note: {n}" for n in self.notes]
        if self.ok:
            lines.append("all regenerated rows match")
        else:
            shown = ", ".join(f"row {r} ({px} px)" for r, px in self.mismatches[:20])
            more = f" and {len(self.mismatches) - 20} more" if len(self.mismatches) > 20 else ""
            lines.append(f"MISMATCH in {len(self.mismatches)} of {len(self.checked)} rows: {shown}{more}")
        return "\n".join(lines)


def _infer_root(path: Path) -> Optional[Path]:
    if path.parent.name == "audio" and path.parent.parent.name == "avmnist":
        return path.parent.parent.parent
    return None


def verify(
    path: PathLike,
    root: Optional[PathLike] = None,
    *,
    sample: Optional[int] = 64,
    rows: Optional[Sequence[int]] = None,
    split: Optional[str] = None,
    scheme: Union[None, str, Scheme] = None,
    seed: Optional[int] = None,
    renderer: Optional[str] = None,
    style: Optional[str] = None,
    workers: int = 1,
    progress: bool = False,
    **dataset_kwargs: Any,
) -> VerifyReport:
    """Regenerate rows of a file and compare them byte for byte.

    Parameters
    ----------
    path : path
        A finished export (its sidecar gives split, scheme, seed and style) or a
        notebook file (split and scheme from its name, seed 0; the notebook drew
        its masks from a global random stream, so only rows of schemes without
        random draws can match it).
    root : path, optional
        The data root. Default: the one the sidecar records, else the one the
        notebook layout implies (``root/avmnist/audio/FILE``).
    sample : int or None
        How many rows to check, spread at random (seeded) over the file, first
        and last always included; None checks every row.
    rows : list of int, optional
        Exactly these rows instead.
    split, scheme, seed, renderer, style
        Override what the sidecar or the name says.
    """
    path = Path(path)
    meta = read_sidecar(path)
    array, kind = open_rows(path)
    n = array.shape[0]
    report = VerifyReport(path=path, kind=kind, rows=n)
    name_match = _NOTEBOOK_NAME.match(path.name)
    if meta is not None:
        split = split or meta.get("split")
        scheme = scheme or meta.get("scheme")
        seed = meta.get("seed", 0) if seed is None else seed
        style = style or meta.get("style")
        renderer = renderer or ("fast" if style else meta.get("renderer", "fast"))
    else:
        report.notes.append("no sidecar metadata: options come from the file name and the arguments")
        if name_match:
            split = split or name_match.group(1)
            scheme = scheme or name_match.group(2)
        if kind == "raw":
            report.notes.append("a raw notebook file: its random draws came from the notebook's global stream, "
                                "so rows of schemes that draw masks are not expected to match")
    if split is None or scheme is None:
        raise ValueError(f"{path}: cannot tell its split and scheme (no sidecar, no notebook name); "
                         "give --split and --scheme")
    if root is None and "recordings" not in dataset_kwargs:
        made_from = (meta or {}).get("made_from") or {}
        if made_from.get("root") or made_from.get("recordings"):
            root = made_from.get("root")
            for key in ("recordings", "noises", "labels"):
                if made_from.get(key):
                    dataset_kwargs.setdefault(key, made_from[key])
        else:
            root = _infer_root(path)
        if root is None:
            raise ValueError(f"{path}: give --root (the data root the file was made from)")
    if isinstance(scheme, str) and meta is not None and scheme not in SCHEME_NAMES:
        raise ValueError(f"{path}: made with the custom scheme {scheme!r}; call verify(..., scheme=<that Scheme>)")
    dataset = AVMNISTAudioDataset(root, split=split, scheme=scheme, seed=seed or 0,
                                  renderer=renderer or "fast", style=style, **dataset_kwargs)
    if len(dataset) != n:
        raise StorageError(f"{path}: has {n} rows but the {split} split has {len(dataset)} labels")
    if meta is not None:
        expected = dataset.metadata()
        for key, found, now in metadata_differences(meta, expected):
            if key == "sources":
                report.notes.append("the sources under this root differ from those the file was made from")
            else:
                report.notes.append(f"{key}: file says {found!r}, regenerating with {now!r}")
    if rows is not None:
        checked = sorted({int(r) % n for r in rows})
    elif sample is None or sample >= n:
        checked = list(range(n))
    else:
        pick = np.random.default_rng(0).choice(np.arange(1, n - 1), size=max(0, sample - 2), replace=False)
        checked = sorted({0, n - 1, *pick.tolist()})
    report.checked = checked
    iterator = checked
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(checked, unit="item", desc=f"verify {path.name}", file=sys.stderr)
    if workers > 1 and len(checked) > 1:
        with _pool_context().Pool(workers, initializer=_init_worker, initargs=(dataset,)) as pool:
            images = pool.imap(_render_one, iterator, chunksize=8)
            for i, image in zip(checked, images):
                _compare(report, i, array[i], image)
    else:
        for i in iterator:
            _compare(report, i, array[i], dataset.image(i))
    return report


def _render_one(i: int) -> np.ndarray:
    return _WORKER_DATASET.image(i)


def _compare(report: VerifyReport, i: int, stored: np.ndarray, regenerated: np.ndarray) -> None:
    differ = int(np.count_nonzero(np.asarray(stored) != regenerated))
    if differ:
        report.mismatches.append((i, differ))


# ----------------------------------------------------------------------------
# CLI


def add_source_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--recordings/--noises/--labels`` options every data-reading subcommand shares."""
    p.add_argument("--recordings", type=Path, default=None, help="FSDD recordings folder (default ROOT/recordings)")
    p.add_argument("--noises", type=Path, default=None,
                   help="ESC-50 folder with audio/ and meta/esc50.csv (default ROOT/noise_recordings)")
    p.add_argument("--labels", type=Path, default=None,
                   help="labels: a folder holding {train,test}_labels.npy or a torchvision MNIST root "
                        "(default ROOT)")


def sources_given(args: argparse.Namespace, command: str) -> bool:
    """False, after saying what to give, when neither --root nor --recordings was given."""
    if args.root is None and args.recordings is None:
        print(f"avmnist-audio {command}: error: give --root (or --recordings, --noises and --labels)", file=sys.stderr)
        return False
    return True


def source_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """The dataset keywords given by :func:`add_source_arguments`'s options."""
    return {k: getattr(args, k) for k in ("recordings", "noises", "labels") if getattr(args, k, None) is not None}


def add_export_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``export``; returns its parser (``func`` default set)."""
    p = subparsers.add_parser(
        "export",
        help="generate whole splits into .npy files (notebook or MultiBench layout)",
        description=(
            "Generate splits into real .npy files of (N, 112, 112) uint8: the notebook's "
            "avmnist/audio/{split}_data_augmented_{scheme}.npy or MultiBench's {dir}/audio/{split}_data.npy. "
            "Interrupted exports resume when the same command is run again; --shard K/N splits the rows "
            "between machines sharing a file system."
        ),
    )
    p.add_argument("--root", type=Path, default=None, help="data root (recordings/, noise_recordings/, avmnist/)")
    p.add_argument("--split", default="train", choices=(*SPLITS, "all"))
    p.add_argument("--scheme", default="burst_noise", help=f"one of {', '.join(SCHEME_NAMES)}, or all (the five)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--layout", default="notebook", choices=LAYOUTS)
    p.add_argument("--out", type=Path, default=None,
                   help="output root (notebook), folder (multibench) or a .npy file (default under ROOT)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--renderer", default="fast", choices=("fast", "matplotlib"))
    p.add_argument("--style", default=None, help="matplotlib pixel style for the fast renderer: 3.9, 3.10, 3.11")
    p.add_argument("--shard", default=None,
                   help="K/N: write the K-th (from 0) of N row ranges (default: RANK/WORLD_SIZE when set)")
    p.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_source_arguments(p)
    p.set_defaults(func=_cli_export)
    return p


def _cli_export(args: argparse.Namespace) -> int:
    if not sources_given(args, "export"):
        return 2
    paths = export(
        args.root, args.split, args.scheme, out=args.out, layout=args.layout, workers=args.workers,
        seed=args.seed, renderer=args.renderer, style=args.style, shard=args.shard,
        progress=not args.quiet, chunk_rows=args.chunk_rows, **source_kwargs(args),
    )
    for path in paths:
        print(path)
    return 0


def add_verify_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``verify``; returns its parser (``func`` default set)."""
    p = subparsers.add_parser(
        "verify",
        help="regenerate rows of an exported file and report any that differ",
        description="Regenerate a sample of rows (or all) of FILE and compare them byte for byte. "
                    "Exit status 0 when all match, 1 when any differs.",
    )
    p.add_argument("file", type=Path)
    p.add_argument("--root", type=Path, default=None,
                   help="data root (default: inferred from ROOT/avmnist/audio/FILE)")
    p.add_argument("--sample", type=int, default=64, help="rows to check (default 64, first and last included)")
    p.add_argument("--all", action="store_true", help="check every row")
    p.add_argument("--rows", type=int, nargs="+", default=None, help="check exactly these rows")
    p.add_argument("--split", default=None, choices=SPLITS, help="override the sidecar / file name")
    p.add_argument("--scheme", default=None, help="override the sidecar / file name")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--renderer", default=None, choices=("fast", "matplotlib"))
    p.add_argument("--style", default=None)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--quiet", action="store_true")
    add_source_arguments(p)
    p.set_defaults(func=_cli_verify)
    return p


def _cli_verify(args: argparse.Namespace) -> int:
    report = verify(
        args.file, args.root, sample=None if args.all else args.sample, rows=args.rows, split=args.split,
        scheme=args.scheme, seed=args.seed, renderer=args.renderer, style=args.style, workers=args.workers,
        progress=not args.quiet, **source_kwargs(args),
    )
    print(report.summary())
    return 0 if report.ok else 1
