"""What the engine needs of its store: the customer look-up behind a screen-pop, and
where finished calls and script runs are kept (the store's ``calls`` and ``script_runs``
repositories). The SQLite store does all of it; a bare :class:`CustomerDirectory` (the
simulator's) is enough to route."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from cti.customers.base import CustomerCard
from cti.models import CallDetailRecord, Customer, Interaction, OutboxItem, ScriptRun


class CustomerDirectory(Protocol):
    """What the service needs of the store to pop a customer card."""

    async def find_by_number(self, e164: str) -> list[Customer]: ...

    async def recent_interactions(
        self, customer_id: int, limit: int = 5
    ) -> tuple[Interaction, ...]: ...


@runtime_checkable
class CustomerCards(Protocol):
    """A directory that also gives the screen-pop's history, service items and value
    inputs in one call (the store does; a bare :class:`CustomerDirectory` is enough)."""

    async def customer_card(self, customer_id: int) -> CustomerCard: ...


class CallRecordSink(Protocol):
    """Where finished calls' records go (the store's :class:`cti.store.calls.CallRecords`)."""

    async def record_call(self, cdr: CallDetailRecord) -> object: ...


class CallRecorder(Protocol):
    """Where finished calls are kept: their records, and their customers' history."""

    @property
    def calls(self) -> CallRecordSink: ...

    async def add_interaction(self, customer_id: int, interaction: Interaction) -> None: ...


class ScriptRunSink(Protocol):
    """Where script runs go (the store's :class:`cti.store.script_runs.ScriptRunRows`)."""

    async def record(self, run: ScriptRun, outbox: Sequence[OutboxItem] = ()) -> None: ...


@runtime_checkable
class ScriptRunRecorder(Protocol):
    """A recorder that also keeps what a call's script recorded (the store does)."""

    @property
    def script_runs(self) -> ScriptRunSink: ...
