"""The web server of ``cti supervisor --web``: textual-serve, with sessions that end.

textual-serve starts one process per browser (through a shell, in the server's own
process group) and, when the browser goes, asks it to quit and waits for it without a
limit; on its own exit it leaves the processes as they are. Here each session is the
command itself (no shell) in a process group of its own; when its browser goes it is
asked to quit, then its group is sent SIGTERM, then SIGKILL, each after
:data:`QUIT_GRACE_S`; and the server ends every session left when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
from asyncio.subprocess import Process
from collections.abc import Callable
from functools import partial

from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

log = logging.getLogger(__name__)

#: The driver of every session (Textual imports it from ``TEXTUAL_DRIVER``).
SESSION_DRIVER = "agent_console.wallboard_web:SessionDriver"
#: How long a session has after each request to end (quit, SIGTERM) before the next.
QUIT_GRACE_S = 5.0


class BoardSession(AppService):
    """One browser's wallboard process, which never outlives :meth:`stop`."""

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width, height)
        environment["TEXTUAL_DRIVER"] = SESSION_DRIVER
        return environment

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Process:
        self._process = process = await asyncio.create_subprocess_exec(
            *shlex.split(self.command),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._build_environment(width=width, height=height),
            start_new_session=True,  # its own group: what it starts ends with it
        )
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    async def stop(self) -> None:
        """Ask the session to quit, then end its process group if it does not."""
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(Exception):  # the pipe may be gone already
                await asyncio.wait_for(self.send_meta({"type": "quit"}), QUIT_GRACE_S)
        for signum in (None, signal.SIGTERM, signal.SIGKILL):
            if signum is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signum)
            try:
                await asyncio.wait_for(process.wait(), QUIT_GRACE_S)
                break
            except TimeoutError:
                log.warning("board session %d did not end; sending %s", process.pid, signum)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if process.stdin is not None:
            process.stdin.close()


Centre = Callable[[], contextlib.AbstractAsyncContextManager[object]]
"""Opens the centre the sessions watch, for as long as the server runs."""


class BoardServer(Server):
    """textual-serve's server with :class:`BoardSession` sessions, all ended on exit.
    With ``centre``, the server runs it (a demo centre sharing its bus) from before the
    first session until after the last one."""

    def __init__(
        self, command: str, *, host: str, port: int, title: str, centre: Centre | None = None
    ) -> None:
        super().__init__(command, host=host, port=port, title=title)
        self.sessions: set[BoardSession] = set()
        self._centre = centre
        self._centre_task: asyncio.Task[None] | None = None
        self._centre_stop = asyncio.Event()

    async def on_startup(self, app: web.Application) -> None:
        if self._centre is not None:
            started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._centre_task = asyncio.create_task(
                self._run_centre(self._centre, started), name="board-centre"
            )
            await started  # the centre's error, if it cannot start, stops the server
        await super().on_startup(app)

    async def _run_centre(self, centre: Centre, started: asyncio.Future[None]) -> None:
        try:
            async with centre():
                started.set_result(None)
                await self._centre_stop.wait()
        except Exception as exc:
            if not started.done():
                started.set_exception(exc)
                return
            raise

    async def on_shutdown(self, app: web.Application) -> None:
        await asyncio.gather(*(session.stop() for session in list(self.sessions)))
        if self._centre_task is not None:
            self._centre_stop.set()
            await self._centre_task

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        session = BoardSession(
            self.command,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=partial(_close, websocket),
            download_manager=self.download_manager,
            debug=self.debug,
        )
        self.sessions.add(session)
        try:
            await websocket.prepare(request)
            await session.start(width, height)
            await self._process_messages(websocket, session)
        except Exception:
            log.exception("board session for %s", request.remote)
        finally:
            # shielded: a handler cancelled by the server's exit still ends its session
            await asyncio.shield(session.stop())
            self.sessions.discard(session)
            await websocket.close()
        return websocket


async def _close(websocket: web.WebSocketResponse) -> None:
    await websocket.close()
