"""The callback endpoint against hostile clients (issue 17): credentials, replays,
neighbours, rate limits, caps, the number policy and the time horizon.

They drive :meth:`WebCallbacks.handle` on virtual time (so rate limits are exact and
no test waits); tests/cti/test_web_callbacks.py does the same over real HTTP.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from cti.config import WebSettings, load_config
from cti.engine.web_callbacks import (
    CLIENT_HEADER,
    HttpAnswer,
    HttpRequest,
    WebCallbacks,
    key_sha256,
    sign,
)
from cti.errors import ConfigError, CtiError
from cti.protocol import (
    AcceptOffer,
    CallConnected,
    CallEnded,
    CallOffered,
    HangUp,
    Login,
    SetReady,
)
from tests.cti.test_service import Center, center
from tests.harness import virtual

pytestmark = pytest.mark.security

SHOP_KEY = "shop-key-0123456789abcdef0123456789"
APP_KEY = "app-key-0123456789abcdef0123456789ab"
SECRET = b"signer-secret-0123456789abcdef"
NUMBER = "+8613812345678"
CLIENTS = [
    {"name": "shop", "key_sha256": key_sha256(SHOP_KEY)},
    {"name": "app", "key_sha256": key_sha256(APP_KEY)},
    {"name": "signer", "secret_env": "CTI_TEST_SIGNER_SECRET"},
]
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


@pytest.fixture(autouse=True)
def _signer_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTI_TEST_SIGNER_SECRET", SECRET.decode())


@dataclass
class Web:
    center: Center
    server: WebCallbacks

    @property
    def now(self) -> float:
        return self.center.service.now()

    async def post(
        self, body: object, *, api_key: str | None = SHOP_KEY, **headers: str
    ) -> HttpAnswer:
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key}"
        data = json.dumps(body).encode()
        return await self.server.handle(
            HttpRequest("POST", "/v1/callbacks", headers, data), self.now
        )

    async def signed(
        self, body: object, *, at: float | None = None, client: str = "signer"
    ) -> tuple[HttpRequest, HttpAnswer]:
        data = json.dumps(body).encode()
        stamp = int(self.now if at is None else at)
        headers = {CLIENT_HEADER: client, **sign(SECRET, "POST", "/v1/callbacks", data, stamp)}
        request = HttpRequest("POST", "/v1/callbacks", headers, data)
        return request, await self.server.handle(request, self.now)

    async def get(self, call_id: str, api_key: str | None = SHOP_KEY) -> HttpAnswer:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return await self.server.handle(
            HttpRequest("GET", f"/v1/callbacks/{call_id}", headers), self.now
        )


@asynccontextmanager
async def web(**callbacks: object) -> AsyncIterator[Web]:
    settings = WebSettings.model_validate({"callbacks": {**ROOMY, **callbacks}, "clients": CLIENTS})
    async with center(["1001"]) as c:
        yield Web(c, WebCallbacks(c.service, settings=settings))


def run(test: Callable[[Web], Awaitable[None]], **callbacks: object) -> None:
    async def body() -> None:
        async with web(**callbacks) as w:
            await test(w)

    virtual(body)


def refused(answer: HttpAnswer, status: int, field: str, hint: str) -> None:
    assert answer.status == status, answer
    assert answer.body["field"] == field, answer
    assert answer.body["error"].startswith(f"{field}: "), answer
    assert hint in answer.body["error"], answer


# --- credentials ----------------------------------------------------------------------


def test_requests_without_or_with_wrong_credentials_are_refused() -> None:
    async def test(w: Web) -> None:
        refused(await w.post({"number": NUMBER}, api_key=None), 401, "Authorization", "Bearer")
        refused(await w.post({"number": NUMBER}, api_key="guess"), 401, "Authorization", "unknown")
        refused(
            await w.post({"number": NUMBER}, api_key=None, Authorization=f"Basic {SHOP_KEY}"),
            401,
            "Authorization",
            "expected 'Bearer KEY'",
        )
        refused(
            await w.post({"number": NUMBER}, api_key=key_sha256(SHOP_KEY)),
            401,
            "Authorization",
            "unknown",
        )
        assert w.center.service.router.active_call_ids() == []
        assert (await w.post({"number": NUMBER})).status == 202
        assert (await w.post({"number": "+8613912345678"}, api_key=APP_KEY)).status == 202

    run(test)


def test_signed_requests_forged_stale_or_replayed_are_refused() -> None:
    async def test(w: Web) -> None:
        request, answer = await w.signed({"number": NUMBER})
        assert answer.status == 202, answer
        # The same request again (a replay), within the window: refused.
        refused(await w.server.handle(request, w.now), 401, "X-CTI-Signature", "replay")
        # A forged body under a genuine signature: refused.
        forged = HttpRequest(
            "POST", "/v1/callbacks", request.headers, b'{"number": "+8613900000000"}'
        )
        refused(await w.server.handle(forged, w.now), 401, "X-CTI-Signature", "does not match")
        # Stale or from the future beyond 300 s, another client's name, a key as a secret.
        _, old = await w.signed({"number": "+8613912345678"}, at=w.now - 301)
        refused(old, 401, "X-CTI-Timestamp", "behind the engine's clock")
        _, ahead = await w.signed({"number": "+8613912345678"}, at=w.now + 301)
        refused(ahead, 401, "X-CTI-Timestamp", "ahead of")
        _, other = await w.signed({"number": "+8613912345678"}, client="shop")
        refused(other, 401, "X-CTI-Signature", "does not match")
        assert len(w.center.service.router.active_call_ids()) == 1

    run(test)


def test_a_client_reads_only_its_own_callbacks_and_ids_are_unguessable() -> None:
    async def test(w: Web) -> None:
        mine = await w.post({"number": NUMBER})
        call_id = mine.body["id"]
        assert mine.headers["Location"] == f"/v1/callbacks/{call_id}"
        assert (await w.get(call_id)).status == 200
        refused(await w.get(call_id, api_key=APP_KEY), 404, "id", "by you")
        refused(await w.get(call_id, api_key=None), 401, "Authorization", "credentials")
        again = await w.post({"number": "+8613912345678"})
        assert again.body["id"][:8] != call_id[:8]
        assert len(call_id) >= 24
        # An idempotency key is the client's own: the app's same key is a new request.
        first = await w.post({"number": "+8613700000001"}, **{"Idempotency-Key": "k"})
        other = await w.post(
            {"number": "+8613700000001"}, api_key=APP_KEY, **{"Idempotency-Key": "k"}
        )
        assert first.status == other.status == 202
        assert first.body["id"] != other.body["id"]

    run(test)


def test_a_missing_secret_is_named_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async def body() -> None:
        async with center([]) as c:
            monkeypatch.delenv("CTI_TEST_SIGNER_SECRET")
            settings = WebSettings.model_validate({"clients": CLIENTS})
            with pytest.raises(CtiError, match=r"'signer'.*CTI_TEST_SIGNER_SECRET is not set"):
                WebCallbacks(c.service, settings=settings)
            short = tmp_path / "short"
            short.write_text("abc\n")
            settings = WebSettings.model_validate(
                {"clients": [{"name": "f", "secret_file": str(short)}]}
            )
            with pytest.raises(CtiError, match="shorter than 16 bytes"):
                WebCallbacks(c.service, settings=settings)

    virtual(body)


def test_configuration_refuses_anonymous_off_loopback_and_clients_without_credentials() -> None:
    with pytest.raises(ConfigError, match="anonymous = true only on loopback"):
        load_config(overrides={"web": {"host": "0.0.0.0", "callbacks": {"anonymous": True}}})
    with pytest.raises(ConfigError, match="set key_sha256, secret_env or secret_file"):
        load_config(overrides={"web": {"clients": [{"name": "x"}]}})
    with pytest.raises(ConfigError, match="key_sha256"):
        load_config(overrides={"web": {"clients": [{"name": "x", "key_sha256": "plain"}]}})
    with pytest.raises(ConfigError, match="premium"):
        load_config(overrides={"web": {"callbacks": {"number_types": ["premium"]}}})


# --- rate limits and caps -------------------------------------------------------------


def test_a_client_over_its_rate_is_refused_until_its_bucket_refills() -> None:
    async def test(w: Web) -> None:
        numbers = (f"+86139{n:08d}" for n in range(100))
        for _ in range(3):
            assert (await w.post({"number": next(numbers)})).status == 202
        over = await w.post({"number": next(numbers)})
        refused(over, 429, "client", "'shop' sent more than 60 requests a minute (burst 3)")
        assert over.headers["Retry-After"] == "1"
        assert (await w.post({"number": next(numbers)}, api_key=APP_KEY)).status == 202
        await asyncio.sleep(1.0)
        assert (await w.post({"number": next(numbers)})).status == 202
        assert len(w.center.service.router.active_call_ids()) == 5

    run(test, client_rate_per_minute=60.0, client_burst=3)


def test_a_number_is_limited_per_hour_and_to_its_pending_callbacks() -> None:
    async def test(w: Web) -> None:
        assert (await w.post({"number": NUMBER})).status == 202
        # Another client, the same number: one pending callback per number.
        refused(
            await w.post({"number": "138 1234 5678"}, api_key=APP_KEY),
            429,
            "number",
            "+8613812345678 already has 1 callback(s) pending",
        )

    run(test, max_pending_per_number=1)

    async def rate(w: Web) -> None:
        assert (await w.post({"number": NUMBER})).status == 202
        assert (await w.post({"number": NUMBER}, api_key=APP_KEY)).status == 202
        over = await w.post({"number": NUMBER})
        refused(over, 429, "number", "more than 3 times an hour")
        assert int(over.headers["Retry-After"]) == 1200  # a token every 20 minutes

    run(rate, number_rate_per_hour=3.0, number_burst=2)


def test_pending_callbacks_are_capped_in_all_and_a_finished_one_frees_its_place() -> None:
    async def test(w: Web) -> None:
        ids = []
        for n in range(3):
            answer = await w.post({"number": f"+86139{n:08d}"})
            assert answer.status == 202
            ids.append(answer.body["id"])
        refused(await w.post({"number": NUMBER}), 429, "callbacks", "3 web callbacks are pending")
        refused(
            await w.post({"number": NUMBER}, api_key=APP_KEY), 429, "callbacks", "the most allowed"
        )
        assert w.server.pending == 3
        # An agent works one: its place is free again.
        agent = w.center.agents["1001"]
        await agent.send(Login(agent_id="1001"))
        await agent.send(SetReady(agent_id="1001"))
        offer = await agent.expect(CallOffered)
        await agent.send(AcceptOffer(agent_id="1001", call_id=offer.pop.call_id))
        await agent.expect(CallConnected)
        await agent.send(HangUp(agent_id="1001", call_id=offer.pop.call_id))
        await agent.expect(CallEnded)
        await asyncio.sleep(120)  # wrap-up over
        assert w.server.pending == 2
        assert (await w.post({"number": NUMBER})).status == 202

    run(test, max_pending=3)


def test_all_clients_together_are_limited() -> None:
    async def test(w: Web) -> None:
        results = []
        for n in range(6):
            key = SHOP_KEY if n % 2 else APP_KEY
            results.append((await w.post({"number": f"+86139{n:08d}"}, api_key=key)).status)
        assert results == [202] * 4 + [429] * 2

    run(test, total_rate_per_minute=4.0, total_burst=4)


# --- the number policy ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "hint"),
    [
        ("+1 900 255 0123", "+19002550123 is a premium rate number; accepted: fixed line"),
        ("+44 909 876 5432", "is a premium rate number"),
        ("+86 400 810 8888", "+864008108888 is a shared cost number"),
        ("+882 342 1234", "+8823421234 is an international non-geographic number (+882)"),
        ("+800 1234 5678", "non-geographic"),
        ("+33 1 42 68 53 00", "+33142685300 is a number of FR; accepted: numbers of CN, US, GB"),
        ("+86 123 4567 8901", "is not a valid number of CN"),
        ("+86 170 1234 5678", "is in a refused range"),
        ("\u202e13812345678", "control or formatting character U+202E"),
        ("138\x0012345678", "U+0000"),
    ],
)
def test_numbers_outside_the_policy_are_refused(number: str, hint: str) -> None:
    async def test(w: Web) -> None:
        refused(await w.post({"number": number}), 400, "number", hint)
        assert w.center.service.router.active_call_ids() == []
        assert (await w.post({"number": "+86 139 1234 5678"})).status == 202

    run(test, regions=["CN", "US", "GB"], refused_prefixes=["+86170"])


def test_only_the_allowed_prefixes_and_by_default_the_engines_region() -> None:
    async def test(w: Web) -> None:
        refused(
            await w.post({"number": "+86 139 1234 5678"}),
            400,
            "number",
            "+8613912345678 is not in the accepted ranges +86138",
        )
        assert (await w.post({"number": "138 1234 5678"})).status == 202

    run(test, prefixes=["+86138"])

    async def default(w: Web) -> None:
        refused(
            await w.post({"number": "+1 202 555 0123"}),
            400,
            "number",
            "+12025550123 is a number of US; accepted: numbers of CN",
        )

    run(default)


@pytest.mark.parametrize(
    ("body", "field", "hint"),
    [
        ({"number": NUMBER, "name": "Li\u202eLei"}, "name", "U+202E"),
        ({"number": NUMBER, "name": "Li\nLei"}, "name", "U+000A"),
        ({"number": NUMBER, "name": "x" * 101}, "name", "at most 100"),
        ({"number": NUMBER, "queue": "vip"}, "queue", "accepted: general"),
    ],
)
def test_other_fields_are_bounded_and_plain_text(
    body: dict[str, str], field: str, hint: str
) -> None:
    async def test(w: Web) -> None:
        refused(await w.post(body), 400, field, hint)

    run(test, queues=["general"])


# --- the horizon ----------------------------------------------------------------------


def _local(w: Web, seconds: float) -> str:
    return datetime.fromtimestamp(w.now + seconds, UTC).replace(tzinfo=None).isoformat()


def test_a_time_beyond_the_horizon_or_in_the_past_is_refused() -> None:
    async def test(w: Web) -> None:
        for when, hint in [
            ("9999-12-31T23:59", "more than 14 days ahead"),
            ("9999-12-31T23:59:59-12:00", "more than 14 days ahead"),
            (_local(w, 15 * 86400), "more than 14 days ahead"),
            (_local(w, -6 * 60), "in the past"),
            ("0001-01-01T00:00", "in the past"),
        ]:
            answer = await w.post({"number": NUMBER, "local_time": when, "time_zone": "UTC"})
            refused(answer, 400, "local_time", hint)
        assert w.center.service.router.active_call_ids() == []
        assert w.server.pending == 0  # refused requests hold no place
        for seconds in (-4 * 60, 13 * 86400):
            answer = await w.post(
                {"number": NUMBER, "local_time": _local(w, seconds), "time_zone": "UTC"}
            )
            assert answer.status == 202, answer
            assert (await w.post({"number": "+8613912345678"})).status == 202

    run(test, max_pending_per_number=2)


# --- over real HTTP -------------------------------------------------------------------


async def test_a_signed_request_over_http_and_its_replay() -> None:
    settings = WebSettings.model_validate({"callbacks": ROOMY, "clients": CLIENTS})
    async with center([]) as c, WebCallbacks(c.service, settings=settings) as server:
        url = f"http://127.0.0.1:{server.port}/v1/callbacks"
        data = json.dumps({"number": NUMBER}).encode()
        headers = {
            CLIENT_HEADER: "signer",
            **sign(SECRET, "POST", "/v1/callbacks", data, int(c.service.now())),
        }
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=data, headers=headers) as r:
                assert r.status == 202, await r.text()
            async with http.post(url, data=data, headers=headers) as r:
                assert r.status == 401
                assert "replay" in (await r.json())["error"]
            async with http.post(url, json={"number": NUMBER}) as r:
                assert r.status == 401
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
                assert (await r.json())["field"] == "Authorization"
        assert len(c.service.router.active_call_ids()) == 1
