"""How the faust table holds a PBX's RouterState: one entry per part, so that an input writes only what it
changed.

The first layout stored the whole RouterState of a PBX under its id and re-wrote it on every input: its cost
grew with the calls in progress (2.8 ms to encode and 250 KB written to the changelog per input with 250
calls) and a PBX with about 1,000 calls would have passed Kafka's 1 MB record limit. Now each call, tombstone,
channel, pending request and dry mark is an entry of its own, keyed `<pbx id> US <part> US <id>` (US: the
ASCII unit separator, which no id contains). The worker keeps each PBX's state decoded while it owns the
partition (processor.py) and rebuilds it from these entries after a rebalance.

Values are JSON through pydantic TypeAdapters (explicit, not pickle, so a changelog written by one version is
read by the next; new fields need defaults).

An input's writes must land together, but they are several changelog records, and a worker killed while the
producer sends them leaves only the first ones in Kafka: a call stored with its new agent leg, the leg's channel
entry missing. The successor re-reads the input (its offset was not committed), finds the call and takes the
input for a duplicate, and the agent's answer then belongs to no call (the offer is lost). So every input's
writes are preceded by one record that holds them all, under the PBX's `w` key (the last input's writes):
whatever the kill left of the entries after it, `rebuild` lays it over them. The producer keeps a partition's
records in order, so the entries of every earlier input are complete once a later input's `w` record is there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import TypeAdapter

from callstream_router.recorded import touched_since
from callstream_router.state import CallState, DryMark, Ended, RouterState

SEP = "\x1f"
# part letter -> (RouterState field, the adapter of its values)
_PARTS: dict[str, tuple[str, TypeAdapter[Any]]] = {
    "c": ("calls", TypeAdapter(CallState)),
    "e": ("ended", TypeAdapter(Ended)),
    "h": ("channels", TypeAdapter(str)),
    "q": ("requests", TypeAdapter(str)),
    "d": ("dry", TypeAdapter(DryMark)),
}
_ABSENT: Any = object()  # not in the map (None is a value no map holds, but this says so plainly)

# One write: (key, value), value None to delete the entry.
Write = tuple[bytes, bytes | None]
# The last input's writes as one value: [(key, value or None), ...], keys and values as text.
_LAST_WRITES: TypeAdapter[list[tuple[str, str | None]]] = TypeAdapter(list[tuple[str, str | None]])


def pbx_prefix(pbx_id: str) -> bytes:
    return f"{pbx_id}{SEP}".encode()


def entry_key(pbx_id: str, part: str, ident: str) -> bytes:
    return f"{pbx_id}{SEP}{part}{SEP}{ident}".encode()


def last_writes_key(pbx_id: str) -> bytes:
    return f"{pbx_id}{SEP}w".encode()


def changes(pbx_id: str, before: RouterState, after: RouterState) -> list[Write]:
    """The writes that turn the stored `before` into `after`. Only the keys decide touched are compared when
    `after` was made from `before` by decide (recorded.py); otherwise every entry is. decide keeps the values it
    did not change (frozen), so most comparisons are identity checks."""
    writes: list[Write] = []
    for part, (name, adapter) in _PARTS.items():
        old: Mapping[str, Any] = getattr(before, name)
        new: Mapping[str, Any] = getattr(after, name)
        touched = touched_since(old, new)
        candidates = sorted(touched) if touched is not None else [*new, *(ident for ident in old if ident not in new)]
        for ident in candidates:
            value = new.get(ident, _ABSENT)
            previous = old.get(ident, _ABSENT)
            if value is _ABSENT:
                if previous is not _ABSENT:
                    writes.append((entry_key(pbx_id, part, ident), None))
            elif previous is not value and previous != value:
                writes.append((entry_key(pbx_id, part, ident), adapter.dump_json(value)))
    return writes


def stored_writes(pbx_id: str, before: RouterState, after: RouterState) -> list[Write]:
    """What the table gets for one input: the record of all its writes first, then the writes (none if nothing
    changed)."""
    writes = changes(pbx_id, before, after)
    if not writes:
        return []
    last = _LAST_WRITES.dump_json([(key.decode(), None if value is None else value.decode())
                                   for key, value in writes])
    return [(last_writes_key(pbx_id), last), *writes]


def rebuild(pbx_id: str, entries: Iterable[tuple[bytes, bytes]]) -> RouterState:
    """The PBX's state from its entries, with the last input's writes laid over them (those of other PBXs are
    skipped, and any key not of this layout, such as the version entry workers before 191a216 wrote)."""
    prefix = pbx_prefix(pbx_id)
    last_key = last_writes_key(pbx_id)
    own: dict[bytes, bytes] = {}
    last: bytes | None = None
    for key, value in entries:
        if key == last_key:
            last = value
        elif key.startswith(prefix):
            own[key] = value
    if last is not None:
        for text_key, text_value in _LAST_WRITES.validate_json(last):
            if text_value is None:
                own.pop(text_key.encode(), None)
            else:
                own[text_key.encode()] = text_value.encode()
    maps: dict[str, dict[str, Any]] = {name: {} for name, _ in _PARTS.values()}
    for key, value in own.items():
        rest = key[len(prefix):].decode()
        part, sep, ident = rest.partition(SEP)
        known = _PARTS.get(part)
        if not sep or known is None:
            continue  # not an entry of this layout
        name, adapter = known
        maps[name][ident] = adapter.validate_json(value)
    # Calls in the order they arrived (the table's order is not), as decide built them: it serves ties in it.
    calls = dict(sorted(maps["calls"].items(), key=lambda item: (item[1].queued_at, item[0])))
    ended = dict(sorted(maps["ended"].items(), key=lambda item: (item[1].at, item[0])))
    return RouterState(calls=calls, channels=maps["channels"], ended=ended, requests=maps["requests"],
                       dry=maps["dry"])


def encode_state(pbx_id: str, state: RouterState) -> list[Write]:
    """Every entry of `state`, as written for a PBX stored from nothing."""
    return changes(pbx_id, RouterState(), state)
