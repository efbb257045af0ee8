"""Running Kamailio (Debian package kamailio) as a stateful, record-routing SIP proxy on
127.0.0.1, in front of the line, for the tests.

A missing ``kamailio`` fails the test (``deploy/system-deps.sh`` installs it): the line
is proven behind a real proxy, not skipped. The test writes a minimal configuration
(:func:`proxy_config`): requests from the line go where their Request-URI says, every
other new request goes to the line; INVITEs are record-routed; in-dialog requests must
carry the proxy's Route (loose routing) or get 404. Every request the proxy handles is
logged as a ``cti-test:`` line, which the tests read to see the path a message took.

With :class:`ProxyTls` (Debian package kamailio-tls-modules) the proxy also listens for
TLS and reaches the line over TLS only: the line's certificate is checked against the
test CA (the line's as a client too), and each request's ``over`` says the transport it
came by (``$pr``) and each ``sent`` line the one it left by.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.telephony_adapters.sipline.certs import TestPki

#: Where Debian (bookworm, amd64 and arm64) keeps Kamailio's modules.
MODULE_DIRS = (
    "/usr/lib/x86_64-linux-gnu/kamailio/modules",
    "/usr/lib/aarch64-linux-gnu/kamailio/modules",
    "/usr/lib/kamailio/modules",
)


def kamailio_binary() -> str:
    found = shutil.which("kamailio") or (
        "/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None
    )
    if found is None:
        pytest.fail(
            "kamailio is not installed: run deploy/system-deps.sh as root "
            "(Debian package kamailio) or make test"
        )
    return found


def module_dir() -> str:
    for candidate in MODULE_DIRS:
        if Path(candidate, "tm.so").exists():
            return candidate
    pytest.fail(f"Kamailio's modules (tm.so) are not in any of {', '.join(MODULE_DIRS)}")


def free_tcp_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ProxyTls:
    """The proxy's TLS side: its certificate and CA, the port the line listens on for
    TLS (every request to the line goes there), and the proxy's own TLS port."""

    pki: TestPki
    line_port: int
    port: int = 0

    def config(self) -> str:
        """Kamailio's tls.cfg: its certificate as a server, the peer's verified against
        the test CA both ways (TLSv1.2 and later)."""
        files = f"private_key = {self.pki.key}\ncertificate = {self.pki.cert}\n"
        ca = f"ca_list = {self.pki.ca}\n"
        return (
            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = yes\n"
            f"require_certificate = yes\n{files}{ca}\n"
            f"[client:default]\nmethod = TLSv1.2+\nverify_certificate = yes\n"
            f"require_certificate = yes\n{files}{ca}"
        )


def need_tls_module() -> None:
    if not Path(module_dir(), "tls.so").exists():
        pytest.fail(
            "Kamailio's TLS module is not installed: run deploy/system-deps.sh as root "
            "(Debian package kamailio-tls-modules)"
        )


def proxy_config(
    port: int,
    line_port: int,
    modules: str,
    tls: ProxyTls | None = None,
    tls_cfg: str = "",
    *,
    debug: int = 2,
) -> str:
    """A stateful proxy on 127.0.0.1:``port`` for a line on 127.0.0.1:``line_port``
    (over TLS at ``tls.line_port`` when ``tls`` is given: see the module docstring)."""
    if tls is None:
        sockets = "disable_tcp=yes\n" + f"listen=udp:127.0.0.1:{port}\n"
        from_line = f'$si == "127.0.0.1" && $sp == {line_port}'
        to_line = f'$rd = "127.0.0.1";\n        $rp = {line_port};'
        tls_module = ""
    else:
        sockets = (
            "enable_tls=yes\ntcp_children=1\n"
            f"listen=udp:127.0.0.1:{port}\nlisten=tcp:127.0.0.1:{port}\n"
            f"listen=tls:127.0.0.1:{tls.port}\n"
        )
        from_line = '$pr == "tls"'  # the line reaches the proxy over TLS only
        to_line = f'$du = "sip:127.0.0.1:{tls.line_port};transport=tls";'
        tls_module = f'loadmodule "tls.so"\nmodparam("tls", "config", "{tls_cfg}")\n'
    return f"""#!KAMAILIO
debug={debug}
log_stderror=yes
children=1
auto_aliases=no
disable_sctp=yes
{sockets}mpath="{modules}"

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "xlog.so"
{tls_module}
request_route {{
    xlog("L_NOTICE", "cti-test: $rm $ru from $si:$sp over $pr\\n");
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("OPTIONS") && uri == myself && $rU == $null) {{
        sl_send_reply("200", "Proxy up");
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            xlog("L_NOTICE", "cti-test: loose-routed $rm from $si:$sp to $ru over $pr\\n");
            t_relay();
            exit;
        }}
        if (is_method("ACK")) {{
            if (t_check_trans()) {{
                t_relay();
            }}
            exit;
        }}
        xlog("L_NOTICE", "cti-test: no route for $rm from $si:$sp\\n");
        sl_send_reply("404", "Not here (no Route to this proxy)");
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    t_check_trans();
    loose_route();
    if (is_method("INVITE")) {{
        record_route();
    }}
    if (!({from_line})) {{
        {to_line}
    }}
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}

onsend_route {{
    xlog("L_NOTICE", "cti-test: sent $rm to $sndto(ip):$sndto(port) over $sndto(sproto)\\n");
}}
"""


