"""The media relay: RTP between the legs of a call, sans-I/O core and a thin shell.

* :mod:`.g711`: mu-law and A-law to and from 16-bit linear, PCMU <-> PCMA tables.
* :mod:`.stream`: one leg's outgoing stream (own SSRC, continuous sequence and
  timestamp across source changes) and incoming statistics (loss, jitter).
* :mod:`.bridge`: :class:`~.bridge.MediaCore`, the legs and what each one hears
  (another leg, a player, a conference mix, silence), DTMF, recording taps, time-outs.
* :mod:`.relay`: :class:`~.relay.MediaRelay`, the asyncio shell (UDP ports, 20 ms tick).

See docs/voice.md.
"""
