"""What a SIP line needs to know, as plain values. The engine's line factory
(``cti.engine.lines``) fills them in from the configuration's ``[[lines]]`` table, which
checked them (codec names, port ranges); the line never reads the configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


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
    phone_realm: str = ""
    """The digest realm of the agents' phones (from the HA1 file)."""
    phone_ha1: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """agent id -> algorithm -> HA1 (``cti phone-credentials``); empty: no registrar."""
    phones: Mapping[str, str] = field(default_factory=dict)
    """agent id -> a fixed ``sip:`` URI of the agent's phone."""
    phone_qualify_s: float = 30.0
    """OPTIONS to each agent's phone this often; 0: none."""
    phone_algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    """Digest algorithms offered to the phones, in order."""
    hold_music: str = ""
    """The music for held callers when a plan names none (a WAV file); empty: the shipped
    piece. A line with phones carries the voice (:mod:`.voice`)."""
    announce_recording: str = ""
    """A WAV played once to a recorded caller before the first agent is bridged ("this
    call may be recorded"); empty: none."""
    recordings_dir: str = "recordings"
    """Where call recordings go (``<dir>/<day>/<call id>.wav``)."""
    recording_format: str = "pcm16"
    """``pcm16`` or ``g711`` (mu-law)."""
    phone_silence_s: float = 30.0
    """An answered agent's phone that sends no audio this long is lost."""
    transports: tuple[str, ...] = ("udp",)
    """What we listen on: ``udp`` and ``tcp`` at ``bind_port``, ``tls`` at ``tls_port``
    (docs/sip.md, Transports). We send by any of them, as the target asks."""
    tls_port: int = 5061
    """0: any free port (tests)."""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_ca_file: str = ""
    """Trust this CA for the peers' certificates instead of the system's."""
    tls_pin_sha256: tuple[str, ...] = ()
    """Accept only peer certificates with these SHA-256 fingerprints."""
    tls_verify: bool = True
    dns_servers: tuple[str, ...] = ()
    """``host[:port]`` of the name servers for RFC 3263; empty: the system's."""
    stream_idle_s: float = 600.0
    """A TCP or TLS connection idle this long is closed."""
    srtp: str = "off"
    """SRTP (SDES) on trunk calls: ``off``, ``offer`` or ``require`` (docs/sip.md, SRTP)."""
    phone_srtp: str = "off"
    """SRTP on the legs to the agents' phones, likewise."""
