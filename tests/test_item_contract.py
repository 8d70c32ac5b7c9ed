"""What an item is, against independent statements of it, on synthetic trees (no ../shared/data).

Each claim of docs/items.md that decides an item's bytes is checked here in seconds, against the
notebook's own functions (``notebook_reference``, copied literally) or against the rule restated
from the docs in ``notebook_reference``'s last section, never against the package's own output:

- which recording and which noise each item takes (the notebook's loop, and the docs' rule);
- every scheme's waveform, the notebook's ``augment_audio`` fed the package's draws;
- the SNR arithmetic, by hand;
- time and frequency masks: lengths, and starts at both ends of their range;
- per-epoch draws (recording, noise clip, SNR, window, masks) against the docs' restatement, the
  window's whole range up to its last start, and the noise clip uniform over the pool (chi-square).

The real-data versions of some of these (tests/test_notebook_equivalence.py) run where
../shared/data is beside the checkout; these run everywhere.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

nb = pytest.importorskip("notebook_reference")  # needs librosa, from the test extra

from avmnist_torch import AudioItemGenerator, ParameterError, Scheme  # noqa: E402
from avmnist_torch.schemes import (  # noqa: E402
    SCHEMES,
    AddNoise,
    FrequencyMasks,
    TimeMasks,
    add_noise,
    apply_frequency_masks,
    apply_scheme,
    apply_scheme_many,
    apply_time_masks,
    draw_frequency_masks,
    draw_time_masks,
    fit_noise_length,
    item_rng,
)
from avmnist_torch.sources.synthetic import make_synthetic_tree  # noqa: E402

NOTEBOOK_SCHEMES = ("extreme_noise", "multi_band", "burst_noise", "aliased", "distorted")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A read-only synthetic tree: train cycles twice through its 6 recordings per digit and its 6 noises;
    test has 15 recordings per digit and 10 noises, and 200 items so that both cycles wrap too."""
    return make_synthetic_tree(tmp_path_factory.mktemp("contract"), n_train=120, n_test=200, noise_seconds=1.0)


def _generator(root, split, scheme, **options):
    options.setdefault("clip_tables", None)
    return AudioItemGenerator(root, split, scheme, **options)


# ----------------------------------------------------------------------------
# which recording and which noise item i gets


@pytest.mark.parametrize("split", ["train", "test"])
def test_item_to_recording_and_noise_is_the_notebooks_loop(tree, split):
    """Every item against the notebook's generate_augmented_npy loop over its own index, and the docs' rule."""
    index = nb.build_index(str(tree / "recordings"), str(tree / "noise_recordings"))
    labels = np.load(tree / "avmnist" / f"{split}_labels.npy")
    gen = _generator(tree, split, "burst_noise")
    assert len(gen) == len(labels) and gen.index.test_categories == index["test_categories"]
    by_label = index["train_audio_by_label" if split == "train" else "test_audio_by_label"]
    noises = index["train_noises_file_names" if split == "train" else "test_noises_file_names"]
    by_digit = [by_label[str(d)] for d in range(10)]
    rule = nb.docs_fixed_mapping(labels, by_digit, len(noises))
    wraps = Counter()
    for i, audio_file, noise_file in nb.generate_items(index, labels, split == "train", nb.AugmentationType.BURST_NOISE):
        info = gen.describe(i)
        assert info["recording"] == audio_file, f"item {i}"
        assert info["noise"] == noise_file, f"item {i}"
        assert info["label"] == int(labels[i])
        digit, position, noise_position = rule[i]
        assert audio_file == by_digit[digit][position] and noise_file == noises[noise_position], f"item {i}"
        wraps["recording"] += position == 0 and i >= 10
        wraps["noise"] += noise_position == 0 and i > 0
    # the tree is made so that both cycles come round again: an off-by-one at the wrap shows
    assert wraps["recording"] > 0 and wraps["noise"] > 0


def test_schemes_without_noise_take_the_same_recordings(tree):
    index = nb.build_index(str(tree / "recordings"), str(tree / "noise_recordings"))
    labels = np.load(tree / "avmnist" / "train_labels.npy")
    gen = _generator(tree, "train", "aliased")
    for i, audio_file, noise_file in nb.generate_items(index, labels, True, nb.AugmentationType.ALIASED, limit=40):
        info = gen.describe(i)
        assert noise_file is None and info["noise"] is None
        assert info["recording"] == audio_file, f"item {i}"


