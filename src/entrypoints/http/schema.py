"""The OpenAPI document at ``/schema/openapi.json``, made to say what the handlers do where
Litestar's generator cannot express it, and Swagger UI served from the package.

What Litestar cannot say, and :func:`refine` adds to the document it generated (once, at start):

- each dialect's project parameter is required on its own paths (``projectId`` on
  ``/good...``, ``campaignId`` on ``/item...``; the handlers also take the other name, an
  undocumented courtesy);
- an optional query integer is an integer, not ``integer | null``;
- the request bodies refuse unknown fields (``additionalProperties: false``);
- ``order_uid`` is 1..64 characters of ``[A-Za-z0-9_-]``;
- the mutating routes need the bearer token when ``HEXMARKET_API_TOKEN`` is set
  (``securitySchemes.bearer``; without a token the document names the scheme and requires it
  nowhere, as the server does).

Swagger UI's scripts and styles come from the ``swagger-ui-bundle-v2`` package (Swagger UI
5.x, Apache-2.0), served under ``/schema/swagger/assets/``, with its start-up script there too
(no inline script: the Content-Security-Policy allows none). Nothing loads from another host.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import swagger_ui_bundle
from litestar import Request, Response, Router
from litestar.enums import MediaType
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from core.orders.model import ORDER_UID_PATTERN
from entrypoints.http.auth import MUTATING
from entrypoints.http.errors import CODE_NOT_FOUND, envelope

EXAMPLES: dict[str, Any] = {
    "projectId": 1,
    "campaignId": 1,
    "id": 1,
    "limit": 10,
    "offset": 1,
    "order_uid": "b563feb7b2b84b6test",
}
"""An example per parameter: the seeded project, its first good, the sample order."""
BODY_EXAMPLES: dict[str, dict[str, Any]] = {
    "GoodBody": {"name": "Green tea", "description": "loose leaf"},
    "ProjectBody": {"name": "Second"},
    "ReprioritizeBody": {"newPriority": 1},
}
_DIALECT = {"/good": ("projectId", "campaignId"), "/item": ("campaignId", "projectId")}
_OWN = Path(__file__).parent / "swagger"
ASSETS = "/swagger/assets"


def _is_null_union(schema: dict[str, Any]) -> bool:
    options = schema.get("oneOf", [])
    return len(options) == 2 and {"type": "null"} in options


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``{"oneOf": [X, {"type": "null"}], ...}`` -> ``X`` with the other keywords."""
    if not _is_null_union(schema):
        return schema
    rest = {key: value for key, value in schema.items() if key != "oneOf"}
    (kept,) = [option for option in schema["oneOf"] if option != {"type": "null"}]
    return {**kept, **rest}


def refine(document: dict[str, Any], *, token_required: bool) -> dict[str, Any]:
    """Make ``document`` (Litestar's generated OpenAPI, as a dict) tell what the server does;
    changed in place and returned."""
    components = document.setdefault("components", {})
    for name, example in BODY_EXAMPLES.items():
        if name in components.get("schemas", {}):
            components["schemas"][name]["additionalProperties"] = False
            components["schemas"][name]["examples"] = [example]
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "HEXMARKET_API_TOKEN; required by POST, PUT, PATCH and DELETE only "
            "when it is set.",
        }
    }
    for path, item in document.get("paths", {}).items():
        dialect = next(
            (names for prefix, names in _DIALECT.items() if path.startswith(prefix)), None
        )
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            parameters = operation.get("parameters", [])
            if dialect is not None and any(p["name"] == dialect[0] for p in parameters):
                parameters = [p for p in parameters if p["name"] != dialect[1]]
                for parameter in parameters:
                    if parameter["name"] == dialect[0]:
                        parameter["required"] = True
            for parameter in parameters:
                if parameter["name"] in EXAMPLES:
                    parameter["example"] = EXAMPLES[parameter["name"]]
                if parameter.get("in") == "query":
                    parameter["schema"] = _not_null(parameter["schema"])
                if parameter.get("in") == "path" and parameter["name"] == "order_uid":
                    parameter["schema"] = {
                        "type": "string",
                        "pattern": ORDER_UID_PATTERN,
                        "minLength": 1,
                        "maxLength": 64,
                    }
            if parameters:
                operation["parameters"] = parameters
            if method.upper() in MUTATING:
                if token_required:
                    operation["security"] = [{"bearer": []}]
                else:
                    operation["responses"].pop("401", None)
    return document


class LocalSwaggerUI(SwaggerRenderPlugin):
    """Swagger UI from the installed package; the page has no inline script or style."""

    def __init__(self, *, path: str = "/swagger") -> None:
        base = f"/schema{ASSETS}"
        super().__init__(
            js_url=f"{base}/swagger-ui-bundle.js",
            css_url=f"{base}/swagger-ui.css",
            standalone_preset_js_url=f"{base}/swagger-ui-standalone-preset.js",
            path=path,
            favicon=f"<link rel='icon' type='image/png' href='{base}/favicon-32x32.png'>",
            style="",
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = re.sub(r"[^\w .-]", "", str(openapi_schema["info"]["title"]))
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} API</title>
  {self.favicon}
  <link rel="stylesheet" href="{self.css_url}">
  <link rel="stylesheet" href="/schema{ASSETS}/hexmarket-swagger.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{self.js_url}"></script>
  <script src="{self.standalone_preset_js_url}"></script>
  <script src="/schema{ASSETS}/hexmarket-swagger.js"></script>
</body>
</html>
""".encode()

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        router.register(
            create_static_files_router(
                path=ASSETS,
                directories=[_OWN, Path(swagger_ui_bundle.swagger_ui_path)],
                include_in_schema=False,
            )
        )


def not_found_envelope(response: Response[Any]) -> Response[Any]:
    """The schema router's answer to an unknown ``/schema/...`` path: the JSON envelope 404
    (Litestar's own is an HTML page)."""
    if response.status_code == 404 and response.media_type == MediaType.HTML:
        not_found = envelope(404, CODE_NOT_FOUND, "errors.common.notFound")
        not_found.media_type = MediaType.JSON  # not the route's HTML
        return not_found
    return response
