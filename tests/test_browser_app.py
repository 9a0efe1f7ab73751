"""A single-page app in a real browser (Debian's chromium, driven by Playwright) on an allowed CORS origin, under
AUTH_MODE=jwt: it registers and then creates (with an Idempotency-Key, replayed), lists, patches with If-Match (a
stale tag gets 412 and the current ETag), deletes and syncs its tasks through `/users/me/...` paths, reading ETag,
Location and Idempotent-Replayed from JS, with no failed request and no console error. A page on another origin is
blocked by the browser."""

import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import running_gunicorn
from helpers import CHROMIUM, SECRET, chromium, token

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="chromium not installed (`make test` installs it as root)"
)
APP, EVIL, API = "app.example", "evil.example", "api.example"  # all mapped to 127.0.0.1 inside the browser only

# The app: `call` records each step (status, the headers JS can read, the body, or why fetch rejected) and stops
# at the first rejected fetch (or script error), so a CORS block names its step.
PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>tasks</title><script>
async function call(results, step, api, auth, method, path, headers = {}, body = undefined) {
  const entry = {step, method, path};
  results.push(entry);
  const init = {method, mode: "cors", headers: {Authorization: auth, ...headers}};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    const response = await fetch(api + path, init);
    entry.status = response.status;
    for (const name of ["ETag", "Location", "Idempotent-Replayed"]) entry[name] = response.headers.get(name);
    const text = await response.text();
    entry.body = text ? JSON.parse(text) : null;
  } catch (e) {
    entry.error = `${e.name}: ${e.message}`;
    throw e;
  }
  return entry;
}

async function runApp(api, auth) {
  const results = [];
  const go = (step, ...rest) => call(results, step, api, auth, ...rest);
  try {
    await go("register", "POST", "/users", {}, {});
    const key = {"Idempotency-Key": `browser-${Date.now()}-${Math.random()}`};  // no crypto.randomUUID on http
    const created = await go("create", "POST", "/users/me/tasks", key, {title: "from the browser"});
    await go("create again", "POST", "/users/me/tasks", key, {title: "from the browser"});
    const path = "/users/me/tasks/" + created.body.id;
    await go("list", "GET", "/users/me/tasks");
    const patched = await go("patch", "PATCH", path, {"If-Match": created.ETag}, {is_completed: true});
    await go("stale patch", "PATCH", path, {"If-Match": created.ETag}, {title: "stale"});
    await go("delete", "DELETE", path, {"If-Match": patched.ETag});
    await go("changes", "GET", "/users/me/changes");
  } catch (e) {
    if (!results.length || !results[results.length - 1].error) results.push({step: "script", error: String(e)});
  }
  return results;
}

async function tryForeign(api, auth) {
  try {
    const response = await fetch(api + "/users/me/tasks", {mode: "cors", headers: {Authorization: auth}});
    return `answered ${response.status}`;
  } catch (e) {
    return `${e.name}: ${e.message}`;
  }
}
</script></head><body><h1>tasks</h1></body></html>"""


class PageHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # the page at every path (favicon included), so nothing the browser asks for fails
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def servers(database_url, tmp_path_factory):
    """The page's server (both page origins: app.example is allowed, evil.example is not) and a jwt gunicorn."""
    pages = ThreadingHTTPServer(("127.0.0.1", 0), PageHandler)
    port = pages.server_address[1]
    threading.Thread(target=pages.serve_forever, daemon=True).start()
    log = tmp_path_factory.mktemp("browser-app") / "gunicorn.log"
    try:
        with running_gunicorn(
            database_url, log, AUTH_MODE="jwt", JWT_SECRET=SECRET, CORS_ORIGINS=f"http://{APP}:{port}"
        ) as server:
            yield {
                "app": f"http://{APP}:{port}",
                "evil": f"http://{EVIL}:{port}",
                "api": f"http://{API}:{server['port']}",
            }
    finally:
        pages.shutdown()
        pages.server_close()


@pytest.fixture
def browser_page():
    """A fresh chromium page, launched as test_docs_browser.py does, and what it reports going wrong."""
    seen = {"failed requests": [], "console errors": [], "page errors": []}
    with chromium(APP, EVIL, API) as browser:
        page = browser.new_page()
        page.on("requestfailed", lambda r: seen["failed requests"].append(f"{r.method} {r.url}: {r.failure}"))
        page.on("console", lambda m: seen["console errors"].append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: seen["page errors"].append(str(e)))
        yield page, seen


def test_single_page_app_on_an_allowed_origin_works_through_users_me(servers, browser_page):
    page, seen = browser_page
    page.goto(servers["app"] + "/", wait_until="load")
    results = page.evaluate("([api, auth]) => runApp(api, auth)", [servers["api"], token(str(uuid.uuid4()))])
    steps = {r["step"]: r for r in results}
    blocked = [r for r in results if "error" in r]
    if blocked:
        first = blocked[0]
        pytest.fail(
            f"step {first['step']!r} failed, {first.get('method')} {first.get('path')}: {first['error']}"
            f"\n{seen}\nsteps: {results}"
        )
    assert len(results) == 8, results

    assert steps["register"]["status"] == 201, steps["register"]
    created, again = steps["create"], steps["create again"]
    task_id = created["body"]["id"]
    assert created["status"] == 201 and created["ETag"] == '"1"', created
    assert created["Location"].endswith(f"/tasks/{task_id}") and created["Idempotent-Replayed"] is None, created
    assert again["status"] == 201 and again["Idempotent-Replayed"] == "true", again
    assert again["body"] == created["body"] and again["ETag"] == created["ETag"], again
    assert steps["list"]["status"] == 200 and [t["id"] for t in steps["list"]["body"]["items"]] == [task_id]
    patched, stale = steps["patch"], steps["stale patch"]
    assert patched["status"] == 200 and patched["body"]["is_completed"] is True, patched
    assert patched["ETag"] and patched["ETag"] != created["ETag"], patched
    assert stale["status"] == 412 and stale["body"]["error"]["code"] == "PRECONDITION_FAILED", stale
    assert stale["ETag"] == patched["ETag"], stale  # the current tag, readable, to re-read and retry
    assert steps["delete"]["status"] == 204, steps["delete"]
    changes = steps["changes"]
    assert changes["status"] == 200 and task_id in [d["id"] for d in changes["body"]["deleted"]], changes
    # chromium logs every 4xx answer as a console error: the 412 asked for is the one expected
    seen["console errors"] = [e for e in seen["console errors"] if "responded with a status of 412" not in e]
    assert not any(seen.values()), seen


def test_a_page_on_another_origin_is_blocked_by_the_browser(servers, browser_page):
    page, seen = browser_page
    page.goto(servers["evil"] + "/", wait_until="load")
    outcome = page.evaluate("([api, auth]) => tryForeign(api, auth)", [servers["api"], token(str(uuid.uuid4()))])
    assert outcome.startswith("TypeError"), outcome
    assert any("CORS policy" in e for e in seen["console errors"]), seen  # blocked by CORS, not by the network
