"""GET /metrics on the gunicorn master's listener: known traffic through both workers, counted exactly and added
up; no label carries an id or a raw path; a real Prometheus scrapes the same numbers; the pool and breaker of a
service whose database is down; and no metrics at all when turned off. The alerts and the dashboard under deploy/
run in that Prometheus. (Not through nginx: tests/test_nginx.py.)"""

import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from http.client import HTTPConnection
from urllib.parse import quote

import pytest
from conftest import running_gunicorn
from helpers import ROOT, SECRET, bearer, connect, free_port, http, wait_for_lock_waiters
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from taskapi.serve import GUNICORN

PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus" if os.path.exists("/usr/bin/prometheus") else None)
UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.IGNORECASE)
TASKS, TASK = "/users/<user_id>/tasks", "/users/<user_id>/tasks/<task_id>"
# What `traffic` sends, as (method, route template, status): how many. (Besides: the start-up probes of /healthz.)
EXPECTED = {
    ("POST", "/users", "201"): 2,
    ("POST", TASKS, "201"): 4,  # three creates and one idempotent replay
    ("POST", TASKS, "409"): 1,  # over the quota
    ("POST", TASKS, "503"): 1,  # past the statement timeout
    ("GET", TASK, "200"): 5,
    ("GET", TASK, "404"): 1,
    ("GET", TASKS, "401"): 1,
    ("GET", "unmatched", "404"): 1,
    ("OTHER", "unmatched", "405"): 1,
}
EVENTS = {
    "taskapi_auth_failures_total": 1,
    "taskapi_quota_refusals_total": 1,
    "taskapi_idempotent_replays_total": 1,
    "taskapi_unavailable_total": 1,
}


def get_text(port, path):
    """(status, content type, text) of a GET on loopback."""
    conn = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read().decode()
    finally:
        conn.close()


def scrape(port):
    """The listener's /metrics: (content type, text)."""
    status, content_type, text = get_text(port, "/metrics")
    assert status == 200
    return content_type, text


def samples(text):
    """{(sample name, frozenset of its labels): value} of an exposition."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests_by_series(values, route_filter=lambda route: route != "/healthz"):
    found = {}
    for (name, labels), value in values.items():
        labels = dict(labels)
        if name == "taskapi_http_requests_total" and route_filter(labels["route"]):
            found[labels["method"], labels["route"], labels["status"]] = value
    return found


def value(values, name, **labels):
    return values.get((name, frozenset(labels.items())))


def traffic(base, database_url):
    """EXPECTED, sent to a service under AUTH_MODE=jwt with a quota of 3 tasks and a 1 s statement timeout. The
    503 holds one worker for that second while the gets are sent, so they are the other worker's."""
    owner, other = str(uuid.uuid4()), str(uuid.uuid4())
    as_owner, as_other = bearer(owner), bearer(other)
    assert http("POST", base + "/users", {}, as_owner)[0] == 201
    assert http("POST", base + "/users", {}, as_other)[0] == 201
    keyed = {**as_owner, "Idempotency-Key": "metrics-1"}
    status, _, task = http("POST", f"{base}/users/{owner}/tasks", {"title": "first"}, keyed)
    assert status == 201
    for n in (2, 3):
        assert http("POST", f"{base}/users/{owner}/tasks", {"title": f"task {n}"}, as_owner)[0] == 201
    status, headers, _ = http("POST", f"{base}/users/{owner}/tasks", {"title": "first"}, keyed)
    assert status == 201 and headers["Idempotent-Replayed"] == "true"
    assert http("POST", f"{base}/users/{owner}/tasks", {"title": "one too many"}, as_owner)[0] == 409
    assert http("GET", f"{base}/users/{owner}/tasks")[0] == 401
    assert http("GET", f"{base}/nowhere/{owner}", headers=as_owner)[0] == 404
    assert http("BREW", f"{base}/users/{owner}", headers=as_owner)[0] == 405
    assert http("GET", f"{base}/users/{owner}/tasks/{uuid.uuid4()}", headers=as_owner)[0] == 404
    slow = []
    with connect(database_url) as lock:
        lock.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (other,))  # a create for `other` waits on it
        waiting = threading.Thread(
            target=lambda: slow.append(http("POST", f"{base}/users/{other}/tasks", {"title": "held"}, as_other)[0])
        )
        waiting.start()
        wait_for_lock_waiters(database_url)  # the create is now inside its statement, in one worker
        for _ in range(5):
            assert http("GET", f"{base}/users/{owner}/tasks/{task['id']}", headers=as_owner)[0] == 200
        waiting.join(10)
    assert slow == [503]
    return {"ids": (owner, other, task["id"])}


