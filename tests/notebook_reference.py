"""The reference notebook's functions, copied literally (shared/seed/audio_gen_notebook.txt).

Tests and benchmarks compare the package against this code. Changes from the
notebook, all marked ``# CHANGED``: paths are parameters instead of module
globals; ``os.listdir`` is sorted (the project rule in docs/items.md); the indexing cell
is wrapped in a function; the generation loop yields items instead of writing
a memmap. Everything that computes a sample or a pixel is verbatim.

The last section is not the notebook's: it restates, from docs/items.md and without importing
the package, the project rules the notebook does not have (each item's own random stream, the
per-epoch draws), so that those too are tested against a statement written apart from the code.
"""

import os
import random
from dataclasses import dataclass
from enum import Enum
from os import listdir
from os.path import isfile, join
from typing import List, Optional, Tuple

import librosa
import numpy as np
import pandas as pd


def file_names_by_category(esc50_dir):
    csv = pd.read_csv(os.path.join(esc50_dir, 'meta', 'esc50.csv'))
    grouped = csv.groupby('category')
    files_by_category = {}

    for category, entry in grouped:
        file_names = entry['filename'].tolist()
        files_by_category[category] = [os.path.join(esc50_dir, 'audio', name) for name in file_names]

    return files_by_category


def belongs_to_train_audio(filename):
    first_split = filename.rsplit("_", 1)[1] # i.e. 49.wav
    second_split = first_split.rsplit(".", 1)[0] # i.e. 49
    if int(second_split) <= 4:
        return False
    else:
        return True


def flatten(lst):
    return [item for sublist in lst for item in sublist]


def build_index(audio_dir, esc50_dir):  # CHANGED: the indexing cell, as a function of the two folders
    random.seed(0)  # the notebook's cell 2
    names_by_cat = file_names_by_category(esc50_dir)

    test_categories = random.sample(list(names_by_cat.keys()), 5)
    train_categories = [cat for cat in names_by_cat.keys() if cat not in test_categories]

    train_noises = {key: names_by_cat[key] for key in train_categories}
    test_noises = {key: names_by_cat[key] for key in test_categories}

    train_noises_file_names = flatten(train_noises.values())
    test_noises_file_names = flatten(test_noises.values())

    # CHANGED: sorted(), the project rule replacing file-system order
    audio_file_names = [f for f in sorted(listdir(audio_dir)) if isfile(join(audio_dir, f)) and '.wav' in f]

    train_audio_file_names = [f for f in audio_file_names if belongs_to_train_audio(f)]
    test_audio_file_names = [f for f in audio_file_names if not belongs_to_train_audio(f)]

    train_audio_by_label = { str(i) : [] for i in range(10) }
    test_audio_by_label = { str(i) : [] for i in range(10) }

    for f in train_audio_file_names:
        label = f.split('_')[0]  # Extract label
        train_audio_by_label[label].append(os.path.join(audio_dir, f))  # Append to the list for this label

    for f in test_audio_file_names:
          label = f.split('_')[0]  # Extract label
          test_audio_by_label[label].append(os.path.join(audio_dir, f))  # Append to the list for this label
    return {
        "train_audio_by_label": train_audio_by_label,
        "test_audio_by_label": test_audio_by_label,
        "train_noises_file_names": train_noises_file_names,
        "test_noises_file_names": test_noises_file_names,
        "test_categories": test_categories,
    }


class AugmentationType(Enum):
    EXTREME_NOISE = "extreme_noise"      # Very low SNR
    MULTI_BAND = "multi_band"           # Multiple frequency bands removed
    BURST_NOISE = "burst_noise"         # Multiple time masks + noise
    ALIASED = "aliased"                 # Downsampling artifacts
    DISTORTED = "distorted"             # Non-linear distortion


@dataclass
class AudioConfig:
    """Enhanced configuration for audio augmentation"""
    snr_db: Optional[float] = None
    freq_mask_ratio: float = 0.0
    n_freq_masks: int = 1
    time_mask_ratio: float = 0.0
    n_time_masks: int = 1
    filter_bands: List[Tuple[float, float]] = None
    downsample_factor: Optional[int] = None
    distortion_factor: Optional[float] = None


