"""The modem line parser on transcripts of real modems (docs/modem.md), whole and split
anywhere."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony_adapters.modem.parser import (
    CallerIdField,
    CallerIdMessage,
    Echo,
    Garbage,
    ModemEvent,
    ModemParser,
    Result,
    Ring,
    TextLine,
)

from . import transcripts as t

pytestmark = pytest.mark.modem

NOW = 100.0


def parse(data: bytes) -> list[ModemEvent]:
    return ModemParser().feed(data, NOW)


def parse_split(data: bytes, cuts: list[int]) -> list[ModemEvent]:
    parser = ModemParser()
    events: list[ModemEvent] = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        events += parser.feed(data[start:cut], NOW)
        start = cut
    return events


def test_us_formatted_between_rings() -> None:
    assert parse(t.US_FORMATTED) == [
        Ring(NOW),
        CallerIdField("DATE", "0321", NOW),
        CallerIdField("TIME", "1405", NOW),
        CallerIdField("NMBR", "5045551234", NOW),
        CallerIdField("NAME", "A N OTHER", NOW),
        Ring(NOW),
        Ring(NOW),
    ]


def test_uk_before_first_ring_no_spaces() -> None:
    assert parse(t.UK_BEFORE_FIRST_RING) == [
        CallerIdField("DATE", "0321", NOW),
        CallerIdField("TIME", "1405", NOW),
        CallerIdField("NMBR", "01632960123", NOW),
        CallerIdField("NAME", "J SMITH", NOW),
        Ring(NOW),
    ]


def test_private_out_of_area_ddn_mesg() -> None:
    assert CallerIdField("NMBR", "P", NOW) in parse(t.PRIVATE)
    assert CallerIdField("NMBR", "O", NOW) in parse(t.OUT_OF_AREA)
    ddn = parse(t.DDN)
    assert CallerIdField("DDN_NMBR", "15045551234", NOW) in ddn
    assert CallerIdField("NAME", "ACME   LTD", NOW) in ddn  # padding gone, inside kept
    assert CallerIdField("MESG", "060342", NOW) in parse(t.MESG)


def test_value_split_on_first_equals_and_key_spacing() -> None:
    assert parse(b"  name =  A=B \r\n") == [CallerIdField("NAME", "A=B", NOW)]
    assert parse(b"DDN NMBR=123\r\n") == [CallerIdField("DDN_NMBR", "123", NOW)]


def test_names_decoded_leniently() -> None:
    assert CallerIdField("NAME", "ZOË ÅBERG", NOW) in parse(t.NON_ASCII_NAME)
    assert CallerIdField("NAME", "José", NOW) in parse(t.LATIN1_NAME)


def test_numeric_result_codes() -> None:
    assert parse(t.NUMERIC) == [
        Result("OK", "0", NOW),
        Ring(NOW),
        Ring(NOW),
        Result("NO CARRIER", "3", NOW),
        Result("ERROR", "4", NOW),
        Result("NO DIALTONE", "6", NOW),
        Result("BUSY", "7", NOW),
        Result("NO ANSWER", "8", NOW),
    ]


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("OK", "OK"),
        ("CONNECT", "CONNECT"),
        ("CONNECT 33600", "CONNECT"),
        ("NO CARRIER", "NO CARRIER"),
        ("ERROR", "ERROR"),
        ("NO DIALTONE", "NO DIALTONE"),
        ("NO DIAL TONE", "NO DIALTONE"),
        ("BUSY", "BUSY"),
        ("NO ANSWER", "NO ANSWER"),
        ("VCON", "VCON"),
        ("RINGING", "RINGING"),
        ("DELAYED", "DELAYED"),
        ("BLACKLISTED", "BLACKLISTED"),
    ],
)
def test_verbal_result_codes(line: str, code: str) -> None:
    assert parse(line.encode() + b"\r\n") == [Result(code, line, NOW)]


def test_echo_on() -> None:
    assert parse(t.ECHO_ON) == [
        Echo("ATE0V1Q0S0=0", NOW),
        Result("OK", "OK", NOW),
        Echo("AT+VCID=1", NOW),
        Result("ERROR", "ERROR", NOW),
    ]


def test_odd_line_endings_give_the_same_events() -> None:
    expected = [
        Ring(NOW),
        CallerIdField("NMBR", "5045551234", NOW),
        CallerIdField("NAME", "A N OTHER", NOW),
        Ring(NOW),
    ]
    assert parse(t.LFCR) == expected
    assert parse(t.CR_ONLY) == expected
    assert parse(t.LFCR.replace(b"\n\r", b"\r\n")) == expected


def test_sdmf() -> None:
    assert parse(t.UNFORMATTED_SDMF)[1] == CallerIdMessage(
        "SDMF", "0321", "1405", "5045551234", "", "", "", NOW
    )
    assert parse(t.SDMF_PRIVATE_HEX.encode() + b"\r\n") == [
        CallerIdMessage("SDMF", "0321", "1405", "", "P", "", "", NOW)
    ]


def test_mdmf() -> None:
    assert parse(t.UNFORMATTED_MDMF)[1] == CallerIdMessage(
        "MDMF", "0321", "1405", "5045551234", "", "A N OTHER", "", NOW
    )
    assert parse(t.UNFORMATTED_MDMF_ABSENT)[1] == CallerIdMessage(
        "MDMF", "0321", "1405", "", "O", "", "P", NOW
    )


def test_known_mdmf_wire_example() -> None:
    # The classic Bellcore example: 80 20 01 08 ... with checksum 0x51.
    hex_line = "802001083031323431323334020A3230313535353132313207084A4F484E20444F45"
    body = bytes.fromhex(hex_line)
    line = (body + bytes([(-sum(body)) % 256])).hex()
    (event,) = parse(line.encode() + b"\r\n")
    assert event == CallerIdMessage("MDMF", "0124", "1234", "2015551212", "", "JOHN DOE", "", NOW)


@pytest.mark.parametrize(
    "line",
    [
        t.SDMF_HEX[:-2] + "00",  # checksum wrong
        t.MDMF_HEX[:-4],  # cut short
        t.MDMF_HEX + "0",  # odd length
        "80FF" + "00" * 4,  # length lies
        "8006010830313233",  # parameter longer than the message
        "0400FC",  # SDMF without date
        "ABCDEF0123",  # hex but not caller ID
    ],
)
def test_bad_hex_is_garbage(line: str) -> None:
    # A message shorter than it says may go on in the next line: the RING ends it.
    event, ring = parse(line.encode() + b"\r\nRING\r\n")
    assert isinstance(event, Garbage)
    assert ring == Ring(NOW)


def test_hex_message_wrapped_over_lines() -> None:
    wrapped = t.MDMF_HEX[:60] + "\r\n" + t.MDMF_HEX[60:]
    assert parse(wrapped.encode() + b"\r\n") == parse(t.MDMF_HEX.encode() + b"\r\n")
    # in three parts, with blank lines between
    three = t.MDMF_HEX[:20] + "\r\n\r\n" + t.MDMF_HEX[20:40] + "\n" + t.MDMF_HEX[40:]
    (event,) = parse(three.encode() + b"\r\n")
    assert isinstance(event, CallerIdMessage)
    assert event.name == "A N OTHER"


def test_wrapped_hex_cut_by_another_line() -> None:
    events = parse(t.MDMF_HEX[:60].encode() + b"\r\nNMBR = 5045551234\r\n")
    assert isinstance(events[0], Garbage)
    assert "cut short" in events[0].reason
    assert events[1:] == [CallerIdField("NMBR", "5045551234", NOW)]
    # too many digits on the second line: the first part is garbage, the second too
    events = parse(t.MDMF_HEX[:60].encode() + b"\r\n" + t.MDMF_HEX.encode() + b"\r\n")
    assert isinstance(events[0], Garbage)


def test_overlong_line_bounded_and_reported() -> None:
    parser = ModemParser(max_line=16)
    events = parser.feed(b"X" * 40, NOW) + parser.feed(b"Y" * 40 + b"\r\nRING\r\n", NOW)
    assert events == [Garbage(b"X" * 16, "line longer than 16 bytes", NOW), Ring(NOW)]


def test_garbage_bytes_and_text() -> None:
    events = parse(b"\x01\x02\xff\x1b[0m\r\nU.S. Robotics 56K\r\n\x00OK\x00\r\n")
    assert isinstance(events[0], Garbage)
    assert events[1:] == [TextLine("U.S. Robotics 56K", NOW), Result("OK", "OK", NOW)]


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(t.ALL)),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
)
def test_split_anywhere_gives_the_same_events(name: str, cuts: list[int]) -> None:
    data = t.ALL[name]
    assert parse_split(data, cuts) == parse(data)


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(t.ALL)))
def test_byte_at_a_time(name: str) -> None:
    data = t.ALL[name]
    parser = ModemParser()
    events = [e for i in range(len(data)) for e in parser.feed(data[i : i + 1], NOW)]
    assert events == parse(data)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 2000), max_size=10))
def test_random_bytes_never_crash(data: bytes, cuts: list[int]) -> None:
    events = parse_split(data, cuts)
    assert events == parse(data)
    for event in events:
        assert isinstance(
            event, Ring | Result | Echo | CallerIdField | CallerIdMessage | TextLine | Garbage
        )
        if isinstance(event, Garbage):
            assert len(event.data) <= 512
