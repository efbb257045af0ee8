"""A real Mosquitto for the integration tests, on 127.0.0.1 at a free port.

The broker gets a generated config with the password and ACL files and the access
settings (``use_username_as_clientid``...) of the ``mosquitto.conf`` that
``cti broker-config`` writes (engine, agents 1001 and 1002, supervisor ``sup1``), and
persistence in the test's directory, so a restart keeps sessions and retained state as
a deployed broker does. It is stopped after the test. Without the ``mosquitto``
program the test fails, naming how to install it; it never skips.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from cti.app.commands.broker_config import (
    BrokerUser,
    mosquitto_conf_text,
    plan_users,
    write_broker_files,
)
from cti.bus.broker import BrokerAddress, broker_url
from cti.bus.mqtt import MqttBus
from cti.config import Config, load_config
from cti.engine.service import EngineService
from cti.models import CallDetailRecord
from cti.store.database import Store
from telephony_adapters.sim import SimTrunk
from tests.harness import engine_center, until_blocking

#: Safety net only: each step takes milliseconds on 127.0.0.1.
WAIT_S = 30.0
AGENTS = ("1001", "1002")
SUPERVISORS = ("sup1",)
#: Only a safety net: Mosquitto listens within milliseconds.
START_TIMEOUT_S = 10.0


def mosquitto_program() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
    )
    if found is None:
        pytest.fail(
            "mosquitto is not installed: the MQTT integration tests need the real broker. "
            "Install it with deploy/system-deps.sh (as root; `make test` runs it) or "
            "`sudo apt-get install mosquitto`.",
            pytrace=False,
        )
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Mosquitto:
    """One Mosquitto process; :meth:`restart` keeps the port and the persistence file."""

    def __init__(self, program: str, directory: Path, users: list[BrokerUser]) -> None:
        self.program = program
        self.directory = directory
        self.users = {u.name: u for u in users}
        self.port = free_port()
        self.log = directory / "mosquitto.log"
        self.conf = directory / "mosquitto.conf"
        write_broker_files(directory, users, iterations=101, source="the test fixture")
        (directory / "data").mkdir(exist_ok=True)
        self.configure(persistence=True)
        self.process: subprocess.Popen[bytes] | None = None

    def configure(self, *, persistence: bool) -> None:
        """Write the config (used from the next :meth:`start`). Without persistence a
        restart forgets sessions, subscriptions and retained messages."""
        directory = self.directory
        self.conf.write_text(
            # The configuration `cti broker-config` writes (use_username_as_clientid...)
            mosquitto_conf_text(directory / "passwd", directory / "acl", [("127.0.0.1", self.port)])
            + "\n".join(
                [
                    f"persistence {'true' if persistence else 'false'}",
                    f"persistence_location {directory / 'data'}/",
                    f"log_dest file {self.log}",
                    "log_type all",
                    # As root, Mosquitto would drop to the mosquitto user, who cannot
                    # read the test's private directory.
                    *(["user root"] if os.geteuid() == 0 else []),
                    "",
                ]
            )
        )

    def url(self, user: str) -> str:
        """``mqtt://user:password@127.0.0.1:port`` for one of the fixture's users."""
        return broker_url(
            BrokerAddress("127.0.0.1", self.port, username=user, password=self.users[user].password)
        )

    def start(self) -> None:
        process = self.process = subprocess.Popen(
            [self.program, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

        def listening() -> bool:
            if process.poll() is not None:
                err = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"mosquitto exited at start ({process.returncode}): {err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        try:
            until_blocking(
                listening, START_TIMEOUT_S, every_s=0.02, what=f"mosquitto on port {self.port}"
            )
        except AssertionError:
            self.stop()
            raise

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)  # saves its persistence file and exits
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        try:
            return self.log.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return ""


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    program = mosquitto_program()
    users = plan_users("cti-engine", AGENTS, SUPERVISORS, {})
    (tmp_path / "broker").mkdir()
    broker = Mosquitto(program, tmp_path / "broker", users)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


CENTER = """
[engine]
status_interval_s = 0.5

[[queues]]
name = "general"
wrap_up_s = 60.0

[[agents]]
id = "1001"
queues = { general = 0 }

[[agents]]
id = "1002"
queues = { general = 0 }
"""


def center(tmp_path: Path) -> tuple[Path, Config]:
    """A center of one queue and agents 1001 and 1002, as a file and as loaded."""
    path = tmp_path / "center.toml"
    path.write_text(CENTER)
    return path, load_config(path)


def mqtt_bus(mosquitto: Mosquitto, user: str, **kwargs: Any) -> MqttBus:
    return MqttBus(
        mosquitto.url(user),
        client_id=f"test-{user}",
        reconnect_min_s=0.05,
        reconnect_max_s=0.5,
        **kwargs,
    )


class Engine:
    """The engine in the test's process, on its own MQTT connection."""

    def __init__(self, service: EngineService, trunk: SimTrunk, store: Store, bus: MqttBus):
        self.service, self.trunk, self.store, self.bus = service, trunk, store, bus
        self.records: list[CallDetailRecord] = []
        service.record_listeners.append(self.records.append)


@pytest.fixture
async def engine(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[Engine]:
    _, config = center(tmp_path)
    trunk = SimTrunk("sim")
    async with (
        mqtt_bus(mosquitto, "cti-engine", persistent=True, answer_refusals=True) as bus,
        engine_center(
            tmp_path / "cti.db", config=config, agents=config.agents, lines=[trunk], bus=bus
        ) as c,
    ):
        async with asyncio.timeout(WAIT_S):
            await bus.wait_online()
        yield Engine(c.service, trunk, c.store, bus)
