"""The certificate that signs Content Credentials: the deployer's own, or a local CA's.

C2PA signing needs an ES256 key and a certificate chain whose leaf is not
self-signed. A deployer gives theirs as two PEM files (settings `cert_file` and
`key_file`, env PROVENANCE_CERT and PROVENANCE_KEY). Without them, the first
signature makes a small local CA and a signing certificate under the state
folder, once; readers see valid manifests whose signer no public trust list knows.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError

LOCAL_SIGNING_FILE = "local-signing.pem"  # leaf certificate, CA certificate, then the signing key: one file, replaced atomically
ORGANIZATION = "Face privacy bot (local)"


@dataclass(frozen=True)
class Credentials:
    chain_pem: bytes = b""  # leaf first, then its issuers
    key_pem: bytes = b""
    local: bool = True  # made by this service's own CA: not publicly trusted
    source: str = ""  # where they came from, for `provenance status`

    @property
    def trust_anchor_pem(self) -> bytes:
        """The last certificate of the chain: the CA to trust when checking our own files."""
        start = self.chain_pem.rfind(b"-----BEGIN CERTIFICATE-----")
        return self.chain_pem[start:] if start >= 0 else b""


class CredentialsError(PipelineError):
    """The deployer's certificate or key cannot be read."""

    code = "provenance_unavailable"


def load_credentials(state_dir: Path, cert_file: str = "", key_file: str = "") -> Credentials:
    """The deployer's chain and key when both files are given, else the local CA's (made on first use)."""
    if cert_file or key_file:
        if not (cert_file and key_file):
            raise CredentialsError("give both PROVENANCE_CERT and PROVENANCE_KEY, or neither")
        try:
            return Credentials(Path(cert_file).read_bytes(), Path(key_file).read_bytes(), local=False, source=cert_file)
        except OSError as error:
            raise CredentialsError(f"cannot read the signing certificate or key: {error.strerror} ({error.filename})") from None
    path = state_dir / LOCAL_SIGNING_FILE
    if not path.exists():
        make_local_ca(path)
    pem = path.read_bytes()
    key_start = pem.index(b"-----BEGIN PRIVATE KEY-----")
    return Credentials(pem[:key_start], pem[key_start:], local=True, source=str(path))


def make_local_ca(path: Path, valid_days: int = 3650) -> None:
    """Write a local CA's certificate, an ES256 signing certificate it issued and the signing key to `path` (mode 600).

    Two workers starting at once each write a whole file and the last rename wins,
    so a reader never sees one's certificate with the other's key.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION)])

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, signing_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    no_usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False, decipher_only=False)
    ca = (
        x509.CertificateBuilder().subject_name(name("Local provenance CA")).issuer_name(name("Local provenance CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True, **no_usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder().subject_name(name("Content Credentials signer")).issuer_name(ca.subject)
        .public_key(signing_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=valid_days - 1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **no_usage), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signing_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(leaf.public_bytes(pem) + ca.public_bytes(pem))
        file.write(signing_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.replace(temporary, path)
