"""`cti broker-config`: Mosquitto password and ACL files from the configured agents.

Writes three files into ``--out``:

* ``passwd``: Mosquitto's password file (``user:$7$iterations$salt$hash``, PBKDF2-SHA512,
  the format of ``mosquitto_passwd`` in Mosquitto 2.0), made here in Python;
* ``acl``: Mosquitto's ACL file. The engine's user owns ``cti/v1/#``. An agent reads only
  its own events, state and presence, every agent's colleague view (name and state,
  no caller: for the transfer and consult dialogs) and the queue figures its status
  line shows, and writes only its own commands and presence. A supervisor reads the
  queues and
  every agent's state and presence, and writes only its own commands;
* ``credentials.toml``: each user's password in clear, for handing out (mode 0600).
  Run again after adding agents: passwords already in it are kept;
* ``mosquitto.conf``: a broker configuration for these files: no anonymous users, and
  each ``--listener`` (default ``127.0.0.1:1883``) with ``use_username_as_clientid``;
  ``deploy/mosquitto/mosquitto.conf`` has the same settings for an installed broker.

The users are the engine (``cti-engine``, or ``--engine-user``), every ``[[agents]]`` id
of the config (and ``--agent``), and every ``--supervisor``. ``docs/mqtt.md`` explains
the model; ``deploy/mosquitto/`` has a ``mosquitto.conf`` that uses these files.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cti import topics
from cti.errors import ConfigError

ORDER = 62

#: PBKDF2 rounds; Mosquitto 2.0's mosquitto_passwd uses 101, more is harder to guess.
DEFAULT_ITERATIONS = 10_000
SALT_BYTES = 12
ENGINE_USER = "cti-engine"
Role = str  # "engine", "agent" or "supervisor"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "broker-config",
        help="write Mosquitto password and ACL files for the engine, agents and supervisors",
        description="Writes passwd, acl and credentials.toml into --out for Mosquitto: "
        "each agent may read only its own offers and events and send only its own "
        "commands; supervisors read the queues and agents' state and send only "
        "supervisor commands; the engine owns cti/v1. See docs/mqtt.md.",
    )
    p.add_argument("--config", type=Path, help="TOML config file: its [[agents]] get users")
    p.add_argument("--out", type=Path, required=True, help="directory to write the files into")
    p.add_argument("--agent", action="append", default=[], help="another agent id (repeat)")
    p.add_argument("--supervisor", action="append", default=[], help="a supervisor id (repeat)")
    p.add_argument("--engine-user", default=ENGINE_USER, help=f"default {ENGINE_USER}")
    p.add_argument(
        "--listener",
        action="append",
        default=[],
        help=f"HOST:PORT to listen on in mosquitto.conf (repeat; default {DEFAULT_LISTENER})",
    )
    p.add_argument(
        "--iterations", type=int, default=DEFAULT_ITERATIONS, help="PBKDF2-SHA512 rounds"
    )
    p.add_argument(
        "--new-passwords", action="store_true", help="new passwords for everyone (not kept)"
    )
    p.set_defaults(handler=run)


@dataclass(frozen=True, slots=True)
class BrokerUser:
    name: str
    role: Role
    password: str


# --- passwords ----------------------------------------------------------------------


def hash_password(password: str, *, salt: bytes | None = None, iterations: int) -> str:
    """Mosquitto's ``$7$`` hash: PBKDF2-HMAC-SHA512, 64 bytes, base64 salt and hash."""
    if iterations < 1:
        raise ConfigError(f"--iterations must be at least 1, got {iterations}")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(hashed: str, password: str) -> bool:
    """Whether ``password`` matches a ``$7$`` (or Mosquitto 1.x ``$6$``) hash."""
    parts = hashed.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            iterations, salt, digest = int(parts[2]), parts[3], parts[4]
            got = hashlib.pbkdf2_hmac(
                "sha512", password.encode("utf-8"), base64.b64decode(salt), iterations, 64
            )
        elif len(parts) == 4 and parts[1] == "6":
            salt, digest = parts[2], parts[3]
            got = hashlib.sha512(password.encode("utf-8") + base64.b64decode(salt)).digest()
        else:
            return False
        return hmac.compare_digest(got, base64.b64decode(digest))
    except ValueError:
        return False


