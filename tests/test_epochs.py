"""draws="per_epoch": new masks, noise and mixes every epoch, each epoch a pure function of its number.

The generator's ``epoch=`` is the reference: whatever path serves an epoch (one
process, 2 to 8 DataLoader workers, persistent or not, forked or spawned,
simulated DDP ranks, a resumed run) must give the generator's bytes for that
epoch.
"""

from __future__ import annotations

import copy
import pickle
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from avmnist_torch.common import ParameterError
from avmnist_torch.dataset import AVMNISTAudioDataset
from avmnist_torch.generator import AudioItemGenerator
from avmnist_torch.noise import resample_noise
from avmnist_torch.paired import AVMNISTDataset
from avmnist_torch.schemes import (
    SCHEMES,
    SOURCES_STREAM,
    STEPS_STREAM,
    AddNoise,
    ItemRandom,
    Scheme,
    TimeMasks,
    add_noise,
    apply_time_masks,
    epoch_rng,
    epoch_rngs,
    item_rng,
    pad_to_min_length,
    with_snr_range,
)
from avmnist_torch.sources.audio import load_wav
from avmnist_torch.sources.fsdd import parse_recording_name

N = 12  # items a DataLoader test serves per epoch: enough for several batches and workers, still fast
EPOCHS = (0, 1, 2)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    from avmnist_torch.sources.synthetic import make_synthetic_tree

    return make_synthetic_tree(tmp_path_factory.mktemp("epochs"), n_train=36, n_test=12, noise_seconds=1.0,
                               mnist_images=True)


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("epoch-tables")


def _dataset(root, tables, **options) -> AVMNISTAudioDataset:
    options.setdefault("draws", "per_epoch")
    return AVMNISTAudioDataset(root, "train", "burst_noise", clip_tables=tables, **options)


@pytest.fixture(scope="module")
def reference(root, tables):
    """Epoch e's first N items, as the generator alone makes them one at a time."""
    gen = AudioItemGenerator(root, "train", "burst_noise", clip_tables=tables, draws="per_epoch")
    return {e: np.stack([gen.spectrogram(i, epoch=e) for i in range(N)]) for e in EPOCHS}


def _epochs_through(loader, ds, epochs=EPOCHS):
    """Each epoch's items in index order, as ``loader`` serves them after ``ds.set_epoch(e)``."""
    out = {}
    for e in epochs:
        ds.set_epoch(e)
        rows = {}
        for batch_index, (x, _) in zip(_indices(loader), loader):
            if loader.batch_size is None:
                x = x[None]
            for i, image in zip(batch_index, x):
                rows[i] = image[0].numpy()
        out[e] = np.stack([rows[i] for i in range(len(rows))])
    return out


def _indices(loader):
    """The index batches the loader's sampler gives (a plain sequential sampler here)."""
    return list(iter(loader.batch_sampler)) if loader.batch_sampler is not None else [[i] for i in loader.sampler]


# ----------------------------------------------------------------------------
# the generator: what an epoch's item is


def test_each_epoch_is_a_pure_function_and_epochs_differ(root, tables, reference):
    gen = AudioItemGenerator(root, "train", "burst_noise", clip_tables=None, draws="per_epoch")
    for e in EPOCHS:
        # batched, in another order, with repeats, without clip tables: the same bytes
        order = [5, 0, 11, 5, 3] + list(range(N))
        got = gen.spectrograms(order, epoch=e)
        assert np.array_equal(got, reference[e][order])
    # every item changes between epochs (masks, noise clip and window are all redrawn)
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert all(not np.array_equal(reference[a][i], reference[b][i]) for i in range(N))
    # a generator made again (a resumed run) gives epoch 2 without having made 0 and 1
    again = AudioItemGenerator(root, "train", "burst_noise", clip_tables=tables, draws="per_epoch")
    assert np.array_equal(again.spectrograms(range(N), epoch=2), reference[2])


