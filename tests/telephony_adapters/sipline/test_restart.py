"""The user agent's calls across a restart of its process: saved, restored, adopted."""

from __future__ import annotations

import json

import pytest

from cti.protocol import CallArrived, CallerHungUp
from telephony_adapters.sipline.message import Response
from telephony_adapters.sipline.phone_auth import PhoneSettings
from telephony_adapters.sipline.useragent import AgentLegProgress, MediaStart, UserAgent
from tests.telephony_adapters.sipline.peer import (
    OFFER,
    PEER,
    invite,
    make_ua,
    of_type,
    reply,
    request,
    sent,
    statuses,
)

pytestmark = pytest.mark.recovery


def restarted(ua: UserAgent) -> UserAgent:
    """A new user agent of the same line with ``ua``'s saved calls (JSON round trip)."""
    changed, _ = ua.saved_changes()
    new = make_ua()
    assert new.restore(json.loads(json.dumps(list(changed.values()))), 100.0) == []
    return new


def test_calls_are_saved_before_the_engine_hears_of_them_and_forgotten_when_over() -> None:
    ua = make_ua()
    [arrived] = of_type(ua.receive(invite(), PEER, 0.0), CallArrived)
    changed, gone = ua.saved_changes()
    assert list(changed) == [arrived.call_id]
    assert gone == []
    assert ua.saved_changes() == ({}, [])  # nothing new
    ua.receive(request("CANCEL"), PEER, 1.0)
    assert ua.saved_changes() == ({}, [arrived.call_id])


def test_after_a_restart_callers_ring_on_unheard_ones_are_announced_and_the_rest_end() -> None:
    ua = make_ua()
    [named] = of_type(ua.receive(invite(call_id="a"), PEER, 0.0), CallArrived)
    [unheard] = of_type(ua.receive(invite(call_id="b", branch="z9hG4bKb"), PEER, 0.0), CallArrived)
    [talking] = of_type(ua.receive(invite(call_id="c", branch="z9hG4bKc"), PEER, 0.0), CallArrived)
    ok = sent(ua.answer(talking.call_id, 10000, 1.0))[0]
    assert isinstance(ok, Response)
    ua.receive(request("ACK", call_id="c", to_tag=ok.to.tag, branch="z9hG4bKack"), PEER, 1.0)
    [dialled] = [ua.next_call_id()]
    ringing = sent(ua.dial("sip:900@10.0.0.2:5062", dialled, 10002, 2.0))[0]
    ua.receive(reply(ringing, 180), PEER, 2.1)

    new = restarted(ua)
    kept, out = new.adopt([named.call_id, talking.call_id, "trunk-gone-1"], 101.0)
    assert kept == [named.call_id, talking.call_id]
    # The named caller hears ringing again; the unheard one is announced to the engine.
    assert [a.call_id for a in of_type(out, CallArrived)] == [unheard.call_id]
    assert statuses(out).count(180) == 2
    assert "CANCEL" in statuses(out)  # the dial's dialer died with the old process
    assert new.call_state(named.call_id) == "ringing"
    # The named caller can be answered; the talking call's dialog carries on (its BYE
    # has the next CSeq and the tags of the old process).
    assert statuses(new.answer(named.call_id, 10004, 102.0)) == [200]
    assert of_type(new.resume_media(talking.call_id, 10000, 102.0), MediaStart)
    [bye] = sent(new.hang_up(talking.call_id, 103.0))
    assert (bye.method, bye.call_id, bye.from_.tag) == ("BYE", "c", ok.to.tag)  # type: ignore[union-attr]


def test_a_confirmed_call_the_engine_does_not_name_gets_a_bye() -> None:
    ua = make_ua()
    [call] = of_type(ua.receive(invite(), PEER, 0.0), CallArrived)
    ok = sent(ua.answer(call.call_id, 10000, 1.0))[0]
    assert isinstance(ok, Response)
    ua.receive(request("ACK", to_tag=ok.to.tag, branch="z9hG4bKack"), PEER, 1.0)
    new = restarted(ua)
    kept, out = new.adopt([], 101.0)
    assert kept == []
    assert statuses(out) == ["BYE"]


def test_an_unreadable_saved_call_is_reported_not_raised() -> None:
    assert make_ua().restore([{"call_id": "x", "invite": "garbage"}], 0.0) == ["x"]


def test_an_answered_agent_leg_stays_a_leg_after_a_restart() -> None:
    fixed = PhoneSettings(realm="r", phones={"a3": f"sip:a3@{PEER[0]}:{PEER[1]}"})
    ua = make_ua(phones=fixed)
    [leg_invite] = sent(ua.ring_agent("c-1", "a3", 12000, 0.0))
    ua.receive(reply(leg_invite, 200, body=OFFER), PEER, 1.0)
    changed, _ = ua.saved_changes()
    new = make_ua(phones=fixed)
    assert new.restore(json.loads(json.dumps(list(changed.values()))), 100.0) == []
    kept, _ = new.adopt(["c-1~a3"], 101.0)
    assert kept == ["c-1~a3"]
    bye = request(
        "BYE", call_id=leg_invite.call_id, from_tag="pt", to_tag=leg_invite.from_.tag, cseq=2
    )
    out = new.receive(bye, PEER, 102.0)
    assert [(e.call_id, e.outcome) for e in of_type(out, AgentLegProgress)] == [("c-1~a3", "ended")]
    assert not of_type(out, CallerHungUp)
