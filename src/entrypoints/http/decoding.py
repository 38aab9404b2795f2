"""Request decoding, in one place: every problem with a request's body or query string becomes
the project's own ``ValidationError``, with ``details`` naming each field as the client spells
it and a reason in the project's words.

The reasons come from structured information, never from a library's message text: a body is
decoded to a plain JSON value and each field checked against the constraints its
``msgspec.Struct`` declares (``msgspec.inspect``: the same constraints the OpenAPI schema
states); a query parameter Litestar refused is checked again against the constraints its route
declares (``QueryParameter(ge=..., le=..., pattern=...)``), from the value the client sent.

Bodies reach the handlers through ``JsonBody[T]``, a Litestar DTO: Litestar hands the body's
bytes to ``decode_body`` and the handler receives a ``T``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator, Mapping
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args, get_origin

import msgspec
from litestar import Request
from litestar.dto import AbstractDTO
from litestar.dto.data_structures import DTOFieldDefinition
from litestar.openapi.spec import Reference, Schema
from litestar.params import ParameterKwarg, QueryParameter
from litestar.typing import FieldDefinition
from litestar.utils.scope.state import ScopeState

from core.catalog.rules import DESCRIPTION_PATTERN, NAME_PATTERN, clean_description, clean_name
from core.errors import ValidationError

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

S = TypeVar("S", bound=msgspec.Struct)

UNKNOWN_FIELD = "unknown field"
REQUIRED = "is required"
BODY_REQUIRED = "a JSON object is required"
NOT_AN_OBJECT = "must be a JSON object"
NOT_TEXT = "must be text"
NOT_A_WHOLE_NUMBER = "must be a whole number"
NOT_A_DATE_TIME = "must be an RFC 3339 date-time"
NOT_A_PAGE_CURSOR = "must be a meta.next of an earlier page"


def _rule_reason(rule: Callable[[str], str]) -> Callable[[str], str | None]:
    def reason(value: str) -> str | None:
        try:
            rule(value)
        except ValidationError as exc:
            return next(iter(exc.details.values()), None)
        return None

    return reason


PATTERN_REASONS: Mapping[str, Callable[[str], str | None]] = {
    NAME_PATTERN: _rule_reason(clean_name),
    DESCRIPTION_PATTERN: _rule_reason(clean_description),
}
"""Who words the reason when a string does not match a declared ``pattern``: the core's rule
for that value, so the HTTP answer says what the rule says."""

PARAMETER_REASONS: Mapping[str, str] = {"before": NOT_A_PAGE_CURSOR}
"""Query parameters whose every refused value has one reason (``before``: a ``meta.next``)."""


# --- one value against its declared constraints ----------------------------------------------


def whole_number(value: object, ge: int | None = None, le: int | None = None) -> tuple[int, str]:
    """``(the integer, "")`` or ``(0, reason)``. A JSON Schema integer: ``2`` and ``2.0`` are
    integers, ``2.5``, ``"2"`` and ``true`` are not."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return 0, NOT_A_WHOLE_NUMBER
    if ge is not None and value < ge:
        return 0, f"{NOT_A_WHOLE_NUMBER}, {ge} or more"
    if le is not None and value > le:
        return 0, f"{NOT_A_WHOLE_NUMBER}, at most {le}"
    return value, ""


def text(
    value: object,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
) -> str:
    """``""`` if ``value`` is a string within the constraints, else the reason."""
    if not isinstance(value, str):
        return NOT_TEXT
    worded = PATTERN_REASONS.get(pattern or "")
    if min_length is not None and len(value) < min_length:
        return (worded and worded(value)) or (
            "must not be empty" if min_length == 1 else f"must be at least {min_length} characters"
        )
    if max_length is not None and len(value) > max_length:
        return f"must be at most {max_length} characters"
    if pattern is not None and _compiled(pattern).search(value) is None:
        return (worded and worded(value)) or "is not in the expected form"
    return ""


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _field_value(kind: msgspec.inspect.Type, value: object) -> tuple[object, str]:
    if isinstance(kind, msgspec.inspect.Metadata):
        kind = kind.type
    if isinstance(kind, msgspec.inspect.IntType):
        return whole_number(value, kind.ge, kind.le)
    if isinstance(kind, msgspec.inspect.StrType):
        return value, text(value, kind.min_length, kind.max_length, kind.pattern)
    raise TypeError(f"no decoding rule for {kind!r}")  # a body type this module cannot check


# --- bodies ----------------------------------------------------------------------------------


def _json(raw: bytes) -> object:
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        pass
    try:  # only to say where: the standard decoder reports the position as numbers
        json.loads(raw)
    except RecursionError:
        reason = "malformed JSON: nested too deeply"
    except ValueError as exc:
        position = getattr(exc, "lineno", None), getattr(exc, "colno", None)
        reason = "malformed JSON" + (
            f" at line {position[0]}, column {position[1]}" if None not in position else ""
        )
    else:
        reason = "malformed JSON"
    raise ValidationError(details={"body": reason})


@cache
def _fields(body_type: type[msgspec.Struct]) -> tuple[msgspec.inspect.Field, ...]:
    info = msgspec.inspect.type_info(body_type)
    assert isinstance(info, msgspec.inspect.StructType)
    return info.fields


