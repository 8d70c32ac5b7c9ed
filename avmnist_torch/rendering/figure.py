"""The notebook's ``wav_to_spectrogram`` through the installed matplotlib, one figure per thread."""

from __future__ import annotations

import threading

import numpy as np

from .inputs import check_clip, check_sample_rate
from .settings import CMAP, IMAGE_SIZE, NFFT, NOVERLAP

#: rcParams that decide the pixels, pinned to matplotlib's defaults while drawing so that a user's
#: matplotlibrc cannot change the data.
_PINNED_RC_KEYS = (
    "figure.dpi", "figure.facecolor", "figure.edgecolor", "savefig.dpi",
    "image.interpolation", "image.interpolation_stage", "image.resample", "image.origin", "image.aspect",
    "image.lut", "image.composite_image",
    "axes.facecolor", "axes.xmargin", "axes.ymargin", "axes.autolimit_mode",
)


class UnverifiedMatplotlibWarning(UserWarning):
    """The installed matplotlib is not one whose pixels the package has verified (3.9, 3.10, 3.11)."""


def installed_matplotlib_version() -> str:
    """``major.minor`` of the installed matplotlib, e.g. ``"3.10"``."""
    import matplotlib
    major, minor = matplotlib.__version__.split(".")[:2]
    return f"{major}.{minor}"


class FigureRenderer:
    """Render with the installed matplotlib, pixel for pixel as the notebook (one reused figure per thread)."""

    name = "matplotlib"

    def __init__(self) -> None:
        import matplotlib  # noqa: F401  (fail here, with the import error, if absent)
        self.style = installed_matplotlib_version()
        self._local = threading.local()

    def _figure(self):
        state = getattr(self._local, "figure", None)
        if state is None:
            import matplotlib
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
            rc = {k: matplotlib.rcParamsDefault[k] for k in _PINNED_RC_KEYS if k in matplotlib.rcParamsDefault}
            with matplotlib.rc_context(rc):
                fig = Figure()
                FigureCanvasAgg(fig)
                # The notebook's exact arithmetic: 112 / dpi inches, so the canvas
                # is ``(112 / 100) * 100`` px, a float just above 112 (docs/rendering.md).
                fig.set_size_inches((IMAGE_SIZE / fig.get_dpi(), IMAGE_SIZE / fig.get_dpi()))
                ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
            state = (fig, ax, rc)
            self._local.figure = state
        return state

    def render(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """Return the (112, 112) uint8 red channel of the drawn spectrogram."""
        import matplotlib
        from matplotlib.ticker import NullLocator
        samples = check_clip(samples)
        sample_rate = check_sample_rate(sample_rate)
        fig, ax, rc = self._figure()
        with matplotlib.rc_context(rc), np.errstate(divide="ignore", invalid="ignore"):
            ax.cla()
            ax.set_axis_off()
            ax.specgram(samples, cmap=CMAP, NFFT=NFFT, Fs=sample_rate, noverlap=NOVERLAP)
            ax.xaxis.set_major_locator(NullLocator())
            ax.yaxis.set_major_locator(NullLocator())
            fig.canvas.draw()
            image = np.array(fig.canvas.renderer.buffer_rgba())[:, :, 0]
        return image

    def render_batch(self, clips, sample_rate: int, *, out=None) -> np.ndarray:
        """Render many clips one by one; ``out`` as :meth:`FastRenderer.render_batch`."""
        sample_rate = check_sample_rate(sample_rate)
        clips = [check_clip(c, i) for i, c in enumerate(clips)]
        if out is None:
            out = np.empty((len(clips), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
        for i, clip in enumerate(clips):
            out[i] = self.render(clip, sample_rate)
        return out
