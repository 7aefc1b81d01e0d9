"""One input in, its effects out: load the PBX's RouterState, `decide`, run the Redis intents (feeding each
reservation's answer back in at once), produce commands and call events, store the new state.

Order of effects, for at-least-once delivery: Redis (idempotent per call: a repeated reservation returns the
agents the call holds; releases are compare-and-set), then Kafka (deterministic ids: command ids from the
decider, which the gateway runs once; call events `<origin>:<n>`), and the new state goes into the table
(changelog) last, once Kafka has acknowledged the input's records. A crash in between re-processes the input
from the old state and repeats the same effects with the same ids; storing the state first would lose the
effects not yet made.

The handler does not wait for those acknowledgements: the next input is decided from the state kept in
memory while the store waits for them (pending_stores.py; offsets are committed only once every store is made).

Inputs of one partition are processed one at a time (a lock per partition): the faust agents of the four
sources and the tick are separate tasks, and two of them must not evolve one PBX's state concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from callstream_common import metrics
from callstream_common.kafka.owned import OwnedCopies
from callstream_common.availability import Availability
from callstream_common.codec import encode, new_envelope
from callstream_common.messages.base import Body
from callstream_common.messages.commands import AriCommand, Originate
from callstream_common.partitioner import partition_for

from callstream_router import intents
from callstream_router.config import RouterConfig
from callstream_router.decide import decide
from callstream_router.inputs import RouterInput
from callstream_router.outputs import ReleaseAgent, ReserveAgent, RouterNote
from callstream_router.pending_stores import PendingStores
from callstream_router.recorded import forget_bases
from callstream_router.state import RouterState, due_deadlines
from callstream_router.stored import Write, rebuild, stored_writes

log = logging.getLogger(__name__)

Table = MutableMapping[bytes, bytes]
# (topic, key, value, headers): hand one record to the producer; the awaitable it returns is Kafka's
# acknowledgement. An input's records are all handed over first and acknowledged together: one round trip
# per input instead of one per record (the producer keeps their order within a partition).
Send = Callable[[str, bytes, bytes, list[tuple[str, bytes]]], Awaitable[Awaitable[object]]]
# A decide loop that keeps feeding answers back is a bug; this bounds it instead of spinning forever.
MAX_STEPS = 256


@dataclass(frozen=True)
class Runtime:
    """What the worker opened at start: SQL (the projection), Redis (availability), the PBXs' configs."""

    pool: asyncpg.Pool
    store: Availability
    configs: dict[str, RouterConfig]


@dataclass(frozen=True)
class Topics:
    commands: str
    calls: str


def ringing_first(commands: Sequence[AriCommand]) -> list[AriCommand]:
    """The input's commands with those that ring an agent (Originate) first, the others in decide's order.

    The gateway runs one call's commands one after another (their ordering key is the call). A call that finds
    an agent free on arrival makes answer, bridge create, add, MOH and then the originate: the agent's phone
    would ring only after four ARI round trips for the caller (~13 of the ~21 ms from call.offered to the
    originate reaching the PBX in bench-routing). Nothing of the caller's set-up is a prerequisite of an
    originate (its channel is new; its originator, the caller's channel, exists), and everything later on the
    agent's leg still comes after it, under the same key."""
    return sorted(commands, key=lambda command: not isinstance(command.operation, Originate))


