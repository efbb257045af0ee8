"""The mailer (cti/engine/mail.py): a script's send_email sent over SMTP to a local
aiosmtpd server the test starts on 127.0.0.1 (a free port) and stops; the state in the
store and on the customer's history (what the desk's card shows)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from agent_console.widgets import details_text
from cti.config import Config, MailSettings, MailTemplate, load_config
from cti.engine.mail import Mailer
from cti.errors import ConfigError
from cti.events import CustomerDetails
from cti.models import Customer, OutboxItem, ScriptRun
from cti.store.database import Store
from tests.harness import until, until_async

NOW = 1_780_000_000.0
NAME = "王小明"
SUBJECT = "{customer.name}，您好：您要的资料"
BODY = "{customer.name}您好：\n\n附上{answers.product}的资料。客服 {agent.name}\n"
#: The test server's certificate (self-signed for 127.0.0.1, made with openssl for these
#: tests) and its key.
CERT = Path(__file__).with_name("mail_test_cert.pem")
KEY = Path(__file__).with_name("mail_test_key.pem")
PASSWORD = "s3cret 密码"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Handler:
    """aiosmtpd's handler: answers RCPT with the codes queued in ``rcpt`` (then 250),
    and keeps each message accepted."""

    rcpt: list[str] = field(default_factory=list)
    received: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.rcpt:
            return self.rcpt.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(parsed)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 Message accepted"


@dataclass
class Smtp:
    handler: Handler
    port: int


@contextmanager
def smtp_server(**options: Any) -> Iterator[Smtp]:
    """aiosmtpd on 127.0.0.1 at a free port (``options``: TLS, login), stopped after."""
    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield Smtp(handler, port)
    finally:
        controller.stop()


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    with smtp_server() as server:
        yield server


def server_tls() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(CERT, KEY)
    return context


def desk_login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
) -> AuthResult:
    """aiosmtpd's authenticator: user desk with :data:`PASSWORD`."""
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"desk",
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "cti.db") as opened:
        await opened.add_customers(
            [
                Customer(id=7, name=NAME, email="xiaoming@example.com", language="zh"),
                Customer(id=8, name="Evil\r\nBcc: all@example.com", email="evil@example.com"),
            ]
        )
        yield opened


def config(port: int, **mail: Any) -> Config:
    templates = {
        "materials": MailTemplate(subject="Materials for {customer.name}", body="Hello"),
        "materials.zh": MailTemplate(subject=SUBJECT, body=BODY),
    }
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "tls": "none",
        "from_address": "desk@example.com",
        "from_name": "客服中心",
        "timeout_s": 5.0,
        "max_attempts": 3,
        "retry_first_s": 60.0,
        "retry_most_s": 600.0,
        "templates": templates,
    } | mail
    return Config(agents=(), mail=MailSettings(**settings))


async def queue_mail(
    store: Store, call_id: str, customer_id: int | None = 7, **args: str
) -> OutboxItem:
    """A wrapped-up call whose script asked for the materials (as the engine keeps it)."""
    run = ScriptRun(
        call_id=call_id,
        agent_id="1001",
        customer_id=customer_id,
        script="service",
        version="1",
        answers={"product": "宽带套餐"},
        recorded_wall=NOW - 5,
    )
    item = OutboxItem(
        call_id=call_id,
        customer_id=customer_id,
        action="send_email",
        args={"template": "materials", "to": "xiaoming@example.com"} | args,
        created_wall=NOW - 5,
    )
    await store.script_runs.record(run, [item])
    [queued] = [i for i in await store.script_runs.outbox() if i.call_id == call_id]
    return queued


async def test_a_mail_goes_out_with_the_customers_chinese_text(smtp: Smtp, store: Store) -> None:
    item = await queue_mail(store, "c1")
    mailer = Mailer(store, lambda: config(smtp.port))
    assert await mailer.send_due(NOW) == 1
    [message] = smtp.handler.received
    assert message["Subject"] == f"{NAME}，您好：您要的资料"
    body = message.get_body(("plain",))
    assert body is not None
    # MIME text travels with CRLF line ends (its canonical form)
    lines = body.get_content().splitlines()
    assert lines == [f"{NAME}您好：", "", "附上宽带套餐的资料。客服 1001"]
    assert body.get_content_charset() == "utf-8"
    assert message["To"] == "xiaoming@example.com"
    assert message["From"].addresses[0].display_name == "客服中心"
    assert smtp.handler.envelopes == [("desk@example.com", ["xiaoming@example.com"])]
    state = await store.script_runs.mail_state(item.id)
    assert state is not None
    assert (state.state, state.attempts, state.done_wall, state.error) == ("sent", 1, NOW, "")
    assert await store.script_runs.outbox() == []  # done
    [entry] = await store.recent_interactions(7)
    assert (entry.channel, entry.disposition, entry.call_id) == ("email", "e-mail sent", "c1")
    assert entry.note == f"materials e-mailed to xiaoming@example.com: {NAME}，您好：您要的资料"
    assert await mailer.send_due(NOW + 3600) == 0  # never twice


