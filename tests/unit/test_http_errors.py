"""The one exception table: every failure becomes the SPEC envelope, never a trace."""

from __future__ import annotations

from litestar import Litestar, get
from litestar.testing import TestClient

from core.errors import CacheUnavailable, NotFound, StorageError, ValidationError
from entrypoints.http.errors import EXCEPTION_HANDLERS


@get("/storage-down")
async def storage_down() -> None:
    raise StorageError("connection refused to 127.0.0.1:5432 (secret detail)")


@get("/cache-down")
async def cache_down() -> None:
    raise CacheUnavailable("redis down")


@get("/missing")
async def missing() -> None:
    raise NotFound("whatever", {"id": "gone"})


@get("/invalid")
async def invalid() -> None:
    raise ValidationError(details={"name": "required"})


@get("/bug")
async def bug() -> None:
    raise RuntimeError("internal detail")


def _client() -> TestClient[Litestar]:
    app = Litestar(
        [storage_down, cache_down, missing, invalid, bug], exception_handlers=EXCEPTION_HANDLERS
    )
    return TestClient(app)


def test_a_dependency_outage_is_503_with_the_envelope_and_no_driver_detail() -> None:
    with _client() as client:
        for path in ("/storage-down", "/cache-down"):
            response = client.get(path)
            assert response.status_code == 503
            assert response.json() == {
                "code": 1,
                "message": "errors.common.unavailable",
                "details": {},
            }
            assert "secret" not in response.text
            assert response.headers["retry-after"] == "1"


def test_not_found_has_the_fixed_message_and_empty_details() -> None:
    with _client() as client:
        response = client.get("/missing")
    assert response.status_code == 404
    assert response.json() == {"code": 3, "message": "errors.common.notFound", "details": {}}


def test_validation_names_the_field() -> None:
    with _client() as client:
        response = client.get("/invalid")
    assert response.status_code == 400
    assert response.json() == {
        "code": 2,
        "message": "errors.common.validation",
        "details": {"name": "required"},
    }


def test_an_unexpected_error_is_a_bare_500_envelope() -> None:
    with _client() as client:
        response = client.get("/bug")
    assert response.status_code == 500
    assert response.json() == {"code": 1, "message": "errors.common.internal", "details": {}}
    assert "internal detail" not in response.text


def test_an_unknown_route_is_the_404_envelope() -> None:
    with _client() as client:
        response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.json()["code"] == 3
