"""Schemes as data, and the per-item random stream."""

from __future__ import annotations

import re

import numpy as np
import pytest

from avmnist_torch import ParameterError
from avmnist_torch.schemes import (
    SCHEMES,
    AddNoise,
    BandKeep,
    DownUpResample,
    Distortion,
    FrequencyMasks,
    ItemRandom,
    Scheme,
    TimeMasks,
    apply_scheme,
    apply_scheme_many,
    down_up_resample,
    get_scheme,
    item_rng,
)


def test_notebook_parameters_and_order():
    assert SCHEMES["extreme_noise"].steps == (AddNoise(0), TimeMasks(0.1, 2))
    assert SCHEMES["multi_band"].steps == (FrequencyMasks(0.2, 3), BandKeep(((50, 1000), (2000, 3500))))
    assert SCHEMES["burst_noise"].steps == (AddNoise(3), TimeMasks(0.15, 4))
    assert SCHEMES["aliased"].steps == (DownUpResample(4), FrequencyMasks(0.3, 1))
    assert SCHEMES["distorted"].steps == (AddNoise(5), Distortion(2.0))
    assert get_scheme("ALIASED") is SCHEMES["aliased"]
    assert [s.uses_noise for s in SCHEMES.values()] == [True, False, True, False, True, False]


def test_integers_are_uniform_and_inclusive():
    rng = ItemRandom(1, 2, 3)
    draws = np.array([rng.integers(0, 9) for _ in range(20000)])
    counts = np.bincount(draws, minlength=10)
    assert draws.min() == 0 and draws.max() == 9
    assert counts.min() > 1800 and counts.max() < 2200
    assert all(ItemRandom(5).integers(4, 4) == 4 for _ in range(3))
    with pytest.raises(ValueError, match="empty range"):
        ItemRandom(5).integers(3, 2)


def test_streams_depend_on_every_key_part_and_nothing_else():
    def first(*args):
        rng = item_rng(*args)
        return [rng.integers(0, 10**6) for _ in range(4)]

    base = first(0, "train", "burst_noise", 17)
    assert first(0, "train", "burst_noise", 17) == base
    assert first(1, "train", "burst_noise", 17) != base
    assert first(0, "test", "burst_noise", 17) != base
    assert first(0, "train", "extreme_noise", 17) != base
    assert first(0, "train", "burst_noise", 18) != base


def test_draws_are_pinned():
    """Published exports depend on these exact draws: a change to the stream must be deliberate."""
    rng = item_rng(0, "train", "burst_noise", 0)
    # Recorded when the stream was introduced (avmnist-torch 0.1.0).
    assert [rng.integers(0, 2898) for _ in range(4)] == [2425, 119, 746, 1139]


def test_rms_is_numpy_mean_bit_for_bit():
    from avmnist_torch.schemes import _rms

    rng = np.random.default_rng(0)
    for n in list(range(1, 130)) + [2048, 3358, 18262, 40000]:
        for scale in (1e-30, 1e-3, 1.0, 1e4):
            x = (rng.standard_normal(n) * scale).astype(np.float32)
            expected = np.sqrt(np.mean(x**2))
            got = _rms(x)
            assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes(), (n, scale)


def test_padding_is_numpy_pad():
    from avmnist_torch.schemes import pad_to_min_length

    rng = np.random.default_rng(2)
    for n in (1, 100, 1148, 2047, 2048, 3000):
        x = rng.standard_normal(n).astype(np.float32)
        expected = np.pad(x, (0, max(0, 2048 - n)), mode="constant")
        got = pad_to_min_length(x)
        assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()


# ----------------------------------------------------------------------------
# parameters are checked where they are given (each case failed later, or not at all, before)

