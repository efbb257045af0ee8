"""Running SIPp (Debian package sip-tester) against the line, on 127.0.0.1.

A missing ``sipp`` fails the test (``deploy/system-deps.sh`` installs it): the SIP line
is only proven against a real peer.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).parent / "scenarios"


def sipp_binary() -> str:
    found = shutil.which("sipp") or ("/usr/bin/sipp" if Path("/usr/bin/sipp").exists() else None)
    if found is None:
        pytest.fail(
            "sipp is not installed: run deploy/system-deps.sh as root "
            "(Debian package sip-tester) or make test"
        )
    return found


def free_udp_port() -> int:
    """A UDP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SippRun:
    returncode: int
    output: str

    def explain(self) -> str:
        return f"SIPp exited {self.returncode}:\n{self.output[-4000:]}"


class Sipp:
    """One SIPp process: ``start`` it, then ``wait`` for its exit code."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_udp_port()
        self.media_port = free_udp_port()
        self.process: asyncio.subprocess.Process | None = None
        self.error_file = workdir / "sipp_errors.log"

    async def start(
        self, scenario: str, *args: str, target: str | None = None, timeout_s: int = 20
    ) -> None:
        command = [
            sipp_binary(),
            *([target] if target else []),
            "-sf",
            str(SCENARIOS / scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-mp",
            str(self.media_port),
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            f"{timeout_s}s",
            "-timeout_error",
            "-trace_err",
            "-error_file",
            str(self.error_file),
            *args,
        ]
        self.process = await asyncio.create_subprocess_exec(
            *command,
            cwd=self.workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def wait(self, timeout_s: float = 30.0) -> SippRun:
        assert self.process is not None
        try:
            out, _ = await asyncio.wait_for(self.process.communicate(), timeout_s)
        except TimeoutError:
            self.process.kill()
            out, _ = await self.process.communicate()
        errors = self.error_file.read_text("utf-8", "replace") if self.error_file.exists() else ""
        text = out.decode("utf-8", "replace") + "\n--- errors ---\n" + errors
        return SippRun(self.process.returncode if self.process.returncode is not None else -1, text)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
