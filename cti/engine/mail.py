"""The mailer: sends the e-mails call scripts ask for (``send_email``), from the outbox.

A script's ``send_email`` is kept as an outbox row when the call is wrapped up
(:mod:`cti.engine.script_runs`). :meth:`Mailer.serve`, a task of the engine, takes the
rows that are due, fills the action's template (``[mail.templates]``) with the customer
as stored now, and sends it over SMTP (aiosmtplib, ``[mail]``: TLS, login with a
password read from a file, a timeout on every exchange). A mail that cannot be filled
or addressed is refused and never sent; the server's refusal (5xx) is final; anything
else (4xx, a timeout, a server down) is tried again after a wait that doubles, at most
``max_attempts`` times. The row keeps the state (:class:`~cti.store.script_runs.MailState`)
and the outcome goes on the customer's history, which the desk's card shows: "e-mail
sent" or "e-mail failed" with the reason. The message is put together in
:mod:`cti.engine.mail_message`. Mails are sent at least once: one being sent when the
engine stops is sent again after its next wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

import aiosmtplib

from cti import log_limits
from cti.clock import real_io, wall_time
from cti.config import Config, MailSettings
from cti.engine.mail_message import (
    MailRefusedError,
    compose,
    judge,
    mail_values,
    pick_template,
    retry_delay,
    template_problems,
)
from cti.errors import CtiError, StoreError
from cti.models import Interaction, OutboxItem
from cti.store.database import Store

log = logging.getLogger(__name__)

#: Seconds between two looks at the outbox while ``[mail] host`` is not set.
IDLE_LOOK_S = 60.0
#: The largest template body file read (bytes).
MAX_BODY_FILE = 1_000_000
#: The channel of a mail's entry on the customer's history.
CHANNEL = "email"
SENT = "e-mail sent"
FAILED = "e-mail failed"


class Mailer:
    """Sends the outbox's mails (module docstring). ``config`` gives the configuration
    in force (a reloaded ``[mail]`` applies to the next mail)."""

    def __init__(self, store: Store, config: Callable[[], Config]) -> None:
        self._store = store
        self._rows = store.script_runs
        self._config = config
        self._wake = asyncio.Event()
        self._idle_said = False

    async def serve(self) -> None:
        """Send what is due, then wait for the next due mail or a new one; until
        cancelled. Nothing here stops the engine: a failure is logged and tried again."""
        self._rows.queued.append(self._wake.set)
        for problem in template_problems(self._config().mail):
            log.error("mail template: %s (its mails are refused)", problem)
        try:
            while True:
                self._wake.clear()  # before the round: a mail queued during it wakes the next
                wait = await self._round()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
        finally:
            self._rows.queued.remove(self._wake.set)

    async def _round(self) -> float | None:
        """One pass over the mails due; the seconds until the next (None: no mail waits)."""
        settings = self._config().mail
        try:
            if not settings.host:
                waiting = await self._rows.next_mail_wall()
                if waiting is not None and not self._idle_said:
                    log.warning("mails wait in the outbox: [mail] host is not set")
                self._idle_said = waiting is not None
                return IDLE_LOOK_S
            self._idle_said = False
            await self.send_due(wall_time())
            due = await self._rows.next_mail_wall()
        except StoreError as exc:
            log_limits.warning(log, "mail: %s (tried again later)", exc)
            return settings.retry_first_s
        except Exception:  # a fault here must not end the engine's task group
            log.exception("mail: the outbox's round failed (tried again later)")
            return settings.retry_first_s
        return None if due is None else max(0.0, due - wall_time())

    async def send_due(self, now: float) -> int:
        """Send (or refuse, or put off) every mail due at ``now``; how many were handled."""
        settings = self._config().mail
        if not settings.host:
            return 0
        due = await self._rows.mail_due(now)
        for item, attempts in due:
            await self._one(item, attempts, settings, now)
        return len(due)

    async def _one(
        self, item: OutboxItem, attempts: int, settings: MailSettings, now: float
    ) -> None:
        """One attempt at one mail: counted first (a mail being sent when the engine
        stops is tried again after the wait), then filled, sent and its outcome kept."""
        grace = settings.timeout_s * 4 + _wait(attempts + 1, settings)
        attempt = await self._rows.claim_mail(item.id, now + grace)
        if attempt is None:
            return  # replaced or done meanwhile
        try:
            message = await self._message(item, settings, now)
            await self._send(message, settings)
        except MailRefusedError as exc:
            log.warning("mail %d of call %s is not sent: %s", item.id, item.call_id, exc)
            await self._finish(item, "failed", now, str(exc))
            return
        except (aiosmtplib.SMTPException, OSError, CtiError) as exc:
            failure = judge(exc)
        except Exception as exc:  # a fault of ours: logged, and the mail tried again
            log.exception("mail %d of call %s", item.id, item.call_id)
            failure = judge(exc)
        else:
            to, subject = message["To"], message["Subject"]
            log.info("mail %d of call %s sent to %s", item.id, item.call_id, to)
            await self._finish(item, "sent", now, "", f"materials e-mailed to {to}: {subject}")
            return
        if failure.final or attempt >= settings.max_attempts:
            why = failure.reason
            if not failure.final:
                why = f"{why} (gave up after {attempt} attempts)"
            log.warning("mail %d of call %s failed: %s", item.id, item.call_id, why)
            await self._finish(item, "failed", now, why)
            return
        log_limits.warning(
            log, "mail %d of call %s: %s (tried again later)", item.id, item.call_id, failure.reason
        )
        await self._rows.mail_retry(item.id, now + _wait(attempt, settings), failure.reason)

    async def _message(self, item: OutboxItem, settings: MailSettings, now: float) -> EmailMessage:
        customer = await self._store.get_customer(item.customer_id) if item.customer_id else None
        run = await self._rows.get(item.call_id)
        names = {a.id: a.name for a in self._config().agents}
        values = mail_values(item, customer, run, names.get(run.agent_id, "") if run else "")
        name = item.args.get("template", "")
        if not isinstance(name, str) or not name:
            raise MailRefusedError("the send_email action names no template")
        key, template = pick_template(
            settings.templates, name, customer.language if customer else ""
        )
        body = template.body or await _read_body(template.body_file)
        return compose(item, values, (key, template, body), settings, now)

    async def _send(self, message: EmailMessage, settings: MailSettings) -> None:
        password = await _read_password(settings.password_file) if settings.password_file else None
        port = settings.port or {"none": 25, "starttls": 587, "tls": 465}[settings.tls]
        context = (
            ssl.create_default_context(cafile=settings.ca_file or None)
            if settings.tls != "none"
            else None
        )
        async with real_io():
            await aiosmtplib.send(
                message,
                hostname=settings.host,
                port=port,
                username=settings.user or None,
                password=password,
                timeout=settings.timeout_s,
                use_tls=settings.tls == "tls",
                start_tls=settings.tls == "starttls",
                tls_context=context,
            )

    async def _finish(
        self,
        item: OutboxItem,
        state: Literal["sent", "failed"],
        now: float,
        error: str,
        note: str = "",
    ) -> None:
        """The mail's final state, and its entry on its customer's history."""
        history = None
        if item.customer_id is not None:
            run = await self._rows.get(item.call_id)
            entry = Interaction(
                at=now,
                channel=CHANNEL,
                disposition=SENT if state == "sent" else FAILED,
                agent_id=run.agent_id if run is not None else "",
                note=note or f"{FAILED}: {error}",
                call_id=item.call_id,
            )
            history = (item.customer_id, entry)
        await self._rows.mail_finished(item.id, state, now, error, history)


def _wait(attempts: int, settings: MailSettings) -> float:
    return retry_delay(attempts, settings.retry_first_s, settings.retry_most_s)


async def _read_body(path: str) -> str:
    """A template's body file (UTF-8), read off the event loop."""

    def read() -> str:
        with open(path, "rb") as f:
            data = f.read(MAX_BODY_FILE + 1)
        if len(data) > MAX_BODY_FILE:
            raise CtiError(f"template body_file {path} is larger than {MAX_BODY_FILE} bytes")
        return data.decode("utf-8")

    try:
        async with real_io():
            return await asyncio.to_thread(read)
    except (OSError, UnicodeDecodeError) as exc:
        raise CtiError(f"template body_file {path} cannot be read: {exc}") from None


async def _read_password(path: str) -> str:
    """The SMTP password from ``[mail] password_file`` (its first line), read each time
    so a changed file applies; its text is never logged."""
    try:
        async with real_io():
            text = await asyncio.to_thread(Path(path).read_text, "utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CtiError(
            f"[mail] password_file {path} cannot be read: {type(exc).__name__}"
        ) from None
    return text.splitlines()[0] if text else ""
