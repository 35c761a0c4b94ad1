"""CORS (console/cors.py) on a real listener: an allowed origin's page reads /api/... with the
ETag exposed, its preflight gets 204; another origin gets no CORS header and a 403 preflight;
/health never gets CORS headers; with no origins configured nothing changes."""
import pytest
import requests

from goald.console.app import AppContext, make_app
from goald.console.cors import parse_origins
from goald.console.server import HttpServer

ALLOWED = "https://app.example.com"


@pytest.fixture
def base(pool, request):
    origins = getattr(request, "param", (ALLOWED,))
    server = HttpServer(make_app(AppContext(pool=pool, node="n", database="d", embedded=False, cors_origins=origins)),
                        "127.0.0.1", 0)
    server.start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


def test_an_allowed_origin_reads_the_api_with_its_headers_exposed(base):
    r = requests.get(base + "/api/health", headers={"Origin": ALLOWED}, timeout=5)
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "ETag" in r.headers["Access-Control-Expose-Headers"] and "Origin" in r.headers["Vary"]


def test_an_allowed_origins_preflight_gets_204_with_methods_and_headers(base):
    r = requests.options(base + "/api/health", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET",
                                                        "Access-Control-Request-Headers": "If-None-Match"}, timeout=5)
    assert r.status_code == 204 and r.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "GET" in r.headers["Access-Control-Allow-Methods"]
    assert "if-none-match" in r.headers["Access-Control-Allow-Headers"]


def test_another_origin_gets_no_cors_header_and_a_403_preflight_in_the_envelope(base):
    r = requests.get(base + "/api/health", headers={"Origin": "https://evil.example"}, timeout=5)
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    r = requests.options(base + "/api/health", headers={"Origin": "https://evil.example",
                                                        "Access-Control-Request-Method": "GET"}, timeout=5)
    assert r.status_code == 403 and r.json()["error"]["code"] == "cors_refused"


def test_a_preflight_for_a_write_method_is_refused(base):
    r = requests.options(base + "/api/health", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"},
                         timeout=5)
    assert r.status_code == 403 and "POST" in r.json()["error"]["message"]


def test_health_and_ops_paths_never_get_cors_headers(base):
    r = requests.get(base + "/health/pool", headers={"Origin": ALLOWED}, timeout=5)
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers


@pytest.mark.parametrize("base", [()], indirect=True)
def test_with_no_origins_configured_no_answer_has_cors_headers(base):
    r = requests.get(base + "/api/health", headers={"Origin": ALLOWED}, timeout=5)
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers


@pytest.mark.parametrize("base", [("*",)], indirect=True)
def test_a_star_lets_any_origin_read(base):
    r = requests.get(base + "/api/health", headers={"Origin": "https://any.example"}, timeout=5)
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_the_setting_is_parsed_into_origins_without_trailing_slashes():
    assert parse_origins("") == ()
    assert parse_origins(" https://a.example/, https://b.example ") == ("https://a.example", "https://b.example")
    assert parse_origins("https://a.example,*") == ("*",)
