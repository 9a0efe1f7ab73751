"""One implementation of each endpoint: the single-request tests of tasks, versions, task fields, isolation and the
quota, run again with every request a batch can carry sent as a batch of one and its response unwrapped.

The tests are those of their modules, imported unchanged; only their `client` (and the quota's own client) is
BatchOfOne here. What a batch cannot carry goes alone, as in those modules: requests outside the task and list
routes (registering and deleting users, /changes), paths no route serves (404/405 alone; a batch refuses them as
malformed), bodies that are not a JSON object (415, INVALID_JSON), and headers a request of a batch may not have
(Idempotency-Key). Deselected: the tests that assert headers a response inside a batch does not carry.
"""

import json
import re
from urllib.parse import urlencode

import pytest
from test_isolation import *  # noqa: F403
from test_quota import *  # noqa: F403
from test_task_fields import *  # noqa: F403
from test_tasks import *  # noqa: F403
from test_versions import *  # noqa: F403
from werkzeug.exceptions import HTTPException

from taskapi import create_app
from taskapi.db import close_pool
from taskapi.payload import compact

USER_PATH = re.compile(r"/users/([^/?#]+)/(?:tasks|lists)(?:[/?].*)?")
CARRIED = {"if-match": "If-Match", "if-none-match": "If-None-Match"}
# Headers of the batch's own answer that are every answer's (the app's after-request hooks), kept on the unwrapped one.
EVERY_ANSWERS = ("X-Content-Type-Options", "Cache-Control", "Vary")


class BatchOfOne:
    """Flask's test client, as far as these tests use it, sending each request as a batch of one."""

    def __init__(self, client):
        self.client = client
        self.adapter = client.application.url_map.bind("localhost")

    def get(self, *args, **kwargs):
        return self.open(*args, method="GET", **kwargs)

    def post(self, *args, **kwargs):
        return self.open(*args, method="POST", **kwargs)

    def put(self, *args, **kwargs):
        return self.open(*args, method="PUT", **kwargs)

    def patch(self, *args, **kwargs):
        return self.open(*args, method="PATCH", **kwargs)

    def delete(self, *args, **kwargs):
        return self.open(*args, method="DELETE", **kwargs)

    def open(self, path, method="GET", **kwargs):
        carried = self._carried(path, method, **kwargs)
        if carried is None:
            return self.client.open(path, method=method, **kwargs)
        user, request, authorization = carried
        batch = self.client.post(
            f"/users/{user}/batch",
            data=json.dumps({"requests": [request]}),  # ASCII escapes: a lone surrogate goes as \ud800
            content_type="application/json",
            headers={"Authorization": authorization} if authorization else {},
        )
        if batch.status_code != 200:  # the batch's own path refused it (401, 403, 404 user): as alone
            assert batch.status_code != 400, batch.get_json()  # a request this wrapper may batch was refused
            return batch
        [answer] = batch.get_json()["responses"]
        return self._unwrapped(answer, batch)

    def _carried(self, path, method, json=None, data=None, headers=None, content_type=None, query_string=None):
        """(user, the batch's request, Authorization) when a batch can carry the request, else None."""
        if query_string:
            path += "?" + (query_string if isinstance(query_string, str) else urlencode(query_string))
        given = USER_PATH.fullmatch(path)
        if given is None or "//" in path or "%2f" in path.lower() or not self._routed(path, method):
            return None
        headers = dict(headers or {})
        authorization = headers.pop("Authorization", None)
        if content_type is not None:
            headers["Content-Type"] = content_type
        if headers.pop("Content-Type", "application/json") != "application/json":
            return None
        if any(name.lower() not in CARRIED for name in headers):
            return None
        body = json if data is None else _json_object(data)
        if (method in ("POST", "PUT", "PATCH")) != isinstance(body, dict):
            return None
        request = {"id": "one", "method": method, "path": path, "headers": headers}
        if body is not None:
            request["body"] = body
        return given[1], request, authorization

    def _routed(self, path, method):
        try:
            self.adapter.match(path.partition("?")[0], method)
        except HTTPException:
            return False
        return True

    def _unwrapped(self, answer, batch):
        body = answer["body"]
        response = self.client.application.response_class(
            b"" if body is None else compact(body).encode(), status=answer["status"], headers=answer["headers"]
        )
        if body is None:
            del response.headers["Content-Type"]
        else:
            response.mimetype = "application/json"
        for name in EVERY_ANSWERS:
            if name in batch.headers:
                response.headers[name] = batch.headers[name]
        return response


def _json_object(data):
    """The body `data` (text or bytes) as a client would send it; None unless it is a JSON object in UTF-8."""
    try:
        parsed = json.loads(data)
    except ValueError:  # not JSON, or not UTF-8
        return None
    return parsed if isinstance(parsed, dict) else None


@pytest.fixture
def client(app):
    return BatchOfOne(app.test_client())


@pytest.fixture
def jwt_client(jwt_app):
    return BatchOfOne(jwt_app.test_client())


@pytest.fixture(scope="module")
def small_quota_client(database_url):
    app = create_app({"DATABASE_URL": database_url, "TASKS_PER_USER_MAX": "3"})
    yield BatchOfOne(app.test_client())
    close_pool(app)