def get_augmentation_config(aug_type: AugmentationType) -> AudioConfig:
    """Get configuration for specific augmentation type"""
    configs = {
        AugmentationType.EXTREME_NOISE: AudioConfig(
            snr_db=0,  # Extremely noisy but theoretically still intelligible
            time_mask_ratio=0.1,  # Add some temporal gaps too
            n_time_masks=2
        ),
        AugmentationType.MULTI_BAND: AudioConfig(
            freq_mask_ratio=0.2,  # Smaller individual masks
            n_freq_masks=3,       # But multiple of them
            filter_bands=[(50, 1000), (2000, 3500)]  # Keep only these bands
        ),
        AugmentationType.BURST_NOISE: AudioConfig(
            snr_db=3,            # Very noisy
            time_mask_ratio=0.15,
            n_time_masks=4       # Multiple shorter gaps
        ),
        AugmentationType.ALIASED: AudioConfig(
            downsample_factor=4,  # Aggressive downsampling
            freq_mask_ratio=0.3   # Combined with frequency masking
        ),
        AugmentationType.DISTORTED: AudioConfig(
            distortion_factor=2.0,  # Non-linear distortion
            snr_db=5               # Plus noise
        )
    }
    return configs[aug_type]


def apply_distortion(samples: np.ndarray, factor: float) -> np.ndarray:
    """Apply non-linear distortion to audio"""
    samples_norm = samples / (np.max(np.abs(samples)) + 1e-6)
    return np.tanh(samples_norm * factor)


def add_noise(samples_audio: np.ndarray, noise_path: str, sr_audio: int, snr_db: float) -> np.ndarray:
    """Add scaled noise to audio samples"""
    samples_noise, sr_noise = librosa.load(noise_path, sr=None)
    samples_noise = librosa.resample(samples_noise, orig_sr=sr_noise, target_sr=sr_audio)
    samples_noise = samples_noise[:len(samples_audio)]

    A_signal = np.sqrt(np.mean(samples_audio ** 2))
    A_noise = np.sqrt(np.mean(samples_noise ** 2))
    if A_noise != 0:
        A_noise_target = A_signal / (10 ** (snr_db / 20))
        noise_scaled = samples_noise * (A_noise_target / A_noise)
        samples_audio = samples_audio + noise_scaled
    return samples_audio


def apply_time_masks(samples_audio: np.ndarray, time_mask_ratio: float, n_time_masks: int) -> np.ndarray:
    """Apply multiple time masks to audio samples"""
    for _ in range(n_time_masks):
        mask_length = int(len(samples_audio) * time_mask_ratio)
        mask_start = random.randint(0, len(samples_audio) - mask_length)
        samples_audio[mask_start:mask_start + mask_length] = 0
    return samples_audio


def apply_frequency_masks(samples_audio: np.ndarray, sr_audio: int, freq_mask_ratio: float, n_freq_masks: int) -> np.ndarray:
    """Apply multiple frequency masks to audio samples"""
    D = librosa.stft(samples_audio)
    n_freqs = D.shape[0]
    for _ in range(n_freq_masks):
        mask_size = int(n_freqs * freq_mask_ratio)
        mask_start = random.randint(0, n_freqs - mask_size)
        D[mask_start:mask_start + mask_size, :] = 0
    return librosa.istft(D)


