"""A test CA and a server certificate for 127.0.0.1 and localhost (and host names asked
for), made with the openssl command line (no ``cryptography`` package), never downloaded."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class TestPki:
    ca: Path
    cert: Path
    key: Path
    der: Path

    __test__ = False


def _openssl(*args: str, cwd: Path) -> None:
    try:
        subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)
    except FileNotFoundError:
        pytest.fail("openssl is not installed (the TLS tests make their certificates with it)")


def make_pki(folder: Path, names: Sequence[str] = ()) -> TestPki:
    """The CA and a server certificate for 127.0.0.1, localhost and ``names`` (DNS)."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=CTI Desk test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=folder)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", "server.key", "-out", "server.csr", cwd=folder)  # fmt: skip
    dns = "".join(f",DNS:{name}" for name in names)
    (folder / "san.ext").write_text(f"subjectAltName=IP:127.0.0.1,DNS:localhost{dns}\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem",
             cwd=folder)  # fmt: skip
    _openssl("x509", "-in", "server.pem", "-outform", "DER", "-out", "server.der", cwd=folder)
    return TestPki(folder / "ca.pem", folder / "server.pem", folder / "server.key",
                   folder / "server.der")  # fmt: skip


def tls_params(pki: TestPki, **more: Any) -> dict[str, Any]:
    """A line's parameters for UDP and TLS (any free TLS port) with ``pki``'s certificate,
    trusting its CA; ``more``: others (``srtp``...)."""
    return {"transports": ("udp", "tls"), "tls_port": 0, "tls_cert_file": str(pki.cert),
            "tls_key_file": str(pki.key), "tls_ca_file": str(pki.ca), **more}  # fmt: skip
