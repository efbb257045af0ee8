"""What the media tests read out of a recording."""

from __future__ import annotations

from array import array

from telephony_adapters.media import g711
from telephony_adapters.media.player import FORMAT_MULAW, read_wav_layout


def channels(data: bytes) -> tuple[array[int], array[int]]:
    """Left and right samples of a stereo WAV (16-bit or mu-law), sizes checked."""
    layout = read_wav_layout(data, "rec.wav")
    body = data[layout.data_offset : layout.data_offset + layout.data_size]
    assert len(body) == layout.data_size
    if layout.format_tag == FORMAT_MULAW:
        body = g711.ulaw_to_linear(body)
    samples = g711.samples(body)
    return samples[0::2], samples[1::2]
