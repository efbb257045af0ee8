"""Real softphones for the media tests: baresip (Debian ``baresip-core``) driven over its
``ctrl_tcp`` socket, inside a network namespace the test enters.

- :func:`isolated_network` puts the calling thread (the test's, which runs the event loop
  and starts the peers) in a fresh network namespace with only ``lo`` up, and back in the
  old one at the end: baresip binds its RTP sockets to ``0.0.0.0`` and ``[::]`` whatever
  its config says, so it must never run in the host's namespace. ``tests/media/conftest.py``
  enters one for every test there. It needs root (CAP_SYS_ADMIN); without it the test fails.
- :class:`Baresip` is one phone: its config folder under the test's directory, a tone it
  sends (a WAV the test writes), what it heard (the ``sndfile`` dump), ``dial``,
  ``accept``, ``hangup`` and ``wait_event`` over ``ctrl_tcp``, stopped (and its exit
  checked) when the ``async with`` block ends.

See docs/voice.md, "Testing with real phones".
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import ctypes
import errno
import fcntl
import itertools
import json
import os
import shutil
import socket
import struct
import sys
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from tests.audio import RATE, tone
from tests.harness import LIMIT_S, until, until_async

_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sh22x"  # struct ifreq: name, flags, padding to 40 bytes

_isolated: set[int] = set()
"""Inodes of the namespaces :func:`isolated_network` made (baresip runs only in one)."""


def _net_namespace() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def _libc_call(name: str, *args: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        code = ctypes.get_errno()
        hint = (
            ": the media tests need root with CAP_SYS_ADMIN (in a container: "
            "--cap-add SYS_ADMIN or --privileged)"
            if code in (errno.EPERM, errno.EACCES)
            else ""
        )
        pytest.fail(f"{name}(CLONE_NEWNET) failed: {os.strerror(code)}{hint}")


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        got = fcntl.ioctl(s, _SIOCGIFFLAGS, struct.pack(_IFREQ, b"lo", 0))
        flags = struct.unpack(_IFREQ, got)[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


@contextlib.contextmanager
def isolated_network() -> Iterator[None]:
    """Run the block in a fresh network namespace (only ``lo``, up), then return to the
    namespace the thread was in. Sockets and processes made in the block stay in it; the
    namespace goes when the last of them does."""
    if os.geteuid() != 0:
        pytest.fail(
            "the media tests run baresip in a network namespace of their own, "
            "which needs root: run them (make test) as root"
        )
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    home_inode = _net_namespace()
    try:
        _libc_call("unshare", _CLONE_NEWNET)
        inode = _net_namespace()
        _isolated.add(inode)
        try:
            _loopback_up()
            yield
        finally:
            _isolated.discard(inode)
            _libc_call("setns", home, _CLONE_NEWNET)
            if _net_namespace() != home_inode:
                raise AssertionError("isolated_network: not back in the thread's namespace")
    finally:
        os.close(home)


def baresip_binary() -> str:
    found = shutil.which("baresip")
    if found is None:
        pytest.fail(
            "baresip is not installed: run deploy/system-deps.sh as root "
            "(Debian package baresip-core) or make test"
        )
    return found


def free_port(kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    """A port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_sip_port() -> int:
    """A port P with UDP and TCP P and TCP P+1 free: baresip opens all three."""
    while True:
        port = free_port()
        if port < 65535 and all(
            _free(p, k) for p, k in ((port, socket.SOCK_STREAM), (port + 1, socket.SOCK_STREAM))
        ):
            return port


def write_tone(path: Path, freq_hz: float | None, seconds: float, amplitude: float = 0.3) -> None:
    """An 8 kHz mono 16-bit WAV of a sine at ``freq_hz`` (None: silence)."""
    n = int(seconds * RATE)
    if freq_hz is None:
        samples = array.array("h", bytes(2 * n))
    else:
        samples = array.array("h", tone(freq_hz, n, amplitude=round(amplitude * 32767)))
    if sys.byteorder != "little":
        samples.byteswap()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())


