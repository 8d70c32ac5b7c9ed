"""Write the sha256 manifest of FSDD v1.0.10's 3,000 recordings.

The downloader checks every extracted recording against this manifest, so the check does not
depend on how the release archive was packed (GitHub regenerates archives; gzip headers and
member order can change while the recordings stay the same).

Usage::

    python scripts/make_fsdd_manifest.py [RECORDINGS_DIR] [OUTPUT_CSV]

Defaults: ``../shared/data/fsdd/recordings`` (relative to the project root) and
``avmnist_torch/data/fsdd_sha256.csv``. Only hashes are written; the recordings themselves are
never copied into the project.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_SRC = PROJECT / ".." / "shared" / "data" / "fsdd" / "recordings"
DEFAULT_OUT = PROJECT / "avmnist_torch" / "data" / "fsdd_sha256.csv"
EXPECTED = 3000


def main(argv: list[str]) -> int:
    src = Path(argv[0]) if argv else DEFAULT_SRC
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    files = sorted(p for p in src.glob("*.wav") if p.is_file())
    if len(files) != EXPECTED:
        print(f"{src}: {len(files)} .wav files, expected {EXPECTED} (FSDD v1.0.10)", file=sys.stderr)
        return 1
    lines = ["filename,sha256"]
    for p in files:
        lines.append(f"{p.name},{hashlib.sha256(p.read_bytes()).hexdigest()}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="ascii")
    print(f"wrote {out} ({len(files)} recordings)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