def test_the_split_index_holds_what_it_says(tree, tmp_path):
    """SplitIndex's record beside the mapping: int64 read-only ids, -1 and no noises for schemes without
    noise, the longest recording's length (0 when headers are not read), and the folder named when a digit
    has no recording in the split."""
    import shutil

    import soundfile

    from avmnist_torch.common import SourceError
    from avmnist_torch.sources.index import build_split_index

    labels = np.load(tree / "avmnist" / "train_labels.npy")
    index = build_split_index("train", tree / "recordings", tree / "noise_recordings", labels)
    assert index.split == "train" and len(index) == len(labels) and index.labels.tolist() == labels.tolist()
    for ids in (index.recording_ids, index.noise_ids):
        assert ids.dtype == np.int64 and not ids.flags.writeable
    assert index.max_recording_length == max(soundfile.info(p).frames for p in index.recordings)
    assert len(index.test_categories) == 5
    quiet = build_split_index("train", tree / "recordings", None, labels)
    assert quiet.noises == [] and quiet.test_categories == [] and (quiet.noise_ids == -1).all()
    assert quiet.noise_ids.dtype == np.int64 and quiet.recording_ids.tolist() == index.recording_ids.tolist()
    assert build_split_index("train", tree / "recordings", None, labels, check_audio=False).max_recording_length == 0
    partial = tmp_path / "recordings"
    shutil.copytree(tree / "recordings", partial)
    for path in partial.glob("3_*_[56].wav"):  # digit 3's train takes
        path.unlink()
    with pytest.raises(SourceError, match=f"{partial}: no train recordings .* for digit.s. 3"):
        build_split_index("train", partial, None, labels)
    # a corrupt file is named, with what it is for (headers are read when the index is built)
    from avmnist_torch.sources.audio import AudioFileError

    broken = tmp_path / "broken"
    shutil.copytree(tree, broken)
    (broken / "recordings" / "4_ada_6.wav").write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(AudioFileError, match="^1 unusable train recording file.s.: .*4_ada_6.wav"):
        build_split_index("train", broken / "recordings", None, labels)
    noise = sorted((broken / "noise_recordings" / "audio").glob("*.wav"))
    for path in noise:
        path.write_bytes(b"")
    with pytest.raises(AudioFileError, match=f"^{len(noise) - 6} unusable test noise file.s. .and "):
        build_split_index("test", tree / "recordings", broken / "noise_recordings",
                          np.load(tree / "avmnist" / "test_labels.npy"))


# ----------------------------------------------------------------------------
# every scheme: the notebook's augment_audio, its random.randint fed the package's draws


def _notebook_waveform(audio_file, noise_file, scheme, draws):
    starts = iter([d["start"] for d in draws])
    calls = []

    def fake_randint(a, b):
        value = next(starts)
        calls.append((a, b))
        assert a <= value <= b, f"start {value} outside the notebook's randint({a}, {b})"
        return value

    with mock.patch.object(nb.random, "randint", side_effect=fake_randint):
        samples, rate = nb.augment_audio(audio_file, noise_file, nb.AugmentationType[scheme.upper()])
    assert len(calls) == len(draws), "the notebook made a different number of draws"
    return samples, rate, calls


@pytest.mark.parametrize("scheme", NOTEBOOK_SCHEMES)
def test_every_scheme_is_the_notebook_fed_the_same_draws(tree, scheme):
    items = {"train": [0, 1, 7, 60, 119], "test": [0, 3, 150, 199]}
    for split, indices in items.items():
        gen = _generator(tree, split, scheme)
        expected = {}
        for i in indices:
            info = gen.describe(i)
            expected[i], rate, calls = _notebook_waveform(info["recording"], info["noise"], scheme, info["draws"])
            got, got_rate, _ = gen.waveform(i)
            assert got_rate == rate
            assert got.dtype == expected[i].dtype and got.tobytes() == expected[i].tobytes(), f"{split} item {i}"
            # each start is the documented stream's draw over the notebook's randint range; each length is
            # what that range leaves (randint(0, n - m) for time masks, randint(0, 1025 - size) for bins)
            stream = nb.docs_item_stream(0, split, scheme, i)
            kind, whole = ("time_mask", len(got)) if scheme in ("extreme_noise", "burst_noise") else \
                ("frequency_mask", 1025)
            assert info["draws"] == [{"step": kind, "start": stream.integers(a, b), "length": whole - b}
                                     for a, b in calls]
        # the batched path (what a DataLoader batch takes), in another order
        order = indices[::-1]
        batch, rates = gen.waveforms(order)
        assert rates == [8000] * len(order)
        assert [x.tobytes() for x in batch] == [expected[i].tobytes() for i in order], split


def test_batches_and_other_rates_are_the_notebook(tmp_path):
    """apply_scheme_many over a batch at one rate and over a batch of mixed rates, and apply_scheme of a
    16 kHz clip: the notebook's augment_audio of the same wav files, fed the same draws."""
    import soundfile

    from avmnist_torch.sources.audio import load_wav

    rng = np.random.default_rng(21)
    clips = [(8000, 3000), (16000, 5000), (8000, 2500), (8000, 1500)]
    paths = []
    for k, (rate, n) in enumerate(clips):
        paths.append(tmp_path / f"{k}_x_{k}.wav")
        soundfile.write(str(paths[-1]), 0.3 * rng.standard_normal(n), rate, subtype="PCM_16")
    loaded = [load_wav(p) for p in paths]
    for scheme in ("multi_band", "aliased"):
        expected = []
        for k, path in enumerate(paths):
            one, draws = apply_scheme(loaded[k][0], loaded[k][1], SCHEMES[scheme], rng=item_rng(0, "test", scheme, k))
            want, rate, _ = _notebook_waveform(str(path), None, scheme, draws)
            assert rate == loaded[k][1] and one.tobytes() == want.tobytes(), (scheme, k)
            expected.append(want)
        for members in ([0, 2, 3], [0, 1, 2, 3]):  # one rate; mixed rates
            many, _ = apply_scheme_many([loaded[k][0] for k in members], [loaded[k][1] for k in members],
                                        SCHEMES[scheme], rngs=[item_rng(0, "test", scheme, k) for k in members])
            for k, got in zip(members, many):
                assert got.tobytes() == expected[k].tobytes(), (scheme, members, k)


