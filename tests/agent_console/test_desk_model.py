"""The desk's model alone (no Textual, no bus): messages in, state and reactions out."""

from __future__ import annotations

from agent_console.desk_banners import wrap_up_banner_text
from agent_console.desk_dial import number_to_dial
from agent_console.desk_model import (
    ANSWER_TIMEOUT_S,
    ClearScript,
    DeskModel,
    LoadScript,
    LoginStatus,
    Notify,
    Send,
    agent_id_problem,
)
from cti.models import AgentState, Customer
from cti.protocol import (
    AcceptOffer,
    AgentStateChanged,
    CallConnected,
    CallControl,
    CallEnded,
    CallOffered,
    CommandResult,
    CompleteWrapUp,
    CurrentCall,
    HangUp,
    LineFeatures,
    OfferWithdrawn,
    QueueStatus,
    RequestSnapshot,
    SaveScriptRun,
    ScreenPop,
    SetReady,
)
from scripts_engine import runner
from tests.agent_console.test_desktop import known_pop
from tests.agent_console.test_script_panel import call_script, pop_with

AGENT = "1001"
T0 = 1_700_000_000.0


def view(model: DeskModel) -> str:
    """The view now (a call, so that mypy does not keep the last one it saw)."""
    return model.view


def state(kind: AgentState, call_id: str | None = None, **extra: object) -> AgentStateChanged:
    return AgentStateChanged(agent_id=AGENT, state=kind, since_wall=T0, call_id=call_id, **extra)


def offered(pop: ScreenPop, deadline: float = T0 + 20, **extra: object) -> CallOffered:
    return CallOffered(agent_id=AGENT, pop=pop, timeout_s=20, deadline_wall=deadline, **extra)


def talking_model(pop: ScreenPop | None = None) -> DeskModel:
    model = DeskModel(AGENT)
    pop = pop or known_pop("c1")
    model.apply(state(AgentState.READY), T0)
    model.apply(offered(pop), T0)
    model.apply(state(AgentState.TALKING, pop.call_id), T0 + 1)
    return model


def test_an_offer_then_its_state_make_one_call_in_hand() -> None:
    model = DeskModel(AGENT)
    assert view(model) == "login"
    model.apply(state(AgentState.READY), T0)
    assert view(model) == "idle"
    model.apply(offered(known_pop("c1")), T0)
    model.apply(state(AgentState.RESERVED, "c1"), T0)
    assert (view(model), model.call_id) == ("offer", "c1")
    assert model.pop is not None
    assert model.pop.customer is not None
    assert model.pop.customer.name == "Ada Lovelace"


def test_the_state_may_come_before_the_offer_and_an_offer_is_kept_until_it_ends() -> None:
    model = DeskModel(AGENT)
    model.apply(state(AgentState.RESERVED, "c1"), T0)
    assert (view(model), model.offer) == ("offer", None)
    model.apply(offered(known_pop("c1")), T0)
    # A Ready state arriving late does not clear an offer still in time...
    model.apply(state(AgentState.READY), T0 + 1)
    assert view(model) == "offer"
    # ...but does once the offer has expired.
    model.apply(state(AgentState.READY), T0 + 21)
    assert view(model) == "idle"


def test_a_call_left_behind_is_not_brought_back_by_stale_state() -> None:
    model = talking_model()
    model.apply(CallEnded(agent_id=AGENT, call_id="c1", by="agent"), T0 + 2)
    assert view(model) == "wrap_up"
    model.apply(state(AgentState.READY), T0 + 3)
    assert view(model) == "idle"
    model.apply(state(AgentState.TALKING, "c1"), T0 + 4)  # late news of c1
    assert view(model) == "idle"
    assert model.call_id is None
    assert number_to_dial(model) == "+441715550101"


def test_messages_for_another_agent_are_ignored() -> None:
    model = DeskModel(AGENT)
    model.apply(AgentStateChanged(agent_id="1002", state=AgentState.READY, since_wall=T0), T0)
    assert model.state is None


