"""The media tests' network isolation (tests/phones.py): each test in tests/media runs in
a fresh network namespace with only ``lo`` up, and what the harness needs (root,
baresip) fails the test when missing, never skips it."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from tests import phones
from tests.phones import Baresip, isolated_network

pytestmark = pytest.mark.media


def namespace() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def loopback_only() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def test_the_test_runs_in_a_namespace_with_only_loopback_up() -> None:
    assert loopback_only()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))  # lo is up
        s.sendto(b"ping", s.getsockname())
        assert s.recv(4) == b"ping"


def test_a_nested_namespace_is_fresh_and_left_at_the_end() -> None:
    outer = namespace()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with isolated_network():
            assert namespace() != outer
            assert loopback_only()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as inner:
                inner.bind(("127.0.0.1", port))  # the outer socket is not here
        assert namespace() == outer


def test_without_root_the_test_fails_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.fail.Exception, match="needs root"), isolated_network():
        pass


def test_without_baresip_the_test_fails_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(pytest.fail.Exception, match="baresip-core"):
        phones.baresip_binary()


async def test_baresip_refuses_to_start_outside_an_isolated_namespace(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(phones, "_isolated", set())
    with pytest.raises(pytest.fail.Exception, match=r"binds 0\.0\.0\.0"):
        async with Baresip(tmp_path):
            pass
    assert not (tmp_path / "baresip-phone").exists()  # nothing was started