def passwd_text(users: Sequence[BrokerUser], *, iterations: int) -> str:
    return "".join(f"{u.name}:{hash_password(u.password, iterations=iterations)}\n" for u in users)


# --- access -------------------------------------------------------------------------


def acl_rules(user: BrokerUser) -> list[tuple[str, str]]:
    """``(access, topic pattern)`` of one user, access being read, write or readwrite."""
    name = user.name
    if user.role == "engine":
        return [("readwrite", f"{topics.PREFIX}/#")]
    if user.role == "agent":
        return [
            ("write", topics.agent_commands(name)),
            ("read", topics.agent_events(name)),
            ("read", topics.agent_state(name)),  # names its caller: its own only
            ("read", topics.ALL_COLLEAGUE_STATES),  # for transfer/consult, no caller
            ("readwrite", topics.agent_presence(name)),
            ("read", topics.ALL_QUEUE_STATUS),
            ("read", topics.engine_presence()),
        ]
    if user.role == "supervisor":
        return [
            ("write", topics.supervisor_commands(name)),
            ("read", topics.supervisor_events(name)),
            ("read", f"{topics.PREFIX}/queues/#"),
            ("read", topics.ALL_CAMPAIGN_STATUS),
            ("read", topics.engine_health()),
            ("read", topics.engine_presence()),
            ("read", topics.ALL_AGENT_STATES),
            ("read", f"{topics.PREFIX}/agents/+/presence"),
        ]
    raise ConfigError(f"unknown broker user role {user.role!r} for {name!r}")


def acl_text(users: Sequence[BrokerUser], source: str) -> str:
    lines = [
        f"# Mosquitto ACL written by `cti broker-config` from {source}.",
        "# Every user sees only what is listed under it; anything else is denied.",
        "",
    ]
    for user in users:
        lines.append(f"# {user.role} {user.name}")
        lines.append(f"user {user.name}")
        lines.extend(f"topic {access} {pattern}" for access, pattern in acl_rules(user))
        lines.append("")
    return "\n".join(lines)


#: Mosquitto settings every CTI Desk broker needs, besides the files.
ACCESS_SETTINGS = ("per_listener_settings false", "allow_anonymous false")
#: Settings every listener needs, right after its ``listener`` line (Mosquitto applies
#: them to the listener above; given before any, they open a default one on port 1883).
#: With ``use_username_as_clientid`` a connection's client id is its user: nobody can
#: take another user's id and so throw that client (the engine) off the broker.
LISTENER_SETTINGS = ("use_username_as_clientid true",)
DEFAULT_LISTENER = "127.0.0.1:1883"


def mosquitto_conf_text(passwd: Path, acl: Path, listeners: Sequence[tuple[str, int]]) -> str:
    """A ``mosquitto.conf`` for these files and ``(host, port)`` listeners."""
    lines = [
        "# Written by `cti broker-config` (see docs/mqtt.md, deploy/mosquitto/).",
        *ACCESS_SETTINGS,
        f"password_file {passwd}",
        f"acl_file {acl}",
    ]
    for host, port in listeners:
        lines += [f"listener {port} {host}".rstrip(), *LISTENER_SETTINGS]
    return "\n".join([*lines, ""])


def parse_listener(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT`` for every interface) as ``(host, port)``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--listener {text!r}: expected HOST:PORT, e.g. {DEFAULT_LISTENER}")
    return host, int(port)


def credentials_text(users: Sequence[BrokerUser]) -> str:
    lines = [
        "# Broker passwords written by `cti broker-config`. Keep this file secret.",
        "# Each user connects with --broker mqtt://USER:PASSWORD@HOST:PORT",
        "# (or CTI_BROKER_USERNAME / CTI_BROKER_PASSWORD in the environment).",
        "",
    ]
    for user in users:
        lines.append(f"[users.{json.dumps(user.name, ensure_ascii=False)}]")
        lines.append(f'role = "{user.role}"')
        lines.append(f"password = {json.dumps(user.password, ensure_ascii=False)}")
        lines.append("")
    return "\n".join(lines)


