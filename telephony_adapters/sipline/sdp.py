"""SDP (RFC 4566) and the offer/answer model (RFC 3264) for one audio stream.

We offer and accept G.711 (PCMU payload type 0, PCMA 8) at 8 kHz, 20 ms packets, and
telephone-event (RFC 4733 DTMF) at a dynamic payload type. Only the first audio stream
is used; every other stream of an offer is declined with port 0, in its place.
Direction follows RFC 3264 §6.1 (an offer's ``sendonly`` is answered ``recvonly``);
hold is ``a=sendonly`` with the ``o=`` version bumped (RFC 3264 §8.4).

SRTP keyed by SDES (RFC 4568) follows a :class:`SrtpPolicy` (docs/sip.md, SRTP): our
offers carry ``a=crypto`` lines (``RTP/SAVP`` when SRTP is required), our answers take
the first usable crypto line of an offer, and the agreed suite and keys ride in the
:class:`MediaPlan` to the relay. Keys are offered and accepted only over TLS.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
from dataclasses import dataclass, field

from telephony_adapters.media.srtp import SUITES, Crypto, choose_crypto, format_crypto, new_key
from telephony_adapters.sipline.message import SipSyntaxError, is_number

STATIC_CODECS: dict[str, int] = {"PCMU": 0, "PCMA": 8}
TELEPHONE_EVENT_PT = 101
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_ANSWER_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


class NotAcceptableError(SipSyntaxError):
    """An offer has no audio stream with a codec we support (answer 488)."""


@dataclass(slots=True)
class Media:
    kind: str
    port: int
    proto: str
    formats: list[str]
    rtpmap: dict[int, tuple[str, int]] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    direction: str = ""
    connection: str = ""
    ptime: int | None = None
    other: list[str] = field(default_factory=list)
    crypto: list[str] = field(default_factory=list)
    """The values of its ``a=crypto:`` lines (read when negotiated, RFC 4568)."""

    def codec(self, pt: int) -> tuple[str, int] | None:
        """(encoding name upper-cased, clock rate) of a payload type."""
        if pt in self.rtpmap:
            name, rate = self.rtpmap[pt]
            return name.upper(), rate
        for name, static in STATIC_CODECS.items():
            if pt == static:
                return name, 8000
        return None


@dataclass(slots=True)
class Session:
    username: str = "-"
    session_id: str = "0"
    version: int = 0
    address: str = "0.0.0.0"
    name: str = "-"
    connection: str = ""
    direction: str = ""
    media: list[Media] = field(default_factory=list)

    def __bytes__(self) -> bytes:
        lines = [
            "v=0",
            f"o={self.username} {self.session_id} {self.version} IN IP4 {self.address}",
            f"s={self.name}",
        ]
        if self.connection:
            lines.append(f"c=IN IP4 {self.connection}")
        lines.append("t=0 0")
        if self.direction:
            lines.append(f"a={self.direction}")
        for m in self.media:
            lines.append(f"m={m.kind} {m.port} {m.proto} {' '.join(m.formats)}")
            if m.connection:
                lines.append(f"c=IN IP4 {m.connection}")
            for pt, (name, rate) in m.rtpmap.items():
                lines.append(f"a=rtpmap:{pt} {name}/{rate}")
            for pt, params in m.fmtp.items():
                lines.append(f"a=fmtp:{pt} {params}")
            lines.extend(f"a=crypto:{c}" for c in m.crypto)
            if m.ptime:
                lines.append(f"a=ptime:{m.ptime}")
            if m.direction:
                lines.append(f"a={m.direction}")
        return ("\r\n".join(lines) + "\r\n").encode()


def parse_sdp(body: bytes) -> Session:
    """Read an SDP body; raises SipSyntaxError naming the bad line."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SipSyntaxError("SDP is not UTF-8") from None
    session = Session()
    media: Media | None = None
    seen_version = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise SipSyntaxError(f"SDP line {number}: not type=value: {line[:60]!r}")
        kind, value = line[0], line[2:]
        seen_version = seen_version or kind == "v"
        try:
            media = _line(session, media, kind, value)
        except (ValueError, IndexError, OverflowError):
            raise SipSyntaxError(f"SDP line {number}: bad {kind}= line: {line[:60]!r}") from None
    if not seen_version:
        raise SipSyntaxError("SDP without v= line")
    return session


