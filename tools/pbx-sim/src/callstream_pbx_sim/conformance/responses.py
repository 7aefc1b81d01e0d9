"""Validation of every REST exchange against the operation it maps to in the api-docs.

The rule is the one Asterisk applies to itself: its generated `res_ari_*.c` handlers (built with
AST_DEVMODE) accept a response only if it is a 2xx whose body validates against the operation's
`responseClass`, a 500/501, or one of the operation's documented `errorResponses`; anything else is turned
into a 500 "Response validation failed". On top of that the shapes Asterisk's HTTP layer gives (res_ari.c):

- success: 200 with a JSON body; 204 with an empty body for `void` operations; 201 plus a `Location` header for
  `play` and `record` (`ast_ari_response_created`);
- errors: a JSON object `{"message": "..."}` (`ast_ari_response_error`), except the out-of-memory/allocation
  path, which answers 500 `{"error": "Allocation failed"}` (`ast_ari_response_alloc_failed`, NOTES §g);
- 401 `{"message": "Authentication required"}` with `WWW-Authenticate: Basic realm="..."` when neither Basic
  auth nor `api_key` authenticates, before any routing;
- 404 `{"message": "Resource not found"}` for a path no operation matches, 405 for a known path with a
  method it lacks.
A few statuses that production Asterisk gives without documenting them are listed in KNOWN_UNDOCUMENTED, each
with the C function that answers it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .swagger import ApiDocs, Operation, Validator

ARI_PREFIX = "/ari"

# Statuses Asterisk's production build answers although the operation does not document them (only an
# AST_DEVMODE build rewrites them to 500). Each is read in resource_channels.c; nothing else is excused.
KNOWN_UNDOCUMENTED: dict[tuple[str, int], str] = {
    ("channels.create", 400): "ast_ari_channels_create: 'Endpoint must be specified' / 'Invalid endpoint specified'",
    ("channels.mute", 400): "ast_ari_channels_mute: 'Direction is required' / 'Invalid direction specified'",
    ("channels.unmute", 400): "ast_ari_channels_unmute: 'Direction is required' / 'Invalid direction specified'",
}

# Operations answered with 201 Created and a Location header instead of 200 (resource_channels.c and
# resource_bridges.c call ast_ari_response_created for these).
CREATED: dict[str, str] = {
    "channels.play": "/playbacks/{id}",
    "channels.playWithId": "/playbacks/{id}",
    "channels.record": "/recordings/live/{name}",
    "bridges.play": "/playbacks/{id}",
    "bridges.playWithId": "/playbacks/{id}",
    "bridges.record": "/recordings/live/{name}",
}


@dataclass
class Exchange:
    """One REST request made by the suite and the response it got."""

    flow: str
    method: str
    path: str  # as sent, e.g. "/ari/channels/123/answer" (no query string)
    query: list[tuple[str, str]]
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    authenticated: bool = True
    expect: frozenset[int] | None = None  # what Asterisk answers here, when the flow knows it
    why: str = ""  # what Asterisk does, quoted in the violation when `expect` is not met
    json_body: Any = field(default=None)
    json_error: str | None = None

    def __post_init__(self) -> None:
        if self.body:
            try:
                self.json_body = json.loads(self.body)
            except ValueError as exc:
                self.json_error = str(exc)

    def describe(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.query if k != "api_key")
        return f"{self.method} {self.path}{'?' + query if query else ''} -> {self.status}"


class OperationIndex:
    """Maps an HTTP method and path to its api-docs operation, as Asterisk's router does (literal path
    segments win over `{wildcards}`: /channels/create is `create`, not `get` of a channel named "create")."""

    def __init__(self, docs: ApiDocs) -> None:
        self.docs = docs
        self.by_method: dict[str, list[Operation]] = {}
        for op in docs.operations:
            self.by_method.setdefault(op.method, []).append(op)
        for ops in self.by_method.values():
            ops.sort(key=lambda o: -o.literal_segments)
        self.all_paths = [op for op in docs.operations]

    def match(self, method: str, path: str) -> Operation | None:
        rel = path[len(ARI_PREFIX):] if path.startswith(ARI_PREFIX + "/") else path
        for op in self.by_method.get(method.upper(), []):
            if op.pattern.match(rel):
                return op
        return None

    def path_known(self, path: str) -> bool:
        rel = path[len(ARI_PREFIX):] if path.startswith(ARI_PREFIX + "/") else path
        return any(op.pattern.match(rel) for op in self.all_paths)


def expected_success(op: Operation) -> int:
    if op.key in CREATED:
        return 201
    if op.response_class == "void":
        return 204
    return 200


class ResponseChecker:
    def __init__(self, docs: ApiDocs, validator: Validator) -> None:
        self.index = OperationIndex(docs)
        self.validator = validator

    def check(self, ex: Exchange) -> list[str]:
        """Every way this exchange departs from what Asterisk would have answered."""
        out: list[str] = []
        where = f"[{ex.flow}] {ex.describe()}"
        if ex.expect is not None and ex.status not in ex.expect:
            want = "/".join(str(s) for s in sorted(ex.expect))
            out.append(f"{where}: expected HTTP {want}{' (' + ex.why + ')' if ex.why else ''}; "
                       f"body {_body_text(ex)}")
        if ex.path.startswith(ARI_PREFIX + "/api-docs/"):
            return out  # the api-docs listing is checked by its own flow
        if not ex.authenticated:
            if ex.status != 401:
                out.append(f"{where}: a request without valid credentials must get 401 (res_ari.c authenticate_user)")
            else:
                out.extend(self._error_body(ex, where, exact="Authentication required"))
                challenge = ex.headers.get("www-authenticate", "")
                if not challenge.startswith("Basic realm="):
                    out.append(f"{where}: 401 without a 'WWW-Authenticate: Basic realm=\"...\"' header "
                               f"(got {challenge!r})")
            return out
        op = self.index.match(ex.method, ex.path)
        if op is None:
            if self.index.path_known(ex.path):
                if ex.status != 405:
                    out.append(f"{where}: path exists with other methods only; Asterisk answers 405 'Invalid method'")
            elif ex.status != 404:
                out.append(f"{where}: no api-docs operation matches; Asterisk answers 404 'Resource not found'")
            else:
                out.extend(self._error_body(ex, where))
            return out
        where = f"{where} ({op.key})"
        if 200 <= ex.status <= 299:
            out.extend(self._success(ex, op, where))
        elif ex.status in (500, 501):
            out.extend(self._error_body(ex, where, allow_alloc_failed=True))
        elif ex.status in op.error_codes or (op.key, ex.status) in KNOWN_UNDOCUMENTED:
            out.extend(self._error_body(ex, where))
        else:
            documented = ", ".join(str(c) for c in sorted(op.error_codes)) or "none"
            out.append(f"{where}: status {ex.status} is not documented for {op.method} {op.path} "
                       f"(documented errors: {documented}; Asterisk's own validator turns it into a 500)")
        return out

    def _success(self, ex: Exchange, op: Operation, where: str) -> list[str]:
        out: list[str] = []
        want = expected_success(op)
        if ex.status != want:
            out.append(f"{where}: success must be {want} for this operation, got {ex.status}")
        if op.response_class == "void":
            if ex.body.strip():
                out.append(f"{where}: a void operation answers with an empty body, got {_body_text(ex)}")
            return out
        if op.response_class == "binary":
            if not ex.body:
                out.append(f"{where}: empty binary body")
            if ex.headers.get("content-type", "").startswith("application/json"):
                out.append(f"{where}: binary body served as application/json")
            return out
        if not ex.headers.get("content-type", "").startswith("application/json"):
            out.append(f"{where}: JSON body without 'Content-Type: application/json' "
                       f"(got {ex.headers.get('content-type')!r})")
        if ex.json_error is not None:
            out.append(f"{where}: body is not JSON ({ex.json_error})")
            return out
        out.extend(self.validator.validate(ex.json_body, op.response_class, f"{where} body"))
        if op.key in CREATED:
            location = ex.headers.get("location")
            body = ex.json_body if isinstance(ex.json_body, dict) else {}
            template = CREATED[op.key]
            expected = template.format(id=body.get("id", "?"), name=body.get("name", "?"))
            if location is None:
                out.append(f"{where}: 201 without a Location header (expected {expected!r})")
            elif not location.endswith(expected):
                out.append(f"{where}: Location {location!r} should be {expected!r}")
        return out

    def _error_body(self, ex: Exchange, where: str, exact: str | None = None,
                    allow_alloc_failed: bool = False) -> list[str]:
        body = ex.json_body
        if ex.json_error is not None or not isinstance(body, dict):
            return [f"{where}: error body must be a JSON object {{\"message\": ...}}, got {_body_text(ex)}"]
        if allow_alloc_failed and body == {"error": "Allocation failed"}:
            return []
        if set(body) != {"message"} or not isinstance(body.get("message"), str):
            return [f"{where}: error body must be exactly {{\"message\": \"...\"}} (ast_ari_response_error), "
                    f"got {_body_text(ex)}"]
        if exact is not None and body["message"] != exact:
            return [f"{where}: error message should be {exact!r}, got {body['message']!r}"]
        return []


def _body_text(ex: Exchange, limit: int = 160) -> str:
    text = ex.body.decode("utf-8", "replace") if ex.body else "<empty>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
