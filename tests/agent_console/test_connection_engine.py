"""The console link and the engine's presence, on the in-memory bus (issue 21): the
banner says "Engine offline" while the engine is gone and counts the actions kept; no
retry asks it for a snapshot then, and "Back online" comes only when it is back."""

from __future__ import annotations

import asyncio

from agent_console.connection import ConsoleLink, LinkStatus, banner_text
from cti import topics
from cti.bus.memory import InMemoryBus
from cti.protocol import (
    AcceptOffer,
    CallConnected,
    CallEnded,
    CommandResult,
    EnginePresence,
    HangUp,
    Message,
    OfferWithdrawn,
    RejectOffer,
    RequestSnapshot,
    SetReady,
)
from tests.harness import until

AGENT = "1001"


async def engine_says(bus: InMemoryBus, online: bool) -> None:
    message = EnginePresence(online=online, at_wall=0.0 if not online else 1.0)
    await bus.publish(topics.engine_presence(), message, retain=True)


async def test_engine_offline_then_back() -> None:
    bus = InMemoryBus()
    link = ConsoleLink(bus, AGENT, retry_s=0.01)
    sent: list[Message] = []
    seen: list[LinkStatus] = []
    link.add_listener(seen.append)
    await engine_says(bus, False)  # retained: the link hears it on subscribing
    async with bus.subscribe(topics.agent_commands(AGENT)) as commands:

        async def collect() -> None:
            async for _topic, message in commands:
                sent.append(message)

        collector = asyncio.create_task(collect())
        runner = asyncio.create_task(link.run())
        try:
            await until(lambda: link.status.engine is False, what="the engine heard of")
            await link.publish(topics.agent_commands(AGENT), SetReady(agent_id=AGENT))
            text = banner_text(link.status).plain
            assert text.startswith("Engine offline")
            assert "1 action kept, sent when it is back." in text
            assert not link.status.online

            await engine_says(bus, True)
            await until(lambda: any(isinstance(m, RequestSnapshot) for m in sent))
            request = next(m for m in sent if isinstance(m, RequestSnapshot))
            assert banner_text(link.status).plain.startswith("Back online")
            result = CommandResult(command_id=request.command_id, ok=True)
            await bus.publish(topics.agent_events(AGENT), result)
            await until(lambda: not link.status.resyncing)
        finally:
            runner.cancel()
            collector.cancel()
    # Not one snapshot asked while the engine was offline, whatever the retries.
    offline = [s for s in seen if s.engine is False]
    assert offline
    assert not any(s.resyncing for s in offline)
    assert not any(banner_text(s).plain.startswith("Back online") for s in offline)


def test_a_first_resync_is_no_return() -> None:
    waiting = LinkStatus(None, unanswered=1, resyncing=True, engine=True)
    assert banner_text(waiting).plain.startswith("Waiting for the engine")
    back = LinkStatus(None, unanswered=1, resyncing=True, engine=True, back=True)
    assert banner_text(back).plain.startswith("Back online")
    assert banner_text(LinkStatus(None, engine=True)).plain == ""
    assert banner_text(LinkStatus(None)).plain == ""  # an older engine says nothing


async def test_the_event_a_command_causes_answers_it_and_a_refusal_still_does() -> None:
    bus = InMemoryBus()
    link = ConsoleLink(bus, AGENT, retry_s=60)
    events = topics.agent_events(AGENT)
    runner = asyncio.create_task(link.run())
    try:
        await asyncio.sleep(0)  # the link's first step subscribes
        accept = AcceptOffer(agent_id=AGENT, call_id="c1")
        hang_up = HangUp(agent_id=AGENT, call_id="c1")
        reject = RejectOffer(agent_id=AGENT, call_id="c2")
        refused = AcceptOffer(agent_id=AGENT, call_id="c3")
        for command in (accept, hang_up, reject, refused):
            await link.publish(topics.agent_commands(AGENT), command)
        assert link.status.unanswered == 4
        # An event that names no command (a caller's hang-up, an older engine) is none's.
        await bus.publish(events, CallConnected(agent_id=AGENT, call_id="c1"))
        await bus.publish(events, CallConnected(agent_id=AGENT, call_id="c1",
                                                command_id=accept.command_id))  # fmt: skip
        await until(lambda: link.status.unanswered == 3)
        assert link.unanswered == [hang_up, reject, refused]
        ended = CallEnded(agent_id=AGENT, call_id="c1", by="agent", command_id=hang_up.command_id)
        await bus.publish(events, ended)
        withdrawn = OfferWithdrawn(agent_id=AGENT, call_id="c2", reason="rejected",
                                   command_id=reject.command_id)  # fmt: skip
        await bus.publish(events, withdrawn)
        no = CommandResult(command_id=refused.command_id, ok=False, error="not offered")
        await bus.publish(events, no)
        await until(lambda: link.status.unanswered == 0)
    finally:
        runner.cancel()
