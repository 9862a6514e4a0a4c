"""The dashboard's files are served from the package and stand on their own."""

from __future__ import annotations

import re
from importlib import resources

import pytest
from fastapi.testclient import TestClient

from fakes.repositories import MemoryRepositories
from opendrs.api.app import create_app

STATIC = ("index.html", "app.js", "style.css")


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(MemoryRepositories()))


def test_the_page_is_served_at_the_root(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'src="static/app.js"' in response.text
    assert 'href="static/style.css"' in response.text
    for section in ('id="hosts"', 'id="alarms"', 'id="alarm-history"', 'id="plans"'):
        assert section in response.text
    assert 'id="banner"' in response.text


@pytest.mark.parametrize(
    ("name", "kind"),
    [("app.js", "javascript"), ("style.css", "text/css"), ("index.html", "text/html")],
)
def test_static_files_are_served_with_their_type(client: TestClient, name: str, kind: str) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert kind in response.headers["content-type"]


def test_a_missing_static_file_is_a_404(client: TestClient) -> None:
    assert client.get("/static/nothing.js").status_code == 404


@pytest.mark.parametrize("name", STATIC)
def test_nothing_is_loaded_from_the_network(name: str) -> None:
    text = resources.files("opendrs.dashboard").joinpath("static", name).read_text("utf-8")
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), name
    assert "@import" not in text


def test_the_script_only_calls_the_v1_api() -> None:
    script = resources.files("opendrs.dashboard").joinpath("static", "app.js").read_text("utf-8")
    paths = set(re.findall(r'["`](v1/[a-z_/]+)', script))
    assert paths == {
        "v1/status",
        "v1/hosts",
        "v1/alarms",
        "v1/alarms/history",
        "v1/action_plans",
        "v1/graphs/hosts/",
    }