def _installed_style():
    """The installed matplotlib's style, for comparing with the notebook's wav_to_spectrogram (or skip)."""
    import matplotlib

    from avmnist_torch.rendering import STYLES

    style = ".".join(matplotlib.__version__.split(".")[:2])
    if style not in STYLES:
        pytest.skip(f"matplotlib {matplotlib.__version__} is installed, not one of the styles {STYLES}")
    return style


def test_a_batch_transforms_all_clips_at_once_and_refuses_ragged_arguments(monkeypatch):
    """The built-in steps' batch forms run (one stacked STFT per step, not one per clip); a subclass that
    changes __call__ runs clip by clip; arguments of different lengths are refused, not zipped short."""
    from avmnist_torch import dsp

    calls = []
    real = dsp.stft_many
    monkeypatch.setattr(dsp, "stft_many", lambda clips, *a, **k: calls.append(len(clips)) or real(clips, *a, **k))
    clips = [np.random.default_rng(k).standard_normal(3000 + 100 * k).astype(np.float32) for k in range(3)]
    rngs = [item_rng(0, "train", "multi_band", k) for k in range(3)]
    apply_scheme_many(clips, [8000] * 3, SCHEMES["multi_band"], rngs=rngs)
    assert calls == [3, 3]  # frequency masks, then band keep: each over the whole batch

    class Louder(FrequencyMasks):
        def __call__(self, samples, ctx):
            return FrequencyMasks.__call__(self, samples, ctx) * 2

    calls.clear()
    apply_scheme_many(clips, [8000] * 3, Scheme("louder", (Louder(0.2, 1),)),
                      rngs=[item_rng(0, "train", "louder", k) for k in range(3)])
    assert calls == []
    for bad in (dict(sample_rates=[8000] * 2, rngs=rngs), dict(sample_rates=[8000] * 3, rngs=rngs[:2]),
                dict(sample_rates=[8000] * 3, rngs=rngs, noises=[None] * 2)):
        with pytest.raises(ValueError, match="one entry per clip"):
            apply_scheme_many(clips, scheme=SCHEMES["multi_band"], **bad)


def test_the_training_order_is_the_documented_permutation():
    """EpochSampler: torch.randperm(n) from a generator seeded by SeedSequence([seed, epoch]).generate_state(1,
    uint64)[0] >> 1 (sampling.py), seed 0 by default."""
    import torch

    from avmnist_torch import EpochSampler
    from avmnist_torch.sampling import epoch_seed

    for seed, epoch in ((0, 0), (7, 3), (2**40, 2**33)):
        state = int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0]) // 2
        assert epoch_seed(seed, epoch) == state and state < 2**63
        want = torch.randperm(50, generator=torch.Generator().manual_seed(state)).tolist()
        assert EpochSampler(range(50), seed=seed).order(epoch) == want
    default = EpochSampler(range(50))
    assert default.seed == 0 and default.order(4) == EpochSampler(range(50), seed=0).order(4)


def test_down_up_resampling_at_the_edges_of_the_rates_it_takes():
    """A rate of 1 Hz is a rate; a factor that leaves 1 Hz leaves a rate (librosa resamples through it)."""
    from avmnist_torch.schemes import down_up_resample

    x = np.random.default_rng(8).standard_normal(4000).astype(np.float32)
    assert down_up_resample(x, 1, 1).tobytes() == x.tobytes()  # 1 Hz // 1 = 1 Hz: nothing to do
    want = nb.librosa.resample(nb.librosa.resample(x, orig_sr=8000, target_sr=1), orig_sr=1, target_sr=8000)
    got = down_up_resample(x, 8000, 8000)
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_the_notebooks_rendering_of_a_few_items(tree):
    """The chain to the pixels: the notebook's wav_to_spectrogram (the installed matplotlib) of its own
    waveform, against the package's fast renderer in the installed matplotlib's style."""
    style = _installed_style()
    for scheme in ("burst_noise", "multi_band"):
        gen = _generator(tree, "train", scheme, style=style)
        for i in (0, 5):
            info = gen.describe(i)
            samples, rate, _ = _notebook_waveform(info["recording"], info["noise"], scheme, info["draws"])
            assert np.array_equal(gen.spectrogram(i), nb.wav_to_spectrogram(samples, rate)), (scheme, i)


