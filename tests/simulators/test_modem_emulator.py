"""The modem emulator's core (pure, on injected time) and its command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cti.app.cli import main
from cti.errors import SimulationError
from cti.protocol import CallArrived, CallerHungUp
from simulators.modem_emulator import (
    CHIPSETS,
    CallSpec,
    Chipset,
    DialSpec,
    ModemEmulator,
    Note,
    PtyModem,
    Script,
    call_for_key,
    load_script,
)
from telephony_adapters.modem.call import (
    CALLER_ID_COMMANDS,
    ModemCall,
    StartupNegotiator,
    StartupState,
)
from telephony_adapters.modem.parser import (
    CallerIdMessage,
    Echo,
    ModemEvent,
    ModemParser,
    Result,
    Ring,
)

pytestmark = pytest.mark.modem

SCRIPTS = Path(__file__).parents[2] / "simulators" / "modem_scripts"
STAMP = "03211405"


def written(out: list[bytes | Note]) -> bytes:
    return b"".join(o for o in out if isinstance(o, bytes))


def notes(out: list[bytes | Note]) -> list[str]:
    return [o.what for o in out if isinstance(o, Note)]


def start_up(emu: ModemEmulator, now: float = 0.0) -> StartupNegotiator:
    """The line's real start-up negotiator against the emulator, on virtual time."""
    parser = ModemParser()
    neg = StartupNegotiator(settle=1.0)
    sends = neg.start(now)
    for _ in range(50):
        if sends:
            send, sends = sends[0], sends[1:]
            reply = written(emu.received(send.command.encode() + b"\r", now))
            for event in parser.feed(reply, now):
                sends += neg.handle(event)
            continue
        if neg.done:
            break
        deadline = neg.next_deadline()
        assert deadline is not None
        now = max(now, deadline)
        sends += neg.tick(now)
    return neg


@pytest.mark.parametrize("name", sorted(CHIPSETS))
def test_each_chipset_takes_its_own_caller_id_command(name: str) -> None:
    emu = ModemEmulator(name)
    neg = start_up(emu)
    assert neg.state is StartupState.READY
    assert neg.caller_id_command == CHIPSETS[name].caller_id_command
    expected = CHIPSETS[name].caller_id_command
    tried = [c for c in emu.heard if c in CALLER_ID_COMMANDS]
    last = CALLER_ID_COMMANDS.index(expected) + 1 if expected else len(CALLER_ID_COMMANDS)
    assert tried == list(CALLER_ID_COMMANDS[:last])  # in the line's order, stopping at OK
    assert emu.settings.caller_id_mode == (1 if expected else 0)


def test_echo_line_endings_and_numeric_results() -> None:
    emu = ModemEmulator("conexant")
    assert written(emu.received(b"ATZ\r", 0)) == b"ATZ\r\r\nOK\r\n"
    assert written(emu.received(b"ATE0V0\r", 0)) == b"ATE0V0\r0\r"
    assert written(emu.received(b"AT+VCID=3\r\n", 0)) == b"4\r"  # LF ignored; ERROR
    assert written(emu.received(b"ATV1Q1\r", 0)) == b""  # quiet
    emu = ModemEmulator(Chipset(name="x", echo=False, line_ending="lfcr"))
    assert written(emu.received(b"AT\r", 0)) == b"\n\rOK\n\r"
    # a stubborn chipset keeps echo and numeric results whatever it is told
    stubborn = ModemEmulator("stubborn")
    assert written(stubborn.received(b"ATE0V1Q0S0=0\r", 0)) == b"ATE0V1Q0S0=0\r0\r"
    assert written(stubborn.received(b"AT\r", 0)) == b"AT\r0\r"


def test_garbage_commands() -> None:
    emu = ModemEmulator(Chipset(name="x", echo=False))
    assert written(emu.received(b"hello\r", 0)) == b""  # not a command: ignored
    assert written(emu.received(b"AT!!\r", 0)) == b"\r\nERROR\r\n"
    assert written(emu.received(b"AT" + b"X" * 400 + b"\r", 0)) == b"\r\nERROR\r\n"
    assert written(emu.received(b"ATI\r", 0)) == b"\r\nCTI Desk modem emulator\r\n\r\nOK\r\n"
    assert written(emu.received(b"ATS0=2L1M0&F\\N3%C0\r", 0)) == b"\r\nOK\r\n"
    assert emu.settings.registers[0] == 2