def test_a_withdrawn_offer_says_why() -> None:
    model = DeskModel(AGENT)
    model.apply(state(AgentState.READY), T0)
    model.apply(offered(known_pop("c1")), T0)
    reactions = model.apply(
        OfferWithdrawn(agent_id=AGENT, call_id="c1", reason="caller hung up"), T0
    )
    assert view(model) == "idle"
    assert model.notice == "The offered call was withdrawn: caller hung up."
    assert Notify(model.notice, severity="warning") in reactions
    assert ClearScript() in reactions


def test_a_call_with_no_card_asks_the_engine_once() -> None:
    model = DeskModel(AGENT)
    first = model.apply(state(AgentState.TALKING, "c5"), T0)
    again = model.apply(state(AgentState.TALKING, "c5"), T0 + 1)
    assert [type(r.command) for r in first if isinstance(r, Send)] == [RequestSnapshot]
    assert not [r for r in again if isinstance(r, Send)]
    model.apply(CurrentCall(agent_id=AGENT, call_id="c5", pop=known_pop("c5")), T0 + 2)
    assert view(model) == "talking"
    assert model.pop is not None


def test_current_call_in_wrap_up_comes_back_in_wrap_up() -> None:
    model = DeskModel(AGENT)
    model.apply(state(AgentState.WRAP_UP, "c5", wrap_up_deadline_wall=T0 + 30), T0)
    version = model.card_version
    model.apply(
        CurrentCall(agent_id=AGENT, call_id="c5", pop=known_pop("c5"), dispositions=("sale",)),
        T0,
    )
    assert view(model) == "wrap_up"
    assert model.dispositions == ("sale",)
    assert model.card_version > version  # the desk fills the list again


def test_a_pending_command_disables_the_keys_until_answered_or_overdue() -> None:
    model = DeskModel(AGENT)
    model.apply(state(AgentState.NOT_READY), T0)
    assert model.allows("ready") is True
    command = SetReady(agent_id=AGENT)
    model.sent(command, T0)
    assert model.allows("ready") is None
    assert model.why_not("ready") == "Waiting for the engine's answer to your last action."
    assert not model.answer_overdue(T0 + ANSWER_TIMEOUT_S)
    assert model.answer_overdue(T0 + ANSWER_TIMEOUT_S + 1)
    model.sent(command, T0)
    refused = model.apply(CommandResult(command_id=command.command_id, ok=False, error="no"), T0)
    assert model.pending is None
    assert Notify("no", title="Refused", severity="error") in refused


def test_the_event_an_accept_or_hang_up_causes_is_its_answer() -> None:
    model = DeskModel(AGENT)
    pop = known_pop("c1")
    model.apply(state(AgentState.READY), T0)
    model.apply(offered(pop), T0)
    accept = AcceptOffer(agent_id=AGENT, call_id="c1")
    model.sent(accept, T0)
    assert model.allows("hang_up") is False
    model.apply(CallConnected(agent_id=AGENT, call_id="c1", command_id="another"), T0)
    assert model.pending == accept.command_id  # not this command's answer
    reactions = model.apply(
        CallConnected(agent_id=AGENT, call_id="c1", command_id=accept.command_id), T0
    )
    assert model.pending is None  # answered, before the Talking state comes
    assert view(model) == "talking"
    assert not any(isinstance(r, Notify) and r.severity == "error" for r in reactions)
    hang_up = HangUp(agent_id=AGENT, call_id="c1")
    model.sent(hang_up, T0)
    model.apply(
        CallEnded(agent_id=AGENT, call_id="c1", by="agent", command_id=hang_up.command_id), T0
    )
    assert model.pending is None
    assert view(model) == "wrap_up"


def test_a_refused_login_is_said_under_the_form() -> None:
    model = DeskModel(AGENT)
    reactions = model.apply(CommandResult(command_id="x", ok=False, error="unknown agent"), T0)
    assert LoginStatus("Login refused: unknown agent") in reactions


