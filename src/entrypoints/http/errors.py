"""One table from exceptions to HTTP responses, all in the SPEC's error envelope:
``{"code": int, "message": str, "details": {field: reason}}``. Never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.exceptions import ValidationException as LitestarValidation
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import ExceptionHandlersMap

from core.errors import Conflict, DomainError, InfrastructureError, NotFound, ValidationError
from entrypoints.http.decoding import request_details

log = logging.getLogger(__name__)

CODE_INTERNAL, CODE_VALIDATION, CODE_NOT_FOUND, CODE_CONFLICT = 1, 2, 3, 4

_DOMAIN: dict[type[DomainError], tuple[int, int]] = {
    ValidationError: (HTTP_400_BAD_REQUEST, CODE_VALIDATION),
    NotFound: (HTTP_404_NOT_FOUND, CODE_NOT_FOUND),
    Conflict: (HTTP_409_CONFLICT, CODE_CONFLICT),
}

_HTTP_MESSAGES: dict[int, tuple[int, str]] = {
    400: (CODE_VALIDATION, "errors.common.validation"),
    401: (CODE_VALIDATION, "errors.common.unauthorized"),
    403: (CODE_VALIDATION, "errors.common.forbidden"),
    404: (CODE_NOT_FOUND, "errors.common.notFound"),
    405: (CODE_VALIDATION, "errors.common.methodNotAllowed"),
    409: (CODE_CONFLICT, "errors.common.conflict"),
    413: (CODE_VALIDATION, "errors.common.payloadTooLarge"),
    415: (CODE_VALIDATION, "errors.common.unsupportedMediaType"),
}


class ErrorOut(msgspec.Struct, forbid_unknown_fields=True):
    """The error envelope, for the OpenAPI schema."""

    code: int
    message: str
    details: dict[str, str]


def error(description: str) -> ResponseSpec:
    """An error response of the OpenAPI schema: the envelope, with this description."""
    return ResponseSpec(ErrorOut, description=description, generate_examples=False)


BAD_REQUEST = {400: error("Validation error: `details` names each field and why")}
UNAVAILABLE = {503: error("A server it needs is down (`Retry-After: 1`): try again")}
MUTATION = {
    401: error("Missing or wrong bearer token (only when HEXMARKET_API_TOKEN is set)"),
    403: error("Cross-origin request from an origin not in HEXMARKET_ALLOWED_ORIGINS"),
    413: error("Body over HEXMARKET_MAX_BODY_BYTES"),
    415: error("Body not application/json"),
}
"""The errors every mutating route may answer besides its own."""


def envelope(
    status: int, code: int, message: str, details: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    headers = {"Cache-Control": "no-store"}
    return Response(
        {"code": code, "message": message, "details": details or {}},
        status_code=status,
        headers=headers,
    )


def _domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    status, code = next(
        (v for cls, v in _DOMAIN.items() if isinstance(exc, cls)),
        (HTTP_500_INTERNAL_SERVER_ERROR, CODE_INTERNAL),
    )
    message = "errors.common.notFound" if isinstance(exc, NotFound) else exc.message
    details = {} if isinstance(exc, NotFound) else exc.details
    return envelope(status, code, message, details)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if isinstance(exc, LitestarValidation):
        # a parameter refused before the handler ran: ``decoding`` says which and why
        problems = exc.extra if isinstance(exc.extra, list) else []
        details = request_details(request, problems) or {"request": "is not valid"}
        return envelope(HTTP_400_BAD_REQUEST, CODE_VALIDATION, "errors.common.validation", details)
    status = exc.status_code
    if status >= 500:
        log.error("server error: %s", exc.detail)
        return envelope(status, CODE_INTERNAL, "errors.common.internal")
    code, message = _HTTP_MESSAGES.get(status, (CODE_VALIDATION, "errors.common.badRequest"))
    response = envelope(status, code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _unavailable(_: Request[Any, Any, Any], exc: InfrastructureError) -> Response[dict[str, Any]]:
    # A server we depend on is down: the request may succeed later, so say so (503, not 500),
    # and keep the driver's message in the log, not in the response.
    log.warning("dependency unavailable: %s", exc)
    response = envelope(HTTP_503_SERVICE_UNAVAILABLE, CODE_INTERNAL, "errors.common.unavailable")
    response.headers["Retry-After"] = "1"
    return response


def _internal_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error", exc_info=exc)
    return envelope(HTTP_500_INTERNAL_SERVER_ERROR, CODE_INTERNAL, "errors.common.internal")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: _domain_error,
    HTTPException: _http_error,
    InfrastructureError: _unavailable,
    Exception: _internal_error,
}
