"""AVMNISTAudioDataset on a synthetic tree: shapes, API, determinism, schemes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import notebook_reference as nb
from avmnist_torch import SCHEME_NAMES, AVMNISTAudioDataset, AVMNISTDataset, Scheme
from avmnist_torch.schemes import AddNoise, TimeMasks
from _helpers import REPO, digest


def test_item_is_uint8_image_and_label(synthetic_root):
    ds = AVMNISTAudioDataset(synthetic_root, split="train", scheme="burst_noise", renderer="matplotlib")
    labels = np.load(synthetic_root / "avmnist" / "train_labels.npy")
    assert len(ds) == len(labels) == 120
    x, y = ds[7]
    assert isinstance(x, torch.Tensor) and x.dtype == torch.uint8 and x.shape == (1, 112, 112)
    assert isinstance(y, int) and y == labels[7]
    assert ds[-1][1] == labels[-1]
    with pytest.raises(IndexError, match="out of range"):
        ds[120]


def test_describe_reports_sources_and_draws(synthetic_root):
    ds = AVMNISTAudioDataset(synthetic_root, split="test", scheme="BURST_NOISE", renderer="matplotlib")
    info = ds.describe(5)
    assert info["index"] == 5 and info["scheme"] == "burst_noise"
    assert info["label"] == ds[5][1]
    assert info["recording"].endswith(".wav") and info["recording"].split("/")[-1].startswith(f"{info['label']}_")
    assert info["noise"].endswith(".wav")
    assert [d["step"] for d in info["draws"]] == ["time_mask"] * 4
    clean = AVMNISTAudioDataset(synthetic_root, split="test", scheme="clean", renderer="matplotlib")
    assert clean.describe(5)["noise"] is None and clean.describe(5)["draws"] == []


def _hashes(items):
    return [digest(x.numpy()) + f":{int(y)}" for x, y in items]


@pytest.mark.slow  # the matplotlib route, three passes over the split, DataLoader workers
@pytest.mark.parametrize("scheme", ["burst_noise", "multi_band"])
def test_same_bytes_in_any_order_and_with_workers(synthetic_root, scheme):
    ds = AVMNISTAudioDataset(synthetic_root, split="test", scheme=scheme, renderer="matplotlib")
    direct = _hashes(ds[i] for i in range(len(ds)))
    order = np.random.default_rng(1).permutation(len(ds))
    shuffled = dict(zip(order.tolist(), _hashes(ds[int(i)] for i in order)))
    assert [shuffled[i] for i in range(len(ds))] == direct
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=workers)
        batched = [digest(x[0].numpy()) + f":{int(y)}" for xb, yb in loader for x, y in zip(xb, yb)]
        assert batched == direct, f"num_workers={workers}"


@pytest.mark.slow  # a fresh interpreter
def test_same_bytes_in_another_process(synthetic_root):
    ds = AVMNISTAudioDataset(synthetic_root, split="test", scheme="extreme_noise", renderer="matplotlib")
    here = _hashes(ds[i] for i in (0, 13, 39))
    code = (
        "import sys, hashlib, numpy as np; sys.path.insert(0, sys.argv[2])\n"
        "from avmnist_torch import AVMNISTAudioDataset\n"
        "ds = AVMNISTAudioDataset(sys.argv[1], split='test', scheme='extreme_noise', renderer='matplotlib')\n"
        "for i in (0, 13, 39):\n"
        "    x, y = ds[i]; print(hashlib.sha256(np.ascontiguousarray(x.numpy()).tobytes()).hexdigest() + f':{y}')\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(synthetic_root), str(REPO)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == here


def test_seed_changes_draws_not_sources(synthetic_root):
    a = AVMNISTAudioDataset(synthetic_root, split="train", scheme="burst_noise", seed=0, renderer="matplotlib")
    b = AVMNISTAudioDataset(synthetic_root, split="train", scheme="burst_noise", seed=1, renderer="matplotlib")
    da, db = a.describe(3), b.describe(3)
    assert da["recording"] == db["recording"] and da["noise"] == db["noise"]
    assert da["draws"] != db["draws"]
    assert a.describe(3)["draws"] == da["draws"]


def test_reused_figure_equals_a_fresh_notebook_figure(synthetic_root):
    for scheme in ("clean", "burst_noise", "aliased"):
        ds = AVMNISTAudioDataset(synthetic_root, split="train", scheme=scheme, renderer="matplotlib")
        for i in range(0, 120, 17):
            samples, sr, _ = ds.waveform(i)
            assert np.array_equal(ds[i][0][0].numpy(), nb.wav_to_spectrogram(samples, sr)), f"{scheme} item {i}"


def test_every_scheme_renders_and_differs(synthetic_root):
    images = {}
    for scheme in SCHEME_NAMES:
        ds = AVMNISTAudioDataset(synthetic_root, split="test", scheme=scheme, renderer="matplotlib")
        images[scheme] = ds[2][0].numpy()
    digests = {digest(v) for v in images.values()}
    assert len(digests) == len(SCHEME_NAMES)


def test_custom_scheme_needs_no_library_change(synthetic_root):
    mine = Scheme("soft_burst", (AddNoise(snr_db=20), TimeMasks(ratio=0.05, count=3)))
    ds = AVMNISTAudioDataset(synthetic_root, split="test", scheme=mine, renderer="matplotlib")
    info = ds.describe(0)
    assert info["scheme"] == "soft_burst" and len(info["draws"]) == 3
    n = len(ds.waveform(0)[0])
    assert all(d["length"] == int(n * 0.05) for d in info["draws"])
    assert ds[0][0].shape == (1, 112, 112)


def test_transforms_are_applied(synthetic_root):
    ds = AVMNISTAudioDataset(
        synthetic_root, split="test", scheme="clean", renderer="matplotlib",
        transform=lambda x: x.float() / 255, target_transform=lambda y: y + 100,
    )
    plain = AVMNISTAudioDataset(synthetic_root, split="test", scheme="clean", renderer="matplotlib")
    for i in (0, 7):
        x, y = ds[i]
        assert x.dtype == torch.float32 and torch.equal(x, plain[i][0].float() / 255)
        assert y == int(plain.labels[i]) + 100  # each transform applied exactly once


def test_parts_can_be_given_on_their_own(synthetic_root):
    labels = np.load(synthetic_root / "avmnist" / "test_labels.npy")
    ds = AVMNISTAudioDataset(
        split="test", scheme="burst_noise", renderer="matplotlib",
        recordings=synthetic_root / "recordings", noises=synthetic_root / "noise_recordings", labels=labels,
    )
    ref = AVMNISTAudioDataset(synthetic_root, split="test", scheme="burst_noise", renderer="matplotlib")
    assert digest(ds[4][0]) == digest(ref[4][0])
    no_noise = AVMNISTAudioDataset(split="test", scheme="multi_band", renderer="matplotlib",
                                   recordings=synthetic_root / "recordings", labels=labels[:5])
    assert len(no_noise) == 5


def test_noise_shorter_than_recording_is_tiled(synthetic_tree, tmp_path):
    from avmnist_torch.schemes import add_noise, fit_noise_length

    root = synthetic_tree(tmp_path, n_train=10, n_test=10, noise_seconds=0.05, noise_rate=8000)
    ds = AVMNISTAudioDataset(root, split="test", scheme="distorted", renderer="matplotlib")
    info = ds.describe(0)
    from avmnist_torch.sources.audio import load_wav

    noise, _ = load_wav(info["noise"])
    assert len(noise) == 400
    samples, _ = load_wav(info["recording"])
    samples = np.pad(samples, (0, max(0, 2048 - len(samples))))
    tiled = np.concatenate([noise] * (len(samples) // 400 + 1))[: len(samples)]
    assert np.array_equal(fit_noise_length(noise, len(samples)), tiled)
    expected = np.tanh(add_noise(samples, tiled, 5) / (np.max(np.abs(add_noise(samples, tiled, 5))) + 1e-6) * 2.0)
    assert ds.waveform(0)[0].tobytes() == expected.tobytes()
    assert ds[0][0].shape == (1, 112, 112)


def test_silent_recording_renders_white(synthetic_tree, tmp_path):
    """A recording of exact zeros stays silent under every scheme (noise is scaled to its RMS, 0),
    and matplotlib draws an all -inf spectrogram as white: the item is all 255."""
    import soundfile

    root = synthetic_tree(tmp_path, n_train=10, n_test=10)
    labels = np.load(root / "avmnist" / "test_labels.npy")
    for path in (root / "recordings").glob(f"{labels[0]}_*_*.wav"):
        soundfile.write(str(path), np.zeros(3000, dtype=np.int16), 8000, subtype="PCM_16")
    for scheme in ("burst_noise", "distorted", "clean"):
        ds = AVMNISTAudioDataset(root, split="test", scheme=scheme, renderer="matplotlib")
        assert not np.any(ds.waveform(0)[0])
        assert np.all(ds[0][0].numpy() == 255), scheme


# ----------------------------------------------------------------------------
# torchvision's conventions


class _Named:
    """A transform with a repr of its own, as torchvision's transforms have."""

    def __call__(self, x):
        return x

    def __repr__(self) -> str:
        return "Named()"


