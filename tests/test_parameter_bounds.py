"""Each step's parameters at the edges of what it accepts, and the whole message when it refuses one.

docs/items.md's table of accepted values, value by value at its bounds: what is just inside is
accepted (and kept as given), what is just outside is a ``ParameterError`` whose message names the
step, the parameter, the value and what would do.
"""

from __future__ import annotations

import numpy as np
import pytest

from avmnist_torch import ParameterError
from avmnist_torch.schemes import AddNoise, BandKeep, DownUpResample, Distortion, FrequencyMasks, Scheme, TimeMasks

INF, NAN = float("inf"), float("nan")

ACCEPTED = [
    (lambda: TimeMasks(ratio=0), ("ratio", 0)),
    (lambda: TimeMasks(ratio=1), ("ratio", 1)),
    (lambda: TimeMasks(ratio=0.5, count=0), ("count", 0)),
    (lambda: TimeMasks(ratio=np.float32(0.25), count=np.int64(7)), ("count", 7)),
    (lambda: FrequencyMasks(ratio=0.0), ("ratio", 0.0)),
    (lambda: FrequencyMasks(ratio=1.0, count=3), ("ratio", 1.0)),
    (lambda: AddNoise(snr_db=-120), ("snr_db", -120)),
    (lambda: AddNoise(snr_db=0), ("snr_db", 0)),
    (lambda: AddNoise(snr_db=(3, 3)), ("snr_db", (3.0, 3.0))),
    (lambda: AddNoise(snr_db=[-200, 200]), ("snr_db", (-200.0, 200.0))),
    (lambda: AddNoise(snr_db=200), ("snr_db", 200)),
    (lambda: TimeMasks(ratio=0.1, count=1000), ("count", 1000)),
    (lambda: Distortion(1e6), ("factor", 1e6)),
    (lambda: BandKeep(((0, 0),)), ("bands", ((0, 0),))),
    (lambda: BandKeep([[0, 4000]]), ("bands", ((0, 4000),))),
    (lambda: BandKeep(((1000, 1000), (2000, 3500))), ("bands", ((1000, 1000), (2000, 3500)))),
    (lambda: DownUpResample(1), ("factor", 1)),
    (lambda: DownUpResample(np.int64(4)), ("factor", 4)),
    (lambda: Distortion(1e-12), ("factor", 1e-12)),
    (lambda: Distortion(0.5), ("factor", 0.5)),
]


@pytest.mark.parametrize("make, kept", ACCEPTED, ids=[f"ok{k}" for k in range(len(ACCEPTED))])
def test_values_just_inside_are_accepted_and_kept(make, kept):
    name, value = kept
    assert getattr(make(), name) == value


RATIO_CLIP = "must be a fraction of the clip's length, 0 to 1"
RATIO_BINS = "must be a fraction of the 1,025 STFT bins, 0 to 1"
SNR = "must be a finite number of decibels from -200 to 200 (the notebook uses 0, 3 and 5), or a (low, high) pair of them"
SNR_RANGE = "a range of SNRs must be a (low, high) pair of finite numbers of decibels from -200 to 200, with low <= high"
COUNT = "must be a whole number from 0 to 1,000"
BAND = "must be a (low, high) pair of finite frequencies in Hz with 0 <= low <= high"
FACTOR = "must be a finite number above 0 and at most 1e+06 (the notebook uses 2.0)"
RESAMPLE = "must be a whole number, 1 or more (the low rate is the clip's rate // factor)"

