"""The engine's voice room on a line that carries the voice (virtual time).

The line here is the simulator trunk told it carries the voice: it keeps every audio
plan the engine sends and lets the test play the agents' phones (answer, refuse, hang
up, reachable or not). What is checked is the engine's side: the plan follows the
router (ring, bridge, music while held, consultation, conference, mute, recording),
and the phones' events act as the desk's commands would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from cti import topics
from cti.models import AgentConfig, AgentState
from cti.protocol import (
    AcceptOffer,
    AnyCommand,
    CommandResult,
    CompleteWrapUp,
    ConferenceCall,
    ConsultCall,
    HangUp,
    HoldCall,
    Login,
    Logout,
    MuteCall,
    PhoneAnswered,
    PhoneDisconnected,
    PhoneHungUp,
    PhoneReachability,
    PhoneRefused,
    ResumeCall,
    SetNotReady,
    SetReady,
    TransferCall,
    answer,
)
from queue_engine.router import CallPhase
from telephony_adapters.base import CALLER, AudioPlan, LineEvent
from telephony_adapters.sim import FULL_CONTROL, SimTrunk
from tests.harness import Center, center_config, engine_center, until, virtual

VOICE = dataclasses.replace(FULL_CONTROL, carries_voice=True)


class VoiceTrunk(SimTrunk):
    """The simulator trunk as a line that carries the voice: it keeps the plans, and the
    standing connections asked for (a plan ringing one of those agents is answered at
    once, as the SIP line does)."""

    def __init__(self) -> None:
        super().__init__(capabilities=VOICE)
        self.plans: dict[str, list[AudioPlan]] = {}
        self.kept: list[tuple[str, bool]] = []
        """(agent, keep) of every keep_phone call, in order."""
        self.standing: set[str] = set()

    async def plan_audio(self, call_id: str, plan: AudioPlan) -> None:
        self.plans.setdefault(call_id, []).append(plan)
        for ring in plan.ring:
            if ring.agent_id in self.standing and not ring.auto_answer:
                self.phone(PhoneAnswered(call_id=call_id, agent_id=ring.agent_id))

    async def keep_phone(self, agent_id: str, keep: bool) -> None:
        self.kept.append((agent_id, keep))
        (self.standing.add if keep else self.standing.discard)(agent_id)

    def plan(self, call_id: str) -> AudioPlan:
        return self.plans.get(call_id, [AudioPlan()])[-1]

    def phone(self, event: LineEvent) -> None:
        self._events.put_nowait(event)


@asynccontextmanager
async def voice_center(
    tmp_path: Path,
    agents: tuple[str, ...] = ("1001",),
    trunk: VoiceTrunk | None = None,
    persistent: frozenset[str] = frozenset(),
) -> AsyncIterator[tuple[Center, VoiceTrunk]]:
    trunk = trunk or VoiceTrunk()
    config = center_config(voice={"record": "all", "recordings_dir": str(tmp_path / "rec")})
    configs = [AgentConfig(id=a, queues={"general": 0.0},
                           phone_mode="persistent" if a in persistent else "ring")
               for a in agents]  # fmt: skip
    async with engine_center(tmp_path / "cti.db", config=config, agents=configs,
                             lines=[trunk]) as c:  # fmt: skip
        yield c, trunk


async def do(c: Center, command: AnyCommand) -> CommandResult:
    """Send an agent's command and wait for the engine's answer (its result, or the event
    that answers it: :func:`cti.protocol.answer`)."""
    async with c.bus.subscribe(topics.agent_events(command.agent_id)) as sub:
        await c.send(command)
        async for _topic, message in sub:
            result = answer(message)
            if result is not None and result.command_id == command.command_id:
                return result
    raise AssertionError("no answer")  # pragma: no cover


async def reachable(c: Center, trunk: VoiceTrunk, agent: str) -> None:
    trunk.phone(PhoneReachability(agent_id=agent, reachable=True, contact="sip:x@127.0.0.1"))
    await until(lambda: c.service.voice.reachable.get(agent) is True)


async def ready(c: Center, trunk: VoiceTrunk, agent: str) -> None:
    assert (await do(c, Login(agent_id=agent))).ok
    await reachable(c, trunk, agent)
    assert (await do(c, SetReady(agent_id=agent))).ok


def talking(trunk: VoiceTrunk, call_id: str, *agents: str) -> bool:
    return trunk.plan(call_id).rooms == (frozenset({CALLER, *agents}),)


async def answered(c: Center, trunk: VoiceTrunk, agent: str = "1001") -> str:
    """``agent`` goes Ready, a call rings its phone and the phone answers: the call id,
    once caller and agent are in one room."""
    await ready(c, trunk, agent)
    call_id = trunk.ring("13812345678")
    await until(lambda: bool(trunk.plan(call_id).ring))
    trunk.phone(PhoneAnswered(call_id=call_id, agent_id=agent))
    await until(lambda: talking(trunk, call_id, agent))
    return call_id


def test_ready_needs_a_reachable_phone_and_the_state_says_whether_it_is(tmp_path: Path) -> None:
    async def body() -> None:
        async with voice_center(tmp_path) as (c, trunk):
            assert (await do(c, Login(agent_id="1001"))).ok
            refused = await do(c, SetReady(agent_id="1001"))
            assert not refused.ok
            assert "phone is not reachable" in refused.error
            assert c.service.views.state("1001", 0, 0).phone_reachable is False
            await reachable(c, trunk, "1001")
            assert c.service.views.state("1001", 0, 0).phone_reachable is True
            assert (await do(c, SetReady(agent_id="1001"))).ok
            # The phone goes away while Ready: no call may be offered to it.
            trunk.phone(PhoneReachability(agent_id="1001", reachable=False))
            await until(lambda: c.service.router.agent("1001").state is AgentState.NOT_READY)
            assert c.service.router.agent("1001").reason == "phone unreachable"

    virtual(body)


def test_the_offer_rings_the_phone_and_its_answer_bridges_and_records(tmp_path: Path) -> None:
    async def body() -> None:
        async with voice_center(tmp_path) as (c, trunk):
            await ready(c, trunk, "1001")
            call_id = trunk.ring("13812345678")
            await until(lambda: bool(trunk.plan(call_id).ring))
            ring = trunk.plan(call_id).ring[0]
            assert ring.agent_id == "1001"
            assert "+8613812345678" in ring.display
            assert not ring.auto_answer
            trunk.phone(PhoneAnswered(call_id=call_id, agent_id="1001"))
            await until(lambda: talking(trunk, call_id, "1001"))
            plan = trunk.plan(call_id)
            assert plan.ring == ()
            assert plan.record
            assert not plan.music
            assert plan.agents() == {"1001"}

    virtual(body)


def test_hold_plays_music_and_mute_keeps_the_agent_from_the_caller(tmp_path: Path) -> None:
    async def body() -> None:
        async with voice_center(tmp_path) as (c, trunk):
            call_id = await answered(c, trunk)
            assert (await do(c, HoldCall(agent_id="1001", call_id=call_id))).ok
            await until(lambda: trunk.plan(call_id).music == {CALLER})
            assert trunk.plan(call_id).rooms == (frozenset({"1001"}),)  # keeps its leg
            assert (await do(c, ResumeCall(agent_id="1001", call_id=call_id))).ok
            await until(lambda: talking(trunk, call_id, "1001"))
            assert (await do(c, MuteCall(agent_id="1001", call_id=call_id, muted=True))).ok
            await until(lambda: trunk.plan(call_id).muted == {"1001"})

    virtual(body)


def test_a_consultation_then_a_conference_move_the_rooms(tmp_path: Path) -> None:
    async def body() -> None:
        async with voice_center(tmp_path, ("1001", "1002")) as (c, trunk):
            call_id = await answered(c, trunk)
            await ready(c, trunk, "1002")
            consult = ConsultCall(agent_id="1001", call_id=call_id, to_agent="1002")
            assert (await do(c, consult)).ok
            await until(lambda: [r.agent_id for r in trunk.plan(call_id).ring] == ["1002"])
            assert trunk.plan(call_id).music == {CALLER}  # the caller waits with music
            trunk.phone(PhoneAnswered(call_id=call_id, agent_id="1002"))
            await until(lambda: trunk.plan(call_id).rooms == (frozenset({"1001", "1002"}),))
            assert trunk.plan(call_id).music == {CALLER}
            assert (await do(c, ConferenceCall(agent_id="1001", call_id=call_id))).ok
            await until(lambda: talking(trunk, call_id, "1001", "1002"))
            assert trunk.plan(call_id).music == frozenset()

    virtual(body)


def test_a_phone_that_refuses_rejects_and_one_that_hangs_up_ends_the_call(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with voice_center(tmp_path) as (c, trunk):
            await ready(c, trunk, "1001")
            call_id = trunk.ring("13812345678")
            await until(lambda: bool(trunk.plan(call_id).ring))
            trunk.phone(PhoneRefused(call_id=call_id, agent_id="1001", reason="486 Busy Here"))
            # A rejected offer: the ring stops, the call waits for its turn again.
            await until(lambda: not trunk.plan(call_id).ring)
            await until(lambda: c.service.router.agent("1001").state is not AgentState.RESERVED)
            assert (await do(c, SetReady(agent_id="1001"))).ok
            await until(lambda: bool(trunk.plan(call_id).ring))
            trunk.phone(PhoneAnswered(call_id=call_id, agent_id="1001"))
            await until(lambda: talking(trunk, call_id, "1001"))
            trunk.phone(PhoneHungUp(call_id=call_id, agent_id="1001"))
            await until(lambda: c.service.router.agent("1001").state is AgentState.WRAP_UP)
            await until(lambda: trunk.plan(call_id).agents() == frozenset())
            assert trunk.plan(call_id).music == frozenset()  # in wrap-up: no caller to play to

    virtual(body)


def test_a_phone_lost_mid_call_sends_the_caller_back_to_its_place(tmp_path: Path) -> None:
    async def body() -> None:
        async with voice_center(tmp_path) as (c, trunk):
            call_id = await answered(c, trunk)
            lost = PhoneHungUp(call_id=call_id, agent_id="1001", reason="no audio for 30 s",
                               lost=True)  # fmt: skip
            trunk.phone(lost)
            router = c.service.router
            await until(lambda: router.call_phase(call_id) is CallPhase.QUEUED)
            assert router.agent("1001").state is not AgentState.TALKING
            assert c.service.voice.reachable["1001"] is False
            assert call_id in trunk.calls()  # the caller is still on the line, waiting

    virtual(body)


def test_a_blind_transfer_plays_music_until_the_second_phone_answers(tmp_path: Path) -> None:
    async def body() -> None:
        async with voice_center(tmp_path, ("1001", "1002")) as (c, trunk):
            call_id = await answered(c, trunk)
            await ready(c, trunk, "1002")
            transfer = TransferCall(agent_id="1001", call_id=call_id, to_agent="1002")
            assert (await do(c, transfer)).ok
            await until(lambda: [r.agent_id for r in trunk.plan(call_id).ring] == ["1002"])
            plan = trunk.plan(call_id)
            assert plan.music == {CALLER}
            assert "1001" not in plan.agents()  # the first agent's phone leg ends
            trunk.phone(PhoneAnswered(call_id=call_id, agent_id="1002"))
            await until(lambda: talking(trunk, call_id, "1002"))
            assert trunk.plan(call_id).music == frozenset()

    virtual(body)


def test_a_persistent_agents_phone_is_kept_from_login_to_logout(tmp_path: Path) -> None:
    async def body() -> None:
        persistent = frozenset({"1001"})
        async with voice_center(tmp_path, ("1001", "1002"), persistent=persistent) as (c, trunk):
            await ready(c, trunk, "1001")
            await ready(c, trunk, "1002")  # a ringing agent: never kept
            await until(lambda: trunk.kept == [("1001", True), ("1001", True)])  # login, Ready
            call_id = trunk.ring("13812345678")
            # The offer's ring is answered by the line at once: the call is bridged.
            await until(lambda: talking(trunk, call_id, "1001"))
            assert c.service.router.agent("1001").state is AgentState.TALKING
            assert trunk.plans[call_id][0].ring[0].agent_id == "1001"
            assert (await do(c, HangUp(agent_id="1001", call_id=call_id))).ok
            await until(lambda: trunk.plan(call_id).agents() == frozenset())  # the agent left
            assert trunk.standing == {"1001"}  # the leg is kept (silence), not hung up
            done = CompleteWrapUp(agent_id="1001", call_id=call_id, disposition="sale")
            assert (await do(c, done)).ok
            assert (await do(c, SetNotReady(agent_id="1001"))).ok
            assert (await do(c, Logout(agent_id="1001"))).ok
            await until(lambda: trunk.kept[-1] == ("1001", False))
            assert [agent for agent, _ in trunk.kept] == ["1001"] * len(trunk.kept)
            assert trunk.standing == set()

    virtual(body)


def test_a_dropped_standing_connection_makes_the_agent_not_ready_until_ready_again(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with voice_center(tmp_path, persistent=frozenset({"1001"})) as (c, trunk):
            await ready(c, trunk, "1001")
            trunk.standing.discard("1001")  # the phone hung up its standing leg
            trunk.phone(PhoneDisconnected(agent_id="1001", reason="hung up on the phone"))
            agent = c.service.router.agent
            await until(lambda: agent("1001").state is AgentState.NOT_READY)
            assert agent("1001").reason == "phone disconnected"
            kept = len(trunk.kept)
            assert (await do(c, SetReady(agent_id="1001"))).ok
            await until(lambda: len(trunk.kept) == kept + 1)  # the phone is called again
            assert trunk.kept[-1] == ("1001", True)
            assert trunk.standing == {"1001"}

    virtual(body)


def test_the_audio_is_connected_once_a_phone_answers_even_by_itself(tmp_path: Path) -> None:
    """The dialer's answer window counts an agent on the call only with its phone
    connected; a phone answering by itself (accepted on the desk) accepts nothing more."""

    async def body() -> None:
        async with voice_center(tmp_path) as (c, trunk):
            await ready(c, trunk, "1001")
            voice = c.service.voice
            call_id = trunk.ring("13812345678")
            await until(lambda: bool(trunk.plan(call_id).ring))
            assert not voice.audio_connected(call_id)
            assert (await do(c, AcceptOffer(agent_id="1001", call_id=call_id))).ok
            await until(lambda: talking(trunk, call_id, "1001"))
            assert not voice.audio_connected(call_id)  # talking on the desk, phone ringing
            trunk.phone(PhoneAnswered(call_id=call_id, agent_id="1001", auto=True))
            await until(lambda: voice.audio_connected(call_id))
            assert c.service.router.agent("1001").state is AgentState.TALKING

    virtual(body)
