"""The notebook's spectrogram settings, shared by every renderer (see docs/rendering.md)."""

IMAGE_SIZE = 112  # the figure is 112 / dpi inches square, so the canvas is 112 px
DPI = 100
NFFT = 256
NOVERLAP = 128
HOP = NFFT - NOVERLAP
N_ROWS = NFFT // 2 + 1  # one-sided spectrum: 129 frequency bins, the image's rows
CMAP = "gray_r"

#: Pixel styles the fast renderer reproduces: the matplotlib ``major.minor``
#: whose figure route it matches bit for bit. The notebook ran 3.10.3.
STYLES = ("3.9", "3.10", "3.11")
DEFAULT_STYLE = "3.10"


def frame_count(n_samples: int) -> int:
    """Frames mlab cuts from ``n_samples`` (zero-padded to NFFT when shorter): one image column each."""
    return (max(n_samples, NFFT) - NFFT) // HOP + 1
