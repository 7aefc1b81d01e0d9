"""Processes for the gateway's integration tests: a simulated PBX and a gateway, each its own process (as in
production), and a reader of what the gateway published."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from callstream_common.codec import Codec, Message
from callstream_common.partitioner import partition_for
from callstream_common.settings import ServiceSettings
from callstream_common.topics import TopicName, topic_name
from conftest import ROOT
from helpers import until

SIM_USER, SIM_PASSWORD = "asterisk", "gw-test-Secret-42"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimProcess:
    def __init__(self, log_dir: Path, *, agents: int = 10, time_scale: float = 1.0, entity_id: str | None = None,
                 port: int | None = None) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"sim-{self.port}.log"
        args = [sys.executable, "-m", "callstream_pbx_sim", "--port", str(self.port), "--user", SIM_USER,
                "--password", SIM_PASSWORD, "--agents", str(agents), "--time-scale", str(time_scale),
                "--inbound-rate", "0", "--log-level", "WARNING"]
        if entity_id:
            args += ["--entity-id", entity_id]
        self._args = args
        self.process: subprocess.Popen[bytes] | None = None
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> SimProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self._args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.session = aiohttp.ClientSession(
            headers={"Authorization": aiohttp.encode_basic_auth(SIM_USER, SIM_PASSWORD)})
        await until(self._answers, timeout=20, what=f"simulator on {self.port} (log {self.log_path})")
        return self

    async def _answers(self) -> bool:
        try:
            await self.ari("GET", "/asterisk/ping")
            return True
        except (aiohttp.ClientError, OSError):
            return False

    async def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        assert self.session is not None
        async with self.session.request(method, self.base + path, json=body, params=params or None) as response:
            if response.status >= 400:
                raise AssertionError(f"{method} {path}: {response.status} {await response.text()}")
            return await response.json() if response.content_type == "application/json" else None

    async def ari(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        return await self.request(method, "/ari" + path, body, **params)

    async def ctl(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        return await self.request(method, "/_sim" + path, body, **params)

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


class GatewayProcess:
    def __init__(self, settings: ServiceSettings, sim: SimProcess, pbx_id: str, work: Path, **extra: str) -> None:
        self.pbx_id = pbx_id
        self.http_port = free_port()
        self.log_path = work / f"gateway-{pbx_id}.log"
        self.args = [
            sys.executable, "-m", "callstream_ari_gateway", "--pbx-id", pbx_id, "--tenant", settings.tenant,
            "--topic-prefix", settings.topic_prefix, "--kafka-bootstrap", settings.kafka_bootstrap,
            "--ari-url", f"{sim.base}/ari", "--ari-user", SIM_USER, "--ari-password", SIM_PASSWORD,
            "--spool-dir", str(work / "spool"), "--http-port", str(self.http_port), "--log-level", "INFO",
            "--reconnect-max-s", "1", *[item for key, value in extra.items() for item in (f"--{key}", value)],
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> GatewayProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    async def ready(self, timeout: float = 30) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"gateway exited {self.process.returncode}: {self.log()[-3000:]}")
            try:
                async with aiohttp.ClientSession() as session, \
                        session.get(f"http://127.0.0.1:{self.http_port}/ready") as response:
                    body: dict[str, Any] = await response.json()
                    return body if body.get("ready") else None
            except (aiohttp.ClientError, OSError):
                return None

        return await until(probe, timeout=timeout, what=f"gateway ready (log {self.log_path})")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 60) -> int:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


class TopicReader:
    """Everything of one PBX on one catalogue topic (its partition, its key), decoded, in order."""

    def __init__(self, settings: ServiceSettings, topic: TopicName, pbx_id: str, *, dlq: bool = False) -> None:
        name = topic_name(topic, settings.topic_prefix)
        self.topic = topic
        self.physical = f"{name}.dlq" if dlq else name
        self.tp = TopicPartition(self.physical, partition_for(pbx_id, settings.pbx_partitions))
        self.key = pbx_id.encode()
        self.bootstrap = settings.kafka_bootstrap
        self.records: list[Any] = []
        self.messages: list[Message] = []
        self._codec = Codec()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.decode = not dlq

    async def start(self) -> TopicReader:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                          auto_offset_reset="earliest")
        await self._consumer.start()
        self._consumer.assign([self.tp])
        await self._consumer.seek_to_beginning(self.tp)
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(self.tp, timeout_ms=200)
            for record in batch.get(self.tp, []):
                if record.key != self.key:
                    continue
                self.records.append(record)
                if self.decode:
                    self.messages.append(self._codec.decode(self.topic, record.headers, record.value))

    def of_type(self, type_name: str) -> list[Message]:
        return [m for m in self.messages if m.type == type_name]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