class Kamailio:
    """One Kamailio process (it forks workers; stopping the main one stops them all)."""

    def __init__(
        self,
        workdir: Path,
        line_port: int,
        tls: ProxyTls | None = None,
        *,
        debug: int = 2,
        shm_mb: int = 16,
    ) -> None:
        """``debug``: Kamailio's log level (2 logs each request; 0 only warnings, for a
        benchmark); ``shm_mb``: its shared memory."""
        self.workdir = workdir
        self.line_port = line_port
        self.debug, self.shm_mb = debug, shm_mb
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        if tls is not None and not tls.port:
            tls = ProxyTls(tls.pki, tls.line_port, free_tcp_port())
        self.tls = tls
        self.process: asyncio.subprocess.Process | None = None
        self.log: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        binary = kamailio_binary()
        config = self.workdir / "kamailio.cfg"
        tls_cfg = self.workdir / "tls.cfg"
        if self.tls is not None:
            need_tls_module()
            tls_cfg.write_text(self.tls.config(), "utf-8")
        text = proxy_config(
            self.port, self.line_port, module_dir(), self.tls, str(tls_cfg), debug=self.debug
        )
        config.write_text(text, "utf-8")
        self.process = await asyncio.create_subprocess_exec(
            binary,
            "-f",
            str(config),
            "-DD",  # stay in the foreground (the workers are still forked)
            "-E",  # log to stderr
            "-m",
            str(self.shm_mb),
            "-M",
            "4",
            "-Y",
            str(self.workdir),
            "-P",
            str(self.workdir / "kamailio.pid"),
            "-w",
            str(self.workdir),
            cwd=self.workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, so that no worker is left
        )
        self._reader = asyncio.get_running_loop().create_task(self._read_log())
        await self._wait_until_up()

    async def _read_log(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.log.append(raw.decode("utf-8", "replace").rstrip())

    async def _wait_until_up(self, timeout_s: float = 10.0) -> None:
        """Ping the proxy with OPTIONS until it answers (bounded: a safety net only)."""
        loop = asyncio.get_running_loop()
        answered = loop.create_future()

        class _Ping(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
                if data.startswith(b"SIP/2.0 200") and not answered.done():
                    answered.set_result(None)

        transport, _ = await loop.create_datagram_endpoint(
            _Ping, local_addr=("127.0.0.1", 0), remote_addr=("127.0.0.1", self.port)
        )
        try:
            host, port = transport.get_extra_info("sockname")[:2]
            ping = (
                f"OPTIONS sip:127.0.0.1:{self.port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bKping;rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:test@{host}:{port}>;tag=ping\r\n"
                f"To: <sip:127.0.0.1:{self.port}>\r\n"
                "Call-ID: kamailio-ping\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            ).encode()
            async with asyncio.timeout(timeout_s):
                while not answered.done():
                    if self.process is not None and self.process.returncode is not None:
                        await asyncio.sleep(0)  # let the reader take the last lines
                        pytest.fail(self.explain(f"kamailio exited {self.process.returncode}"))
                    transport.sendto(ping)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(answered), 0.2)
        except TimeoutError:
            pytest.fail(self.explain(f"kamailio did not answer on 127.0.0.1:{self.port}"))
        finally:
            transport.close()

    def lines(self, marker: str = "cti-test:") -> list[str]:
        """The proxy's ``cti-test:`` log lines (the text after the marker)."""
        return [line.split(marker, 1)[1].strip() for line in self.log if marker in line]

    def explain(self, what: str) -> str:
        return what + ":\n" + "\n".join(self.log[-60:])

    async def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)  # the main process stops its workers
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)  # the group we started
                await process.wait()
        if self._reader is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 5)
