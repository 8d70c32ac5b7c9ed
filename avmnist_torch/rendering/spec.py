"""The notebook's spectrogram settings, shared by both renderers."""

IMAGE_SIZE = 112
NFFT = 256
NOVERLAP = 128
CMAP = "gray_r"
DPI = 100

#: Pixel styles the fast renderer reproduces: the matplotlib ``major.minor``
#: whose figure route it matches bit for bit. The notebook ran 3.10.3.
STYLES = ("3.9", "3.10", "3.11")
DEFAULT_STYLE = "3.10"