def test_per_epoch_keys_are_not_the_fixed_keys(root):
    fixed = AudioItemGenerator(root, "train", "burst_noise", clip_tables=None)
    per_epoch = AudioItemGenerator(root, "train", "burst_noise", clip_tables=None, draws="per_epoch")
    # fixed items ignore the epoch, and keep the notebook's cycle of noises
    assert np.array_equal(fixed.spectrograms(range(4), epoch=7), fixed.spectrograms(range(4)))
    assert fixed.describe(1, epoch=7)["epoch"] is None and fixed.describe(1)["draw_mode"] == "fixed"
    for i in range(4):
        masks = [d for d in per_epoch.describe(i, epoch=0)["draws"] if d["step"] == "time_mask"]
        assert masks != fixed.describe(i)["draws"]
    # the streams' keys, as docs/items.md states them
    s = epoch_rng(0, "train", "burst_noise", 3, 5, 1)
    assert s._key[:4] == item_rng(0, "train", "burst_noise", 3)._key and s._key[4:] == (1, 5)
    assert epoch_rng(0, "train", "burst_noise", 3, 5, 2).next_uint64() != s.next_uint64()


def test_describe_reports_every_draw_and_the_draws_make_the_waveform(root):
    """Replaying describe()'s draws with the schemes' pure functions gives the item's waveform: the
    draws reported are the draws used (noise clip, window start, SNR, recording, masks)."""
    gen = AudioItemGenerator(root, "train", "burst_noise", clip_tables=None, draws="per_epoch",
                             redraw_recording=True, snr_range_db=3.0)
    for i, e in ((0, 0), (4, 1), (9, 6)):
        info = gen.describe(i, epoch=e)
        assert info["epoch"] == e and info["draw_mode"] == "per_epoch"
        steps = [d["step"] for d in info["draws"]]
        assert steps == ["recording", "noise_clip", "snr", "noise_window"] + ["time_mask"] * 4
        draws = {d["step"]: d for d in info["draws"]}
        assert draws["recording"]["recording"] == info["recording"]
        assert parse_recording_name(info["recording"]).digit == info["label"]
        assert draws["noise_clip"]["noise"] == info["noise"] and info["noise"] in gen.index.noises
        assert 0.0 <= draws["snr"]["snr_db"] < 6.0  # burst_noise's 3 dB plus or minus 3
        x = pad_to_min_length(load_wav(info["recording"])[0])
        noise = resample_noise(info["noise"], 8000)
        window = draws["noise_window"]
        assert window["clip_length"] == len(noise) == 8000 and window["length"] == len(x)
        assert 0 <= window["start"] <= len(noise) - len(x)
        mixed = add_noise(x, noise[window["start"]:window["start"] + len(x)], draws["snr"]["snr_db"])
        spans = [(d["start"], d["length"]) for d in info["draws"] if d["step"] == "time_mask"]
        expected = apply_time_masks(mixed, spans)
        got, rate, _ = gen.waveform(i, epoch=e)
        assert rate == 8000 and got.dtype == expected.dtype and np.array_equal(got, expected)


def test_noise_clip_is_any_of_the_splits_pool_and_the_window_anywhere(root):
    for split in ("train", "test"):
        gen = AudioItemGenerator(root, split, "distorted", clip_tables=None, draws="per_epoch")
        pool = set(gen.index.noises)
        clips, starts = [], []
        for e in range(40):
            for d in gen.describe(e % len(gen), epoch=e)["draws"]:
                if d["step"] == "noise_clip":
                    clips.append(d["noise"])
                if d["step"] == "noise_window":
                    starts.append(d["start"] / (d["clip_length"] - d["length"]))
        assert set(clips) <= pool  # the split's own noises only (held-out categories for test)
        assert len(set(clips)) >= min(len(pool), 4), "the clip is drawn, not the index's cycle"
        assert min(starts) < 0.25 and max(starts) > 0.75, "windows start across the whole clip"


def test_short_noise_is_tiled_as_for_fixed_items(tmp_path):
    from avmnist_torch.sources.synthetic import make_synthetic_tree

    short = make_synthetic_tree(tmp_path, n_train=6, n_test=2, noise_seconds=0.05)
    gen = AudioItemGenerator(short, "train", "extreme_noise", clip_tables=None, draws="per_epoch")
    info = gen.describe(0, epoch=3)
    window = next(d for d in info["draws"] if d["step"] == "noise_window")
    x = pad_to_min_length(load_wav(info["recording"])[0])
    assert window["clip_length"] < len(x) and window["start"] == 0 and window["length"] == window["clip_length"]
    noise = resample_noise(info["noise"], 8000)
    spans = [(d["start"], d["length"]) for d in info["draws"] if d["step"] == "time_mask"]
    assert np.array_equal(gen.waveform(0, epoch=3)[0], apply_time_masks(add_noise(x, noise, 0), spans))