class Listener:
    """The line's parser and call machine listening to the emulator."""

    def __init__(self) -> None:
        self.parser = ModemParser()
        self.call = ModemCall("m1", call_ids=[f"m1-{n}" for n in range(1, 10)])
        self.events: list[ModemEvent] = []
        self.out: list[object] = []

    def hear(self, out: list[bytes | Note], now: float) -> None:
        for event in self.parser.feed(written(out), now):
            self.events.append(event)
            self.out += self.call.handle(event)


def run_call(
    spec: CallSpec, chipset: str = "conexant", *, mode: int = 1
) -> tuple[Listener, ModemEmulator]:
    emu = ModemEmulator(chipset, ring_interval_s=6.0, caller_id_delay_s=1.5)
    emu.settings.caller_id_mode = mode
    ear = Listener()
    ear.hear(emu.ring(spec, 100.0, stamp=STAMP), 100.0)
    now = 100.0
    while (deadline := emu.next_deadline()) is not None:
        now = deadline
        ear.hear(emu.tick(now), now)
        ear.out += ear.call.tick(now)
    ear.out += ear.call.tick(now + 60)
    return ear, emu


@pytest.mark.parametrize(
    ("spec", "chipset", "ani", "name"),
    [
        (CallSpec(number="13812345678", name="王小明"), "conexant", "13812345678", "王小明"),
        (CallSpec(number="01632960123", name="J SMITH"), "etsi", "01632960123", "J SMITH"),
        (CallSpec(number="P", name="P"), "conexant", "P", ""),
        (CallSpec(number="O"), "conexant", "O", ""),
        (CallSpec(number="5045551234"), "conexant", "5045551234", ""),
        (CallSpec(number="5045551234", caller_id="none"), "conexant", "", ""),
        (CallSpec(number="5045551234", ddn=True), "conexant", "5045551234", ""),
        (CallSpec(number="5045551234", format="sdmf"), "conexant", "5045551234", ""),
        (CallSpec(number="5045551234", name="ACME", format="mdmf"), "usr", "5045551234", "ACME"),
        (CallSpec(number="O", name="P", format="mdmf"), "conexant", "O", ""),
        (
            CallSpec(number="5045551234", caller_id="before_first_ring"),
            "rockwell",
            "5045551234",
            "",
        ),
        (CallSpec(raw="\r\nNMBR=777\r\n"), "conexant", "777", ""),
    ],
)
def test_incoming_calls_reach_the_line_as_sent(
    spec: CallSpec, chipset: str, ani: str, name: str
) -> None:
    ear, emu = run_call(spec, chipset)
    assert ear.out == [
        CallArrived(call_id="m1-1", ani=ani, line="m1", caller_name=name),
        CallerHungUp(call_id="m1-1", line="m1"),
    ]
    assert sum(isinstance(e, Ring) for e in ear.events) == spec.rings
    assert emu.call is None


def test_timing_between_rings_and_before_the_first() -> None:
    emu = ModemEmulator("conexant", ring_interval_s=6.0, caller_id_delay_s=1.5)
    emu.settings.caller_id_mode = 1
    out = emu.ring(CallSpec(number="1", rings=2), 0.0, stamp=STAMP)
    assert notes(out) == ["ring"]
    assert emu.next_deadline() == 1.5
    assert notes(emu.tick(1.5)) == ["caller_id"]
    assert emu.next_deadline() == 6.0
    assert notes(emu.tick(6.0)) == ["ring"]
    assert notes(emu.tick(12.0)) == ["caller_left"]
    etsi = ModemEmulator("etsi", ring_interval_s=6.0)
    etsi.settings.caller_id_mode = 1
    out = etsi.ring(CallSpec(number="1"), 0.0, stamp=STAMP)
    assert notes(out) == ["caller_id"]
    assert b"NMBR=1" in written(out)  # no spaces on this chipset


def test_caller_id_only_when_the_modem_was_told_to() -> None:
    ear, _ = run_call(CallSpec(number="5045551234", name="X"), mode=0)
    assert [o.ani for o in ear.out if isinstance(o, CallArrived)] == [""]
    ear, _ = run_call(CallSpec(number="5045551234", name="X"), mode=2)  # AT+VCID=2: hex
    assert any(isinstance(e, CallerIdMessage) for e in ear.events)


