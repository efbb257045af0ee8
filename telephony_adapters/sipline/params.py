"""What a SIP line needs to know, as plain values. The engine's line factory
(``cti.engine.lines``) fills them in from the configuration's ``[[lines]]`` table, which
checked them (codec names, port ranges); the line never reads the configuration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SipLineParams:
    name: str
    bind_host: str = "127.0.0.1"
    bind_port: int = 5060
    """0: any free port (tests)."""
    public_host: str = ""
    """The address we advertise, when not the one we listen on (behind NAT)."""
    registrar: str = ""
    """``host[:port]`` or a ``sip:`` URI; empty: no registration."""
    username: str = ""
    password: str = ""
    register_expires_s: int = 3600
    outbound_proxy: str = ""
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    """In order of preference, upper case."""
    rtp_port_min: int = 10000
    rtp_port_max: int = 20000
    keepalive_s: float = 30.0
    """OPTIONS to the registrar or proxy this often; 0: none."""
