"""Internet callback requests over real HTTP, into a real engine service (real time).

Virtual time and real sockets mix badly, so these run on the wall clock; they stay fast
because the callbacks are as soon as possible (or due within half a second).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cti.app.demo import running_demo
from cti.config import WebSettings, load_config
from cti.engine.web_callbacks import MAX_BODY, WebCallbacks, key_sha256
from cti.errors import CtiError
from cti.protocol import (
    AcceptOffer,
    CallConnected,
    CallEnded,
    CallOffered,
    CompleteWrapUp,
    HangUp,
    Login,
    SetReady,
)
from tests.cti.test_service import ALICE, Center, center
from tests.harness import until

pytestmark = pytest.mark.integration

UNKNOWN = "199 0000 0001"
ALICE_NUMBER = "138-1234-5678"
KEY = "shop-key-for-tests-0123456789abcdef"
SHOP = {"name": "shop", "key_sha256": key_sha256(KEY)}
#: Limits out of the way of these tests (test_web_callbacks_security.py tests them).
ROOMY = {
    "client_rate_per_minute": 6000.0,
    "client_burst": 1000,
    "total_rate_per_minute": 6000.0,
    "total_burst": 1000,
    "number_rate_per_hour": 1000.0,
    "number_burst": 100,
    "max_pending": 1000,
    "max_pending_per_number": 100,
}


def settings(**callbacks: object) -> WebSettings:
    """The shop's API key, roomy limits, and ``callbacks`` on top."""
    return WebSettings.model_validate({"callbacks": {**ROOMY, **callbacks}, "clients": [SHOP]})


