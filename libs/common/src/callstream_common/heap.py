"""The start-up heap, kept out of Python's full garbage collections.

A full (generation 2) collection walks every tracked object, and most of a service's objects are made once at
start-up and live as long as the process (modules, pydantic schemas, faust's app, the configuration): walking
them finds nothing, and on this project's 2-core machine it stopped agent-state for 141 ms 17 s into a
bench-routing run, the gateways for 35-120 ms, the router for up to 97 ms (a `gc.callbacks` probe, docs/acd.md
"Session 7"). After `freeze_startup_heap` the collector skips them: in the same bench with it, no process had a
full collection during the load.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect what start-up left as garbage, then move every surviving object to the permanent generation.
    Call once, when the service is up and before its work begins."""
    gc.collect()
    gc.freeze()
