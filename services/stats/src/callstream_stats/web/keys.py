"""Typed keys of what the application object holds (aiohttp AppKey: typed lookups instead of strings)."""

from __future__ import annotations

from aiohttp import web

from callstream_stats.web.hub import BoardHub
from callstream_stats.web.settings import StatsWebSettings
from callstream_stats.web.store import BoardStore

SETTINGS = web.AppKey("settings", StatsWebSettings)
STORE = web.AppKey("store", BoardStore)
HUB = web.AppKey("hub", BoardHub)