@dataclass
class Web:
    center: Center
    server: WebCallbacks
    http: aiohttp.ClientSession
    base: str

    async def post(
        self,
        body: object = None,
        *,
        data: bytes | None = None,
        key: str | None = None,
        api_key: str = KEY,
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {api_key}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        async with self.http.post(
            f"{self.base}/v1/callbacks",
            json=body if data is None else None,
            data=data,
            headers=headers,
        ) as r:
            return r.status, await r.json()

    async def get(self, path: str, api_key: str = KEY) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {api_key}"}
        async with self.http.get(f"{self.base}{path}", headers=headers) as r:
            return r.status, await r.json()

    async def state(self, call_id: str) -> dict[str, Any]:
        status, body = await self.get(f"/v1/callbacks/{call_id}")
        assert status == 200, body
        return body


@asynccontextmanager
async def web(agent_ids: list[str], **queue: Any) -> AsyncIterator[Web]:
    """An engine (queues general and vip), its endpoint on a free port, and a client."""
    async with center(agent_ids, extra_queues=[{"name": "vip", "priority": 50}], **queue) as c:
        server = WebCallbacks(c.service, settings=settings())
        port = await server.start()
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                yield Web(c, server, http, f"http://127.0.0.1:{port}")
        finally:
            await server.stop()
        assert port_is_closed(port)


def port_is_closed(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


async def test_known_customers_callback_outranks_an_earlier_unknown_and_is_dialled() -> None:
    async with web(["1001"]) as w:
        agent = w.center.agents["1001"]
        await agent.send(Login(agent_id="1001"))  # logged in, Not Ready: nothing is offered
        status, unknown = await w.post({"number": UNKNOWN, "name": "Li Lei"})
        assert status == 202, unknown
        assert unknown["state"] == "waiting"
        assert unknown["position"] == 1
        assert unknown["queue"] == "general"
        assert unknown["estimated_wait_s"] is None  # nobody there to answer yet
        status, alice = await w.post({"number": ALICE_NUMBER, "name": ALICE.name})
        assert status == 202, alice
        assert alice["position"] == 1  # the customer's value puts her ahead
        assert (await w.state(unknown["id"]))["position"] == 2

        await agent.send(SetReady(agent_id="1001"))
        offer = await agent.expect(CallOffered)
        assert offer.pop.call_id == alice["id"]
        assert offer.pop.customer == ALICE
        assert (await w.state(alice["id"]))["state"] == "offered"
        await agent.send(AcceptOffer(agent_id="1001", call_id=alice["id"]))
        await agent.expect(CallConnected)
        assert w.center.trunk.dialled == [(alice["id"], "+8613812345678")]
        talking = await w.state(alice["id"])
        assert (talking["state"], talking["position"]) == ("talking", None)
        behind = await w.state(unknown["id"])
        assert (behind["state"], behind["position"]) == ("waiting", 1)
        assert behind["estimated_wait_s"] == 180.0  # one agent present, busy: one AHT

        await agent.send(HangUp(agent_id="1001", call_id=alice["id"]))
        await agent.expect(CallEnded)
        assert (await w.state(alice["id"]))["state"] == "wrap_up"
        await agent.send(CompleteWrapUp(agent_id="1001", call_id=alice["id"], disposition="sale"))
        offer = await agent.expect(CallOffered)
        assert offer.pop.call_id == unknown["id"]  # then the unknown caller's turn
        done = await w.state(alice["id"])
        assert done == {
            "id": alice["id"],
            "queue": "general",
            "state": "done",
            "position": None,
            "estimated_wait_s": None,
        }


async def test_scheduled_callback_is_scheduled_until_its_time_then_offered() -> None:
    async with web(["1001"]) as w:
        agent = w.center.agents["1001"]
        await agent.send(Login(agent_id="1001"))
        await agent.send(SetReady(agent_id="1001"))
        soon = datetime.fromtimestamp(w.center.service.now() + 0.5, UTC).replace(tzinfo=None)
        status, body = await w.post(
            {"number": ALICE_NUMBER, "local_time": soon.isoformat(), "time_zone": "UTC"}
        )
        assert status == 202, body
        assert (body["state"], body["position"], body["estimated_wait_s"]) == (
            "scheduled",
            None,
            None,
        )
        # Next week in the customer's own zone (none on file: the engine's): still scheduled.
        week = datetime.fromtimestamp(w.center.service.now() + 7 * 86400).replace(microsecond=0)
        status, later = await w.post({"number": UNKNOWN, "local_time": week.isoformat()})
        assert status == 202
        assert later["state"] == "scheduled"
        assert (await w.state(body["id"]))["state"] == "scheduled"  # a Ready agent waits
        offer = await agent.expect(CallOffered)
        assert offer.pop.call_id == body["id"]
        assert w.center.service.now() >= soon.replace(tzinfo=UTC).timestamp()
        assert (await w.state(body["id"]))["state"] == "offered"
        assert (await w.state(later["id"]))["state"] == "scheduled"


async def test_a_named_queue_is_used() -> None:
    async with web(["1001"]) as w:
        status, body = await w.post({"number": UNKNOWN, "queue": "vip"})
        assert status == 202
        assert body["queue"] == "vip"
        assert w.center.service.router.call_queue(body["id"]) == "vip"


@pytest.mark.parametrize(
    ("body", "field", "hint"),
    [
        ({}, "number", "required"),
        ({"name": "no number"}, "number", "+86 138 1234 5678"),
        ({"number": ""}, "number", "not a phone number"),
        ({"number": "12#"}, "number", "'12#' is not a phone number"),
        ({"number": "☎ call me"}, "number", "region CN"),
        ({"number": 13812345678}, "number", "expected a string"),
        ({"number": "1" * 41}, "number", "at most 40"),
        ({"number": ALICE_NUMBER, "queue": "nowhere"}, "queue", "accepted: general, vip"),
        ({"number": ALICE_NUMBER, "local_time": "tomorrow"}, "local_time", "2026-11-23T10:30"),
        ({"number": ALICE_NUMBER, "time_zone": "Mars/Base"}, "time_zone", "Asia/Shanghai"),
        ({"number": ALICE_NUMBER, "time_zone": "../../etc"}, "time_zone", "IANA"),
        ({"number": ALICE_NUMBER, "colour": "red"}, "colour", "accepted: number, name"),
        ([ALICE_NUMBER], "body", "JSON object"),
        ("13812345678", "body", "JSON object"),
        (None, "body", "JSON object"),
    ],
)
async def test_bad_input_is_400_naming_the_field(body: object, field: str, hint: str) -> None:
    async with web([]) as w:
        status, answer = await w.post(data=_json(body))
        assert status == 400, answer
        assert answer["field"] == field
        assert answer["error"].startswith(f"{field}: ")
        assert hint in answer["error"]
        assert w.center.service.router.active_call_ids() == []


@pytest.mark.parametrize(
    "data",
    [b"", b"{not json", b'{"number": "138', b"\xff\xfe\x00", b"[" * 3000 + b"]" * 1000],
)
async def test_a_body_that_is_not_json_is_400(data: bytes) -> None:
    async with web([]) as w:
        status, answer = await w.post(data=data)
        assert status == 400, answer
        assert answer["field"] == "body"
        assert "not JSON" in answer["error"]


async def test_a_body_over_4_kib_is_413_with_or_without_a_length() -> None:
    async with web([]) as w:
        big = _json({"number": ALICE_NUMBER, "name": "x" * MAX_BODY})
        status, answer = await w.post(data=big)
        assert status == 413
        assert "4096 bytes" in answer["error"]

        async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length
            for _ in range(5):
                yield b" " * 1000

        async with w.http.post(f"{w.base}/v1/callbacks", data=chunks()) as r:
            assert r.status == 413
        status, _ = await w.post({"number": ALICE_NUMBER})
        assert status == 202  # the server is fine afterwards
        assert len(w.center.service.router.active_call_ids()) == 1


async def test_idempotency_key_schedules_once_and_replays_the_answer() -> None:
    async with web([]) as w:
        router = w.center.service.router
        first = await w.post({"number": ALICE_NUMBER}, key="k-1")
        again = await w.post({"number": ALICE_NUMBER}, key="k-1")
        assert first[0] == 202
        assert again == first
        assert len(router.active_call_ids()) == 1
        # Two at once with one key: still one callback.
        both = await asyncio.gather(
            w.post({"number": UNKNOWN}, key="k-2"), w.post({"number": UNKNOWN}, key="k-2")
        )
        assert both[0] == both[1]
        assert both[0][0] == 202
        assert len(router.active_call_ids()) == 2
        # Another body under a used key is refused; a new key schedules anew.
        status, answer = await w.post({"number": UNKNOWN}, key="k-1")
        assert status == 422
        assert answer["field"] == "Idempotency-Key"
        status, other = await w.post({"number": ALICE_NUMBER}, key="k-3")
        assert status == 202
        assert other["id"] != first[1]["id"]
        # A refused request is not remembered: fixed, the same key goes through.
        assert (await w.post({"number": "12#"}, key="k-4"))[0] == 400
        assert (await w.post({"number": UNKNOWN}, key="k-4"))[0] == 202
        assert len(router.active_call_ids()) == 4
        status, answer = await w.post({"number": UNKNOWN}, key="x" * 256)
        assert status == 400
        assert answer["field"] == "Idempotency-Key"


async def test_get_unknown_ids_and_paths_are_404_and_healthz_is_200() -> None:
    async with web([]) as w:
        assert await w.get("/healthz") == (200, {"ok": True})
        w.center.trunk.ring(ALICE_NUMBER)  # a live call the endpoint did not create
        router = w.center.service.router
        await until(lambda: len(router.active_call_ids()) == 1, what="the call routed")
        [inbound] = router.active_call_ids()
        for call_id in ("cb-0-1", inbound):
            status, answer = await w.get(f"/v1/callbacks/{call_id}")
            assert status == 404
            assert answer["field"] == "id"
        status, answer = await w.get("/v1/nothing")
        assert status == 404
        assert "POST /v1/callbacks" in answer["error"]
        async with w.http.delete(f"{w.base}/v1/callbacks/cb-0-1") as r:
            assert r.status == 405


async def test_stop_closes_the_port_and_its_connections_and_a_taken_port_is_refused() -> None:
    async with center([]) as c, aiohttp.ClientSession() as http:
        async with WebCallbacks(c.service) as server:
            port = server.port
            assert port > 0
            assert not port_is_closed(port)
            async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                assert r.status == 200  # the connection stays open (keep-alive)
            assert http.connector is not None
            taken = WebCallbacks(c.service, port=port)
            with pytest.raises(CtiError, match=f"127.0.0.1:{port}: "):
                await taken.start()
        assert port_is_closed(port)
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                pass
        await server.stop()  # harmless twice
        await server.start()
        with pytest.raises(CtiError, match="already started"):
            await server.start()
        await server.stop()


async def test_demo_starts_the_endpoint_when_a_port_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = load_config(
        overrides={
            "web": {"callbacks_port": port, "clients": [SHOP]},
            "demo": {"customers": 20},
        }
    )
    async with (
        running_demo(config, tmp_path / "cti.db", bots=0, human=None),
        aiohttp.ClientSession() as http,
        http.post(
            f"http://127.0.0.1:{port}/v1/callbacks",
            json={"number": UNKNOWN},
            headers={"Authorization": f"Bearer {KEY}"},
        ) as r,
    ):
        assert r.status == 202
    assert port_is_closed(port)
    started: list[WebCallbacks] = []

    async def spy(self: WebCallbacks) -> None:
        started.append(self)

    monkeypatch.setattr(WebCallbacks, "start", spy)
    async with running_demo(load_config(), tmp_path / "off.db", bots=0, human=None):
        assert started == []  # callbacks_port = 0: off


def _json(body: object) -> bytes:
    import json

    return json.dumps(body, ensure_ascii=False).encode()


async def test_serve_starts_the_endpoint_and_stops_it_with_the_engine(tmp_path: Path) -> None:
    from cti.app.commands.serve import serve
    from cti.bus.memory import InMemoryBus
    from cti.config import BrokerSettings
    from telephony_adapters.sim import SimTrunk

    port = free_port()
    config = load_config(
        overrides={
            "agents": [{"id": "1001", "queues": {"general": 0.0}}],
            "web": {"callbacks_port": port, "clients": [SHOP]},
            "demo": {"customers": 20},
        }
    )
    stop = asyncio.Event()
    engine = asyncio.create_task(
        serve(config, BrokerSettings(), tmp_path / "cti.db", None, stop=stop,
              bus=InMemoryBus(), lines=[SimTrunk("sim")])
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            # the engine replays its journal first; then the port opens
            await until(lambda: not port_is_closed(port), every_s=0.05, what="the port open")
            async with http.get(f"{url}/healthz") as r:
                assert r.status == 200
            async with http.post(f"{url}/v1/callbacks", json={"number": UNKNOWN}) as r:
                assert r.status == 401  # no key: refused
            headers = {"Authorization": f"Bearer {KEY}"}
            async with http.post(
                f"{url}/v1/callbacks", json={"number": UNKNOWN}, headers=headers
            ) as r:
                body = await r.json()
                assert r.status == 202, body
                assert body["state"] == "waiting", body
            async with http.get(f"{url}/v1/callbacks/{body['id']}", headers=headers) as r:
                assert r.status == 200
                assert (await r.json())["id"] == body["id"]
    finally:
        stop.set()
        await asyncio.wait_for(engine, 30)
    assert port_is_closed(port)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