def test_batches_and_epochs_render_the_notebooks_pixels(tree, epoch_tree):
    """spectrograms(indices) in any order, with repeats and a negative index, and an epoch's items: the
    notebook's wav_to_spectrogram of each item's waveform."""
    style = _installed_style()
    gen = _generator(tree, "train", "burst_noise", style=style)
    want = {i: nb.wav_to_spectrogram(*gen.waveform(i)[:2]) for i in (0, 5, 119)}
    got = gen.spectrograms([119, 0, 5, 0, -1])
    assert got.dtype == np.uint8 and np.array_equal(got, np.stack([want[i] for i in (119, 0, 5, 0, 119)]))
    assert gen.spectrograms([]).shape == (0, 112, 112)
    per_epoch = _generator(epoch_tree, "test", "burst_noise", style=style, draws="per_epoch", epoch=2)
    for epoch in (0, 3):
        want = np.stack([nb.wav_to_spectrogram(*per_epoch.waveform(i, epoch=epoch)[:2]) for i in (0, 1)])
        assert np.array_equal(per_epoch.spectrograms([0, 1], epoch=epoch), want), epoch
        assert np.array_equal(per_epoch.spectrogram(1, epoch=epoch), want[1]), epoch
    # without epoch=, the generator's own epoch (2)
    assert np.array_equal(per_epoch.spectrogram(0), nb.wav_to_spectrogram(*per_epoch.waveform(0, epoch=2)[:2]))
    assert not np.array_equal(per_epoch.spectrogram(0), per_epoch.spectrogram(0, epoch=0))


class _Triple:
    """A recording-only step of one's own that makes a clip three times as long: longer than the rows of
    the generator's table of prepared recordings, which must then compute it whole."""

    uses_noise = False
    recording_only = True

    def __call__(self, samples, ctx):
        return np.concatenate([samples, samples[::-1], samples]) * np.float32(ctx.sample_rate / 8000)


def test_a_prepared_recording_longer_than_its_table_row_is_computed_whole(tree):
    from avmnist_torch.sources.audio import load_wav

    gen = _generator(tree, "test", Scheme("triple", (_Triple(),)))
    for i in (0, 7):
        y = load_wav(gen.describe(i)["recording"])[0]
        x = np.pad(y, (0, max(0, 2048 - len(y))))
        want = np.concatenate([x, x[::-1], x])
        assert gen.waveform(i)[0].tobytes() == want.tobytes(), i
        assert gen.waveforms([i])[0][0].tobytes() == want.tobytes(), i


def test_describe_says_everything_about_an_item(tree):
    gen = _generator(tree, "test", "extreme_noise", seed=9)
    info = gen.describe(-1)
    index = len(gen) - 1
    expected_noise = gen.index.noises[index % len(gen.index.noises)]
    masks = [d for d in info["draws"] if d["step"] == "time_mask"]
    assert info == {"index": index, "split": "test", "scheme": "extreme_noise", "seed": 9, "draw_mode": "fixed",
                    "epoch": None, "label": int(gen.labels[index]), "recording": info["recording"],
                    "noise": expected_noise, "sample_rate": 8000, "draws": masks, "renderer": "fast",
                    "style": "3.10"}
    assert len(masks) == 2
    assert _generator(tree, "test", "clean", style="3.9").describe(0)["style"] == "3.9"
    import matplotlib

    drawn = _generator(tree, "test", "clean", renderer="matplotlib").describe(0)
    assert drawn["renderer"] == "matplotlib" and drawn["style"] == ".".join(matplotlib.__version__.split(".")[:2])
    # a fixed generator takes an epoch and ignores it; a bad one is refused all the same
    assert np.array_equal(gen.spectrogram(3, epoch=7), gen.spectrogram(3))
    with pytest.raises(ParameterError, match="epoch"):
        gen.spectrogram(3, epoch=-1)
    with pytest.raises(IndexError, match=f"index {len(gen)} out of range for {len(gen)} test items"):
        gen.spectrogram(len(gen))


# ----------------------------------------------------------------------------
# the SNR, by hand


def test_snr_arithmetic_by_hand():
    # signal: +-2 (rms 2); noise: +-1 (rms 1). At 20 dB the noise's rms must be 2 / 10 = 0.2.
    x = np.array([2, -2] * 2048, np.float32)
    noise = np.array([1, 1, -1, -1] * 1024, np.float32)
    out = add_noise(x, noise, 20)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x + 0.2 * noise, rtol=0, atol=1e-6)
    # at 6 dB: 2 / 10**(6/20) = 1.0023744672545446
    np.testing.assert_allclose(add_noise(x, noise, 6) - x, 1.0023744672545446 * noise, rtol=1e-6)
    # at 0 dB the noise is as loud as the signal; at -10 dB, 10**0.5 times louder
    np.testing.assert_allclose(add_noise(x, noise, 0) - x, 2.0 * noise, rtol=1e-6)
    np.testing.assert_allclose(add_noise(x, noise, -10) - x, 2.0 * 3.1622776601683795 * noise, rtol=1e-6)


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 3.0, 5.0, 17.5])
def test_mixed_noise_has_the_asked_snr(snr_db):
    rng = np.random.default_rng(int(snr_db * 10) + 100)
    x = (rng.standard_normal(5000) * 0.3).astype(np.float32)
    noise = (rng.standard_normal(40000) * 7).astype(np.float32)
    out = add_noise(x, noise, snr_db)
    added = out.astype(np.float64) - x
    rms = lambda v: np.sqrt(np.mean(np.asarray(v, np.float64) ** 2))  # noqa: E731
    assert abs(20 * np.log10(rms(x) / rms(added)) - snr_db) < 1e-4
    # the noise added is the clip's first len(x) samples, scaled by rms(x) / 10**(snr/20) / rms(noise)
    scale = rms(x) / 10 ** (snr_db / 20) / rms(noise[:5000])
    np.testing.assert_allclose(added, noise[:5000] * scale, rtol=0, atol=1e-6 * np.abs(out).max())


