"""The caller's flow in the engine, on a line that carries the voice (virtual time): the
dialled number's greeting and menu, a key routing to its queue, the announcements of
place and wait while queued, the callback that keeps the place, and a message left
that becomes a callback with the message on its card. The line is the simulator trunk
told it carries the voice (tests/cti/test_voice_room.py's VoiceTrunk): the test reads
the plans the engine sends and presses the caller's keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from cti import topics
from cti.engine.caller_flows import PLAYOUT_TAIL_S
from cti.errors import RoutingError
from cti.models import AgentConfig, CallDetailRecord
from cti.protocol import CallOffered, DtmfReceived, RecordingFinished
from queue_engine.router import CallPhase
from telephony_adapters.base import CALLER
from telephony_adapters.sim import SimCallState
from tests.cti.test_voice_room import VoiceTrunk, answered, ready
from tests.harness import Center, center_config, elapse_until, engine_center, until, virtual

MENU: dict[str, Any] = {
    "name": "main",
    "prompt": "menu_main",
    "keys": {"1": "queue:sales", "2": "queue:general", "9": "voicemail:general"},
}
FLOW: dict[str, Any] = {"dnis": ["800"], "language": "en", "queue": "general", "menu": "main",
                        "menus": [MENU]}  # fmt: skip


@asynccontextmanager
async def flow_center(
    tmp_path: Path, flow: dict[str, Any] | None = None, **caller: Any
) -> AsyncIterator[tuple[Center, VoiceTrunk, list[CallDetailRecord]]]:
    trunk = VoiceTrunk()
    config = center_config(
        [{"name": "general"}, {"name": "sales"}],
        flows=[flow or FLOW],
        caller={"first_announce_s": 10.0, "announce_every_s": 30.0, **caller},
        voice={"record": "none", "recordings_dir": str(tmp_path / "rec")},
    )
    agents = [AgentConfig(id="1001", queues={"general": 0.0, "sales": 0.0})]
    async with engine_center(tmp_path / "cti.db", config=config, agents=agents,
                             lines=[trunk]) as c:  # fmt: skip
        records: list[CallDetailRecord] = []
        c.service.record_listeners.append(records.append)
        yield c, trunk, records


def files(trunk: VoiceTrunk, call_id: str) -> list[str]:
    """The clips of the prompt the caller hears now, as lang/name."""
    prompt = trunk.plan(call_id).prompt
    return ["/".join(Path(f).with_suffix("").parts[-2:]) for f in prompt.files] if prompt else []


def press(trunk: VoiceTrunk, call_id: str, keys: str) -> None:
    for key in keys:
        trunk.phone(DtmfReceived(call_id=call_id, key=key, line=trunk.name))


def phase(c: Center, call_id: str) -> CallPhase | None:
    try:
        return c.service.router.call_phase(call_id)
    except RoutingError:
        return None


async def two_queued(c: Center, trunk: VoiceTrunk) -> tuple[str, str]:
    """Two callers through the menu (key 2) into general, one behind the other: the
    head is told nothing, so the announcements are the second's."""
    head = trunk.ring("13822222222", dnis="800")
    second = trunk.ring("13811111111", dnis="800")
    menu = ["en/greeting", "en/menu_main"]  # the flow's language, whatever the queue's
    await until(lambda: files(trunk, head) == menu and files(trunk, second) == menu)
    press(trunk, head, "2")
    await until(lambda: phase(c, head) is CallPhase.QUEUED)
    press(trunk, second, "2")
    await until(lambda: phase(c, second) is CallPhase.QUEUED)
    return head, second


