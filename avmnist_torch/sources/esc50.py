"""Indexing ESC-50 noise clips and the notebook's train/test category split."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import List

from ..common import PathLike, SourceError

REQUIRED_COLUMNS = ("filename", "category")
N_TEST_CATEGORIES = 5
CATEGORY_SEED = 0


@dataclass(frozen=True)
class NoiseSplit:
    """Noise files of both splits, in the notebook's order."""

    train: List[Path]
    test: List[Path]
    test_categories: List[str]
    train_categories: List[str]

    def files(self, split: str) -> List[Path]:
        return self.train if split == "train" else self.test


def read_noise_split(esc50_dir: PathLike) -> NoiseSplit:
    """Read ``esc50_dir/meta/esc50.csv`` and split the clips as the notebook does.

    Categories are sorted (pandas ``groupby`` order), files keep their csv order within one. The 5 test
    categories are ``random.Random(0).sample(categories, 5)`` (the notebook's ``random.seed(0);
    random.sample(...)``), in that order; train noises are the others' files in sorted category order.
    Every listed clip must be in ``esc50_dir/audio/``.

    Raises
    ------
    SourceError
        Naming the folder, csv or clips that are missing or malformed.
    """
    import pandas as pd
    esc50_dir = Path(esc50_dir)
    csv_path = esc50_dir / "meta" / "esc50.csv"
    audio_dir = esc50_dir / "audio"
    if not esc50_dir.is_dir():
        raise SourceError(f"{esc50_dir}: ESC-50 folder not found; it should hold audio/*.wav and meta/esc50.csv "
                          "(pass download=True, or run 'avmnist download --root DATA')")
    if not csv_path.is_file():
        raise SourceError(f"{csv_path}: ESC-50 metadata not found (expected meta/esc50.csv inside {esc50_dir})")
    try:
        table = pd.read_csv(csv_path)
    except Exception as err:
        raise SourceError(f"{csv_path}: not a readable csv ({err})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise SourceError(f"{csv_path}: missing column(s) {', '.join(missing)}; ESC-50's csv has "
                          "filename, fold, target, category, esc10, src_file, take")
    if table.empty:
        raise SourceError(f"{csv_path}: the metadata lists no clips")
    for column in REQUIRED_COLUMNS:
        # pandas reads an empty field as NaN, and groupby would drop its row without a word
        blank = table[column].isna() | (table[column].astype(str).str.strip() == "")
        if blank.any():
            row = int(blank.to_numpy().nonzero()[0][0])
            shown = table.iloc[row].get("filename" if column != "filename" else "category")
            raise SourceError(f"{csv_path}: line {row + 2} (clip {shown}) has a blank {column}; every clip needs a "
                              "filename and a category (fix the row or restore ESC-50's meta/esc50.csv)")
    by_category = {category: [audio_dir / str(name) for name in rows["filename"].tolist()]
                   for category, rows in table.groupby("category")}
    categories = list(by_category)
    if len(categories) <= N_TEST_CATEGORIES:
        raise SourceError(f"{csv_path}: {len(categories)} categories; the split holds out {N_TEST_CATEGORIES} "
                          "for test and needs more than that")
    test_categories = random.Random(CATEGORY_SEED).sample(categories, N_TEST_CATEGORIES)
    train_categories = [c for c in categories if c not in test_categories]
    train = [p for c in train_categories for p in by_category[c]]
    test = [p for c in test_categories for p in by_category[c]]
    if not audio_dir.is_dir():
        raise SourceError(f"{audio_dir}: ESC-50 audio folder not found")
    present = {e.name for e in os.scandir(audio_dir)}
    absent = [p.name for p in train + test if p.name not in present]
    if absent:
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise SourceError(f"{audio_dir}: {len(absent)} clip(s) listed in {csv_path.name} are missing: {shown}")
    return NoiseSplit(train=train, test=test, test_categories=test_categories, train_categories=train_categories)
