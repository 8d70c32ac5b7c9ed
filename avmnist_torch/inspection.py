"""Looking at the data: what was found where (``info``) and a picture of items (``preview``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .common import SPLITS, ParameterError, PathLike, SourceError, StorageError
from .dataset import AVMNISTAudioDataset
from .files import io_error, temporary_pid
from .paired import AVMNISTDataset
from .schemes import SCHEME_NAMES
from .sources.esc50 import read_noise_split
from .sources.fsdd import list_recordings
from .sources.labels import load_labels
from .sources.mnist_idx import find_mnist_images
from .storage import open_recorded
from .verify import _NOTEBOOK_NAME, header_note, in_range

__all__ = ["info", "format_info", "preview"]


def info(root: Optional[PathLike] = None, *, recordings: Optional[PathLike] = None,
         noises: Optional[PathLike] = None, labels: Optional[PathLike] = None) -> Dict[str, Any]:
    """What data is where: recordings, noises and labels per split and digit, MNIST's images, and exported files.

    Nothing here raises for missing data: each part reports ``found: False`` with the reason, so the
    answer says everything that is wrong at once.

    Returns
    -------
    dict
        ``recordings``, ``noises``, ``labels``, ``images`` and ``exports`` sections.

    Raises
    ------
    ParameterError
        `root` is a file, not a folder.
    """
    if root is not None and Path(root).is_file():
        raise ParameterError(f"root {root} is a file, not a folder: give the data root, the folder that holds "
                             "recordings/, noise_recordings/ and avmnist/ ('avmnist download --root DATA' makes one)")
    root = Path(root) if root is not None else None
    rec_dir = Path(recordings) if recordings is not None else (root / "recordings" if root else None)
    noise_dir = Path(noises) if noises is not None else (root / "noise_recordings" if root else None)
    labels_src = labels if labels is not None else root
    out: Dict[str, Any] = {"root": None if root is None else str(root)}
    out["recordings"] = {"path": None if rec_dir is None else str(rec_dir), **_found(
        lambda: _recording_counts(list_recordings(rec_dir)), rec_dir, "no root and no recordings folder given")}
    out["noises"] = {"path": None if noise_dir is None else str(noise_dir), **_found(
        lambda: _noise_counts(read_noise_split(noise_dir)), noise_dir, "no root and no noises folder given")}
    out["labels"] = {"source": None if labels_src is None else str(labels_src)}
    for split in SPLITS:
        out["labels"][split] = _found(lambda: _label_counts(load_labels(labels_src, split)), labels_src,
                                      "no root and no labels given")
    out["images"] = {split: _found(lambda: {"path": str(find_mnist_images(root, split))}, root,
                                   "no root given to look for them in") for split in SPLITS}
    out["exports"] = _exports(root / "avmnist" / "audio") if root is not None else []
    return out


def _found(look: Callable[[], Dict[str, Any]], source: Any, missing: str) -> Dict[str, Any]:
    """What ``look()`` found with ``found: True``, or ``found: False`` and why (``missing`` without a source)."""
    try:
        if source is None:
            raise SourceError(missing)
        return {"found": True, **look()}
    except SourceError as err:
        return {"found": False, "error": str(err)}


def _recording_counts(recs: List[Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {"total": len(recs), "speakers": sorted({r.speaker for r in recs})}
    for split in SPLITS:
        counts = np.bincount([r.digit for r in recs if r.split == split], minlength=10)
        out[split] = {"total": int(counts.sum()), "per_digit": counts.tolist()}
    return out


def _noise_counts(split_noise: Any) -> Dict[str, Any]:
    return {"test_categories": list(split_noise.test_categories),
            "train_categories": len(split_noise.train_categories),
            **{split: {"clips": len(split_noise.files(split))} for split in SPLITS}}


def _label_counts(labels: np.ndarray) -> Dict[str, Any]:
    return {"items": len(labels), "per_digit": np.bincount(labels, minlength=10).tolist()}


def _exports(folder: Path) -> List[Dict[str, Any]]:
    """Each file of items in ``folder``: its format, rows and sidecar (not its rows: ``verify`` reads them),
    and what a reader should know."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.npy")):
        entry: Dict[str, Any] = {"path": str(path)}
        try:
            reader, kind, meta, other = open_recorded(path)
            entry.update(kind=kind, rows=len(reader))
            if meta is not None:
                identity = meta.get("identity") or {}
                entry.update({k: identity.get(k) for k in ("split", "scheme", "seed", "style", "version", "draws",
                                                            "items")})
            elif other is not None:
                entry["note"] = (f"its sidecar is not of this version (format {other.get('format')!r}): not served "
                                 "by from_export=; export it again")
            elif kind == "raw":
                entry["note"] = "the notebook's raw file (no metadata): served as stored, never checked"
            if kind == "npy" and _NOTEBOOK_NAME.match(path.name):
                entry["header_note"] = header_note(path, reader.offset, meta)
        except StorageError as err:
            entry.update(kind="unreadable", error=str(err))
        found.append(entry)
    for leftover in sorted(folder.iterdir()):
        pid = temporary_pid(leftover.name)
        if pid is not None:
            found.append({"path": str(leftover), "kind": "being written",
                          "note": f"a file being written by pid {pid} (running, or killed: "
                                  "avmnist cache prune --dir on this folder removes a dead writer's)"})
    return found