def test_the_greeting_and_menu_answer_the_caller_and_a_key_routes_to_its_queue(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with flow_center(tmp_path) as (c, trunk, records):
            call_id = trunk.ring("13812345678", dnis="800")
            await until(lambda: bool(files(trunk, call_id)))
            assert files(trunk, call_id) == ["en/greeting", "en/menu_main"]
            assert trunk.state(call_id) is SimCallState.ANSWERED
            assert phase(c, call_id) is None  # menu time is no queue wait
            press(trunk, call_id, "7")  # no such key: said so, and the menu again
            await until(lambda: files(trunk, call_id) == ["en/invalid_key", "en/menu_main"])
            press(trunk, call_id, "1")
            await until(lambda: phase(c, call_id) is CallPhase.QUEUED)
            assert c.service.router.call_queue(call_id) == "sales"
            await until(lambda: trunk.plan(call_id).music == frozenset({CALLER}))
            assert trunk.plan(call_id).prompt is None
            assert records == []

    virtual(body)


def test_hanging_up_in_the_menu_is_no_abandon(tmp_path: Path) -> None:
    async def body() -> None:
        async with flow_center(tmp_path) as (c, trunk, records):
            call_id = trunk.ring("13812345678", dnis="800")
            await until(lambda: bool(files(trunk, call_id)))
            trunk.caller_hangs_up(call_id)
            await until(lambda: bool(records))
            assert records[0].call_id == call_id
            assert records[0].outcome == "menu"
            figures = c.service.stats.snapshot(None, c.service.now())
            assert figures.abandoned == 0
            assert figures.offered == 0

    virtual(body)


def test_no_key_at_all_ends_in_the_menus_fallback_queue(tmp_path: Path) -> None:
    async def body() -> None:
        async with flow_center(tmp_path) as (c, trunk, _records):
            call_id = trunk.ring("13812345678", dnis="800")
            await elapse_until(lambda: phase(c, call_id) is CallPhase.QUEUED)
            assert c.service.router.call_queue(call_id) == "general"
            await until(lambda: trunk.plan(call_id).music == frozenset({CALLER}))

    virtual(body)


def test_a_queued_caller_hears_its_place_and_wait_then_is_offered_a_callback(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with flow_center(tmp_path) as (c, trunk, _records):
            first, second = await two_queued(c, trunk)
            await elapse_until(lambda: "en/you_are_caller_number" in files(trunk, second))
            said = files(trunk, second)
            assert said[:2] == ["en/you_are_caller_number", "en/two"]
            assert said[-1] == "en/callback_offer"
            assert "en/you_are_caller_number" not in files(trunk, first)  # the head: nothing
            # Virtual hold: 1, the caller id read back, 1 to confirm.
            press(trunk, second, "1")
            await until(lambda: "en/we_will_call_you_at" in files(trunk, second))
            assert files(trunk, second)[1:4] == ["en/one", "en/three", "en/eight"]
            press(trunk, second, "1")
            await until(lambda: files(trunk, second) == ["en/callback_confirmed"])
            # Released once the confirmation has reached the caller, not at its last sample.
            said_at = asyncio.get_running_loop().time()
            ends = said_at + c.service.flows.prompts.length("en", "callback_confirmed")
            await elapse_until(lambda: asyncio.get_running_loop().time() >= ends, step_s=0.1)
            assert trunk.state(second) is SimCallState.ANSWERED
            await elapse_until(lambda: trunk.state(second) is None, step_s=0.1)  # released
            assert asyncio.get_running_loop().time() >= ends + PLAYOUT_TAIL_S
            router = c.service.router
            assert router.call_kind(second) == "callback"
            assert router.waiting_in_order("general") == [first, second]  # its place kept

    virtual(body)


def test_a_message_left_from_the_menu_becomes_a_callback_with_the_message(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with flow_center(tmp_path) as (c, trunk, records):
            call_id = trunk.ring("13812345678", dnis="800")
            await until(lambda: bool(files(trunk, call_id)))
            press(trunk, call_id, "9")
            await until(lambda: files(trunk, call_id) == ["en/voicemail_prompt", "en/beep"])
            await elapse_until(lambda: bool(trunk.plan(call_id).message), step_s=0.1)
            path = trunk.plan(call_id).message
            assert path.endswith(f"{call_id}.message.wav")
            press(trunk, call_id, "#")
            await until(lambda: not trunk.plan(call_id).message)
            trunk.phone(RecordingFinished(call_id=call_id, path=path, duration_s=4.0,
                                          kind="message", line=trunk.name))  # fmt: skip
            await elapse_until(lambda: trunk.state(call_id) is None, step_s=0.5)
            assert records[0].outcome == "voicemail"
            # The callback rings the agent with the message on its card.
            (callback,) = c.service.recordings.attached
            assert c.service.router.call_kind(callback) == "callback"
            offers: list[CallOffered] = []
            async with c.bus.subscribe(topics.agent_events("1001")) as events:
                await ready(c, trunk, "1001")
                async for _topic, event in events:
                    if isinstance(event, CallOffered):
                        offers.append(event)
                        break
            pop = offers[0].pop
            assert pop.call_id == callback
            assert pop.message is not None
            assert pop.message.recording_id == f"{call_id}.message"

    virtual(body)


def test_an_agent_answering_stops_the_announcements(tmp_path: Path) -> None:
    async def body() -> None:
        async with flow_center(tmp_path) as (c, trunk, _records):
            call_id = await answered(c, trunk, "1001")  # a call without a flow: unchanged
            assert trunk.plan(call_id).prompt is None
            assert call_id not in c.service.flows

    virtual(body)


def test_a_caller_gone_after_confirming_is_still_called_back(tmp_path: Path) -> None:
    async def body() -> None:
        async with flow_center(tmp_path) as (c, trunk, _records):
            _head, call_id = await two_queued(c, trunk)
            await elapse_until(lambda: "en/callback_offer" in files(trunk, call_id))
            press(trunk, call_id, "1")
            await until(lambda: "en/confirm_or_other" in files(trunk, call_id))
            press(trunk, call_id, "1")
            await until(lambda: files(trunk, call_id) == ["en/callback_confirmed"])
            trunk.caller_hangs_up(call_id)
            await until(lambda: c.service.router.call_kind(call_id) == "callback")
            assert phase(c, call_id) is CallPhase.QUEUED  # its place kept, not abandoned

    virtual(body)


def test_a_queue_exit_to_voicemail_takes_a_message_instead_of_hanging_up(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        trunk = VoiceTrunk()
        general = {
            "name": "general",
            "exits": {"max_wait": {"after_s": 20.0, "action": "voicemail"}},
        }
        config = center_config(
            [general, {"name": "sales"}],
            flows=[FLOW],
            caller={"first_announce_s": 10.0, "announce_every_s": 30.0},
            voice={"record": "none", "recordings_dir": str(tmp_path / "rec")},
        )
        agents = [AgentConfig(id="1001", queues={"general": 0.0})]
        async with engine_center(tmp_path / "cti.db", config=config, agents=agents,
                                 lines=[trunk]) as c:  # fmt: skip
            records: list[CallDetailRecord] = []
            c.service.record_listeners.append(records.append)
            call_id = trunk.ring("13812345678", dnis="800")
            await until(lambda: bool(files(trunk, call_id)))
            press(trunk, call_id, "2")
            await elapse_until(lambda: bool(records))  # the router's exit record
            assert records[0].outcome == "exited"
            await elapse_until(lambda: bool(trunk.plan(call_id).message), step_s=0.1)
            assert trunk.state(call_id) is SimCallState.ANSWERED  # not hung up: a message
            press(trunk, call_id, "#")
            await elapse_until(lambda: trunk.state(call_id) is None, step_s=0.5)
            (callback,) = c.service.recordings.attached
            assert c.service.router.call_queue(callback) == "general"
            assert len(records) == 1  # no second record for the message

    virtual(body)


def test_a_queued_caller_hears_its_queues_language(tmp_path: Path) -> None:
    async def body() -> None:
        async with flow_center(tmp_path, queue_languages={"general": "zh"}) as (c, trunk, _r):
            _head, second = await two_queued(c, trunk)
            await elapse_until(lambda: "zh/nin_qianmian_haiyou" in files(trunk, second))
            assert files(trunk, second)[1] == "zh/yi"  # one caller ahead: 您前面还有一位

    virtual(body)


def test_a_caller_who_hangs_up_while_leaving_a_message_is_called_back(tmp_path: Path) -> None:
    async def body() -> None:
        async with flow_center(tmp_path) as (c, trunk, records):
            call_id = trunk.ring("13812345678", dnis="800")
            await until(lambda: bool(files(trunk, call_id)))
            press(trunk, call_id, "9")
            await elapse_until(lambda: bool(trunk.plan(call_id).message), step_s=0.1)
            trunk.caller_hangs_up(call_id)  # no #: most callers end a message so
            await until(lambda: bool(records))
            assert records[0].outcome == "voicemail"
            (callback,) = c.service.recordings.attached
            assert c.service.recordings.attached[callback] == f"{call_id}.message"
            assert c.service.router.call_kind(callback) == "callback"
            assert call_id not in c.service.flows
            assert call_id not in c.service.line_book

    virtual(body)


def test_the_caller_id_name_reaches_the_card_through_the_flow(tmp_path: Path) -> None:
    async def body() -> None:
        async with flow_center(tmp_path) as (c, trunk, _records):
            call_id = trunk.ring("13812345678", dnis="800", caller_name="WANG JUN")
            await until(lambda: bool(files(trunk, call_id)))
            press(trunk, call_id, "2")
            await until(lambda: phase(c, call_id) is CallPhase.QUEUED)
            assert c.service.router.call_caller(call_id).caller_name == "WANG JUN"

    virtual(body)