def wav_samples(path: Path) -> array.array[int]:
    """The 16-bit mono samples of a WAV, read up to the end of the file whatever its
    header says (a dump still being written has a header with no length yet)."""
    data = path.read_bytes()
    at = data.find(b"data", 12)
    if not data.startswith(b"RIFF") or at < 0:
        raise AssertionError(f"{path}: not a WAV file ({len(data)} bytes)")
    body = data[at + 8 :]
    samples = array.array("h", body[: len(body) // 2 * 2])
    if sys.byteorder != "little":
        samples.byteswap()
    return samples


def netstring(payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode()
    return str(len(body)).encode() + b":" + body + b","


async def read_netstring(reader: asyncio.StreamReader) -> dict[str, Any]:
    length = await reader.readuntil(b":")
    body = await reader.readexactly(int(length[:-1]))
    if await reader.readexactly(1) != b",":
        raise AssertionError(f"baresip ctrl_tcp: a netstring without its comma: {body!r}")
    message: dict[str, Any] = json.loads(body)
    return message


@dataclass(frozen=True)
class Registration:
    """Register to ``host:port`` as ``user`` with ``password`` (digest)."""

    host: str
    port: int
    user: str
    password: str
    regint_s: int = 60


_CONTRARY = {
    "REGISTER_OK": ("REGISTER_FAIL",),
    "CALL_RINGING": ("CALL_CLOSED",),
    "CALL_ESTABLISHED": ("CALL_CLOSED",),
    "CALL_RTPESTAB": ("CALL_CLOSED",),
}
"""Events that rule out the one awaited (a wait fails at once on them)."""


class Baresip:
    """One baresip phone (see the module docstring). ``tone_hz``: what it sends (None:
    silence), for ``tone_s`` seconds (the call ends when the file does). ``auto_answer``:
    ``;answermode=auto``. ``register``: an account registered there; else a local
    account ``sip:USER@127.0.0.1:PORT`` that others dial directly (:attr:`uri`)."""

    def __init__(
        self,
        workdir: Path,
        *,
        user: str = "phone",
        tone_hz: float | None = None,
        tone_s: float = 60.0,
        auto_answer: bool = False,
        register: Registration | None = None,
    ) -> None:
        self.folder = workdir / f"baresip-{user}"
        self.user = user
        self.tone_hz = tone_hz
        self.tone_s = tone_s
        self.auto_answer = auto_answer
        self.register = register
        self.sip_port = 0
        self.ctrl_port = 0
        self.events: list[dict[str, Any]] = []
        """Every event baresip reported, in order."""
        self._pending: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tokens = itertools.count(1)
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None

    @property
    def uri(self) -> str:
        """Where to dial this phone directly."""
        return f"sip:{self.user}@127.0.0.1:{self.sip_port}"

    @property
    def log_path(self) -> Path:
        return self.folder / "baresip.log"

    def log_tail(self, chars: int = 3000) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text("utf-8", "replace")[-chars:]

    # --- life ----------------------------------------------------------------------

    async def __aenter__(self) -> Baresip:
        if _net_namespace() not in _isolated:
            pytest.fail(
                "baresip binds 0.0.0.0 and [::]: start it only inside isolated_network() "
                "(tests/media/conftest.py enters one for every test there)"
            )
        self._write_config()
        log = self.log_path.open("wb")
        try:
            self._process = await asyncio.create_subprocess_exec(
                baresip_binary(),
                "-f",
                str(self.folder),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        finally:
            log.close()
        try:
            await self._connect()
        except BaseException:
            await self._kill()
            raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        exited = await self.stop()
        if kind is None and not exited:
            raise AssertionError(f"baresip {self.user} did not exit on quit:\n{self.log_tail()}")

    async def stop(self) -> bool:
        """Ask baresip to quit and wait for its exit (killed after a while): True when it
        exited by itself."""
        process = self._process
        if process is None:
            return True
        if process.returncode is None and self._writer is not None:
            with contextlib.suppress(OSError):
                self._writer.write(netstring({"command": "quit", "token": "quit"}))
                await self._writer.drain()
        try:
            await asyncio.wait_for(process.wait(), LIMIT_S)
            exited = True
        except TimeoutError:
            exited = False
        await self._kill()
        return exited

    async def _kill(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        process = self._process
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()

    def _write_config(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "snd").mkdir(exist_ok=True)
        self.sip_port = free_sip_port()
        self.ctrl_port = free_port(socket.SOCK_STREAM)
        play = self.folder / "play.wav"
        write_tone(play, self.tone_hz, self.tone_s)
        modules = ["g711", "aufile", "sndfile"]
        apps = ["account", "menu", "ctrl_tcp"]
        lines = [
            "poll_method\t\tepoll",
            # baresip finds no address of its own on a namespace with only lo
            "net_interface\t\t127.0.0.1",
            f"sip_listen\t\t127.0.0.1:{self.sip_port}",
            f"ctrl_tcp_listen\t\t127.0.0.1:{self.ctrl_port}",
            f"audio_source\t\taufile,{play}",
            # aufile is a source only: nothing is played, sndfile dumps what was heard
            "audio_player\t\taufile,/dev/null",
            "audio_alert\t\taufile,/dev/null",
            f"snd_path\t\t{self.folder / 'snd'}",
            "module_path\t\t/usr/lib/baresip/modules",
            *(f"module\t\t\t{m}.so" for m in modules),
            *(f"module_app\t\t{m}.so" for m in apps),
        ]
        (self.folder / "config").write_text("\n".join(lines) + "\n")
        # The account comes over ctrl_tcp once connected (uanew): a registration's
        # events would be lost before that.
        (self.folder / "accounts").write_text("")

    def _account(self) -> str:
        answer = ";answermode=auto" if self.auto_answer else ";answermode=manual"
        r = self.register
        if r is None:
            return f"<sip:{self.user}@127.0.0.1:{self.sip_port}>;regint=0{answer}"
        return (
            f"<sip:{r.user}@{r.host}:{r.port}>;auth_pass={r.password};regint={r.regint_s}{answer}"
        )

    async def _connect(self) -> None:
        async def attempt() -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
            process = self._process
            if process is not None and process.returncode is not None:
                raise AssertionError(
                    f"baresip {self.user} exited {process.returncode} at start:\n{self.log_tail()}"
                )
            try:
                return await asyncio.open_connection("127.0.0.1", self.ctrl_port)
            except OSError:
                return None

        reader, self._writer = await until_async(
            attempt, every_s=0.02, what=f"baresip {self.user}'s ctrl_tcp socket"
        )
        self._reader_task = asyncio.create_task(self._read(reader), name=f"baresip:{self.user}")
        await self.command("uanew", self._account())

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await read_netstring(reader)
                if message.get("event"):
                    self.events.append(message)
                    self._pending.append(message)
                elif (reply := self._replies.pop(str(message.get("token")), None)) is not None:
                    reply.set_result(message)
                self._arrived.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._arrived.set()
            for reply in self._replies.values():
                reply.cancel()

    # --- control -------------------------------------------------------------------

    async def command(self, name: str, params: str = "") -> str:
        """Run one baresip command; its reply's text. A refused command fails the test."""
        if self._writer is None or self._reader_task is None or self._reader_task.done():
            raise AssertionError(f"baresip {self.user} is not connected:\n{self.log_tail()}")
        token = str(next(self._tokens))
        reply = asyncio.get_running_loop().create_future()
        self._replies[token] = reply
        self._writer.write(netstring({"command": name, "params": params, "token": token}))
        await self._writer.drain()
        try:
            message = await asyncio.wait_for(reply, LIMIT_S)
        except (TimeoutError, asyncio.CancelledError) as exc:
            raise AssertionError(
                f"baresip {self.user}: no reply to {name} {params}:\n{self.log_tail()}"
            ) from exc
        if not message.get("ok"):
            raise AssertionError(f"baresip {self.user}: {name} {params} refused: {message}")
        return str(message.get("data", ""))

    async def dial(self, uri: str) -> None:
        await self.command("dial", uri)

    async def accept(self) -> None:
        await self.command("accept")

    async def hangup(self) -> None:
        await self.command("hangup")

    async def wait_event(self, kind: str, limit_s: float = LIMIT_S) -> dict[str, Any]:
        """The first event of type ``kind`` (``CALL_INCOMING``, ``CALL_ESTABLISHED``,
        ``CALL_RTPESTAB``, ``CALL_CLOSED``, ``REGISTER_OK``...) not yet taken by an earlier
        wait. An event that rules it out first (``CALL_CLOSED`` for an established call,
        ``REGISTER_FAIL`` for a registration) fails the test at once."""
        deadline = asyncio.get_running_loop().time() + limit_s
        contrary = _CONTRARY.get(kind, ())
        while True:
            for i, event in enumerate(self._pending):
                if event.get("type") == kind:
                    del self._pending[i]
                    return event
                if event.get("type") in contrary:
                    raise AssertionError(
                        f"baresip {self.user}: {event.get('type')} ({event.get('param')}) "
                        f"instead of {kind}:\n{self.log_tail()}"
                    )
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or self._reader_task is None or self._reader_task.done():
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        seen = [e.get("type") for e in self.events]
        raise AssertionError(
            f"baresip {self.user}: no {kind} event (seen: {seen}):\n{self.log_tail()}"
        )

    # --- audio ---------------------------------------------------------------------

    def received_audio(self) -> array.array[int]:
        """What the phone heard (decoded received frames, gaps not padded), all its calls
        in order; read after the call ended, or while it runs (up to what is written)."""
        dumps = sorted((self.folder / "snd").glob("dump-*-dec.wav"))
        heard: array.array[int] = array.array("h")
        for dump in dumps:
            heard.extend(wav_samples(dump))
        return heard

    async def wait_heard(self, seconds: float) -> array.array[int]:
        """Wait until the phone has heard ``seconds`` of audio (its dump is read every
        50 ms); what it heard so far."""
        wanted = int(seconds * RATE)
        await until(
            lambda: len(self.received_audio()) >= wanted,
            every_s=0.05,
            what=f"baresip {self.user} hearing {seconds:g} s of audio",
        )
        return self.received_audio()
