"""dsp.stft / istft / resample against the installed librosa: the same bytes."""

from __future__ import annotations

import numpy as np
import pytest

librosa = pytest.importorskip("librosa")

from avmnist_torch import dsp  # noqa: E402
from conftest import SHARED_DATA  # noqa: E402


def _signals():
    rng = np.random.default_rng(7)
    lengths = [2048, 2049, 2559, 2560, 2561, 3072, 3358, 5000, 9999, 18262]
    signals = [rng.standard_normal(n).astype(np.float32) for n in lengths]
    signals.append(np.zeros(2048, dtype=np.float32))
    spiky = np.zeros(4100, dtype=np.float32)
    spiky[::97] = 1.0
    signals.append(spiky)
    signals.append((1e-30 * rng.standard_normal(3000)).astype(np.float32))
    recordings = SHARED_DATA / "fsdd" / "recordings"
    if recordings.is_dir():
        for path in sorted(recordings.glob("*.wav"))[::60]:
            y, _ = librosa.load(path, sr=None)
            signals.append(np.pad(y, (0, max(0, 2048 - len(y)))))
    return signals


SIGNALS = _signals()


@pytest.mark.parametrize("k", range(len(SIGNALS)))
def test_stft_istft_resample_are_librosa_bit_for_bit(k):
    x = SIGNALS[k]
    expected = librosa.stft(x)
    got = dsp.stft(x)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(expected).tobytes()

    expected[40:400, :] = 0
    got[40:400, :] = 0
    expected_back, got_back = librosa.istft(expected), dsp.istft(got)
    assert got_back.dtype == expected_back.dtype and got_back.tobytes() == expected_back.tobytes()

    for lo in (2000, 4000):
        a = librosa.resample(librosa.resample(x, orig_sr=8000, target_sr=lo), orig_sr=lo, target_sr=8000)
        b = dsp.resample(dsp.resample(x, 8000, lo), lo, 8000)
        assert b.dtype == a.dtype and b.tobytes() == a.tobytes()


def test_numba_overlap_add_equals_the_numpy_route():
    rng = np.random.default_rng(11)
    for n in (2048, 2049, 2560, 3358, 7001, 18262):
        spectrum = dsp.stft(rng.standard_normal(n).astype(np.float32))
        spectrum[30:200] = 0
        frames = np.fft.irfft(spectrum.T, n=dsp.N_FFT, axis=-1)
        wss, nonzero = dsp._normaliser(spectrum.shape[1])
        expected = dsp._overlap_add_numpy(frames, dsp._window(), wss, nonzero)
        got = dsp._overlap_add(frames, dsp._window(), wss, nonzero)
        assert got.tobytes() == expected.tobytes(), n
