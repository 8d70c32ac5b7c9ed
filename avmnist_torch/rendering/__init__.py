"""Rendering a waveform to the notebook's 112x112 grey spectrogram: ``"fast"`` (a matplotlib version's pixels
without matplotlib) or ``"matplotlib"`` (the installed one, the reference); docs/rendering.md."""

from __future__ import annotations

import threading
import warnings
from typing import Iterable, Optional, Protocol

import numpy as np

from ..common import ParameterError
from .fast import FastRenderer
from .figure import FigureRenderer, UnverifiedMatplotlibWarning
from .inputs import check_style
from .settings import DEFAULT_STYLE, IMAGE_SIZE, STYLES

RENDERERS = ("fast", "matplotlib")

__all__ = ["DEFAULT_STYLE", "IMAGE_SIZE", "RENDERERS", "STYLES", "Renderer", "UnverifiedMatplotlibWarning",
           "get_renderer", "render_spectrogram", "render_batch"]


class Renderer(Protocol):
    """What :func:`get_renderer` returns: ``render`` one clip, ``render_batch`` many of one rate."""

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
        raise ParameterError(f"renderer='matplotlib' draws with the installed matplotlib {renderer.style}, "
                             f"not style {style!r}; use renderer='fast', style={style!r} for those pixels "
                             "without that matplotlib")
    if renderer.style not in STYLES:
        warnings.warn(
            f"renderer='matplotlib' draws with the installed matplotlib {renderer.style}, whose pixels this "
            f"package has not verified (it checks {', '.join(STYLES)}); images may differ from the notebook's. "
            f"renderer='fast' gives the notebook's pixels (style {DEFAULT_STYLE!r}) with any matplotlib.",
            UnverifiedMatplotlibWarning, stacklevel=3)
    return renderer


def get_renderer(name: str = "fast", style: Optional[str] = None) -> Renderer:
    """Return a renderer by name (one instance per process and arguments).

    Parameters
    ----------
    name : {"fast", "matplotlib"}
    style : {"3.9", "3.10", "3.11"}, optional
        For ``"fast"``, the matplotlib version whose pixels to reproduce (default ``"3.10"``, the
        notebook's); ``"matplotlib"`` draws as the installed version and takes no other.

    Raises
    ------
    ParameterError
        For an unknown name or style, or a style ``"matplotlib"`` cannot draw.
    """
    if name not in RENDERERS:
        raise ParameterError(f"unknown renderer {name!r}: choose one of {', '.join(RENDERERS)}")
    key = (name, None if style is None else check_style(style))
    renderer = _RENDERERS.get(key)
    if renderer is None:
        with _LOCK:
            renderer = _RENDERERS.get(key)
            if renderer is None:
                renderer = _RENDERERS[key] = _make(*key)
    return renderer


def render_spectrogram(samples: np.ndarray, sample_rate: int, *, renderer: str = "fast",
                       style: Optional[str] = None) -> np.ndarray:
    """Render one clip to a (112, 112) uint8 image (dark = loud, row 0 = Nyquist).

    Raises
    ------
    ParameterError
        For a clip that is not a non-empty 1-D real array, a sample rate that is not a positive whole
        number, or an unknown renderer or style.
    """
    return get_renderer(renderer, style).render(samples, sample_rate)


def render_batch(clips: Iterable[np.ndarray], sample_rate: int, *, renderer: str = "fast", style: Optional[str] = None,
                 out: Optional[np.ndarray] = None) -> np.ndarray:
    """Render many clips of one sample rate (lengths may differ) to an (N, 112, 112) uint8 array.

    The same bytes as :func:`render_spectrogram` on each clip (which raises the same errors). ``out``,
    a C-contiguous (N, 112, 112) uint8 array, is drawn into and returned.
    """
    return get_renderer(renderer, style).render_batch(clips, sample_rate, out=out)