def _line(session: Session, media: Media | None, kind: str, value: str) -> Media | None:
    """Read one ``kind=value`` line into ``session``; returns the media section now open.
    ValueError, IndexError or OverflowError: the line is bad."""
    if kind == "o":
        user, sid, version, _net, _addrtype, address = value.split()
        session.username, session.session_id = user, sid
        session.version, session.address = int(version), address
    elif kind == "s":
        session.name = value
    elif kind == "c":
        address = value.split()[2].split("/")[0]
        if media is None:
            session.connection = address
        else:
            media.connection = address
    elif kind == "m":
        mkind, port, proto, *formats = value.split()
        media_port = int(port.split("/")[0])
        if not 0 <= media_port < 65536:
            raise ValueError(media_port)
        media = Media(mkind, media_port, proto, formats)
        session.media.append(media)
    elif kind == "a":
        _attribute(session, media, value)
    return media


def _attribute(session: Session, media: Media | None, value: str) -> None:
    name, _, rest = value.partition(":")
    if name in _DIRECTIONS:
        if media is None:
            session.direction = name
        else:
            media.direction = name
        return
    if media is None:
        return
    if name == "rtpmap":
        pt, encoding = rest.split(None, 1)
        enc_name, rate, *_ = (*encoding.split("/"), "8000")
        media.rtpmap[int(pt)] = (enc_name, int(rate))
    elif name == "fmtp":
        pt, params = rest.split(None, 1)
        media.fmtp[int(pt)] = params
    elif name == "ptime":
        media.ptime = int(float(rest))
    elif name == "crypto":
        media.crypto.append(rest)
    else:
        media.other.append(value)


@dataclass(frozen=True, slots=True)
class MediaPlan:
    """What was agreed for the audio stream, from our side."""

    remote_host: str
    remote_port: int
    payload_type: int
    codec: str
    telephone_event: int | None
    direction: str
    """Our direction: ``sendrecv``, ``sendonly`` (we hold), ``recvonly`` (held), ``inactive``."""
    srtp_suite: str = ""
    """The SRTP crypto suite agreed (RFC 4568); "": plain RTP."""
    srtp_send_key: str = field(default="", repr=False)
    """Our master key and salt (base64), protecting what we send."""
    srtp_recv_key: str = field(default="", repr=False)
    """The peer's, unprotecting what we receive."""

    @property
    def sends(self) -> bool:
        return self.direction in ("sendrecv", "sendonly") and self.remote_port > 0

    @property
    def on_hold(self) -> bool:
        return self.direction != "sendrecv"


@dataclass(frozen=True, slots=True)
class SrtpPolicy:
    """Whether SDP offers and answers of a call carry SRTP keys (docs/sip.md, SRTP)."""

    mode: str = "off"
    """``off``: plain RTP, crypto offered by a peer declined; ``offer``: crypto offered
    with RTP/AVP (best effort) and taken when offered; ``require``: RTP/SAVP, an offer
    without usable crypto refused (488)."""
    tls: bool = False
    """The hop the SDP travels is TLS (SDES keys are written in the SDP in clear)."""
    keep: MediaPlan | None = None
    """The call's plan so far: a new offer or answer keeps our key for its suite."""

    @property
    def active(self) -> bool:
        return self.mode != "off" and self.tls


PLAIN = SrtpPolicy()


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _our_key(srtp: SrtpPolicy, suite: str) -> bytes:
    kept = srtp.keep
    if kept is not None and kept.srtp_suite == suite and kept.srtp_send_key:
        return base64.b64decode(kept.srtp_send_key)
    return new_key()


def secure_offer(offer: Session, srtp: SrtpPolicy) -> None:
    """Our ``a=crypto`` lines into our offer's audio stream, as ``srtp`` says (a fresh
    key per suite, or the call's key of its agreed suite); an offer that has them
    already, a policy that is off or a hop that is not TLS: left as it is."""
    if not srtp.active or not offer.media or offer.media[0].crypto:
        return
    media = offer.media[0]
    media.proto = "RTP/SAVP" if srtp.mode == "require" else "RTP/AVP"
    kept = srtp.keep.srtp_suite if srtp.keep is not None else ""
    suites = [kept] if kept else list(SUITES)
    media.crypto = [
        format_crypto(Crypto(tag, suite, _our_key(srtp, suite)))
        for tag, suite in enumerate(suites, start=1)
    ]