def format_info(report: Dict[str, Any]) -> str:
    """``info``'s answer as text for a person."""
    rec, noi, labels, images = (report[part] for part in ("recordings", "noises", "labels", "images"))
    lines = [f"data root: {report['root'] or '(none)'}"]
    if rec["found"]:
        lines.append(f"recordings: {rec['path']}: {rec['total']} files, speakers {', '.join(rec['speakers'])}")
        lines += [f"  {sp:5s} {rec[sp]['total']:5d}  per digit 0-9: {_digits(rec[sp])}" for sp in SPLITS]
    else:
        lines.append(f"recordings: NOT FOUND: {rec['error']}")
    lines.append(f"noises: {noi['path']}: train {noi['train']['clips']} clips ({noi['train_categories']} "
                 f"categories), test {noi['test']['clips']} clips\n  test categories: {', '.join(noi['test_categories'])}"
                 if noi["found"] else f"noises: NOT FOUND: {noi['error']}")
    lines.append(f"labels: {labels['source'] or '(none)'}")
    lines += [f"  {sp:5s} " + (f"{labels[sp]['items']:5d} items, per digit 0-9: {_digits(labels[sp])}"
                               if labels[sp]["found"] else f"NOT FOUND: {labels[sp]['error']}") for sp in SPLITS]
    lines.append("MNIST images (for the image half: AVMNISTDataset, modality='both', an export's image/; "
                 "the audio half needs none):")
    lines += [f"  {sp:5s} " + (images[sp]["path"] if images[sp]["found"] else f"NOT FOUND: {images[sp]['error']}")
              for sp in SPLITS]
    if report["exports"]:
        lines.append("exported files:")
    elif report["root"]:
        lines.append(f"exported files: none under {Path(report['root']) / 'avmnist' / 'audio'}")
    for e in report["exports"]:
        name = Path(e["path"]).name
        if e["kind"] == "being written":
            lines.append(f"  {name}: {e['kind']}: {e['note']}")
        elif e["kind"] == "unreadable":
            lines.append(f"  {name}: {e['error']}")
        elif e.get("seed") is not None:
            draws, items = e.get("draws"), e.get("items")
            epoch = f", epoch {draws.get('epoch')} of per-epoch draws" if isinstance(draws, dict) else ""
            partial = f", partial: the first {items.get('stop')} of {items.get('of')} items" \
                if isinstance(items, dict) else ""
            lines.append(f"  {name}: {e['rows']} rows, {e['kind']}, seed {e['seed']}, style {e['style']}{epoch}"
                         f"{partial}, avmnist-torch {e['version']}" + (f"; {e['note']}" if e.get("note") else ""))
        else:
            lines.append(f"  {name}: {e['rows']} rows, {e['kind']}; {e.get('note', 'no metadata')}")
        if e.get("header_note"):
            lines.append(f"    WARNING: {e['header_note']}")
    return "\n".join(lines)


