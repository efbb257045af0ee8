"""A test CA and a server certificate for 127.0.0.1 and localhost, made with the
openssl command line (no ``cryptography`` package here), never downloaded."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

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


def make_pki(folder: Path) -> TestPki:
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=CTI Desk test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=folder)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", "server.key", "-out", "server.csr", cwd=folder)  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem",
             cwd=folder)  # fmt: skip
    _openssl("x509", "-in", "server.pem", "-outform", "DER", "-out", "server.der", cwd=folder)
    return TestPki(folder / "ca.pem", folder / "server.pem", folder / "server.key",
                   folder / "server.der")  # fmt: skip