def test_usr_wraps_long_hex_and_the_line_joins_it() -> None:
    ear, _ = run_call(CallSpec(number="5045551234", name="A LONG NAME FOR WRAPPING"), "usr", mode=2)
    (msg,) = [e for e in ear.events if isinstance(e, CallerIdMessage)]
    assert msg.name == "A LONG NAME FOR WRAPPING"


def test_answer_then_the_caller_hangs_up() -> None:
    emu = ModemEmulator(Chipset(name="x", echo=False), ring_interval_s=6.0)
    emu.ring(CallSpec(number="1", hang_up_after_s=30, caller_id="none"), 0.0)
    out = emu.received(b"ATA\r", 5.0)
    assert notes(out) == ["command", "answered"]
    assert written(out) == b"\r\nVCON\r\n"
    assert emu.next_deadline() == 35.0  # no more rings, the caller talks 30 s
    out = emu.tick(35.0)
    assert notes(out) == ["caller_hung_up"]
    assert written(out) == b"\r\nNO CARRIER\r\n"
    assert emu.call is None


def test_hang_up_and_reject() -> None:
    emu = ModemEmulator(Chipset(name="x", echo=False), ring_interval_s=6.0)
    emu.ring(CallSpec(number="1", rings=3, caller_id="none"), 0.0)
    assert notes(emu.received(b"ATH\r", 1.0)) == ["command", "rejected"]
    assert notes(emu.tick(6.0)) == ["ring"]  # an analogue line rings on
    emu.tick(18.0)
    assert emu.call is None
    emu.ring(CallSpec(number="2", caller_id="none"), 30.0)
    emu.received(b"ATA\r", 31.0)
    out = emu.received(b"ATH\r", 50.0)
    assert notes(out) == ["command", "hung_up"]
    assert written(out) == b"\r\nOK\r\n"
    assert written(emu.received(b"ATA\r", 51.0)) == b"\r\nNO CARRIER\r\n"  # nobody there


def test_a_call_waits_for_the_line() -> None:
    emu = ModemEmulator(Chipset(name="x", echo=False), ring_interval_s=6.0)
    emu.ring(CallSpec(number="1", rings=1, caller_id="none"), 0.0)
    emu.ring(CallSpec(number="2", rings=1, caller_id="none"), 1.0)  # waits
    assert notes(emu.tick(6.0)) == ["caller_left"]
    assert emu.next_deadline() == 16.0  # the line stays quiet between two calls
    assert notes(emu.tick(16.0)) == ["ring"]


@pytest.mark.parametrize(
    "outcome", ["VCON", "OK", "BUSY", "NO ANSWER", "NO CARRIER", "NO DIALTONE"]
)
def test_dial_outcomes(outcome: str) -> None:
    emu = ModemEmulator(
        Chipset(name="x", echo=False),
        dials=[DialSpec(outcome=outcome, ringing=2, after_s=3.0)],
    )
    assert notes(emu.received(b"ATDT5551234;\r", 0.0)) == ["command", "dialled"]
    assert written(emu.tick(1.0)) == b"\r\nRINGING\r\n"
    assert written(emu.tick(2.0)) == b"\r\nRINGING\r\n"
    out = emu.tick(3.0)
    assert written(out) == f"\r\n{outcome}\r\n".encode()
    assert (emu.call is not None) == (outcome in ("VCON", "OK"))
    # the script's outcome was used; the default (VCON at once) follows
    emu.call = None
    emu.received(b"ATDT5551234;\r", 10.0)
    assert written(emu.tick(11.0)) == b"\r\nVCON\r\n"


def test_dial_by_number_and_far_end_hangs_up() -> None:
    emu = ModemEmulator(
        Chipset(name="x", echo=False),
        dials=[DialSpec(number="999", outcome="BUSY", after_s=0)],
        default_dial=DialSpec(outcome="VCON", after_s=1.0, hang_up_after_s=20.0),
    )
    emu.received(b"ATDT5551234;\r", 0.0)
    assert written(emu.tick(1.0)) == b"\r\nVCON\r\n"
    assert written(emu.tick(21.0)) == b"\r\nNO CARRIER\r\n"
    emu.received(b"ATDT999;\r", 30.0)
    assert written(emu.tick(30.0)) == b"\r\nBUSY\r\n"


