"""The first failure of a chain of deferred effects that must land in order (the router's pending stores, the
changelog hold): kept, logged once, and told to `on_failure` (the worker stops and replays its inputs from the
last commit); `check` raises it from then on, so that nothing is built on top of the hole."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class FirstFailure:
    def __init__(self, consequence: str, on_failure: Callable[[BaseException], object] | None = None) -> None:
        self._consequence = consequence  # what did not happen, for the error `check` raises
        self._on_failure = on_failure
        self.failure: BaseException | None = None

    def check(self) -> None:
        if self.failure is not None:
            raise RuntimeError(f"an input's records were not acknowledged: {self._consequence}") from self.failure

    def task_done(self, task: asyncio.Task[Any]) -> None:
        """A done callback for each deferred effect: its failure, if it is the first, stops everything after."""
        failure = None if task.cancelled() else task.exception()
        if failure is None or self.failure is not None:
            return
        self.failure = failure
        log.error("records not acknowledged: the worker stops (its inputs are replayed from the last commit)",
                  exc_info=failure)
        if self._on_failure is not None:
            self._on_failure(failure)
