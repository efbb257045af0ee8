"""``cti voice-demo`` (marker ``media``): a softphone set up with exactly what the demo
prints registers to its SIP line, the agent goes Ready, and a caller dialling the
printed URI hears the demo flow's greeting and menu, presses 2 and talks with the agent
(each hears the other's tone)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cti.app.voice_demo import VoiceDemo, VoiceDemoOptions, running_voice_demo
from cti.protocol import Login, SetReady
from tests.audio import tone_power_ratio
from tests.cti.test_voice_room import do
from tests.harness import Center, until
from tests.media.center import heard_next
from tests.media.test_caller_flows import clip, heard
from tests.phones import Baresip, Registration

pytestmark = pytest.mark.media

CALLER_HZ = 1000.0
AGENT_HZ = 2000.0


def printed(text: str) -> dict[str, str]:
    """The ``name  value`` lines of the demo's instructions."""
    return dict(re.findall(r"^  (registrar|user|password|call) +(\S+)$", text, re.MULTILINE))


def center(demo: VoiceDemo) -> Center:
    return Center(demo.service, demo.bus, demo.service.directory, [demo.line])


async def test_a_softphone_set_up_as_printed_registers_and_talks(tmp_path: Path) -> None:
    options = VoiceDemoOptions(tmp_path / "work", port=0)
    async with running_voice_demo(options) as demo:
        said = printed(demo.softphone.instructions())
        assert said.keys() == {"registrar", "user", "password", "call"}
        host, _, port = said["registrar"].rpartition(":")
        assert (host, int(port)) == demo.line.local_address
        account = Registration(host, int(port), said["user"], said["password"])
        async with (
            Baresip(tmp_path, user=said["user"], tone_hz=AGENT_HZ, register=account) as agent,
            Baresip(tmp_path, user="caller", tone_hz=CALLER_HZ) as caller,
        ):
            await agent.wait_event("REGISTER_OK")
            c = center(demo)
            await until(lambda: demo.service.voice.reachable.get(said["user"]) is True)
            assert (await do(c, Login(agent_id=said["user"]))).ok
            assert (await do(c, SetReady(agent_id=said["user"]))).ok
            await caller.dial(said["call"])
            await caller.wait_event("CALL_ESTABLISHED")  # answered by the demo flow
            await heard(caller, [clip("en", "greeting"), clip("en", "menu_main", 1.0)],
                        "the greeting and the menu")  # fmt: skip
            await caller.command("sndcode", "2")  # support
            await agent.wait_event("CALL_INCOMING")
            await agent.accept()
            await agent.wait_event("CALL_ESTABLISHED")
            caller_heard = await heard_next(caller)  # a second, once the agent is on
            agent_heard = await heard_next(agent)
            await caller.hangup()
            await agent.wait_event("CALL_CLOSED")
    assert tone_power_ratio(caller_heard, AGENT_HZ) > 0.8
    assert tone_power_ratio(agent_heard, CALLER_HZ) > 0.8


async def test_a_wrong_password_is_refused(tmp_path: Path) -> None:
    options = VoiceDemoOptions(tmp_path / "work", port=0)
    async with running_voice_demo(options) as demo:
        host, port = demo.line.local_address
        account = Registration(host, port, demo.softphone.user, demo.softphone.password + "x")
        async with Baresip(tmp_path, user=demo.softphone.user, register=account) as agent:
            await agent.wait_event("REGISTER_FAIL")
        assert demo.service.voice.reachable.get(demo.softphone.user) is not True
