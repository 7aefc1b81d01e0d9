"""Asterisk's api-docs (Swagger 1.1/1.2) loaded at run time, and a strict validator for their models.

The api-docs are Asterisk's own contract for every REST body and every WebSocket message, so they are read
from the folder given on the command line (never copied into this repository). The validator follows
Swagger 1.2 as Asterisk uses it:

- primitive types `string`, `boolean`, `int`, `long`, `double`, `Date`, `object`, `binary`, `void`;
- containers `List[T]`;
- references to models, with `required` fields and `allowableValues` (LIST and RANGE);
- polymorphism through `subTypes` and a `discriminator` (`Message` -> `Event` -> `StasisStart`, ...): an
  object validates against the model named by its discriminator and every ancestor's fields;
- unknown fields are reported, because Asterisk's JSON never carries fields outside its models, with one
  documented exception: `max_channels` on `Endpoint` (NOTES §g); likewise values outside `allowableValues`,
  except `"paused"` for `Playback.state`, which Asterisk's own res_stasis_playback.c reports.

Dates must have Asterisk's exact shape (`2025-04-22T17:26:05.072+0200`: milliseconds, no colon in the
offset), which is stricter than the api-docs themselves but is what every Asterisk emits (NOTES §a).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Asterisk formats every Date with "%Y-%m-%dT%H:%M:%S.%3q%z" (NOTES §a).
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{4}$")

PRIMITIVES = frozenset({"string", "boolean", "int", "long", "double", "Date", "object", "binary", "void"})

# Fields Asterisk sends although the model lacks them (NOTES §g). Nothing else is tolerated.
DOCUMENTED_EXTRA_FIELDS: Mapping[str, frozenset[str]] = {"Endpoint": frozenset({"max_channels"})}
# Values Asterisk sends although the model's allowableValues lack them: a paused playback is reported as
# "paused" (res_stasis_playback.c state_to_string), which Playback.state does not list.
DOCUMENTED_EXTRA_VALUES: Mapping[tuple[str, str], frozenset[str]] = {("Playback", "state"): frozenset({"paused"})}

_LIST_RE = re.compile(r"^List\[(.+)\]$")
_PATH_PARAM_RE = re.compile(r"\{([^}/]+)\}")


@dataclass(frozen=True)
class Operation:
    """One REST operation of the api-docs (a path and an HTTP method)."""

    resource: str  # "channels"
    path: str  # "/channels/{channelId}/answer", relative to basePath
    method: str  # "POST"
    nickname: str  # "answer"
    response_class: str  # "void", "Channel", "List[Bridge]", "binary"
    error_codes: frozenset[int]
    parameters: tuple[Mapping[str, Any], ...]
    pattern: re.Pattern[str] = field(compare=False)
    literal_segments: int = 0

    @property
    def key(self) -> str:
        return f"{self.resource}.{self.nickname}"

    def required_parameters(self) -> list[str]:
        return [str(p["name"]) for p in self.parameters if p.get("required")]


class ApiDocs:
    """Every model and every operation of an api-docs folder (`resources.json` plus the resource files)."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        listing_path = self.folder / "resources.json"
        if not listing_path.is_file():
            raise FileNotFoundError(f"{listing_path} not found: --api-docs must point at Asterisk's api-docs folder")
        self.listing: dict[str, Any] = json.loads(listing_path.read_text())
        self.api_version: str = str(self.listing.get("apiVersion", ""))
        self.resource_files: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.model_origin: dict[str, str] = {}
        self.operations: list[Operation] = []
        for api in self.listing.get("apis", []):
            # "/api-docs/channels.{format}" -> channels.json
            name = str(api["path"]).rsplit("/", 1)[-1].replace(".{format}", "")
            doc = json.loads((self.folder / f"{name}.json").read_text())
            self.resource_files[name] = doc
            for model_name, model in doc.get("models", {}).items():
                if model_name in self.models and self.models[model_name] != model:
                    raise ValueError(f"model {model_name} defined differently in {name} and {self.model_origin[model_name]}")
                self.models[model_name] = model
                self.model_origin[model_name] = name
            for api_entry in doc.get("apis", []):
                path = str(api_entry["path"])
                for op in api_entry.get("operations", []):
                    self.operations.append(_operation(name, path, op))
        self.parent: dict[str, str] = {}
        for model_name, model in self.models.items():
            for sub in model.get("subTypes", []):
                self.parent[sub] = model_name

    # --- model hierarchy -------------------------------------------------------------------------------
    def ancestors(self, model_name: str) -> list[str]:
        """The model and its ancestors, most derived first."""
        chain = [model_name]
        while chain[-1] in self.parent:
            chain.append(self.parent[chain[-1]])
        return chain

    def is_subtype(self, model_name: str, base: str) -> bool:
        return base in self.ancestors(model_name)

    def descendants(self, model_name: str) -> Iterator[str]:
        for sub in self.models.get(model_name, {}).get("subTypes", []):
            yield sub
            yield from self.descendants(sub)

    def properties(self, model_name: str) -> dict[str, dict[str, Any]]:
        """Fields of a model including every ancestor's (the ancestor's definition wins on a clash)."""
        merged: dict[str, dict[str, Any]] = {}
        for name in self.ancestors(model_name):
            for prop, spec in self.models[name].get("properties", {}).items():
                merged.setdefault(prop, spec)
        return merged

    def discriminator(self, model_name: str) -> str | None:
        for name in self.ancestors(model_name):
            disc = self.models[name].get("discriminator")
            if disc:
                return str(disc)
        return None

    def event_types(self) -> list[str]:
        """Every concrete event type: the leaves under `Event`."""
        return sorted(name for name in self.descendants("Event") if not self.models[name].get("subTypes"))


