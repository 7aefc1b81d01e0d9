"""The board list at `/`: plain server-rendered HTML, so it works on any TV browser, scripts or not."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

_KIND_ORDER = ("tenant", "department", "floor", "queue")
_KIND_TITLES = {"tenant": "Whole centre", "department": "Departments", "floor": "Floors", "queue": "Queues"}


def index_page(tenant: str, index: dict[str, str]) -> str:
    """`index`: scope (`kind/id`) -> title, as in the boards index the aggregator maintains."""
    by_kind: dict[str, list[tuple[str, str]]] = {}
    for scope, title in index.items():
        kind, _, ident = scope.partition("/")
        by_kind.setdefault(kind, []).append((ident, title))
    sections = []
    for kind in sorted(by_kind, key=lambda k: (_KIND_ORDER.index(k) if k in _KIND_ORDER else 99, k)):
        items = "".join(
            f'<li><a href="/board/{quote(kind)}/{quote(ident)}">{escape(title or ident)}</a>'
            f' <span class="scope">{escape(kind)}/{escape(ident)}</span></li>'
            for ident, title in sorted(by_kind[kind], key=lambda item: (item[1].casefold(), item[0]))
        )
        sections.append(f"<section><h2>{escape(_KIND_TITLES.get(kind, kind))}</h2><ul>{items}</ul></section>")
    body = "".join(sections) or '<p class="empty">No boards yet: the statistics service has not published any.</p>'
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Wallboards · {escape(tenant)}</title>"
        '<link rel="stylesheet" href="/static/index.css"></head>'
        f"<body><h1>Wallboards <span class=\"scope\">{escape(tenant)}</span></h1>{body}"
        '<p class="help">Thresholds and colours: add query parameters to a board\'s address, e.g. '
        "<code>?sl_target=90&amp;abandon_warn=3</code> (see docs/wallboard.md).</p></body></html>"
    )
