"""The nginx proxy in front of the API replicas: keep-alive, unbuffered SSE, the upload
limit (see tests/support/deployment.py)."""

from __future__ import annotations

import pytest

from ingest.settings import Settings
from tests.support.deployment import (
    COMPOSE,
    NGINX,
    k8s_resources,
    nginx_block,
    nginx_bytes,
    nginx_effective,
    nginx_http,
    nginx_location,
    nginx_seconds,
    nginx_values,
    services,
)

# --- nginx -------------------------------------------------------------------------


SSE_PATHS = ["/api/v1/jobs/0a1b2c3d4e5f/events", "/api/v1/chat"]
API_PATHS = [*SSE_PATHS, "/api/v1/documents", "/api/v1/search", "/health/ready", "/health/live"]


def test_nginx_config_parses_and_balances_over_an_upstream() -> None:
    upstream = nginx_block(nginx_http(), "upstream", "ingest_api")
    servers = nginx_values(upstream, "server")
    assert servers
    host, port = servers[0][0].rsplit(":", 1)
    assert host in services(COMPOSE)
    assert port == "8000"
    assert nginx_values(upstream, "keepalive"), "keep-alive connections to the replicas"


@pytest.mark.parametrize("path", API_PATHS)
def test_nginx_proxies_with_keep_alive_and_request_headers(path: str) -> None:
    location = nginx_location(path)
    assert nginx_values(location, "proxy_pass") == [["http://ingest_api"]]
    assert nginx_effective(location, "proxy_http_version") == [["1.1"]]
    headers = {args[0].lower(): args[1] for args in nginx_effective(location, "proxy_set_header")}
    assert headers.get("connection") == "", "keep-alive needs an empty Connection header"
    assert headers.get("x-forwarded-for") == "$proxy_add_x_forwarded_for"
    assert headers.get("x-request-id", "").startswith("$")
    # The id sent on is the client's own when it has one.
    (mapping,) = [d for d in nginx_http() if d["directive"] == "map"]
    assert mapping["args"] == ["$http_x_request_id", headers["x-request-id"]]


@pytest.mark.parametrize("path", SSE_PATHS)
def test_nginx_streams_server_sent_events_unbuffered(path: str) -> None:
    location = nginx_location(path)
    assert nginx_effective(location, "proxy_buffering") == [["off"]]
    assert nginx_effective(location, "proxy_cache") == [["off"]]
    (timeout,) = nginx_effective(location, "proxy_read_timeout")
    assert nginx_seconds(timeout[0]) >= 600
    assert nginx_seconds(timeout[0]) > 4 * Settings.model_fields["sse_ping_seconds"].default
    gzip = nginx_effective(location, "gzip")
    gzip_types = " ".join(" ".join(a) for a in nginx_effective(location, "gzip_types"))
    assert gzip in ([], [["off"]]) or "text/event-stream" not in gzip_types


def test_nginx_does_not_buffer_ordinary_api_calls_forever() -> None:
    location = nginx_location("/api/v1/search")
    assert nginx_effective(location, "proxy_buffering") in ([], [["on"]])


def test_nginx_body_limit_equals_the_upload_limit() -> None:
    (size,) = nginx_effective(nginx_location("/api/v1/documents"), "client_max_body_size")
    assert nginx_bytes(size[0]) == Settings.model_fields["max_upload_bytes"].default
    assert "INGEST_MAX_UPLOAD_BYTES" in NGINX.read_text(), "say they change together"
    config_map = k8s_resources("ConfigMap")["ingest-config"]["data"]
    assert int(config_map["INGEST_MAX_UPLOAD_BYTES"]) == nginx_bytes(size[0])