def test_windows_come_from_the_whole_clip_table(root, tmp_path):
    """The window is a slice of the bank's table of whole clips (get_full), not of the fixed rows, which
    end at the longest recording: with clip tables on disk, the per-epoch table holds whole rows."""
    gen = AudioItemGenerator(root, "train", "burst_noise", clip_tables=tmp_path, draws="per_epoch")
    assert gen.noise_bank.keep < 8000  # the fixed rows are shorter than the 1 s clips
    starts = []
    for e in range(12):
        info = gen.describe(0, epoch=e)
        window = next(d for d in info["draws"] if d["step"] == "noise_window")
        assert window["clip_length"] == 8000
        starts.append(window["start"] + window["length"])
    assert max(starts) > gen.noise_bank.keep, "some windows end beyond the fixed rows' length"
    assert [p.name for p in tmp_path.glob("noise-8000hz-*xall-*.f32")], "a table of whole clips"


def test_redraw_recording_draws_the_same_digit_from_the_split(root):
    gen = AudioItemGenerator(root, "test", "clean", clip_tables=None, draws="per_epoch", redraw_recording=True)
    fixed = AudioItemGenerator(root, "test", "clean", clip_tables=None)
    changed = 0
    for i in range(len(gen)):
        picks = {gen.describe(i, epoch=e)["recording"] for e in range(6)}
        assert all(parse_recording_name(p).digit == gen.labels[i] for p in picks)
        assert picks <= set(gen.index.recordings)  # test recordings for test items
        changed += picks != {fixed.describe(i)["recording"]}
    assert changed > len(gen) // 2
    # without the option the recording is the notebook's
    plain = AudioItemGenerator(root, "test", "clean", clip_tables=None, draws="per_epoch")
    assert [plain.describe(i, epoch=4)["recording"] for i in range(4)] == [fixed.describe(i)["recording"]
                                                                            for i in range(4)]


# ----------------------------------------------------------------------------
# SNR ranges: schemes as data


def test_snr_range_in_a_custom_scheme_is_drawn_per_item_in_fixed_mode(root):
    scheme = Scheme("ranged", (AddNoise(snr_db=[0, 6]), TimeMasks(ratio=0.1, count=1)))
    assert scheme.steps[0].snr_db == (0.0, 6.0) and hash(scheme)
    gen = AudioItemGenerator(root, "train", scheme, clip_tables=None)
    snrs = []
    for i in range(8):
        info = gen.describe(i)
        assert info["draws"][0]["step"] == "snr"
        snrs.append(info["draws"][0]["snr_db"])
        # keyed without the epoch: the item's own stream, the same in every call and epoch
        assert gen.describe(i, epoch=3)["draws"] == info["draws"]
        rng = item_rng(0, "train", "ranged", i)
        assert snrs[-1] == rng.uniform(0.0, 6.0)
    assert len(set(snrs)) == 8 and all(0 <= v < 6 for v in snrs)
    # a range of one value is that value: the bytes of the scalar scheme with the same stream
    one = AudioItemGenerator(root, "train", Scheme("one", (AddNoise(snr_db=(3, 3)),)), clip_tables=None)
    scalar = AudioItemGenerator(root, "train", Scheme("one", (AddNoise(snr_db=3),)), clip_tables=None)
    assert np.array_equal(one.spectrograms(range(4)), scalar.spectrograms(range(4)))


