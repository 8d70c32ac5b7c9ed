"""The pinned releases the downloader fetches, their URLs, and how a mirror rewrites them.

Each source is pinned so that two downloads a year apart give the same files: FSDD by its git tag,
ESC-50 by a commit (its default branch moves), MNIST by the files' md5 (on torchvision's mirrors).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ...common import ParameterError

FSDD_TAG = "v1.0.10"
FSDD_URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/{FSDD_TAG}.tar.gz"
FSDD_COUNT = 3000

# This commit's audio/*.wav (2,000 clips) and meta/esc50.csv are those of v2.0.0 (2017-12-13).
ESC50_COMMIT = "5983fb0c35e751b452e7c562d9207f27b76ddf0d"
ESC50_URL = f"https://github.com/karolpiczak/ESC-50/archive/{ESC50_COMMIT}.tar.gz"
ESC50_COUNT = 2000
ESC50_RATE = 44_100
ESC50_FRAMES = 5 * ESC50_RATE
ESC50_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")

#: The MNIST mirrors torchvision uses, tried in this order.
MNIST_BASE_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


def apply_mirror(url: str, mirror: str | None) -> str:
    """`url` with the scheme and host of `mirror` (``scheme://host[:port][/prefix]``; the prefix goes
    in front of the URL's path); None or empty returns `url` unchanged.

    Raises
    ------
    ParameterError
        (a ValueError) if `mirror` has no scheme or host.

    Examples
    --------
    >>> apply_mirror("https://github.com/a/b/archive/v1.tar.gz", "http://127.0.0.1:8000")
    'http://127.0.0.1:8000/a/b/archive/v1.tar.gz'
    """
    if not mirror:
        return url
    try:
        m = urlsplit(mirror)
    except ValueError:  # "http://[::1": urlsplit refuses it
        m = None
    if m is None or not m.scheme or not m.netloc:
        raise ParameterError(f"mirror {mirror!r} must look like scheme://host[:port][/prefix], "
                             "e.g. http://127.0.0.1:8000")
    u = urlsplit(url)
    return urlunsplit((m.scheme, m.netloc, m.path.rstrip("/") + u.path, u.query, ""))
