"""The engine's outbox task: what call scripts left for other systems, carried out
(e-mails by :mod:`.mail`, do-not-call requests by :mod:`.do_not_call`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cti.config import Config
from cti.engine.directory import CallRecorder
from cti.engine.do_not_call import DoNotCall
from cti.engine.mail import Mailer
from cti.store.database import Store


async def serve_outbox(recorder: CallRecorder | None, config: Callable[[], Config]) -> None:
    """Send the mails and carry out the do-not-call requests until cancelled; returns at
    once without a store (there is no outbox)."""
    if not isinstance(recorder, Store):
        return
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(Mailer(recorder, config).serve(), name="engine:mail")
        tasks.create_task(DoNotCall(recorder).serve(), name="engine:do-not-call")