def test_noise_exactly_as_long_one_sample_long_or_empty():
    x = np.arange(1, 6, dtype=np.float32)
    assert fit_noise_length(x, 5).tobytes() == x.tobytes()
    assert fit_noise_length(x[:1], 4).tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="the noise clip is empty"):
        fit_noise_length(np.zeros(0, np.float32), 5)


def test_silent_noise_adds_nothing_and_short_noise_is_tiled():
    x = np.linspace(-1, 1, 3000, dtype=np.float32)
    assert add_noise(x, np.zeros(4000, np.float32), 3).tobytes() == x.tobytes()
    short = np.array([1, 2, 3], np.float32)
    assert fit_noise_length(short, 7).tolist() == [1, 2, 3, 1, 2, 3, 1]
    assert fit_noise_length(short, 3).tolist() == [1, 2, 3] and fit_noise_length(short, 2).tolist() == [1, 2]
    # mixing a tiled short clip is mixing the tiled clip
    tiled = np.tile(short, 1000)[:3000]
    assert add_noise(x, short, 3).tobytes() == add_noise(x, tiled, 3).tobytes()


# ----------------------------------------------------------------------------
# masks at their bounds


class _Edge:
    """An rng that gives the low or the high end of each range it is asked for, and records the ranges."""

    def __init__(self, end):
        self.end, self.ranges = end, []

    def integers(self, low, high):
        self.ranges.append((low, high))
        return low if self.end == "low" else high


@pytest.mark.parametrize("n", [2048, 2049, 3358, 18262])
@pytest.mark.parametrize("ratio, count", [(0.1, 2), (0.15, 4), (0.0, 1), (1.0, 1), (0.999, 2)])
def test_time_masks_at_both_ends_of_their_range(n, ratio, count):
    m = int(n * ratio)
    x = np.arange(1, n + 1, dtype=np.float32)
    for end in ("low", "high"):
        rng = _Edge(end)
        spans = draw_time_masks(n, ratio, count, rng)
        assert rng.ranges == [(0, n - m)] * count  # random.randint's range, both ends included
        start = 0 if end == "low" else n - m
        assert spans == [(start, m)] * count
        got = apply_time_masks(x, spans)
        expected = x.copy()
        expected[start:start + m] = 0
        assert got.tobytes() == expected.tobytes() and int((got == 0).sum()) == m
        # the notebook's apply_time_masks, its randint giving the same end
        with mock.patch.object(nb.random, "randint", side_effect=lambda a, b: a if end == "low" else b):
            assert nb.apply_time_masks(x.copy(), ratio, count).tobytes() == got.tobytes()
    assert x[0] == 1  # the input is left alone


def test_a_time_mask_zeroes_exactly_its_span():
    x = np.ones(2048, np.float32)
    got = apply_time_masks(x, [(100, 307), (2040, 8)])
    assert np.flatnonzero(got == 0).tolist() == list(range(100, 407)) + list(range(2040, 2048))
    # overlapping spans, a span of 0
    got = apply_time_masks(x, [(10, 5), (12, 5), (30, 0)])
    assert np.flatnonzero(got == 0).tolist() == list(range(10, 17))


def test_time_mask_starts_reach_both_ends_through_a_scheme():
    """Through apply_scheme with the item's real stream: every start in [0, n - m] is drawn, the last one too."""
    scheme = Scheme("edges", (TimeMasks(ratio=0.999, count=1),))  # n = 2048, m = 2045: starts 0..3
    starts = Counter()
    x = np.ones(2048, np.float32)
    for i in range(200):
        out, draws = apply_scheme(x, 8000, scheme, rng=item_rng(0, "train", "edges", i))
        (draw,) = draws
        assert draw["length"] == 2045 and int((out == 0).sum()) == 2045
        assert out[draw["start"]:draw["start"] + 2045].max() == 0
        starts[draw["start"]] += 1
    assert sorted(starts) == [0, 1, 2, 3]


@pytest.mark.parametrize("ratio, count", [(0.2, 3), (0.3, 1), (0.0, 1), (1.0, 1)])
def test_frequency_masks_at_both_ends_of_their_range(ratio, count):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(4000).astype(np.float32)
    size = int(1025 * ratio)
    for end in ("low", "high"):
        edge = _Edge(end)
        ranges = draw_frequency_masks(1025, ratio, count, edge)
        assert edge.ranges == [(0, 1025 - size)] * count
        start = 0 if end == "low" else 1025 - size
        assert ranges == [(start, size)] * count
        got = apply_frequency_masks(x, ranges)
        with mock.patch.object(nb.random, "randint", side_effect=lambda a, b: a if end == "low" else b):
            expected = nb.apply_frequency_masks(x.copy(), 8000, ratio, count)
        assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes(), (ratio, end)


