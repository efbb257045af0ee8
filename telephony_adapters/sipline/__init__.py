"""A SIP gateway line over UDP (RFC 3261 and friends), our own small stack.

Sans-I/O layers, each pure and synchronous, taking ``now`` where time matters:

* :mod:`.message`: parse and serialise SIP messages; URIs, addresses, Via.
* :mod:`.transaction`: client and server transactions (INVITE and non-INVITE) with the
  RFC 3261 timers, on an injected clock.
* :mod:`.dialog`: dialog state (tags, CSeq, route set, remote target).
* :mod:`.digest`: digest authentication (MD5, SHA-256; qop=auth).
* :mod:`.sdp`: SDP offer/answer for PCMU, PCMA and telephone-event.
* :mod:`.rtp`: RTP packets, a silence source, RFC 4733 DTMF events.
* :mod:`.useragent`: the user agent: turns datagrams and requests into datagrams to
  send and line events; its parts: calls in (:mod:`.uas`) and out (:mod:`.uac`),
  requests inside a call (:mod:`.in_dialog`: hold, re-INVITE, REFER, BYE),
  :mod:`.registration`, :mod:`.keepalive`, :mod:`.saved_calls`.

:mod:`.line` is the thin asyncio shell: :class:`~.line.SipLine`, a
:class:`~telephony_adapters.base.TelephonyAdapter`, set up by
:class:`~.params.SipLineParams`. (The package is not called ``sip``: that name belongs
to the PyQt binding tool.)
"""
