"""FlowRun on virtual time: greeting, menus, keys, barge-in, timeouts from the prompt's
end, retries and their exit, sub-menus, repeat, voicemail, closed queues; and that no
sequence of keys and ticks crashes it or leaves it without a deadline while not done."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cti.call_flows import CallFlow, Hours
from scripts_engine.flow_runner import FlowRun
from scripts_engine.flow_steps import Enqueue, FlowStep, HangUp, Language, LeaveMessage, Say

#: Every clip plays 2 s; the greeting 3 s, the closed prompt 4 s.
LENGTHS = {"greeting": 3.0, "closed": 4.0}


def clip_length(language: Language, clip: str) -> float:
    return LENGTHS.get(clip, 2.0)


def flow(**changes: Any) -> CallFlow:
    data: dict[str, Any] = {
        "dnis": ["4008001234"],
        "queue": "general",
        "menu": "main",
        "menus": [
            {
                "name": "main",
                "prompt": "menu_main",
                "keys": {
                    "1": "queue:sales",
                    "2": "menu:support",
                    "0": "voicemail:general",
                    "*": "repeat",
                    "9": "hangup",
                },
                "timeout_s": 5.0,
                "max_retries": 2,
            },
            {
                "name": "support",
                "prompt": "menu_support",
                "keys": {"1": "queue:support", "#": "menu:main"},
                "timeout_s": 4.0,
                "max_retries": 1,
                "invalid_prompt": "",
                "after_retries": "voicemail:support",
            },
        ],
    }
    data.update(changes)
    return CallFlow.model_validate(data)


def closed_queues(*queues: str, rule: Hours | None = None) -> Any:
    rule = rule or Hours(queues=queues)  # closed = "message", closed_prompt = "closed"

    def closed(queue: str, now: float) -> Hours | None:
        return rule if queue in queues else None

    return closed


def run(the_flow: CallFlow | None = None, closed: Any = None, language: Language = "en") -> FlowRun:
    kwargs: dict[str, Any] = {"clip_length": clip_length}
    if closed is not None:
        kwargs["closed"] = closed
    return FlowRun(the_flow or flow(), language, **kwargs)


def say(*clips: str, language: Language = "en") -> list[FlowStep]:
    return [Say(language, clips)]


def test_greeting_and_menu_are_one_prompt_and_the_timeout_starts_at_its_end() -> None:
    r = run(language="zh")
    assert r.start(100.0) == say("greeting", "menu_main", language="zh")
    assert r.menu == "main"
    # 3 s greeting + 2 s menu, then 5 s for a key.
    assert r.next_deadline() == 110.0
    assert r.tick(109.9) == []
    assert r.tick(110.0) == say("no_key", "menu_main", language="zh")
    assert r.next_deadline() == 110.0 + 2 + 2 + 5


def test_a_key_routes_to_its_queue_and_the_flow_is_done() -> None:
    r = run()
    r.start(0.0)
    assert r.key("1", 6.0) == [Enqueue("sales")]
    assert r.done
    assert r.outcome == Enqueue("sales")
    assert r.next_deadline() is None
    assert r.key("2", 7.0) == []
    assert r.tick(1000.0) == []
    assert r.start(1000.0) == []


def test_barge_in_a_key_during_the_greeting_acts_at_once() -> None:
    r = run()
    r.start(0.0)
    assert r.key("2", 0.5) == say("menu_support")
    assert r.menu == "support"
    assert r.next_deadline() == 0.5 + 2 + 4


def test_wrong_keys_then_the_retries_exit() -> None:
    r = run()
    r.start(0.0)
    assert r.key("7", 1.0) == say("invalid_key", "menu_main")
    assert r.next_deadline() == 1.0 + 4 + 5
    assert r.key("#", 2.0) == say("invalid_key", "menu_main")
    # The third failure is over max_retries = 2: after_retries, by default the flow's queue.
    assert r.key("A", 3.0) == [Enqueue("general")]


def test_silence_and_wrong_keys_count_together() -> None:
    r = run()
    r.start(0.0)
    assert r.tick(10.0) == say("no_key", "menu_main")
    assert r.key("5", 12.0) == say("invalid_key", "menu_main")
    deadline = r.next_deadline()
    assert deadline == 12.0 + 4 + 5
    assert r.tick(deadline) == [Enqueue("general")]


def test_a_sub_menu_has_its_own_retries_prompts_and_exit() -> None:
    r = run()
    r.start(0.0)
    r.key("7", 1.0)  # one failure in main
    assert r.key("2", 2.0) == say("menu_support")
    # No invalid prompt in support: the menu again; max_retries = 1.
    assert r.key("3", 3.0) == say("menu_support")
    assert r.key("3", 4.0) == [LeaveMessage("support")]
    assert r.outcome == LeaveMessage("support")


def test_sub_menu_back_to_main_starts_the_count_again() -> None:
    r = run()
    r.start(0.0)
    r.key("7", 1.0)
    r.key("7", 2.0)
    r.key("2", 3.0)
    assert r.key("#", 4.0) == say("menu_main")
    assert r.key("7", 5.0) == say("invalid_key", "menu_main")
    assert r.key("7", 6.0) == say("invalid_key", "menu_main")
    assert not r.done


def test_repeat_says_the_menu_again_without_counting_a_failure() -> None:
    r = run()
    r.start(0.0)
    r.key("7", 1.0)
    r.key("7", 2.0)
    for t in (3.0, 4.0, 5.0):
        assert r.key("*", t) == say("menu_main")
        assert r.next_deadline() == t + 2 + 5
    assert r.key("7", 6.0) == [Enqueue("general")]  # the third failure


def test_voicemail_and_hangup_keys() -> None:
    r = run()
    r.start(0.0)
    assert r.key("0", 1.0) == [LeaveMessage("general")]
    r = run()
    r.start(0.0)
    assert r.key("9", 1.0) == [HangUp("hangup: key 9 in menu main")]


def test_after_retries_to_a_menu_or_hangup() -> None:
    menus = flow().model_dump()["menus"]
    menus[0]["after_retries"] = "menu:support"
    r = run(flow(menus=menus))
    r.start(0.0)
    for t in (1.0, 2.0):
        r.key("7", t)
    assert r.key("7", 3.0) == say("menu_support")
    menus[0]["after_retries"] = "hangup"
    r = run(flow(menus=menus))
    r.start(0.0)
    for t in (1.0, 2.0):
        r.key("7", t)
    (step,) = r.key("7", 3.0)
    assert isinstance(step, HangUp)
    assert "3 wrong or no keys in menu main" in step.reason


def test_no_menu_the_greeting_then_the_queue() -> None:
    r = run(flow(menu="", menus=[]))
    assert r.start(0.0) == say("greeting")
    assert r.next_deadline() == 3.0
    assert r.key("1", 1.0) == []  # no menu: keys do nothing
    assert r.tick(3.0) == [Enqueue("general")]


def test_no_menu_and_no_greeting_the_queue_at_once() -> None:
    r = run(flow(menu="", menus=[], greeting=""))
    assert r.start(0.0) == [Enqueue("general")]
    assert r.done


def test_a_closed_queue_says_so_then_hangs_up() -> None:
    r = run(closed=closed_queues("sales"))
    r.start(0.0)
    assert r.key("1", 6.0) == say("closed")
    assert r.next_deadline() == 10.0
    assert r.key("1", 7.0) == []  # keys do nothing while it says so
    assert r.tick(10.0) == [HangUp("queue sales closed")]
    assert r.done


def test_a_closed_queue_with_voicemail_leaves_a_message() -> None:
    rule = Hours(queues=("sales",), closed="voicemail", closed_prompt="")
    r = run(closed=closed_queues("sales", rule=rule))
    r.start(0.0)
    # No closed prompt: at once.
    assert r.key("1", 6.0) == [LeaveMessage("sales")]


def test_every_queue_closed_says_so_after_the_greeting_without_a_menu() -> None:
    rule = Hours(queues=("general", "sales", "support"), closed="voicemail")
    r = run(closed=closed_queues("general", "sales", "support", rule=rule))
    assert r.start(0.0) == say("greeting", "closed")
    assert r.next_deadline() == 7.0
    assert r.tick(7.0) == [LeaveMessage("general")]


def test_one_queue_open_keeps_the_menu() -> None:
    r = run(closed=closed_queues("general", "sales"))
    assert r.start(0.0) == say("greeting", "menu_main")
    # After the retries the flow's queue is closed too.
    r.key("7", 1.0)
    r.key("7", 2.0)
    assert r.key("7", 3.0) == say("closed")


def test_the_hours_are_asked_at_the_moment_of_routing() -> None:
    asked: list[tuple[str, float]] = []

    def closed(queue: str, now: float) -> Hours | None:
        asked.append((queue, now))
        return None

    r = run(closed=closed)
    r.start(0.0)
    r.key("1", 42.0)
    assert asked[-1] == ("sales", 42.0)


def test_broken_clip_lengths_count_as_nothing() -> None:
    def broken(language: Language, clip: str) -> float:
        return float("nan") if clip == "greeting" else -5.0

    r = FlowRun(flow(), "en", clip_length=broken)
    r.start(0.0)
    assert r.next_deadline() == 5.0  # the timeout alone


KEYS = st.sampled_from([*"0123456789*#ABCD", "", "11", "\x00", "queue:sales"])
ACTIONS = st.lists(
    st.tuples(st.sampled_from(["key", "tick", "wait"]), KEYS, st.floats(0, 30)), max_size=40
)
CLOSED = st.sets(st.sampled_from(["general", "sales", "support"]))


@settings(max_examples=300, deadline=None)
@given(actions=ACTIONS, closed=CLOSED, voicemail=st.booleans(), menu=st.booleans())
def test_no_input_crashes_it_or_leaves_it_without_a_deadline(
    actions: list[tuple[str, str, float]], closed: set[str], voicemail: bool, menu: bool
) -> None:
    rule = Hours(queues=("general",), closed="voicemail" if voicemail else "message")
    the_flow = flow() if menu else flow(menu="", menus=[])
    r = run(the_flow, closed=closed_queues(*closed, rule=rule))
    now = 0.0
    steps = r.start(now)
    for action, key, dt in actions:
        now += dt
        if action == "key":
            steps += r.key(key, now)
        elif action == "tick":
            steps += r.tick(now)
        else:
            deadline = r.next_deadline()
            if deadline is not None:
                now = max(now, deadline)
                steps += r.tick(now)
        assert r.done or r.next_deadline() is not None
    # A caller who stops pressing keys always leaves the flow, in a few prompts.
    for _ in range(20):
        deadline = r.next_deadline()
        if deadline is None:
            break
        now = max(now, deadline)
        steps += r.tick(now)
    assert r.done
    ends = [s for s in steps if not isinstance(s, Say)]
    assert ends == [r.outcome]
    assert all(s.clips for s in steps if isinstance(s, Say))
