"""Every id the router makes, derived from what it already knows, never drawn at random.

- Call ids come from the PBX and the caller's channel id, so a StasisStart processed twice names one call.
- Agent legs, consult legs and bridges are named after their call: an originate or bridge_create repeated
  after a crash reuses the id, and Asterisk answers 409 instead of making a second channel or bridge.
- Command ids are `<origin>:<n>`: the origin is the input's position
  (`<topic>:<partition>:<offset>`), or `dl:<call id>:<kind>:<attempt>` for a deadline, or `rr:<digest of the
  request id>` for a reservation answer (a digest, so answers that cause requests do not grow the ids); n is the output's index among the outputs of that input that carry an id.
  Re-processing an input at the same position yields the same ids, and the gateway runs each id once.
- Reservation requests are `rq:<call id>:<n>` (the call's n-th request), clean-ups of leftover channels and
  bridges `gc:<channel or bridge id>`: ids that stay unique even when an input is delivered again after its
  effect (at-least-once delivery on top of a state already updated).
  (docs/acd.md writes the separator as `/`, but the messages' `Id` pattern has no `/`: `:` it is.)
"""

from __future__ import annotations

import hashlib
import re

# The message models' `Id` pattern; ids must also stay below its 100 characters with their suffixes.
_ID_CHARS = re.compile(r"^[A-Za-z0-9._:@\-]+$")
MAX_CALL_ID = 60
_OWNED = re.compile(r"^(?P<call>.+)-(?:h|m\d+|a\d+|x\d+)$")


def call_id_for_channel(pbx_id: str, channel_id: str) -> str:
    """The call id of an inbound call: `<pbx>-<caller channel id>`, or a digest of it when that is unusable."""
    candidate = f"{pbx_id}-{channel_id}"
    if len(candidate) <= MAX_CALL_ID and _ID_CHARS.match(candidate):
        return candidate
    return "c-" + hashlib.sha256(candidate.encode()).hexdigest()[:32]


def holding_bridge_id(call_id: str) -> str:
    return f"{call_id}-h"


def mixing_bridge_id(call_id: str, generation: int) -> str:
    """A new generation per bridging (a transfer destroys the old bridge), so no id is reused after a destroy."""
    return f"{call_id}-m{generation}"


def agent_leg_id(call_id: str, attempt: int) -> str:
    return f"{call_id}-a{attempt}"


def consult_call_id(call_id: str, number: int) -> str:
    """The consultation of an attended transfer is a call of its own (agent to agent); its leg has this id too."""
    return f"{call_id}-x{number}"


def owner_call_id(resource_id: str, pbx_id: str) -> str | None:
    """The call a router-made channel or bridge belongs to, or None if the router did not make it."""
    match = _OWNED.match(resource_id)
    if match is None or not resource_id.startswith(f"{pbx_id}-"):
        return None
    return match.group("call")


def position(topic: str, partition: int, offset: int) -> str:
    """The origin of an input read from Kafka."""
    return f"{topic}:{partition}:{offset}"


def deadline_origin(call_id: str, kind: str, attempt: int) -> str:
    return f"dl:{call_id}:{kind}:{attempt}"


def answer_origin(request_id: str) -> str:
    return "rr:" + hashlib.sha256(request_id.encode()).hexdigest()[:24]


def request_id(call_id: str, number: int) -> str:
    """A reservation request: the call's n-th (each request of a call has its own number)."""
    return f"rq:{call_id}:{number}"


def cleanup_id(resource_id: str) -> str:
    """The command that removes a leftover channel or bridge (found in a snapshot, or an agent leg answering
    after its call is gone): one per resource, whichever input asks for it."""
    return f"gc:{resource_id}"


def output_id(origin: str, n: int) -> str:
    return f"{origin}:{n}"


def is_valid_id(value: str) -> bool:
    return 0 < len(value) <= 100 and _ID_CHARS.match(value) is not None
