"""The search page end to end: the real service under uvicorn, Debian's chromium driven by Playwright.

A search typed into the page, a click on the first result, and the click's feedback event in the log with
the request id of the search that showed it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from pathlib import Path
from typing import Iterator

import pytest
from logged import logged_lines

from services.app import build_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
TIMEOUT_MS = 30_000

pytestmark = pytest.mark.browser


def _unavailable(reason: str) -> None:
    """Skip on a developer machine; on CI (``CI=true``) a missing browser is a broken setup, so fail."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run on CI)")
    pytest.skip(reason)


def _sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        _unavailable(f"playwright is not installed ({error}); `pip install -e .[test]`")
    if not CHROMIUM.exists():
        _unavailable(f"chromium not found at {CHROMIUM}; `apt-get install chromium`")
    return sync_playwright


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_service(settings, embedder) -> Iterator[str]:
    """The app under a real uvicorn server in a background thread; yields its base URL."""
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(app=build_app(settings, embedder=embedder), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        for _ in range(600):
            if server.started or not thread.is_alive():
                break
            thread.join(0.05)
        if not server.started:
            pytest.fail(f"uvicorn did not start on 127.0.0.1:{port} (thread alive: {thread.is_alive()})")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "uvicorn did not shut down within 30 s"


def test_search_click_is_logged_with_its_request_id(settings, embedder, small_catalog):
    sync_playwright = _sync_playwright()
    target = next(entity for entity in small_catalog if entity.type == "track")

    with running_service(settings, embedder) as base_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{base_url}/")
            page.fill("input#query", target.title)
            with page.expect_response(lambda response: response.url.endswith("/search")) as search_info:
                page.click("#search-button")
            search = search_info.value
            assert search.status == 200, search.text()
            request_id = search.json()["request_id"]

            page.wait_for_selector("ol#results li[data-entity-id]")
            shown = page.eval_on_selector_all("ol#results li[data-entity-id]", "items => items.map(li => li.dataset.entityId)")
            assert target.id in shown, f"{target.title!r} ({target.id}) not among the results {shown}"

            first = page.locator("ol#results li[data-entity-id]").first
            clicked_id = first.get_attribute("data-entity-id")
            first.locator("a.result").click()
            first.locator("span.recorded", has_text="click recorded").wait_for()
            event_id = first.get_attribute("data-event-id")
        finally:
            browser.close()

    events = [json.loads(line) for line in logged_lines(settings)]
    impressions = [event for event in events if event["kind"] == "impression" and event["request_id"] == request_id]
    assert len(impressions) == 1
    assert impressions[0]["query"]["text"] == target.title
    assert impressions[0]["page"][0]["entity_id"] == clicked_id
    clicks = [
        event for event in events
        if event["kind"] == "feedback" and event["request_id"] == request_id and event["entity_id"] == clicked_id
    ]
    assert [(click["event"], click["position"], click["event_id"]) for click in clicks] == [("click", 1, event_id)]


def test_api_docs_render_without_internet(settings, embedder):
    """/docs loads Swagger UI from this service only; any request elsewhere is refused and counted."""
    sync_playwright = _sync_playwright()
    with running_service(settings, embedder) as base_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            outside: list[str] = []

            def only_local(route) -> None:
                if route.request.url.startswith(base_url):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_local)
            page.goto(f"{base_url}/docs", timeout=TIMEOUT_MS)
            page.locator(".swagger-ui .info .title", has_text="ltrr").wait_for(timeout=TIMEOUT_MS)
            page.locator(".opblock-summary-path", has_text="/search").first.wait_for(timeout=TIMEOUT_MS)
        finally:
            browser.close()
    assert outside == [], f"/docs fetched from outside the service: {outside}"