def test_snr_range_db_widens_the_schemes_value_per_epoch(root):
    gen = AudioItemGenerator(root, "train", "extreme_noise", clip_tables=None, draws="per_epoch", snr_range_db=2.5)
    assert gen.scheme.steps[0] == AddNoise(snr_db=(-2.5, 2.5)) and gen.scheme.name == "extreme_noise"
    snrs = {e: [d["snr_db"] for d in gen.describe(0, epoch=e)["draws"] if d["step"] == "snr"] for e in range(6)}
    assert all(len(v) == 1 and -2.5 <= v[0] < 2.5 for v in snrs.values())
    assert len({v[0] for v in snrs.values()}) == 6
    # the built-in schemes keep their scalar values
    assert [s.snr_db for scheme in SCHEMES.values() for s in scheme.steps if isinstance(s, AddNoise)] == [0, 3, 5]
    assert with_snr_range(SCHEMES["distorted"], 1).steps[0].snr_db == (4.0, 6.0)


def test_uniform_draw_is_the_documented_arithmetic():
    a, b = ItemRandom(1, 2, 3), ItemRandom(1, 2, 3)
    assert a.uniform(-3.0, 3.0) == -3.0 + 6.0 * ((b.next_uint64() >> 11) / 2 ** 53)
    assert ItemRandom(4).uniform(2.0, 2.0) == 2.0


@pytest.mark.parametrize("bad", [(1, 0), (0, float("nan")), (1, 2, 3), ("a", 1), ()])
def test_a_bad_snr_range_fails_where_it_is_written(bad):
    with pytest.raises(ParameterError, match="snr_db"):
        AddNoise(snr_db=bad)


def test_options_are_checked(root):
    with pytest.raises(ParameterError, match="draws"):
        AudioItemGenerator(root, "train", "clean", clip_tables=None, draws="each")
    for option in (dict(redraw_recording=True), dict(snr_range_db=3.0)):
        with pytest.raises(ParameterError, match="per_epoch"):
            AudioItemGenerator(root, "train", "clean", clip_tables=None, **option)
    for bad in (-1, "3", float("inf")):
        with pytest.raises(ParameterError, match="snr_range_db"):
            AudioItemGenerator(root, "train", "burst_noise", clip_tables=None, draws="per_epoch", snr_range_db=bad)
    ds = AVMNISTAudioDataset(root, "train", "clean", clip_tables=None, draws="per_epoch")
    for bad in (-1, 1.5, True, 2 ** 63, "3"):
        with pytest.raises(ParameterError, match="epoch"):
            ds.set_epoch(bad)
    with pytest.raises(ParameterError, match="from_export"):
        AVMNISTAudioDataset(root, "train", "clean", clip_tables=None, draws="per_epoch",
                            from_export=root / "missing.npy")


def test_epochs_exported_side_by_side_are_each_served_by_auto(root, tables, tmp_path):
    from avmnist_torch.export import export

    data = tmp_path / "data"
    shutil.copytree(root, data)  # exported under the data root, where from_export="auto" looks
    paths = [export(data, "test", "burst_noise", progress=False, draws="per_epoch", epoch=epoch,
                    clip_tables=tables, check_mnist=False)[0] for epoch in (0, 1)]
    assert [p.name for p in paths] == ["test_data_augmented_burst_noise_epoch0.npy",
                                       "test_data_augmented_burst_noise_epoch1.npy"]
    ds = AVMNISTAudioDataset(data, "test", "burst_noise", clip_tables=tables, draws="per_epoch", from_export="auto")
    gen = AudioItemGenerator(data, "test", "burst_noise", clip_tables=tables, draws="per_epoch")
    for epoch, path in zip((0, 1), paths):
        ds.set_epoch(epoch)
        assert ds.export is not None and ds.export.path == str(path)
        assert np.array_equal(ds.spectrograms(range(len(ds))), gen.spectrograms(range(len(gen)), epoch=epoch))
    ds.set_epoch(2)  # no file of epoch 2: generated
    assert ds.export is None and np.array_equal(ds.spectrogram(3), gen.spectrogram(3, epoch=2))
    # fixed items take neither file
    assert AVMNISTAudioDataset(data, "test", "burst_noise", clip_tables=tables, from_export="auto").export is None


