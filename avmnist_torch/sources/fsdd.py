"""Finding and splitting Free Spoken Digit Dataset recordings, named ``{digit}_{speaker}_{take}.wav``.

Takes 0-4 are the test split, 5 and above the train split (the notebook's ``belongs_to_train_audio``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List

from ..common import PathLike, SourceError

_NAME = re.compile(r"^(\d)_(.+)_(\d+)\.wav$")


@dataclass(frozen=True)
class Recording:
    """One recording and what its name says."""

    path: Path
    digit: int
    speaker: str
    take: int

    @property
    def split(self) -> str:
        return "test" if self.take <= 4 else "train"


def parse_recording_name(path: PathLike) -> Recording:
    """Parse ``{digit}_{speaker}_{take}.wav`` into a :class:`Recording`."""
    path = Path(path)
    match = _NAME.match(path.name)
    if match is None:
        raise SourceError(f"{path}: not an FSDD recording name; expected '{{digit}}_{{speaker}}_{{take}}.wav', "
                          "e.g. '7_jackson_32.wav'")
    return Recording(path=path, digit=int(match.group(1)), speaker=match.group(2), take=int(match.group(3)))


def list_recordings(folder: PathLike) -> List[Recording]:
    """All recordings in ``folder``, sorted by file name (plain string sort).

    The notebook took ``os.listdir`` order, which differs between file systems; sorting is the
    project rule that makes the item mapping the same everywhere.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(f"{folder}: FSDD recordings folder not found; it should hold the 3,000 '{{digit}}_{{speaker}}"
                          "_{take}.wav' files (pass download=True, or run 'avmnist download --root DATA')")
    names = sorted(e.name for e in os.scandir(folder) if e.name.endswith(".wav") and e.is_file())
    if not names:
        raise SourceError(f"{folder}: no .wav files in the FSDD recordings folder")
    return [parse_recording_name(folder / name) for name in names]


def recordings_by_digit(recordings: List[Recording], split: str, *, folder: PathLike = "") -> List[List[Path]]:
    """Paths of one split's recordings (a checked split), one list per digit 0-9, in sorted-name order."""
    by_digit: List[List[Path]] = [[] for _ in range(10)]
    for rec in recordings:
        if rec.split == split:
            by_digit[rec.digit].append(rec.path)
    missing = [d for d in range(10) if not by_digit[d]]
    if missing:
        rule = "takes 0-4" if split == "test" else "takes 5 and above"
        raise SourceError(f"{folder}: no {split} recordings ({rule}) for digit(s) {', '.join(map(str, missing))}; "
                          "every digit needs at least one")
    return by_digit
