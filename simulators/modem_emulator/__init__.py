"""A voice modem on a pty, for testers: answers AT commands like a chosen chipset and
rings with caller ID on demand, so a modem line can be tried with no modem and no
telephone line.

Two parts, as everywhere in this project:

* :class:`ModemEmulator` (``core``), the pure core: bytes from the line and ``now`` in,
  bytes to the line and :class:`Note` values (what happened, for the screen and for
  tests) out; :meth:`ModemEmulator.next_deadline` says when to call
  :meth:`ModemEmulator.tick`. It knows the commands a line sends (``ATZ``,
  ``ATE0V1Q0S0=0``, the caller-ID commands, ``ATA``, ``ATH``, ``ATD...``, ``ATI``,
  ``AT``; read by ``at_commands``), echo (``E``), verbose or numeric results (``V``),
  quiet (``Q``), and which caller-ID command its chipset accepts (:data:`CHIPSETS`,
  ``chipsets``). Incoming calls (:class:`CallSpec`) ring every ``ring_interval_s`` with
  caller ID between the rings, before the first ring or not at all, formatted
  (``NMBR = ...``) or as SDMF/MDMF hex (``caller_id``), private (``P``), out of area
  (``O``), without a name; the caller gives up after ``rings`` rings or hangs up after
  being answered. Dialled calls (``ATDT...;``) end in the outcome a :class:`DialSpec`
  gives (VCON, OK, BUSY, NO ANSWER, NO CARRIER, NO DIALTONE, ERROR).
* :class:`PtyModem` (``pty``), the shell: a pty whose slave a line opens (``--link``
  makes a stable symlink to it), a timer, and :meth:`PtyModem.vanish` /
  :meth:`PtyModem.open` to pull the device out and plug it back in.

Call scripts are TOML (:func:`load_script` in ``script``, validated with pydantic; see
``simulators/modem_scripts/``). ``cti modem-emulator`` runs it all from a terminal,
with the keys of ``keys``.
"""

from simulators.modem_emulator.caller_id import mdmf_hex, sdmf_hex
from simulators.modem_emulator.chipsets import CHIPSETS, LINE_ENDINGS, NUMERIC_RESULTS, Chipset
from simulators.modem_emulator.core import ModemEmulator, Note
from simulators.modem_emulator.keys import GARBAGE, KEYS, call_for_key
from simulators.modem_emulator.pty import PtyModem
from simulators.modem_emulator.script import (
    CallSpec,
    DialSpec,
    ModemSettings,
    Noise,
    Script,
    load_script,
)

__all__ = [
    "CHIPSETS",
    "GARBAGE",
    "KEYS",
    "LINE_ENDINGS",
    "NUMERIC_RESULTS",
    "CallSpec",
    "Chipset",
    "DialSpec",
    "ModemEmulator",
    "ModemSettings",
    "Noise",
    "Note",
    "PtyModem",
    "Script",
    "call_for_key",
    "load_script",
    "mdmf_hex",
    "sdmf_hex",
]
