"""HTTP transfers that resume (``Range``) after a dropped connection or in a later run.

Not pooch's downloader: it restarts from byte 0, and requests/urllib3 drop the bytes of a partly received
chunk, where ``urllib`` hands over every byte. The caller holds the root's lock and checks what arrived.
"""

from __future__ import annotations

import http.client
import os
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tqdm.auto import tqdm

_USER_AGENT = "avmnist-torch (python urllib)"
_CHUNK = 1 << 20
# Seconds before the k-th retry is base * 2**k; tests set it to 0.
_RETRY_BASE_S = 1.0


class FetchFailed(Exception):
    """Every URL failed; the message says what happened, one indented line per URL."""


class _Transient(Exception):
    """A failure worth retrying (dropped connection, short body, 5xx)."""


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """Parse ``bytes START-END/TOTAL`` or ``bytes */TOTAL`` into (start, total)."""
    if not value or not value.startswith("bytes "):
        return None, None
    spec, _, total_s = value[6:].partition("/")
    total = int(total_s) if total_s.strip().isdigit() else None
    start_s = spec.split("-", 1)[0].strip()
    start = int(start_s) if start_s.isdigit() else None
    return start, total


def _fetch_once(url: str, part: Path, *, timeout: float, progress: bool, label: str) -> None:
    """One HTTP request appending to `part`; `_Transient` for a failure worth retrying."""
    offset = part.stat().st_size if part.exists() else 0
    req = Request(url, headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    try:
        resp = urlopen(req, timeout=timeout)
    except HTTPError as exc:
        if exc.code == 416 and offset:
            # The range starts at or past the end: the part is whole (a run killed before the rename) or too long.
            _, total = _content_range(exc.headers.get("Content-Range"))
            exc.close()
            if total == offset:
                return
            part.unlink()
            raise _Transient(f"HTTP 416 for a resume at byte {offset}; restarting") from exc
        if exc.code >= 500:
            exc.close()
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        raise
    except (TimeoutError, ConnectionResetError, http.client.RemoteDisconnected) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc

    with resp:
        mode = "wb"
        if offset and resp.status == 206:
            start, _ = _content_range(resp.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise _Transient(f"server resumed at byte {start}, asked for {offset}; restarting")
            mode = "ab"
        else:
            offset = 0  # the server ignored Range and sends the whole file
        length = resp.headers.get("Content-Length")
        expected = offset + int(length) if length and length.isdigit() else None
        received = offset
        with tqdm(total=expected, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                  leave=False, disable=not progress) as bar, open(part, mode) as f:
            while True:
                try:
                    chunk = resp.read(_CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Transient(f"connection lost after {received} bytes "
                                     f"({type(exc).__name__}: {exc})") from exc
                if not chunk:
                    break
                f.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if expected is not None and received != expected:
            raise _Transient(f"connection closed after {received} of {expected} bytes")


def fetch(urls: Sequence[str], dest: Path, *, retries: int, timeout: float, progress: bool, label: str) -> str:
    """Download the first URL that works to `dest` (via ``dest.part``); return that URL.

    Each URL gets ``1 + retries`` attempts for transient failures, each resuming where the last
    stopped; a 4xx answer or an unreachable host moves on to the next URL at once.

    Raises
    ------
    FetchFailed
        Naming every URL tried and why it failed; what arrived stays in ``dest.part``.
    """
    part = dest.with_name(dest.name + ".part")
    attempts: list[str] = []
    for url in urls:
        for attempt in range(retries + 1):
            try:
                _fetch_once(url, part, timeout=timeout, progress=progress, label=label)
            except _Transient as exc:
                if attempt < retries:
                    time.sleep(_RETRY_BASE_S * 2**attempt)
                    continue
                kept = part.stat().st_size if part.exists() else 0
                failure = (f"{exc} (gave up after {retries + 1} attempts; {kept:,} bytes kept in {part} for the next "
                           "run to resume)")
            except HTTPError as exc:
                failure = f"HTTP {exc.code} {exc.reason}"
                exc.close()
            except URLError as exc:
                failure = f"unreachable ({exc.reason})"
            except OSError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                os.replace(part, dest)
                return url
            attempts.append(f"{url}: {failure}")
            break
    raise FetchFailed("\n  ".join(attempts))