def _operation(resource: str, path: str, op: Mapping[str, Any]) -> Operation:
    regex = "^" + _PATH_PARAM_RE.sub(r"(?P<\1>[^/]+)", re.escape(path).replace(r"\{", "{").replace(r"\}", "}")) + "$"
    literal = sum(1 for seg in path.strip("/").split("/") if not seg.startswith("{"))
    return Operation(
        resource=resource,
        path=path,
        method=str(op["httpMethod"]).upper(),
        nickname=str(op["nickname"]),
        response_class=str(op.get("responseClass", "void")),
        # One entry in Asterisk's channels.json spells its codes as strings ("404"); they mean the same.
        error_codes=frozenset(int(e["code"]) for e in op.get("errorResponses", [])),
        parameters=tuple(op.get("parameters", [])),
        pattern=re.compile(regex),
        literal_segments=literal,
    )


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Validator:
    """Validates JSON values against the api-docs models; every problem becomes one readable line."""

    def __init__(self, docs: ApiDocs, extra_fields: Mapping[str, frozenset[str]] = DOCUMENTED_EXTRA_FIELDS,
                 extra_values: Mapping[tuple[str, str], frozenset[str]] = DOCUMENTED_EXTRA_VALUES) -> None:
        self.docs = docs
        self.extra_fields = extra_fields
        self.extra_values = extra_values

    def validate_message(self, message: Any, where: str = "message") -> list[str]:
        """A WebSocket message: its `type` names a model under `Message`, whose chain of fields applies."""
        if not isinstance(message, dict):
            return [f"{where}: expected a JSON object, got {_short(message)}"]
        kind = message.get("type")
        if not isinstance(kind, str):
            return [f"{where}: missing or non-string discriminator 'type'"]
        if kind not in self.docs.models or not self.docs.is_subtype(kind, "Message") or kind == "Message":
            return [f"{where}: type {kind!r} is not a Message subtype in the api-docs"]
        if self.docs.models[kind].get("subTypes"):
            return [f"{where}: type {kind!r} is abstract (it has subTypes); a concrete event type is required"]
        return self.validate(message, kind, f"{where}<{kind}>")

    def validate(self, value: Any, type_name: str, where: str = "$") -> list[str]:
        problems: list[str] = []
        self._check(value, type_name, where, problems)
        return problems

    # --- internals --------------------------------------------------------------------------------------
    def _check(self, value: Any, type_name: str, where: str, out: list[str]) -> None:
        list_match = _LIST_RE.match(type_name)
        if list_match:
            if not isinstance(value, list):
                out.append(f"{where}: expected {type_name} (a JSON array), got {_short(value)}")
                return
            for index, item in enumerate(value):
                self._check(item, list_match.group(1), f"{where}[{index}]", out)
            return
        if type_name in PRIMITIVES:
            self._check_primitive(value, type_name, where, out)
            return
        if type_name not in self.docs.models:
            out.append(f"{where}: the api-docs declare unknown type {type_name!r}")
            return
        self._check_model(value, type_name, where, out)

    def _check_primitive(self, value: Any, type_name: str, where: str, out: list[str]) -> None:
        ok: bool
        if type_name == "string":
            ok = isinstance(value, str)
        elif type_name == "boolean":
            ok = isinstance(value, bool)
        elif type_name in ("int", "long"):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif type_name == "double":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif type_name == "object":
            ok = isinstance(value, dict)
        elif type_name == "Date":
            if isinstance(value, str) and not DATE_RE.match(value):
                out.append(f"{where}: Date {value!r} is not in Asterisk's format YYYY-MM-DDTHH:MM:SS.mmm+hhmm")
                return
            ok = isinstance(value, str)
        elif type_name == "void":
            ok = value is None
        else:  # binary: only meaningful for whole response bodies, handled by the response checker
            ok = True
        if not ok:
            out.append(f"{where}: expected {type_name}, got {type(value).__name__} {_short(value)}")

    def _check_model(self, value: Any, model_name: str, where: str, out: list[str]) -> None:
        if not isinstance(value, dict):
            out.append(f"{where}: expected a {model_name} object, got {_short(value)}")
            return
        # A polymorphic model: the discriminator picks the concrete subtype.
        disc = self.docs.discriminator(model_name)
        if disc and disc in value and isinstance(value[disc], str) and value[disc] != model_name:
            concrete = value[disc]
            if concrete in self.docs.models and self.docs.is_subtype(concrete, model_name):
                model_name = concrete
            elif self.docs.models[model_name].get("subTypes"):
                out.append(f"{where}: {disc}={concrete!r} is not a subtype of {model_name}")
                return
        props = self.docs.properties(model_name)
        for prop, spec in props.items():
            if prop not in value:
                if spec.get("required") is True:
                    out.append(f"{where}: missing required field {prop!r} of {model_name}")
                continue
            sub_where = f"{where}.{prop}"
            prop_type = str(spec.get("type", "string"))
            before = len(out)
            self._check(value[prop], prop_type, sub_where, out)
            if (len(out) == before and "allowableValues" in spec
                    and value[prop] not in self.extra_values.get((model_name, prop), frozenset())):
                self._check_allowable(value[prop], spec["allowableValues"], sub_where, out)
        allowed_extra = self.extra_fields.get(model_name, frozenset())
        for key in value:
            if key not in props and key not in allowed_extra:
                out.append(f"{where}: unknown field {key!r} (not in model {model_name}) = {_short(value[key], 40)}")

    @staticmethod
    def _check_allowable(value: Any, allowable: Mapping[str, Any], where: str, out: list[str]) -> None:
        kind = str(allowable.get("valueType", "")).upper()
        if kind == "LIST":
            values = list(allowable.get("values", []))
            if value not in values:
                out.append(f"{where}: {_short(value)} is not one of the allowableValues {values}")
        elif kind == "RANGE":
            low, high = allowable.get("min"), allowable.get("max")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if low is not None and value < float(low):
                    out.append(f"{where}: {value} is below the allowed minimum {low}")
                if high is not None and value > float(high):
                    out.append(f"{where}: {value} is above the allowed maximum {high}")