def user_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a broker user and topic level, or None."""
    if not name:
        return "is empty"
    bad = sorted({ch for ch in name if ch in ":/+#" or ch.isspace() or not ch.isprintable()})
    if bad:
        return "contains " + " ".join(repr(ch) for ch in bad)
    return None


def plan_users(
    engine_user: str,
    agents: Sequence[str],
    supervisors: Sequence[str],
    known_passwords: dict[str, str],
) -> list[BrokerUser]:
    """The users to write, each with its kept or a new password. Raises
    :class:`ConfigError` for a bad or twice-used name."""
    wanted: list[tuple[str, Role]] = [(engine_user, "engine")]
    wanted += [(a, "agent") for a in dict.fromkeys(agents)]
    wanted += [(s, "supervisor") for s in dict.fromkeys(supervisors)]
    seen: dict[str, Role] = {}
    users = []
    for name, role in wanted:
        problem = user_name_problem(name)
        if problem is not None:
            raise ConfigError(
                f"{role} id {name!r} {problem}: broker users and topic levels take "
                "letters, digits, '-', '_' and '.'"
            )
        if name in seen:
            raise ConfigError(
                f"{name!r} is both {seen[name]} and {role}: one broker user each; rename one"
            )
        seen[name] = role
        password = known_passwords.get(name) or secrets.token_urlsafe(18)
        users.append(BrokerUser(name, role, password))
    return users


def read_credentials(path: Path) -> dict[str, str]:
    """Passwords from an earlier ``credentials.toml`` (empty if there is none)."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"{path} cannot be read ({exc}); fix it, or remove it for new passwords"
        ) from None
    users = data.get("users", {})
    return {
        str(name): str(entry["password"])
        for name, entry in users.items()
        if isinstance(entry, dict) and isinstance(entry.get("password"), str)
    }


def write_broker_files(
    out: Path,
    users: Sequence[BrokerUser],
    *,
    iterations: int,
    source: str,
    listeners: Sequence[tuple[str, int]] = (("127.0.0.1", 1883),),
) -> list[Path]:
    """Write passwd, acl, credentials.toml and mosquitto.conf (owner-only) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        out / "passwd": passwd_text(users, iterations=iterations),
        out / "acl": acl_text(users, source),
        out / "credentials.toml": credentials_text(users),
        out / "mosquitto.conf": mosquitto_conf_text(
            (out / "passwd").absolute(), (out / "acl").absolute(), listeners
        ),
    }
    for path, text in files.items():
        write_private(path, text)
    return list(files)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (mode 0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def run(args: argparse.Namespace) -> int:
    from cti.config import load_config

    config = load_config(args.config)
    agents = [a.id for a in config.agents] + list(args.agent)
    if not agents:
        raise ConfigError(
            f"no agents: {args.config or 'the default config'} has no [[agents]]; "
            "add them there or name them with --agent ID"
        )
    out: Path = args.out
    known = {} if args.new_passwords else read_credentials(out / "credentials.toml")
    users = plan_users(args.engine_user, agents, args.supervisor, known)
    listeners = [parse_listener(text) for text in args.listener or [DEFAULT_LISTENER]]
    written = write_broker_files(
        out,
        users,
        iterations=args.iterations,
        source=str(args.config or "the defaults"),
        listeners=listeners,
    )
    kept = sum(1 for u in users if known.get(u.name) == u.password)
    print(
        f"{len(users)} broker users (1 engine, {len(dict.fromkeys(agents))} agents, "
        f"{len(dict.fromkeys(args.supervisor))} supervisors; {kept} passwords kept)"
    )
    for path in written:
        print(f"wrote {path}")
    print(
        f"run `mosquitto -c {out / 'mosquitto.conf'}`, or install passwd and acl with "
        "deploy/mosquitto/mosquitto.conf (which has the same access settings)"
    )
    return 0
