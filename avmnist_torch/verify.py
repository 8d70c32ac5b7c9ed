"""Checking an exported file: its records in full, then regenerated rows byte for byte.

Every item is a pure function of its index, so a regenerated row that differs means the file, the sources or
the code changed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
from tqdm.auto import tqdm

from .common import ParameterError, PathLike, StorageError
from .files import StoredFile
from .generator import AudioItemGenerator
from .item_options import first_items_identity, identity_differences
from .schemes import SCHEME_NAMES, Scheme
from .storage import open_recorded
from .workers import render_rows, row_tasks

__all__ = ["verify", "VerifyReport"]

_NOTEBOOK_NAME = re.compile(r"^(train|test)_data_augmented_([a-z_]+)\.npy$")


@dataclass
class VerifyReport:
    """What ``verify`` found: rows compared, ``(row, differing pixels)`` of those that differ, notes, and
    ``integrity``: None without a sidecar, else what the whole file against its size and sha256 found."""

    path: Path
    kind: str
    rows: int
    checked: List[int] = field(default_factory=list)
    mismatches: List[Tuple[int, int]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    integrity: Optional[List[str]] = None

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.integrity

    def summary(self) -> str:
        lines = [f"{self.path}: {self.kind} file, {self.rows} rows; regenerated {len(self.checked)}"]
        lines += [f"note: {n}" for n in self.notes]
        if self.integrity:
            lines += [f"DAMAGED: {problem}" for problem in self.integrity]
        elif self.integrity is not None:
            lines.append(f"all {self.rows} rows match the size and sha256 recorded when it was written")
        if not self.mismatches:
            lines.append("all regenerated rows match")
        else:
            shown = ", ".join(f"row {r} ({px} px)" for r, px in self.mismatches[:20])
            more = f" and {len(self.mismatches) - 20} more" if len(self.mismatches) > 20 else ""
            lines.append(f"MISMATCH in {len(self.mismatches)} of {len(self.checked)} rows: {shown}{more}")
        return "\n".join(lines)


def _check_rows(rows: Iterable[Any], n: int, where: str) -> List[int]:
    """``rows`` as sorted distinct ints in ``0 .. n-1``, else a :class:`ParameterError` naming ``where``."""
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Iterable):
        raise ParameterError(f"{where}: rows must be a list of row numbers, got {rows!r}")
    picked = {in_range(r, n, where, "row", f"{where}: has {n} rows") for r in rows}
    if not picked:
        raise ParameterError(f"{where}: no rows given to check; give row numbers from 0 to {n - 1}")
    return sorted(picked)


def in_range(value: Any, n: int, where: str, what: str, has: str) -> int:
    """``value`` as a whole number in ``0 .. n-1``, else a :class:`ParameterError` naming ``where`` (or saying
    ``has``, "... has N items", when out of range): negative ones too, since a typo must not mean another item."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"{where}: {what} must be a whole number from 0 to {n - 1}, got {value!r}")
    if not 0 <= value < n:
        raise ParameterError(f"{has} (0 to {n - 1}); {what} {value} is out of range")
    return int(value)


