"""Bad input gets a clear error that names the file and the problem, at construction."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from avmnist_torch import AudioFileError, AVMNISTAudioDataset, ParameterError, SourceError


@pytest.fixture()
def root(synthetic_tree, tmp_path):
    return synthetic_tree(tmp_path / "data", n_train=20, n_test=10, takes=6, noise_seconds=1.0)


def make(root, **kw):
    kw.setdefault("split", "test")
    kw.setdefault("scheme", "burst_noise")
    return AVMNISTAudioDataset(root, **kw)


def test_missing_recordings_folder(root):
    shutil.rmtree(root / "recordings")
    with pytest.raises(SourceError, match=r"recordings: FSDD recordings folder not found.*download"):
        make(root)


def test_empty_recordings_folder(root):
    for p in (root / "recordings").iterdir():
        p.unlink()
    with pytest.raises(SourceError, match="no .wav files"):
        make(root)


def test_missing_esc50_folder_and_csv(root):
    shutil.rmtree(root / "noise_recordings" / "meta")
    with pytest.raises(SourceError, match=r"esc50.csv: ESC-50 metadata not found"):
        make(root)
    shutil.rmtree(root / "noise_recordings")
    with pytest.raises(SourceError, match=r"noise_recordings: ESC-50 folder not found"):
        make(root)
    # a scheme without noise does not need ESC-50 at all
    assert len(make(root, scheme="aliased")) == 10


def test_scheme_without_noise_needs_no_esc50(root):
    shutil.rmtree(root / "noise_recordings")
    ds = AVMNISTAudioDataset(split="test", scheme="aliased", recordings=root / "recordings", labels=root)
    assert len(ds) == 10


def test_csv_without_needed_columns(root):
    csv = root / "noise_recordings" / "meta" / "esc50.csv"
    pd.read_csv(csv).drop(columns=["category"]).to_csv(csv, index=False)
    with pytest.raises(SourceError, match=r"esc50.csv: missing column\(s\) category"):
        make(root)


def test_clip_listed_in_csv_but_missing(root):
    victim = sorted((root / "noise_recordings" / "audio").iterdir())[0]
    victim.unlink()
    with pytest.raises(SourceError, match=rf"missing: {victim.name}"):
        make(root)


@pytest.mark.parametrize(
    "labels, message",
    [
        # (no backslash in a parameter: it would make a node id that pytest cannot be given back)
        (np.zeros((2, 5), dtype=np.int64), "must be 1-D, got shape [(]2, 5[)]"),
        (np.array([1.0, 2.0]), "must be integers 0-9, got dtype float64"),
        (np.array([1, 2, 10]), "item 2 is 10"),
        (np.array([3, -1]), "item 1 is -1"),
        (np.array([], dtype=np.int64), "labels are empty"),
    ],
)
def test_bad_labels_file(root, labels, message):
    np.save(root / "avmnist" / "test_labels.npy", labels)
    with pytest.raises(SourceError, match=message) as err:
        make(root)
    assert "test_labels.npy" in str(err.value)


def test_labels_file_missing_or_garbage(root):
    path = root / "avmnist" / "test_labels.npy"
    path.write_bytes(b"not numpy at all")
    with pytest.raises(SourceError, match=r"test_labels.npy: not a readable .npy labels file"):
        make(root)
    path.unlink()
    with pytest.raises(SourceError, match=r"no test labels found"):
        make(root)


def test_corrupt_recording_is_named_at_construction(root):
    labels = np.load(root / "avmnist" / "test_labels.npy")
    victim = root / "recordings" / f"{labels[0]}_ada_2.wav"
    victim.write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(AudioFileError, match=rf"{victim.name}: not a readable audio file"):
        make(root)


def test_corrupt_noise_is_named_at_construction(root):
    victim = sorted((root / "noise_recordings" / "audio").iterdir())[3]
    victim.write_bytes(b"")
    with pytest.raises(AudioFileError, match=rf"{victim.name}"):
        AVMNISTAudioDataset(root, split="train", scheme="burst_noise")
        AVMNISTAudioDataset(root, split="test", scheme="burst_noise")


def test_recording_with_unparseable_name(root):
    (root / "recordings" / "hello.wav").write_bytes(b"")
    with pytest.raises(SourceError, match=r"hello.wav: not an FSDD recording name"):
        make(root)


def test_digit_without_recordings(root):
    for p in (root / "recordings").glob("3_*_[0-4].wav"):
        p.unlink()
    with pytest.raises(SourceError, match=r"no test recordings \(takes 0-4\) for digit\(s\) 3"):
        make(root)
    assert len(make(root, split="train")) == 20


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"scheme": "loud"}, "unknown scheme 'loud': choose one of extreme_noise"),
        ({"split": "validation"}, "unknown split 'validation'"),
        ({"renderer": "opengl"}, "unknown renderer 'opengl'"),
        ({"style": "3.8"}, "unknown style '3.8'"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"clip_tables": 3}, r"clip_tables=3: give a folder \(a path\), 'auto' .* or None"),
        ({"from_export": 3}, "from_export=3: give a file, 'auto' or None"),
        ({"from_export": np.zeros(2)}, r"from_export=array\(\[0., 0.\]\): give a file, 'auto' or None"),
        ({"from_export": np.zeros(2), "draws": "per_epoch"}, "serves one file of items"),
    ],
)
def test_bad_options(root, kw, message):
    with pytest.raises(ParameterError, match=message):
        make(root, **kw)


def test_matplotlib_renderer_cannot_draw_another_version(root):
    import matplotlib

    installed = ".".join(matplotlib.__version__.split(".")[:2])
    other = "3.9" if installed != "3.9" else "3.11"
    with pytest.raises(ValueError, match=f"installed matplotlib {installed}, not style '{other}'"):
        make(root, renderer="matplotlib", style=other)


def test_no_root_and_no_parts():
    with pytest.raises(ValueError, match="give root, or both recordings= and labels="):
        AVMNISTAudioDataset(split="test")


@pytest.mark.parametrize("seed", [2**64 + 5, 2**64, True, np.bool_(True), 1.5, "5", -(2**64) + 5])
def test_seeds_the_item_streams_cannot_tell_apart_are_refused(root, seed):
    """The streams are keyed by 64 bits: 2**64 + 5 would give seed 5's items under another name."""
    from avmnist_torch import ParameterError

    with pytest.raises(ParameterError, match="seed must be a non-negative integer below 2"):
        make(root, seed=seed)


