"""G.711 (mu-law PCMU, A-law PCMA) to and from 16-bit linear, by table.

Linear audio is ``bytes`` of signed 16-bit little-endian samples at 8 kHz (the WAV
layout), 160 samples (320 bytes) per 20 ms frame. Decoding is a 256-entry table per
law; encoding a 65536-entry table indexed by the sample's unsigned 16-bit value, both
built once at import; PCMU <-> PCMA is ``bytes.translate`` with a 256-byte table.
The conversions are those of the ITU reference (Sun's g711.c).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence

PCMU = 0
PCMA = 8
RATE = 8000
FRAME_SAMPLES = 160
"""20 ms at 8 kHz."""
FRAME_BYTES = 2 * FRAME_SAMPLES
"""One frame of 16-bit linear samples."""
SILENCE_CODE = {PCMU: 0xFF, PCMA: 0xD5}
_BIAS = 0x84
_ULAW_CLIP = 8159
_SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_SEG_AEND = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
_BIG_ENDIAN = sys.byteorder == "big"


def _segment(value: int, ends: Sequence[int]) -> int:
    for seg, end in enumerate(ends):
        if value <= end:
            return seg
    return len(ends)


def _ulaw_to_linear_one(code: int) -> int:
    u = ~code & 0xFF
    t = ((u & 0x0F) << 3) + _BIAS
    t <<= (u & 0x70) >> 4
    return _BIAS - t if u & 0x80 else t - _BIAS


def _alaw_to_linear_one(code: int) -> int:
    a = code ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


def _linear_to_ulaw_one(sample: int) -> int:
    pcm = sample >> 2
    mask = 0xFF
    if pcm < 0:
        pcm, mask = -pcm, 0x7F
    pcm = min(pcm, _ULAW_CLIP) + (_BIAS >> 2)
    seg = _segment(pcm, _SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask


def _linear_to_alaw_one(sample: int) -> int:
    pcm = sample >> 3
    mask = 0xD5
    if pcm < 0:
        pcm, mask = -pcm - 1, 0x55
    seg = _segment(pcm, _SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    shift = 1 if seg < 2 else seg
    return ((seg << 4) | ((pcm >> shift) & 0x0F)) ^ mask


def _signed(index: int) -> int:
    return index - 0x10000 if index & 0x8000 else index


ULAW_DECODE: tuple[int, ...] = tuple(_ulaw_to_linear_one(c) for c in range(256))
ALAW_DECODE: tuple[int, ...] = tuple(_alaw_to_linear_one(c) for c in range(256))
ULAW_ENCODE = bytes(_linear_to_ulaw_one(_signed(i)) for i in range(0x10000))
"""mu-law code of each 16-bit sample, indexed by ``sample & 0xFFFF``."""
ALAW_ENCODE = bytes(_linear_to_alaw_one(_signed(i)) for i in range(0x10000))
ULAW_TO_ALAW = bytes(ALAW_ENCODE[v & 0xFFFF] for v in ULAW_DECODE)
ALAW_TO_ULAW = bytes(ULAW_ENCODE[v & 0xFFFF] for v in ALAW_DECODE)

_DECODE = {PCMU: ULAW_DECODE, PCMA: ALAW_DECODE}
_ENCODE = {PCMU: ULAW_ENCODE, PCMA: ALAW_ENCODE}
_DECODE_BYTES = {
    law: (bytes(v & 0xFF for v in table), bytes((v >> 8) & 0xFF for v in table))
    for law, table in _DECODE.items()
}
"""Per law, the low and the high byte of each code's sample (for ``bytes.translate``)."""
_TRANSLATE = {(PCMU, PCMA): ULAW_TO_ALAW, (PCMA, PCMU): ALAW_TO_ULAW}
_TO_ULAW = {PCMU: bytes(ULAW_ENCODE[v & 0xFFFF] for v in ULAW_DECODE), PCMA: ALAW_TO_ULAW}
"""Per law, the mu-law code of each code's sample (mu-law's negative zero 0x7F: 0xFF)."""


def check_payload_type(payload_type: int) -> int:
    if payload_type not in _DECODE:
        raise ValueError(f"payload type {payload_type} is not G.711 (PCMU 0, PCMA 8)")
    return payload_type


def samples(linear: bytes) -> array[int]:
    """The signed samples of little-endian 16-bit audio (an odd last byte is dropped)."""
    out = array("h")
    out.frombytes(linear[: len(linear) & ~1])
    if _BIG_ENDIAN:
        out.byteswap()
    return out


def to_bytes(values: array[int]) -> bytes:
    """Signed 16-bit samples as little-endian bytes."""
    if _BIG_ENDIAN:
        values = array("h", values)
        values.byteswap()
    return values.tobytes()


def decode(payload: bytes, payload_type: int) -> bytes:
    """G.711 codes to 16-bit little-endian linear (two translates and an interleave)."""
    low, high = _DECODE_BYTES[payload_type]
    out = bytearray(2 * len(payload))
    out[0::2] = payload.translate(low)
    out[1::2] = payload.translate(high)
    return bytes(out)


def decode_lanes(payload: bytes, payload_type: int) -> tuple[bytes, bytes]:
    """The low bytes and the high bytes of the codes' 16-bit samples: :func:`decode`
    before its interleave (a stereo writer interleaves four lanes in one go)."""
    low, high = _DECODE_BYTES[payload_type]
    return payload.translate(low), payload.translate(high)


def to_ulaw(payload: bytes, payload_type: int) -> bytes:
    """G.711 codes as mu-law codes, exactly ``encode(decode(payload, payload_type), PCMU)``."""
    return payload.translate(_TO_ULAW[payload_type])


def encode(linear: bytes, payload_type: int) -> bytes:
    """16-bit little-endian linear to G.711 codes."""
    table = _ENCODE[payload_type]
    if _BIG_ENDIAN:
        return bytes([table[v & 0xFFFF] for v in samples(linear)])
    return bytes(map(table.__getitem__, memoryview(linear[: len(linear) & ~1]).cast("H")))


def encode_samples(values: Iterable[int], payload_type: int) -> bytes:
    """Samples of any size (a mix: clipped to 16 bits here) to G.711 codes."""
    table = _ENCODE[payload_type]
    return bytes(
        [table[(-32768 if v < -32768 else 32767 if v > 32767 else v) & 0xFFFF] for v in values]
    )


def translate(payload: bytes, from_type: int, to_type: int) -> bytes:
    """PCMU <-> PCMA code by code (the same payload when the laws agree)."""
    if from_type == to_type:
        return payload
    return payload.translate(_TRANSLATE[from_type, to_type])


def ulaw_to_linear(payload: bytes) -> bytes:
    return decode(payload, PCMU)


def alaw_to_linear(payload: bytes) -> bytes:
    return decode(payload, PCMA)


def linear_to_ulaw(linear: bytes) -> bytes:
    return encode(linear, PCMU)


def linear_to_alaw(linear: bytes) -> bytes:
    return encode(linear, PCMA)


def silence(payload_type: int, samples_count: int = FRAME_SAMPLES) -> bytes:
    return bytes([SILENCE_CODE[payload_type]]) * samples_count


def clip(value: int) -> int:
    return -32768 if value < -32768 else 32767 if value > 32767 else value


def to_bytes_list(values: Sequence[int]) -> bytes:
    """Samples (clipped to 16 bits) as little-endian bytes: for tests and generators."""
    return to_bytes(array("h", [clip(v) for v in values]))