# ----------------------------------------------------------------------------
# the epoch reaches every worker


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
@pytest.mark.parametrize("workers, persistent, context, batch_size", [
    (0, False, None, 4),
    (2, True, "fork", 4),
    pytest.param(2, True, "spawn", 4, marks=pytest.mark.slow),  # spawned workers import everything afresh
    (3, True, "fork", None),  # one item at a time: __getitem__, not __getitems__
    pytest.param(8, False, "fork", 1, marks=pytest.mark.slow),  # eight workers, started every epoch
])
def test_every_epoch_in_every_worker_is_the_generators(root, tables, reference, workers, persistent, context,
                                                       batch_size):
    ds = _dataset(root, tables)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(N)), batch_size=batch_size,
                                         num_workers=workers, persistent_workers=persistent,
                                         multiprocessing_context=context)
    got = _epochs_through(loader, ds)
    for e in EPOCHS:
        assert np.array_equal(got[e], reference[e]), f"epoch {e} with {workers} workers ({context})"
    # going back: epoch 0 again is epoch 0, in the same (persistent) workers
    assert np.array_equal(_epochs_through(loader, ds, (0,))[0], reference[0])


def test_a_resumed_run_starts_at_its_epoch(root, tables, reference):
    ds = _dataset(root, tables)
    ds.set_epoch(2)  # as a resumed run does, before its DataLoader exists
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(N)), batch_size=5, num_workers=2,
                                         persistent_workers=True)
    x = torch.cat([x for x, _ in loader])[:, 0].numpy()
    assert np.array_equal(x, reference[2])


def test_simulated_ddp_ranks_cover_each_index_once_per_epoch(root, tables, reference):
    ranks = 3
    datasets = [_dataset(root, tables) for _ in range(ranks)]
    samplers = [torch.utils.data.DistributedSampler(torch.utils.data.Subset(ds, range(N)), num_replicas=ranks,
                                                    rank=r, shuffle=True, seed=5) for r, ds in enumerate(datasets)]
    loaders = [torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(N)), batch_size=2, sampler=sampler,
                                           num_workers=2, persistent_workers=True)
               for ds, sampler in zip(datasets, samplers)]
    orders = []
    for e in EPOCHS:
        seen = {}
        for ds, sampler, loader in zip(datasets, samplers, loaders):
            sampler.set_epoch(e)
            ds.set_epoch(e)
            indices = list(iter(sampler))
            images = torch.cat([x for x, _ in loader])[:, 0].numpy()
            for i, image in zip(indices, images):
                assert i not in seen
                seen[i] = image
        assert sorted(seen) == list(range(N))  # 12 items over 3 ranks: no padding, each once
        assert all(np.array_equal(seen[i], reference[e][i]) for i in range(N))
        orders.append(list(iter(samplers[0])))
    assert orders[0] != orders[1]  # the sampler's shuffle moved too


def test_pickled_and_copied_datasets_keep_their_epoch_and_share_it(root, tables, reference):
    ds = _dataset(root, tables)
    ds.set_epoch(1)
    for other in (pickle.loads(pickle.dumps(ds)), copy.deepcopy(ds)):
        assert other.epoch == 1 and other._epoch.is_shared()
        other.set_epoch(2)
        assert ds.epoch == 1  # a copy, not the original's memory
        # a forked worker of the copy still follows the copy's set_epoch
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(other, range(N)), batch_size=6, num_workers=2,
                                             persistent_workers=True, multiprocessing_context="fork")
        assert np.array_equal(_epochs_through(loader, other, (1, 2))[2], reference[2])


def test_fixed_mode_is_the_same_every_epoch(root, tables):
    ds = AVMNISTAudioDataset(root, "train", "burst_noise", clip_tables=tables)
    first = ds.spectrograms(range(N))
    ds.set_epoch(5)
    assert ds.epoch == 5 and np.array_equal(ds.spectrograms(range(N)), first)
    assert "Draws:" not in str(ds) and "draws" not in ds.metadata()


def test_paired_dataset_forwards_set_epoch_to_its_audio(root, tables, reference):
    ds = AVMNISTDataset(root, "train", "burst_noise", image="raw", image_cache=None, clip_tables=tables,
                        draws="per_epoch", check_mnist=False)  # the tree's MNIST files are synthetic
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(N)), batch_size=4, num_workers=2,
                                         persistent_workers=True)
    images = {}
    for e in (0, 2):
        ds.set_epoch(e)
        assert ds.epoch == ds.audio.epoch == e
        batches = list(loader)
        audio = torch.cat([a for _, a, _ in batches])[:, 0].numpy()
        assert np.array_equal(audio, reference[e])
        images[e] = torch.cat([image for image, _, _ in batches])
    assert torch.equal(images[0], images[2])  # the image half does not change


