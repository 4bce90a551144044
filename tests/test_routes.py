"""One table of routes: what is served, advertised and described is the same set of paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from authserver.app import create_app
from authserver.config import Settings
from authserver.http.openapi import DOCUMENT
from authserver.http.routes import ROUTES

ISSUER = "https://auth.example.test"


@pytest.fixture
def app(migrated_sqlite_url: str, keys_dir: Path) -> Flask:
    return create_app(Settings(database_url=migrated_sqlite_url, keys_dir=keys_dir, issuer=ISSUER))


def test_every_route_answers_its_methods_and_refuses_others(app: Flask) -> None:
    client = app.test_client()
    for route in ROUTES:
        for method in route.methods:
            response = client.open(route.path, method=method)
            assert response.status_code not in (404, 405), (method, route.path)
        refused = "DELETE"
        response = client.open(route.path, method=refused)
        assert response.status_code == 405, route.path
        assert set(response.headers["Allow"].replace(" ", "").split(",")) >= set(route.methods)


def test_openapi_describes_exactly_the_routes() -> None:
    described = {
        (path, method.upper()) for path, item in DOCUMENT["paths"].items() for method in item
    }
    served = {(route.path, method) for route in ROUTES for method in route.methods}
    assert described == {(path, method) for path, method in served if method != "HEAD"}


def test_metadata_advertises_the_routes_under_the_issuer(app: Flask) -> None:
    metadata = app.test_client().get("/.well-known/oauth-authorization-server").get_json()
    advertised = {
        name: value for name, value in metadata.items() if name.endswith(("_endpoint", "_uri"))
    }
    expected = {r.metadata_member: f"{ISSUER}{r.path}" for r in ROUTES if r.metadata_member}
    assert advertised == expected
    assert set(expected) == {
        "token_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "jwks_uri",
    }
