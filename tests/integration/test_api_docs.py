"""The API docs page works offline: Swagger UI's assets come from this server."""

from __future__ import annotations

import re

from ingest.settings import Settings
from tests.conftest import CountingEmbedder
from tests.support.api import api_settings, running_api


def test_docs_page_and_its_assets_are_served_locally_and_root_leads_there(
    settings: Settings, embedder: CountingEmbedder
) -> None:
    with running_api(api_settings(settings), embedder) as api:
        client = api.client
        page = client.get("/api/v1/docs")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assert "/api/v1/openapi.json" in page.text

        # Every script, stylesheet and icon the page loads is on this server.
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        assert assets, page.text
        assert not [a for a in assets if "://" in a or a.startswith("//")], assets
        for asset in assets:
            response = client.get(asset)
            assert response.status_code == 200, asset
            assert len(response.content) > 100, asset
        bundle = next(a for a in assets if a.endswith("swagger-ui-bundle.js"))
        # A Swagger UI that renders the OpenAPI 3.1 documents FastAPI writes.
        assert client.get("/api/v1/openapi.json").json()["openapi"].startswith("3.1")
        assert "isOAS31" in client.get(bundle).text

        home = client.get("/", follow_redirects=False)
        assert home.status_code in (302, 307)
        assert home.headers["location"] == "/api/v1/docs"
        browser = client.get("/", headers={"Accept": "text/html,*/*;q=0.8"}, follow_redirects=False)
        assert browser.status_code in (302, 307)
        assert browser.headers["location"] == "/console"
