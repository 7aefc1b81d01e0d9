"""Errors an ARI operation answers with, in Asterisk's shapes."""

from __future__ import annotations


class AriError(Exception):
    """An HTTP error with Asterisk's `{"message": ...}` body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, str]:
        return {"message": self.message}


class AllocationFailed(AriError):
    """Asterisk's `ast_ari_response_alloc_failed`: 500 with `{"error": "Allocation failed"}` (key `error`)."""

    def __init__(self) -> None:
        super().__init__(500, "Allocation failed")

    def body(self) -> dict[str, str]:
        return {"error": "Allocation failed"}

