"""One input in, its effects out: load the agents' states, `evolve`, mirror to Redis, publish on `agents`, store
the new states. The faust handlers (app.py) only decode and call in here. The history in SQL is a projection of
`agents` (history.py); only configuration changes (set-skills, reassign) are written to SQL here.

Order of effects, for at-least-once delivery: Redis, SQL, Kafka are idempotent (compare-and-set, tracking
record, deterministic message ids) and run first; the new states go into the table (changelog) last. A crash
in between re-processes the input from the old state, which repeats the same effects harmlessly; storing the
state first would make the re-processing a rejected duplicate and lose the effects not yet made.

The handlers do not wait for Kafka's acknowledgement of their events: each input runs inside the changelog hold
(kafka/changelog_hold.py), which keeps the tables' new values in memory at once and holds their changelog
records until the input's events are acknowledged. Awaiting them here made every input one produce request and
one round trip, one after another (docs/acd.md "Session 8"). Without a hold (unit tests) they are awaited.

Inputs of one partition are processed one at a time (a lock per partition): the cms, calls, ari and tick
streams of a PBX are separate faust agents, and two of them must not evolve one agent concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime

from callstream_common import metrics
from callstream_common.kafka.changelog_hold import ChangelogHold
from callstream_common.kafka.owned import OwnedCopies
from callstream_common.codec import encode, new_envelope
from callstream_common.partitioner import partition_for
from callstream_common.messages.agents import (
    AgentLoggedIn,
    AgentReassigned,
    AgentSkillsChanged,
    AgentState,
    AgentStateChanged,
)
from callstream_common.messages.cms import AgentLogin, AgentReassign, AgentSetSkills

from callstream_agent_state import history
from callstream_agent_state.config import AgentEntry, agent_entry
from callstream_agent_state.history import HistoryEvent
from callstream_agent_state.machine import (
    AgentEventOut,
    AgentInput,
    AgentMachineState,
    AgentOutput,
    AgentReserved,
    BusyTooLong,
    EndpointRegistration,
    Rejection,
    due_timers,
    evolve,
)
from callstream_agent_state.positions import Position
from callstream_agent_state.redis_effects import ensure_agent, mirror, reconcile
from callstream_agent_state.routing import (
    as_call_input,
    as_cms_command,
    call_targets,
    offered_after,
)
from callstream_agent_state.runtime import Runtime
from callstream_agent_state.site_sql import read_agent
from callstream_agent_state.stored import decode_names, decode_state, encode_names, encode_state, state_key

log = logging.getLogger(__name__)

Table = MutableMapping[bytes, bytes]
# (topic, key, value, headers): hand one record to the producer; the awaitable it returns is Kafka's
# acknowledgement. An input's events are handed over together; its table writes wait for their acknowledgements.
Send = Callable[[str, bytes, bytes, list[tuple[str, bytes]]], Awaitable[Awaitable[object]]]
SERVICE = "agent-state"


@dataclass(frozen=True)
class Tables:
    """The worker's changelog-backed state. Every table is written only while an input of the same partition
    is processed, so its changelog partition is that input's partition (the PBX's): see docs/acd.md."""

    states: Table  # state_key(partition, agent id) -> AgentMachineState
    offered: Table  # call id -> the agents the call was offered to, until it ends
    endpoints: Table  # endpoint -> b"1" registered / b"0" not, as last seen on ari.events
    agents_of_partition: Table  # partition number -> the agents whose state lives in that partition
    endpoint_agents: Table  # endpoint -> the agent that last logged in on it (hot-desking: not always its own)


class Processor:
    def __init__(self, tables: Tables, send: Send, *, tenant: str, producer: str, agents_topic: str,
                 partitions: int, generation: Callable[[], int], hold: ChangelogHold | None = None) -> None:
        self._tables = tables
        self._hold = hold
        # Each agent's state as this worker last stored or read it, trusted while it owns the agent's partition:
        # the tick (every agent of the partition, several times a second) reads it instead of decoding the
        # table's bytes. (Decoding every agent on every tick was most of the tick's cost, 3-5% of the worker's
        # busy time in a profiled bench-routing run.)
        self._decoded: OwnedCopies[tuple[int, str], AgentMachineState] = OwnedCopies(generation)
        self._send = send
        self._tenant = tenant
        self._producer = producer
        self._agents_topic = agents_topic
        self._partitions = partitions
        self._runtime: Runtime | None = None
        self._ready = asyncio.Event()
        self._locks: dict[int, asyncio.Lock] = {}
        # Agents whose configuration changed since start (set-skills, reassign, read again at login), over
        # runtime.directory; and the endpoints of agents configured since start.
        self._changed: dict[str, AgentEntry] = {}
        self._endpoints: dict[str, str] = {}
        # Partitions whose agents were checked against Redis since this worker got them (on their first tick).
        self._reconciled: set[int] = set()

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

    # ---- one handler per input kind (the registry is app.py) ----

    async def on_cms(self, position: Position, now: datetime, body: object) -> None:
        if isinstance(body, AgentSetSkills):
            await self._set_skills(position, now, body)
            return
        if isinstance(body, AgentReassign):
            await self._reassign(position, now, body)
            return
        command = as_cms_command(body)
        if command is None:
            return  # transfers, campaigns, leads: the router's and the dialer's
        await self._process(position, now, [(command.agent_id, command)])

    async def on_call(self, position: Position, now: datetime, body: object) -> None:
        event = as_call_input(body)
        if event is None:
            return
        runtime = await self._wait()
        async with self._lock(position.partition), self._input():
            key = event.call_id.encode()
            offered = decode_names(self._tables.offered.get(key))
            await self._apply(runtime, position, now, [(agent, event) for agent in call_targets(event, offered)])
            after = offered_after(event, offered)
            if after is None:
                self._tables.offered.pop(key, None)
            elif after != offered:
                self._tables.offered[key] = encode_names(after)

    async def on_registrations(self, position: Position, now: datetime,
                               registrations: Sequence[EndpointRegistration]) -> None:
        if not registrations:
            return
        runtime = await self._wait()
        async with self._lock(position.partition), self._input():
            items: list[tuple[str, AgentInput]] = []
            for registration in registrations:
                self._tables.endpoints[registration.endpoint.encode()] = b"1" if registration.registered else b"0"
                logged_in = self._tables.endpoint_agents.get(registration.endpoint.encode())
                agent_id = logged_in.decode() if logged_in is not None else (
                    runtime.directory.agent_of(registration.endpoint) or self._endpoints.get(registration.endpoint))
                if agent_id is not None:
                    items.append((agent_id, registration))
            await self._apply(runtime, position, now, items)

    async def on_tick(self, position: Position, now: datetime) -> None:
        """The deadlines (wrap-up, reservation) due at `now` of the agents of the tick's partition."""
        runtime = await self._wait()
        async with self._lock(position.partition), self._input():
            items: list[tuple[str, AgentInput]] = []
            agents = decode_names(self._tables.agents_of_partition.get(str(position.partition).encode()))
            if position.partition not in self._reconciled:
                await self._reconcile(runtime, position.partition, sorted(agents), now)
                self._reconciled.add(position.partition)
            for agent_id in sorted(agents):
                stored = self._stored(position.partition, agent_id)
                if stored is not None:
                    for due in due_timers(stored, now, runtime.policy):
                        if isinstance(due, BusyTooLong):
                            metrics.AGENT_STATE_SWEPT.inc()
                            log.warning("agent busy for too long: released by the sweeper", extra={
                                "agent_id": agent_id, "call_id": due.call_id, "causation_id": position.causation})
                        items.append((agent_id, due))
            await self._apply(runtime, position, now, items)

    async def _reconcile(self, runtime: Runtime, partition: int, agents: Sequence[str], now: datetime) -> None:
        """Redis made to agree with the resumed machine states on who is logged in (redis_effects.reconcile):
        without it, a worker restarted over a Redis that lost its agents would leave them unroutable. Only
        the agents whose PBX is now this partition's: an agent reassigned to another PBX left its old state
        behind in the old partition's changelog, and that state says nothing any more."""
        for agent_id in agents:
            stored = self._stored(partition, agent_id)
            entry = self._entry(runtime, agent_id)
            if stored is None or entry is None or partition_for(entry.pbx_id.encode(), self._partitions) != partition:
                continue
            state = stored
            repaired = await reconcile(runtime.store, self._on_its_phone(partition, entry, now), state.state,
                                       state.call_id, state.pause_reason, now)
            if repaired is not None:
                metrics.AGENT_STATE_REDIS_REPAIRED.labels(str(state.state)).inc()
                log.warning("redis availability repaired from the agent's state", extra={
                    "agent_id": agent_id, "to": str(state.state), "found": str(repaired)})

    async def _set_skills(self, position: Position, now: datetime, command: AgentSetSkills) -> None:
        """New skills: the queues the agent serves follow (Redis), the configuration is updated (SQL), and
        `agent.skills-changed` announces it. The machine's state does not depend on skills."""
        runtime = await self._wait()
        async with self._lock(position.partition), self._input():
            configured = await read_agent(runtime.pool, self._tenant, command.agent_id)
            if configured is None:
                metrics.AGENT_STATE_INPUTS.labels(type(command).__name__, "unknown_agent").inc()
                return
            entry = self._on_its_phone(position.partition, agent_entry(
                runtime.config, configured.model_copy(update={"skills": dict(command.skills)}), runtime.technology),
                now)
            await ensure_agent(runtime.store, entry, now)
            self._changed[entry.agent_id] = entry
            event = AgentSkillsChanged(agent_id=entry.agent_id, at=now, skills=dict(command.skills))
            await history.record_config(runtime.pool, self._tenant, position, event)
            await asyncio.gather(*await self._publish(position, [(entry.pbx_id, event)]))
            metrics.AGENT_STATE_INPUTS.labels(type(command).__name__, "applied").inc()

    async def _reassign(self, position: Position, now: datetime, command: AgentReassign) -> None:
        """Move a logged-out agent to another PBX: Redis, `agent.reassigned` (on the old PBX's key, after the
        agent's last events there), then SQL. From then on its inputs arrive in the new PBX's partition, whose
        worker reads the agent's row again at login. A logged-in agent is not moved (its state would stay
        behind in this partition): the CMS logs it out first."""
        runtime = await self._wait()
        async with self._lock(position.partition), self._input():
            entry = await self._refresh(runtime, command.agent_id)  # its PBX may have moved since start
            state = self._load(position.partition, command.agent_id, now)
            if entry is None or command.to_pbx_id not in runtime.config.pbxs or state.state != AgentState.LOGGED_OUT \
                    or entry.pbx_id == command.to_pbx_id:
                metrics.AGENT_STATE_INPUTS.labels(type(command).__name__, "rejected").inc()
                log.info("reassignment refused", extra={
                    "agent_id": command.agent_id, "to_pbx_id": command.to_pbx_id, "state": str(state.state),
                    "causation_id": position.causation})
                return
            moved = replace(self._on_its_phone(position.partition, entry, now), pbx_id=command.to_pbx_id)
            await ensure_agent(runtime.store, moved, now)
            self._changed[moved.agent_id] = moved
            event = AgentReassigned(agent_id=moved.agent_id, at=now, from_pbx_id=entry.pbx_id,
                                    to_pbx_id=moved.pbx_id)
            # Kafka before SQL: a re-processing after SQL would find the agent moved already and refuse.
            await asyncio.gather(*await self._publish(position, [(entry.pbx_id, event)]))
            await history.record_config(runtime.pool, self._tenant, position, event)
            metrics.AGENT_STATE_INPUTS.labels(type(command).__name__, "applied").inc()

    def _on_its_phone(self, partition: int, entry: AgentEntry, now: datetime) -> AgentEntry:
        """The entry with the endpoint the agent is logged in on (the router dials it), if logged in."""
        state = self._load(partition, entry.agent_id, now)
        if state.state != AgentState.LOGGED_OUT and state.endpoint is not None:
            return replace(entry, endpoint=state.endpoint)
        return entry

    # ---- the common path ----

    async def _refresh(self, runtime: Runtime, agent_id: str) -> AgentEntry | None:
        """The agent's configuration as SQL has it now (another worker, or a site load, may have changed it)."""
        configured = await read_agent(runtime.pool, self._tenant, agent_id)
        if configured is None:
            return None
        entry = agent_entry(runtime.config, configured, runtime.technology)
        self._changed[agent_id] = entry
        self._endpoints[entry.endpoint] = agent_id
        return entry

    def _entry(self, runtime: Runtime, agent_id: str) -> AgentEntry | None:
        return self._changed.get(agent_id) or runtime.directory.agents.get(agent_id)

    def _lock(self, partition: int) -> asyncio.Lock:
        return self._locks.setdefault(partition, asyncio.Lock())

    def _input(self) -> AbstractAsyncContextManager[object]:
        """One input's table writes, held until its events are acknowledged (or nothing, without a hold)."""
        return self._hold.input() if self._hold is not None else contextlib.nullcontext()

    async def _events_sent(self, acks: list[Awaitable[object]]) -> None:
        """The input's events handed to the producer: its table writes wait for them (the hold), or, without a
        hold, the handler does."""
        if self._hold is not None:
            self._hold.after(acks)
        else:
            await asyncio.gather(*acks)

    async def _process(self, position: Position, now: datetime, items: Sequence[tuple[str, AgentInput]]) -> None:
        runtime = await self._wait()
        async with self._lock(position.partition), self._input():
            await self._apply(runtime, position, now, items)

    def _load(self, partition: int, agent_id: str, now: datetime) -> AgentMachineState:
        stored = self._stored(partition, agent_id)
        return stored if stored is not None else AgentMachineState.new(agent_id, now)

    def _stored(self, partition: int, agent_id: str) -> AgentMachineState | None:
        """The agent's state in the partition's table entries (None if it has none), decoded once per consumer
        generation."""
        state = self._decoded.get((partition, agent_id))
        if state is None:
            raw = self._tables.states.get(state_key(partition, agent_id))
            if raw is None:
                return None
            state = decode_state(raw)
            self._decoded.put((partition, agent_id), state)
        return state

    async def _apply(self, runtime: Runtime, position: Position, now: datetime,
                     items: Sequence[tuple[str, AgentInput]]) -> None:
        if not items:
            return
        before: dict[str, AgentMachineState] = {}
        after: dict[str, AgentMachineState] = {}
        events: list[tuple[str, AgentEventOut]] = []  # (pbx id, event)
        phones: dict[str, str] = {}  # endpoint -> the agent that logged in on it
        for agent_id, item in items:
            entry = await self._refresh(runtime, agent_id) if isinstance(item, AgentLogin) else self._entry(
                runtime, agent_id)
            if entry is None:
                metrics.AGENT_STATE_INPUTS.labels(type(item).__name__, "unknown_agent").inc()
                log.info("input for an agent not configured", extra={"agent_id": agent_id,
                                                                      "causation_id": position.causation})
                continue
            state = after.get(agent_id) or before.setdefault(agent_id, self._load(position.partition, agent_id, now))
            new_state, outputs = await self._step(runtime, entry, state, item, now)
            after[agent_id] = new_state
            accepted = self._accepted(outputs, position)
            events.extend((entry.pbx_id, out) for out in accepted)
            phones.update((out.endpoint, out.agent_id) for out in accepted if isinstance(out, AgentLoggedIn))
            outcome = "rejected" if any(isinstance(out, Rejection) for out in outputs) else (
                "applied" if outputs else "quiet")
            metrics.AGENT_STATE_INPUTS.labels(type(item).__name__, outcome).inc()
        # The history in SQL follows from `agents` (history.py).
        await self._events_sent(await self._publish(position, events))
        # The phones before the states: a worker killed between the two leaves a phone recorded for a login
        # whose state did not land, and the re-processed login makes both. The other way round, the re-processed
        # login would be refused (the agent logged in already) and its phone never recorded.
        for endpoint, agent_id in phones.items():
            self._tables.endpoint_agents[endpoint.encode()] = agent_id.encode()
        self._store(position.partition, before, after)

    async def _step(self, runtime: Runtime, entry: AgentEntry, state: AgentMachineState, item: AgentInput,
                    now: datetime) -> tuple[AgentMachineState, tuple[AgentOutput, ...]]:
        policy, store = runtime.policy, runtime.store
        if isinstance(item, AgentLogin) and state.state == AgentState.LOGGED_OUT:
            # Logout removed the hash; the router needs it back, with the phone the agent logs in on. (Not for
            # a login the machine will refuse: it must not change the phone of an agent logged in elsewhere.)
            await ensure_agent(store, replace(entry, endpoint=item.endpoint), now)
            if state.endpoint != item.endpoint:
                # The machine judges a login by the endpoint's registration: tell it first (machine.py).
                known = self._tables.endpoints.get(item.endpoint.encode()) == b"1"
                state, _ = evolve(state, EndpointRegistration(item.endpoint, known), now, policy)
        new_state, outputs = evolve(state, item, now, policy)
        for out in outputs:
            if not isinstance(out, AgentStateChanged):
                continue
            first = await mirror(store, out, state.call_id, now)
            if first is None:
                continue
            # The router reserved the agent before this move out of available: the machine learns of the
            # reservation first, and the input is judged again (a pause or logout becomes pending).
            reserved, reserved_outputs = evolve(state, AgentReserved(first.call_id), now, policy)
            new_state, again = evolve(reserved, item, now, policy)
            for change in again:
                if isinstance(change, AgentStateChanged):
                    await mirror(store, change, reserved.call_id, now)
            return new_state, (*reserved_outputs, *again)
        return new_state, outputs

    def _accepted(self, outputs: Sequence[AgentOutput], position: Position) -> list[AgentEventOut]:
        accepted: list[AgentEventOut] = []
        for out in outputs:
            if isinstance(out, Rejection):
                metrics.AGENT_STATE_REJECTIONS.labels(out.input_type, out.reason).inc()
                log.debug("input rejected", extra={"agent_id": out.agent_id, "input": out.input_type,
                                                   "reason": out.reason, "detail": out.detail,
                                                   "causation_id": position.causation})
            else:
                accepted.append(out)
                if isinstance(out, AgentStateChanged):
                    metrics.AGENT_STATE_TRANSITIONS.labels(str(out.previous_state), str(out.state)).inc()
        return accepted

    async def _publish(self, position: Position, events: Sequence[tuple[str, HistoryEvent]]
                       ) -> list[Awaitable[object]]:
        """Hands the events to the producer; returns their acknowledgements (all before the new states are
        stored)."""
        acks: list[Awaitable[object]] = []
        for n, (pbx_id, body) in enumerate(events):
            message = new_envelope(body, tenant=self._tenant, producer=self._producer, pbx_id=pbx_id,
                                   causation_id=position.causation, message_id=position.message_id(n))
            headers, value = encode(message)
            acks.append(await self._send(self._agents_topic, pbx_id.encode(), value, headers))
        return acks

    def _store(self, partition: int, before: dict[str, AgentMachineState],
               after: dict[str, AgentMachineState]) -> None:
        index_key = str(partition).encode()
        index = decode_names(self._tables.agents_of_partition.get(index_key))
        for agent_id, state in after.items():
            key = state_key(partition, agent_id)
            if state != before.get(agent_id) or key not in self._tables.states:
                self._tables.states[key] = encode_state(state)
            self._decoded.put((partition, agent_id), state)
        if not set(after) <= index:
            self._tables.agents_of_partition[index_key] = encode_names(index | set(after))