def test_frequency_mask_sizes_are_the_notebooks():
    for ratio, size in ((0.2, 205), (0.3, 307), (0.15, 153), (1.0, 1025), (0.0, 0)):
        edge = _Edge("low")
        assert draw_frequency_masks(1025, ratio, 1, edge) == [(0, size)]
    assert FrequencyMasks(0.2, 3) == SCHEMES["multi_band"].steps[0]


# ----------------------------------------------------------------------------
# per-epoch draws, against docs/items.md restated


def test_streams_are_the_documented_keys_and_refuse_negative_parts():
    from avmnist_torch.schemes import STEPS_STREAM, SOURCES_STREAM, epoch_rng, epoch_rngs

    for seed, split, name, index, epoch in ((0, "train", "burst_noise", 0, 0), (2**64 - 1, "test", "aliased", 59_999, 9)):
        want = nb.docs_item_stream(seed, split, name, index)
        got = item_rng(seed, split, name, index)
        assert [got.integers(0, 2**40) for _ in range(4)] == [want.integers(0, 2**40) for _ in range(4)]
        steps, sources = epoch_rngs(seed, split, name, index, epoch)
        for stream, pair in ((STEPS_STREAM, steps), (SOURCES_STREAM, sources)):
            want = nb.docs_epoch_stream(seed, split, name, index, epoch, stream)
            alone = epoch_rng(seed, split, name, index, epoch, stream)
            expected = [want.next() for _ in range(3)]
            assert [pair.next_uint64() for _ in range(3)] == expected
            assert [alone.next_uint64() for _ in range(3)] == expected
        # the per-epoch streams' numpy() generators are keyed on all six parts too
        key = (seed, nb.DOCS_SPLIT_IDS[split], nb.docs_scheme_id(name), index)
        for stream, pair in ((STEPS_STREAM, epoch_rngs(seed, split, name, index, epoch)[0]),
                             (SOURCES_STREAM, epoch_rngs(seed, split, name, index, epoch)[1])):
            first = nb.docs_epoch_stream(seed, split, name, index, epoch, stream).next()
            want = np.random.Generator(np.random.PCG64(np.random.SeedSequence([*key, stream, epoch, first])))
            assert pair.numpy().integers(0, 2**62, 3).tolist() == want.integers(0, 2**62, 3).tolist()
    for bad in ((-1, 0, 0), (0, -1, 0), (0, 0, -1)):
        seed, index, epoch = bad
        with pytest.raises(ValueError, match="non-negative"):
            epoch_rng(seed, "train", "x", index, epoch, STEPS_STREAM)
        with pytest.raises(ValueError, match="non-negative"):
            epoch_rngs(seed, "train", "x", index, epoch)
    with pytest.raises(ValueError, match="non-negative"):
        item_rng(0, "train", "x", -1)


def test_uniform_integers_over_spans_that_reject_often_are_the_documented_ones():
    """Lemire's rejection matters only when the span does not divide 2**64: over spans near 2**63 about half of the
    64-bit outputs are rejected, so the threshold and the comparison are exercised draw by draw."""
    for low, high in ((0, 2**63), (0, 3 * 2**62 - 1), (10, 2**64 - 1), (0, 2**64 - 1), (-5, 2**62)):
        got, want = item_rng(1, "test", "aliased", 3), nb.docs_item_stream(1, "test", "aliased", 3)
        draws = [got.integers(low, high) for _ in range(400)]
        assert draws == [want.integers(low, high) for _ in range(400)], (low, high)
        assert min(draws) >= low and max(draws) <= high


def test_which_leading_steps_depend_on_the_recording_alone():
    """recording_prefix: the leading steps whose own class declares recording_only = True beside its __call__."""
    from avmnist_torch.schemes import BandKeep, DownUpResample, Distortion, recording_prefix

    class Quieter(DownUpResample):  # changes __call__ without restating the promise
        def __call__(self, samples, ctx):
            return DownUpResample.__call__(self, samples, ctx) * 0.5

    def plain(samples, ctx):  # a function step declares nothing
        return samples

    assert recording_prefix(SCHEMES["aliased"]) == (DownUpResample(4),)
    assert recording_prefix(SCHEMES["distorted"]) == () and recording_prefix(SCHEMES["multi_band"]) == ()
    mixed = Scheme("m", (Distortion(2.0), DownUpResample(2), BandKeep(((0, 100),)), TimeMasks(0.1), Distortion(1.0)))
    assert recording_prefix(mixed) == mixed.steps[:3]
    assert recording_prefix(Scheme("q", (Quieter(4), Distortion(2.0)))) == ()
    assert recording_prefix(Scheme("p", (plain, Distortion(2.0)))) == ()
    triple = _Triple()  # a class of one's own that declares it
    assert recording_prefix(Scheme("t", (triple, plain))) == (triple,)


