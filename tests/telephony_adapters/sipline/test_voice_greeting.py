"""A caller greeted by the engine before any agent, on a real SIP line that carries the
voice (the trunk a UDP socket of the test, issue 20): the line answers at the engine's
word, the caller hears the prompt of the plan (the tone of its file, over RTP) and then
the music; its keys in the menu are ``DtmfReceived`` line events; the agent's accept
later answers the call again, a no-op, and the phone is bridged to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.protocol import CallArrived, DtmfReceived, PhoneAnswered
from telephony_adapters.base import CALLER, AudioPlan, Prompt, Ring
from telephony_adapters.media import g711
from telephony_adapters.media.bridge import HearLeg
from telephony_adapters.sipline.params import SipLineParams
from telephony_adapters.sipline.rtp import dtmf_packets, parse_rtp
from telephony_adapters.sipline.sdp import parse_sdp
from tests.audio import tone_power_ratio
from tests.harness import until
from tests.phones import write_tone
from tests.telephony_adapters.sipline.test_voice_restart import (
    TALK,
    Center,
    ack_of,
    answer_of,
    line_of,
    oks,
    peer,
    trunk_invite,
)


@pytest.fixture
async def greeted(tmp_path: Path) -> AsyncIterator[Center]:
    ends = [await peer() for _ in range(4)]
    params = SipLineParams(
        name="sip", bind_host="127.0.0.1", bind_port=0, rtp_port_min=33000,
        rtp_port_max=33998, keepalive_s=0, recordings_dir=str(tmp_path / "rec"),
        phones={"1001": f"sip:1001@127.0.0.1:{ends[2].port}"},
    )  # fmt: skip
    try:
        trunk, trunk_rtp, phone, phone_rtp = ends
        yield Center(trunk, trunk_rtp, phone, phone_rtp, params, tmp_path / "cti.journal.db")
    finally:
        for end in ends:
            assert end.transport is not None
            end.transport.close()


def heard(center: Center) -> list[int]:
    """The caller's audio so far (PCMU payloads from the line), as samples."""
    audio = [parse_rtp(d) for d in center.trunk_rtp.got]
    pcm = b"".join(g711.ulaw_to_linear(p.payload) for p in audio if p.payload_type == 0)
    return list(g711.samples(pcm))


def frames_of(samples: list[int], freq: float) -> list[bool]:
    """Per 20 ms frame: whether ``freq`` is most of it."""
    return [tone_power_ratio(samples[i : i + 160], freq) > 0.8
            for i in range(0, len(samples) - 159, 160)]  # fmt: skip


async def test_the_engine_answers_for_the_greeting_and_the_agent_joins_later(
    greeted: Center, tmp_path: Path
) -> None:
    center = greeted
    greeting = tmp_path / "greeting.wav"
    write_tone(greeting, 1000, 0.4)
    async with line_of(center) as line:
        sip = line.local_address[1]
        center.trunk.send(trunk_invite(center.trunk.port, center.trunk_rtp.port), sip)
        await until(lambda: any(isinstance(e, CallArrived) for e in center.events))
        call_id = next(e.call_id for e in center.events if isinstance(e, CallArrived))
        await line.answer(call_id)  # the engine's greeting, before any agent
        await until(lambda: bool(oks(center.trunk)))
        ok = oks(center.trunk)[0]
        center.trunk.send(ack_of(ok, center.trunk.port, "z9hG4bKack1"), sip)
        port = parse_sdp(ok.body).media[0].port
        menu = AudioPlan(music=frozenset({CALLER}), prompt=Prompt(1, (str(greeting),)))
        await line.plan_audio(call_id, menu)
        # The greeting's tone (0.4 s: 20 frames), then the music (10 frames of it).
        await until(lambda: sum(frames_of(heard(center), 1000)) >= 18)
        start = frames_of(heard(center), 1000).index(True)
        await until(lambda: len(heard(center)) >= (start + 31) * 160)
        samples = heard(center)
        tones = frames_of(samples, 1000)
        assert all(tones[start + 1 : start + 19])  # the prompt as its file says, unbroken
        after = samples[(start + 21) * 160 : (start + 31) * 160]
        assert max(abs(s) for s in after) > 500  # then the music, not silence
        assert tone_power_ratio(after, 1000) < 0.1
        for data in dtmf_packets("2", payload_type=101, ssrc=77, sequence=1, timestamp=160):
            center.trunk_rtp.send(data, port)
        await until(lambda: any(isinstance(e, DtmfReceived) for e in center.events))
        assert [e for e in center.events if isinstance(e, DtmfReceived)] == [
            DtmfReceived(call_id=call_id, key="2", line="sip")
        ]
        # An agent accepts: the phone rings, answers, and the call is answered again.
        await line.plan_audio(call_id, AudioPlan(ring=(Ring("1001", "Li 139"),),
                                                 music=frozenset({CALLER})))  # fmt: skip
        await until(lambda: bool(center.phone.requests("INVITE")))
        [ring] = center.phone.requests("INVITE")
        center.phone.send(answer_of(ring, center.phone.port, center.phone_rtp.port), sip)
        await until(lambda: any(isinstance(e, PhoneAnswered) for e in center.events))
        await line.answer(call_id)  # the accept: a no-op, not an error
        await line.plan_audio(call_id, TALK)
        voice = line._voice
        assert voice is not None
        assert voice.relay.core.source_of(call_id) == HearLeg(f"{call_id}~1001")
        assert len({r.headers.get("CSeq") for r in oks(center.trunk)}) == 1  # one answer
        assert line.ua.call_state(call_id) == "confirmed"
