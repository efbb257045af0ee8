"""From ``[[lines]]`` tables to telephony adapters.

:func:`build_line` turns one line's settings (:data:`cti.config.LineSettings`) into
the adapter that serves it; :func:`build_lines` does every line of a configuration.
The adapters are not started: the engine service starts and stops them
(``EngineService.run``). A modem line opens its port in the background and keeps
trying with backoff, so a modem that is unplugged at start-up does not stop the
engine.

Adapters are imported only when a line of their kind is configured, so a center with
no modem does not need the serial libraries to load.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from cti.config import (
    Config,
    LineSettings,
    ModemLineSettings,
    SimLineSettings,
    SipLineSettings,
    VoiceSettings,
)
from cti.errors import ConfigError, TelephonyError
from telephony_adapters.base import TelephonyAdapter


def build_line(
    settings: LineSettings,
    *,
    phones: Mapping[str, str] | None = None,
    voice: VoiceSettings | None = None,
) -> TelephonyAdapter:
    """The adapter for one ``[[lines]]`` table.

    ``kind = "sim"``: a :class:`~telephony_adapters.sim.SimTrunk` named ``name``.
    ``kind = "modem"``: a :class:`~telephony_adapters.modem.line.ModemLine` on
    ``port`` at ``baud``, with ``dnis``, the extra ``init`` commands and the ring,
    answer and dial timeouts.
    ``kind = "sip"``: a :class:`~telephony_adapters.sipline.line.SipLine` (SIP over
    UDP on ``bind_host:bind_port``; see docs/sip.md).
    The adapters never read the configuration: this factory hands each one its
    settings as plain values (the modem line's arguments, a SIP line's
    :class:`~telephony_adapters.sipline.params.SipLineParams`).
    ``phones``: the agents' fixed phone URIs (``[[agents]] phone``), for a SIP line.
    ``voice``: the ``[voice]`` settings a SIP line with phones carries the voice with
    (hold music, recordings, a silent phone's time-out; default ones if None).
    Raises :class:`~cti.errors.ConfigError` naming the line for a kind that cannot be
    built here (or a SIP line's phone credentials that cannot be read).
    """
    if isinstance(settings, SimLineSettings):
        from telephony_adapters.sim import SimTrunk

        return SimTrunk(settings.name)
    if isinstance(settings, ModemLineSettings):
        return _modem_line(settings)
    if isinstance(settings, SipLineSettings):
        return _sip_line(settings, phones or {}, voice or VoiceSettings())
    raise ConfigError(
        f"line {settings.name!r}: lines of kind {settings.kind!r} cannot be built yet"
        " (known: sim, modem, sip)"
    )


def _modem_line(settings: ModemLineSettings) -> TelephonyAdapter:
    from telephony_adapters.modem.line import ModemLine

    return ModemLine(
        settings.name,
        settings.port,
        baud=settings.baud,
        dnis=settings.dnis,
        init=settings.init,
        ring_timeout_s=settings.ring_timeout_s,
        answer_timeout_s=settings.answer_timeout_s,
        dial_timeout_s=settings.dial_timeout_s,
    )


def _sip_line(
    settings: SipLineSettings, phones: Mapping[str, str], voice: VoiceSettings
) -> TelephonyAdapter:
    from telephony_adapters.sipline.line import SipLine
    from telephony_adapters.sipline.params import SipLineParams
    from telephony_adapters.sipline.phone_auth import read_phone_ha1

    realm, ha1 = "", dict[str, dict[str, str]]()
    if settings.phone_credentials:
        try:
            realm, ha1 = read_phone_ha1(Path(settings.phone_credentials))
        except TelephonyError as exc:
            raise ConfigError(f"line {settings.name!r}: phone_credentials: {exc}") from None

    params = SipLineParams(
        name=settings.name,
        bind_host=settings.bind_host,
        bind_port=settings.bind_port,
        public_host=settings.public_host,
        registrar=settings.registrar,
        username=settings.username,
        password=settings.password,
        register_expires_s=settings.register_expires_s,
        outbound_proxy=settings.outbound_proxy,
        codecs=settings.codecs,
        rtp_port_min=settings.rtp_port_min,
        rtp_port_max=settings.rtp_port_max,
        keepalive_s=settings.keepalive_s,
        phone_realm=realm,
        phone_ha1=ha1,
        phones=dict(phones),
        phone_qualify_s=settings.phone_qualify_s,
        phone_algorithms=settings.phone_algorithms,
        hold_music=voice.hold_music,
        announce_recording=voice.announce_recording,
        recordings_dir=voice.recordings_dir,
        recording_format=voice.recording_format,
        phone_silence_s=voice.phone_silence_s,
        transports=settings.transports,
        tls_port=settings.tls_port,
        tls_cert_file=settings.tls_cert_file,
        tls_key_file=settings.tls_key_file,
        tls_ca_file=settings.tls_ca_file,
        tls_pin_sha256=settings.tls_pin_sha256,
        tls_verify=settings.tls_verify,
        dns_servers=settings.dns_servers,
        stream_idle_s=settings.stream_idle_s,
        srtp=settings.srtp,
        phone_srtp=settings.phone_srtp,
    )
    return SipLine(params)


def build_lines(config: Config | Sequence[LineSettings]) -> list[TelephonyAdapter]:
    """Every line of ``config`` (or of a list of line settings), in order."""
    if isinstance(config, Config):
        phones = {agent.id: agent.phone for agent in config.agents if agent.phone}
        return [
            build_line(settings, phones=phones, voice=config.voice) for settings in config.lines
        ]
    return [build_line(settings) for settings in config]