def _digits(counts: Dict[str, Any]) -> str:
    return " ".join(map(str, counts["per_digit"]))


def preview(
    root: Optional[PathLike] = None,
    out: PathLike = "preview.png",
    *,
    split: str = "test",
    index: Optional[int] = None,
    schemes: Sequence[str] = SCHEME_NAMES,
    random_items: int = 6,
    seed: int = 0,
    renderer: str = "fast",
    style: Optional[str] = None,
    images: Union[bool, PathLike] = False,
    check_mnist: bool = True,
    **dataset_kwargs: Any,
) -> Path:
    """Draw a PNG grid: one item under every scheme (and clean), then a few random items.

    With `images`, AV-MNIST side by side instead: one row per item (``index``, then ``random_items``
    others), each showing MNIST's image, its pca25 image half and the spectrogram under every scheme.

    Parameters
    ----------
    root, split, seed, renderer, style, **dataset_kwargs
        As for the dataset.
    out : path
        The PNG to write, returned.
    index : int, optional
        The item shown under every scheme (default 0).
    schemes : names
        Schemes for the first row; default all five and ``clean``.
    random_items : int
        How many random (item, scheme) pairs follow, drawn with ``seed``.
    images : bool or path
        False: the audio grid. True: AV-MNIST side by side, with MNIST's image files found under `root`;
        a path: as ``images=`` of :class:`~avmnist_torch.paired.AVMNISTDataset`, which pairs them.
    check_mnist : bool, default True
        With `images`: as for :class:`~avmnist_torch.paired.AVMNISTDataset`.

    Raises
    ------
    ParameterError
        ``index`` outside the split, no schemes, or a negative ``random_items``.
    SourceError
        With `images`: MNIST's image file is not found (the message says how to get it), is broken, or
        its images do not show the digits of the labels.
    StorageError
        ``out`` cannot be written.
    """
    schemes = list(schemes)
    if not schemes:
        raise ParameterError("preview: give at least one scheme for the first row")
    if isinstance(random_items, bool) or not isinstance(random_items, (int, np.integer)) or random_items < 0:
        raise ParameterError(f"preview: random_items must be a whole number >= 0, got {random_items!r}")
    options = dict(seed=seed, renderer=renderer, style=style, **dataset_kwargs)
    paired = _paired_datasets(root, images, split, schemes[0], dict(options, check_mnist=check_mnist)) \
        if images is not False and images is not None else None
    datasets = {name: AVMNISTAudioDataset(root, split=split, scheme=name, **options) for name in schemes}
    n = len(next(iter(datasets.values())))
    labels = dataset_kwargs.get("labels", root)
    where = f"{labels}: the {split} split" if labels is not None else f"the {split} split"
    index = 0 if index is None else in_range(index, n, where, "index", f"{where} has {n} items")
    tiles = _tiles(schemes, index, n, random_items, seed)
    import matplotlib  # only to draw: the default renderer never needs matplotlib, which takes a second to load

    matplotlib.use("Agg", force=False)  # unless a backend is chosen already
    import matplotlib.pyplot as plt

    if paired is None:  # one tile per (scheme, item)
        cols = min(len(schemes), 6)
        rows = -(-len(tiles) // cols)
        figsize = (2.1 * cols, 2.6 * rows + 0.3)
    else:  # one row per item
        items = list(dict.fromkeys([index] + [i for _, i in tiles[len(schemes):]]))  # each item once
        rows, cols = len(items), 2 + len(datasets)
        figsize = (max(1.7 * cols, 7.5), 1.9 * rows + 0.8)
    fig, axes = plt.subplots(rows, cols, figsize=figsize, squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    made = f"seed {seed}, {renderer} renderer, style {datasets[schemes[0]].style or 'installed matplotlib'}"
    if paired is None:
        for ax, (name, i) in zip(axes.flat, tiles):
            _tile(ax, datasets[name].spectrogram(i), f"{name}\n#{i}  digit {int(datasets[name].labels[i])}")
        fig.suptitle(f"AV-MNIST audio, {split} split ({made}); first row: item {index} under each scheme", fontsize=9)
    else:
        fig.suptitle(f"AV-MNIST, {split} split: image and audio of the same item\n({made}; "
                     + _draw_side_by_side(axes, paired, datasets, items), fontsize=8)
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=100)
    except OSError as err:
        raise io_error(err, out, "writing the preview") from None
    finally:
        plt.close(fig)
    return out


def _tiles(schemes: List[str], index: int, n: int, random_items: int, seed: int) -> List[Tuple[str, int]]:
    """(scheme, item) of each tile: ``index`` under every scheme, then ``random_items`` drawn with ``seed``."""
    tiles = [(name, index) for name in schemes]
    rng = np.random.default_rng(seed)
    for _ in range(random_items):
        j = int(rng.integers(max(n - 1, 1)))
        tiles.append((str(rng.choice(schemes)), j + (n > 1 and j >= index)))  # never the first row's item
    return tiles


def _tile(ax: Any, image: np.ndarray, title: str, vmin: float = 0, vmax: float = 255) -> None:
    ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=8)


