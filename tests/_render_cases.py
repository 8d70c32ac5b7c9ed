"""Deterministic render test inputs: synthetic clips and a recipe over ../shared/data.

Shared by the render tests and ``scripts/make_render_goldens.py``; it imports
only numpy (and soundfile/librosa for the real-data recipe), so it also runs in
the throwaway matplotlib environments that make the goldens.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SR = 8000
MIN_LEN = 2048


def synthetic_clips(seed: int = 20240611, n_random: int = 40):
    """Named synthetic clips from a seeded Generator: edge cases and random ones."""
    rng = np.random.default_rng(seed)
    clips = {
        "silence": np.zeros(4000, np.float32),
        "dc": np.ones(4000, np.float32),
        "impulse": np.eye(1, 4000, 1234, dtype=np.float32)[0],
        "tiny": (rng.standard_normal(3000) * 1e-30).astype(np.float32),
        "huge": (rng.standard_normal(3000) * 1e4).astype(np.float32),
        "short256": rng.standard_normal(256).astype(np.float32),
        "short300": rng.standard_normal(300).astype(np.float32),
    }
    for i in range(n_random):
        n = int(rng.integers(MIN_LEN, 20000))
        x = (rng.standard_normal(n) * rng.uniform(1e-3, 3.0)).astype(np.float32)
        if i % 3 == 0:  # exact-zero spans, as time masks make
            for _ in range(int(rng.integers(1, 4))):
                m = int(n * 0.15)
                s = int(rng.integers(0, n - m + 1))
                x[s : s + m] = 0
        clips[f"random{i:02d}"] = x
    return clips


def _pad(x):
    return np.pad(x, (0, max(0, MIN_LEN - len(x))))


def _mix(x, noise, snr_db):
    noise = noise[: len(x)]
    if len(noise) < len(x):
        noise = np.resize(noise, len(x))
    rms_s = np.sqrt(np.mean(x**2))
    rms_n = np.sqrt(np.mean(noise**2))
    if rms_n != 0:
        x = x + noise * (rms_s / 10 ** (snr_db / 20)) / rms_n
    return x.astype(np.float32)


def real_clips(data_root: Path, n: int, seed: int = 7):
    """``n`` clips from FSDD + ESC-50 by a fixed recipe (file order sorted).

    Covers clean, noisy (0-20 dB), time-masked, noisy and masked, and the
    shortest and longest recordings. Raises FileNotFoundError when absent.
    """
    import librosa
    import soundfile as sf

    rec_dir = Path(data_root) / "fsdd" / "recordings"
    noise_dir = Path(data_root) / "esc50" / "audio"
    recs = sorted(rec_dir.glob("*.wav"))
    noises = sorted(noise_dir.glob("*.wav"))
    if not recs or not noises:
        raise FileNotFoundError(f"no wavs under {rec_dir} or {noise_dir}")
    rng = np.random.default_rng(seed)
    sizes = {p: sf.info(str(p)).frames for p in recs}
    by_len = sorted(recs, key=lambda p: (sizes[p], p.name))
    picks = [by_len[0], by_len[1], by_len[-1], by_len[-2]]
    picks += [recs[int(i)] for i in rng.integers(0, len(recs), n - len(picks))]
    noise_cache = {}

    def noise(i):
        p = noises[i % min(len(noises), 12)]
        if p not in noise_cache:
            y, sr = sf.read(str(p), dtype="float32")
            if y.ndim > 1:
                y = y.mean(axis=1)
            noise_cache[p] = librosa.resample(y, orig_sr=sr, target_sr=SR)
        return noise_cache[p]

    out = []
    for i, p in enumerate(picks):
        x, sr = sf.read(str(p), dtype="float32")
        x = _pad(x)
        kind = i % 4
        if kind in (1, 3):
            x = _mix(x, noise(i), float(rng.uniform(0, 20)))
        if kind in (2, 3):
            x = x.copy()
            for _ in range(int(rng.integers(1, 5))):
                m = int(len(x) * 0.15)
                s = int(rng.integers(0, len(x) - m + 1))
                x[s : s + m] = 0
        out.append((f"{p.stem}:{['clean', 'noisy', 'masked', 'noisy+masked'][kind]}", x))
    return out
