"""The whole job on a data tree the package makes itself (``avmnist-audio demo``).

On a fresh machine with nothing downloaded, this shows what the package does:
it writes a small tree in the shapes of FSDD, ESC-50 and the AV-MNIST labels
(synthetic audio, see :mod:`avmnist_torch.sources.synthetic`), generates its
test split under every scheme, exports the notebook's .npy files, checks them
against the dataset, and draws a preview PNG. ``--root`` runs the same on real
data instead.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np

from .dataset import AVMNISTAudioDataset
from .export import NOTEBOOK_SCHEMES, export
from .inspection import preview
from .sources.synthetic import make_synthetic_tree

__all__ = ["run_demo"]


def run_demo(
    out: Path, *, root: Optional[Path] = None, split: str = "test", workers: int = 1, items: int = 100
) -> int:
    """Make (or use) a data tree, time items per scheme, export, check the files, draw a preview.

    Parameters
    ----------
    out : path
        Folder for everything written: the synthetic tree (``out/data``), the
        notebook-layout exports (``out/avmnist/audio``) and ``out/preview.png``.
    root : path, optional
        A real data root to use instead of the synthetic tree.
    split : {"train", "test"}
    workers : int
        Worker processes for the export.
    items : int
        Synthetic items per split, and items timed per scheme.

    Returns
    -------
    int
        0 when every exported file equals the dataset's items, 1 otherwise
        (an exit status; what differs is printed).
    """
    out = Path(out)
    if root is None:
        root = out / "data"
        if not (root / "avmnist" / "test_labels.npy").is_file():
            print(f"writing a small synthetic FSDD/ESC-50/labels tree to {root} ...")
            make_synthetic_tree(root, n_train=items, n_test=items)
        else:
            print(f"using the synthetic tree already at {root}")
    root = Path(root)

    print(f"\ngenerating the {split} split under each scheme (fast renderer, style 3.10, one process):")
    for scheme in tuple(NOTEBOOK_SCHEMES) + ("clean",):
        ds = AVMNISTAudioDataset(root, split=split, scheme=scheme)
        n = min(len(ds), items)
        start = time.perf_counter()
        images = [ds[i][0] for i in range(n)]
        rate = n / (time.perf_counter() - start)
        print(f"  {scheme:<14} {n} items, {rate:7.0f} items/s, mean pixel {float(np.mean([x.float().mean() for x in images])):6.1f}")

    print(f"\nexporting the {split} split, notebook layout, {workers} worker(s):")
    for scheme in NOTEBOOK_SCHEMES:
        [path] = export(root, split=split, scheme=scheme, out=out, workers=workers, progress=True)
        rows = np.load(path, mmap_mode="r")
        ds = AVMNISTAudioDataset(root, split=split, scheme=scheme)
        checked = [0, len(rows) // 2, len(rows) - 1]
        same = all(np.array_equal(rows[i], ds.image(i)) for i in checked)
        print(f"  {path}  {rows.shape} {rows.dtype}  rows {checked} == ds[i]: {same}")
        if not same:
            print("  MISMATCH: the exported file does not equal the dataset's items")
            return 1

    png = preview(root, out / "preview.png", split=split)
    print(f"\npreview: {png}")
    print("\nnext, on real data:\n  avmnist-audio download --root DATA\n"
          "  avmnist-audio export --root DATA --split all --scheme all --workers 2")
    return 0
