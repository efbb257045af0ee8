"""The wallboard's model on its own: alerts, levels, agent rows, history, command answers."""

from __future__ import annotations

import math

import pytest

from agent_console.wallboard_model import (
    ALL_QUEUES,
    ANSWER_TIMEOUT_S,
    HISTORY_POINTS,
    ActionOutcome,
    AlertEvent,
    EngineTrouble,
    Level,
    LogEntry,
    WallboardModel,
)
from cti.config import WallboardSettings
from cti.models import AgentState
from cti.protocol import (
    AgentStateChanged,
    ChangeCallPriority,
    CommandResult,
    EngineHealth,
    ForceLogout,
    QueueCalls,
    QueueStatus,
    WaitingCall,
)

pytestmark = pytest.mark.console

T0 = 1767603600.0
SETTINGS = WallboardSettings(
    service_level_goal=0.8,
    service_level_alert=0.7,
    service_level_min_offered=5,
    service_level_clear_margin=0.02,
    longest_wait_warn_s=30,
    longest_wait_alert_s=60,
    longest_wait_clear_margin_s=5,
)


def status(
    at: float,
    *,
    queue: str = "general",
    sl: float | None = 0.9,
    offered: int = 20,
    waiting: int = 0,
    longest: float = 0.0,
    short: int = 0,
) -> QueueStatus:
    return QueueStatus(
        queue=queue,
        waiting=waiting,
        longest_wait_s=longest,
        agents_ready=1,
        agents_busy=1,
        agents_logged_in=2,
        offered=offered,
        answered=offered,
        abandoned=0,
        short_abandoned=short,
        service_level=sl,
        asa_s=10.0,
        at_wall=at,
    )


def sl_level(model: WallboardModel) -> Level:
    return model.queues["general"].service_level


def wait_level(model: WallboardModel) -> Level:
    return model.queues["general"].longest_wait


def alerts(entries: list[LogEntry]) -> list[tuple[str, bool]]:
    return [(e.kind, e.raised) for e in entries if isinstance(e, AlertEvent)]


def test_service_level_alert_fires_once_on_crossing_and_clears_past_the_margin() -> None:
    model = WallboardModel(SETTINGS)
    assert model.apply(status(T0, sl=0.85), T0) == []
    assert sl_level(model) is Level.OK

    assert model.apply(status(T0 + 1, sl=0.75), T0 + 1) == []  # below goal, above alert
    assert sl_level(model) is Level.WARN

    raised = model.apply(status(T0 + 2, sl=0.65), T0 + 2)
    assert alerts(raised) == [("service_level", True)]
    assert sl_level(model) is Level.ALERT
    assert "65%" in raised[0].text()
    assert "70%" in raised[0].text()

    # still below, and hovering just above the alert level: no repeat, still an alert
    for second, sl in enumerate((0.60, 0.66, 0.705, 0.69, 0.715), start=3):
        assert model.apply(status(T0 + second, sl=sl), T0 + second) == []
        assert sl_level(model) is Level.ALERT
    assert len(model.active_alerts) == 1

    cleared = model.apply(status(T0 + 9, sl=0.72), T0 + 9)  # alert + margin
    assert alerts(cleared) == [("service_level", False)]
    assert model.active_alerts == []
    assert sl_level(model) is Level.WARN
    assert [alerts([e]) for e in model.log] == [
        [("service_level", True)],
        [("service_level", False)],
    ]

    again = model.apply(status(T0 + 10, sl=0.5), T0 + 10)
    assert alerts(again) == [("service_level", True)]  # a new crossing is a new alert


def test_longest_wait_alert_with_hysteresis_and_warn_colour() -> None:
    model = WallboardModel(SETTINGS)
    model.apply(status(T0, waiting=2, longest=31), T0)
    assert wait_level(model) is Level.WARN
    raised = model.apply(status(T0 + 1, waiting=2, longest=61), T0 + 1)
    assert alerts(raised) == [("longest_wait", True)]
    assert "01:01" in raised[0].text()
    assert model.apply(status(T0 + 2, waiting=2, longest=90), T0 + 2) == []
    assert model.apply(status(T0 + 3, waiting=1, longest=58), T0 + 3) == []  # within margin
    assert model.alert_active("general", "longest_wait")
    cleared = model.apply(status(T0 + 4, waiting=1, longest=20), T0 + 4)
    assert alerts(cleared) == [("longest_wait", False)]
    assert wait_level(model) is Level.OK