BAD_STEPS = [
    (lambda: TimeMasks(ratio=1.5), r"TimeMasks\(ratio=1.5\): ratio"),
    (lambda: TimeMasks(ratio=-0.1, count=2), r"TimeMasks\(ratio=-0.1\): ratio"),
    (lambda: TimeMasks(ratio=float("nan")), r"TimeMasks\(ratio=nan\): ratio"),
    (lambda: TimeMasks(ratio="0.1"), r"TimeMasks\(ratio='0.1'\): ratio"),
    (lambda: TimeMasks(ratio=0.1, count=-1), r"TimeMasks\(count=-1\): count"),
    (lambda: TimeMasks(ratio=0.1, count=2.5), r"TimeMasks\(count=2.5\): count"),
    (lambda: TimeMasks(ratio=0.1, count=True), r"TimeMasks\(count=True\): count"),
    (lambda: FrequencyMasks(ratio=1.01), r"FrequencyMasks\(ratio=1.01\): ratio"),
    (lambda: FrequencyMasks(ratio=0.2, count=-3), r"FrequencyMasks\(count=-3\): count"),
    (lambda: AddNoise(snr_db=float("inf")), r"AddNoise\(snr_db=inf\): snr_db"),
    (lambda: AddNoise(snr_db=None), r"AddNoise\(snr_db=None\): snr_db"),
    (lambda: DownUpResample(0), r"DownUpResample\(factor=0\): factor"),
    (lambda: DownUpResample(-4), r"DownUpResample\(factor=-4\): factor"),
    (lambda: DownUpResample(2.5), r"DownUpResample\(factor=2.5\): factor"),
    (lambda: Distortion(0), r"Distortion\(factor=0\): factor"),
    (lambda: Distortion(float("nan")), r"Distortion\(factor=nan\): factor"),
    (lambda: BandKeep(()), r"BandKeep\(bands=\(\)\): bands"),
    (lambda: BandKeep(((1000, 50),)), r"band \(1000, 50\)"),
    (lambda: BandKeep(((-5, 50),)), r"band \(-5, 50\)"),
    (lambda: BandKeep(((50, 1000, 2000),)), r"band \(50, 1000, 2000\)"),
    (lambda: BandKeep(1000), r"BandKeep\(bands=1000\): bands"),
    (lambda: Scheme("", ()), r"Scheme\(name=''\)"),
    (lambda: Scheme("mine", (TimeMasks(0.1), 3)), r"Scheme\('mine'\): step 1 \(3\) is not a step"),
    (lambda: get_scheme("burst"), r"unknown scheme 'burst'"),
]


def _plain_id(message: str) -> str:
    """A node id that pytest finds again when given it on the command line (no backslashes or spaces)."""
    return re.sub(r"[^\w=.-]+", "_", message.replace("\\", "")).strip("_")


@pytest.mark.parametrize("make, message", BAD_STEPS, ids=[_plain_id(m) for _, m in BAD_STEPS])
def test_bad_parameters_fail_where_they_are_given(make, message):
    with pytest.raises(ParameterError, match=message):
        make()


def test_good_parameters_pass_and_lists_become_tuples():
    assert TimeMasks(ratio=0, count=0) == TimeMasks(0, 0)
    assert TimeMasks(ratio=1, count=np.int64(3)).count == 3
    assert FrequencyMasks(ratio=np.float32(0.25)).ratio == np.float32(0.25)
    assert AddNoise(snr_db=-10).snr_db == -10
    keep = BandKeep([[50, 1000], [2000, 3500]])
    assert keep == BandKeep(((50, 1000), (2000, 3500))) and hash(keep) == hash(BandKeep(((50, 1000), (2000, 3500))))
    assert Scheme("mine", [AddNoise(3)]).steps == (AddNoise(3),)
    assert DownUpResample(1).factor == 1


def test_a_factor_that_leaves_no_rate_says_so():
    x = np.ones(4000, np.float32)
    with pytest.raises(ParameterError, match=r"DownUpResample\(factor=9000\).*8000 Hz"):
        down_up_resample(x, 8000, 9000)
    ctx_rng = item_rng(0, "test", "x", 0)
    with pytest.raises(ParameterError, match="sample rate is 0, not a positive"):
        down_up_resample(x, 0, 4)
    with pytest.raises(ParameterError, match="factor of at most 8000"):
        apply_scheme_many([x], [8000], Scheme("x", (DownUpResample(9000),)), rngs=[ctx_rng])