def test_a_streams_numpy_generator_and_extension_are_the_documented_ones():
    """``ItemRandom.numpy()`` is PCG64(SeedSequence(key + [next()])); ``extended(*parts)`` is the stream keyed on key + parts."""
    key = (3, 1, nb.docs_scheme_id("burst_noise"), 17)
    got = item_rng(3, "test", "burst_noise", 17).numpy()
    want = np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(key) + [nb.DocsStream(*key).next()])))
    assert got.integers(0, 2**62, 6).tolist() == want.integers(0, 2**62, 6).tolist()
    extended = item_rng(3, "test", "burst_noise", 17).extended(5, 9)
    docs = nb.DocsStream(*key, 5, 9)
    assert [extended.next_uint64() for _ in range(4)] == [docs.next() for _ in range(4)]


def test_reprs_say_what_makes_the_items(tree):
    from avmnist_torch import EpochSampler

    gen = _generator(tree, "test", "burst_noise", seed=4)
    assert repr(gen) == ("AudioItemGenerator(split='test', scheme='burst_noise', seed=4, renderer='fast', "
                         "style='3.10', items=200)")
    per_epoch = _generator(tree, "train", "distorted", draws="per_epoch", epoch=3, redraw_recording=True,
                           snr_range_db=1.5)
    assert repr(per_epoch) == ("AudioItemGenerator(split='train', scheme='distorted', seed=0, renderer='fast', "
                               "style='3.10', draws='per_epoch', epoch=3, redraw_recording=True, "
                               "snr_range_db=1.5, items=120)")
    assert repr(EpochSampler(range(30), seed=7, shuffle=False)) == "EpochSampler(n=30, seed=7, shuffle=False)"


@pytest.fixture(scope="module")
def epoch_tree(tmp_path_factory):
    """Noise clips at the recordings' rate, each 2,052 samples: a padded recording of 2,048 samples has
    window starts 0..4 only, so the whole range, the last start included, is drawn within a few epochs.
    8 categories of 3 clips: train's pool holds 9 clips, test's 15."""
    return make_synthetic_tree(tmp_path_factory.mktemp("epoch-contract"), n_train=60, n_test=30, noise_rate=8000,
                               noise_seconds=2052 / 8000, clips_per_category=3)


def _restated(gen, i, epoch, *, redraw, snr_db, time_masks, n_samples):
    digit = int(gen.labels[i])
    pool = [p for p in gen.index.recordings if Path(p).name.startswith(f"{digit}_")]
    draws = nb.docs_per_epoch_draws(
        gen.seed, gen.split, gen.scheme.name, i, epoch, digit_pool_size=len(pool) if redraw else None,
        n_noises=len(gen.index.noises) if snr_db is not None else 0, snr_db=snr_db, n_samples=n_samples,
        clip_length=2052, time_masks=time_masks)
    for d in draws:  # positions to paths, as describe() names them
        if d["step"] == "recording":
            d["recording"] = pool[d.pop("position")]
        elif d["step"] == "noise_clip":
            d["noise"] = gen.index.noises[d.pop("position")]
    return draws


@pytest.mark.parametrize("split, seed", [("train", 0), ("test", 3)])
def test_per_epoch_draws_are_the_documented_draws(epoch_tree, split, seed):
    """burst_noise with every option: recording, noise clip, SNR, window, four masks, each from the documented
    stream in the documented order and range."""
    gen = _generator(epoch_tree, split, "burst_noise", draws="per_epoch", redraw_recording=True, snr_range_db=2.0,
                     seed=seed)
    for i in range(0, len(gen), 3):
        for epoch in (0, 1, 7, 2**40):
            info = gen.describe(i, epoch=epoch)
            n = len(gen.waveform(i, epoch=epoch)[0])
            assert info["draws"] == _restated(gen, i, epoch, redraw=True, snr_db=(1.0, 5.0),
                                              time_masks=[(0.15, 4)], n_samples=n), (i, epoch)
            assert info["recording"] == info["draws"][0]["recording"] and info["noise"] == info["draws"][1]["noise"]


def test_per_epoch_draws_without_options_keep_the_notebooks_recording(epoch_tree):
    index = nb.build_index(str(epoch_tree / "recordings"), str(epoch_tree / "noise_recordings"))
    labels = np.load(epoch_tree / "avmnist" / "train_labels.npy")
    gen = _generator(epoch_tree, "train", "extreme_noise", draws="per_epoch", seed=11)
    for i, audio_file, _ in nb.generate_items(index, labels, True, nb.AugmentationType.EXTREME_NOISE, limit=20):
        for epoch in (0, 5):
            info = gen.describe(i, epoch=epoch)
            n = len(gen.waveform(i, epoch=epoch)[0])
            assert info["recording"] == audio_file
            assert info["draws"] == _restated(gen, i, epoch, redraw=False, snr_db=0, time_masks=[(0.1, 2)],
                                              n_samples=n), (i, epoch)