async def test_a_temporary_refusal_is_tried_again_after_the_wait(smtp: Smtp, store: Store) -> None:
    item = await queue_mail(store, "c2")
    smtp.handler.rcpt.append("451 4.3.0 try later")
    mailer = Mailer(store, lambda: config(smtp.port))
    await mailer.send_due(NOW)
    state = await store.script_runs.mail_state(item.id)
    assert state is not None
    assert (state.state, state.attempts, state.next_wall) == ("pending", 1, NOW + 60)
    assert "451" in state.error
    assert await mailer.send_due(NOW + 59) == 0  # not before its wait
    assert smtp.handler.received == []
    assert await mailer.send_due(NOW + 60) == 1
    assert len(smtp.handler.received) == 1
    state = await store.script_runs.mail_state(item.id)
    assert state is not None
    assert (state.state, state.attempts) == ("sent", 2)


async def test_a_permanent_refusal_is_final_with_its_reason(smtp: Smtp, store: Store) -> None:
    item = await queue_mail(store, "c3")
    smtp.handler.rcpt.append("550 5.1.1 no such mailbox")
    mailer = Mailer(store, lambda: config(smtp.port))
    await mailer.send_due(NOW)
    state = await store.script_runs.mail_state(item.id)
    assert state is not None
    assert (state.state, state.attempts, state.done_wall) == ("failed", 1, NOW)
    assert "550" in state.error
    assert "no such mailbox" in state.error
    assert await mailer.send_due(NOW + 3600) == 0  # not tried again
    [entry] = await store.recent_interactions(7)
    assert entry.disposition == "e-mail failed"
    assert entry.note == f"e-mail failed: {state.error}"


async def test_a_server_that_is_down_is_tried_then_given_up(store: Store) -> None:
    item = await queue_mail(store, "c4")
    mailer = Mailer(store, lambda: config(free_port()))  # nobody listens there
    waits = []
    now = NOW
    for _ in range(3):
        assert await mailer.send_due(now) == 1
        state = await store.script_runs.mail_state(item.id)
        assert state is not None
        waits.append(state.next_wall - now)
        now = state.next_wall
    assert waits[:2] == [60.0, 120.0]  # doubling
    assert state is not None
    assert state.state == "failed"
    assert state.attempts == 3
    assert "gave up after 3 attempts" in state.error
    [entry] = await store.recent_interactions(7)
    assert entry.disposition == "e-mail failed"


async def test_a_server_that_does_not_answer_times_out(store: Store) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # no greeting, ever
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        item = await queue_mail(store, "c5")
        await Mailer(store, lambda: config(port, timeout_s=0.2)).send_due(NOW)
    finally:
        server.close()
        await server.wait_closed()
    state = await store.script_runs.mail_state(item.id)
    assert state is not None
    assert (state.state, state.attempts) == ("pending", 1)
    assert "in time" in state.error


async def test_an_unfilled_variable_refuses_the_mail(smtp: Smtp, store: Store) -> None:
    templates = {"materials": MailTemplate(subject="For {customer.name}", body="{answers.plan}")}
    item = await queue_mail(store, "c6", customer_id=7)
    mailer = Mailer(store, lambda: config(smtp.port, templates=templates))
    await mailer.send_due(NOW)
    assert smtp.handler.received == []
    state = await store.script_runs.mail_state(item.id)
    assert state is not None
    assert state.state == "failed"
    assert state.error == "template 'materials''s body needs answers.plan, which has no value"
    [entry] = await store.recent_interactions(7)
    assert entry.note == f"e-mail failed: {state.error}"


@pytest.mark.security
@pytest.mark.parametrize(
    ("customer_id", "to", "why"),
    [
        (8, "evil@example.com", "the subject holds a line break"),
        (7, "a@example.com\r\nBcc: all@example.com", "the address holds a line break"),
        (7, "a@example.com, b@example.com", "is not an e-mail address"),
        (7, "a" * 250 + "@example.com", "longer than 254"),
        (7, "‹customer.email?›", "the address has no value"),
        (None, "", "no address to send to"),
    ],
)
async def test_header_injection_and_bad_addresses_are_refused(
    smtp: Smtp, store: Store, customer_id: int | None, to: str, why: str
) -> None:
    item = await queue_mail(store, "c7", customer_id=customer_id, to=to)
    await Mailer(store, lambda: config(smtp.port)).send_due(NOW)
    assert smtp.handler.received == []
    state = await store.script_runs.mail_state(item.id)
    assert state is not None
    assert state.state == "failed"
    assert why in state.error


async def test_the_desk_card_shows_the_mail_state(smtp: Smtp, store: Store) -> None:
    await queue_mail(store, "c8")
    smtp.handler.rcpt.append("550 5.7.1 relaying denied")
    await Mailer(store, lambda: config(smtp.port)).send_due(NOW)
    customer = await store.get_customer(7)
    assert customer is not None
    card = await store.customer_card(7)
    shown = details_text(
        CustomerDetails(agent_id="1001", command_id="x", customer=customer, history=card.history),
        now=NOW,
    ).plain
    assert "e-mail failed" in shown
    assert "relaying denied" in shown


