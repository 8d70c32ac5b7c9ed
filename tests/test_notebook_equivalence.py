"""The dataset against the notebook's own functions, on the real data.

``notebook_reference`` holds the notebook's code copied literally; here it is
run side by side with the package: the same recordings and noises for the
same items, and byte-identical images.
"""

from __future__ import annotations

import random
from unittest import mock

import numpy as np
import pytest

import notebook_reference as nb
from avmnist_torch import AVMNISTAudioDataset

pytestmark = [pytest.mark.realdata]

NOISY = ("extreme_noise", "burst_noise", "distorted")


def _dataset(real_data, split, scheme, renderer="matplotlib"):
    return AVMNISTAudioDataset(
        split=split,
        scheme=scheme,
        renderer=renderer,
        recordings=real_data["recordings"],
        noises=real_data["esc50"],
        labels=real_data[f"{split}_labels"],
    )


@pytest.fixture(scope="module")
def notebook_index(real_data):
    return nb.build_index(str(real_data["recordings"]) + "/", str(real_data["esc50"]))


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("scheme", ["burst_noise", "multi_band"])
def test_item_mapping_matches_notebook(real_data, notebook_index, split, scheme):
    ds = _dataset(real_data, split, scheme)
    labels = np.load(real_data[f"{split}_labels"])
    aug = nb.AugmentationType[scheme.upper()]
    n = 0
    for i, audio_file, noise_file in nb.generate_items(notebook_index, labels, split == "train", aug, limit=2000):
        info = ds.describe(i) if i < 3 else None
        recording = ds.index.recordings[ds.index.recording_ids[i]]
        assert recording == audio_file.replace("//", "/"), f"item {i}"
        assert ds._noise_path(i) == noise_file, f"item {i}"
        assert int(ds.labels[i]) == int(labels[i])
        if info is not None:
            assert info["recording"] == recording and info["noise"] == noise_file
        n += 1
    assert n == 2000
    if scheme == "burst_noise":
        assert ds.index.test_categories == notebook_index["test_categories"]


def _notebook_image(audio_file, noise_file, scheme, draws=()):
    """Run the notebook's augment_audio + wav_to_spectrogram, its random.randint fed ``draws``."""
    starts = iter([d["start"] for d in draws])
    calls = []

    def fake_randint(a, b):
        value = next(starts)
        calls.append((a, b, value))
        assert a <= value <= b
        return value

    with mock.patch.object(nb.random, "randint", side_effect=fake_randint):
        samples, sr = nb.augment_audio(audio_file, noise_file, nb.AugmentationType[scheme.upper()])
    assert len(calls) == len(draws), "the notebook made a different number of draws"
    return samples, nb.wav_to_spectrogram(samples, sr)


def _items(n_items, length):
    rng = np.random.default_rng(123)
    return sorted(set(rng.integers(0, length, size=n_items).tolist()) | {0, length - 1})


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "test"])
def test_distorted_items_are_byte_identical(real_data, split):
    ds = _dataset(real_data, split, "distorted")
    for i in _items(60, len(ds)):
        info = ds.describe(i)
        assert info["draws"] == []
        expected_wave, expected_image = _notebook_image(info["recording"], info["noise"], "distorted")
        wave, _, _ = ds.waveform(i)
        assert wave.dtype == expected_wave.dtype and wave.tobytes() == expected_wave.tobytes(), f"item {i}"
        image, _ = ds[i]
        assert np.array_equal(image[0].numpy(), expected_image), f"item {i}"


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["extreme_noise", "multi_band", "burst_noise", "aliased"])
def test_masked_items_match_notebook_fed_the_same_draws(real_data, scheme):
    for split in ("train", "test"):
        ds = _dataset(real_data, split, scheme)
        for i in _items(15, len(ds)):
            info = ds.describe(i)
            assert info["draws"], "mask schemes draw"
            expected_wave, expected_image = _notebook_image(info["recording"], info["noise"], scheme, info["draws"])
            wave, _, _ = ds.waveform(i)
            assert wave.tobytes() == expected_wave.tobytes(), f"{split} item {i}"
            assert np.array_equal(ds[i][0][0].numpy(), expected_image), f"{split} item {i}"


def test_draws_are_uniform_over_the_notebook_range(real_data):
    """Mask starts cover [0, len - m] inclusive, like random.randint, and vary item to item."""
    ds = _dataset(real_data, "test", "burst_noise")
    starts = []
    for i in range(200):
        info = ds.describe(i)
        n = len(ds.waveform(i)[0])
        for d in info["draws"]:
            assert d["length"] == int(n * 0.15)
            assert 0 <= d["start"] <= n - d["length"]
            starts.append(d["start"] / (n - d["length"]))
    starts = np.array(starts)
    assert len(set(starts.tolist())) > 700
    assert 0.45 < starts.mean() < 0.55
