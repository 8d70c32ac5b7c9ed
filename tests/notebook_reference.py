"""The reference notebook's functions, copied literally (shared/seed/audio_gen_notebook.txt).

Tests and benchmarks compare the package against this code. Changes from the
notebook, all marked ``# CHANGED``: paths are parameters instead of module
globals; ``os.listdir`` is sorted (the project rule in docs/items.md); the indexing cell
is wrapped in a function; the generation loop yields items instead of writing
a memmap. Everything that computes a sample or a pixel is verbatim.
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
