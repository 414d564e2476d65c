"""`serve`'s /docs works offline: Swagger UI's files come from this server (package
swagger-ui-bundle-v2), never from a CDN, like everything the page at / links to."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def client(tiny_checkpoint):
    from fastapi.testclient import TestClient

    from spokenqa.serve.app import create_app

    return TestClient(create_app(tiny_checkpoint))  # no lifespan: no ASR process is started


def test_docs_page_loads_only_from_this_server(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text) + re.findall(r"""url: *['"]([^'"]+)""", page.text)
    assert urls and all(u.startswith("/") for u in urls), urls
    assert "http://" not in page.text and "https://" not in page.text
    for url in [u for u in urls if u.startswith("/docs/")]:
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 500, url
    assert client.get("/redoc").status_code == 404  # not offered: it would load from a CDN
    assert client.get("/docs/../serve.py").status_code == 404
    assert client.get("/docs/index.html").status_code == 404


def test_page_links_work(client):
    html = client.get("/").text
    links = re.findall(r'href="(/[^"]*)"', html)
    assert "/docs" in links
    for link in links:
        assert client.get(link).status_code == 200, link


CHROMIUM = os.environ.get("SPOKENQA_CHROMIUM", "/usr/bin/chromium")


@pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM}")
def test_swagger_ui_renders_with_the_network_cut_off(live_server):
    """Headless Chromium with every request to another host refused, as on a machine offline."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless", "--disable-gpu"])
        try:
            page = browser.new_page()
            outside, problems = [], []
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(live_server.url)
                       else (outside.append(route.request.url), route.abort()))
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(live_server.url + "/docs")
            deadline = time.monotonic() + 30
            while "/v1/answer" not in (page.text_content("body") or ""):
                assert time.monotonic() < deadline, "Swagger UI did not render the API"
                time.sleep(0.1)
            assert "spokenqa" in page.text_content(".swagger-ui .info .title")
            assert not outside, outside
            assert not problems, problems
        finally:
            browser.close()
