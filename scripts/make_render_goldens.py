"""Make the golden images that test the fast renderer's 3.9, 3.10 and 3.11 styles.

For each matplotlib version (3.9.4, 3.10.9, 3.11.2) this makes a throwaway
virtual environment in a temporary directory (``python -m venv`` and
``pip install matplotlib==X numpy``), runs the notebook's ``wav_to_spectrogram``
there, literally, on

* synthetic clips from ``tests/_render_cases.synthetic_clips`` (a seeded numpy
  Generator, so the test needs no data), and
* real clips from ``tests/_render_cases.real_clips`` over ``../shared/data``
  (FSDD + ESC-50 by a fixed recipe; only the images are stored, the test
  rebuilds the inputs and skips when the data are absent),

and writes ``tests/data/render_goldens/goldens_<major.minor>.npz`` (uint8
images, keyed by clip name, compressed).

Remake them with::

    python scripts/make_render_goldens.py            # all three versions
    python scripts/make_render_goldens.py 3.11.2     # one version

It needs network access to PyPI (or a wheel index pip is configured for) and
soundfile + librosa in the running interpreter for the real-data inputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from _render_cases import SR, real_clips, synthetic_clips  # noqa: E402

VERSIONS = ("3.9.4", "3.10.9", "3.11.2")
OUT_DIR = ROOT / "tests" / "data" / "render_goldens"
DATA = ROOT.parent / "shared" / "data"
N_REAL = 60

_RUNNER = r'''
import sys, numpy as np, matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

def wav_to_spectrogram(samples, sample_rate, spectrogram_dimensions=(112, 112), NFFT=256, noverlap=128, cmap='gray_r'):
    fig = plt.figure()
    fig.set_size_inches((spectrogram_dimensions[0]/fig.get_dpi(), spectrogram_dimensions[1]/fig.get_dpi()))
    ax = plt.Axes(fig, [0., 0., 1., 1.])
    ax.set_axis_off()
    fig.add_axes(ax)
    ax.specgram(samples, cmap=cmap, NFFT=NFFT, Fs=sample_rate, noverlap=noverlap)
    ax.xaxis.set_major_locator(plt.NullLocator())
    ax.yaxis.set_major_locator(plt.NullLocator())
    fig.canvas.draw()
    spectrogram_array = np.array(fig.canvas.renderer.buffer_rgba())[:, :, 0]
    plt.close(fig)
    return spectrogram_array

inp = np.load(sys.argv[1])
out = {k: wav_to_spectrogram(inp[k], int(sys.argv[3])) for k in inp.files}
np.savez_compressed(sys.argv[2], __version__=np.array(matplotlib.__version__), **out)
'''


def _inputs():
    clips = {f"syn:{k}": v for k, v in synthetic_clips().items()}
    try:
        for name, x in real_clips(DATA, N_REAL):
            clips[f"real:{name}"] = x
    except FileNotFoundError as exc:
        print(f"real data not found at {DATA} ({exc}): goldens for synthetic clips only", file=sys.stderr)
    return clips


def make(version: str, tmp: Path, inputs_path: Path) -> Path:
    env = tmp / f"mpl{version}"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    py = env / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", f"matplotlib=={version}", "numpy"], check=True)
    runner = tmp / "runner.py"
    runner.write_text(_RUNNER)
    major_minor = ".".join(version.split(".")[:2])
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"goldens_{major_minor}.npz"
    subprocess.run([str(py), str(runner), str(inputs_path), str(out), str(SR)], check=True)
    return out


def main(argv=None) -> int:
    versions = list(argv or sys.argv[1:]) or list(VERSIONS)
    with tempfile.TemporaryDirectory(prefix="render_goldens_") as d:
        tmp = Path(d)
        inputs = _inputs()
        # Keys with ':' are fine in npz; order is kept.
        inputs_path = tmp / "inputs.npz"
        np.savez(inputs_path, **inputs)
        for v in versions:
            out = make(v, tmp, inputs_path)
            print(f"wrote {out} ({out.stat().st_size // 1024} KiB, {len(inputs)} images)")
    (OUT_DIR / "README.json").write_text(json.dumps(
        {"made_by": "scripts/make_render_goldens.py", "versions": list(VERSIONS), "n_real": N_REAL,
         "synthetic": "tests/_render_cases.synthetic_clips()", "real": "tests/_render_cases.real_clips(data, n_real)"},
        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