def verify(
    path: PathLike,
    root: Optional[PathLike] = None,
    *,
    sample: Optional[int] = 64,
    rows: Optional[Sequence[int]] = None,
    split: Optional[str] = None,
    scheme: Union[None, str, Scheme] = None,
    seed: Optional[int] = None,
    renderer: Optional[str] = None,
    style: Optional[str] = None,
    workers: int = 1,
    progress: bool = False,
    **dataset_kwargs: Any,
) -> VerifyReport:
    """Check a file in full against its records, then regenerate rows and compare them byte for byte.

    Parameters
    ----------
    path : path
        A finished export (its sidecar gives split, scheme, seed and style) or a notebook file (split and
        scheme from its name, seed 0; only rows of schemes without random draws can match it).
    root : path, optional
        The data root. Default: the sidecar's, else the notebook layout's (``root/avmnist/audio/FILE``).
    sample : int or None
        How many rows to regenerate (at least 1), spread at random (seeded) over the file, first and last
        always included; None: every row. The sha256 check reads the whole file whatever ``sample`` says.
    rows : list of int, optional
        Exactly these rows instead.
    split, scheme, seed, renderer, style
        Override what the sidecar or the name says.
    workers : int
        Processes regenerating rows (at least 1).
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    VerifyReport
        ``ok`` when the file is as recorded and every regenerated row equals the stored one.

    Raises
    ------
    ParameterError
        A row outside the file, a sample or worker count below 1, or options neither file nor call gives.
    StorageError
        The file is unreadable, or its row count is not the split's.
    """
    path = Path(path)
    if workers < 1:
        raise ParameterError(f"workers must be at least 1, got {workers}")
    if rows is None and sample is not None and sample < 1:
        raise ParameterError(f"sample must be at least 1 (or None for every row), got {sample}")
    reader, kind, meta, other = open_recorded(path)
    identity = (meta or {}).get("identity") or {}
    n = len(reader)
    # Rows are checked before the sources are read: a wrong row number is the cheapest error to report.
    checked = _check_rows(rows, n, str(path)) if rows is not None else None
    report = VerifyReport(path=path, kind=kind, rows=n)
    if other is not None:
        report.notes.append(f"its sidecar is not one of this version's (format {other.get('format')!r}): "
                            "it is ignored")
    name_match = _NOTEBOOK_NAME.match(path.name)
    if kind == "npy" and name_match:
        report.notes.append(header_note(path, reader.offset, meta))
    if meta is not None:
        try:
            StoredFile.open(path, sha256=meta.get("sha256"), size=meta.get("size"), remedy="export it again")
            report.integrity = []
        except StorageError as err:
            report.integrity = [str(err)]
        split = split or identity.get("split")
        scheme = scheme or identity.get("scheme")
        seed = identity.get("seed", 0) if seed is None else seed
        style = style or identity.get("style")
        renderer = renderer or ("fast" if style else meta.get("renderer", "fast"))
    else:
        report.notes.append("no sidecar metadata: options come from the file name and the arguments")
        if name_match:
            split = split or name_match.group(1)
            scheme = scheme or name_match.group(2)
        if kind == "raw":
            report.notes.append("a raw notebook file: its random draws came from the notebook's global stream, "
                                "so rows of schemes that draw masks are not expected to match")
    if split is None or scheme is None:
        raise ParameterError(f"{path}: cannot tell its split and scheme (no sidecar, no notebook name); "
                             "give --split and --scheme")
    if root is None and "recordings" not in dataset_kwargs:
        made_from = (meta or {}).get("made_from") or {}
        if made_from.get("root") or made_from.get("recordings"):
            root = made_from.get("root")
            dataset_kwargs = {**{k: made_from[k] for k in ("recordings", "noises", "labels") if made_from.get(k)},
                              **dataset_kwargs}
        elif path.parent.name == "audio" and path.parent.parent.name == "avmnist":
            root = path.parent.parent.parent
        if root is None and "recordings" not in dataset_kwargs:
            raise ParameterError(f"{path}: give --root (the data root the file was made from)")
    if isinstance(scheme, str) and meta is not None and scheme not in SCHEME_NAMES:
        raise ParameterError(f"{path}: made with the custom scheme {scheme!r}; "
                             "call verify(..., scheme=<that Scheme>)")
    draws = identity.get("draws")
    if isinstance(draws, dict) and draws.get("mode") == "per_epoch":  # regenerate the epoch with what drew it
        drawn = {k: draws.get(k) for k in ("epoch", "redraw_recording", "snr_range_db")}
        dataset_kwargs = {"draws": "per_epoch", **drawn, **dataset_kwargs}
    dataset = AudioItemGenerator(root, split, scheme, seed=seed or 0, renderer=renderer or "fast", style=style,
                                 **dataset_kwargs)
    # A partial export (export --limit) holds the split's first rows: row i is still item i.
    items = identity.get("items")
    partial = isinstance(items, dict) and items.get("start") == 0 and items.get("stop") == n <= len(dataset)
    if len(dataset) != n and not partial:
        raise StorageError(f"{path}: has {n} rows but the {split} split has {len(dataset)} labels")
    if partial:
        report.notes.append(f"a partial export: the first {n} of the split's {len(dataset)} items")
    if meta is not None:
        expected = first_items_identity(dataset.metadata(), n) if partial else dataset.metadata()
        for key, found, now in identity_differences(identity, expected):
            if key == "sources":
                report.notes.append("the sources under this root differ from those the file was made from")
            else:
                report.notes.append(f"{key}: file says {found!r}, regenerating with {now!r}")
    if checked is None and (sample is None or sample >= n):
        checked = list(range(n))
    elif checked is None:
        pick = np.random.default_rng(0).choice(np.arange(1, n - 1), size=max(0, sample - 2), replace=False)
        checked = sorted({0, n - 1, *pick.tolist()})
    report.checked = checked
    with tqdm(total=len(checked), unit="item", desc=f"verify {path.name}", file=sys.stderr, disable=not progress) as bar:
        for k, regenerated in render_rows(dataset, row_tasks(checked, workers, 64), workers, f"verify of {path}"):
            for i, image in zip(checked[k:k + len(regenerated)], regenerated):
                differ = int(np.count_nonzero(reader.row(i) != image))
                if differ:
                    report.mismatches.append((i, differ))
            bar.update(len(regenerated))
    report.mismatches.sort()
    return report


def header_note(path: Path, offset: int, meta: Optional[dict]) -> str:
    """What a notebook-layout file with a .npy header (and ``meta``, its sidecar of this version or None)
    means for the notebook's readers, and how to fix it."""
    what = (f"a .npy header ({offset} bytes) under the notebook's name: the thesis' training code maps this file "
            f"at offset 0 (np.memmap), so every item it reads would be shifted by {offset} bytes; ")
    if meta is not None:
        root = (meta.get("made_from") or {}).get("root") or "ROOT"
        match = _NOTEBOOK_NAME.match(path.name)
        out = path.parent.parent.parent
        command = (f"avmnist export --root '{root}' --split {match.group(1)} --scheme {match.group(2)} "
                   f"--seed {meta['identity'].get('seed', 0)}" + (f" --out '{out}'" if str(out) != root else ""))
        return what + f"write it again as raw rows (seconds; it replaces the file): {command}"
    quoted = str(path).replace("'", "'\\''")
    return what + ("convert it to raw rows in place: python -c \"import numpy as np, sys; np.load(sys.argv[1])"
                   f".tofile(sys.argv[1] + '.raw')\" '{quoted}' && mv '{quoted}.raw' '{quoted}'")
