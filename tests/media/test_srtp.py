"""SRTP with real phones (marker ``media``): baresip with its ``srtp`` module (SDES keys,
RFC 4568) over TLS, as an agent's phone and as the far end of a trunk calling the line.
Each side hears the other's tone (Goertzel), and the relay's counters show the secure
leg's packets were SRTP that authenticated with the keys agreed (plain RTP there would
fail authentication and be dropped as garbage), while the other leg stays plain RTP, or
is SRTP too with keys of its own. A line without phones (no relay) keys its own stream.
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from cti.protocol import CallArrived
from telephony_adapters.media.relay import MediaRelay
from telephony_adapters.media.srtp import SrtpLeg
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.useragent import leg_id
from tests.audio import tone_power_ratio
from tests.harness import LIMIT_S, until
from tests.media.center import (
    AGENT_HZ,
    CALLER_HZ,
    Phone,
    agent_phone,
    answered_call,
    heard_next,
    last_second,
    rms,
    sip_line,
    voice_center,
)
from tests.phones import Baresip
from tests.telephony_adapters.sipline.certs import make_pki, tls_params

pytestmark = pytest.mark.media

SECONDS = 2.0
"""Audio each side hears before the checks: 100 packets of 20 ms."""


class SrtpPhone(Phone):
    """A baresip with the ``srtp`` module, trusting the test CA for TLS, its account
    with ``mediaenc`` (``srtp``: RTP/AVP with crypto, best effort; ``srtp-mand``:
    RTP/SAVP) and registered over TLS when it registers."""

    def __init__(self, workdir: Path, *, ca: Path, mediaenc: str, **kw: Any) -> None:
        super().__init__(workdir, **kw)
        self.ca = ca
        self.mediaenc = mediaenc

    def _write_config(self) -> None:
        super()._write_config()
        config = self.folder / "config"
        text = config.read_text().replace("module\t\t\tg711.so\n",
                                          "module\t\t\tg711.so\nmodule\t\t\tsrtp.so\n")  # fmt: skip
        config.write_text(f"{text}sip_cafile\t\t{self.ca}\n")

    def _account(self) -> str:
        account = super()._account()
        if self.register is not None:
            account = account.replace(">", ";transport=tls>", 1)
        return f"{account};mediaenc={self.mediaenc}"


def relay_of(c: Any) -> MediaRelay:
    voice = sip_line(c)._voice
    assert voice is not None
    return voice.relay


def heard_both_ways(caller_heard: list[int], agent_heard: list[int]) -> None:
    assert tone_power_ratio(caller_heard, AGENT_HZ) > 0.8
    assert tone_power_ratio(caller_heard, CALLER_HZ) < 0.05
    assert tone_power_ratio(agent_heard, CALLER_HZ) > 0.8
    assert tone_power_ratio(agent_heard, AGENT_HZ) < 0.05


def authenticated(srtp: SrtpLeg | None) -> None:
    """The leg's packets, both ways, went through SRTP, none refused."""
    assert srtp is not None
    assert srtp.unprotected >= SECONDS * 50 * 0.8, srtp.unprotected
    assert srtp.protected >= SECONDS * 50 * 0.8, srtp.protected
    assert srtp.garbage == 0


async def test_an_agent_phone_with_srtp_over_tls_talks_to_a_plain_caller(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path / "pki")
    secure = partial(SrtpPhone, ca=pki.ca, mediaenc="srtp-mand")
    async with (
        voice_center(tmp_path, ["1001"], params=tls_params(pki, phone_srtp="require")) as c,
        agent_phone(c, tmp_path, "1001", AGENT_HZ, transport="tls", make=secure) as agent,
        Baresip(tmp_path, user="caller", tone_hz=CALLER_HZ) as caller,
    ):
        call_id = await answered_call(c, caller, agent)
        relay = relay_of(c)
        srtp = relay.srtp_of(leg_id(call_id, "1001"))
        assert srtp is not None
        assert srtp.suite == "AES_CM_128_HMAC_SHA1_80"
        assert relay.srtp_of(call_id) is None  # the caller's leg is plain RTP
        caller_heard = last_second(await caller.wait_heard(SECONDS))
        agent_heard = last_second(await agent.wait_heard(SECONDS))
        authenticated(srtp)
        await caller.hangup()
        await agent.wait_event("CALL_CLOSED")
    heard_both_ways(caller_heard, agent_heard)


