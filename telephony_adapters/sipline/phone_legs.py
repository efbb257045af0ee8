"""Which agents' phones a call needs, from its audio plan (sans-I/O).

The engine's :class:`~telephony_adapters.base.AudioPlan` names the agents a call wants:
rung (an offer), or connected (in a room, or hearing music while the caller waits with
them). :func:`phone_steps` compares it with the legs the line has to those phones and
says what to do: ring a phone (with the caller on its display), answer one by itself (an
agent who accepted on the desk while its phone rang: its ringing leg is withdrawn and
the phone rung again with auto-answer), or withdraw a leg (CANCEL while ringing, BYE
once answered) for an agent the plan no longer names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from telephony_adapters.base import CALLER, AudioPlan


@dataclass(slots=True)
class PhoneLeg:
    """The line's leg to one agent's phone for one call."""

    agent_id: str
    leg_id: str
    auto_answer: bool = False
    answered: bool = False


@dataclass(frozen=True, slots=True)
class RingPhone:
    agent_id: str
    display: str
    auto_answer: bool


@dataclass(frozen=True, slots=True)
class WithdrawLeg:
    agent_id: str


PhoneStep = RingPhone | WithdrawLeg


def connected_agents(plan: AudioPlan) -> frozenset[str]:
    """The agents the plan wants talking or listening (not only rung)."""
    return frozenset(set().union(*plan.rooms, plan.music) - {CALLER})


def phone_steps(plan: AudioPlan, legs: Mapping[str, PhoneLeg], display: str) -> list[PhoneStep]:
    """What to do so that the call's phone legs match ``plan`` (``legs``: by agent id, the
    legs not yet over; ``display``: the caller as phones show it when no ring says)."""
    wanted = plan.agents()
    connected = connected_agents(plan)
    shown = {ring.agent_id: ring.display for ring in plan.ring}
    steps: list[PhoneStep] = []
    for agent, leg in legs.items():
        if agent not in wanted:
            steps.append(WithdrawLeg(agent))
        elif agent in connected and not leg.answered and not leg.auto_answer:
            # Accepted on the desk while the phone rings: it answers by itself now.
            steps.append(WithdrawLeg(agent))
            steps.append(RingPhone(agent, shown.get(agent, display), auto_answer=True))
    for agent in sorted(wanted - set(legs)):
        steps.append(RingPhone(agent, shown.get(agent, display), auto_answer=agent in connected))
    return steps