@pytest.fixture(scope="module")
def served(database_url, tmp_path_factory):
    """A jwt gunicorn (2 workers) after `traffic`, its metric files in a directory the test can read."""
    tmp = tmp_path_factory.mktemp("metrics")
    env = {
        "AUTH_MODE": "jwt",
        "JWT_SECRET": SECRET,
        "TASKS_PER_USER_MAX": "3",
        "DB_STATEMENT_TIMEOUT_MS": "1000",
        "TASKAPI_METRICS_DIR": str(tmp / "metrics"),
    }
    with running_gunicorn(database_url, tmp / "gunicorn.log", **env) as server:
        sent = traffic(server["url"], database_url)
        time.sleep(1.5)  # one more round of each worker's pool sampling, after the last request
        yield {**server, **sent, "metrics_dir": tmp / "metrics"}


def test_both_workers_traffic_is_counted_exactly_and_added_up(served):
    content_type, text = scrape(served["health_port"])
    assert content_type.startswith("text/plain; version=0.0.4")
    values = samples(text)
    assert requests_by_series(values) == EXPECTED
    assert requests_by_series(values, lambda route: route == "/healthz")[("GET", "/healthz", "200")] >= 1
    for name, count in EVENTS.items():
        assert value(values, name) == count, name
    duration = "taskapi_http_request_duration_seconds"
    assert value(values, duration + "_count", method="POST", route=TASKS) == 6
    assert value(values, duration + "_bucket", method="POST", route=TASKS, le="+Inf") == 6
    assert value(values, duration + "_bucket", method="POST", route=TASKS, le="0.5") <= 5  # the 503 took 1 s
    assert value(values, duration + "_sum", method="POST", route=TASKS) >= 1.0
    assert value(values, "taskapi_workers") == 2
    assert value(values, "taskapi_http_requests_in_flight") == 0
    assert value(values, "taskapi_db_pool_connections", state="in_use") == 0
    assert value(values, "taskapi_db_pool_connections", state="idle") >= 2  # each worker keeps DB_POOL_MIN_SIZE 1
    assert value(values, "taskapi_db_pool_max_connections") == 8  # 2 workers x DB_POOL_MAX_SIZE 4
    assert value(values, "taskapi_db_pool_waiting_requests") == 0
    assert value(values, "taskapi_db_breaker_open") == 0

    # Each worker wrote its own counter file; each served part of the traffic, and /metrics is their sum.
    per_worker = {}
    for counters in sorted(served["metrics_dir"].glob("counter_*.db")):
        alone = served["metrics_dir"].parent / f"alone-{counters.stem}"
        alone.mkdir(exist_ok=True)
        shutil.copy(counters, alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, str(alone))
        per_worker[counters.stem] = sum(
            sample.value
            for family in registry.collect()
            for sample in family.samples
            if sample.name == "taskapi_http_requests_total" and sample.labels["route"] != "/healthz"
        )
    assert len([n for n in per_worker.values() if n > 0]) == 2, per_worker
    assert sum(per_worker.values()) == sum(EXPECTED.values())


def test_no_label_carries_an_id_or_a_raw_path(served):
    text = scrape(served["health_port"])[1]
    assert not UUID.search(text)
    for known in served["ids"]:
        assert known not in text and known.replace("-", "") not in text
    assert "/nowhere" not in text and "BREW" not in text
    routes = {dict(labels)["route"] for (_, labels) in samples(text) if "route" in dict(labels)}
    assert routes == {"/users", TASKS, TASK, "unmatched", "/healthz"}