def _answer_srtp(offered: Media, srtp: SrtpPolicy) -> tuple[Crypto, Crypto] | None:
    """The crypto line we answer with (our key, the offer's tag and suite) and the
    offer's line it answers, or None for plain RTP. Raises NotAcceptableError when SRTP
    is required, by the offer (RTP/SAVP) or by us, and cannot be had."""
    savp = "SAVP" in offered.proto
    if srtp.mode == "off" and savp:
        raise NotAcceptableError("the offer requires SRTP (RTP/SAVP) and srtp is off here")
    if not srtp.tls and (savp or srtp.mode == "require"):
        raise NotAcceptableError("SRTP keys (SDES) are taken only over TLS; this was not")
    if not srtp.active:
        return None
    theirs, why = choose_crypto(offered.crypto)
    if theirs is None:
        if savp or srtp.mode == "require":
            raise NotAcceptableError(f"SRTP required and no usable crypto line: {why}"[:200])
        return None
    return Crypto(theirs.tag, theirs.suite, _our_key(srtp, theirs.suite)), theirs


def _accepted_srtp(ours: Media, answer: Media) -> tuple[str, str, str]:
    """(suite, our key, their key) of the answer to our offer's crypto; ("", "", "")
    for plain RTP. Raises NotAcceptableError for an answer we cannot take."""
    if not ours.crypto:
        return "", "", ""
    if not answer.crypto:
        if "SAVP" in ours.proto:
            raise NotAcceptableError("the answer has no crypto line for our RTP/SAVP offer")
        return "", "", ""
    theirs, why = choose_crypto(answer.crypto[:1])
    if theirs is None:
        raise NotAcceptableError(f"the answer's crypto line: {why}"[:200])
    for value in ours.crypto:
        mine, _ = choose_crypto([value])
        if mine is not None and (mine.tag, mine.suite) == (theirs.tag, theirs.suite):
            return theirs.suite, _b64(mine.key), _b64(theirs.key)
    raise NotAcceptableError(f"the answer's crypto tag {theirs.tag} {theirs.suite} was not offered")


def _audio_media(host: str, port: int, codecs: tuple[str, ...], direction: str) -> Media:
    pts = [STATIC_CODECS[c] for c in codecs if c in STATIC_CODECS]
    if not pts:
        raise SipSyntaxError(f"no supported codec among {codecs} (expected PCMU, PCMA)")
    media = Media("audio", port, "RTP/AVP", [*map(str, pts), str(TELEPHONE_EVENT_PT)])
    for c in codecs:
        if c in STATIC_CODECS:
            media.rtpmap[STATIC_CODECS[c]] = (c, 8000)
    media.rtpmap[TELEPHONE_EVENT_PT] = ("telephone-event", 8000)
    media.fmtp[TELEPHONE_EVENT_PT] = "0-16"
    media.ptime = 20
    media.direction = direction
    return media


def make_offer(
    host: str,
    port: int,
    codecs: tuple[str, ...],
    *,
    session_id: str,
    version: int,
    direction: str = "sendrecv",
) -> Session:
    """Our offer: every configured codec we know, in order, and telephone-event."""
    return Session(
        session_id=session_id,
        version=version,
        address=host,
        connection=host,
        media=[_audio_media(host, port, codecs, direction)],
    )


def _remote_direction(session: Session, media: Media) -> str:
    return media.direction or session.direction or "sendrecv"


def _remote_host(session: Session, media: Media) -> str:
    return media.connection or session.connection


