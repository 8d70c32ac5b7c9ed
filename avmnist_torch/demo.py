"""The whole job on a data tree the package makes itself (``avmnist demo``): see :func:`run_demo`."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any, List, Optional, Set, Tuple

import numpy as np

from .common import SourceError
from .dataset import AVMNISTAudioDataset
from .export import NOTEBOOK_SCHEMES, ImageHalfSkipped, export, image_half_path
from .inspection import preview
from .paired import AVMNISTDataset
from .sources.mnist_idx import find_mnist_images
from .sources.synthetic import make_synthetic_tree, write_synthetic_mnist

__all__ = ["run_demo", "items_per_second", "MULTIBENCH_SCHEME"]

#: The scheme the demo exports in MultiBench's layout, image half included.
MULTIBENCH_SCHEME = "burst_noise"


def run_demo(
    out: Path, *, root: Optional[Path] = None, split: str = "test", workers: int = 1, items: int = 100
) -> int:
    """Make (or use) a data tree, time items per scheme, export, check the files against the datasets, draw previews.

    Parameters
    ----------
    out : path
        Folder for everything written: ``data`` (the synthetic tree, :mod:`avmnist_torch.sources.synthetic`),
        ``avmnist/audio``, ``multibench``, ``preview.png`` and ``preview_av.png``.
    root : path, optional
        A real data root instead of the synthetic tree (MultiBench's export then covers `split` only).
    split : {"train", "test"}
    workers : int
        Worker processes for the exports.
    items : int
        Synthetic items per split, and items timed per scheme.

    Returns
    -------
    int
        0 when every exported file equals the dataset's items, 1 otherwise (an exit status; what differs is
        printed).
    """
    out = Path(out)
    synthetic = root is None
    if synthetic:
        root = out / "data"
        if not (root / "avmnist" / "test_labels.npy").is_file():
            print(f"writing a small synthetic FSDD/ESC-50/labels/MNIST tree to {root} ...")
            make_synthetic_tree(root, n_train=items, n_test=items, mnist_images=True)
        else:
            print(f"using the synthetic tree already at {root}")
            if not (root / "mnist").is_dir():  # a tree made without image files: the side-by-side preview needs them
                write_synthetic_mnist(root)
    root = Path(root)
    # The synthetic tree's MNIST files are drawn, not MNIST's, under MNIST's names: not checked against its md5s.
    check_mnist = not synthetic

    print(f"\ngenerating the {split} split under each scheme (fast renderer, style 3.10, one process; timed "
          "after one untimed item, which compiles the scheme's numba kernels the first time):")
    for scheme in tuple(NOTEBOOK_SCHEMES) + ("clean",):
        ds = AVMNISTAudioDataset(root, split=split, scheme=scheme)
        rate, images = items_per_second(ds, min(len(ds), items))
        print(f"  {scheme:<14} {len(images)} items, {rate:7.0f} items/s, "
              f"mean pixel {float(np.mean([x.float().mean() for x in images])):6.1f}")

    said: Set[str] = set()  # notes already printed: the same one for every export is said once
    print(f"\nexporting the {split} split, notebook layout, {workers} worker(s):")
    for scheme in NOTEBOOK_SCHEMES:
        path = _export(said, root, split=split, scheme=scheme, out=out, workers=workers, progress=True,
                       check_mnist=check_mnist)[0]
        ds = AVMNISTAudioDataset(root, split=split, scheme=scheme)
        # raw rows, as the notebook wrote them and its training code maps them
        rows = np.fromfile(path, dtype=np.uint8).reshape(len(ds), 112, 112)
        checked = [0, len(rows) // 2, len(rows) - 1]
        same = all(np.array_equal(rows[i], ds.spectrogram(i)) for i in checked)
        print(f"  {path}  {rows.shape} {rows.dtype}  rows {checked} == ds[i]: {same}")
        if not same:
            print("  MISMATCH: the exported file does not equal the dataset's items")
            return 1

    if not _multibench(root, out / "multibench", "all" if synthetic else split, workers, said, check_mnist):
        return 1

    png = preview(root, out / "preview.png", split=split)
    print(f"\npreview: {png}")
    try:
        find_mnist_images(root, split)
    except SourceError:
        print(f"image and audio side by side: skipped, no MNIST image files under {root} "
              f"('avmnist download --root {root} --only mnist_images' fetches them)")
    else:
        png = preview(root, out / "preview_av.png", split=split, images=True, random_items=5,
                      check_mnist=check_mnist)
        print(f"image and audio side by side: {png}")
    print("\nnext, on real data:\n  avmnist download --root DATA\n"
          "  avmnist export --root DATA --split all --scheme all --workers 2\n"
          "  avmnist export --root DATA --split all --scheme burst_noise --layout multibench --out AVMNIST")
    return 0


def items_per_second(ds: Any, n: int) -> Tuple[float, List[Any]]:
    """How many of ``ds``'s first `n` items it makes per second, and the items; item 0 is made once untimed
    first, since a scheme's first item compiles its numba kernels."""
    ds[0]
    start = time.perf_counter()
    made = [ds[i][0] for i in range(n)]
    return n / max(time.perf_counter() - start, 1e-9), made


def _export(said: Set[str], *args: Any, **kwargs: Any) -> List[Path]:
    """``export(*args, **kwargs)``, each warning printed as one ``note:`` line unless already in `said`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImageHalfSkipped)
        paths = export(*args, **kwargs)
    for warning in caught:
        if str(warning.message) not in said:
            said.add(str(warning.message))
            print(f"  note: {warning.message}")
    return paths


def _multibench(root: Path, folder: Path, split: str, workers: int, said: Set[str], check_mnist: bool) -> bool:
    """Export one scheme in MultiBench's layout and check each split's files against AVMNISTDataset."""
    which = "train and test splits" if split == "all" else f"{split} split"
    print(f"\nexporting the whole AV-MNIST ({which}, scheme {MULTIBENCH_SCHEME}) in MultiBench's layout, "
          f"image half included, to {folder}:")
    paths = _export(said, root, split, MULTIBENCH_SCHEME, out=folder, layout="multibench", workers=workers,
                    progress=False, check_mnist=check_mnist)
    for audio_path in (p for p in paths if p.parent.name == "audio"):
        sp = audio_path.stem.split("_")[0]
        audio = np.load(audio_path)
        labels = np.load(folder / f"{sp}_labels.npy")
        image_path = image_half_path(audio_path, sp)
        if not image_path.is_file():
            print(f"  {sp}: audio {audio.shape} {audio.dtype}, labels {labels.shape}; no image half")
            continue
        image = np.load(image_path)
        ds = AVMNISTDataset(root, sp, MULTIBENCH_SCHEME, check_mnist=check_mnist)
        checked = [0, len(ds) // 2, len(ds) - 1]
        same = all(_row_equals(image[i], audio[i], labels[i], ds[i]) for i in checked)
        print(f"  {sp}: image {image.shape} {image.dtype}, audio {audio.shape} {audio.dtype}, labels "
              f"{labels.shape}; rows {checked} == AVMNISTDataset[i]: {same}")
        if not same:
            print("  MISMATCH: the MultiBench files do not equal the paired dataset's items")
            return False
    return True


def _row_equals(image_row: np.ndarray, audio_row: np.ndarray, label: int, item) -> bool:
    # The dataset serves the stored float64 image half as float32 (what models take).
    image, audio, expected_label = item
    return (np.array_equal(image_row.astype(np.float32), image.numpy().ravel())
            and np.array_equal(audio_row, audio[0].numpy()) and int(label) == expected_label)
