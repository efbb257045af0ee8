"""A transfer an agent's phone asks itself (its transfer key; virtual time): the line
reports ``TransferAsked`` and the engine carries it out as the desk's transfer by that
agent: to the agent the target names (its id or the extension the line knew), to a
queue of that name, else to the number by the line; the agent consulted completes the
consultation. How it went goes back to the line (200, 480 with the reason, 603) and a
refusal's reason to the agent's desk."""

from __future__ import annotations

from pathlib import Path

from cti import topics
from cti.events import TransferAsked
from cti.models import AgentState
from cti.protocol import CallControl, ConsultCall, PhoneAnswered
from queue_engine.router import CallPhase
from telephony_adapters.base import TransferResult
from tests.cti.test_transfer_out import ReferTrunk
from tests.cti.test_voice_room import answered, do, ready, talking, voice_center
from tests.harness import Center, until, virtual


class PhoneTrunk(ReferTrunk):
    """The transferring voice trunk that also keeps what the engine told each phone."""

    def __init__(self) -> None:
        super().__init__()
        self.told: list[tuple[str, str, int, str]] = []
        """(call, agent, status, reason) of each transfer_asked_outcome."""

    async def transfer_asked_outcome(
        self, call_id: str, agent_id: str, status: int, reason: str = ""
    ) -> None:
        self.told.append((call_id, agent_id, status, reason))


def asks(trunk: PhoneTrunk, call_id: str, target: str, to_agent: str = "") -> None:
    """Agent 1001's phone asks to transfer ``call_id`` to ``target``."""
    trunk.phone(TransferAsked(call_id=call_id, agent_id="1001", target=target,
                              to_agent=to_agent, line=trunk.name))  # fmt: skip


async def told(trunk: PhoneTrunk) -> tuple[str, str, int, str]:
    await until(lambda: bool(trunk.told))
    return trunk.told.pop()


def state(c: Center, agent: str) -> AgentState:
    return c.service.router.agent(agent).state


def test_the_phone_transfers_to_an_agent_by_its_extension_or_id(tmp_path: Path) -> None:
    async def body() -> None:
        trunk = PhoneTrunk()
        async with voice_center(tmp_path, ("1001", "1002"), trunk) as (c, _):
            call_id = await answered(c, trunk)
            await ready(c, trunk, "1002")
            asks(trunk, call_id, "2002", to_agent="1002")  # 1002's phone's extension
            assert await told(trunk) == (call_id, "1001", 200, "")
            assert state(c, "1001") is AgentState.WRAP_UP
            assert c.service.router.call_agent(call_id) == "1002"
            await until(lambda: [r.agent_id for r in trunk.plan(call_id).ring] == ["1002"])
            # 1002 answers, then its phone sends the caller back by 1001's id: 1001 is
            # in wrap-up, so not now (480), and 1002 keeps the caller and hears why.
            trunk.phone(PhoneAnswered(call_id=call_id, agent_id="1002"))
            await until(lambda: talking(trunk, call_id, "1002"))
            notes: list[str] = []
            async with c.bus.subscribe(topics.agent_events("1002")) as inbox:
                trunk.phone(TransferAsked(call_id=call_id, agent_id="1002", target="1001",
                                          line=trunk.name))  # fmt: skip
                async for _topic, message in inbox:
                    if isinstance(message, CallControl) and message.note:
                        notes.append(message.note)
                        break
            assert "transfer from your phone to '1001' refused" in notes[0]
            _, agent, status, reason = await told(trunk)
            assert (agent, status) == ("1002", 480)
            assert "'1001'" in reason
            assert state(c, "1002") is AgentState.TALKING

    virtual(body)


def test_the_phone_transfers_to_a_queue_or_is_refused_an_unknown_target(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        trunk = PhoneTrunk()
        async with voice_center(tmp_path, trunk=trunk) as (c, _):
            call_id = await answered(c, trunk)
            asks(trunk, call_id, "nobody here")
            _, _, status, reason = await told(trunk)
            assert status == 603
            assert "'nobody here'" in reason
            assert state(c, "1001") is AgentState.TALKING
            asks(trunk, call_id, "1001")  # its own phone
            assert (await told(trunk))[2] == 603
            asks(trunk, call_id, "general")
            assert await told(trunk) == (call_id, "1001", 200, "")
            assert c.service.router.call_phase(call_id) is CallPhase.QUEUED
            assert state(c, "1001") is AgentState.WRAP_UP

    virtual(body)


def test_the_phone_transfers_to_a_number_by_the_line_and_hears_its_outcome(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        trunk = PhoneTrunk()
        async with voice_center(tmp_path, trunk=trunk) as (c, _):
            call_id = await answered(c, trunk)
            asks(trunk, call_id, "+8613900000001")
            await until(lambda: bool(trunk.transfers))
            assert trunk.transfers == [(call_id, "+8613900000001")]
            assert trunk.told == []  # not before the line says
            trunk.outcomes[call_id].set_result(TransferResult(call_id, False, "486 Busy Here"))
            assert await told(trunk) == (call_id, "1001", 480, "486 Busy Here")
            assert state(c, "1001") is AgentState.TALKING
            asks(trunk, call_id, "13900000001")
            await until(lambda: len(trunk.transfers) == 2)
            trunk.outcomes[call_id].set_result(TransferResult(call_id, True, "200 OK"))
            assert await told(trunk) == (call_id, "1001", 200, "")
            await until(lambda: state(c, "1001") is AgentState.WRAP_UP)

    virtual(body)


def test_the_phone_s_transfer_to_the_agent_consulted_completes_the_consultation(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        trunk = PhoneTrunk()
        async with voice_center(tmp_path, ("1001", "1002"), trunk) as (c, _):
            call_id = await answered(c, trunk)
            await ready(c, trunk, "1002")
            consult = ConsultCall(agent_id="1001", call_id=call_id, to_agent="1002")
            assert (await do(c, consult)).ok
            await until(lambda: [r.agent_id for r in trunk.plan(call_id).ring] == ["1002"])
            trunk.phone(PhoneAnswered(call_id=call_id, agent_id="1002"))
            await until(lambda: trunk.plan(call_id).rooms == (frozenset({"1001", "1002"}),))
            asks(trunk, call_id, "1002", to_agent="1002")  # a Replaces naming 1002's leg
            assert await told(trunk) == (call_id, "1001", 200, "")
            await until(lambda: talking(trunk, call_id, "1002"))
            assert state(c, "1001") is AgentState.WRAP_UP

    virtual(body)
