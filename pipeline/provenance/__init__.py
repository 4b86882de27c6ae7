"""Honest results: what every result file says about how it was made, and nothing about its owner.

- Replace and unmask results: IPTC `DigitalSourceType` (composite with trained
  algorithmic media) in XMP, a signed C2PA manifest with that source type on its
  `c2pa.edited` action, and an invisible watermark in the AI-made pixels.
- Blur results: a signed C2PA `c2pa.edited` action with no AI source type.
- Never: EXIF, GPS, camera data, names, ids, or a thumbnail of the original.

The pipeline calls `watermark_result` on the pixels, encodes them, then
`mark_file` on the bytes; `check_file` reads all three marks back.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.config import ProvenanceSettings
from pipeline.provenance import manifest, watermark, xmp
from pipeline.provenance.signing import Credentials, CredentialsError, load_credentials

AI_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
AI_MODES = ("replace", "unmask")  # modes whose pixels a trained model made
EDIT_DESCRIPTIONS = {
    "replace": "faces replaced by synthetic faces of people who do not exist",
    "unmask": "face masks removed; the covered part of each face made by a trained model",
    "blur": "faces blurred",
}


@dataclass(frozen=True)
class Edit:
    """What was done to a photo, as its marks say it."""

    description: str
    ai: bool  # some pixels were made by a trained model

    @classmethod
    def from_modes(cls, applied: Collection[str]) -> "Edit":
        """From the modes actually applied to the faces (a face's report mode; "none" for a face left as it was)."""
        done = [EDIT_DESCRIPTIONS[mode] for mode in ("replace", "unmask", "blur") if mode in applied]
        return cls("; ".join(done) or "re-encoded; no face changed", any(mode in applied for mode in AI_MODES))


def watermark_result(original: np.ndarray, changed: np.ndarray, edit: Edit, settings: ProvenanceSettings) -> np.ndarray:
    """`changed` with the invisible mark in the pixels that differ from `original`, when AI made them (in place)."""
    if settings.enabled and edit.ai:
        watermark.embed(changed, original)
    return changed


def mark_file(data: bytes, content_type: str, edit: Edit, settings: ProvenanceSettings) -> bytes:
    """The encoded result `data` (JPEG or PNG) with its XMP field (AI edits only) and a signed C2PA manifest."""
    if not settings.enabled:
        return data
    source_type = AI_SOURCE_TYPE if edit.ai else None
    if source_type:
        data = xmp.add_digital_source_type(data, source_type)
    definition = manifest.manifest_definition(edit.description, source_type, content_type)
    return manifest.sign(data, content_type, definition, credentials(settings))


def credentials(settings: ProvenanceSettings) -> Credentials:
    """The signing chain and key: the deployer's files, else the local CA's (made on first use)."""
    return _load_credentials(settings.state_path, settings.cert_file, settings.key_file)


@lru_cache(maxsize=4)
def _load_credentials(state_path: Path, cert_file: str, key_file: str) -> Credentials:
    return load_credentials(state_path, cert_file, key_file)


def content_type_of(data: bytes) -> str | None:
    """"image/jpeg" or "image/png" from the file's first bytes, else None."""
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith(xmp.PNG_SIGNATURE):
        return "image/png"
    return None


__all__ = ["AI_SOURCE_TYPE", "Credentials", "CredentialsError", "Edit", "content_type_of", "credentials", "mark_file", "watermark_result"]
