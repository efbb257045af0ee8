"""Where the broker is and who we are there: the broker URL (``mqtt[s]://user:pass@host:port``),
the broker settings in force (file, ``CTI_BROKER_*`` environment, ``--broker``), and
the client ids. ``docs/mqtt.md`` tells the whole story.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from pydantic import ValidationError

from cti import topics
from cti.config import BrokerSettings
from cti.errors import ConfigError, CtiError

log = logging.getLogger(__name__)

#: Environment variables read by :func:`resolve_broker_settings`, and the key each sets.
ENV_VARS: dict[str, str] = {
    "CTI_BROKER_URL": "url",
    "CTI_BROKER_CLIENT_ID": "client_id",
    "CTI_BROKER_KEEPALIVE_S": "keepalive_s",
    "CTI_BROKER_MAX_IN_FLIGHT": "max_in_flight",
    "CTI_BROKER_RECONNECT_MIN_S": "reconnect_min_s",
    "CTI_BROKER_RECONNECT_MAX_S": "reconnect_max_s",
    "CTI_BROKER_CA_FILE": "ca_file",
}
#: These two replace the user and password of the URL (keeps a password off the command line).
ENV_USERNAME = "CTI_BROKER_USERNAME"
ENV_PASSWORD = "CTI_BROKER_PASSWORD"


class BrokerError(CtiError):
    """The broker refused something (a login, a subscription) or cannot be reached."""


# --- addresses and settings ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is and who we are there, from ``mqtt[s]://user:pass@host:port``."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @property
    def display(self) -> str:
        """The address for messages and screens: never shows the password."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://[user[:password]@]host[:port]`` (``mqtts://`` for TLS).

    The port defaults to 1883 (8883 for ``mqtts``); user and password may be
    percent-encoded. Raises :class:`ConfigError` naming the URL (without its password)
    and what is accepted.
    """
    accepted = "expected mqtt://[user:password@]host[:port] or mqtts://... for TLS"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(
            f"broker URL {_hide_password(url)!r} is not valid: {exc}; {accepted}"
        ) from None
    if parts.scheme not in ("mqtt", "mqtts"):
        shown = parts.scheme or "none"
        raise ConfigError(f"broker URL {_hide_password(url)!r}: scheme {shown!r}; {accepted}")
    if not parts.hostname:
        raise ConfigError(f"broker URL {_hide_password(url)!r} names no host; {accepted}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(
            f"broker URL {_hide_password(url)!r} has a path or query; {accepted} (nothing after)"
        )
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname,
        port=port if port is not None else (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _hide_password(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, userinfo = head.partition("://")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}" if ":" in userinfo else url


def resolve_broker_settings(
    base: BrokerSettings,
    *,
    url: str | None = None,
    env: Mapping[str, str] | None = None,
    default_username: str | None = None,
) -> BrokerSettings:
    """The broker settings in force: the config file's ``[broker]`` (``base``), then the
    ``CTI_BROKER_*`` environment variables (:data:`ENV_VARS`), then ``url`` (``--broker``).

    ``CTI_BROKER_USERNAME`` and ``CTI_BROKER_PASSWORD`` replace the URL's user and
    password; ``default_username`` is the user when neither names one (a console's
    agent id). Raises :class:`ConfigError` naming the variable and the bad value.
    """
    env = os.environ if env is None else env
    changes: dict[str, Any] = {}
    for var, key in ENV_VARS.items():
        if env.get(var, "") != "":
            changes[key] = env[var]
    if url:
        changes["url"] = url
    try:
        settings = BrokerSettings.model_validate({**base.model_dump(), **changes})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "?"
        var = next((v for v, k in ENV_VARS.items() if k == key), key)
        raise ConfigError(
            f"broker setting {key} (from {var} or the config file): {first['msg']}"
        ) from None
    user, password = env.get(ENV_USERNAME, ""), env.get(ENV_PASSWORD, "")
    if settings.url and (user or password or default_username):
        address = parse_broker_url(settings.url)
        address = replace(
            address,
            username=user or address.username or default_username,
            password=password or address.password,
        )
        settings = settings.model_copy(update={"url": broker_url(address)})
    return settings


def broker_url(address: BrokerAddress) -> str:
    """The URL of ``address``, with its user and password (percent-encoded)."""
    auth = ""
    if address.username is not None:
        auth = quote(address.username, safe="")
        if address.password is not None:
            auth += ":" + quote(address.password, safe="")
        auth += "@"
    return f"{'mqtts' if address.tls else 'mqtt'}://{auth}{address.host}:{address.port}"


def _host() -> str:
    host = socket.gethostname().split(".")[0]
    return host if topics.is_id(host) else "host"


def default_client_id(role: str, name: str = "") -> str:
    """``cti-<role>[-<name>]-<host>-<random>``: a random suffix, so nobody can name it in
    advance (a broker lets a new connection with a client's id throw that client off)
    and two consoles of one agent do not take each other's connection over. The engine's
    id must also stay the same across restarts: :func:`installation_client_id`."""
    who = f"-{name}" if name else ""
    return f"cti-{role}{who}-{_host()}-{uuid.uuid4().hex[:12]}"


def installation_client_id(path: os.PathLike[str] | str) -> str:
    """The engine's client id for the installation whose id file is ``path``:
    ``cti-engine-<host>-<32 random hex>``, made on first use and read back after, so
    the engine's MQTT session survives restarts yet nobody can guess the id. The file is
    owner-only; a broken one is replaced (the old session then expires at the broker)."""
    try:
        with open(path, encoding="ascii") as handle:
            kept = handle.read().strip()
        if topics.is_id(kept) and kept.startswith("cti-engine-"):
            return kept
        log.warning("%s holds no valid client id; making a new one", path)
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("%s cannot be read (%s); making a new client id", path, exc)
    made = f"cti-engine-{_host()}-{uuid.uuid4().hex}"
    tmp = f"{os.fspath(path)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(made + "\n")
    os.replace(tmp, path)
    return made
