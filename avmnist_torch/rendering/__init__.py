"""Rendering a waveform to the notebook's 112x112 grey spectrogram.

Two renderers stand behind one interface:

``"fast"``
    A re-implementation of matplotlib's drawing in numpy that reproduces a
    chosen matplotlib version's pixels exactly, without importing matplotlib.
    ``style`` picks the version: ``"3.10"`` (the notebook's, the default),
    ``"3.11"`` or ``"3.9"``.
``"matplotlib"``
    The figure route through the installed matplotlib, as the notebook drew.
    Its style is the installed version; it is the reference that ``"fast"`` is
    tested against.
"""

from __future__ import annotations

from typing import Iterable, Optional, Protocol

import numpy as np

from .spec import DEFAULT_STYLE, IMAGE_SIZE, STYLES

RENDERERS = ("fast", "matplotlib")

__all__ = [
    "DEFAULT_STYLE",
    "IMAGE_SIZE",
    "RENDERERS",
    "STYLES",
    "Renderer",
    "get_renderer",
    "render_spectrogram",
    "render_batch",
]


class Renderer(Protocol):
    name: str
    style: str

    def render(self, samples: np.ndarray, sample_rate: int) -> np.ndarray: ...

    def render_batch(self, clips: Iterable[np.ndarray], sample_rate: int) -> np.ndarray: ...


_CACHE: dict = {}


def get_renderer(name: str = "fast", style: Optional[str] = None) -> Renderer:
    """Return a renderer by name.

    Parameters
    ----------
    name : {"fast", "matplotlib"}
    style : {"3.9", "3.10", "3.11"}, optional
        For ``"fast"``, the matplotlib version whose pixels to reproduce
        (default ``"3.10"``, the notebook's). For ``"matplotlib"`` the style is
        the installed version; giving another one is an error, since the figure
        route cannot draw as a version that is not installed.
    """
    if name not in RENDERERS:
        raise ValueError(f"unknown renderer {name!r}: choose one of {', '.join(RENDERERS)}")
    if style is not None:
        style = str(style)
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}: choose one of {', '.join(STYLES)} (matplotlib versions)")
    key = (name, style)
    renderer = _CACHE.get(key)
    if renderer is None:
        if name == "matplotlib":
            from .figure import FigureRenderer

            renderer = FigureRenderer()
            if style is not None and style != renderer.style:
                raise ValueError(
                    f"renderer='matplotlib' draws with the installed matplotlib {renderer.style}, "
                    f"not style {style!r}; use renderer='fast', style={style!r} for those pixels "
                    "without that matplotlib"
                )
        else:
            from .fast import FastRenderer

            renderer = FastRenderer(style or DEFAULT_STYLE)
        _CACHE[key] = renderer
    return renderer


def render_spectrogram(
    samples: np.ndarray, sample_rate: int, *, renderer: str = "fast", style: Optional[str] = None
) -> np.ndarray:
    """Render one clip to a (112, 112) uint8 image (dark = loud, row 0 = Nyquist)."""
    return get_renderer(renderer, style).render(samples, sample_rate)


def render_batch(
    clips: Iterable[np.ndarray], sample_rate: int, *, renderer: str = "fast", style: Optional[str] = None
) -> np.ndarray:
    """Render many clips of one sample rate to an (N, 112, 112) uint8 array."""
    return get_renderer(renderer, style).render_batch(clips, sample_rate)
