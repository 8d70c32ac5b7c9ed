"""Numeric options that would overflow while rendering are refused where they are given (issue 24).

``snr_range_db=1e6`` used to pass construction and raise OverflowError in ``10 ** (snr / 20)`` at
render; an SNR of -1e6 dB, a distortion factor past float32's range or a mask count in the
billions gave NaN waveforms or stalled every item. Each is a ParameterError naming the option.
"""

from __future__ import annotations

import numpy as np
import pytest

from avmnist_torch.common import ParameterError
from avmnist_torch.generator import AudioItemGenerator
from avmnist_torch.schemes import (
    MAX_DISTORTION,
    MAX_MASKS,
    SCHEMES,
    SNR_LIMIT_DB,
    AddNoise,
    Distortion,
    FrequencyMasks,
    ItemRandom,
    Scheme,
    TimeMasks,
    add_noise,
    apply_scheme,
    with_snr_range,
)


@pytest.mark.parametrize("snr_db", [1e6, -1e6, 200.5, -201, (0, 1e6), (-1e6, 0), (-300, 300)])
def test_snrs_beyond_200_db_are_refused(snr_db):
    with pytest.raises(ParameterError, match=r"AddNoise\(snr_db=.*-200 to 200"):
        AddNoise(snr_db=snr_db)


def test_snrs_at_the_limits_are_accepted_and_mix_finitely():
    assert SNR_LIMIT_DB == 200
    rng = np.random.default_rng(0)
    speech = (0.3 * rng.standard_normal(4000)).astype(np.float32)
    noise = (0.1 * rng.standard_normal(8000)).astype(np.float32)
    for snr_db in (-SNR_LIMIT_DB, SNR_LIMIT_DB, (-SNR_LIMIT_DB, SNR_LIMIT_DB)):
        step = AddNoise(snr_db=snr_db)
        out, draws = apply_scheme(speech, 8000, Scheme("edge", (step,)), rng=ItemRandom(1, 2), noise=lambda: noise)
        assert out.dtype == np.float32 and np.isfinite(out).all()
    assert np.isfinite(add_noise(speech, noise, -SNR_LIMIT_DB)).all()


def test_snr_range_db_is_checked_against_the_schemes_snrs():
    with pytest.raises(ParameterError, match=r"snr_range_db=1000000.0: scheme 'burst_noise' would draw SNRs from "
                                             r"-999997 to 1e\+06 dB.*use at most 197"):
        with_snr_range(SCHEMES["burst_noise"], 1e6)
    with pytest.raises(ParameterError, match="snr_range_db=198"):
        with_snr_range(SCHEMES["burst_noise"], 198)
    assert with_snr_range(SCHEMES["burst_noise"], 197).steps[0].snr_db == (-194.0, 200.0)
    assert with_snr_range(SCHEMES["multi_band"], 1e6) == SCHEMES["multi_band"]  # no SNR to widen
    for bad in (float("nan"), float("inf"), -1):
        with pytest.raises(ParameterError, match="snr_range_db"):
            with_snr_range(SCHEMES["burst_noise"], bad)


def test_the_dataset_refuses_an_absurd_snr_range_when_made(tmp_path):
    # checked before any source is looked for: this root does not even exist
    with pytest.raises(ParameterError, match="snr_range_db=1000000.0"):
        AudioItemGenerator(tmp_path / "nowhere", "train", "burst_noise", draws="per_epoch", snr_range_db=1e6)


def test_mask_counts_and_distortion_factors_are_bounded():
    assert MAX_MASKS == 1000 and MAX_DISTORTION == 1e6
    for make in (TimeMasks, FrequencyMasks):
        with pytest.raises(ParameterError, match=r"count=1000000000\): count must be a whole number from 0 to 1,000"):
            make(ratio=0.1, count=10**9)
        assert make(ratio=0.001, count=MAX_MASKS).count == MAX_MASKS
    for factor in (1e39, 1e300):
        with pytest.raises(ParameterError, match=r"Distortion\(factor=.*at most 1e\+06"):
            Distortion(factor)
    clip = np.zeros(3000, np.float32)
    clip[100] = 0.5
    out, _ = apply_scheme(clip, 8000, Scheme("hard", (Distortion(MAX_DISTORTION),)), rng=ItemRandom(3))
    assert np.isfinite(out).all()  # the silent samples stay 0, not 0 * inf = NaN
