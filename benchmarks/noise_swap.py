"""Held-out noise or held-out recordings: where a trained audio network's validation-test gap comes from.

The test split differs from the validation rows in two ways at once: its recordings are FSDD's takes
0-4 (validation: takes 5 and up, as for training) and its noise clips are the 5 held-out ESC-50
categories (validation: the 45 training categories). This script scores a ``downstream.py --model
thesis`` checkpoint on items that swap one of the two:

- the test items with the *training* noise list (test recordings, noises the network was trained on);
- the validation items with the *test* noise list (training recordings, held-out noises).

Every other input of an item (its digit, recording, seed, scheme, position in the noise cycle) is
the split's own, so a score near the validation accuracy on the first row, and near the test accuracy
on the second, puts the gap on the noise categories::

    python benchmarks/noise_swap.py --scheme distorted --checkpoint runs/ck/distorted_seed1_draws-fixed.pt \\
        --noises ../shared/data/esc50_512 --json benchmarks/results/noise_swap/distorted.json

The checkpoint holds its training history: the unswapped validation and test accuracies of its last
epoch are printed beside the swapped ones.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import downstream  # noqa: E402

from avmnist_torch import AVMNISTAudioDataset  # noqa: E402
from avmnist_torch.sources import esc50, index  # noqa: E402


@contextlib.contextmanager
def swapped_noise_lists():
    """Within the block, each split's index takes the other split's noise clips."""
    read = esc50.read_noise_split

    def read_swapped(*args, **kwargs):
        split = read(*args, **kwargs)
        return esc50.NoiseSplit(train=split.test, test=split.train, test_categories=split.train_categories,
                                train_categories=split.test_categories)

    with mock.patch.object(index, "read_noise_split", read_swapped):
        yield


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scheme", required=True)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--noises", required=True, type=Path, help="an ESC-50 folder (audio/, meta/esc50.csv)")
    parser.add_argument("--root", type=Path, help="a data root made by 'avmnist download' (default: ../shared/data)")
    parser.add_argument("--item-seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    state = torch.load(args.checkpoint, weights_only=False)
    model = downstream.ThesisAudioNet()
    model.load_state_dict(state["model"])
    last = state["history"][-1]
    _, val_rows = downstream.thesis_split(55_000, 5_000)
    data = downstream.REPO.parent / "shared" / "data"
    options = dict(seed=args.item_seed, noises=args.noises, clip_tables="auto")
    if args.root is None:
        options.update(recordings=data / "fsdd" / "recordings", labels=data / "mnist")
    result = dict(scheme=args.scheme, checkpoint_epoch=last["epoch"], item_seed=args.item_seed,
                  noises=str(args.noises), val_acc=last["val_acc"], test_acc=last["test_acc"])
    for name, split, rows in (("test recordings, training noises", "test", np.arange(10_000)),
                              ("validation recordings, test noises", "train", val_rows)):
        with swapped_noise_lists():
            dataset = AVMNISTAudioDataset(args.root, split, args.scheme, **options)
        items = torch.from_numpy(downstream.read_items(dataset, rows, args.workers))
        labels = torch.from_numpy(np.asarray(dataset.targets)[rows].astype(np.int64))
        _, accuracy, _ = downstream.evaluate(model, items, labels, "cpu")
        result[name] = accuracy
        print(f"{args.scheme}, epoch {last['epoch']}: {name}: {accuracy:.1f}% "
              f"(unswapped: validation {last['val_acc']:.1f}%, test {last['test_acc']:.1f}%)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
