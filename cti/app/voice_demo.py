"""``cti voice-demo``: the engine on a SIP line with one softphone agent, to call and talk.

The work folder holds everything the run needs and keeps: the phone's password and HA1
file (``cti phone-credentials``'s two files: the password stays the same from run to
run), the configuration used (``voice-demo.toml``: one ``kind = "sip"`` line with the
agent as its registered phone, MD5 digest so that common softphones register), the
store (``cti.db``), the recordings and the log. :func:`running_voice_demo` starts the
engine on an in-memory bus and says, as :class:`Softphone`, what to put in the
softphone and which SIP URI to call; :func:`run_voice_demo` prints that and opens the
agent's desk in the same terminal (as ``cti demo`` does). See docs/voice.md, "Try it".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import platformdirs

from cti.app.commands.broker_config import read_credentials
from cti.app.commands.phone_credentials import (
    CREDENTIALS,
    DEFAULT_REALM,
    HA1_FILE,
    plan_phones,
    write_phone_files,
)
from cti.bus.memory import InMemoryBus
from cti.config import Config, load_config
from cti.engine.running import running_engine
from cti.engine.service import EngineService
from cti.errors import ConfigError
from telephony_adapters.sipline.line import SipLine

CONFIG_FILE = "voice-demo.toml"
#: The user part of the URI callers dial: its flow greets them and offers the menu
#: (another user part reaches the line's queue without them).
DIALLED = "support"
QUEUE = "general"
#: The demo flow's menu (the shipped ``menu_main`` prompt says these keys).
MENU_KEYS = {"1": "queue:sales", "2": "queue:support", "9": f"voicemail:{QUEUE}", "*": "repeat"}
QUEUES = (QUEUE, "sales", "support")


def default_workdir() -> Path:
    return Path(platformdirs.user_data_dir("cti-desk")) / "voice-demo"


@dataclass(frozen=True, slots=True)
class VoiceDemoOptions:
    """Where the demo keeps its files, where its SIP line listens, and the agent."""

    workdir: Path
    host: str = "127.0.0.1"
    port: int = 5060
    agent: str = "1001"


@dataclass(frozen=True, slots=True)
class Softphone:
    """What a person puts in the softphone, and the URI a caller dials."""

    registrar: str
    """``host:port`` of the SIP line (the phone's SIP server, proxy and domain)."""
    user: str
    password: str
    realm: str
    call_uri: str

    def instructions(self) -> str:
        return "\n".join((
            f"Agent {self.user}'s softphone (Linphone, MicroSIP, Zoiper, baresip...), "
            "a SIP account over UDP:",
            f"  registrar  {self.registrar}",
            f"  user       {self.user}",
            f"  password   {self.password}",
            f"  (digest MD5, realm {self.realm}; the account's address is "
            f"sip:{self.user}@{self.registrar})",
            "Then call the center from a second softphone (no account needed, dial directly):",
            f"  call       {self.call_uri}",
            "The caller hears a greeting and a menu (1 sales, 2 support, 9 a message);",
            "then the call rings the agent's phone once the agent is Ready on the desk (r);",
            "answer on the phone (or with a on the desk) and talk.",
        ))  # fmt: skip


def phone_password(options: VoiceDemoOptions) -> str:
    """The agent's password: kept in the work folder's credentials file, made on the
    first run; the HA1 file beside it is written again."""
    known = read_credentials(options.workdir / CREDENTIALS)
    users = plan_phones([options.agent], known)
    write_phone_files(options.workdir, users, DEFAULT_REALM)
    return users[0].password


def config_text(options: VoiceDemoOptions) -> str:
    """The demo's configuration: one SIP line with the agent's phone, the queues of the
    demo flow (greeting, then the menu: 1 sales, 2 support, 9 a message)."""
    work = options.workdir.absolute()
    q = json.dumps
    keys = ", ".join(f"{q(k)} = {q(v)}" for k, v in MENU_KEYS.items())
    return "\n".join((
        "# Written by `cti voice-demo` (written again on every run).",
        *(line for name in QUEUES for line in ("[[queues]]", f"name = {q(name)}", "")),
        "[[agents]]",
        f"id = {q(options.agent)}",
        f"queues = {{ {', '.join(f'{q(name)} = 0.0' for name in QUEUES)} }}",
        "",
        "# What a caller dialling the center hears before an agent (docs/voice.md,",
        '# "Call flows"): the greeting, then the menu; queued, the place in line and the',
        "# offer of a callback every so often.",
        "[[flows]]",
        f"dnis = [{q(DIALLED)}]",
        'language = "en"  # "zh": the Mandarin prompts',
        f"queue = {q(QUEUE)}",
        'menu = "main"',
        "",
        "[[flows.menus]]",
        'name = "main"',
        'prompt = "menu_main"',
        f"keys = {{ {keys} }}",
        "",
        "[caller]",
        "first_announce_s = 15.0",
        "announce_every_s = 30.0",
        "",
        "[[lines]]",
        'kind = "sip"',
        'name = "sip"',
        f"bind_host = {q(options.host)}",
        f"bind_port = {options.port}",
        f"queue = {q(QUEUE)}",
        f"phone_credentials = {q(str(work / HA1_FILE))}",
        "# MD5 only: what common softphones (and those that answer only the first",
        "# challenge) register with.",
        'phone_algorithms = ["MD5"]',
        "",
        "[voice]",
        f"recordings_dir = {q(str(work / 'recordings'))}",
        "",
    ))  # fmt: skip


def write_config(options: VoiceDemoOptions) -> Config:
    """Write the work folder's configuration and load it (ConfigError names a bad value)."""
    options.workdir.mkdir(parents=True, exist_ok=True)
    path = options.workdir / CONFIG_FILE
    path.write_text(config_text(options), "utf-8")
    return load_config(path)


@dataclass(frozen=True, slots=True)
class VoiceDemo:
    """A running voice demo (:func:`running_voice_demo`)."""

    service: EngineService
    bus: InMemoryBus
    line: SipLine
    softphone: Softphone


@contextlib.asynccontextmanager
async def running_voice_demo(options: VoiceDemoOptions) -> AsyncIterator[VoiceDemo]:
    """The engine on the demo's SIP line for the body of the ``async with``."""
    password = phone_password(options)
    config = write_config(options)
    bus = InMemoryBus()
    async with running_engine(config, bus, db_path=options.workdir / "cti.db") as service:
        line = next((x for x in service.lines.values() if isinstance(x, SipLine)), None)
        if line is None:  # pragma: no cover - the configuration written has one
            raise ConfigError("the voice demo's configuration has no SIP line")
        host = line.ua.settings.host
        port = line.local_address[1]
        registrar = f"{host}:{port}"
        phone = Softphone(registrar, options.agent, password, DEFAULT_REALM,
                          f"sip:{DIALLED}@{registrar}")  # fmt: skip
        yield VoiceDemo(service, bus, line, phone)


async def run_voice_demo(options: VoiceDemoOptions, out: TextIO, *, desk: bool) -> None:
    """Start the demo and print the softphone's settings; then the agent's desk (``desk``)
    until it quits, else run until cancelled (Ctrl-C)."""
    async with running_voice_demo(options) as demo:
        print(demo.softphone.instructions(), file=out, flush=True)
        print(f"(files in {options.workdir}; log voice-demo.log)", file=out, flush=True)
        if not desk:
            await asyncio.Event().wait()  # until cancelled
        print("\nPress Enter to open the desk (q there quits).", file=out, flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        from agent_console.desktop import AgentDesktop

        app = AgentDesktop(demo.bus, options.agent, queues=list(QUEUES))
        await app.run_async()
