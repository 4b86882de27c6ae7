"""Signed C2PA manifests (Content Credentials) through the c2pa-python library.

A result's manifest says only what was done: `c2pa.opened` on a parent
ingredient that is a bare title (no thumbnail, no hash of the original, no file
name), then `c2pa.edited` with a short description and, for AI-made pixels,
IPTC's digital source type. The library's own thumbnail of the result is off too.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache

from pipeline.provenance.signing import Credentials, CredentialsError

GENERATOR = "face-privacy-bot"
PARENT_ID = "original"


@dataclass(frozen=True)
class ManifestReport:
    """What a file's C2PA manifest says, in the shape of `provenance check --json`'s `c2pa` field."""

    present: bool = False
    valid: bool = False
    actions: tuple[str, ...] = ()
    digital_source_type: str | None = None
    problems: tuple[str, ...] = field(default=())

    def to_json(self) -> dict:
        return {
            "present": self.present, "valid": self.valid, "actions": list(self.actions),
            "digital_source_type": self.digital_source_type, "problems": list(self.problems),
        }


def manifest_definition(description: str, digital_source_type: str | None, content_type: str) -> dict:
    """The manifest of one result: opened, then edited (with the AI source type when given)."""
    edited = {"action": "c2pa.edited", "description": description}
    if digital_source_type:
        edited["digitalSourceType"] = digital_source_type
    return {
        "claim_generator_info": [{"name": GENERATOR}],
        "title": "edited photo",
        "format": content_type,
        "ingredients": [{"title": "original photo", "format": content_type, "relationship": "parentOf", "instance_id": PARENT_ID}],
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [
            {"action": "c2pa.opened", "parameters": {"ingredientIds": [PARENT_ID]}},
            edited,
        ]}}],
    }


def sign(data: bytes, content_type: str, definition: dict, credentials: Credentials) -> bytes:
    """`data` with the manifest embedded and signed."""
    import c2pa

    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, credentials.chain_pem, credentials.key_pem, None))
    except c2pa.C2paError as error:
        fix = "delete it to have a new local one made" if credentials.local else "give a PEM chain and an ES256 key"
        raise CredentialsError(f"the signing certificate or key in {credentials.source} is not usable ({error}); {fix}") from None
    signed = io.BytesIO()
    with c2pa.Builder.from_json(definition, _context(b"")) as builder:
        builder.sign(signer, content_type, io.BytesIO(data), signed)
    return signed.getvalue()


def read_manifest(data: bytes, content_type: str, trust_anchor_pem: bytes = b"") -> ManifestReport:
    """Validate the file's active manifest; `trust_anchor_pem` names a CA to trust besides the library's own list."""
    import c2pa

    try:
        reader = c2pa.Reader(content_type, io.BytesIO(data), context=_context(trust_anchor_pem))
    except c2pa.C2paError as error:
        text = str(error)
        if "ManifestNotFound" in text or "no JUMBF" in text.lower():
            return ManifestReport()
        return ManifestReport(present=True, problems=(text,))
    with reader:
        manifest = reader.get_active_manifest() or {}
        results = reader.get_validation_results() or {}
        state = reader.get_validation_state()
    actions = [a for assertion in manifest.get("assertions", []) if assertion.get("label", "").startswith("c2pa.actions")
               for a in assertion.get("data", {}).get("actions", [])]
    failures = results.get("activeManifest", {}).get("failure", [])
    problems = tuple(f"{item.get('code')}: {item.get('explanation', '')}".strip(": ") for item in failures)
    source_types = [a["digitalSourceType"] for a in actions if a.get("digitalSourceType")]
    return ManifestReport(
        present=True,
        valid=state in ("Valid", "Trusted") and not problems,
        actions=tuple(a.get("action", "") for a in actions),
        digital_source_type=source_types[0] if source_types else None,
        problems=problems,
    )


@lru_cache(maxsize=4)
def _context(trust_anchor_pem: bytes):
    """A c2pa context that makes no thumbnails and trusts `trust_anchor_pem` (when given) as a CA."""
    import c2pa

    settings: dict = {"builder": {"thumbnail": {"enabled": False}}}
    if trust_anchor_pem:
        settings["trust"] = {"user_anchors": trust_anchor_pem.decode("ascii")}
    return c2pa.Context.from_dict(settings)