REFUSED = [
    (lambda: TimeMasks(ratio=1.0000001), f"TimeMasks(ratio=1.0000001): ratio {RATIO_CLIP}"),
    (lambda: TimeMasks(ratio=-1e-9), f"TimeMasks(ratio=-1e-09): ratio {RATIO_CLIP}"),
    (lambda: TimeMasks(ratio=INF), f"TimeMasks(ratio=inf): ratio {RATIO_CLIP}"),
    (lambda: TimeMasks(ratio=True), f"TimeMasks(ratio=True): ratio {RATIO_CLIP}"),
    (lambda: TimeMasks(ratio=0.1, count=-1), f"TimeMasks(count=-1): count {COUNT}"),
    (lambda: TimeMasks(ratio=0.1, count=1.0), f"TimeMasks(count=1.0): count {COUNT}"),
    (lambda: TimeMasks(ratio=0.1, count=1001), f"TimeMasks(count=1001): count {COUNT}"),
    (lambda: FrequencyMasks(ratio=2), f"FrequencyMasks(ratio=2): ratio {RATIO_BINS}"),
    (lambda: FrequencyMasks(ratio=NAN), f"FrequencyMasks(ratio=nan): ratio {RATIO_BINS}"),
    (lambda: FrequencyMasks(ratio=-0.01), f"FrequencyMasks(ratio=-0.01): ratio {RATIO_BINS}"),
    (lambda: FrequencyMasks(ratio=0.2, count=False), f"FrequencyMasks(count=False): count {COUNT}"),
    (lambda: AddNoise(snr_db=NAN), f"AddNoise(snr_db=nan): snr_db {SNR}"),
    (lambda: AddNoise(snr_db=-INF), f"AddNoise(snr_db=-inf): snr_db {SNR}"),
    (lambda: AddNoise(snr_db="3"), f"AddNoise(snr_db='3'): snr_db {SNR}"),
    (lambda: AddNoise(snr_db=(1, 0.999)), f"AddNoise(snr_db=(1, 0.999)): {SNR_RANGE}"),
    (lambda: AddNoise(snr_db=(0, INF)), f"AddNoise(snr_db=(0, inf)): {SNR_RANGE}"),
    (lambda: AddNoise(snr_db=(NAN, 1)), f"AddNoise(snr_db=(nan, 1)): {SNR_RANGE}"),
    (lambda: AddNoise(snr_db=(True, 1)), f"AddNoise(snr_db=(True, 1)): {SNR_RANGE}"),
    (lambda: AddNoise(snr_db=[0]), f"AddNoise(snr_db=[0]): {SNR_RANGE}"),
    (lambda: AddNoise(snr_db=200.001), f"AddNoise(snr_db=200.001): snr_db {SNR}"),
    (lambda: AddNoise(snr_db=(-200.001, 0)), f"AddNoise(snr_db=(-200.001, 0)): {SNR_RANGE}"),
    (lambda: BandKeep(((50, INF),)), f"BandKeep(bands=((50, inf),)): band (50, inf) {BAND}"),
    (lambda: BandKeep(((NAN, 50),)), f"BandKeep(bands=((nan, 50),)): band (nan, 50) {BAND}"),
    (lambda: BandKeep((("50", 100),)), f"BandKeep(bands=(('50', 100),)): band ('50', 100) {BAND}"),
    (lambda: BandKeep(((-1e-9, 50),)), f"BandKeep(bands=((-1e-09, 50),)): band (-1e-09, 50) {BAND}"),
    (lambda: BandKeep(((50.5, 50),)), f"BandKeep(bands=((50.5, 50),)): band (50.5, 50) {BAND}"),
    (lambda: BandKeep(((50,),)), f"BandKeep(bands=((50,),)): band (50,) {BAND}"),
    (lambda: BandKeep([]), "BandKeep(bands=[]): bands must be a non-empty sequence of (low, high) pairs in Hz"),
    (lambda: BandKeep(None), "BandKeep(bands=None): bands must be a non-empty sequence of (low, high) pairs in Hz"),
    (lambda: BandKeep((50, 1000)), "BandKeep(bands=(50, 1000)): bands must be a non-empty sequence of (low, high) "
                                   "pairs in Hz"),
    (lambda: DownUpResample(0), f"DownUpResample(factor=0): factor {RESAMPLE}"),
    (lambda: DownUpResample(4.0), f"DownUpResample(factor=4.0): factor {RESAMPLE}"),
    (lambda: DownUpResample(True), f"DownUpResample(factor=True): factor {RESAMPLE}"),
    (lambda: Distortion(0), f"Distortion(factor=0): factor {FACTOR}"),
    (lambda: Distortion(-0.5), f"Distortion(factor=-0.5): factor {FACTOR}"),
    (lambda: Distortion(INF), f"Distortion(factor=inf): factor {FACTOR}"),
    (lambda: Distortion("2"), f"Distortion(factor='2'): factor {FACTOR}"),
    (lambda: Distortion(1.000001e6), f"Distortion(factor=1000001.0): factor {FACTOR}"),
    (lambda: Scheme("  ", ()), "Scheme(name='  '): name must be a non-empty string"),
]


@pytest.mark.parametrize("make, message", REFUSED, ids=[f"refused{k}" for k in range(len(REFUSED))])
def test_values_just_outside_are_refused_with_the_whole_message(make, message):
    with pytest.raises(ParameterError) as info:
        make()
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)  # the builtin it replaced


@pytest.mark.parametrize("epoch", [0, 1, 2**63 - 1, np.int64(5), np.uint64(7)])
def test_an_epoch_is_a_whole_number_up_to_2_63_minus_1(epoch):
    from avmnist_torch.generator import check_epoch

    assert check_epoch(epoch) == int(epoch) and type(check_epoch(epoch)) is int


@pytest.mark.parametrize("epoch", [-1, 2**63, True, "3", 1.5, None, np.float64(2.0)])
def test_other_epochs_are_refused(epoch):
    from avmnist_torch.generator import check_epoch

    with pytest.raises(ParameterError) as info:
        check_epoch(epoch)
    assert str(info.value) == f"epoch={epoch!r}: an epoch is a whole number, 0 to 2**63 - 1"


def test_snr_range_widens_values_and_ranges_and_keeps_the_rest():
    from avmnist_torch.schemes import SCHEMES, with_snr_range

    mine = Scheme("mine", (AddNoise(snr_db=(1, 2)), TimeMasks(0.1, 2), AddNoise(snr_db=-3)))
    assert with_snr_range(mine, 0.5) == Scheme("mine", (AddNoise(snr_db=(0.5, 2.5)), TimeMasks(0.1, 2),
                                                         AddNoise(snr_db=(-3.5, -2.5))))
    assert with_snr_range(SCHEMES["burst_noise"], 0).steps[0] == AddNoise(snr_db=(3.0, 3.0))
    assert with_snr_range(SCHEMES["multi_band"], 4.0) == SCHEMES["multi_band"]


@pytest.mark.parametrize("spread", [-0.1, INF, NAN, "1", True, None])
def test_a_bad_snr_range_is_refused(spread):
    from avmnist_torch.schemes import SCHEMES, with_snr_range

    with pytest.raises(ParameterError) as info:
        with_snr_range(SCHEMES["burst_noise"], spread)
    assert str(info.value) == f"snr_range_db={spread!r}: must be a finite number of decibels, 0 or more"