def augment_audio(audio_path: str, noise_path: Optional[str], aug_type: AugmentationType) -> Tuple[np.ndarray, int]:
    """Apply enhanced augmentation to audio file"""
    samples_audio, sr_audio = librosa.load(audio_path, sr=None)

    # Ensure minimum length of 2048 samples to avoid STFT warnings
    min_length = 2048
    if len(samples_audio) < min_length:
        pad_width = min_length - len(samples_audio)
        samples_audio = np.pad(samples_audio, (0, pad_width), mode='constant')

    config = get_augmentation_config(aug_type)

    if aug_type in [AugmentationType.EXTREME_NOISE, AugmentationType.BURST_NOISE, AugmentationType.DISTORTED]:
        if noise_path:
            samples_audio = add_noise(samples_audio, noise_path, sr_audio, config.snr_db)

    if aug_type in [AugmentationType.EXTREME_NOISE, AugmentationType.BURST_NOISE]:
        samples_audio = apply_time_masks(samples_audio, config.time_mask_ratio, config.n_time_masks)

    if aug_type == AugmentationType.MULTI_BAND:
        samples_audio = apply_frequency_masks(samples_audio, sr_audio, config.freq_mask_ratio, config.n_freq_masks)
        if config.filter_bands:
            D = librosa.stft(samples_audio)
            n_freqs = D.shape[0]
            freq_response = np.zeros(n_freqs)
            for band in config.filter_bands:
                freq_bins = np.linspace(0, sr_audio/2, n_freqs)
                band_mask = (freq_bins >= band[0]) & (freq_bins <= band[1])
                freq_response[band_mask] = 1
            D *= freq_response[:, np.newaxis]
            samples_audio = librosa.istft(D)

    if aug_type == AugmentationType.ALIASED:
        samples_audio = librosa.resample(
            librosa.resample(samples_audio, orig_sr=sr_audio, target_sr=sr_audio//config.downsample_factor),
            orig_sr=sr_audio//config.downsample_factor, target_sr=sr_audio
        )
        samples_audio = apply_frequency_masks(samples_audio, sr_audio, config.freq_mask_ratio, 1)

    if aug_type == AugmentationType.DISTORTED:
        samples_audio = apply_distortion(samples_audio, config.distortion_factor)

    return samples_audio, sr_audio


def wav_to_spectrogram(samples, sample_rate, spectrogram_dimensions=(112, 112), NFFT=256, noverlap=128, cmap='gray_r'):
    import matplotlib
    matplotlib.use("Agg")  # CHANGED: headless; the notebook's inline backend draws with Agg too
    import matplotlib.pyplot as plt
    fig = plt.figure()
    fig.set_size_inches((spectrogram_dimensions[0]/fig.get_dpi(), spectrogram_dimensions[1]/fig.get_dpi()))
    ax = plt.Axes(fig, [0., 0., 1., 1.])
    ax.set_axis_off()
    fig.add_axes(ax)
    # Generate the spectrogram
    ax.specgram(samples, cmap=cmap, NFFT=NFFT, Fs=sample_rate, noverlap=noverlap)
    ax.xaxis.set_major_locator(plt.NullLocator())
    ax.yaxis.set_major_locator(plt.NullLocator())
    fig.canvas.draw()
    spectrogram_array = np.array(fig.canvas.renderer.buffer_rgba())[:, :, 0]  # Keep only one channel

    plt.close(fig)  # Close the figure to free memory

    return spectrogram_array


def generate_items(index, labels, train=True, aug_type=AugmentationType.EXTREME_NOISE, limit=None):
    """The loop of ``generate_augmented_npy``, yielding (i, audio_file, noise_file).

    CHANGED: yields the mapping instead of writing a memmap (the caller runs
    ``augment_audio`` and ``wav_to_spectrogram``); ``index`` is ``build_index``'s
    result; ``limit`` stops early.
    """
    audio_indices = [0] * 10
    audio_by_label = index["train_audio_by_label"] if train else index["test_audio_by_label"]
    max_audio_indices = [len(audio_by_label[str(i)]) for i in range(10)]
    noise_file_names = index["train_noises_file_names"] if train else index["test_noises_file_names"]
    max_noise_index = len(noise_file_names)
    for i, val in enumerate(labels):
        if limit is not None and i >= limit:
            return
        noise_file = noise_file_names[i % max_noise_index] if aug_type in [AugmentationType.EXTREME_NOISE, AugmentationType.BURST_NOISE, AugmentationType.DISTORTED] else None
        audio_idx = audio_indices[int(val)]
        audio_file = audio_by_label[str(val)][audio_idx]
        audio_indices[int(val)] = (audio_indices[int(val)] + 1) % max_audio_indices[int(val)]
        yield i, audio_file, noise_file


# ============================================================================
# NOT THE NOTEBOOK'S CODE. The project rules that the notebook does not have (each item's own
# random stream; per-epoch draws), restated from docs/items.md ("Random draws", "Fresh draws
# every epoch") without importing the package, so that tests compare the package against the
# documented rule and never against its own output. Plain Python integers, written from the
# docs' tables, not from avmnist_torch/schemes.py.

DOCS_GAMMA = 0x9E3779B97F4A7C15
DOCS_M64 = 2 ** 64


def docs_mix(z):
    """SplitMix64's finaliser, as docs/items.md's table writes it."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % DOCS_M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % DOCS_M64
    return z ^ (z >> 31)


def docs_f(x):
    return docs_mix((x + DOCS_GAMMA) % DOCS_M64)


class DocsStream:
    """docs/items.md's stream: initial state folded from the key, then SplitMix64 outputs."""

    def __init__(self, *key):
        s = 0
        for p in key:
            s = docs_f(s ^ p)
        self.s = s

    def next(self):
        self.s = (self.s + DOCS_GAMMA) % DOCS_M64
        return docs_f(self.s)

    def integers(self, low, high):
        """Uniform over low..high inclusive: Lemire's multiply-shift with rejection."""
        span = high - low + 1
        threshold = (DOCS_M64 - span) % span
        while True:
            product = self.next() * span
            if product % DOCS_M64 >= threshold:
                return low + product // DOCS_M64

    def uniform(self, low, high):
        """low + (high - low) * u, u = (next() >> 11) / 2**53, in IEEE doubles."""
        u = (self.next() >> 11) / 2 ** 53
        return low + (high - low) * u


def docs_scheme_id(name):
    import zlib

    return zlib.crc32(name.encode("utf-8"))


DOCS_SPLIT_IDS = {"train": 0, "test": 1}


def docs_item_stream(seed, split, scheme_name, index):
    """A fixed item's stream: key (seed, split_id, scheme_id, index)."""
    return DocsStream(seed, DOCS_SPLIT_IDS[split], docs_scheme_id(scheme_name), index)


def docs_epoch_stream(seed, split, scheme_name, index, epoch, stream):
    """A per-epoch stream: key (seed, split_id, scheme_id, index, stream, epoch); stream 1 = steps, 2 = sources."""
    return DocsStream(seed, DOCS_SPLIT_IDS[split], docs_scheme_id(scheme_name), index, stream, epoch)


def docs_fixed_mapping(labels, recordings_by_digit, n_noises):
    """docs/items.md, "Which recording and which noise item i gets", as a loop over the items:
    item i takes recordings_by_digit[y[i]][k_i mod n_digit] (k_i = earlier items of its digit) and
    noise i mod n_noises. Returns [(digit, position in its digit's list, noise position)]."""
    seen = [0] * 10
    out = []
    for i, y in enumerate(labels):
        y = int(y)
        out.append((y, seen[y] % len(recordings_by_digit[y]), i % n_noises if n_noises else None))
        seen[y] += 1
    return out


def docs_per_epoch_draws(seed, split, scheme_name, index, epoch, *, digit_pool_size=None, n_noises=0,
                         snr_db=None, n_samples=None, clip_length=None, time_masks=()):
    """The draws of item ``index`` in ``epoch``, in the order docs/items.md's table makes them.

    For a scheme of at most one noise step (``snr_db`` a number or a (low, high) range; None: no noise)
    followed by time masks ``[(ratio, count), ...]`` on ``n_samples`` samples. Returns dicts shaped as
    ``describe()``'s draws, with positions instead of paths: {"step": "recording", "position": k} (position
    in the digit's sorted recordings), {"step": "noise_clip", "position": k} (in the split's noise pool),
    then the steps' draws.
    """
    sources = docs_epoch_stream(seed, split, scheme_name, index, epoch, 2)
    steps = docs_epoch_stream(seed, split, scheme_name, index, epoch, 1)
    draws = []
    if digit_pool_size is not None:
        draws.append({"step": "recording", "position": sources.integers(0, digit_pool_size - 1)})
    if snr_db is not None and n_noises:
        draws.append({"step": "noise_clip", "position": sources.integers(0, n_noises - 1)})
        if isinstance(snr_db, tuple):
            draws.append({"step": "snr", "snr_db": steps.uniform(snr_db[0], snr_db[1])})
        if clip_length > n_samples:
            start = steps.integers(0, clip_length - n_samples)
            draws.append({"step": "noise_window", "start": start, "length": n_samples, "clip_length": clip_length})
        else:
            draws.append({"step": "noise_window", "start": 0, "length": clip_length, "clip_length": clip_length})
    for ratio, count in time_masks:
        m = int(n_samples * ratio)
        for _ in range(count):
            draws.append({"step": "time_mask", "start": steps.integers(0, n_samples - m), "length": m})
    return draws
