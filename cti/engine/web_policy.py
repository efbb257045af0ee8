"""What a callback request may ask: its body (plain text fields, a phone number, a known
queue, an ISO time, a known zone), each error naming the field and what would be
accepted; and which numbers may be called back (regions, prefixes, number types: no
premium rate, shared cost or international non-geographic numbers)."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from cti.config import WebCallbackSettings
from cti.engine.web_http import RefusedError
from cti.phone import classify

_EXAMPLE_NUMBER = "+86 138 1234 5678"
EXAMPLE_BODY = 'a JSON object such as {"number": "+86 138 1234 5678"}'
_FIELDS = ("number", "name", "queue", "local_time", "time_zone")


@dataclass(frozen=True, slots=True)
class RequestContext:
    region: str
    queues: tuple[str, ...]
    default_queue: str
    default_zone: str


class CallbackRequest(BaseModel):
    """The body of ``POST /v1/callbacks``. Validate with ``context={"web": RequestContext}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    number: str = Field(max_length=40)
    name: str = Field("", max_length=100)
    queue: str = Field("", max_length=100)
    local_time: str = Field("", max_length=40)
    time_zone: str = Field("", max_length=64)

    @field_validator("*")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        bad = next((c for c in value if unicodedata.category(c) in _NOT_TEXT), None)
        if bad is not None:
            raise ValueError(
                f"control or formatting character U+{ord(bad):04X} at {value.index(bad)}; "
                "expected plain text"
            )
        return value

    @field_validator("number")
    @classmethod
    def _a_phone_number(cls, value: str, info: ValidationInfo) -> str:
        ctx = _context(info)
        if classify(value, ctx.region)[1] is None:
            raise ValueError(
                f"{value!r} is not a phone number; expected a number of region {ctx.region} "
                f"or + country code and number, e.g. {_EXAMPLE_NUMBER!r}"
            )
        return value

    @field_validator("queue")
    @classmethod
    def _a_known_queue(cls, value: str, info: ValidationInfo) -> str:
        ctx = _context(info)
        if value and value not in ctx.queues:
            raise ValueError(
                f"no queue named {value!r}; accepted: {', '.join(ctx.queues)} "
                f"(or leave it out for {ctx.default_queue!r})"
            )
        return value

    @field_validator("local_time")
    @classmethod
    def _an_iso_time(cls, value: str) -> str:
        if value:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not an ISO 8601 time; expected e.g. '2026-11-23T10:30', "
                    "or empty for as soon as possible"
                ) from None
        return value

    @field_validator("time_zone")
    @classmethod
    def _a_known_zone(cls, value: str, info: ValidationInfo) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                raise ValueError(
                    f"unknown time zone {value!r}; expected an IANA name such as "
                    f"'Asia/Shanghai', or empty for the customer's own "
                    f"(else {_context(info).default_zone!r})"
                ) from None
        return value


#: Unicode categories refused in every text field: controls (NUL, CR, LF...), formatting
#: (RTL overrides, zero-width joiners...), line and paragraph separators, surrogates.
_NOT_TEXT = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _context(info: ValidationInfo) -> RequestContext:
    ctx = info.context["web"] if isinstance(info.context, dict) else None
    if not isinstance(ctx, RequestContext):  # pragma: no cover - a programming error
        raise TypeError("CallbackRequest needs context={'web': RequestContext(...)}")
    return ctx


def parse_request(body: bytes, context: RequestContext) -> CallbackRequest:
    """The request in ``body``, or :class:`RefusedError` (400) naming the bad field."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise RefusedError(400, "body", f"not JSON; expected {EXAMPLE_BODY}") from None
    try:
        return CallbackRequest.model_validate(data, context={"web": context})
    except ValidationError as exc:
        raise describe(exc) from None


def describe(exc: ValidationError) -> RefusedError:
    """The validation errors, naming the first bad field and what would be accepted."""
    messages = []
    field = "body"
    for i, err in enumerate(exc.errors()):
        where = ".".join(str(p) for p in err["loc"]) or "body"
        kind = err["type"]
        if kind == "missing":
            text = f"required: a phone number such as {_EXAMPLE_NUMBER!r}"
        elif kind == "extra_forbidden":
            text = f"unknown field; accepted: {', '.join(_FIELDS)}"
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            text = f"expected {EXAMPLE_BODY}"
        elif kind == "string_type":
            text = "expected a string"
        else:
            text = str(err["msg"]).removeprefix("Value error, ")
        if i == 0:
            field = where[:40]
        messages.append(f"{where[:40]}: {text}")
    return RefusedError(400, field, "; ".join(messages))


class NumberPolicy:
    """Which numbers may be called back: regions, prefixes and number types."""

    def __init__(self, settings: WebCallbackSettings, default_region: str) -> None:
        self.default_region = default_region
        self.regions = tuple(r.upper() for r in settings.regions) or (default_region.upper(),)
        self.prefixes = settings.prefixes
        self.refused_prefixes = settings.refused_prefixes
        self.types = settings.number_types

    def check(self, raw: str) -> str:
        """The E.164 form of ``raw``, or :class:`RefusedError` (400, ``number``) saying why."""
        try:
            number = phonenumbers.parse(raw, self.default_region)
        except phonenumbers.NumberParseException:
            raise RefusedError(400, "number", f"{raw!r} is not a phone number") from None
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        region = phonenumbers.region_code_for_number(number)
        if region in (None, "", "001", "ZZ"):
            raise RefusedError(
                400,
                "number",
                f"{e164} is an international non-geographic number (+{number.country_code}); "
                f"accepted: numbers of {', '.join(self.regions)}",
            )
        if region not in self.regions:
            raise RefusedError(
                400,
                "number",
                f"{e164} is a number of {region}; accepted: numbers of {', '.join(self.regions)}",
            )
        if not phonenumbers.is_valid_number(number):
            raise RefusedError(
                400, "number", f"{e164} is not a valid number of {region} (no such range)"
            )
        if self.prefixes and not e164.startswith(self.prefixes):
            raise RefusedError(
                400, "number", f"{e164} is not in the accepted ranges {', '.join(self.prefixes)}"
            )
        if self.refused_prefixes and e164.startswith(self.refused_prefixes):
            raise RefusedError(400, "number", f"{e164} is in a refused range")
        kind = phonenumbers.PhoneNumberType.to_string(phonenumbers.number_type(number)).lower()
        if kind not in self.types:
            raise RefusedError(
                400,
                "number",
                f"{e164} is a {kind.replace('_', ' ')} number; accepted: "
                f"{', '.join(t.replace('_', ' ') for t in self.types)} numbers",
            )
        return e164
