"""The gateway's ARI REST client: requests with timeouts, the entity id, and resync snapshots."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from callstream_ari_gateway.operations import AriRequest


@dataclass(frozen=True)
class AriResponse:
    status: int
    body: Any  # parsed JSON, or None for 204 and non-JSON bodies

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class AriUnavailable(Exception):
    """The PBX did not answer (connection refused, reset, or timed out)."""


class AriRest:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, timeout_s: float) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def call(self, request: AriRequest) -> AriResponse:
        url = f"{self._base}{request.path}"
        try:
            async with self._session.request(
                request.method, url, params=request.params or None,
                data=orjson.dumps(request.body) if request.body is not None else None,
                headers={"Content-Type": "application/json"} if request.body is not None else None,
                timeout=self._timeout,
            ) as response:
                raw = await response.read()
                body: Any = None
                if raw and response.content_type == "application/json":
                    body = orjson.loads(raw)
                elif raw:
                    body = raw.decode("utf-8", "replace")[:2000]
                return AriResponse(response.status, body)
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
            raise AriUnavailable(f"{request.method} {request.path}: {exc.__class__.__name__}") from exc

    async def get(self, path: str, **params: str) -> Any:
        response = await self.call(AriRequest("GET", path, dict(params)))
        if not response.ok:
            raise AriUnavailable(f"GET {path}: HTTP {response.status} {response.body!r}")
        return response.body

    async def entity(self) -> tuple[str, str | None]:
        """(entity id, Asterisk version) from GET /asterisk/info."""
        info = await self.get("/asterisk/info")
        system = info.get("system") or {}
        return str(system.get("entity_id") or ""), system.get("version")

    async def snapshot(self, app: str) -> tuple[list[Any], list[Any], list[Any], dict[str, Any]]:
        """Channels, bridges, endpoints and the app's own view, as they are now, for consumers to repair
        their state (calls that ended while the WebSocket was down are missing from them)."""
        channels, bridges, endpoints, application = await asyncio.gather(
            self.get("/channels"), self.get("/bridges"), self.get("/endpoints"), self.get(f"/applications/{app}"))
        return list(channels), list(bridges), list(endpoints), dict(application)

    async def set_event_filter(self, app: str, disallowed: list[str]) -> bool:
        """Ask ARI not to send these event types (Asterisk 13.26/16.3+); False when it cannot."""
        response = await self.call(AriRequest(
            "PUT", f"/applications/{app}/eventFilter", body={"disallowed": [{"type": t} for t in disallowed]}))
        return response.ok
