"""The sandbox's certificate authority and the server certificates it issues.

KMS only talks to a proxy over HTTPS, with a certificate that chains to a CA it trusts and
names the proxy's host. The sandbox makes its own CA (:class:`CertificateAuthority`, kept in a
directory so the emulator and the proxy agree on it, or in memory for tests) and issues server
certificates from it; :func:`self_signed_certificate` and the ``not_before``/``not_after`` and
``hostnames`` arguments make the broken variants (self-signed, expired, wrong host name) that a
preflight must catch. Keys are ECDSA P-256. Contexts allow TLS 1.2 and later only.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT_FILE = "xks-proxy-ca.pem"
CA_KEY_FILE = "xks-proxy-ca-key.pem"
DEFAULT_HOSTNAMES = ("localhost", "127.0.0.1")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Reconciler sandbox"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])


def _san(hostnames: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


@dataclass(frozen=True)
class ServerCertificate:
    """A server certificate (PEM), its chain up to but excluding the root, and its private key."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    hostnames: tuple[str, ...]
    not_after: datetime
    chain_pem: bytes = b""  # intermediates, none for the sandbox CA

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting this certificate, TLS 1.2 or later."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # ssl loads a certificate chain only from files: write them privately, load, remove
        with tempfile.TemporaryDirectory(prefix="xks-proxy-tls-") as tmp:
            cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
            cert_file.write_bytes(self.cert_pem + self.chain_pem)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.key_pem)
            context.load_cert_chain(cert_file, key_file)
        return context


@dataclass(frozen=True)
class CertificateAuthority:
    cert_pem: bytes
    key_pem: bytes = field(repr=False)

    @classmethod
    def create(cls, common_name: str = "Reconciler sandbox XKS proxy CA", *, days: int = 3650,
               now: Optional[datetime] = None) -> "CertificateAuthority":
        now = now or _now()
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(common_name)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return cls(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))

    @classmethod
    def load_or_create(cls, directory: str | os.PathLike[str]) -> "CertificateAuthority":
        """The CA kept in ``directory`` (its key readable by the owner only), made on first use."""
        folder = Path(directory)
        cert_file, key_file = folder / CA_CERT_FILE, folder / CA_KEY_FILE
        if cert_file.exists() and key_file.exists():
            return cls(cert_file.read_bytes(), key_file.read_bytes())
        folder.mkdir(parents=True, exist_ok=True)
        ca = cls.create()
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(ca.key_pem)
        fd = os.open(cert_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the sandbox's files are private
        with os.fdopen(fd, "wb") as handle:
            handle.write(ca.cert_pem)
        return ca

    def issue(self, hostnames: Sequence[str] = DEFAULT_HOSTNAMES, *, days: int = 365,
              not_before: Optional[datetime] = None, not_after: Optional[datetime] = None,
              now: Optional[datetime] = None) -> ServerCertificate:
        """A server certificate for ``hostnames`` (DNS names or IP addresses) signed by this CA.

        ``not_after`` in the past makes an expired certificate; other ``hostnames`` than the
        proxy's make a wrong-hostname one.
        """
        ca_cert = x509.load_pem_x509_certificate(self.cert_pem)
        ca_key = serialization.load_pem_private_key(self.key_pem, password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        return _server_certificate(hostnames, ca_cert.subject, ca_key, days=days, now=now,
                                   not_before=not_before, not_after=not_after, ca_cert=ca_cert)

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only, checks host names, TLS 1.2 or later."""
        return client_context(self.cert_pem)


def self_signed_certificate(hostnames: Sequence[str] = DEFAULT_HOSTNAMES, *, days: int = 365,
                            now: Optional[datetime] = None) -> ServerCertificate:
    """A server certificate signed by its own key: no client trusting a CA accepts it."""
    return _server_certificate(hostnames, None, None, days=days, now=now)


def _server_certificate(hostnames: Sequence[str], issuer: Optional[x509.Name],
                        issuer_key: Optional[ec.EllipticCurvePrivateKey], *, days: int,
                        now: Optional[datetime], not_before: Optional[datetime] = None,
                        not_after: Optional[datetime] = None,
                        ca_cert: Optional[x509.Certificate] = None) -> ServerCertificate:
    if not hostnames:
        raise ValueError("a server certificate names at least one host")
    now = now or _now()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(hostnames[0])
    start = not_before or now - timedelta(minutes=5)
    end = not_after or now + timedelta(days=days)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer or subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(min(start, end - timedelta(seconds=1))).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_san(hostnames), critical=False)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    if ca_cert is not None:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                                        critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return ServerCertificate(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), tuple(hostnames), end)


def client_context(ca_pem: Optional[bytes] = None) -> ssl.SSLContext:
    """A client context trusting ``ca_pem`` (None: the system's CAs), TLS 1.2 or later."""
    context = ssl.create_default_context(cadata=ca_pem.decode("ascii") if ca_pem else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