def test_metadata_and_describe_name_the_epoch(root, tables):
    ds = _dataset(root, tables, snr_range_db=1.0)
    ds.set_epoch(4)
    meta = ds.metadata()
    assert meta["draws"] == {"mode": "per_epoch", "epoch": 4, "redraw_recording": False, "snr_range_db": 1.0}
    assert "(2.0, 4.0)" in meta["scheme_steps"]
    assert ds.describe(3)["epoch"] == 4 and "epoch 4" in repr(ds)


def test_an_items_two_streams_are_its_keyed_streams():
    steps, sources = epoch_rngs(3, "test", "aliased", 17, 9)
    for got, stream in ((steps, STEPS_STREAM), (sources, SOURCES_STREAM)):
        want = ItemRandom(3, 1, zlib.crc32(b"aliased"), 17, stream, 9)
        assert got._key == want._key and [got.next_uint64() for _ in range(3)] == [want.next_uint64() for _ in range(3)]


# ----------------------------------------------------------------------------
# exporting one epoch


def test_export_writes_one_epoch_and_verify_and_serving_compare_it(root, tmp_path, capsys):
    from avmnist_torch.cli import main
    from avmnist_torch.export import export
    from avmnist_torch.common import MetadataMismatch, StorageError
    from avmnist_torch.files import read_sidecar
    from avmnist_torch.verify import verify

    out = tmp_path / "epoch2.npy"
    [path] = export(root, "test", "burst_noise", out=out, format="npy", workers=2, progress=False,
                    draws="per_epoch", epoch=2,
                    snr_range_db=1.0, clip_tables=None)
    gen = AudioItemGenerator(root, "test", "burst_noise", clip_tables=None, draws="per_epoch", snr_range_db=1.0)
    rows = np.load(path)
    assert np.array_equal(rows, gen.spectrograms(range(len(gen)), epoch=2))
    assert not np.array_equal(rows, gen.spectrograms(range(len(gen)), epoch=1))
    assert read_sidecar(path)["identity"]["draws"] == {"mode": "per_epoch", "epoch": 2, "redraw_recording": False,
                                           "snr_range_db": 1.0}
    report = verify(path, sample=None, workers=1, progress=False)
    assert report.ok and not report.mismatches, report.summary()
    # the same epoch again is already there; another epoch (or fixed items) is refused, never overwritten
    export(root, "test", "burst_noise", out=out, format="npy", progress=False, draws="per_epoch", epoch=2,
           snr_range_db=1.0)
    for other in (dict(draws="per_epoch", epoch=3, snr_range_db=1.0), {}):
        with pytest.raises(MetadataMismatch, match="draws"):
            export(root, "test", "burst_noise", out=out, format="npy", progress=False, **other)
    # a fixed dataset will not serve it as its own items
    with pytest.raises(StorageError, match="draws"):
        AVMNISTAudioDataset(root, "test", "burst_noise", from_export=path)
    # the command line: --epoch K with --draws per_epoch; --epoch alone is a usage error
    cli_out = tmp_path / "cli-epoch1.npy"
    assert main(["export", "--root", str(root), "--split", "test", "--scheme", "burst_noise", "--draws", "per_epoch",
                 "--epoch", "1", "--format", "npy", "--out", str(cli_out), "--quiet"]) == 0
    per_epoch = AudioItemGenerator(root, "test", "burst_noise", clip_tables=None, draws="per_epoch")
    assert np.array_equal(np.load(cli_out), per_epoch.spectrograms(range(len(per_epoch)), epoch=1))
    capsys.readouterr()
    assert main(["export", "--root", str(root), "--split", "test", "--epoch", "1", "--out",
                 str(tmp_path / "x.npy"), "--quiet"]) == 2
    assert "--epoch: only with --draws per_epoch" in capsys.readouterr().err
