"""Rendering a waveform to the notebook's 112x112 grey spectrogram.

Two renderers stand behind one interface (see docs/rendering.md):

``"fast"``
    A re-implementation of matplotlib's drawing that reproduces a chosen
    matplotlib version's pixels exactly, without importing matplotlib.
    ``style`` picks the version: ``"3.10"`` (the notebook's, the default),
    ``"3.11"`` or ``"3.9"``.
``"matplotlib"``
    The figure route through the installed matplotlib, as the notebook drew.
    Its style is the installed version; it is the reference that ``"fast"`` is
    tested against. With a matplotlib other than 3.9, 3.10 or 3.11 it still
    draws, and warns once that its pixels have not been verified.

The modules, in the order a clip passes through them: :mod:`.inputs` (checks
at the door), :mod:`.psd` (PSD, dB, colour), :mod:`.transform` (matplotlib's
transform chain), :mod:`.taps` (Agg's filter taps per geometry),
:mod:`.resample` (Agg's resampling and the canvas, in numpy),
:mod:`.kernels` (the same steps fused in numba), :mod:`.fast` and
:mod:`.figure` (the two renderers).
"""

from __future__ import annotations

import threading
import warnings
from typing import Iterable, Optional, Protocol

import numpy as np

from ..common import ParameterError
from .fast import FastRenderer
from .figure import FigureRenderer, UnverifiedMatplotlibWarning
from .settings import DEFAULT_STYLE, IMAGE_SIZE, STYLES

RENDERERS = ("fast", "matplotlib")

__all__ = [
    "DEFAULT_STYLE",
    "IMAGE_SIZE",
    "RENDERERS",
    "STYLES",
    "Renderer",
    "UnverifiedMatplotlibWarning",
    "get_renderer",
    "render_spectrogram",
    "render_batch",
]


class Renderer(Protocol):
    name: str
    style: str

    def render(self, samples: np.ndarray, sample_rate: int) -> np.ndarray: ...

    def render_batch(
        self, clips: Iterable[np.ndarray], sample_rate: int, *, out: Optional[np.ndarray] = None
    ) -> np.ndarray: ...


_RENDERERS: dict = {}  # (name, style) -> renderer: one per process
_LOCK = threading.Lock()


def _make(name: str, style: Optional[str]) -> Renderer:
    if name == "fast":
        return FastRenderer(style or DEFAULT_STYLE)
    renderer = FigureRenderer()
    if style is not None and style != renderer.style:
        raise ParameterError(
            f"renderer='matplotlib' draws with the installed matplotlib {renderer.style}, "
            f"not style {style!r}; use renderer='fast', style={style!r} for those pixels "
            "without that matplotlib"
        )
    if renderer.style not in STYLES:
        warnings.warn(
            f"renderer='matplotlib' draws with the installed matplotlib {renderer.style}, whose pixels this "
            f"package has not verified (it checks {', '.join(STYLES)}); images may differ from the notebook's. "
            f"renderer='fast' gives the notebook's pixels (style {DEFAULT_STYLE!r}) with any matplotlib.",
            UnverifiedMatplotlibWarning,
            stacklevel=3,
        )
    return renderer


def get_renderer(name: str = "fast", style: Optional[str] = None) -> Renderer:
    """Return a renderer by name (one instance per process and arguments).

    Parameters
    ----------
    name : {"fast", "matplotlib"}
    style : {"3.9", "3.10", "3.11"}, optional
        For ``"fast"``, the matplotlib version whose pixels to reproduce
        (default ``"3.10"``, the notebook's). For ``"matplotlib"`` the style is
        the installed version; giving another one is an error, since the figure
        route cannot draw as a version that is not installed.

    Raises
    ------
    ParameterError
        For an unknown name or style.
    """
    if name not in RENDERERS:
        raise ParameterError(f"unknown renderer {name!r}: choose one of {', '.join(RENDERERS)}")
    if style is not None:
        style = str(style)
        if style not in STYLES:
            raise ParameterError(f"unknown style {style!r}: choose one of {', '.join(STYLES)} (matplotlib versions)")
    key = (name, style)
    renderer = _RENDERERS.get(key)
    if renderer is None:
        with _LOCK:
            renderer = _RENDERERS.get(key)
            if renderer is None:
                renderer = _RENDERERS[key] = _make(name, style)
    return renderer


def render_spectrogram(
    samples: np.ndarray, sample_rate: int, *, renderer: str = "fast", style: Optional[str] = None
) -> np.ndarray:
    """Render one clip to a (112, 112) uint8 image (dark = loud, row 0 = Nyquist).

    Raises :class:`~avmnist_torch.common.ParameterError` for a clip that is
    not a non-empty 1-D real array or a sample rate that is not a positive
    whole number.
    """
    return get_renderer(renderer, style).render(samples, sample_rate)


def render_batch(
    clips: Iterable[np.ndarray],
    sample_rate: int,
    *,
    renderer: str = "fast",
    style: Optional[str] = None,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Render many clips of one sample rate (lengths may differ) to an (N, 112, 112) uint8 array.

    The same bytes as :func:`render_spectrogram` on each clip; the fast
    renderer shares the FFT and the drawing kernel between clips. ``out``, a
    C-contiguous (N, 112, 112) uint8 array, is drawn into and returned.
    """
    return get_renderer(renderer, style).render_batch(clips, sample_rate, out=out)
