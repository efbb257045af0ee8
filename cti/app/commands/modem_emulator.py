"""`cti modem-emulator`: a voice modem on a pty, for trying a modem line without one."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import termios
import tty
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from simulators.modem_emulator import ModemEmulator, ModemSettings, Note, PtyModem, Script

ORDER = 60

_OUTCOMES = ("VCON", "OK", "BUSY", "NO ANSWER", "NO CARRIER", "NO DIALTONE", "ERROR")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from simulators.modem_emulator import CHIPSETS

    emu = sub.add_parser(
        "modem-emulator",
        help="a voice modem on a pty for testers: AT commands, rings with caller ID, dial outcomes",
        description="Open a pty that behaves like a voice modem of the chosen chipset and link "
        "it at --link, so a modem line (port = that path) can be tried with no modem and no "
        "telephone line. Calls come from --script and from keys typed here.",
    )
    emu.add_argument("--link", type=Path, help="symlink to make to the pty (required)")
    emu.add_argument(
        "--chipset",
        choices=sorted(CHIPSETS),
        help="modem profile (default: the script's, else conexant); see --list-chipsets",
    )
    emu.add_argument("--script", type=Path, help="call script TOML (simulators/modem_scripts/)")
    emu.add_argument(
        "--echo",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="echo commands after a reset (default: the chipset's)",
    )
    emu.add_argument(
        "--numeric", action="store_true", help="numeric result codes (V0) after a reset"
    )
    emu.add_argument("--line-ending", choices=("crlf", "cr", "lf", "lfcr"), help="line endings")
    emu.add_argument(
        "--caller-id-command",
        metavar="CMD",
        help="the caller-ID command that works, e.g. AT#CID=1 (default: the chipset's)",
    )
    emu.add_argument("--ring-interval", type=float, metavar="S", help="seconds between RINGs")
    emu.add_argument("--number", default="13812345678", help="caller number for the keys")
    emu.add_argument("--name", default="Test Caller", help="caller name for the keys")
    emu.add_argument(
        "--dial-outcome", choices=_OUTCOMES, default="VCON", help="how dialled calls end"
    )
    emu.add_argument("--dial-after", type=float, default=2.0, metavar="S", help="dial takes S s")
    emu.add_argument("--seconds", type=float, help="stop after S seconds (default: on q)")
    emu.add_argument("--list-chipsets", action="store_true", help="list the chipsets and exit")
    emu.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from cti.errors import SimulationError
    from simulators.modem_emulator import CHIPSETS, ModemSettings, Script, load_script

    if args.list_chipsets:
        for name, chip in CHIPSETS.items():
            print(f"{name:<14} {chip.caller_id_command or '(none)':<22} {chip.description}")
        return 0
    if args.link is None:
        raise SimulationError("--link PATH is required: where to link the emulated modem's pty")
    script = load_script(args.script) if args.script is not None else Script()
    settings = ModemSettings.model_validate({**script.modem.model_dump(), **_overrides(args)})
    if args.link.exists() and not args.link.is_symlink():
        raise SimulationError(f"--link {args.link} exists and is not a symlink; not replacing it")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args, settings, script))
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """The script's ``[modem]`` settings the command line changes."""
    from cti.errors import SimulationError

    overrides: dict[str, object] = {}
    if args.chipset:
        overrides["chipset"] = args.chipset
    if args.echo is not None:
        overrides["echo"] = args.echo
    if args.numeric:
        overrides["verbose"] = False
    if args.line_ending:
        overrides["line_ending"] = args.line_ending
    if args.caller_id_command:
        overrides["caller_id_command"] = args.caller_id_command.replace(" ", "").upper()
    if args.ring_interval is not None:
        if not args.ring_interval > 0:
            raise SimulationError(f"--ring-interval must be > 0 seconds, got {args.ring_interval}")
        overrides["ring_interval_s"] = args.ring_interval
    if args.dial_after < 0:
        raise SimulationError(f"--dial-after must be >= 0 seconds, got {args.dial_after}")
    return overrides


