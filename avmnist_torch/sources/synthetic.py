"""A small data tree in the shapes of FSDD, ESC-50, the AV-MNIST labels and (optionally) MNIST's files.

For ``avmnist demo`` on a machine with no downloads, and for the tests. The audio is made up: harmonic
"voices" whose pitch depends on digit and speaker, and coloured noise, hums and clicks. Everything
follows from ``seed``.
"""

from __future__ import annotations

import gzip
from pathlib import Path
import numpy as np

from ..common import PathLike
from .mnist_idx import MNIST_IMAGE_FILES, MNIST_LABEL_FILES, idx1_label_bytes, idx3_image_bytes

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


def make_synthetic_tree(root: PathLike, *, n_train: int = 200, n_test: int = 50, takes: int = 7,
                        clips_per_category: int = 2, noise_rate: int = 44100, noise_seconds: float = 5.0,
                        seed: int = 0, mnist_images: bool = False) -> Path:
    """Write a small tree in the notebook's layout under ``root`` and return ``root``.

    ``root/recordings/{digit}_{speaker}_{take}.wav`` (:data:`SPEAKERS`, 8 kHz int16; takes 0-4 are test, 5 and above
    train), ``root/noise_recordings/audio/*.wav`` with ``meta/esc50.csv``, and
    ``root/avmnist/{train,test}_labels.npy``. With ``mnist_images=True``, also MNIST's files for those
    labels (:func:`write_synthetic_mnist`), drawn from a generator of their own so the rest is the same.
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
        for s, speaker in enumerate(SPEAKERS):
            for take in range(takes):
                _write_wav(recordings / f"{digit}_{speaker}_{take}.wav", _voice(digit, s, take, 8000, rng), 8000)

    rows = []
    for target, category in enumerate(CATEGORIES):
        for k in range(clips_per_category):
            fold = 1 + (target + k) % 5
            src = 100000 + 1000 * target + k
            name = f"{fold}-{src}-A-{target}.wav"
            _write_wav(audio / name, _noise(target, noise_rate, noise_seconds, rng), noise_rate)
            rows.append({"filename": name, "fold": fold, "target": target, "category": category,
                         "esc10": False, "src_file": src, "take": "A"})
    # ESC-50's csv is sorted by file name, not by category.
    pd.DataFrame(rows).sort_values("filename").to_csv(meta / "esc50.csv", index=False)
    np.save(labels_dir / "train_labels.npy", rng.integers(0, 10, size=n_train).astype(np.int64))
    np.save(labels_dir / "test_labels.npy", rng.integers(0, 10, size=n_test).astype(np.int64))
    if mnist_images:
        write_synthetic_mnist(root, seed=seed)
    return root


#: A 5x7 pixel font, one string of seven 5-pixel rows per digit.
_GLYPHS = (
    "01110 10001 10011 10101 11001 10001 01110",
    "00100 01100 00100 00100 00100 00100 01110",
    "01110 10001 00001 00010 00100 01000 11111",
    "11111 00010 00100 00010 00001 10001 01110",
    "00010 00110 01010 10010 11111 00010 00010",
    "11111 10000 11110 00001 00001 10001 01110",
    "00110 01000 10000 11110 10001 10001 01110",
    "11111 00001 00010 00100 01000 01000 01000",
    "01110 10001 10001 01110 10001 10001 01110",
    "01110 10001 10001 01111 00001 00010 01100",
)
_GLYPH_PIXELS = np.array([[[c == "1" for c in row] for row in glyph.split()] for glyph in _GLYPHS], dtype=np.float64)
_SCALE = 3  # glyph pixels -> image pixels: 7x5 becomes 21x15, about MNIST's 20x20 digit box


def _blur_matrix(sigma: float, size: int = 28) -> np.ndarray:
    # A Gaussian blur along one axis: an image is blurred by B @ image @ B.T.
    offsets = np.arange(size)[:, None] - np.arange(size)[None, :]
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum(axis=1, keepdims=True)


def synthetic_mnist_images(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """``(N, 28, 28)`` uint8 images of made-up handwriting, image ``i`` showing digit ``labels[i]``.

    Each is its digit's glyph from a 5x7 pixel font, scaled 3 times, shifted, slanted and blurred,
    white ink on MNIST's black (0) background.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 28])
    out = np.zeros((len(labels), 28, 28), dtype=np.uint8)
    rows_big = 7 * _SCALE
    for i, digit in enumerate(labels):
        big = np.kron(_GLYPH_PIXELS[int(digit)], np.ones((_SCALE, _SCALE)))
        top, left = 3 + int(rng.integers(-2, 3)), 6 + int(rng.integers(-2, 3))
        lean = rng.uniform(-2.5, 2.5)  # the top row sits this many columns right, the bottom row left
        canvas = np.zeros((28, 28))
        for r in range(rows_big):
            shift = int(round(lean * (rows_big - 1 - 2 * r) / (rows_big - 1)))
            canvas[top + r, left + shift:left + shift + big.shape[1]] = big[r]
        blur = _blur_matrix(rng.uniform(0.6, 1.0))
        canvas = blur @ canvas @ blur.T
        canvas *= rng.uniform(230, 255) / canvas.max()
        canvas[canvas < 24] = 0  # MNIST's background is exactly 0 around the strokes
        out[i] = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return out


def write_synthetic_mnist(root: PathLike, *, seed: int = 0) -> Path:
    """Write MNIST-format files for the tree's labels under ``root/mnist/``; return that folder.

    For each split with ``root/avmnist/{split}_labels.npy``: ``{train,t10k}-images-idx3-ubyte.gz``
    (:func:`synthetic_mnist_images`) and, beside it for the pairing check, the labels as
    ``{train,t10k}-labels-idx1-ubyte.gz``; the same bytes on every run.
    """
    root = Path(root)
    folder = root / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for k, split in enumerate(("train", "test")):
        labels_file = root / "avmnist" / f"{split}_labels.npy"
        if not labels_file.is_file():
            continue
        labels = np.load(labels_file)
        images = synthetic_mnist_images(labels, seed=seed * 2 + k)
        for name, data in ((MNIST_IMAGE_FILES[split], idx3_image_bytes(images)),
                           (MNIST_LABEL_FILES[split], idx1_label_bytes(labels))):
            # mtime=0: the same bytes on every run, like the rest of the tree
            (folder / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel=6, mtime=0))
    return folder