@pytest.mark.parametrize(
    ("srtp", "mediaenc", "phone_srtp"),
    [("require", "srtp-mand", "off"), ("offer", "srtp", "off"),
     ("require", "srtp-mand", "require")],
    ids=["required", "offered", "both-legs"],
)  # fmt: skip
async def test_a_trunk_far_end_calling_over_tls_with_srtp_talks_to_an_agent(
    tmp_path: Path, srtp: str, mediaenc: str, phone_srtp: str
) -> None:
    """The agent's phone is plain over UDP, or (``phone_srtp``) SRTP over TLS itself:
    then both legs are SRTP at once, each with keys of its own."""
    pki = make_pki(tmp_path / "pki")
    secure = phone_srtp != "off"
    make = partial(SrtpPhone, ca=pki.ca, mediaenc="srtp-mand") if secure else Phone
    params = tls_params(pki, srtp=srtp, phone_srtp=phone_srtp)
    async with (
        voice_center(tmp_path, ["1001"], params=params) as c,
        agent_phone(c, tmp_path, "1001", AGENT_HZ, transport="tls" if secure else "udp",
                    make=make) as agent,
        SrtpPhone(tmp_path, user="caller", tone_hz=CALLER_HZ, ca=pki.ca,
                  mediaenc=mediaenc) as caller,
    ):  # fmt: skip
        call_id = await answered_call(c, caller, agent, transport="tls")
        relay = relay_of(c)
        keyed = relay.srtp_of(call_id)
        phone_leg = relay.srtp_of(leg_id(call_id, "1001"))
        assert keyed is not None
        assert (phone_leg is not None) == secure  # a plain phone's leg stays plain
        if phone_leg is not None:
            assert phone_leg.send_key not in (keyed.send_key, keyed.recv_key)
        caller_heard = last_second(await caller.wait_heard(SECONDS))
        agent_heard = last_second(await agent.wait_heard(SECONDS))
        authenticated(keyed)
        if secure:
            authenticated(phone_leg)
        await caller.hangup()
        await agent.wait_event("CALL_CLOSED")
        await until(lambda: relay.srtp_of(call_id) is None, what="the caller's leg closed")
    heard_both_ways(caller_heard, agent_heard)


async def test_a_trunk_far_end_with_srtp_over_tls_calls_a_line_without_phones(
    tmp_path: Path,
) -> None:
    """A line without phones answers on its own RTP stream (silence out, DTMF in, no
    relay): that stream is SRTP too. The caller decodes only packets that authenticate,
    so hearing two seconds of the line's silence means they did; its key press arrives
    through the line's SRTP."""
    pki = make_pki(tmp_path / "pki")
    line = SipLine(SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0,
                                 **tls_params(pki, srtp="require")))  # fmt: skip
    await line.start()
    try:
        async with SrtpPhone(tmp_path, user="caller", tone_hz=CALLER_HZ, ca=pki.ca,
                             mediaenc="srtp-mand") as caller:  # fmt: skip
            host, port = line.address("tls")
            await caller.dial(f"sip:800@{host}:{port};transport=tls")
            arrived = await asyncio.wait_for(anext(aiter(line.events())), LIMIT_S)
            assert isinstance(arrived, CallArrived)
            await line.answer(arrived.call_id)
            await caller.wait_event("CALL_ESTABLISHED")
            srtp = line.srtp_of(arrived.call_id)
            assert srtp is not None
            heard = last_second(await caller.wait_heard(SECONDS))
            await caller.command("sndcode", "5")
            await until(lambda: (arrived.call_id, "5") in line.dtmf, what="the key, decrypted")
            authenticated(srtp)
            await caller.hangup()
            await until(lambda: line.srtp_of(arrived.call_id) is None, what="the stream closed")
    finally:
        await line.stop()
    assert rms(heard) < 50  # the line's G.711 silence, decoded


async def test_a_trunk_caller_holding_and_resuming_an_srtp_call_keeps_the_audio(
    tmp_path: Path,
) -> None:
    """baresip's ``hold`` and ``resume``: re-INVITEs over TLS with crypto (sendonly, then
    sendrecv). The caller's leg stays SRTP (its keys kept or taken anew, never plain),
    nothing fails authentication, the relay goes on protecting what the caller is sent,
    and after the resume the agent hears the caller again. (What the caller hears after
    its own resume is not checked: baresip 1.0 writes no more of it to its dump after a
    hold, with plain RTP too.)"""
    pki = make_pki(tmp_path / "pki")
    async with (
        voice_center(tmp_path, ["1001"], params=tls_params(pki, srtp="require")) as c,
        agent_phone(c, tmp_path, "1001", AGENT_HZ) as agent,
        SrtpPhone(tmp_path, user="caller", tone_hz=CALLER_HZ, ca=pki.ca,
                  mediaenc="srtp-mand") as caller,
    ):  # fmt: skip
        call_id = await answered_call(c, caller, agent, transport="tls")
        relay, ua = relay_of(c), sip_line(c).ua

        def direction() -> str:
            plan = ua.calls[call_id].plan
            return "" if plan is None else plan.direction

        await agent.wait_heard(SECONDS)
        await caller.command("hold")
        await until(lambda: direction() == "recvonly", what="the caller's hold taken")
        await caller.command("resume")
        await until(lambda: direction() == "sendrecv", what="the caller's resume taken")
        srtp = relay.srtp_of(call_id)
        assert srtp is not None
        received, sent = srtp.unprotected, srtp.protected
        agent_heard = await heard_next(agent, 1.0)
        assert srtp.unprotected >= received + 40  # the caller's audio after the resume
        assert srtp.protected >= sent + 40
        assert srtp.garbage == 0
        await caller.hangup()
        await agent.wait_event("CALL_CLOSED")
    assert tone_power_ratio(agent_heard, CALLER_HZ) > 0.8