def test_options_after_scheme_are_keyword_only(synthetic_root):
    """root, split and scheme are the only positional arguments, as torchvision keeps a few."""
    with pytest.raises(TypeError, match="positional"):
        AVMNISTAudioDataset(synthetic_root, "test", "clean", 3)
    with pytest.raises(TypeError, match="positional"):
        AVMNISTDataset(synthetic_root, "test", "clean", 3)


def test_classes_targets_and_root_as_torchvision_names_them(synthetic_root):
    """classes are MNIST's names in torchvision; targets a tensor of every label; root the given folder."""
    ds = AVMNISTAudioDataset(synthetic_root, "test", "clean")
    assert ds.classes == ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
                          "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]
    expected = np.load(synthetic_root / "avmnist" / "test_labels.npy")
    assert ds.targets.dtype == torch.int64 and ds.targets.tolist() == expected.tolist()
    assert [ds[i][1] for i in range(len(ds))] == expected.tolist()
    assert ds.root == synthetic_root


def test_repr_is_torchvision_shaped(synthetic_root):
    ds = AVMNISTAudioDataset(synthetic_root, "test", "burst_noise", seed=4, transform=_Named())
    lines = repr(ds).splitlines()
    assert lines[0] == "Dataset AVMNISTAudioDataset"
    assert lines[1] == f"    Number of datapoints: {len(ds)}"
    assert lines[2] == f"    Root location: {synthetic_root}"
    assert "    Scheme: burst_noise" in lines and "    Seed: 4" in lines
    assert lines[-1] == "    Transform: Named()"


def test_the_package_says_it_is_typed():
    """py.typed ships with the package, so type checkers read its annotations."""
    import avmnist_torch

    assert (Path(avmnist_torch.__file__).parent / "py.typed").is_file()
