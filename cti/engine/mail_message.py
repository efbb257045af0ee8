"""A script's e-mail put together, sans-I/O (the sending is :mod:`cti.engine.mail`).

The template a ``send_email`` action names is filled with the call's variables as a
script's text is (:mod:`scripts_engine.text`: values go in as plain text, never scanned
again); a variable with no value refuses the mail (:class:`MailRefusedError`), it is never
sent half-filled. Addresses are checked (one plain address, bounded length) and no
header value may hold a line break (header injection). The message is MIME with UTF-8:
a Chinese subject goes as an encoded word, a Chinese body as base64. :func:`judge` says
whether a failed attempt may be tried again (a refusal, 5xx, is final) and
:func:`retry_delay` how long to wait first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib

from cti.config import MailSettings, MailTemplate
from cti.errors import CtiError
from cti.models import Customer, OutboxItem, Scalar, ScriptRun
from scripts_engine.runner import context_for
from scripts_engine.text import TemplateError, has_placeholder, segments, template_variables

#: The longest address taken (RFC 5321's path limit, less the brackets).
MAX_ADDRESS = 254
#: A failure's reason is cut to this many characters (it goes on the customer's history).
MAX_REASON = 300
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~.-]{{1,64}}@{_LABEL}(?:\.{_LABEL})+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class MailRefusedError(CtiError):
    """This mail is never sent (nor tried again); the message says why."""


@dataclass(frozen=True)
class Failure:
    """Why an attempt failed, and whether that is final (no attempt after it)."""

    reason: str
    final: bool


def check_header(value: str, what: str) -> str:
    """``value`` for a header, refused if it holds a line break (header injection)."""
    if "\r" in value or "\n" in value:
        raise MailRefusedError(f"{what} holds a line break: {shown(value)}")
    return value


def check_address(address: str, what: str) -> str:
    """One plain address (``name@example.com``), at most :data:`MAX_ADDRESS` characters."""
    check_header(address, what)
    if len(address) > MAX_ADDRESS:
        raise MailRefusedError(f"{what} is longer than {MAX_ADDRESS} characters")
    if not _ADDRESS.fullmatch(address):
        raise MailRefusedError(
            f"{what} is not an e-mail address like name@example.com: {shown(address)}"
        )
    return address


def shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for a reason or a log: control characters escaped, cut."""
    return repr(text[:limit]) + ("…" if len(text) > limit else "")


def pick_template(
    templates: Mapping[str, MailTemplate], name: str, language: str
) -> tuple[str, MailTemplate]:
    """The template ``name`` for a customer speaking ``language``: ``NAME.LANGUAGE`` if
    configured, else ``NAME``; :class:`MailRefusedError` if neither is."""
    for key in (f"{name}.{language}", name):
        if key in templates:
            return key, templates[key]
    raise MailRefusedError(f"no mail template {name!r} in [mail.templates]")


def template_problems(settings: MailSettings) -> list[str]:
    """What is wrong with the configured templates' text (a body file is checked when
    it is read), each naming its template: said at start, not only when a mail fails."""
    out = []
    for name, template in settings.templates.items():
        for part, text in (("subject", template.subject), ("body", template.body)):
            try:
                template_variables(text)
            except TemplateError as exc:
                out.append(f"[mail.templates.{name}] {part}: {exc}")
    return out


def mail_values(
    item: OutboxItem, customer: Customer | None, run: ScriptRun | None, agent_name: str
) -> dict[str, Scalar]:
    """The variables a mail's template may use: the customer as stored now, the call,
    the agent, the script's answers (``answers.FIELD``) and the action's arguments
    (``args.NAME``)."""
    agent_id = run.agent_id if run is not None else ""
    values = context_for(
        customer, agent_id=agent_id, agent_name=agent_name or agent_id, call_id=item.call_id
    )
    if run is not None:
        values.update({f"answers.{k}": v for k, v in run.answers.items() if v not in (None, "")})
    values.update({f"args.{k}": v for k, v in item.args.items() if v != ""})
    return values


def fill(template: str, values: Mapping[str, Scalar], where: str) -> str:
    """``template`` with its variables filled; :class:`MailRefusedError` naming each variable
    that has no value (or what is wrong with the template)."""
    try:
        spans = segments(template, values)
    except TemplateError as exc:
        raise MailRefusedError(f"{where}: {exc}") from None
    missing = sorted({s.name for s in spans if s.kind == "missing"})
    if missing:
        raise MailRefusedError(f"{where} needs {', '.join(missing)}, which has no value")
    return "".join(s.text for s in spans)


def recipient(item: OutboxItem, values: Mapping[str, Scalar]) -> str:
    """Where the mail goes: the action's ``to``, else the customer's address."""
    to = item.args.get("to", values.get("customer.email", ""))
    if not isinstance(to, str) or not to:
        raise MailRefusedError("no address to send to (the action has no 'to', the customer none)")
    if has_placeholder(to):
        raise MailRefusedError(f"the address has no value: {to}")
    return check_address(to, "the address")


def compose(
    item: OutboxItem,
    values: Mapping[str, Scalar],
    template: tuple[str, MailTemplate, str],
    settings: MailSettings,
    now: float,
) -> EmailMessage:
    """The message of outbox row ``item``: ``template`` is (its name, its settings, its
    body text, read from its file if it has one). :class:`MailRefusedError` says why not."""
    name, settings_of, body_text = template
    to = recipient(item, values)
    sender = check_address(settings.from_address, "[mail] from_address")
    subject = check_header(
        fill(settings_of.subject, values, f"template {name!r}'s subject"), "the subject"
    )
    body = fill(body_text, values, f"template {name!r}'s body")
    message = EmailMessage()
    message["From"] = Address(
        check_header(settings.from_name, "[mail] from_name"), addr_spec=sender
    )
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message["X-CTI-Call"] = check_header(item.call_id, "the call id")
    message.set_content(body, charset="utf-8")
    return message


def judge(exc: BaseException) -> Failure:
    """Whether a failed attempt may be tried again: the server's refusal (5xx) is final;
    a temporary refusal (4xx), a timeout, a connection that failed or broke are not."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        said = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        return Failure(
            _reason(f"the server refused the address: {said}"), min(codes, default=0) >= 500
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        final = 500 <= exc.code < 600
        return Failure(_reason(f"the server answered {exc.code} {exc.message}"), final)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return Failure(_reason(f"the server did not answer in time ({exc})"), final=False)
    if isinstance(exc, aiosmtplib.SMTPException | OSError):
        return Failure(_reason(f"{type(exc).__name__}: {exc}"), final=False)
    return Failure(_reason(str(exc) or type(exc).__name__), final=False)


def _reason(text: str) -> str:
    """A reason fit for the history and the log: one line, control characters out, cut."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def retry_delay(attempts: int, first_s: float, most_s: float) -> float:
    """Seconds to wait after ``attempts`` failed attempts: ``first_s``, doubling, at most
    ``most_s``."""
    return min(first_s * 2.0 ** max(0, min(attempts - 1, 60)), most_s)
