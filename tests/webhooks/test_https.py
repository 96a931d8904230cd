"""HTTPS to a pinned address: the socket goes to the address that was checked, while TLS still
verifies the certificate against the URL's host name."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aisystem.webhooks import http as webhook_http
from aisystem.webhooks import safety
from aisystem.webhooks.http import webhook_post
from tests.webhooks.receiver import Receiver, running_receiver

HOST = "hooks.example.com"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str, issuer: str, key: ec.EllipticCurvePrivateKey, public: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A test CA, and a certificate it issued for ``HOST``: (ca.pem, cert.pem, key.pem)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        _certificate("test CA", "test CA", ca_key, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _certificate(HOST, "test CA", ca_key, key.public_key())
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def https_receiver(
    tls_files: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Receiver]:
    ca, cert, key = tls_files
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(ca))
    # The sender trusts the test CA instead of the system's, and HOST resolves to loopback.
    monkeypatch.setattr(webhook_http.ssl, "create_default_context", lambda: trusting)
    monkeypatch.setattr(
        safety, "addresses_resolve", lambda host, port: [ipaddress.ip_address("127.0.0.1")]
    )
    with running_receiver(tls=server) as receiver:
        yield receiver


def port_of(receiver: Receiver) -> int:
    return int(receiver.url.split(":")[2].split("/")[0])


def test_https_reaches_the_checked_address_and_verifies_the_host_name(
    https_receiver: Receiver,
) -> None:
    url = f"https://{HOST}:{port_of(https_receiver)}/in"

    result = webhook_post(url, b"{}", {}, allow_private=True, timeout=5)

    assert result.status_code == 200, result.error
    [request] = https_receiver.received
    assert request.headers["host"] == f"{HOST}:{port_of(https_receiver)}"


def test_a_certificate_for_another_name_is_refused(https_receiver: Receiver) -> None:
    url = f"https://other.example.com:{port_of(https_receiver)}/in"

    result = webhook_post(url, b"{}", {}, allow_private=True, timeout=5)

    assert result.status_code is None
    assert "certificate" in result.error.lower() or "hostname" in result.error.lower()
    assert https_receiver.received == []
