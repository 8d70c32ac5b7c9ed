"""Every ```python block of README.md runs as written, with DataLoader workers spawned.

Each block runs alone, in a fresh Python process, in a folder where ``DATA`` (the data root the
examples use) is a synthetic tree with MNIST-shaped images. The process runs the block the way a
notebook or the interactive interpreter does (``python -c``: the code is not a file that worker
processes import again), after patching ``torch.utils.data.DataLoader`` so that every loader
starts its workers with ``spawn`` (the default on macOS and Windows, where a ``lambda`` cannot
reach a worker) and at most 2 of them (this machine's size). After the block, one batch is drawn
from every DataLoader it made, because a loader that cannot give a batch is broken for its user
even if building it succeeded. The synthetic MNIST files stand in for MNIST's: their md5s are set
as the published ones in that process, so the examples run as written.

A block whose first line starts with ``# not run:`` (followed by why) is illustrative and skipped;
there may be at most :data:`MAX_NOT_RUN` of them. Tracebacks name README.md and its line numbers.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
NOT_RUN = "# not run:"
MAX_NOT_RUN = 3
FENCE = re.compile(r"^(\s*)```+\s*([\w+-]*)")


def python_blocks(text: str):
    """``(line of the block's first code line, code)`` for each ```python fenced block (1-based lines)."""
    blocks, lines = [], text.splitlines()
    k = 0
    while k < len(lines):
        opened = FENCE.match(lines[k])
        if not opened:
            k += 1
            continue
        indent, language = opened.group(1), opened.group(2).lower()
        end = k + 1
        while end < len(lines) and not re.match(r"^\s*```", lines[end]):
            end += 1
        if language in ("python", "py", "python3"):
            body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[k + 1:end]]
            blocks.append((k + 2, "\n".join(body) + "\n"))
        k = end + 1
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8")) if README.is_file() else []

#: Run with ``python -c``; argv[1] is the block's file, argv[2] its first line in README.md.
DRIVER = r'''
import inspect, sys
import torch.utils.data

_made = []
_init = torch.utils.data.DataLoader.__init__
_signature = inspect.signature(_init)


def _spawned(self, *args, **kwargs):
    # As on macOS and Windows: workers are spawned, never forked; at most 2 on the test machine.
    bound = _signature.bind(self, *args, **kwargs)
    workers = bound.arguments.get("num_workers", 0) or 0
    if workers > 0:
        bound.arguments["num_workers"] = min(workers, 2)
        bound.arguments["multiprocessing_context"] = "spawn"
    _init(*bound.args, **bound.kwargs)
    _made.append(self)


torch.utils.data.DataLoader.__init__ = _spawned

# DATA's MNIST files stand in for MNIST's: their md5s stand in for the published ones (what
# the datasets check files under MNIST's names against), as the download tests do.
from avmnist_torch.sources import mnist_idx
import pathlib

for _split in ("train", "test"):
    for _table, _names in ((mnist_idx.MNIST_IMAGE_RAW_MD5, mnist_idx.MNIST_IMAGE_FILES),
                           (mnist_idx.MNIST_RAW_MD5, mnist_idx.MNIST_LABEL_FILES)):
        _file = pathlib.Path("DATA", "mnist", _names[_split] + ".gz")
        if _file.is_file():
            _table[_split] = mnist_idx.content_md5(_file)

path, first = sys.argv[1], int(sys.argv[2])
with open(path, encoding="utf-8") as handle:
    code = "\n" * (first - 1) + handle.read()  # so that tracebacks give README.md's line numbers
exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})
for loader in _made:
    next(iter(loader))
print(f"ran; {len(_made)} DataLoader(s), one batch drawn from each")
'''


@pytest.fixture(scope="module")
def data_tree(synthetic_tree, tmp_path_factory) -> Path:
    return synthetic_tree(tmp_path_factory.mktemp("readme") / "DATA", mnist_images=True)


def test_readme_has_examples_and_few_illustrative_ones():
    assert BLOCKS, f"no ```python block in {README}"
    skipped = [(line, code) for line, code in BLOCKS if code.lstrip().startswith(NOT_RUN)]
    for line, code in skipped:
        reason = code.lstrip().splitlines()[0][len(NOT_RUN):].strip()
        assert reason, f"README.md:{line}: '{NOT_RUN}' must say why the block is not run"
    assert len(skipped) <= MAX_NOT_RUN, (
        f"{len(skipped)} README blocks are marked '{NOT_RUN}' (lines {[line for line, _ in skipped]}); "
        f"at most {MAX_NOT_RUN}: examples are meant to run"
    )


@pytest.mark.slow  # each block in a fresh process, DataLoader workers spawned: 2 to 15 s a block
@pytest.mark.parametrize("line,code", BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_readme_block_runs(line, code, data_tree, tmp_path):
    if code.lstrip().startswith(NOT_RUN):
        pytest.skip(f"README.md:{line} is marked illustrative: {code.lstrip().splitlines()[0]}")
    (tmp_path / "DATA").symlink_to(data_tree, target_is_directory=True)
    block = tmp_path / "block.py"
    block.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", DRIVER, str(block), str(line)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (
        f"README.md:{line}: the example failed (exit {done.returncode})\n--- block ---\n{code}"
        f"--- stderr ---\n{done.stderr[-6000:]}"
    )
    assert "ran;" in done.stdout, done.stdout


@pytest.mark.slow  # a fresh interpreter with spawned workers
def test_the_parser_and_the_driver_catch_what_users_hit(tmp_path, data_tree):
    """Not vacuous: fenced blocks are found (indented ones too), and a lambda transform fails under spawn."""
    text = "intro\n```python\nx = 1\n```\n- item\n  ```python\n  y = 2\n  ```\n```bash\nls\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n"), (7, "y = 2\n")]
    (tmp_path / "DATA").symlink_to(data_tree, target_is_directory=True)
    block = tmp_path / "block.py"
    block.write_text(
        "import torch\nfrom avmnist_torch import AVMNISTAudioDataset\n"
        "ds = AVMNISTAudioDataset('DATA', split='test', scheme='distorted', transform=lambda x: x / 255)\n"
        "loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=8)\n"
    )
    done = subprocess.run([sys.executable, "-c", DRIVER, str(block), "40"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode != 0 and "lambda" in done.stderr, done.stderr[-3000:]