def _paired_datasets(root: Optional[PathLike], images: Union[bool, PathLike], split: str, scheme: str,
                     options: Dict[str, Any]) -> Dict[str, AVMNISTDataset]:
    """The raw and the pca25 :class:`AVMNISTDataset` of the split, or a SourceError saying how to get MNIST."""
    if images is not True:
        image_file = Path(images)  # a file, or a folder the datasets search
    elif root is None:
        raise SourceError("preview with images needs MNIST's image files and has no root to find them in; "
                          "get them with 'avmnist download --root DATA --only mnist_images', or give the "
                          "image file with --images PATH (images=PATH in Python)")
    else:
        try:
            image_file = find_mnist_images(root, split)
        except SourceError as err:
            raise SourceError(f"preview with images: {err}; or give the image file with --images PATH "
                              "(images=PATH in Python)") from None
    return {mode: AVMNISTDataset(root, split, scheme, image=mode, images=image_file, **options)
            for mode in ("raw", "pca25")}


def _draw_side_by_side(axes: Any, paired: Dict[str, AVMNISTDataset], audio: Dict[str, AVMNISTAudioDataset],
                       items: Sequence[int]) -> str:
    """One row per item: MNIST's image, the pca25 image half, then the spectrogram under each scheme; returns
    the rest of the title, which says what the pca25 column shows (a column of look-alikes is the recipe)."""
    raw, pca = paired["raw"], paired["pca25"]
    halves = [pca.image_array(i) for i in items]
    # Centred values (the mean is not added back): one symmetric range for the column keeps 0
    # mid-grey and shows how far each image lies along the kept components.
    limit = max(float(np.abs(h).max()) for h in halves) or 1.0
    kept = pca.n_components
    plural = "" if kept == 1 else "s"
    for row, i, half in zip(axes, items, halves):
        _tile(row[0], raw.image_array(i), f"#{i}  digit {int(raw.labels[i])}\nMNIST image")
        _tile(row[1], half, f"pca25 image half\n({kept} component{plural}: see the title)", -limit, limit)
        for ax, (name, ds) in zip(row[2:], audio.items()):
            _tile(ax, ds.spectrogram(i), f"audio: {name}\ndigit {int(ds.labels[i])}")
    return (f"images from {raw.image_file.name})\npairing: {raw.pairing}\n"
            f"pca25 image half: each image projected on the first {kept} principal component{plural} of the "
            f"split's {len(pca):,} images, centred (grey is 0):\nthe recipe keeps under 25% of their variance "
            "(MNIST's splits keep 3 components)"
            + ("; with one, every image is one pattern times a number, so they all look alike" if kept == 1 else ""))
