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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import TypeAdapter

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
_FIELD_PART = {name: part for part, (name, _) in _PARTS.items()}

# One write: (key, value), value None to delete the entry.
Write = tuple[bytes, bytes | None]


def pbx_prefix(pbx_id: str) -> bytes:
    return f"{pbx_id}{SEP}".encode()


def entry_key(pbx_id: str, part: str, ident: str) -> bytes:
    return f"{pbx_id}{SEP}{part}{SEP}{ident}".encode()


def changes(pbx_id: str, before: RouterState, after: RouterState) -> list[Write]:
    """The writes that turn the stored `before` into `after`. decide copies the maps but keeps the parts it
    did not change (frozen values), so most comparisons are identity checks."""
    writes: list[Write] = []
    for part, (name, adapter) in _PARTS.items():
        old: Mapping[str, Any] = getattr(before, name)
        new: Mapping[str, Any] = getattr(after, name)
        for ident, value in new.items():
            previous = old.get(ident)
            if previous is not value and previous != value:
                writes.append((entry_key(pbx_id, part, ident), adapter.dump_json(value)))
        writes.extend((entry_key(pbx_id, part, ident), None) for ident in old if ident not in new)
    return writes


def rebuild(pbx_id: str, entries: Iterable[tuple[bytes, bytes]]) -> RouterState:
    """The PBX's state from its entries (those of other PBXs are skipped, and any key not of this layout, such
    as the version entry workers before 191a216 wrote)."""
    prefix = pbx_prefix(pbx_id)
    maps: dict[str, dict[str, Any]] = {name: {} for name, _ in _PARTS.values()}
    for key, value in entries:
        if not key.startswith(prefix):
            continue
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
