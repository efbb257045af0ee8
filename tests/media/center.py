"""The set-up the voice media tests share: the engine on one SIP line with agent phones,
baresip agents registered to it, a caller dialling it, and what each side heard.

Not a test module: ``tests/media/test_voice*.py`` import it.
"""

from __future__ import annotations

import math
import wave
from array import array
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from cti.models import AgentConfig
from cti.protocol import Login, SetReady
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.phone_auth import ha1
from tests.audio import tone_power_ratio
from tests.cti.test_voice_room import do
from tests.harness import Center, center_config, engine_center, until
from tests.phones import Baresip, Registration

CALLER_HZ = 1000.0
AGENT_HZ = 2000.0
SECOND_AGENT_HZ = 1500.0
REALM = "cti-desk"
PASSWORD = "agent-pw-1"
SECOND = 8000
"""Samples in one second at 8 kHz."""


class Phone(Baresip):
    """A baresip phone that may be held to some codecs (``codecs``: baresip 1.0's
    account parameter ``audio_codecs``, e.g. ``"PCMA"``)."""

    def __init__(self, workdir: Path, *, codecs: str = "", **kw: Any) -> None:
        super().__init__(workdir, **kw)
        self.codecs = codecs

    def _account(self) -> str:
        account = super()._account()
        return f"{account};audio_codecs={self.codecs}" if self.codecs else account


@asynccontextmanager
async def voice_center(
    tmp_path: Path, agents: Sequence[str], *, persistent: Sequence[str] = (),
    queues: Sequence[str] = ("general",), params: Mapping[str, Any] | None = None,
    **sections: Any,
) -> AsyncIterator[Center]:  # fmt: skip
    """The engine with one SIP line whose phones are ``agents``, every call recorded
    (MD5 digest: baresip 1.0 answers only the first challenge); ``persistent``: agents
    with ``phone_mode = "persistent"``; the agents are in every one of ``queues``;
    ``params``: more of the line's parameters (``transports``, ``srtp``...);
    ``sections``: more of the configuration (``flows=[...]``, ``caller={...}``)."""
    line = SipLine(
        SipLineParams(
            name="sip",
            bind_host="127.0.0.1",
            bind_port=0,
            phone_realm=REALM,
            phone_ha1={a: {"MD5": ha1(a, REALM, PASSWORD, "MD5")} for a in agents},
            phone_algorithms=("MD5",),
            phone_qualify_s=0,
            recordings_dir=str(tmp_path / "recordings"),
            **(params or {}),
        )
    )
    config = center_config([{"name": q} for q in queues], voice={"record": "all"}, **sections)
    configs = [AgentConfig(id=a, queues=dict.fromkeys(queues, 0.0),
                           phone_mode="persistent" if a in persistent else "ring")
               for a in agents]  # fmt: skip
    async with engine_center(tmp_path / "cti.db", config=config, agents=configs,
                             lines=[line]) as c:  # fmt: skip
        yield c


def sip_line(c: Center) -> SipLine:
    line = c.lines[0]
    assert isinstance(line, SipLine)
    return line


@asynccontextmanager
async def agent_phone(
    c: Center, tmp_path: Path, agent: str, tone_hz: float, *, auto_answer: bool = False,
    codecs: str = "", transport: str = "udp", make: Callable[..., Phone] = Phone,
) -> AsyncIterator[Phone]:  # fmt: skip
    """The agent's baresip, registered to the line (at its ``transport``'s address), the
    agent logged in and Ready; ``make``: the phone's class (or a partial of it)."""
    host, port = sip_line(c).address(transport)
    account = Registration(host, port, agent, PASSWORD)
    phone = make(tmp_path, user=agent, tone_hz=tone_hz, register=account,
                 auto_answer=auto_answer, codecs=codecs)  # fmt: skip
    async with phone:
        await phone.wait_event("REGISTER_OK")
        await until(lambda: c.service.voice.reachable.get(agent) is True)
        assert (await do(c, Login(agent_id=agent))).ok
        assert (await do(c, SetReady(agent_id=agent))).ok
        yield phone


async def call_in(c: Center, caller: Baresip, number: str = "800", transport: str = "udp") -> None:
    """The caller dials the line (``number``: the user part, the dialled number) at its
    ``transport``'s address."""
    host, port = sip_line(c).address(transport)
    named = "" if transport == "udp" else f";transport={transport}"
    await caller.dial(f"sip:{number}@{host}:{port}{named}")


async def answered_call(c: Center, caller: Baresip, agent: Baresip, transport: str = "udp") -> str:
    """The caller dials (over ``transport``), the agent's phone rings and is answered on
    the phone: the call's id once the caller is connected."""
    await call_in(c, caller, transport=transport)
    await agent.wait_event("CALL_INCOMING")
    await agent.accept()
    await caller.wait_event("CALL_ESTABLISHED")
    call_id = c.service.router.agent(agent.user).call_id
    assert call_id is not None
    return call_id


def last_second(samples: array[int]) -> list[int]:
    return list(samples[-SECOND:])


async def heard_next(phone: Baresip, seconds: float = 1.0) -> list[int]:
    """What the phone hears from now on: ``seconds`` of it, after half a second to let
    the change reach it."""
    start = len(phone.received_audio()) + SECOND // 2
    heard = await phone.wait_heard((start + seconds * SECOND) / SECOND)
    return list(heard[start : start + int(seconds * SECOND)])


def rms(samples: list[int]) -> float:
    return math.sqrt(sum(x * x for x in samples) / max(1, len(samples)))


def is_music(samples: list[int], *tones_hz: float) -> bool:
    """Loud enough, spread over the band (no 50 Hz bin holds half of it), and none of
    ``tones_hz`` (the parties' tones) in it."""
    return (
        rms(samples) > 1000
        and all(tone_power_ratio(samples, f) < 0.05 for f in tones_hz)
        and max(tone_power_ratio(samples, f) for f in range(100, 3950, 50)) < 0.5
    )


def stereo(path: Path) -> tuple[list[int], list[int]]:
    """The left and right channels of a 16-bit stereo WAV."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        frames = array("h", wav.readframes(wav.getnframes()))
    return list(frames[0::2]), list(frames[1::2])


def finished_recording(root: Path) -> Path | None:
    """The one recording under ``root`` once closed (its header has the final size)."""
    found = sorted(root.glob("*/*.wav"))
    if len(found) != 1:
        return None
    try:
        with wave.open(str(found[0]), "rb") as wav:
            return found[0] if wav.getnframes() > 0 else None
    except (EOFError, wave.Error):
        return None
