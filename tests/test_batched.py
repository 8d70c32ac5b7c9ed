"""Batches: ``ds.__getitems__(indices)`` is ``[ds[i] for i in indices]``, byte for byte, however it is asked for."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avmnist_torch import SCHEME_NAMES, AVMNISTAudioDataset, dsp
from avmnist_torch.rendering import STYLES

# Indices that mix recordings of different lengths and frame counts, repeat
# some, come in no particular order and use negative and numpy integers.
MIXED = [7, 0, 39, 7, 12, -1, np.int64(5), 23, 8, 0, 31, 34, 18, 2, 39]


def _dataset(root, scheme, split="test", **options):
    return AVMNISTAudioDataset(root, split=split, scheme=scheme, **options)


def _assert_same_items(batch, single):
    assert isinstance(batch, list) and len(batch) == len(single)
    for k, ((x, y), (x1, y1)) in enumerate(zip(batch, single)):
        assert type(x) is type(x1) and type(y) is type(y1), k
        assert x.dtype == x1.dtype and x.shape == x1.shape and x.is_contiguous(), k
        assert x.numpy().tobytes() == x1.numpy().tobytes(), f"position {k}"
        assert y == y1, k
        # each item owns its pixels rather than being a view of the whole batch
        assert x.untyped_storage().nbytes() == 112 * 112


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("scheme", SCHEME_NAMES)
def test_getitems_is_getitem_for_every_scheme_and_style(synthetic_root, scheme, style):
    ds = _dataset(synthetic_root, scheme, style=style)
    indices = list(range(len(ds)))
    _assert_same_items(ds.__getitems__(indices), [ds[i] for i in indices])
    _assert_same_items(ds.__getitems__(MIXED), [ds[i] for i in MIXED])


def test_the_batches_mix_lengths_and_frame_counts(synthetic_root):
    """The batches above are only a test of batching if their clips differ in length and frame count."""
    ds = _dataset(synthetic_root, "multi_band")
    recorded = [len(ds.generator.recording_bank.get(int(ds.index.recording_ids[i]))[0]) for i in MIXED]
    frames = {dsp.frame_count(max(n, 2048)) for n in recorded}
    assert len(set(recorded)) > 5 and len(frames) > 3
    assert min(recorded) < 2048 < max(recorded)  # some recordings are padded, some are not
    assert len({len(ds.waveform(i)[0]) for i in MIXED}) > 3


@pytest.mark.parametrize("scheme", ["multi_band", "aliased", "burst_noise"])
def test_batches_of_one_and_empty(synthetic_root, scheme):
    ds = _dataset(synthetic_root, scheme, split="train")
    for i in (0, 57, 119, -120):
        _assert_same_items(ds.__getitems__([i]), [ds[i]])
    assert ds.__getitems__([]) == []
    assert ds.spectrograms([]).shape == (0, 112, 112)


def test_bad_indices_fail_as_getitem_does(synthetic_root):
    ds = _dataset(synthetic_root, "aliased")
    with pytest.raises(IndexError, match="out of range"):
        ds.__getitems__([0, 40])
    with pytest.raises(TypeError, match="integer"):
        ds.__getitems__([0, 1.5])


def test_batch_with_silent_recordings(synthetic_tree, tmp_path):
    """Clips of exact zeros (all -inf dB, all white) next to ordinary ones in one batch."""
    import soundfile
    
    root = synthetic_tree(tmp_path, n_train=10, n_test=24)
    labels = np.load(root / "avmnist" / "test_labels.npy")
    for path in (root / "recordings").glob(f"{labels[0]}_*_*.wav"):
        soundfile.write(str(path), np.zeros(3000, dtype=np.int16), 8000, subtype="PCM_16")
    silent = [i for i in range(len(labels)) if labels[i] == labels[0]]
    assert 0 < len(silent) < len(labels)
    for scheme in SCHEME_NAMES:
        ds = _dataset(root, scheme, clip_tables=None)
        indices = list(range(len(labels)))
        items = ds.__getitems__(indices)
        _assert_same_items(items, [ds[i] for i in indices])
        if scheme != "aliased":  # soxr's ringing is not exactly zero... but a zero input stays zero
            assert all(np.all(items[i][0].numpy() == 255) for i in silent), scheme


def test_transforms_are_applied_per_item(synthetic_root):
    seen = []

    def transform(x):
        seen.append(tuple(x.shape))
        return x.float() / 255

    ds = _dataset(synthetic_root, "distorted", transform=transform, target_transform=lambda y: y + 100)
    items = ds.__getitems__([3, 1, 3])
    assert seen == [(1, 112, 112)] * 3
    for (x, y), i in zip(items, [3, 1, 3]):
        x1, y1 = ds[i]
        assert x.dtype == torch.float32 and torch.equal(x, x1) and y == y1 == int(ds.labels[i]) + 100


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("scheme", ["multi_band", "aliased", "extreme_noise"])
def test_dataloader_batches_equal_direct_indexing(synthetic_root, scheme, workers):
    ds = _dataset(synthetic_root, scheme, split="train")
    direct = [ds[i] for i in range(len(ds))]
    loader = torch.utils.data.DataLoader(ds, batch_size=16, num_workers=workers)
    images = torch.cat([x for x, _ in loader])
    labels = torch.cat([y for _, y in loader])
    assert images.numpy().tobytes() == torch.stack([x for x, _ in direct]).numpy().tobytes()
    assert labels.tolist() == [y for _, y in direct]
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(3)).tolist()
    subset = torch.utils.data.Subset(ds, order[:50])
    shuffled = torch.cat([x for x, _ in torch.utils.data.DataLoader(subset, batch_size=7, num_workers=workers)])
    assert shuffled.numpy().tobytes() == torch.stack([direct[i][0] for i in order[:50]]).numpy().tobytes()


def test_dataloader_and_subset_use_getitems(synthetic_root, monkeypatch):
    ds = _dataset(synthetic_root, "burst_noise")
    calls = []
    original = AVMNISTAudioDataset.__getitems__

    def counting(self, indices):
        calls.append(list(indices))
        return original(self, indices)

    monkeypatch.setattr(AVMNISTAudioDataset, "__getitems__", counting)
    monkeypatch.setattr(AVMNISTAudioDataset, "__getitem__", lambda self, i: pytest.fail("item by item"))
    subset = torch.utils.data.Subset(ds, [5, 9, 2, 30])
    list(torch.utils.data.DataLoader(subset, batch_size=3))
    assert calls == [[5, 9, 2], [30]]


def test_matplotlib_renderer_batches_too(synthetic_root):
    pytest.importorskip("matplotlib")
    ds = _dataset(synthetic_root, "multi_band", renderer="matplotlib")
    _assert_same_items(ds.__getitems__(MIXED), [ds[i] for i in MIXED])


def test_served_from_an_export(synthetic_root, tmp_path):
    from avmnist_torch import export

    [path] = export(synthetic_root, "test", "aliased", out=tmp_path, progress=False)
    cached = _dataset(synthetic_root, "aliased", from_export=path)
    fresh = _dataset(synthetic_root, "aliased")
    _assert_same_items(cached.__getitems__(MIXED), [fresh[i] for i in MIXED])


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("scheme", [s for s in SCHEME_NAMES if s != "clean"])
def test_real_data_batches(real_data, scheme):
    ds = AVMNISTAudioDataset(split="train", scheme=scheme, recordings=real_data["recordings"],
                             noises=real_data["esc50"], labels=real_data["train_labels"])
    indices = np.random.default_rng(5).choice(len(ds), 300, replace=False).tolist()
    indices += indices[:10]  # duplicates
    for start in range(0, len(indices), 128):
        part = indices[start : start + 128]
        _assert_same_items(ds.__getitems__(part), [ds[i] for i in part])


def test_recording_only_steps_run_once_per_recording(synthetic_root, tmp_path, monkeypatch):
    """aliased's down-up resampling depends on the recording alone: it goes to a shared table, same bytes."""
    from avmnist_torch import schemes
    from avmnist_torch.schemes import DownUpResample, FrequencyMasks, Scheme, recording_prefix, steps

    assert [len(recording_prefix(s)) for s in (schemes.SCHEMES[n] for n in SCHEME_NAMES)] == [0, 0, 0, 1, 0, 0]
    reference = _dataset(synthetic_root, "aliased", "train", clip_tables=None)
    expected = [reference[i] for i in range(len(reference))]

    calls = []
    resample = steps.down_up_resample  # where DownUpResample looks it up
    monkeypatch.setattr(steps, "down_up_resample", lambda *a: calls.append(1) or resample(*a))
    ds = _dataset(synthetic_root, "aliased", "train", clip_tables=tmp_path / "tables")
    assert ds.generator.prepared_bank is not None and _dataset(synthetic_root, "multi_band").generator.prepared_bank is None
    _assert_same_items(ds.__getitems__(list(range(len(ds)))) + [ds[i] for i in range(len(ds))], expected * 2)
    assert 0 < len(calls) == len(set(ds.index.recording_ids.tolist())) < len(ds)

    # rows at the table's limit may be cut short: they are computed again, never trusted
    short = _dataset(synthetic_root, "aliased", "train", clip_tables=tmp_path / "short")
    short.generator.prepared_bank.keep = 3000
    _assert_same_items([short[i] for i in range(len(short))], expected)
    _assert_same_items(short.__getitems__(list(range(len(short)))), expected)

    class Shifted(DownUpResample):  # changes the step without restating recording_only
        def __call__(self, samples, ctx):
            return super().__call__(samples, ctx)[1:]

    assert recording_prefix(Scheme("s", (Shifted(4), FrequencyMasks(0.3)))) == ()


@pytest.mark.parametrize("scheme", ["aliased", "burst_noise"])
def test_a_pickled_dataset_batches_the_same(synthetic_root, tmp_path, scheme):
    """What DataLoader workers get under the spawn start method (macOS, Windows): a pickled copy."""
    import pickle

    ds = _dataset(synthetic_root, scheme, clip_tables=tmp_path)
    expected = [ds[i] for i in MIXED]
    copy = pickle.loads(pickle.dumps(ds))
    _assert_same_items(copy.__getitems__(MIXED), expected)
