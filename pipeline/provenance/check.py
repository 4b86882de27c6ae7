"""`python -m pipeline provenance check|status`: what a file carries, and who signs ours."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.config import ProvenanceSettings
from pipeline.provenance import content_type_of, credentials, manifest, watermark, xmp
from pipeline.provenance.signing import LOCAL_SIGNING_FILE, CredentialsError


def check_file(data: bytes, settings: ProvenanceSettings) -> dict:
    """Contract 9 of DESIGN.md: the XMP source type, the C2PA manifest (valid or not, and why) and the watermark.

    Manifests are checked against the library's trust list plus this service's
    own signing CA, so our results validate here even when signed locally.
    """
    content_type = content_type_of(data)
    if content_type is None:
        raise ValueError("not a JPEG or PNG file")
    report = manifest.read_manifest(data, content_type, _our_trust_anchor(settings))
    return {
        "xmp_digital_source_type": xmp.read_digital_source_type(data),
        "c2pa": report.to_json(),
        "watermark": watermark.detect(_pixels(data)),
    }


def status_lines(settings: ProvenanceSettings) -> list[str]:
    """What `provenance status` prints: on or off, the signer, and whether the public trusts it."""
    if not settings.enabled:
        return ["provenance marks: off (provenance.enabled: false); results carry no XMP, C2PA or watermark"]
    lines = ["provenance marks: on (XMP source type and watermark on replace/unmask results, signed C2PA on every result)"]
    try:
        signer = credentials(settings)
    except CredentialsError as error:
        return lines + [f"signing: cannot sign: {error}"]
    subject, until = _describe_certificate(signer.chain_pem)
    if signer.local:
        lines.append(f"signing: local CA, {signer.source} ({subject}, valid until {until})")
        lines.append("  not publicly trusted: readers show the manifests as signed by an unknown signer;"
                     " set PROVENANCE_CERT and PROVENANCE_KEY to sign with your own certificate")
    else:
        lines.append(f"signing: deployer's certificate {signer.source} ({subject}, valid until {until})")
    return lines


def _our_trust_anchor(settings: ProvenanceSettings) -> bytes:
    """The CA that signs this service's results, when one exists already (checking never creates one)."""
    if (settings.cert_file and settings.key_file) or (settings.state_path / LOCAL_SIGNING_FILE).exists():
        try:
            return credentials(settings).trust_anchor_pem
        except CredentialsError:
            return b""
    return b""


def _pixels(data: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"cannot decode the picture: {error}") from None


def _describe_certificate(chain_pem: bytes) -> tuple[str, str]:
    from cryptography import x509

    leaf = x509.load_pem_x509_certificates(chain_pem)[0]
    return leaf.subject.rfc4514_string(), leaf.not_valid_after_utc.date().isoformat()