def test_longest_wait_of_an_empty_queue_counts_as_none() -> None:
    model = WallboardModel(SETTINGS)
    model.apply(status(T0, waiting=1, longest=70), T0)
    cleared = model.apply(status(T0 + 1, waiting=0, longest=70), T0 + 1)
    assert alerts(cleared) == [("longest_wait", False)]


def test_too_few_calls_are_not_judged_and_a_reset_clears_the_alert() -> None:
    model = WallboardModel(SETTINGS)
    # 6 offered, 2 of them short abandons: 4 count, fewer than 5
    assert model.apply(status(T0, sl=0.25, offered=6, short=2), T0) == []
    assert sl_level(model) is Level.NONE
    assert alerts(model.apply(status(T0 + 1, sl=0.5, offered=7, short=2), T0 + 1)) == [
        ("service_level", True)
    ]
    cleared = model.apply(status(T0 + 2, sl=None, offered=0), T0 + 2)  # the counts started over
    assert alerts(cleared) == [("service_level", False)]
    assert isinstance(cleared[0], AlertEvent)
    assert math.isnan(cleared[0].value)
    assert "no longer measured" in cleared[0].text()


def test_alerts_are_per_queue_and_an_older_status_is_ignored() -> None:
    model = WallboardModel(SETTINGS, queue_order=["sales", "general"])
    model.apply(status(T0, queue="general", sl=0.5), T0)
    model.apply(status(T0, queue="sales", sl=0.9), T0)
    assert [(a.queue, a.kind) for a in model.active_alerts] == [("general", "service_level")]
    assert model.queue_names() == ["sales", "general"]
    assert model.apply(status(T0 - 5, queue="general", sl=0.95), T0) == []  # late retained
    assert model.queues["general"].status is not None
    assert model.queues["general"].status.service_level == 0.5


def test_agent_rows_take_state_reason_call_and_calls_handled() -> None:
    model = WallboardModel(SETTINGS, agent_names={"1001": "欧阳明月"})
    assert model.agents["1001"].state is None
    assert model.agents["1001"].state_label() == "not seen"
    model.take_changes()
    model.apply(
        QueueCalls(
            queue="general",
            calls=(
                WaitingCall(
                    call_id="c1", position=1, waited_s=3, estimated_wait_s=None, ani="+861380000"
                ),
            ),
            at_wall=T0,
        ),
        T0,
    )
    model.apply(
        AgentStateChanged(
            agent_id="1001", state=AgentState.TALKING, since_wall=T0, call_id="c1", calls_handled=4
        ),
        T0,
    )
    model.apply(
        AgentStateChanged(
            agent_id="2002", state=AgentState.NOT_READY, reason="lunch", since_wall=T0
        ),
        T0,
    )
    agents, queues, calls = model.take_changes()
    assert agents == {"1001", "2002"}
    assert queues == {"general"}
    assert calls
    row = model.agents["1001"]
    assert (row.name, row.state, row.call_id, row.calls_handled) == (
        "欧阳明月",
        AgentState.TALKING,
        "c1",
        4,
    )
    assert model.caller_of("c1") == "+861380000"
    assert model.agents["2002"].state_label() == "Not ready (lunch)"
    assert model.take_changes() == (set(), set(), False)


def test_command_answers_and_unanswered_commands() -> None:
    model = WallboardModel(SETTINGS, agent_names={"1001": "王伟"})
    logout = ForceLogout(supervisor_id="s", agent_id="1001")
    priority = ChangeCallPriority(supervisor_id="s", call_id="c9", priority=50)
    assert model.sent(logout, T0) == "agent 1001 王伟 logged out"
    model.sent(priority, T0)

    [refused] = model.apply(
        CommandResult(command_id=logout.command_id, ok=False, error="agent is talking"), T0 + 1
    )
    assert isinstance(refused, ActionOutcome)
    assert not refused.ok
    assert refused.text() == "Refused: agent 1001 王伟 logged out: agent is talking"
    # a repeat of the answer (at-least-once delivery) and another wallboard's answer: nothing
    assert model.apply(CommandResult(command_id=logout.command_id, ok=True), T0 + 1) == []
    assert model.apply(CommandResult(command_id="someone-else", ok=True), T0 + 1) == []

    assert model.overdue(T0 + ANSWER_TIMEOUT_S) == []
    [late] = model.overdue(T0 + ANSWER_TIMEOUT_S + 0.1)
    assert not late.ok
    assert "no answer" in late.error
    assert late.command_id == priority.command_id
    assert model.overdue(T0 + 60) == []
    assert model.pending_commands() == []
    assert [type(e) for e in model.log] == [ActionOutcome, ActionOutcome]


