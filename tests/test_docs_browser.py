"""/docs in a real browser (Debian's chromium, driven by Playwright), under a host name other than localhost:
"Try it out" on POST /users works, and the page makes no request to another host and logs no console error."""

import os

import pytest
from helpers import CHROMIUM, chromium

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="chromium not installed (`make test` installs it as root)"
)
HOST = "taskapi.example"  # mapped to 127.0.0.1 inside the browser only: not localhost, as on a real deployment


def test_docs_page_tries_post_users_and_stays_on_its_own_host(gunicorn_server):
    origin = f"http://{HOST}:{gunicorn_server['port']}"
    foreign, console_errors, page_errors = [], [], []
    with chromium(HOST) as browser:
        page = browser.new_page()
        page.on("request", lambda r: None if r.url.startswith(origin) else foreign.append(r.url))
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        page.on("response", lambda r: console_errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(origin + "/docs", wait_until="networkidle")
        operation = page.locator("#operations-users-createUser")
        operation.locator(".opblock-summary").click()
        operation.get_by_role("button", name="Try it out").click()
        with page.expect_response(lambda r: r.url == origin + "/users" and r.request.method == "POST") as answer:
            operation.get_by_role("button", name="Execute").click()
        assert answer.value.status == 201
        shown = operation.locator(".live-responses-table tbody .response-col_status").first
        shown.wait_for()
        assert shown.inner_text().strip().startswith("201")  # what the page shows its reader
    assert not foreign, foreign
    assert not console_errors and not page_errors, console_errors + page_errors