def test_a_second_gunicorn_given_the_same_metrics_directory_refuses_to_start(served, database_url):
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TASKAPI_BIND": f"127.0.0.1:{free_port()}",
        "TASKAPI_HEALTH_BIND": f"127.0.0.1:{free_port()}",
        "TASKAPI_METRICS_DIR": str(served["metrics_dir"]),
    }
    result = subprocess.run(GUNICORN, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1 and "in use by another gunicorn" in lines[0], lines
    assert value(samples(scrape(served["health_port"])[1]), "taskapi_workers") == 2  # the first one's files intact


def test_a_real_prometheus_scrapes_the_same_numbers(served, tmp_path):
    assert PROMETHEUS or not os.environ.get("CI"), "prometheus is required in CI (`make test` installs it)"
    if PROMETHEUS is None:
        pytest.skip("prometheus not installed (`make test` installs it as root)")
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        f"rule_files: ['{ROOT / 'deploy' / 'prometheus-alerts.yml'}']\n"
        "scrape_configs:\n  - job_name: taskapi\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{served['health_port']}']\n"
    )
    command = [
        PROMETHEUS,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with open(tmp_path / "prometheus.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def api(path):
        status, _, answer = http("GET", f"http://127.0.0.1:{port}/api/v1/{path}")
        assert status == 200 and answer["status"] == "success", answer
        return answer["data"]

    def query(promql):
        result = api(f"query?query={quote(promql)}")["result"]
        return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in result}

    try:
        deadline = time.monotonic() + 30
        while True:  # ready (it answers 503 in plain text before), then one scrape done
            try:
                if get_text(port, "/-/ready")[0] == 200 and list(query('up{job="taskapi"}').values()) == [1.0]:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()
            time.sleep(0.2)
        for (method, route, status), count in EXPECTED.items():
            selector = f'taskapi_http_requests_total{{method="{method}",route="{route}",status="{status}"}}'
            assert list(query(selector).values()) == [count], selector
        assert list(query('sum(taskapi_http_requests_total{route!="/healthz"})').values()) == [sum(EXPECTED.values())]
        for name, count in EVENTS.items():
            assert list(query(name).values()) == [count], name
        assert list(query("taskapi_workers").values()) == [2]
        assert list(query("taskapi_db_breaker_open").values()) == [0]
        p99 = 'histogram_quantile(0.99, sum by (le) (taskapi_http_request_duration_seconds_bucket{route="%s"}))'
        assert 0.5 < list(query(p99 % TASKS).values())[0] <= 2.5  # the slowest of 6 creates took 1 s

        # deploy/: every alert evaluates (Prometheus refused to start on one it cannot parse), and every query of
        # the dashboard runs and finds series.
        def rules():
            return [rule for group in api("rules")["groups"] for rule in group["rules"]]

        scrapes = "count_over_time(taskapi_workers[1m])"
        while any(rule["health"] != "ok" for rule in rules()) or list(query(scrapes).values()) < [3]:
            assert time.monotonic() < deadline + 10, rules()  # rules evaluated, and rates have samples to work on
            time.sleep(0.2)
        alerts = {rule["name"] for rule in rules()}
        assert {"TaskapiErrorRate", "TaskapiUnavailable", "TaskapiSlow", "TaskapiBreakerOpen"} <= alerts
        dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
        for target in (target for panel in dashboard["panels"] for target in panel["targets"]):
            promql = target["expr"].replace("$__rate_interval", "1m").replace("$instance", ".*")
            assert query(promql), promql
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_pool_and_breaker_of_a_service_whose_database_is_down(tmp_path):
    """Nothing listens where DATABASE_URL points: each worker's breaker opens, every request is 503, and /metrics
    says so. This gunicorn keeps its files in a temporary directory of its own (the default), gone at exit, and
    counts only its own requests while the module's other gunicorn runs beside it."""
    nowhere = f"postgresql://taskapi@127.0.0.1:{free_port()}/taskapi"
    env = {"DB_POOL_TIMEOUT": "0.5", "DB_CONNECT_TIMEOUT": "1", "TMPDIR": str(tmp_path)}
    with running_gunicorn(nowhere, tmp_path / "gunicorn.log", **env) as server:
        assert len(list(tmp_path.glob("taskapi-metrics-*"))) == 1
        for _ in range(10):
            assert http("GET", f"{server['url']}/users/{uuid.uuid4()}")[0] == 503
        deadline = time.monotonic() + 10
        while True:  # each worker's sampler writes its breaker's state within a second
            values = samples(scrape(server["health_port"])[1])
            if value(values, "taskapi_db_breaker_open") == 2:
                break
            assert time.monotonic() < deadline, "the breakers did not both open"
            time.sleep(0.2)
        assert requests_by_series(values) == {("GET", "/users/<user_id>", "503"): 10}
        assert value(values, "taskapi_unavailable_total") == 10
        assert value(values, "taskapi_db_pool_connections", state="idle") == 0
    assert not list(tmp_path.glob("taskapi-metrics-*"))


def test_metrics_off_records_and_serves_nothing(database_url, tmp_path):
    env = {"TASKAPI_METRICS": "off", "TMPDIR": str(tmp_path)}
    with running_gunicorn(database_url, tmp_path / "gunicorn.log", **env) as server:
        assert http("POST", server["url"] + "/users", {})[0] == 201
        status, _, body = http("GET", f"http://127.0.0.1:{server['health_port']}/metrics")
        assert status == 404 and body["error"]["code"] == "NOT_FOUND"
        assert http("GET", f"http://127.0.0.1:{server['health_port']}/healthz")[0] == 200
        assert not list(tmp_path.glob("taskapi-metrics-*"))