def test_history_keeps_the_most_waiting_per_bucket_and_the_center_service_level() -> None:
    model = WallboardModel(SETTINGS)
    bucket = model.bucket_s
    assert bucket == 60.0  # an hour in 60 points
    start = T0 - T0 % bucket
    model.apply(status(start, queue="general", waiting=3, sl=0.9, offered=10), start)
    model.apply(status(start + 1, queue="sales", waiting=1, sl=0.5, offered=30), start + 1)
    model.apply(status(start + 2, queue="general", waiting=1, sl=0.9, offered=10), start + 2)
    model.apply(status(start + 3 * bucket, queue="general", waiting=2, sl=1.0), start)

    waiting, service = model.history("general", now=start + 3 * bucket)
    assert waiting == [3, 0, 0, 2]  # the most in each minute; none reported in between
    assert service == [90, 90, 90, 100]  # the level carries over a quiet minute
    center, center_sl = model.history(ALL_QUEUES, now=start + 3 * bucket)
    assert center[0] == 4  # 3 + 1 before general dropped to 1
    # weighted by the calls each queue counts: (0.9 x 10 + 0.5 x 30) / 40 = 0.6
    assert center_sl[0] == pytest.approx(60)
    assert model.center_waiting() == 3

    later = start + (HISTORY_POINTS + 10) * bucket
    waiting, _ = model.history("general", now=later)
    assert len(waiting) <= HISTORY_POINTS
    assert model.history("nowhere", now=later) == ([], [])


def test_thresholds_come_from_the_configuration_and_must_be_ordered() -> None:
    from cti.config import load_config
    from cti.errors import ConfigError

    config = load_config(overrides={"wallboard": {"service_level_alert": 0.5}})
    assert config.wallboard.service_level_alert == 0.5
    with pytest.raises(ConfigError, match="service_level_alert"):
        load_config(overrides={"wallboard": {"service_level_alert": 0.9}})


DISK_FULL = "journal /var/lib/cti/journal.db not written ([Errno 28] No space left on device)"


def test_engine_trouble_from_its_start_until_the_engine_says_it_is_over() -> None:
    model = WallboardModel(SETTINGS)
    assert model.engine_trouble is None
    ok = EngineHealth(ok=True, at_wall=T0 - 60)
    assert model.apply(ok, T0) == []
    assert not model.log

    disk = EngineHealth(ok=False, alerts=(DISK_FULL,), journal_held=12, at_wall=T0)
    [raised] = model.apply(disk, T0 + 1)
    assert isinstance(raised, EngineTrouble)
    assert raised.raised
    assert model.engine_trouble == raised
    assert raised.since_wall == T0
    assert model.health_changed
    assert raised.held() == "12 router inputs"
    assert raised.lost() == ""
    assert raised.text() == f"engine: {DISK_FULL} · held in memory: 12 router inputs"
    assert model.apply(disk, T0 + 2) == []  # the retained message again (a reconnection)

    # the store's disk fills too, and the spool overflows: news, the start stays
    worse = EngineHealth(
        ok=False,
        alerts=(DISK_FULL, "call records not stored (disk full): 1 held in memory"),
        journal_held=5000,
        records_held=1,
        inputs_lost=2013,
        records_lost=1,
        at_wall=T0 + 30,
    )
    [changed] = model.apply(worse, T0 + 31)
    assert isinstance(changed, EngineTrouble)
    assert changed.raised
    assert changed.since_wall == T0
    assert changed.held() == "5,000 router inputs, 1 call record"
    assert changed.lost() == "2,013 inputs not journaled, 1 call record not held"
    assert model.apply(disk, T0 + 32) == []  # older than what is shown
    assert model.engine_trouble is not None
    assert model.engine_trouble.health == worse

    model.health_changed = False
    [cleared] = model.apply(EngineHealth(ok=True, at_wall=T0 + 90), T0 + 91)
    assert isinstance(cleared, EngineTrouble)
    assert not cleared.raised
    assert cleared.text() == "engine: all written again"
    assert cleared.since_wall == T0
    assert model.engine_trouble is None
    assert model.health_changed
    assert [e.raised for e in model.log if isinstance(e, EngineTrouble)] == [True, True, False]