def test_the_window_is_drawn_over_its_whole_range(epoch_tree):
    """Items whose padded recording is 2,048 samples against clips of 2,052: starts 0..4, each drawn, the last too;
    and the mixed noise is that window of the clip."""
    from avmnist_torch.noise import resample_noise

    scheme = Scheme("window_only", (AddNoise(snr_db=3),))
    gen = _generator(epoch_tree, "train", scheme, draws="per_epoch")
    short = [i for i in range(len(gen)) if len(gen.waveform(i, epoch=0)[0]) == 2048]
    assert len(short) >= 5, "the tree must have items with short recordings"
    starts = Counter()
    for i in short[:8]:
        for epoch in range(12):
            info = gen.describe(i, epoch=epoch)
            (window,) = [d for d in info["draws"] if d["step"] == "noise_window"]
            assert window["clip_length"] == 2052 and window["length"] == 2048
            starts[window["start"]] += 1
            if epoch < 2:
                x = gen.waveform(i, epoch=epoch)[0]
                recording = np.pad(nb.librosa.load(info["recording"], sr=None)[0], (0, 2048))[:2048]
                clip = resample_noise(info["noise"], 8000)
                s = window["start"]
                assert x.tobytes() == add_noise(recording, clip[s:s + 2048], 3).tobytes()
    assert sorted(starts) == [0, 1, 2, 3, 4], starts


def test_an_epochs_batch_of_waveforms_is_its_items(epoch_tree):
    """waveforms(indices, epoch=e), the batched path: item by item the waveform(i, epoch=e) whose draws are
    checked against the docs above; another epoch, other waveforms."""
    gen = _generator(epoch_tree, "train", "burst_noise", draws="per_epoch", snr_range_db=1.0)
    batches = {}
    for epoch in (0, 5):
        batches[epoch], rates = gen.waveforms([3, 0, 3], epoch=epoch)
        want = [gen.waveform(i, epoch=epoch)[0] for i in (3, 0, 3)]
        assert rates == [8000] * 3 and [x.tobytes() for x in batches[epoch]] == [x.tobytes() for x in want], epoch
    assert batches[0][1].tobytes() != batches[5][1].tobytes()


def test_a_clip_as_long_as_the_item_is_taken_whole_without_a_draw(tmp_path):
    """Clips of exactly 2,048 samples against items padded to 2,048: no window start is drawn (docs/items.md),
    so the masks are the steps stream's first draws; one sample longer and the window draws first."""
    for clip_length in (2048, 2049):
        root = make_synthetic_tree(tmp_path / str(clip_length), n_train=40, n_test=4, noise_rate=8000,
                                   noise_seconds=clip_length / 8000)
        gen = _generator(root, "train", "burst_noise", draws="per_epoch")
        short = [i for i in range(len(gen)) if len(gen.waveform(i, epoch=0)[0]) == 2048]
        assert short, "the tree must have items with short recordings"
        for i in short[:4]:
            for epoch in (0, 1):
                info = gen.describe(i, epoch=epoch)
                window = [d for d in info["draws"] if d["step"] == "noise_window"]
                assert window[0]["clip_length"] == clip_length
                steps = nb.docs_epoch_stream(0, "train", "burst_noise", i, epoch, 1)
                if clip_length == 2048:
                    assert window == [{"step": "noise_window", "start": 0, "length": 2048, "clip_length": 2048}]
                else:
                    assert window[0]["start"] == steps.integers(0, 1)
                masks = [d["start"] for d in info["draws"] if d["step"] == "time_mask"]
                assert masks == [steps.integers(0, 2048 - 307) for _ in range(4)], (clip_length, i, epoch)


@pytest.mark.parametrize("split", ["train", "test"])
def test_the_noise_clip_is_uniform_over_the_pool(epoch_tree, split):
    """Chi-square over 1,200 draws (fixed seed): every clip of the split's pool, in equal shares."""
    from scipy.stats import chi2

    scheme = Scheme("pick_noise", (AddNoise(snr_db=3),))
    gen = _generator(epoch_tree, split, scheme, draws="per_epoch", seed=5)
    pool = gen.index.noises
    counts = Counter()
    n_draws = 0
    for epoch in range(1200 // len(gen) + 1):
        for i in range(len(gen)):
            counts[gen.describe(i, epoch=epoch)["noise"]] += 1
            n_draws += 1
    assert set(counts) == set(pool)
    observed = np.array([counts[p] for p in pool], dtype=np.float64)
    expected = n_draws / len(pool)
    statistic = float(((observed - expected) ** 2 / expected).sum())
    assert statistic < chi2.ppf(0.999, len(pool) - 1), (statistic, observed)


def test_the_redrawn_recording_is_uniform_over_the_digits_recordings(epoch_tree):
    from scipy.stats import chi2

    gen = _generator(epoch_tree, "test", "clean", draws="per_epoch", redraw_recording=True, seed=2)
    digit = int(np.bincount(gen.labels, minlength=10).argmax())
    items = np.flatnonzero(gen.labels == digit)
    pool = [p for p in gen.index.recordings if Path(p).name.startswith(f"{digit}_")]
    counts = Counter(gen.describe(int(i), epoch=e)["recording"] for i in items for e in range(900 // len(items) + 1))
    assert set(counts) == set(pool)
    observed = np.array([counts[p] for p in pool], dtype=np.float64)
    expected = observed.sum() / len(pool)
    assert float(((observed - expected) ** 2 / expected).sum()) < chi2.ppf(0.999, len(pool) - 1)
