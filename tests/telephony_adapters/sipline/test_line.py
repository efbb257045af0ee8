"""SipLine over real UDP on 127.0.0.1: built from config, survives garbage, answers OPTIONS."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import socket
from typing import Any

import pytest

from cti.config import SipLineSettings, VoiceSettings
from cti.engine.lines import build_line
from cti.errors import TelephonyError
from telephony_adapters.sipline.line import SipLine
from telephony_adapters.sipline.message import Response, parse
from telephony_adapters.sipline.params import SipLineParams


def settings(**kw: Any) -> SipLineParams:
    return dataclasses.replace(SipLineParams(name="sip", bind_host="127.0.0.1", bind_port=0), **kw)


def test_build_line_makes_a_sip_line_with_its_capabilities() -> None:
    line = build_line(SipLineSettings(name="sip", bind_host="127.0.0.1", bind_port=0))
    assert isinstance(line, SipLine)
    assert line.name == "sip"
    assert line.capabilities.can_dial
    assert line.capabilities.can_hold
    assert line.capabilities.can_transfer


def test_build_line_hands_the_sip_line_every_setting_of_its_table() -> None:
    config = SipLineSettings(
        name="trunk",
        bind_host="10.0.0.5",
        bind_port=5070,
        public_host="203.0.113.9",
        queue="general",
        registrar="pbx.example",
        username="cti",
        password="pw",
        register_expires_s=600,
        outbound_proxy="proxy.example:5080",
        codecs=("pcma",),
        rtp_port_min=12000,
        rtp_port_max=12100,
        keepalive_s=15,
    )
    line = build_line(config)
    assert isinstance(line, SipLine)
    # Every setting of the table but those the engine keeps (kind, queue) reaches the line;
    # the phones' HA1 file is read by the factory (its realm and hashes reach the line).
    read = {"phone_realm", "phone_ha1", "phones"}
    voice = {"hold_music", "recordings_dir", "recording_format", "phone_silence_s",
             "announce_recording"}  # fmt: skip
    wanted = {f.name for f in dataclasses.fields(SipLineParams)} - read - voice
    assert wanted == set(SipLineSettings.model_fields) - {"kind", "queue", "phone_credentials"}
    given = dataclasses.asdict(line.settings)
    assert {name: given[name] for name in wanted} == {n: getattr(config, n) for n in wanted}
    assert line.settings.codecs == ("PCMA",)
    # The [voice] settings the line carries the voice with come from that section.
    section = VoiceSettings(hold_music="/m.wav", recordings_dir="/rec", recording_format="g711",
                            phone_silence_s=12, announce_recording="/a.wav")  # fmt: skip
    line = build_line(config, voice=section)
    assert isinstance(line, SipLine)
    assert {name: getattr(line.settings, name) for name in voice} == {
        n: getattr(section, n) for n in voice
    }


async def test_garbage_never_stops_the_line_and_options_are_still_answered() -> None:
    line = SipLine(settings())
    await line.start()
    try:
        rng = random.Random(3)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind(("127.0.0.1", 0))
            peer.setblocking(False)
            for batch in range(30):  # paced: a burst would overflow the socket's buffer
                for _ in range(10):
                    peer.sendto(rng.randbytes(rng.randrange(1, 1200)), line.local_address)
                expected = 10 * (batch + 1)
                await line.wait_for(lambda: line.ua.dropped >= expected)  # noqa: B023
            peer.sendto(b"OPTIONS sip:x SIP/2.0\r\nVia: junk\r\n\r\n", line.local_address)
            port = peer.getsockname()[1]
            options = (
                f"OPTIONS sip:sip@127.0.0.1 SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKopt1;rport\r\n"
                f"From: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:sip@127.0.0.1>\r\n"
                f"Call-ID: opt-1\r\nCSeq: 7 OPTIONS\r\nMax-Forwards: 70\r\n"
                f"Content-Length: 0\r\n\r\n"
            ).encode()
            peer.sendto(options, line.local_address)
            loop = asyncio.get_running_loop()
            replies = []
            async with asyncio.timeout(10):
                while True:
                    data = await loop.sock_recv(peer, 65535)
                    msg = parse(data)
                    replies.append(msg)
                    if isinstance(msg, Response) and msg.call_id == "opt-1":
                        break
        ok = replies[-1]
        assert isinstance(ok, Response)
        assert ok.status == 200
        assert ok.cseq == (7, "OPTIONS")
        assert "INVITE" in (ok.headers.get("Allow") or "")
        assert ok.top_via.params.get("rport") == str(port)  # answered to the source port
        assert line.ua.dropped >= 300
        assert all(isinstance(r, Response) and r.status == 400 for r in replies[:-1])
    finally:
        await line.stop()
    await line.stop()  # safe twice


async def test_requests_for_calls_the_line_does_not_have_raise_telephony_error() -> None:
    line = SipLine(settings())
    await line.start()
    try:
        with pytest.raises(TelephonyError, match="not live"):
            await line.answer("sip-9")
        with pytest.raises(TelephonyError, match="no live call"):
            await line.hang_up("sip-9")
        with pytest.raises(TelephonyError, match="no registrar or outbound proxy"):
            await line.dial("13812345678")
        assert len(line._media or []) == 0  # the port opened for the failed dial was closed
        assert await line.adopt(["sip-1"]) == []
    finally:
        await line.stop()


async def test_a_port_in_use_is_a_telephony_error_naming_it() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        line = SipLine(settings(bind_port=port))
        with pytest.raises(TelephonyError, match=f"127.0.0.1:{port}"):
            await line.start()
