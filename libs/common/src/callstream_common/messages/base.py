"""Base class of message bodies, and the registry that maps a type name to its model and upcasters.

Every body is a frozen pydantic model with a `type` literal, so a topic's messages decode as a pydantic
discriminated union on `type` (see codec.py). A published (type, version) never changes meaning: a change
is a new version (VERSION) with an upcaster from the previous one, registered on the same registry.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from callstream_common.topics import TopicName

JsonObject = dict[str, Any]
Upcaster = Callable[[JsonObject], JsonObject]


class UpcastError(ValueError):
    pass


class MessageRegistry:
    """Message types by name, grouped by topic, with the upcasters of their old versions."""

    def __init__(self) -> None:
        self._models: dict[str, type[Body]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, model: type[Body]) -> None:
        existing = self._models.get(model.TYPE)
        if existing is not None and existing is not model:
            raise TypeError(f"message type {model.TYPE!r} is declared twice: {existing.__name__}, {model.__name__}")
        self._models[model.TYPE] = model

    def model_for(self, type_name: str) -> type[Body] | None:
        return self._models.get(type_name)

    def models(self, topic: TopicName | None = None) -> list[type[Body]]:
        chosen = [m for m in self._models.values() if topic is None or m.TOPIC == topic]
        return sorted(chosen, key=lambda model: (model.TOPIC.value, model.TYPE))

    def upcaster(self, type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function turning a body of `from_version` into one of `from_version + 1`."""

        def decorate(function: Upcaster) -> Upcaster:
            key = (type_name, from_version)
            if key in self._upcasters:
                raise TypeError(f"two upcasters from {type_name} v{from_version}")
            self._upcasters[key] = function
            return function

        return decorate

    def upcast(self, type_name: str, version: int, payload: JsonObject, target: int) -> JsonObject:
        """Bring an old body up to `target`, one registered step at a time."""
        if version > target:
            raise UpcastError(f"{type_name} v{version} is newer than this consumer knows (v{target})")
        while version < target:
            step = self._upcasters.get((type_name, version))
            if step is None:
                raise UpcastError(f"no upcaster from {type_name} v{version}")
            payload = step(dict(payload))
            payload["type"] = type_name
            version += 1
        return payload

    def old_versions(self, type_name: str) -> list[int]:
        return sorted(v for (name, v) in self._upcasters if name == type_name)


CONTRACT = MessageRegistry()
"""The registry of every published message type: the contract in schemas/ is generated from it."""


class Body(BaseModel):
    """A message body. Subclasses declare `type: Literal[...]`, TOPIC and, when above 1, VERSION."""

    # extra="forbid": a producer cannot smuggle fields the contract does not name, e.g. a CMS adding a
    # debtor's balance to a command bound for the PBX side.
    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[TopicName]
    REGISTRY: ClassVar[MessageRegistry] = CONTRACT
    # A field whose value also travels in the record's `hint` header (envelope.H_HINT), for consumers that pass
    # over most records of the type on it without decoding them. Short values only (a Literal or an enum).
    HINT_FIELD: ClassVar[str | None] = None

    def hint(self) -> str | None:
        if self.HINT_FIELD is None:
            return None
        value = getattr(self, self.HINT_FIELD)
        return str(value.value if isinstance(value, Enum) else value)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        type_field = cls.model_fields.get("type")
        if type_field is None:
            return  # an abstract base of a family of messages (CallEvent, AgentEvent, ...)
        if not isinstance(type_field.default, str):
            raise TypeError(f"{cls.__name__} must declare `type: Literal['...'] = '...'`")
        cls.TYPE = type_field.default
        cls.REGISTRY.register(cls)