def test_the_largest_seed_is_accepted_and_item_rng_refuses_a_larger_one():
    from avmnist_torch import ParameterError
    from avmnist_torch.common import check_seed
    from avmnist_torch.schemes import item_rng

    assert check_seed(2**64 - 1) == 2**64 - 1 and check_seed(np.uint64(7)) == 7
    first = item_rng(5, "train", "burst_noise", 3).next_uint64()
    assert item_rng(np.int64(5), "train", "burst_noise", 3).next_uint64() == first
    with pytest.raises(ParameterError, match="below 2\\*\\*64"):
        item_rng(2**64 + 5, "train", "burst_noise", 3)


def test_a_root_that_is_a_file_or_missing_says_so(root, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a data folder")
    with pytest.raises(SourceError, match=f"root {a_file} is a file"):
        make(a_file)
    missing = tmp_path / "no-such-folder"
    with pytest.raises(SourceError, match=f"root {missing} does not exist"):
        make(missing)


def test_a_blank_noise_category_names_the_row_and_file(root):
    csv = root / "noise_recordings" / "meta" / "esc50.csv"
    table = pd.read_csv(csv)
    table.loc[3, "category"] = ""
    table.to_csv(csv, index=False)
    with pytest.raises(SourceError, match=r"esc50.csv: line 5 \(clip .*\.wav\) has a blank category"):
        make(root)


def test_a_missing_source_says_download_true_can_fetch_it(root):
    """A Python user is told of download=True, not only of the command line."""
    shutil.rmtree(root / "recordings")
    with pytest.raises(SourceError, match="pass download=True, or run 'avmnist download --root DATA'"):
        make(root)
