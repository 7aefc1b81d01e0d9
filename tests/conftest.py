"""Fixtures for the suite.

Tests that use the `stack` fixture (marked `stack` automatically) run against a real Kafka, PostgreSQL and Redis:
by default the local stack that `make test` starts (tools/stack/stack.py, addresses from CALLSTREAM_*
variables or the stack's fixed ports); with CALLSTREAM_TEST_STACK=testcontainers, containers started by
testcontainers instead, for machines with a Docker engine. Each test gets its own topic prefix, database
and Redis tenant, so tests never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from callstream_common.kafka.admin import delete_prefixed_topics
from callstream_common.settings import ServiceSettings

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Stack:
    kafka_bootstrap: str
    pg_dsn: str
    redis_url: str


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)


def _local_stack() -> Stack:
    return Stack(
        kafka_bootstrap=os.environ.get("CALLSTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
        pg_dsn=os.environ.get("CALLSTREAM_PG_DSN", "postgresql://callstream:callstream@127.0.0.1:15432/callstream"),
        redis_url=os.environ.get("CALLSTREAM_REDIS_URL", "redis://127.0.0.1:16379/0"),
    )


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    if os.environ.get("CALLSTREAM_TEST_STACK") != "testcontainers":
        yield _local_stack()
        return
    # Thin switch for machines with a Docker engine; CI here has none and uses the local stack.
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    with KafkaContainer("apache/kafka:3.9.2").with_kraft() as kafka, \
            PostgresContainer("postgres:15", username="callstream", password="callstream",
                              dbname="callstream") as pg, \
            RedisContainer("redis:7") as rd:
        yield Stack(
            kafka_bootstrap=kafka.get_bootstrap_server(),
            pg_dsn=pg.get_connection_url(driver=None),
            redis_url=f"redis://{rd.get_container_host_ip()}:{rd.get_exposed_port(6379)}/0",
        )


# Every prefix handed out this session, whose topics are deleted at its end (stack_topics_cleanup).
_PREFIXES: list[str] = []


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A topic prefix (and tenant) unique to this test."""
    value = f"t{uuid.uuid4().hex[:10]}"
    if "stack" in request.fixturenames:
        _PREFIXES.append(value)
    return value


@pytest.fixture(scope="session", autouse=True)
async def stack_topics_cleanup() -> AsyncIterator[None]:
    """The session's topics go at its end: a long-lived development broker otherwise keeps every partition of
    every run (tens of thousands after a day), each holding open files, until it fails with "Too many open
    files". Only when the session used the stack, and best effort: a broker already gone is no test failure."""
    yield
    if not _PREFIXES or os.environ.get("CALLSTREAM_KEEP_TOPICS") == "1":
        return
    try:
        await delete_prefixed_topics(_local_stack().kafka_bootstrap, _PREFIXES)
    except Exception as exc:  # noqa: BLE001 - clean-up must not turn a green run red
        print(f"topics of this session not deleted: {exc!r}")


@pytest.fixture
def settings(stack: Stack, prefix: str) -> ServiceSettings:
    return ServiceSettings(
        service="test", instance="pytest", tenant=prefix, topic_prefix=prefix,
        kafka_bootstrap=stack.kafka_bootstrap, pbx_partitions=3, tenant_partitions=2,
        pg_dsn=stack.pg_dsn, redis_url=stack.redis_url,
    )


@pytest.fixture
async def empty_database(stack: Stack, prefix: str) -> AsyncIterator[str]:
    """The DSN of a database created empty for this test, dropped afterwards."""
    admin = await asyncpg.connect(stack.pg_dsn)
    name = f"test_{prefix}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = stack.pg_dsn.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def redis_client(stack: Stack) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(stack.redis_url)
    try:
        yield client
    finally:
        await client.aclose()
