"""The item -> (recording, noise) mapping of one split, computed once for all items."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

from .audio import check_audio_files
from .esc50 import read_noise_split
from ..common import PathLike, SourceError, check_split
from .fsdd import list_recordings, recordings_by_digit
from .labels import LabelsLike, load_labels


def check_data_root(root: PathLike) -> Path:
    """``root`` as a Path if it is a folder, else a :class:`SourceError` saying it is a file or is missing
    (so a mistyped root is reported as itself, not as the first file missing inside it)."""
    path = Path(root)
    if path.is_dir():
        return path
    state = "is a file, not a data folder" if path.exists() else "does not exist"
    raise SourceError(f"root {path} {state}; give the folder that holds recordings/, noise_recordings/ and the "
                      "labels, or fetch them into a new one with download=True ('avmnist download --root DATA')")


def occurrence_rank(labels: np.ndarray) -> np.ndarray:
    """k[i] = how many j < i have labels[j] == labels[i], for all i at once."""
    rank = np.empty(len(labels), dtype=np.int64)
    for digit in range(10):
        where = np.flatnonzero(labels == digit)
        rank[where] = np.arange(len(where))
    return rank


@dataclass(frozen=True)
class SplitIndex:
    """Where every item of a split comes from.

    Item ``i`` has digit ``labels[i]``, recording ``recordings[recording_ids[i]]`` and noise
    ``noises[noise_ids[i]]``. Each digit cycles through its own recordings (``k_i mod n_digit``)
    and the noises cycle with the item index, as in the notebook's ``generate_augmented_npy``.
    """

    split: str
    labels: np.ndarray
    recordings: List[str]
    recording_ids: np.ndarray
    noises: List[str]
    noise_ids: np.ndarray
    test_categories: List[str]
    #: The longest recording in samples (at least the 2,048 the schemes pad to):
    #: no item needs more noise than this.
    max_recording_length: int = 0

    def __len__(self) -> int:
        return len(self.labels)


def build_split_index(split: str, recordings_dir: PathLike, esc50_dir: Optional[PathLike], labels: LabelsLike, *,
                      check_audio: bool = True) -> SplitIndex:
    """Index one split's sources and map every item to its recording and noise.

    ``esc50_dir`` may be None for schemes that add no noise. With ``check_audio`` every recording
    and noise of the split has its header read, so a corrupt file is reported now, not mid-epoch.
    """
    check_split(split)
    label_array = load_labels(labels, split)
    by_digit = recordings_by_digit(list_recordings(recordings_dir), split, folder=recordings_dir)
    flat = [str(p) for paths in by_digit for p in paths]
    offsets = np.cumsum([0] + [len(paths) for paths in by_digit[:-1]])
    counts = np.array([len(paths) for paths in by_digit])
    rank = occurrence_rank(label_array)
    recording_ids = (offsets[label_array] + rank % counts[label_array]).astype(np.int64)

    noises: List[str] = []
    test_categories: List[str] = []
    noise_ids = np.full(len(label_array), -1, dtype=np.int64)
    if esc50_dir is not None:
        noise_split = read_noise_split(esc50_dir)
        noises = [str(p) for p in noise_split.files(split)]
        if not noises:
            raise SourceError(f"{esc50_dir}: no {split} noise clips")
        noise_ids = np.arange(len(label_array), dtype=np.int64) % len(noises)
        test_categories = list(noise_split.test_categories)
    max_recording_length = 0
    if check_audio:
        headers = check_audio_files(flat, what=f"{split} recording")
        max_recording_length = max(frames for _, frames in headers)
        check_audio_files(noises, what=f"{split} noise")
    for arr in (recording_ids, noise_ids):
        arr.setflags(write=False)
    return SplitIndex(split=split, labels=label_array, recordings=flat, recording_ids=recording_ids, noises=noises,
                      noise_ids=noise_ids, test_categories=test_categories, max_recording_length=max_recording_length)