async def _serve(args: argparse.Namespace, settings: ModemSettings, script: Script) -> None:
    from simulators.modem_emulator import DialSpec, ModemEmulator, PtyModem

    chip = settings.chipset_profile()
    core = ModemEmulator(
        chip,
        ring_interval_s=settings.ring_interval_s,
        caller_id_delay_s=settings.caller_id_delay_s,
        default_dial=DialSpec(outcome=args.dial_outcome, after_s=args.dial_after),
    )
    modem = PtyModem(core, args.link, on_note=_show)
    path = await modem.open()
    _describe(core, path, args, script)
    if script.calls or script.noise or script.dials:
        modem.run_script(script)
    done = asyncio.Event()
    restore = _watch_keys(modem, args, done)
    try:
        async with asyncio.timeout(args.seconds):
            await done.wait()
    except TimeoutError:
        pass
    finally:
        restore()
        await modem.close()
        print("modem emulator stopped; link removed", flush=True)


def _describe(core: ModemEmulator, path: str, args: argparse.Namespace, script: Script) -> None:
    chip = core.chipset
    print(f"modem emulator on {path}, linked at {args.link}", flush=True)
    print(f"  chipset   {chip.name}: {chip.description}")
    print(f"  caller ID {chip.caller_id_command or 'never (no command works)'}")
    print(
        f"  after ATZ echo {'on' if chip.echo else 'off'},"
        f" {'verbose' if chip.verbose else 'numeric'} results,"
        f" {chip.line_ending.upper()} line endings{', ignores ATE/ATV' if chip.stubborn else ''}"
    )
    print(f"  RING every {core.ring_interval_s:g} s; dialled calls end in {args.dial_outcome}")
    if script.calls or script.dials or script.noise:
        print(
            f"  script    {len(script.calls)} calls, {len(script.dials)} dial outcomes,"
            f" {len(script.noise)} bursts of noise"
        )
    print(f'  line config: [[lines]] kind = "modem", name = "modem1", port = "{args.link}"')
    from simulators.modem_emulator import KEYS

    print("keys:")
    for key, what in KEYS.items():
        print(f"  {key}  {what}")
    print(f"  (calls from {args.number} {args.name})", flush=True)


def _show(note: Note) -> None:
    arrow = "<-" if note.what == "command" else "**"
    detail = f" {note.detail}" if note.detail else ""
    label = "" if note.what == "command" else note.what.replace("_", " ")
    print(f"{arrow} {label}{detail}".replace("  ", " "), flush=True)


def _watch_keys(
    modem: PtyModem, args: argparse.Namespace, done: asyncio.Event
) -> Callable[[], None]:
    """Read keys from stdin (cbreak on a terminal); returns a function undoing it."""
    loop = asyncio.get_running_loop()
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):  # no stdin, or a captured one
        return lambda: None
    saved = None
    if os.isatty(fd):
        saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)

    def readable() -> None:
        try:
            data = os.read(fd, 64)
        except OSError:
            data = b""
        if not data:  # end of input: keep running on the script (and --seconds)
            loop.remove_reader(fd)
            return
        for key in data.decode("utf-8", "replace"):
            _on_key(key, modem, args, done)

    try:
        loop.add_reader(fd, readable)
    except (OSError, ValueError, PermissionError):
        return lambda: None

    def restore() -> None:
        with contextlib.suppress(Exception):
            loop.remove_reader(fd)
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    return restore


def _on_key(key: str, modem: PtyModem, args: argparse.Namespace, done: asyncio.Event) -> None:
    from simulators.modem_emulator import GARBAGE, call_for_key

    if key in "qQ":
        done.set()
    elif key in "hH":
        modem.caller_hangs_up()
    elif key in "gG":
        modem.send(GARBAGE)
    elif (spec := call_for_key(key, args.number, args.name)) is not None:
        modem.ring(spec)
