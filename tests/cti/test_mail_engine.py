"""The running engine mails what a wrapped-up call's script asked for (send_email): the
wrap-up keeps it in the outbox and the engine's mail task sends it to a local aiosmtpd
server the test starts; the customer's history says so."""

from __future__ import annotations

from pathlib import Path

from cti.bus.memory import InMemoryBus
from cti.models import Customer, PhoneNumber, ScriptAction
from telephony_adapters.sim import SimTrunk
from tests.cti.scripted_call import wrapped_up_call
from tests.cti.test_mail import NAME, Smtp, smtp  # noqa: F401 (the fixture)
from tests.harness import center_config, engine_center, until, until_async

WANG = Customer(
    id=7,
    name=NAME,
    phones=(PhoneNumber(raw="13812345678", e164="+8613812345678"),),
    email="xiaoming@example.com",
    language="zh",
)


async def test_the_engine_mails_what_the_wrap_up_asked_for(smtp: Smtp, tmp_path: Path) -> None:  # noqa: F811
    config = center_config(
        mail={
            "host": "127.0.0.1",
            "port": smtp.port,
            "tls": "none",
            "from_address": "desk@example.com",
            "templates": {
                "materials.zh": {
                    "subject": "{customer.name}，您好",
                    "body": "附上{answers.product}的资料。",
                }
            },
        }
    )
    bus, trunk = InMemoryBus(), SimTrunk()
    async with engine_center(
        tmp_path / "cti.db", config=config, customers=[WANG], lines=[trunk], bus=bus
    ) as c:
        action = ScriptAction(
            node="email",
            action="send_email",
            args={"template": "materials", "to": "xiaoming@example.com"},
        )
        await wrapped_up_call(bus, trunk, "138-1234-5678", WANG, [action],
                              answers={"product": "宽带套餐"})  # fmt: skip
        await until(lambda: bool(smtp.handler.received), what="the mail at the server")
        [message] = smtp.handler.received
        assert message["Subject"] == f"{NAME}，您好"
        body = message.get_body(("plain",))
        assert body is not None
        assert body.get_content().strip() == "附上宽带套餐的资料。"

        async def on_history() -> bool:  # written just after the server's 250
            return any(i.disposition == "e-mail sent" for i in await c.store.recent_interactions(7))

        await until_async(on_history, what="the mail on the customer's history")