def test_script_timeline() -> None:
    script = load_script(SCRIPTS / "us_morning.toml")
    emu = ModemEmulator(script.modem.chipset_profile(), ring_interval_s=6.0)
    emu.settings.caller_id_mode = 1
    emu.schedule(script, 1000.0, stamp=STAMP)
    assert emu.next_deadline() == 1005.0
    ear = Listener()
    now = 1000.0
    while (deadline := emu.next_deadline()) is not None and deadline < 2000:
        now = deadline
        ear.hear(emu.tick(now), now)
        ear.out += ear.call.tick(now)
    ear.out += ear.call.tick(now + 60)
    anis = [o.ani for o in ear.out if isinstance(o, CallArrived)]
    assert anis == [
        "13812345678",
        "P",
        "O",
        "5045551234",
        "",
        "13912345678",
        "13912345679",
        "15045551234",
    ]


def test_every_shipped_script_loads() -> None:
    files = sorted(SCRIPTS.glob("*.toml"))
    assert len(files) >= 3
    for path in files:
        assert isinstance(load_script(path), Script)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[modem]\nchipset = "hayes9000"\n', "modem.chipset"),
        ('[[dials]]\noutcome = "MAYBE"\n', "dials.0.outcome"),
        ("[[calls]]\nrings = 0\n", "calls.0.rings"),
        ('[[calls]]\ndate = "March"\n', "calls.0.date"),
        ("[[calls]]\nnumbr = 1\n", "calls.0.numbr"),
        ('[[noise]]\nhex = "zz"\n', "noise.0.hex"),
    ],
)
def test_script_errors_name_the_key(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SimulationError, match=rf"bad\.toml is not valid:\n  {where}"):
        load_script(path)


def test_script_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SimulationError, match="does not exist"):
        load_script(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[calls]\n")
    with pytest.raises(SimulationError, match="not valid TOML"):
        load_script(bad)


def test_keys() -> None:
    assert call_for_key("r", "1", "A") == CallSpec(number="1", name="A")
    assert call_for_key("p", "1", "A") == CallSpec(number="P", name="P")
    assert call_for_key("o", "1", "A") == CallSpec(number="O")
    assert call_for_key("m", "1", "A") == CallSpec(number="1")
    assert call_for_key("n", "1", "A") == CallSpec(number="1", name="A", caller_id="none")
    assert call_for_key("x", "1", "A") == CallSpec(number="1", name="A", format="mdmf")
    assert call_for_key("z", "1", "A") is None


def test_command_runs_links_and_cleans_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "modem0"
    assert (
        main(["modem-emulator", "--link", str(link), "--chipset", "rockwell", "--seconds", "0.2"])
        == 0
    )
    out = capsys.readouterr().out
    assert f"linked at {link}" in out
    assert "caller ID AT#CID=1" in out
    assert "x  ring with MDMF hex caller ID" in out
    assert not link.exists()
    assert not link.is_symlink()


def test_command_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "file"
    plain.write_text("x")
    assert main(["modem-emulator", "--link", str(plain)]) == 2
    assert "not a symlink" in capsys.readouterr().err
    assert main(["modem-emulator"]) == 2
    assert "--link PATH is required" in capsys.readouterr().err
    bad = tmp_path / "s.toml"
    bad.write_text('[modem]\nchipset = "nope"\n')
    assert main(["modem-emulator", "--link", str(tmp_path / "l"), "--script", str(bad)]) == 2
    assert "modem.chipset" in capsys.readouterr().err
    assert main(["modem-emulator", "--list-chipsets"]) == 0
    assert "AT-STE=1;+VCID=1" in capsys.readouterr().out
    nowhere = tmp_path / "no-such-dir" / "modem0"
    assert main(["modem-emulator", "--link", str(nowhere), "--seconds", "0.1"]) == 2
    assert f"cannot link the modem's pty at {nowhere}" in capsys.readouterr().err


async def test_a_link_that_cannot_be_made_leaves_no_pty_open(tmp_path: Path) -> None:
    before = set(os.listdir("/proc/self/fd"))
    modem = PtyModem(ModemEmulator("conexant"), tmp_path / "no-such-dir" / "modem0")
    with pytest.raises(SimulationError, match="No such file or directory"):
        await modem.open()
    assert not modem.plugged_in
    assert set(os.listdir("/proc/self/fd")) == before


def test_parser_sees_echo_as_echo() -> None:
    emu = ModemEmulator("conexant")
    events = ModemParser().feed(written(emu.received(b"ATZ\r", 0)), 0)
    assert events == [Echo("ATZ", 0), Result("OK", "OK", 0)]
