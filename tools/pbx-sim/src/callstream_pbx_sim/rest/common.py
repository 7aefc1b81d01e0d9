"""Request parameters and responses the way Asterisk's ARI stubs handle them.

Parameters come from the query string, a form body, and/or a JSON object body; for a name present in several,
the JSON body wins (the generated `*_parse_body()` runs after the query parsing), then the query string,
then the form. Multi-valued parameters (`channel`, `media`, `eventSource`) are comma-separated and may repeat;
in JSON they may also be arrays. `variables` in the body is `{"K": "V"}` or `{"K": {"value": "V",
"report_events": true}}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from ..errors import AriError
from ..keys import PBX

if TYPE_CHECKING:
    from ..pbx import Pbx


_TRUE = ("1", "true", "yes", "y", "t", "on")


class Params:
    """The parameters of one request; see the module docstring for precedence."""

    def __init__(self, query: dict[str, list[str]], body: dict[str, Any] | None) -> None:
        self._query = query
        self.body = body or {}

    @classmethod
    async def of(cls, request: web.Request) -> Params:
        """Parsed once per request (the request log also reads them)."""
        cached = request.get(PARAMS_KEY)
        if isinstance(cached, Params):
            return cached
        query: dict[str, list[str]] = {}
        body: dict[str, Any] | None = None
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                if request.content_type == "application/x-www-form-urlencoded":
                    for k, v in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
                        query.setdefault(k, []).append(v)
                else:
                    try:
                        parsed = orjson.loads(raw)
                    except orjson.JSONDecodeError as exc:
                        raise AriError(400, "Error parsing request body") from exc
                    if isinstance(parsed, dict):
                        body = parsed
        for k in set(request.query.keys()):
            query[k] = list(request.query.getall(k))
        params = cls(query, body)
        request[PARAMS_KEY] = params
        return params

    def text(self, name: str, default: str | None = None) -> str | None:
        if name in self.body:
            v = self.body[name]
            if v is None:
                return default
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, list):
                return ",".join(str(x) for x in v)
            if isinstance(v, (dict,)):
                return default
            return str(v)
        values = self._query.get(name)
        if values:
            return values[-1]
        return default

    def integer(self, name: str, default: int) -> int:
        """atoi() semantics, as the stubs use: leading digits, else 0."""
        v = self.body.get(name) if name in self.body else None
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, (int, float)):
            return int(v)
        s = self.text(name)
        if s is None or s == "":
            return default
        s = s.strip()
        sign = -1 if s.startswith("-") else 1
        digits = ""
        for c in s.lstrip("+-"):
            if not c.isdigit():
                break
            digits += c
        return sign * int(digits) if digits else 0

    def flag(self, name: str, default: bool = False) -> bool:
        v = self.body.get(name) if name in self.body else None
        if isinstance(v, bool):
            return v
        s = self.text(name)
        if s is None:
            return default
        return s.strip().lower() in _TRUE

    def values(self, name: str) -> list[str]:
        if name in self.body:
            v = self.body[name]
            items = v if isinstance(v, list) else [v]
            out: list[str] = []
            for item in items:
                if isinstance(item, str):
                    out.extend(p.strip() for p in item.split(","))
            return [x for x in out if x]
        # The stubs keep the last occurrence of a repeated parameter and split it on commas.
        values = self._query.get(name)
        if not values:
            return []
        return [x.strip() for x in values[-1].split(",") if x.strip()]

    def variables(self, strict_message: str = "Only string values in the 'variables' object allowed"
                  ) -> tuple[tuple[str, str, bool], ...]:
        raw = self.body.get("variables")
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            raise AriError(400, strict_message)
        out = []
        for key, value in raw.items():
            if not key:
                continue
            if isinstance(value, str):
                out.append((key.strip(), value, False))
            elif isinstance(value, dict) and isinstance(value.get("value"), str):
                out.append((key.strip(), value["value"], bool(value.get("report_events", False))))
            else:
                raise AriError(400, strict_message)
        return tuple(out)

    def loggable(self) -> dict[str, Any]:
        """For the request log: every parameter, with the `api_key` credential redacted."""
        out: dict[str, Any] = {}
        for k, values in self._query.items():
            out[k] = "***" if k == "api_key" else (values[-1] if len(values) == 1 else list(values))
        for k, v in self.body.items():
            out[k] = v
        return out


PARAMS_KEY: web.RequestKey[Params] = web.RequestKey("ari_params", Params)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json",
                        headers=headers)


def ok(obj: Any) -> web.Response:
    return json_response(obj)


def created(obj: Any, location: str) -> web.Response:
    return json_response(obj, status=201, headers={"Location": location})


def no_content() -> web.Response:
    return web.Response(status=204)


def pbx_of(request: web.Request) -> Pbx:
    return request.app[PBX]
