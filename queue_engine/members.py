"""The kernel's agent states and queue strategies as module constants, for the router's
hot paths.

Compiled with mypyc (:mod:`simulators.compiled`), ``AgentState.READY`` is a class
attribute of an enum defined in an uncompiled module: every read goes through
``EnumType.__getattr__`` (about 0.1 us, a dozen times per router input). A ``Final``
module constant of a compiled module is a C static instead. The constants are the very
enum members (``READY is AgentState.READY``); interpreted, they cost nothing either.
"""

from __future__ import annotations

from typing import Final

from cti.models import AgentState, Segment, Strategy

LOGGED_OUT: Final = AgentState.LOGGED_OUT
NOT_READY: Final = AgentState.NOT_READY
READY: Final = AgentState.READY
RESERVED: Final = AgentState.RESERVED
TALKING: Final = AgentState.TALKING
WRAP_UP: Final = AgentState.WRAP_UP

FEWEST_CALLS: Final = Strategy.FEWEST_CALLS
LEAST_TALK_TIME: Final = Strategy.LEAST_TALK_TIME
ROUND_ROBIN: Final = Strategy.ROUND_ROBIN
RANDOM: Final = Strategy.RANDOM
BEST_PROFICIENCY: Final = Strategy.BEST_PROFICIENCY
RING_ALL: Final = Strategy.RING_ALL

BASIC: Final = Segment.BASIC
