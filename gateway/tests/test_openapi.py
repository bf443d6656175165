"""The OpenAPI document lists what every route can answer and which ones need a session."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.dependencies import CurrentUser
from gateway.main import create_app
from gateway.openapi import COMMON_RESPONSES, SESSION_SCHEMES
from gateway.settings import GatewaySettings

PUBLIC = {("get", "/api/health"), ("get", "/api/v1/auth/login"), ("get", "/api/v1/auth/status")}
USER_SCOPED = {("get", "/api/v1/history"), ("post", "/api/v1/sync-jobs/trigger")}


def document(settings: GatewaySettings | None = None, extra: APIRouter | None = None) -> dict:
    app = create_app(settings or GatewaySettings())
    if extra is not None:
        app.include_router(extra)
    return app.openapi()


def operation(doc: dict, method: str, path: str) -> dict:
    return doc["paths"][path][method]


def test_every_operation_documents_the_answers_the_middleware_gives():
    doc = document()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert set(COMMON_RESPONSES) <= set(op["responses"]), (method, path)
    assert doc["components"]["schemas"]["ErrorDetail"]["required"] == ["detail"]


def test_session_routes_list_either_scheme_and_401_public_ones_neither():
    doc = document()
    for method, path in USER_SCOPED:
        op = operation(doc, method, path)
        assert op["security"] == [{name: []} for name in SESSION_SCHEMES]
        assert "401" in op["responses"]
    for method, path in PUBLIC:
        op = operation(doc, method, path)
        assert "security" not in op, (method, path)
        assert "401" not in op["responses"]


def test_a_route_added_later_is_covered_without_a_line_of_its_own():
    router = APIRouter()

    @router.get("/api/v1/things/{thing_id}")
    async def thing(thing_id: str, user: CurrentUser) -> dict:
        return {}

    op = operation(document(extra=router), "get", "/api/v1/things/{thing_id}")
    assert op["security"] and "401" in op["responses"] and "503" in op["responses"]


def test_the_cookie_scheme_follows_the_configured_cookie_name():
    doc = document(GatewaySettings(session_cookie_name="other_cookie"))
    assert doc["components"]["securitySchemes"]["SessionCookie"]["name"] == "other_cookie"
