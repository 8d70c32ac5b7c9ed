"""A small data tree in the shapes of FSDD, ESC-50 and the AV-MNIST labels.

Used by ``avmnist-audio demo`` (so the package shows what it does on a fresh
machine with no downloads) and by the tests. The audio is made up: harmonic
"voices" whose pitch depends on digit and speaker, and noise clips of coloured
noise, hums and clicks. Everything follows from ``seed``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np

PathLike = Union[str, os.PathLike]

SPEAKERS = ("ada", "bert", "cleo")
CATEGORIES = ("chirping_birds", "clock_tick", "engine", "rain", "sea_waves", "siren", "vacuum_cleaner", "wind")


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    import soundfile

    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype(np.int16)
    soundfile.write(str(path), pcm, rate, subtype="PCM_16")


def _voice(digit: int, speaker: int, take: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(1148, 6400))
    t = np.arange(n) / rate
    f0 = 110 + 25 * digit + 40 * speaker
    glide = 1 + 0.15 * np.sin(2 * np.pi * (0.8 + 0.1 * take) * t)
    phase = 2 * np.pi * np.cumsum(f0 * glide) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.sin(np.pi * np.linspace(0, 1, n)) ** 2
    return 0.25 * envelope * voice + 0.002 * rng.standard_normal(n)


def _noise(category: int, rate: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(rate * seconds)
    white = rng.standard_normal(n)
    if category % 3 == 0:  # brown-ish
        clip = np.cumsum(white)
        width = min(401, n)
        clip -= np.convolve(clip, np.ones(width) / width, mode="same")
    elif category % 3 == 1:  # hum with harmonics
        t = np.arange(n) / rate
        clip = sum(np.sin(2 * np.pi * (60 + 37 * category) * k * t) / k for k in range(1, 6)) + 0.1 * white
    else:  # clicks
        clip = np.zeros(n)
        clip[rng.integers(0, n, size=40)] = 1.0
        clip = np.convolve(clip, np.exp(-np.arange(300) / 40), mode="same") + 0.02 * white
    return 0.3 * clip / np.max(np.abs(clip))


def make_synthetic_tree(
    root: PathLike,
    *,
    n_train: int = 200,
    n_test: int = 50,
    takes: int = 7,
    speakers: Sequence[str] = SPEAKERS,
    categories: Sequence[str] = CATEGORIES,
    clips_per_category: int = 2,
    noise_rate: int = 44100,
    noise_seconds: float = 5.0,
    seed: int = 0,
) -> Path:
    """Write a small tree in the notebook's layout under ``root`` and return ``root``.

    ``root/recordings/{digit}_{speaker}_{take}.wav`` (8 kHz int16; takes 0-4
    are test, 5 and above train), ``root/noise_recordings/audio/*.wav`` with
    ``meta/esc50.csv``, and ``root/avmnist/{train,test}_labels.npy``.
    """
    import pandas as pd

    root = Path(root)
    rng = np.random.default_rng(seed)
    recordings = root / "recordings"
    audio = root / "noise_recordings" / "audio"
    meta = root / "noise_recordings" / "meta"
    labels_dir = root / "avmnist"
    for folder in (recordings, audio, meta, labels_dir):
        folder.mkdir(parents=True, exist_ok=True)

    for digit in range(10):
        for s, speaker in enumerate(speakers):
            for take in range(takes):
                _write_wav(recordings / f"{digit}_{speaker}_{take}.wav", _voice(digit, s, take, 8000, rng), 8000)

    rows = []
    for target, category in enumerate(categories):
        for k in range(clips_per_category):
            fold = 1 + (target + k) % 5
            src = 100000 + 1000 * target + k
            name = f"{fold}-{src}-A-{target}.wav"
            _write_wav(audio / name, _noise(target, noise_rate, noise_seconds, rng), noise_rate)
            rows.append(
                {"filename": name, "fold": fold, "target": target, "category": category,
                 "esc10": False, "src_file": src, "take": "A"}
            )
    # ESC-50's csv is sorted by file name, not by category.
    pd.DataFrame(rows).sort_values("filename").to_csv(meta / "esc50.csv", index=False)

    np.save(labels_dir / "train_labels.npy", rng.integers(0, 10, size=n_train).astype(np.int64))
    np.save(labels_dir / "test_labels.npy", rng.integers(0, 10, size=n_test).astype(np.int64))
    return root
