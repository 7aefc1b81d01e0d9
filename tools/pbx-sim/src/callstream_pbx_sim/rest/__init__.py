"""The ARI REST resources, one module per api-docs resource family."""

from __future__ import annotations

from aiohttp import web

from . import applications, asterisk, bridges, channels, endpoints, media


def add_routes(app: web.Application) -> None:
    for module in (asterisk, applications, channels, bridges, media, endpoints):
        app.router.add_routes(module.routes)