def answer_offer(
    offer: Session,
    host: str,
    port: int,
    codecs: tuple[str, ...],
    *,
    session_id: str,
    version: int,
    hold: bool = False,
    srtp: SrtpPolicy = PLAIN,
) -> tuple[Session, MediaPlan]:
    """Our answer to ``offer`` and the agreed plan. Raises :class:`NotAcceptableError` if no
    audio stream has a codec we take, or SRTP is required (by either side) and cannot be
    had (:class:`SrtpPolicy`)."""
    answer = Session(session_id=session_id, version=version, address=host, connection=host)
    plan: MediaPlan | None = None
    for m in offer.media:
        chosen, event_pt = _formats(m, codecs) if plan is None else (None, None)
        if chosen is None:
            answer.media.append(Media(m.kind, 0, m.proto, m.formats[:1] or ["0"]))
            continue
        remote_host = _remote_host(offer, m)
        ours = _our_direction(_remote_direction(offer, m), remote_host, hold=hold)
        pt, name = chosen
        keys = _answer_srtp(m, srtp)  # RTP/SAVP is answered only with crypto
        media = Media("audio", port, m.proto, [str(pt)], ptime=20, direction=ours)
        media.rtpmap[pt] = (name, 8000)
        if keys is not None:
            media.crypto.append(format_crypto(keys[0]))
        if event_pt is not None:
            media.formats.append(str(event_pt))
            media.rtpmap[event_pt] = ("telephone-event", 8000)
            media.fmtp[event_pt] = m.fmtp.get(event_pt, "0-16")
        answer.media.append(media)
        plan = MediaPlan(remote_host, m.port, pt, name, event_pt, ours)
        if keys is not None:
            mine, theirs = keys
            plan = _with_srtp(plan, mine.suite, _b64(mine.key), _b64(theirs.key))
    if plan is None:
        raise NotAcceptableError(f"no audio stream with a codec among {codecs} in the offer")
    return answer, plan


def _formats(m: Media, codecs: tuple[str, ...]) -> tuple[tuple[int, str] | None, int | None]:
    """(payload type, name) of the first codec of ``codecs`` an audio stream offers, and
    its telephone-event payload type; (None, None) for a stream we cannot take."""
    chosen: tuple[int, str] | None = None
    event_pt: int | None = None
    if not (m.kind == "audio" and m.port > 0 and m.proto.startswith("RTP/")):
        return None, None
    for fmt in m.formats:
        codec = m.codec(int(fmt)) if is_number(fmt, 3) else None
        if codec is None:
            continue
        name, rate = codec
        if chosen is None and name in codecs and rate == 8000:
            chosen = (int(fmt), name)
        elif name == "TELEPHONE-EVENT" and rate == 8000 and event_pt is None:
            event_pt = int(fmt)
    return chosen, event_pt


def _our_direction(theirs: str, remote_host: str, *, hold: bool) -> str:
    """Our direction answering theirs; never sending to a peer on hold (RFC 2543's
    0.0.0.0), nor receiving while we hold the call."""
    ours = _ANSWER_DIRECTION.get(theirs, "sendrecv")
    if remote_host == "0.0.0.0":  # RFC 2543 hold
        ours = "inactive" if ours in ("inactive", "sendonly") else "recvonly"
    if hold and ours == "sendrecv":
        ours = "sendonly"
    elif hold and ours == "recvonly":
        ours = "inactive"
    return ours


def accept_answer(offer: Session, answer: Session) -> MediaPlan:
    """The plan from the peer's answer to our offer. Raises NotAcceptableError if it
    declined our audio or chose a codec we did not offer."""
    ours = offer.media[0]
    for m in answer.media:
        if m.kind != "audio" or m.port == 0:
            continue
        event_pt: int | None = None
        chosen: tuple[int, str] | None = None
        for fmt in m.formats:
            if not is_number(fmt, 3):
                continue
            codec = m.codec(int(fmt))
            if codec is None:
                continue
            if codec[0] == "TELEPHONE-EVENT":
                event_pt = int(fmt)
            elif chosen is None and fmt in ours.formats:
                chosen = (int(fmt), codec[0])
        if chosen is None:
            break
        suite, send_key, recv_key = _accepted_srtp(ours, m)
        theirs = _remote_direction(answer, m)
        direction = _ANSWER_DIRECTION.get(theirs, "sendrecv")
        plan = MediaPlan(_remote_host(answer, m), m.port, chosen[0], chosen[1], event_pt, direction)
        return _with_srtp(plan, suite, send_key, recv_key)
    raise NotAcceptableError("the answer accepts none of the audio codecs we offered")


def _with_srtp(plan: MediaPlan, suite: str, send_key: str, recv_key: str) -> MediaPlan:
    return dataclasses.replace(plan, srtp_suite=suite, srtp_send_key=send_key,
                               srtp_recv_key=recv_key)  # fmt: skip


def is_ip(host: str) -> bool:
    """Whether ``host`` is an IP address (not a name: a name would be looked up, blocking,
    on every packet sent to it)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