def decode_body(raw: bytes, body_type: type[S]) -> S:
    """``raw`` as a ``body_type``, or ``ValidationError``: every unknown field named (and then
    nothing else), else every missing or invalid field named with its reason."""
    document = _json(raw)
    if not isinstance(document, dict):
        raise ValidationError(details={"body": NOT_AN_OBJECT})
    fields = _fields(body_type)
    known = {field.encode_name for field in fields}
    unknown = {str(key): UNKNOWN_FIELD for key in document if key not in known}
    if unknown:
        raise ValidationError(details=unknown)
    details: dict[str, str] = {}
    values: dict[str, object] = {}
    for field in fields:
        if field.encode_name not in document:
            if field.required:
                details[field.encode_name] = REQUIRED
            continue
        value, reason = _field_value(field.type, document[field.encode_name])
        if reason:
            details[field.encode_name] = reason
        else:
            values[field.name] = value
    if details:
        raise ValidationError(details=details)
    return body_type(**values)


class JsonBody(AbstractDTO[S]):
    """``dto=JsonBody[GoodBody]`` on a handler taking ``data: JSONBody[GoodBody]``: Litestar
    passes the body's bytes to ``decode_body``, and the OpenAPI schema describes ``GoodBody``
    exactly as it would without the DTO."""

    def decode_bytes(self, value: bytes) -> Any:
        return decode_body(value, self.model_type)

    def decode_builtins(self, value: dict[str, Any]) -> Any:
        return decode_body(msgspec.json.encode(value), self.model_type)

    @classmethod
    def create_for_field_definition(
        cls, field_definition: FieldDefinition, handler_id: str, backend_cls: Any = None
    ) -> None:
        return None  # no transfer model: decode_bytes builds the Struct itself

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: SchemaCreator
    ) -> Reference | Schema:
        return schema_creator.for_field_definition(field_definition)

    @classmethod
    def generate_field_definitions(
        cls, model_type: type[Any]
    ) -> Generator[DTOFieldDefinition, None, None]:
        yield from ()

    @classmethod
    def detect_nested_field(cls, field_definition: FieldDefinition) -> bool:
        return False


# --- query parameters that Litestar refused ---------------------------------------------------


def _parameter_reason(wire: str, field: FieldDefinition, raw: str | None) -> str:
    """Why ``raw`` (``None``: absent) is not a value of the declared parameter ``field``."""
    if raw is None:
        return REQUIRED
    if wire in PARAMETER_REASONS:
        return PARAMETER_REASONS[wire]
    kwarg = field.kwarg_definition
    constraints = kwarg if isinstance(kwarg, ParameterKwarg) else ParameterKwarg()
    kind = (
        next((t for t in field.inner_types if not t.is_none_type), field)
        if (field.is_optional)
        else field
    )
    if kind.is_subclass_of(bool):
        return "must be true or false"
    if kind.is_subclass_of(int):
        try:
            number: object = int(raw)
        except ValueError:
            number = raw
        return whole_number(number, _int(constraints.ge), _int(constraints.le))[1] or (
            NOT_A_WHOLE_NUMBER
        )
    if kind.is_subclass_of(datetime):
        return NOT_A_DATE_TIME
    choices = _choices(kind.annotation)
    if choices:
        return "must be one of " + ", ".join(choices)
    reason = text(raw, constraints.min_length, constraints.max_length, constraints.pattern)
    return reason or "is not valid"


def _int(bound: float | None) -> int | None:
    return None if bound is None else int(bound)


def _choices(annotation: Any) -> list[str]:
    """The values of a ``Literal`` (or a list of one): what a parameter may be."""
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation) or (None,)
    if get_origin(annotation) is Literal:
        return [str(choice) for choice in get_args(annotation)]
    return []


def request_details(request: Request[Any, Any, Any], problems: list[Any]) -> dict[str, str]:
    """``details`` for a request Litestar refused before its handler ran: each parameter it
    names (``problems``: Litestar's ``ValidationException.extra``, read for the parameter's
    ``key`` only), and each required parameter the request lacks, with the reason checked
    here; an empty body where the route wants one."""
    handler = request.route_handler
    parameters = _declared(handler)
    details: dict[str, str] = {}
    query = request.query_params
    keys = [str(p["key"]) for p in problems if isinstance(p, dict) and p.get("key")]
    for key in keys:
        name = key.split(".", 1)[0].split("[", 1)[0]
        field = parameters.get(name)
        if name == "data" or field is None:
            continue
        wire = _wire_name(name, field)
        values = query.getall(wire, [])
        details[wire] = _parameter_reason(wire, field, values[-1] if values else None)
    for name, field in parameters.items():
        if isinstance(field.kwarg_definition, QueryParameter):
            wire = _wire_name(name, field)
            if _required(field) and wire not in query and wire not in details:
                details[wire] = REQUIRED
    data = handler.parsed_data_field
    if data is not None and not details:
        body = ScopeState.from_scope(request.scope).body
        if not isinstance(body, bytes) or not body:
            details["body"] = BODY_REQUIRED
    return details


def _declared(handler: Any) -> dict[str, FieldDefinition]:
    """The parameters of the handler and of the dependencies it takes, theirs included (the
    ``id`` of ``addressed_good``)."""
    available = handler.resolve_dependencies()
    parameters: dict[str, FieldDefinition] = {}
    pending = [handler.parsed_fn_signature.parameters]
    while pending:
        for name, field in pending.pop().items():
            if name in parameters:
                continue
            parameters[name] = field
            signature = getattr(available.get(name), "parsed_fn_signature", None)
            if signature is not None:
                pending.append(signature.parameters)
    return parameters


def _wire_name(name: str, field: FieldDefinition) -> str:
    kwarg = field.kwarg_definition
    if isinstance(kwarg, ParameterKwarg) and kwarg.name:
        return kwarg.name
    return name


def _required(field: FieldDefinition) -> bool:
    return not field.is_optional and not field.has_default
