"""`cti phone-credentials`: SIP passwords for the agents' phones, and their HA1 hashes.

Writes two files into ``--out`` (each readable by its owner only, mode 0600):

* ``phone-credentials.toml``: each agent's SIP user, password (in clear, for setting up
  the phone) and realm. Run again after adding agents: passwords already in it are
  kept (``--new-passwords`` makes new ones for everyone);
* ``phone-ha1.toml``: the realm and, per agent, ``MD5`` and ``SHA-256`` of
  ``agent:realm:password`` (RFC 7616, RFC 8760). The SIP line reads only this file (its
  ``[[lines]]`` table's ``phone_credentials``): no password is ever in the config.

The agents are the ``[[agents]]`` of ``--config`` and every ``--agent``. See docs/voice.md.
"""

from __future__ import annotations

import argparse
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cti.app.commands.broker_config import read_credentials, write_private
from cti.errors import ConfigError
from telephony_adapters.sipline.phone_auth import ALGORITHMS, MAX_ID, ha1

ORDER = 63
DEFAULT_REALM = "cti-desk"
CREDENTIALS = "phone-credentials.toml"
HA1_FILE = "phone-ha1.toml"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "phone-credentials",
        help="write SIP passwords for the agents' phones and the HA1 file the line reads",
        description=f"Writes {CREDENTIALS} (passwords in clear, for setting up the phones) "
        f"and {HA1_FILE} (MD5 and SHA-256 digests only; name it in the SIP line's "
        "phone_credentials) into --out, both mode 0600. Kept passwords stay.",
    )
    p.add_argument("--config", type=Path, help="TOML config file: its [[agents]] get phones")
    p.add_argument("--out", type=Path, required=True, help="directory to write the files into")
    p.add_argument("--agent", action="append", default=[], help="another agent id (repeat)")
    p.add_argument("--realm", default=DEFAULT_REALM, help=f"digest realm (default {DEFAULT_REALM})")
    p.add_argument(
        "--new-passwords", action="store_true", help="new passwords for everyone (not kept)"
    )
    p.set_defaults(handler=run)


@dataclass(frozen=True, slots=True)
class PhoneUser:
    agent: str
    password: str


def sip_user_problem(name: str) -> str | None:
    """Why ``name`` cannot be the user part of ``sip:<name>@host``, or None."""
    if not name or len(name) > MAX_ID:
        return f"must have 1 to {MAX_ID} characters"
    bad = sorted({c for c in name if c in ':@<>"\\' or c.isspace() or not c.isprintable()})
    return "contains " + " ".join(repr(c) for c in bad) if bad else None


def check_realm(realm: str) -> str:
    if not realm or len(realm) > MAX_ID or '"' in realm or "\\" in realm:
        raise ConfigError(f"--realm {realm!r}: 1 to {MAX_ID} characters, no quotes")
    return realm


def plan_phones(agents: Sequence[str], known: dict[str, str]) -> list[PhoneUser]:
    """Each agent with its kept or a new password; ConfigError names a bad id."""
    users = []
    for agent in dict.fromkeys(agents):
        problem = sip_user_problem(agent)
        if problem is not None:
            raise ConfigError(f"agent id {agent!r} {problem}: it cannot be a SIP user")
        users.append(PhoneUser(agent, known.get(agent) or secrets.token_urlsafe(15)))
    return users


def credentials_text(users: Sequence[PhoneUser], realm: str) -> str:
    lines = [
        "# Phone passwords written by `cti phone-credentials`. Keep this file secret.",
        "# Each phone registers sip:AGENT@LINE-HOST with user AGENT and this password.",
        "",
    ]
    for user in users:
        lines.append(f"[users.{json.dumps(user.agent, ensure_ascii=False)}]")
        lines.append(f"password = {json.dumps(user.password, ensure_ascii=False)}")
        lines.append(f"realm = {json.dumps(realm, ensure_ascii=False)}")
        lines.append("")
    return "\n".join(lines)


def ha1_text(users: Sequence[PhoneUser], realm: str) -> str:
    lines = [
        "# Digest HA1 values written by `cti phone-credentials` (no passwords).",
        "# The SIP line reads this file: [[lines]] phone_credentials = PATH.",
        f"realm = {json.dumps(realm, ensure_ascii=False)}",
        "",
    ]
    for user in users:
        lines.append(f"[agents.{json.dumps(user.agent, ensure_ascii=False)}]")
        for algorithm in ALGORITHMS:
            lines.append(f'{algorithm} = "{ha1(user.agent, realm, user.password, algorithm)}"')
        lines.append("")
    return "\n".join(lines)


def write_phone_files(out: Path, users: Sequence[PhoneUser], realm: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = {
        out / CREDENTIALS: credentials_text(users, realm),
        out / HA1_FILE: ha1_text(users, realm),
    }
    for path, text in files.items():
        write_private(path, text)
    return list(files)


def run(args: argparse.Namespace) -> int:
    from cti.config import load_config

    config = load_config(args.config)
    agents = [a.id for a in config.agents] + list(args.agent)
    if not agents:
        raise ConfigError(
            f"no agents: {args.config or 'the default config'} has no [[agents]]; "
            "add them there or name them with --agent ID"
        )
    realm = check_realm(args.realm)
    out: Path = args.out
    known = {} if args.new_passwords else read_credentials(out / CREDENTIALS)
    users = plan_phones(agents, known)
    written = write_phone_files(out, users, realm)
    kept = sum(1 for u in users if known.get(u.agent) == u.password)
    print(f"{len(users)} phone users ({kept} passwords kept), realm {realm!r}")
    for path in written:
        print(f"wrote {path}")
    print(f'set phone_credentials = "{(out / HA1_FILE).absolute()}" in the SIP [[lines]] table')
    return 0