# ----------------------------------------------------------------------------
# a scheme over a batch: each clip's waveform and draws as apply_scheme gives them


def _clips(n=40, seed=4):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(900, 9000, n).tolist() + [2048, 2048, 2560, 2561, 18262]
    clips = [(rng.standard_normal(k) * rng.uniform(1e-3, 1)).astype(np.float32) for k in lengths]
    clips.append(np.zeros(3000, np.float32))
    return clips


@pytest.mark.parametrize("name", list(SCHEMES))
def test_apply_scheme_many_is_apply_scheme(name):
    scheme = SCHEMES[name]
    clips = _clips()
    noise_rng = np.random.default_rng(9)
    noises = [noise_rng.standard_normal(20000).astype(np.float32) for _ in clips]
    rates = [8000] * len(clips)
    rates[3] = 16000  # a clip of another rate in the same batch
    many, draws = apply_scheme_many(
        clips, rates, scheme, rngs=[item_rng(0, "train", name, k) for k in range(len(clips))],
        noises=[(lambda n=n: n) for n in noises],
    )
    for k, clip in enumerate(clips):
        one, one_draws = apply_scheme(clip, rates[k], scheme, rng=item_rng(0, "train", name, k), noise=lambda: noises[k])
        assert many[k].dtype == one.dtype and many[k].tobytes() == one.tobytes(), (name, k)
        assert draws[k] == one_draws


def test_a_subclass_that_changes_the_step_runs_item_by_item():
    class Louder(FrequencyMasks):
        def __call__(self, samples, ctx):
            return super().__call__(samples, ctx) * 2

    scheme = Scheme("louder", (Louder(0.2, 1),))
    clips = _clips(6)[:6]
    many, _ = apply_scheme_many(clips, [8000] * 6, scheme, rngs=[item_rng(0, "train", "l", k) for k in range(6)])
    for k, clip in enumerate(clips):
        one, _ = apply_scheme(clip, 8000, scheme, rng=item_rng(0, "train", "l", k))
        assert many[k].tobytes() == one.tobytes()


@pytest.mark.parametrize("sample_rate", [8000, 16000, 44100])
def test_band_response_in_complex64_gives_the_notebooks_bits(sample_rate):
    # The notebook multiplies its complex64 spectrum by a float64 0/1 array (numpy computes
    # in complex128 and rounds back); keep_bands multiplies in complex64. Signed zeros,
    # subnormals and huge values included, every bit must agree.
    from avmnist_torch.schemes import _band_response

    n_freqs = 1025
    rng = np.random.default_rng(sample_rate)
    spectrum = (rng.standard_normal((n_freqs, 40)) * 10.0 ** rng.integers(-30, 30, (n_freqs, 40))
                + 1j * rng.standard_normal((n_freqs, 40))).astype(np.complex64)
    parts = spectrum.view(np.float32)
    parts[rng.random(parts.shape) < 0.2] = 0.0
    parts[rng.random(parts.shape) < 0.2] = -0.0
    parts[rng.random(parts.shape) < 0.05] = np.float32(1e-40)  # subnormal
    freq_bins = np.linspace(0, sample_rate / 2, n_freqs)  # the notebook's lines, literally
    freq_response = np.zeros(n_freqs)
    for band in [(50, 1000), (2000, 3500)]:
        band_mask = (freq_bins >= band[0]) & (freq_bins <= band[1])
        freq_response[band_mask] = 1
    expected = spectrum.copy()
    expected *= freq_response[:, np.newaxis]
    ours = spectrum.copy()
    ours *= _band_response(sample_rate, ((50, 1000), (2000, 3500)), n_freqs)[:, np.newaxis]
    assert ours.dtype == np.complex64
    np.testing.assert_array_equal(ours.view(np.uint32), expected.view(np.uint32))
