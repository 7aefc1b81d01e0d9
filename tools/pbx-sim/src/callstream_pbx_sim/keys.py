"""The aiohttp application key under which each PBX's web app holds its Pbx (no imports: no cycles)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .pbx import Pbx

PBX: web.AppKey[Pbx] = web.AppKey("pbx")
