"""Write the sha256 manifest of FSDD v1.0.10's 3,000 recordings.

The downloader checks every extracted recording against this manifest, so the check does not
depend on how the release archive was packed (GitHub regenerates archives; gzip headers and
member order can change while the recordings stay the same).

The manifest is a pooch registry (one ``<file name> <sha256>`` line per recording, written by
``pooch.make_registry``), so it can also be loaded with ``pooch.Pooch.load_registry``.

Usage::

    python scripts/make_fsdd_manifest.py RECORDINGS_DIR [OUTPUT]

RECORDINGS_DIR is FSDD v1.0.10's ``recordings`` folder (e.g. ``DATA/recordings`` after
``avmnist download``); OUTPUT defaults to ``avmnist_torch/data/fsdd_v1.0.10.sha256.txt``.
Only hashes are written; the recordings themselves are never copied into the project.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pooch

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = PROJECT / "avmnist_torch" / "data" / "fsdd_v1.0.10.sha256.txt"
EXPECTED = 3000


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src = Path(argv[0])
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    files = sorted(p.name for p in src.iterdir() if p.is_file()) if src.is_dir() else []
    others = [n for n in files if not n.endswith(".wav")]
    if len(files) - len(others) != EXPECTED or others:
        print(f"{src}: {len(files) - len(others)} .wav files and {len(others)} other files, "
              f"expected exactly {EXPECTED} .wav files (FSDD v1.0.10's recordings folder)",
              file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    pooch.make_registry(str(src), str(tmp), recursive=False)
    os.replace(tmp, out)  # a killed run leaves the old manifest, never half of a new one
    print(f"wrote {out} ({len(files)} recordings)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
