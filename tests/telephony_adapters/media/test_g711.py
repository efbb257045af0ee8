"""G.711 tables: known values, round trips, the PCMU <-> PCMA translation."""

from __future__ import annotations

import math

import pytest

from telephony_adapters.media import g711


def test_known_values() -> None:
    assert g711.ULAW_DECODE[0xFF] == 0
    assert g711.ULAW_DECODE[0x00] == -32124
    assert g711.ULAW_DECODE[0x80] == 32124
    assert g711.ALAW_DECODE[0xD5] == 8
    assert g711.ALAW_DECODE[0x55] == -8
    assert g711.ALAW_DECODE[0xAA] == 32256
    assert g711.ALAW_DECODE[0x2A] == -32256
    assert g711.ULAW_ENCODE[0] == 0xFF
    assert g711.ALAW_ENCODE[0] == 0xD5
    assert g711.ULAW_ENCODE[32767] == 0x80
    assert g711.ULAW_ENCODE[-32768 & 0xFFFF] == 0x00
    assert g711.ALAW_ENCODE[32767] == 0xAA
    assert g711.ALAW_ENCODE[-32768 & 0xFFFF] == 0x2A


@pytest.mark.parametrize(
    ("decode", "encode", "odd"),
    [(g711.ULAW_DECODE, g711.ULAW_ENCODE, {0x7F}), (g711.ALAW_DECODE, g711.ALAW_ENCODE, set())],
)
def test_every_code_round_trips(decode: tuple[int, ...], encode: bytes, odd: set[int]) -> None:
    back = {c for c in range(256) if encode[decode[c] & 0xFFFF] != c}
    assert back == odd  # mu-law's negative zero comes back as positive zero


@pytest.mark.parametrize("payload_type", [g711.PCMU, g711.PCMA])
def test_linear_round_trip_error_is_within_one_step(payload_type: int) -> None:
    for value in range(-32768, 32768, 7):
        back = g711.samples(
            g711.decode(g711.encode(g711.to_bytes_list([value]), payload_type), payload_type)
        )[0]
        # The step doubles with each segment: about 1/16 of the value, at least 16.
        assert abs(back - value) <= max(16, abs(value) // 15), (value, back)


def test_encode_is_monotonic() -> None:
    for table in (g711.ULAW_ENCODE, g711.ALAW_ENCODE):
        decode = g711.ULAW_DECODE if table is g711.ULAW_ENCODE else g711.ALAW_DECODE
        levels = [decode[table[v & 0xFFFF]] for v in range(-32768, 32768, 3)]
        assert levels == sorted(levels)


def test_translate_tables_agree_with_decode_then_encode() -> None:
    for code in range(256):
        assert g711.ULAW_TO_ALAW[code] == g711.ALAW_ENCODE[g711.ULAW_DECODE[code] & 0xFFFF]
        assert g711.ALAW_TO_ULAW[code] == g711.ULAW_ENCODE[g711.ALAW_DECODE[code] & 0xFFFF]
    payload = bytes(range(256))
    assert g711.translate(payload, g711.PCMU, g711.PCMU) is payload
    assert g711.translate(payload, g711.PCMU, g711.PCMA) == payload.translate(g711.ULAW_TO_ALAW)
    # Through A-law and back keeps a mu-law signal within one A-law step.
    tone = [int(12000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(160)]
    ulaw = g711.encode(g711.to_bytes_list(tone), g711.PCMU)
    twice = g711.translate(g711.translate(ulaw, g711.PCMU, g711.PCMA), g711.PCMA, g711.PCMU)
    for a, b in zip(
        g711.samples(g711.decode(ulaw, g711.PCMU)),
        g711.samples(g711.decode(twice, g711.PCMU)),
        strict=True,
    ):
        assert abs(a - b) <= max(16, abs(a) // 15)


def test_silence_and_bad_payload_type() -> None:
    assert g711.silence(g711.PCMU) == b"\xff" * 160
    assert g711.decode(g711.silence(g711.PCMU), g711.PCMU) == bytes(320)
    assert set(g711.samples(g711.decode(g711.silence(g711.PCMA), g711.PCMA))) == {8}
    with pytest.raises(ValueError, match="payload type 9"):
        g711.check_payload_type(9)
    assert g711.clip(40000) == 32767
    assert g711.clip(-40000) == -32768


@pytest.mark.parametrize(
    ("payload_type", "table"), [(g711.PCMU, g711.ULAW_DECODE), (g711.PCMA, g711.ALAW_DECODE)]
)
def test_buffer_decode_and_encode_agree_with_the_tables(
    payload_type: int, table: tuple[int, ...]
) -> None:
    codes = bytes(range(256))
    linear = g711.decode(codes, payload_type)
    assert len(linear) == 512
    assert list(g711.samples(linear)) == list(table)
    assert linear[:2] == table[0].to_bytes(2, "little", signed=True)  # little-endian
    again = g711.encode(linear, payload_type)
    assert again == bytes(
        g711.ULAW_ENCODE[v & 0xFFFF] if payload_type == g711.PCMU else g711.ALAW_ENCODE[v & 0xFFFF]
        for v in table
    )
    assert g711.encode_samples([40000, -40000, 0], payload_type) == g711.encode(
        g711.to_bytes_list([32767, -32768, 0]), payload_type
    )