def test_actions_belong_to_their_view_and_follow_the_line() -> None:
    model = DeskModel(AGENT)
    assert model.allows("ready") is None  # log in first: shown, disabled
    assert model.allows("answer") is False
    model = talking_model(known_pop("c1").model_copy(update={"line": LineFeatures(hold=False)}))
    assert model.allows("answer") is False  # another view's: hidden
    assert model.allows("hang_up") is True
    assert model.allows("hold") is None
    assert model.why_not("hold") == "This call's line cannot hold calls."
    assert model.allows("hand_over") is False  # only while consulting
    model.apply(
        CallControl(agent_id=AGENT, call_id="c1", consult_state="talking", consult_agent="1002"),
        T0,
    )
    assert model.consulting
    assert model.allows("hand_over") is True
    assert model.allows("transfer") is False


def test_the_disposition_keys_count_what_wrap_up_offers() -> None:
    model = DeskModel(AGENT)
    model.apply(state(AgentState.READY), T0)
    model.apply(offered(known_pop("c1"), dispositions=("sale", "no sale")), T0)
    model.apply(CallConnected(agent_id=AGENT, call_id="c1"), T0)
    model.apply(CallEnded(agent_id=AGENT, call_id="c1", by="caller"), T0)
    assert view(model) == "wrap_up"
    assert model.allows("disposition", (2,)) is True
    assert model.allows("disposition", (3,)) is None


def queue_status(waiting: int) -> QueueStatus:
    return QueueStatus(
        queue="sales",
        waiting=waiting,
        longest_wait_s=2.0 * waiting,
        agents_ready=1,
        agents_busy=0,
        agents_logged_in=1,
        offered=0,
        answered=0,
        abandoned=0,
        service_level=None,
        asa_s=None,
        at_wall=T0,
    )


def test_the_queue_figures_are_kept_by_queue() -> None:
    model = DeskModel(AGENT)
    model.apply(queue_status(3), T0)
    model.apply(queue_status(1), T0)
    assert model.queue_statuses["sales"].waiting == 1


def test_the_script_loads_once_and_its_run_goes_with_the_wrap_up() -> None:
    model = DeskModel(AGENT)
    model.apply(state(AgentState.READY), T0)
    pop = pop_with(call_script("outbound_survey"))
    loads = [r for r in model.apply(offered(pop), T0) if isinstance(r, LoadScript)]
    assert len(loads) == 1
    assert loads[0].script is not None
    assert loads[0].context["agent.id"] == AGENT
    # The same offer again (a reconnect) keeps the run.
    assert not [r for r in model.apply(offered(pop), T0) if isinstance(r, LoadScript)]
    model.apply(state(AgentState.TALKING, "c1"), T0)
    run = runner.start(loads[0].script, loads[0].context)
    saved = [r.command for r in model.script_moved(run) if isinstance(r, Send)]
    assert [type(c) for c in saved] == [SaveScriptRun]
    assert not model.script_moved(run)  # unchanged: not sent again
    model.apply(CallEnded(agent_id=AGENT, call_id="c1", by="agent"), T0)
    [send] = model.wrap_up("done", "", T0)
    assert isinstance(send, Send)
    assert isinstance(send.command, CompleteWrapUp)
    assert pop.script is not None
    assert send.command.script == pop.script.name
    assert send.awaits_answer


def test_a_damaged_script_is_not_run() -> None:
    model = DeskModel(AGENT)
    model.apply(state(AgentState.READY), T0)
    pop = pop_with(call_script("outbound_survey", damage=True))
    [load] = [r for r in model.apply(offered(pop), T0) if isinstance(r, LoadScript)]
    assert load.script is None
    assert "SHA-256" in load.problems[0]


def test_agent_ids_that_cannot_be_topics_are_refused() -> None:
    assert agent_id_problem("1001") is None
    assert agent_id_problem("") is not None
    assert "'/'" in (agent_id_problem("a/b") or "")


def test_the_wrap_up_banner_names_the_customer_identified_during_the_call() -> None:
    model = talking_model()
    chosen = Customer(id=77, name="王军")
    model.caller_identified(chosen)
    model.apply(state(AgentState.WRAP_UP, "c1"), T0 + 60)
    banner = wrap_up_banner_text(model, T0 + 61).plain
    assert "王军" in banner
    assert model.offer is not None
    assert model.offer.pop.customer is not None
    assert model.offer.pop.customer.name not in banner