class Processor:
    def __init__(self, states: Table, send: Send, topics: Topics, *, tenant: str, producer: str,
                 partitions: int, emit_commands: bool, generation: Callable[[], int],
                 stores: PendingStores) -> None:
        self._states = states
        self._send = send
        self._topics = topics
        self._tenant = tenant
        self._producer = producer
        self._partitions = partitions
        self._emit_commands = emit_commands
        self._runtime: Runtime | None = None
        self._ready = asyncio.Event()
        self._locks: dict[int, asyncio.Lock] = {}
        # Each PBX's state as this worker last stored it, trusted while it owns the PBX's partition; after a
        # rebalance the state is rebuilt from the (recovered) table's entries (stored.py).
        self._decoded: OwnedCopies[str, RouterState] = OwnedCopies(generation)
        self._stores = stores

    def start(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def runtime(self) -> Runtime:
        """The resources, once open (handlers started before that wait here)."""
        return await self._wait()

    async def _wait(self) -> Runtime:
        await self._ready.wait()
        assert self._runtime is not None
        return self._runtime

    def _lock(self, partition: int) -> asyncio.Lock:
        return self._locks.setdefault(partition, asyncio.Lock())

    async def handle(self, partition: int, pbx_id: str | None, now: datetime, item: RouterInput | None,
                     *, causation: str) -> None:
        """Process one input of the PBX read at `partition`; `causation` is its position."""
        if item is None or pbx_id is None:
            return
        runtime = await self._wait()
        async with self._lock(partition):
            await self._apply(runtime, partition, pbx_id, now, item, root=causation, causation=causation)

    async def tick(self, partition: int, now: datetime, *, causation: str) -> None:
        """The due deadlines of the PBXs whose state lives in `partition`, each fed in as a Deadline."""
        runtime = await self._wait()
        async with self._lock(partition):
            for pbx_id, config in runtime.configs.items():
                if partition_for(pbx_id.encode(), self._partitions) != partition:
                    continue
                for deadline in due_deadlines(await self._current(partition, pbx_id), now, config):
                    # The deadline's own origin names its outputs: the same whichever tick fires it.
                    await self._apply(runtime, partition, pbx_id, now, deadline, root=deadline.origin,
                                      causation=causation)

    async def _current(self, partition: int, pbx_id: str) -> RouterState:
        """The PBX's state: the decoded copy, else rebuilt from the table (once per PBX and assignment: a scan),
        after the partition's pending stores have reached it."""
        state = self._decoded.get(pbx_id)
        if state is None:
            await self._stores.settle_partition(partition)
            state = rebuild(pbx_id, self._states.items())
            self._decoded.put(pbx_id, state)
        return state

    def _store(self, partition: int, pbx_id: str, before: RouterState, state: RouterState,
               acks: list[Awaitable[object]]) -> None:
        """`state` is what the PBX's next input sees, at once; the table gets it once `acks` (the input's records)
        and the partition's earlier stores are done."""
        self._decoded.put(pbx_id, state)
        writes = stored_writes(pbx_id, before, state)
        # The next input's copies start from `state`: its chain back to `before` is no longer needed.
        forget_bases(state.calls, state.channels, state.ended, state.requests, state.dry)
        if writes or acks:
            self._stores.after(partition, acks, lambda: self._write(writes))

    def _write(self, writes: list[Write]) -> None:
        for key, value in writes:
            if value is None:
                self._states.pop(key, None)
            else:
                self._states[key] = value

    async def _apply(self, runtime: Runtime, partition: int, pbx_id: str, now: datetime, first: RouterInput, *,
                     root: str, causation: str) -> None:
        self._stores.check()
        config = runtime.configs.get(pbx_id)
        if config is None:
            # Counted, logged at debug: every event of an unconfigured PBX would come through here.
            metrics.ROUTER_NOTES.labels("unknown_pbx").inc()
            log.debug("input for a PBX not configured", extra={"pbx_id": pbx_id, "causation_id": causation})
            return
        started = time.perf_counter()
        before = await self._current(partition, pbx_id)
        state = before
        commands: list[AriCommand] = []
        events: list[Body] = []
        pending: deque[RouterInput] = deque([first])
        steps = 0
        while pending:
            steps += 1
            if steps > MAX_STEPS:
                log.error("decide loop did not settle", extra={"pbx_id": pbx_id, "causation_id": causation})
                break
            item = pending.popleft()
            metrics.ROUTER_INPUTS.labels(type(item).__name__).inc()
            state, outputs = decide(state, item, now, config)
            answers: list[RouterInput] = []
            for out in outputs:
                if isinstance(out, AriCommand):
                    commands.append(out)
                elif isinstance(out, ReserveAgent):
                    answers.append(await intents.reserve(runtime.store, pbx_id, out, now))
                elif isinstance(out, ReleaseAgent):
                    await intents.release(runtime.store, out, now)
                elif isinstance(out, RouterNote):
                    metrics.ROUTER_NOTES.labels(out.kind).inc()
                    log.info("router note", extra={"pbx_id": pbx_id, "kind": out.kind, "detail": out.detail,
                                                   "causation_id": causation})
                else:
                    events.append(out)
            # Answers go before inputs still pending, in the order the intents ran (priority order).
            pending.extendleft(reversed(answers))
        acks = await self._produce(pbx_id, ringing_first(commands), events, root=root, causation=causation)
        # No deep `state != before` first: `changes` looks only at the keys decide touched (recorded.py), finds
        # what differs by identity (decide keeps unchanged values) and writes nothing for an input that changed
        # nothing.
        self._store(partition, pbx_id, before, state, acks)
        metrics.ROUTER_DECIDE_LATENCY.observe(time.perf_counter() - started)

    async def _produce(self, pbx_id: str, commands: Sequence[AriCommand], events: Sequence[Body], *, root: str,
                       causation: str) -> list[Awaitable[object]]:
        """Hands the input's records to the producer; returns their acknowledgements (awaited by the store)."""
        key = pbx_id.encode()
        acks: list[Awaitable[object]] = []
        if self._emit_commands:
            for command in commands:
                message = new_envelope(command, tenant=self._tenant, producer=self._producer, pbx_id=pbx_id,
                                       causation_id=causation, message_id=command.command_id)
                headers, value = encode(message)
                acks.append(await self._send(self._topics.commands, key, value, headers))
        for n, event in enumerate(events):
            message = new_envelope(event, tenant=self._tenant, producer=self._producer, pbx_id=pbx_id,
                                   causation_id=causation, message_id=f"{root}:{n}")
            headers, value = encode(message)
            acks.append(await self._send(self._topics.calls, key, value, headers))
            metrics.ROUTER_CALL_EVENTS.labels(event.TYPE).inc()
        return acks
