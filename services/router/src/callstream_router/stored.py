"""How the faust table holds a PBX's RouterState: JSON bytes through a pydantic TypeAdapter (explicit, not
pickle, so a changelog written by one version is read by the next; new fields need defaults)."""

from __future__ import annotations

from pydantic import TypeAdapter

from callstream_router.state import RouterState

_ADAPTER: TypeAdapter[RouterState] = TypeAdapter(RouterState)


def encode_state(state: RouterState) -> bytes:
    return _ADAPTER.dump_json(state)


def decode_state(raw: bytes | None) -> RouterState:
    return _ADAPTER.validate_json(raw) if raw else RouterState()