async def test_the_engine_task_sends_what_is_queued(smtp: Smtp, store: Store) -> None:
    mailer = Mailer(store, lambda: config(smtp.port))
    task = asyncio.create_task(mailer.serve())
    try:
        item = await queue_mail(store, "c9")  # wakes the task

        async def sent() -> bool:
            state = await store.script_runs.mail_state(item.id)
            return state is not None and state.state == "sent"

        await until_async(sent, what="the mail sent")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(smtp.handler.received) == 1
    assert store.script_runs.queued == []  # the task let go of the store


async def test_a_mail_tried_is_not_dropped_when_the_run_is_stored_again(
    smtp: Smtp, store: Store
) -> None:
    item = await queue_mail(store, "c10")
    smtp.handler.rcpt.append("451 later")
    await Mailer(store, lambda: config(smtp.port)).send_due(NOW)
    await store.script_runs.record(
        ScriptRun(call_id="c10", agent_id="1001", script="s", version="1", recorded_wall=NOW)
    )
    assert [i.id for i in await store.script_runs.outbox()] == [item.id]


def test_mail_config_never_holds_a_password(tmp_path: Path) -> None:
    path = tmp_path / "center.toml"
    path.write_text('[mail]\nhost = "smtp.example.com"\nfrom_address = "a@example.com"\n'
                    'user = "desk"\npassword = "hunter2"\n', encoding="utf-8")  # fmt: skip
    with pytest.raises(ConfigError, match=r"mail\.password"):
        load_config(path)
    for bad, why in [
        ({"host": "smtp.example.com"}, "from_address"),
        ({"user": "desk"}, "password_file"),
        ({"from_address": "a@example.com\nBcc: b@example.com"}, "one line"),
        ({"templates": {"t": {"subject": "x\r\ny", "body": "b"}}}, "one line"),
        ({"templates": {"t": {"subject": "x"}}}, "body or body_file"),
        ({"tls": "ssl"}, "tls"),
    ]:
        with pytest.raises(ConfigError, match=why):
            load_config(overrides={"mail": bad})


@pytest.mark.security
@pytest.mark.parametrize(("password", "state"), [(PASSWORD, "sent"), ("wrong", "failed")])
async def test_starttls_and_login_with_the_password_file(
    store: Store, tmp_path: Path, password: str, state: str
) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text(password + "\n", encoding="utf-8")
    options = {
        "tls_context": server_tls(),
        "require_starttls": True,
        "authenticator": desk_login,
        "auth_required": True,
    }
    with smtp_server(**options) as server:
        item = await queue_mail(store, "t1")
        settings = {"tls": "starttls", "ca_file": str(CERT), "user": "desk"}
        mailer = Mailer(store, lambda: config(server.port, password_file=str(secret), **settings))
        await mailer.send_due(NOW)
        state_now = await store.script_runs.mail_state(item.id)
    assert state_now is not None
    assert state_now.state == state
    if state == "sent":
        assert [m["Subject"] for m in server.handler.received] == [f"{NAME}，您好：您要的资料"]
    else:
        assert server.handler.received == []
        assert "535" in state_now.error  # the login refused: final
        assert password not in state_now.error


async def test_tls_from_the_start_and_a_certificate_not_trusted(store: Store) -> None:
    with smtp_server(ssl_context=server_tls()) as server:
        trusted = await queue_mail(store, "t2")
        await Mailer(store, lambda: config(server.port, tls="tls", ca_file=str(CERT))).send_due(NOW)
        assert len(server.handler.received) == 1
        untrusted = await queue_mail(store, "t3")  # the system's trust store: not this one
        await Mailer(store, lambda: config(server.port, tls="tls")).send_due(NOW)
        assert len(server.handler.received) == 1
    sent = await store.script_runs.mail_state(trusted.id)
    refused = await store.script_runs.mail_state(untrusted.id)
    assert sent is not None
    assert refused is not None
    assert sent.state == "sent"
    assert (refused.state, refused.attempts) == ("pending", 1)  # tried again later
    assert "certificate" in refused.error.lower()


async def test_a_broken_template_is_said_at_start_and_its_mail_refused(
    smtp: Smtp, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    templates = {"materials": MailTemplate(subject="For {customer.name", body="Hello")}
    mailer = Mailer(store, lambda: config(smtp.port, templates=templates))
    task = asyncio.create_task(mailer.serve())
    try:
        await until(lambda: "[mail.templates.materials] subject" in caplog.text)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    item = await queue_mail(store, "b1")
    await mailer.send_due(NOW)
    state = await store.script_runs.mail_state(item.id)
    assert state is not None
    assert state.state == "failed"
    assert "'{' is never closed" in state.error
    assert smtp.handler.received == []
