"""dsp.stft / istft / resample against the installed librosa: the same bytes."""

from __future__ import annotations

import numpy as np
import pytest

librosa = pytest.importorskip("librosa")

from avmnist_torch import dsp  # noqa: E402


def _signals():
    """Synthetic clips only, so that every test here asserts the same thing with or without ../shared/data
    (the real recordings have a test of their own, below)."""
    rng = np.random.default_rng(7)
    lengths = [2048, 2049, 2559, 2560, 2561, 3072, 3358, 4097, 5000, 7000, 9999, 12345, 16384, 18262]
    signals = [rng.standard_normal(n).astype(np.float32) for n in lengths]
    signals.append(np.zeros(2048, dtype=np.float32))
    spiky = np.zeros(4100, dtype=np.float32)
    spiky[::97] = 1.0
    signals.append(spiky)
    signals.append((1e-30 * rng.standard_normal(3000)).astype(np.float32))
    return signals


SIGNALS = _signals()


def _assert_librosa_bit_for_bit(x):
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


@pytest.mark.parametrize("k", range(len(SIGNALS)))
def test_stft_istft_resample_are_librosa_bit_for_bit(k):
    _assert_librosa_bit_for_bit(SIGNALS[k])


def test_real_recordings_are_librosa_bit_for_bit(real_data):
    """Every 60th FSDD recording, padded as the schemes pad it (needs ../shared/data)."""
    for path in sorted(real_data["recordings"].glob("*.wav"))[::60]:
        y, _ = librosa.load(path, sr=None)
        _assert_librosa_bit_for_bit(np.pad(y, (0, max(0, 2048 - len(y)))))


def test_overlap_add_kernel_is_librosas_istft():
    """The istft kernel alone against librosa, on spectra with a band zeroed and clips of awkward lengths."""
    rng = np.random.default_rng(11)
    for n in (2048, 2049, 2560, 3358, 7001, 18262):
        spectrum = librosa.stft(rng.standard_normal(n).astype(np.float32))
        spectrum[30:200] = 0
        frames = np.fft.irfft(spectrum.T, n=dsp.N_FFT, axis=-1)
        wss, nonzero = dsp._normaliser(spectrum.shape[1])
        got = dsp._overlap_add(frames, dsp._window(), wss, nonzero)
        expected = librosa.istft(spectrum)
        assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes(), n


def test_many_forms_equal_one_clip_at_a_time():
    """Stacked frames, chunk boundaries inside clips, clips of 1 to 36 frames: each clip keeps its bytes."""
    clips = SIGNALS + [np.zeros(0, np.float32), np.ones(511, np.float32), SIGNALS[0].astype(np.float64)]
    spectra, offsets = dsp.stft_many(clips)
    assert spectra.dtype == np.complex64 and offsets[-1] > 3 * dsp.STFT_CHUNK_FRAMES
    for k, x in enumerate(clips):
        one = dsp.stft(x)
        assert spectra[offsets[k] : offsets[k + 1]].T.tobytes() == np.ascontiguousarray(one).tobytes(), k
    spectra[:, 100:300] = 0
    back = dsp.istft_many(spectra, offsets)
    for k in range(len(clips)):
        one = dsp.istft(np.ascontiguousarray(spectra[offsets[k] : offsets[k + 1]].T))
        assert back[k].dtype == np.float32 and back[k].tobytes() == one.tobytes(), k