def test_a_queue_sent_in_part_says_how_many_wait() -> None:
    model = WallboardModel(SETTINGS, queue_order=["general", "sales"])
    calls = tuple(
        WaitingCall(call_id=f"c{n}", position=n, waited_s=1, estimated_wait_s=None, ani="1")
        for n in range(1, 201)
    )
    model.apply(QueueCalls(queue="general", calls=calls, total=2013, at_wall=T0), T0)
    model.apply(QueueCalls(queue="sales", calls=calls[:3], total=3, at_wall=T0), T0)
    assert model.calls_cut() == [("general", 200, 2013)]
    # from an engine without the total: the calls are all there are
    model.apply(QueueCalls(queue="general", calls=calls[:5], at_wall=T0 + 1), T0 + 1)
    assert model.calls_cut() == []
    assert model.queues["general"].calls_waiting == 5


@pytest.mark.recovery
def test_a_board_started_mid_trouble_shows_its_real_start_and_refreshes_log_nothing() -> None:
    """The engine says since when (kept across changes of kind) and re-publishes its
    health each status interval while a trouble lasts: a board started an hour into it
    shows the real start, and the counts move on the banner without a log line each."""
    model = WallboardModel(SETTINGS)
    start = T0 - 3600
    held = EngineHealth(
        ok=False,
        alerts=(DISK_FULL,),
        kinds=("journal",),
        journal_held=40_000,
        at_wall=T0,
        since_wall=start,
    )
    [raised] = model.apply(held, T0)  # the retained message, as the board starts
    assert isinstance(raised, EngineTrouble)
    assert raised.since_wall == start

    refresh = held.model_copy(update={"journal_held": 40_500, "at_wall": T0 + 1})
    model.health_changed = False
    assert model.apply(refresh, T0 + 1) == []  # a refresh: nothing on the log
    assert model.health_changed
    trouble = model.engine_trouble
    assert trouble is not None
    assert trouble.held() == "40,500 router inputs"
    assert trouble.since_wall == start

    spilled = refresh.model_copy(
        update={
            "kinds": ("journal", "journal_lost"),
            "alerts": (DISK_FULL, "journal spool full: 12 inputs not journaled"),
            "inputs_lost": 12,
            "at_wall": T0 + 2,
        }
    )
    [changed] = model.apply(spilled, T0 + 2)  # a new kind: news, the start kept
    assert isinstance(changed, EngineTrouble)
    assert changed.since_wall == start

    [cleared] = model.apply(EngineHealth(ok=True, at_wall=T0 + 3), T0 + 3)
    assert isinstance(cleared, EngineTrouble)
    assert not cleared.raised
    assert cleared.since_wall == start
    assert model.engine_trouble is None
    assert [e.raised for e in model.log if isinstance(e, EngineTrouble)] == [True, True, False]


@pytest.mark.parametrize(
    ("kind", "value", "threshold", "says"),
    [
        (
            "longest_wait",
            60.4,
            60.0,
            "general: longest wait passed the 01:00 alert (now 01:00)",
        ),
        (
            "service_level",
            0.695,
            0.70,
            "general: service level fell below the 70% alert (now 69.5%)",
        ),
    ],
)
def test_an_alert_names_the_threshold_it_crossed(
    kind: str, value: float, threshold: float, says: str
) -> None:
    """Not "longest wait 01:00 is over 01:00" (issue 21): which threshold, and the figure."""
    event = AlertEvent(0.0, "general", kind, True, value, threshold)  # type: ignore[arg-type]
    assert event.text() == says
