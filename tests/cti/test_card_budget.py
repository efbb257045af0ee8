"""Customer cards cut to fit one bus message (issue 17: every field crossing a boundary
has a bound). Before, 50 history rows with long notes and script answers made a 600 KB
CustomerDetails that the bus dropped: the agent got no card at all."""

from __future__ import annotations

import pytest

from agent_console.widgets import details_text, screen_pop_text
from cti.engine.card_budget import (
    ENVELOPE_BYTES,
    NOTE_CHARS,
    fit_card,
    fit_card_encoded,
    fit_search_results,
)
from cti.models import (
    CallerKind,
    Customer,
    Interaction,
    PhoneNumber,
    Segment,
    ServiceItem,
    ServicePriority,
)
from cti.protocol import (
    MAX_DETAIL_HISTORY,
    MAX_MESSAGE_BYTES,
    MAX_SCRIPT_ANSWERS,
    CallOffered,
    CallScript,
    CurrentCall,
    CustomerDetails,
    CustomerSearchResults,
    ScreenPop,
    decode,
    encode,
)

pytestmark = pytest.mark.security

T0 = 1_767_000_000.0
#: The longest note and script answer a wrap-up may carry (the wire's multi-line text).
MAX_TEXT_CHARS = 4000
E164 = "+8613812345678"
CUSTOMER = Customer(
    id=7,
    name="欧阳明月",
    phones=(PhoneNumber(raw="138 1234 5678", e164=E164),),
    value=95.0,
    segment=Segment.PLATINUM,
)


WIDE_ANSWER = "答" * MAX_TEXT_CHARS


def worst_contacts(n: int, *, answers: int = 40) -> list[Interaction]:
    """``n`` contacts, oldest first, as big as the wire lets an agent make them: a
    4,000-character note in wide characters (three bytes each) and ``answers`` script
    answers of 4,000 characters under 200-character question ids."""
    return [
        Interaction(
            at=T0 + 3600.0 * k,
            disposition="follow-up",
            agent_id="1001",
            note=f"#{k} " + "回" * MAX_TEXT_CHARS,
            call_id=f"call-{k}",
            script_answers={f"q{a:03d}-" + "问" * 195: WIDE_ANSWER for a in range(answers)},
        )
        for k in range(n)
    ]


def worst_items(n: int) -> list[ServiceItem]:
    return [
        ServiceItem(
            id=k + 1,
            customer_id=CUSTOMER.id,
            title="单" * 200,
            detail="详" * MAX_TEXT_CHARS,
            priority=ServicePriority.URGENT,
            created_at=T0,
            updated_at=T0,
        )
        for k in range(n)
    ]


def _details(history: list[Interaction], items: list[ServiceItem]) -> CustomerDetails:
    return CustomerDetails(
        agent_id="1001",
        command_id="c1",
        customer=CUSTOMER,
        history=tuple(reversed(history)),  # the store's order: newest first
        service_items=tuple(items),
    )


def _sent(message: CallOffered | CurrentCall | CustomerDetails) -> bytes:
    payload = encode(message)
    assert len(payload) <= MAX_MESSAGE_BYTES - ENVELOPE_BYTES
    assert decode(payload) == message  # it crosses the bus as it is
    return payload


def test_details_with_worst_case_history_fit_newest_first_and_say_what_was_left_out() -> None:
    history = worst_contacts(MAX_DETAIL_HISTORY)
    full = _details(history, worst_items(10))
    assert len(encode(full)) > 3 * MAX_MESSAGE_BYTES  # what the bus used to drop

    fitted = fit_card(full)
    _sent(fitted)
    assert fitted.customer == CUSTOMER
    sent = len(fitted.history)
    assert 0 < sent < MAX_DETAIL_HISTORY
    assert fitted.history_left_out == MAX_DETAIL_HISTORY - sent
    # the newest contacts, in order
    assert [h.call_id for h in fitted.history] == [
        f"call-{k}" for k in range(MAX_DETAIL_HISTORY - 1, MAX_DETAIL_HISTORY - 1 - sent, -1)
    ]
    newest = fitted.history[0]
    more = MAX_TEXT_CHARS + len("#49 ") - NOTE_CHARS
    assert newest.note.startswith("#49 回")
    assert f"[{more:,} more characters not shown]" in newest.note
    assert newest.script_answers
    assert "more script answers not shown]" in newest.note
    assert all(len(v) < 300 for v in newest.script_answers.values() if isinstance(v, str))
    # the open items go too, their details cut with a marker
    assert len(fitted.service_items) + fitted.items_left_out == 10
    assert fitted.service_items
    assert "more characters not shown]" in fitted.service_items[0].detail

    # the desk shows the card and says what was not sent
    shown = details_text(fitted, now=T0).plain
    assert "欧阳明月" in shown
    assert "#49 回" in shown
    assert f"… {fitted.history_left_out} older contacts not sent" in shown


