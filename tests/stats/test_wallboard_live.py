"""The whole wallboard path over the real stack: a call event on the test's `calls` topic reaches the page.

The aggregator and the web server run as they are deployed, each its own process through
`python -m callstream_stats aggregate|web`; the board is open in Debian's headless Chromium (Playwright). A
`call.queued` must raise the page's "waiting" figure, its answer bring it back, with nothing in between faked:
Kafka -> aggregator -> Redis SET + PUBLISH -> web instance -> SSE -> page.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
import test_wallboard_browser
from playwright.async_api import Page, expect
from test_aggregator import produce, producer, stats_settings, stored  # noqa: F401 - fixtures used by name
from test_wallboard_browser import browser, page  # noqa: F401 - fixtures used by name
from wallboard_support import free_port

from callstream_common.kafka.producer import Producer
from callstream_common.messages.agents import AgentState, AgentStateChanged
from callstream_common.messages.calls import CallAnswered, CallQueued
from callstream_stats.settings import StatsSettings
from helpers import until

pytestmark = test_wallboard_browser.pytestmark  # skipped only where the browser tests are

ROOT = Path(__file__).resolve().parents[2]
# Expectations on the page wait at most this long: the path takes well under a second when the machine is idle;
# the margin is for a loaded CI box, not for the design.
SEEN_MS = 10_000


class Service:
    """One `python -m callstream_stats <command>` process, its output in a file shown when a test fails."""

    def __init__(self, command: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "callstream_stats", command, *args],
                                            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                            env={**os.environ, **env})

    def alive(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.log.stem} exited with {self.process.returncode}:\n{self.output()}")
        return True

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        # SIGTERM: the services' own shutdown (the aggregator publishes its last changes, the web side ends its
        # streams); a process that ignores it past the timeout is killed so the test never leaves one behind.
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def service_env(s: StatsSettings) -> dict[str, str]:
    """The test's stack, tenant and topics, passed as deployments do (CALLSTREAM_*): no secret on a command line."""
    return {
        "CALLSTREAM_TENANT": s.tenant, "CALLSTREAM_TOPIC_PREFIX": s.topic_prefix,
        "CALLSTREAM_KAFKA_BOOTSTRAP": s.kafka_bootstrap, "CALLSTREAM_PBX_PARTITIONS": str(s.pbx_partitions),
        "CALLSTREAM_TENANT_PARTITIONS": str(s.tenant_partitions), "CALLSTREAM_PG_DSN": s.pg_dsn.get_secret_value(),
        "CALLSTREAM_REDIS_URL": s.redis_url.get_secret_value(), "CALLSTREAM_INSTANCE": f"{s.tenant}-live",
        "CALLSTREAM_LOG_LEVEL": "INFO",
    }


@pytest.fixture
def services(stats_settings: StatsSettings, tmp_path: Path) -> Iterator[tuple[Service, Service, str]]:
    """The aggregator and a web instance of the test's tenant, started together (their start-ups overlap)."""
    env = service_env(stats_settings)
    port = free_port()
    aggregator = Service("aggregate", ["--publish-interval-s", "0.05", "--refresh-interval-s", "1"], env,
                         tmp_path / "stats-aggregate.log")
    web = Service("web", ["--port", str(port), "--heartbeat-s", "1", "--write-timeout-s", "5"], env,
                  tmp_path / "stats-web.log")
    try:
        yield aggregator, web, f"http://127.0.0.1:{port}"
    finally:
        web.stop()
        aggregator.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        yield session


async def test_a_call_event_moves_the_waiting_figure_on_the_page(
        stats_settings: StatsSettings, services: tuple[Service, Service, str], producer: Producer,
        redis_client: aioredis.Redis, http: aiohttp.ClientSession, page: Page) -> None:
    s = stats_settings
    aggregator, web, url = services

    async def web_ready() -> bool:
        web.alive()
        try:
            async with http.get(f"{url}/health") as response:
                return response.status == 200  # 503 until its board subscription is live
        except aiohttp.ClientError:
            return False  # not listening yet

    async def board_published() -> bool:
        # Nothing is published before the aggregator has replayed the topics (empty here), so the queue's
        # first snapshot says it is live and folding.
        aggregator.alive()
        return await stored(redis_client, s, "queue/q1") is not None

    await until(web_ready, timeout=20, what="the web instance's /health")
    await until(board_published, timeout=20, what="the aggregator's first snapshot of queue/q1")

    await page.goto(f"{url}/board/queue/q1")
    waiting = page.locator('[data-figure="now.waiting"]')
    offered = page.locator('[data-figure="periods.today.offered"]')
    await expect(waiting).to_have_text("0", timeout=SEEN_MS)
    await expect(offered).to_have_text("0")
    await expect(page.locator("#connection-lost")).to_be_hidden()

    # A caller enters the queue (a1 is available to take the call later).
    now = datetime.now(UTC)
    await produce(producer, s, [
        ("pbx1", AgentStateChanged(agent_id="a1", at=now, state=AgentState.AVAILABLE,
                                   previous_state=AgentState.LOGGED_OUT)),
        ("pbx1", CallQueued(call_id="live-1", at=now, queue_id="q1", channel_id="ch-live-1", waiting_since=now)),
    ])
    await expect(waiting).to_have_text("1", timeout=SEEN_MS)
    await expect(offered).to_have_text("0")  # a leg counts in the periods by its outcome (docs/metrics.md)

    # Answered: nobody waits any more, and the period counts the answer.
    answered = datetime.now(UTC)
    await produce(producer, s, [
        ("pbx1", CallAnswered(call_id="live-1", at=answered, queue_id="q1", agent_id="a1", bridge_id="b-live-1",
                              wait_s=(answered - now).total_seconds())),
        ("pbx1", AgentStateChanged(agent_id="a1", at=answered, state=AgentState.ON_CALL,
                                   previous_state=AgentState.AVAILABLE, call_id="live-1")),
    ])
    await expect(waiting).to_have_text("0", timeout=SEEN_MS)
    await expect(offered).to_have_text("1")
    await expect(page.locator('[data-figure="periods.today.answered"]')).to_have_text("1")
    await expect(page.locator('[data-figure="now.agents.on_call"]')).to_have_text("1")
    assert aggregator.alive() and web.alive()
