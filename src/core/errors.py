"""Errors the core and its ports speak. Adapters translate driver errors into these."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class HexmarketError(Exception):
    """Base of every error the core raises or expects from a port."""


class DomainError(HexmarketError):
    """A request the domain rules refuse. Carries a message key and per-field details."""

    message_key = "errors.common.internal"

    def __init__(
        self, message: str | None = None, details: Mapping[str, str] | None = None
    ) -> None:
        self.message = message or self.message_key
        self.details: dict[str, str] = dict(details or {})
        super().__init__(self.message)


class ValidationError(DomainError):
    """Input breaks a rule (HTTP 400, code 2)."""

    message_key = "errors.common.validation"


class NotFound(DomainError):
    """The addressed entity does not exist (HTTP 404, code 3)."""

    message_key = "errors.common.notFound"


class Conflict(DomainError):
    """The request conflicts with the current state (HTTP 409, code 4)."""

    message_key = "errors.common.conflict"


class InfrastructureError(HexmarketError):
    """A port could not do its job because its server is unreachable or failed."""


class StorageError(InfrastructureError):
    """The database failed or is unreachable. Transient: callers may retry."""


class StorageConflict(StorageError):
    """The database aborted the transaction to break a conflict with a concurrent one (a
    deadlock, SQLSTATE 40P01, or a serialization failure, 40001). Nothing of it was kept;
    running the whole transaction again may succeed."""


class CacheUnavailable(InfrastructureError):
    """The cache server failed or is unreachable. Use cases treat it as a miss."""


class BrokerUnavailable(InfrastructureError):
    """The message broker failed, is unreachable, or did not acknowledge in time."""


class LogStoreError(InfrastructureError):
    """The audit log store failed or is unreachable."""


class MessageRefused(HexmarketError):
    """The broker refused some published messages for what they are (too large, invalid, not
    authorised): publishing them unchanged can never succeed, so this is not an
    ``InfrastructureError`` and is never retried as one. ``refused`` holds their positions in
    the published sequence; every other message of the call was acknowledged."""

    def __init__(self, message: str, refused: Sequence[int]) -> None:
        super().__init__(message)
        self.refused: tuple[int, ...] = tuple(refused)