def test_a_card_that_fits_goes_as_it_is() -> None:
    small = _details(
        [Interaction(at=T0, note="回电", script_answers={"q1": "yes", "n": 3})],
        worst_items(1),
    )
    assert fit_card(small) is small
    assert "not sent" not in details_text(small, now=T0).plain


def _pop(matches: int, history: list[Interaction]) -> ScreenPop:
    holders = [CUSTOMER] + [
        CUSTOMER.model_copy(update={"id": 1000 + k, "name": "家" * 200, "value": 10.0})
        for k in range(matches - 1)
    ]
    return ScreenPop(
        call_id="trunk-1",
        queue="general",
        ani="13812345678",
        e164=E164,
        caller_kind=CallerKind.KNOWN,
        customer=CUSTOMER,
        history=tuple(reversed(history)),
        matches=tuple(holders),
        service_items=tuple(worst_items(10)),
        script=CallScript(name="s", version="1", sha256="0" * 64, text="x = '脚本'\n" * 4000),
    )


def test_an_offer_and_the_call_in_hand_keep_the_customer_and_script_and_cut_the_rest() -> None:
    pop = _pop(matches=2000, history=worst_contacts(5, answers=MAX_SCRIPT_ANSWERS))
    offer = CallOffered(agent_id="1001", pop=pop, timeout_s=15, deadline_wall=T0 + 15)
    assert len(encode(offer)) > MAX_MESSAGE_BYTES

    fitted = fit_card(offer)
    _sent(fitted)
    sent = fitted.pop
    assert sent.customer == CUSTOMER
    assert sent.script == pop.script
    assert sent.matches[0] == CUSTOMER  # the most valuable holder first, as it was
    assert len(sent.matches) + sent.matches_left_out == 2000
    assert sent.matches_left_out > 0
    assert len(sent.history) + sent.history_left_out == 5
    assert sent.history
    assert sent.history[0].call_id == "call-4"
    # matches took no more than their share: history and items still went
    assert sent.service_items

    current = CurrentCall(agent_id="1001", call_id="trunk-1", pop=sent, agent_name="李" * 200)
    assert fit_card(current) is current  # the card fitted for the offer fits here too

    shown = screen_pop_text(sent, now=T0).plain
    assert "2,000 customers hold this number" in shown
    assert f"… {sent.matches_left_out:,} more not sent" in shown


def test_a_card_fitted_comes_with_the_bytes_it_goes_as() -> None:
    """fit_card_encoded (issue 23: the engine sends these bytes): fit_card's answer and
    its encoding, for a card as it is and a card cut."""
    small = CallOffered(agent_id="1001", pop=_pop(1, []), timeout_s=15, deadline_wall=T0)
    big = CallOffered(
        agent_id="1001",
        pop=_pop(matches=2000, history=worst_contacts(5, answers=MAX_SCRIPT_ANSWERS)),
        timeout_s=15,
        deadline_wall=T0,
    )
    for offer in (small, big):
        fitted, payload = fit_card_encoded(offer)
        assert fitted == fit_card(offer)
        assert payload == encode(fitted)
    assert fit_card_encoded(small)[0] is small


def test_search_results_too_big_for_one_message_send_the_first_and_say_more() -> None:
    wide = CUSTOMER.model_copy(
        update={"name": "名" * 500, "address": "址" * 500, "company": "司" * 500}
    )
    results = CustomerSearchResults(
        agent_id="1001", command_id="c1", query="名", customers=(wide,) * 60
    )
    assert len(encode(results)) > MAX_MESSAGE_BYTES
    fitted = fit_search_results(results)
    assert len(encode(fitted)) <= MAX_MESSAGE_BYTES - ENVELOPE_BYTES
    assert 0 < len(fitted.customers) < 60
    assert fitted.more