def test_window_kernel_is_librosas_framing():
    """librosa.stft's frames (zero-centred, every 512 samples) times its window, bit for bit, signed zeros too;
    rows outside the clip's are left alone."""
    rng = np.random.default_rng(3)
    window = dsp._window()
    assert window.tobytes() == librosa.filters.get_window("hann", dsp.N_FFT, fftbins=True).tobytes()
    for n in (0, 1, 511, 512, 2048, 3359, 9000):
        x = rng.standard_normal(n).astype(np.float32)
        x[: n // 3] = -0.0
        rows = dsp.frame_count(n)
        got = np.full((rows + 2, dsp.N_FFT), np.nan)
        dsp._window_frames(x, window, got, 1)
        padded = np.pad(x, dsp.N_FFT // 2, mode="constant")
        frames = librosa.util.frame(padded, frame_length=dsp.N_FFT, hop_length=dsp.HOP)
        expected = (window[:, None] * frames).T
        assert expected.shape == (rows, dsp.N_FFT), n
        assert got[1:-1].tobytes() == np.ascontiguousarray(expected).tobytes(), n
        assert np.isnan(got[0]).all() and np.isnan(got[-1]).all(), n


RATES = [(8000, 2000), (2000, 8000), (44100, 8000), (8000, 44100), (16000, 8000), (22050, 8000)]


@pytest.mark.parametrize("orig, target", RATES)
def test_soxr_channels_equal_one_channel_calls(orig, target):
    """The finding behind resample_many: a zero-padded channel of one soxr call has the bytes of its own call."""
    rng = np.random.default_rng(orig + target)
    lengths = sorted(set(rng.integers(300, 9000, 60).tolist()) | {2048, 2049, 2050, 4096})
    clips = [rng.standard_normal(n).astype(np.float32) for n in lengths]
    clips[5][:] = 0
    clips[7] *= 1e-25
    alone = [dsp.resample(x, orig, target) for x in clips]
    everything = range(len(clips))
    for group in (everything[:2], everything[10:26], everything[::7], everything):  # near and far lengths
        together = dsp._resample_group([clips[k] for k in group], orig, target)
        for k, y in zip(group, together):
            assert y.dtype == alone[k].dtype and y.tobytes() == alone[k].tobytes(), (lengths[k], len(group))
    assert dsp._channels_are_exact(orig, target, np.float32)
    many = dsp.resample_many(clips[::-1], orig, target)
    assert [y.tobytes() for y in many] == [y.tobytes() for y in alone[::-1]]


def test_resample_many_without_the_channel_route(monkeypatch):
    """Where the once-per-process check fails, every clip gets its own call: the same bytes."""
    rng = np.random.default_rng(1)
    clips = [rng.standard_normal(n).astype(np.float32) for n in (2048, 2100, 2200, 5000)]
    clips.append(rng.standard_normal(2100))  # float64 goes in its own group
    monkeypatch.setattr(dsp, "_EXACT_CHANNELS", {(8000.0, 2000.0, np.dtype(np.float32).str): False})
    calls = []
    monkeypatch.setattr(dsp, "_resample_group", lambda *a: calls.append(a) or pytest.fail("grouped"))
    out = dsp.resample_many(clips[:4], 8000, 2000)
    assert [y.tobytes() for y in out] == [dsp.resample(x, 8000, 2000).tobytes() for x in clips[:4]]
    assert dsp.resample_many(clips, 8000, 8000) == clips


def test_mixed_dtypes_keep_their_positions_and_bytes():
    """float32 and float64 clips interleaved: each dtype is resampled in its own calls, each result in its place."""
    rng = np.random.default_rng(5)
    clips = [rng.standard_normal(n).astype(np.float32 if k % 2 else np.float64)
             for k, n in enumerate((2048, 2100, 2200, 2300, 2400, 5000))]
    out = dsp.resample_many(clips, 8000, 2000)
    for x, y in zip(clips, out):
        want = dsp.resample(x, 8000, 2000)
        assert y.dtype == x.dtype and y.tobytes() == want.tobytes()


def test_the_channel_probe_runs_once_when_threads_ask_together(monkeypatch):
    """Eight threads asking about a new rate pair at once: one probe runs, every thread gets its answer."""
    import threading
    import time

    monkeypatch.setattr(dsp, "_EXACT_CHANNELS", {})
    runs = []

    def probe(orig_sr, target_sr, dtype):
        runs.append((orig_sr, target_sr))
        time.sleep(0.2)  # long enough for every thread to arrive while it runs
        return True

    monkeypatch.setattr(dsp, "_probe_channels", probe)
    start = threading.Barrier(8)
    answers = []

    def ask():
        start.wait()
        answers.append(dsp._channels_are_exact(8000, 3000, np.float32))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runs == [(8000, 3000)] and answers == [True] * 8


@pytest.mark.parametrize("n", [0, 1, 2, 3, 256, 1024, 2048, 4096])
def test_periodic_hann_is_scipys_window_bit_for_bit(n):
    """librosa takes its stft window from scipy; dsp restates it so that no worker imports scipy.signal."""
    from scipy.signal import get_window

    from avmnist_torch.dsp import periodic_hann

    want = get_window("hann", n, fftbins=True) if n else np.ones(0)
    got = periodic_hann(n)
    assert got.dtype == np.float64 and got.shape == want.shape
    assert got.tobytes() == np.asarray(want, dtype=np.float64).tobytes()
