"""Where an input was read: its causation id and the ids of the messages it produces."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int

    @property
    def causation(self) -> str:
        """`topic/partition/offset`: the causation id of everything the input produced."""
        return f"{self.topic}/{self.partition}/{self.offset}"

    def message_id(self, n: int) -> str:
        """The id of the input's n-th output: the same on every re-processing, so consumers drop repeats."""
        return f"{self.causation}/{n}"
