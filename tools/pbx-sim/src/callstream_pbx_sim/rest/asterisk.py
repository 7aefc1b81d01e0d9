"""`/ari/asterisk` (asterisk.json) and the api-docs listing (`/ari/api-docs/...`).

Asterisk serves its api-docs from its rest-api directory and rewrites each file's `basePath` to
`http://<Host header>/ari` (res_ari.c ast_ari_get_docs), which is what lets swagger-driven clients (aioari,
asyncari) send their requests back to the server they loaded the docs from.
"""

from __future__ import annotations

import platform
from pathlib import Path

import orjson
from aiohttp import web

from ..errors import AriError
from .common import Params, no_content, ok, pbx_of

routes = web.RouteTableDef()


@routes.get("/ari/asterisk/info")
async def info(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    started = pbx.clock.timestamp(pbx.started_wall)
    sections = {
        "build": {
            "os": "Linux", "kernel": platform.release() or "6.1.0", "options": "BUILD_NATIVE, OPTIONAL_API",
            "machine": platform.machine() or "x86_64", "date": "2026-06-25 00:00:00 UTC", "user": "builder",
        },
        "system": {"version": pbx.site.asterisk_version, "entity_id": pbx.entity_id},
        "config": {
            "name": pbx.name, "default_language": "en", "max_channels": 0, "max_open_files": 1048576,
            "max_load": 0.0, "setid": {"user": "asterisk", "group": "asterisk"},
        },
        "status": {"startup_time": started, "last_reload_time": started},
    }
    only = p.values("only")
    if only:
        sections = {k: v for k, v in sections.items() if k in only}
    return ok(sections)


@routes.get("/ari/asterisk/ping")
async def ping(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    return ok({"asterisk_id": pbx.entity_id, "ping": "pong", "timestamp": pbx.clock.timestamp()})


@routes.get("/ari/asterisk/variable")
async def get_global_var(request: web.Request) -> web.Response:
    p = await Params.of(request)
    name = p.text("variable")
    if not name:
        raise AriError(400, "Variable name is required")
    return ok({"value": pbx_of(request).global_vars.get(name, "")})


@routes.post("/ari/asterisk/variable")
async def set_global_var(request: web.Request) -> web.Response:
    pbx = pbx_of(request)
    p = await Params.of(request)
    name = p.text("variable")
    if not name:
        raise AriError(400, "Variable name is required")
    value = p.text("value", "") or ""
    pbx.global_vars[name] = value
    pbx.events.channel_varset(None, name, value)
    return no_content()


@routes.get("/ari/api-docs/{file}")
async def api_docs(request: web.Request) -> web.Response:
    folder: Path | None = pbx_of(request).site.api_docs
    name = request.match_info["file"]
    if folder is None or "/" in name or name.startswith(".") or not name.endswith(".json"):
        raise AriError(404, "Resource not found")
    path = folder / name
    if not path.is_file():
        raise AriError(404, "Resource not found")
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise AriError(500, "Yikes! Cannot parse resource") from exc
    if isinstance(doc, dict) and "basePath" in doc:
        host = request.headers.get("Host")
        if host:
            doc["basePath"] = f"http://{host}/ari"
        else:
            del doc["basePath"]
    return ok(doc)
