"""The batch blueprint: up to 100 task and list requests sent as one, each run by the handler that serves it alone,
through the app's whole request pipeline, in one transaction (atomic) or each in its own."""

import json
from dataclasses import dataclass

import psycopg
from flask import Blueprint, current_app, g, request
from psycopg.pq import TransactionStatus
from werkzeug.test import EnvironBuilder

from taskapi import apidoc, bounds, db, housekeeping, idempotency
from taskapi.batch_requests import REQUESTS_MAX, parse, resolve, resolved_path
from taskapi.errors import ApiError, FailedDependency, envelope
from taskapi.payload import compact, json_answer, json_object

bp = Blueprint("batch", __name__, url_prefix="/users/<user_id>/batch")
BODY_MAX = 1_048_576


@dataclass
class Answer:
    """One request's response as the batch answers it: body is JSON text (the response's own), or null."""

    id: str
    status: int
    headers: dict
    body: str = "null"

    @property
    def ok(self):
        return 200 <= self.status < 300

    def json(self):
        head = compact({"id": self.id, "status": self.status, "headers": self.headers})
        return f'{head[:-1]},"body":{self.body}}}'


@bp.post("")
@apidoc.operation(
    "runBatch",
    tag="tasks",
    summary="Send many task and list requests as one",
    description=f"1-{REQUESTS_MAX} requests to the user's tasks and lists, each processed exactly as if sent alone,"
    ' in order. A string `"$<id>"` in a later request\'s path or body stands for the `id` of what request `<id>`'
    ' created (`"$$x"` is the text `$x`). `atomic` (default true): all in one transaction, and when one request'
    " fails nothing is applied and the answer holds only its response (`committed: false`). `atomic: false`: each"
    " request commits on its own; one that refers to a failed request is 424 `FAILED_DEPENDENCY`, not processed."
    " A request's `headers` may hold If-Match and If-None-Match only; the batch's Authorization applies to every"
    " request. With an Idempotency-Key the whole batch is replayable; a batch that committed nothing is not stored."
    " The body may be up to 1 MiB; the task pages it asks for share one page's 1 MiB (later ones end early, with"
    " their `next_cursor`).",
    parameters=[apidoc.IDEMPOTENCY_KEY],
    body="Batch",
    example={
        "requests": [
            {"id": "milk", "method": "POST", "path": "/users/me/tasks", "body": {"title": "Buy milk"}},
            {"id": "done", "method": "PATCH", "path": "/users/me/tasks/$milk", "body": {"is_completed": True}},
        ]
    },
    success=apidoc.ok("The responses (all of them, or the one that failed an atomic batch).", "BatchAnswer"),
    errors=("400", "404user", "409inuse", "413batch", "415", "422"),
)
def run_batch(user_id):
    request.max_content_length = BODY_MAX + 1  # as READ_LIMIT: one byte more tells an oversized chunked body
    body = json_object(BODY_MAX)
    batch = parse(body, current_app, user_id, g.get("caller_id"))
    with housekeeping.deferred():
        return idempotency.create_once(user_id, body, lambda conn: run(conn, batch))


def run(conn, batch):
    """The batch's answer, its requests' statements all on `conn`; Unstored when it committed nothing, so that an
    Idempotency-Key does not keep it."""
    # Its task pages share one answer's bytes, as if the batch were one page (each still holds a task).
    with db.shared(conn), bounds.shared_answer():
        return _atomic(conn, batch.requests) if batch.atomic else _each_alone(conn, batch.requests)


def _atomic(conn, requests):
    created, answers = {}, []
    with conn.transaction():  # raising out of it (Unstored) rolls every request back
        for sub in requests:
            answer = _dispatch(conn, sub, created)
            if not answer.ok:
                raise idempotency.Unstored(_answer(False, [answer]))
            answers.append(answer)
    return _answer(True, answers)


def _each_alone(conn, requests):
    """Each request in its own transaction (a savepoint inside the Idempotency-Key's, when the batch has one: then
    they commit together with the stored answer, and a retry can never repeat one)."""
    created, failed, answers = {}, set(), []
    for sub in requests:
        if sub.refers & failed:
            answer = _failed_dependency(sub, sub.refers & failed)
        else:
            with conn.transaction():
                answer = _dispatch(conn, sub, created)
                if not answer.ok:
                    raise psycopg.Rollback()
        if not answer.ok:
            failed.add(sub.id)
        answers.append(answer)
    if not any(answer.ok for answer in answers):
        raise idempotency.Unstored(_answer(False, answers))
    return _answer(True, answers)


def _dispatch(conn, sub, created):
    """Run one request through the app's whole pipeline (path checks, authentication, the handler, error handlers,
    after-request hooks) as if it had come alone, carrying the batch's Authorization."""
    try:
        path, body = resolved_path(sub, created), resolve(sub.body, created)
    except KeyError as missing:  # the request it refers to answered without an id
        return _failed_dependency(sub, {missing.args[0]})
    headers = dict(sub.headers)
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    environ = EnvironBuilder(
        path=path,
        method=sub.method,
        headers=headers,
        data=_encoded(body),
        content_type="application/json" if body is not None else None,
        base_url=request.host_url,
        environ_base={"REMOTE_ADDR": request.remote_addr},
    ).get_environ()
    with current_app.request_context(environ):
        response = current_app.full_dispatch_request()
    kept = {name: response.headers[name] for name in ("ETag", "Location") if name in response.headers}
    answer = Answer(sub.id, response.status_code, kept)
    if response.mimetype == "application/json" and response.status_code not in (204, 304):
        answer.body = response.get_data(as_text=True)
    if answer.ok and conn.info.transaction_status == TransactionStatus.INERROR:  # a handler swallowed a database error
        answer = _error(sub, ApiError())
    bounds.spent(bounds.text_bytes(answer.body))
    if answer.ok and sub.kept and answer.status == 201 and "id" in (made := json.loads(answer.body)):
        created[sub.id] = made["id"]
    return answer


def _encoded(body):
    """The body as a client would send it alone: compact UTF-8 JSON. (A lone surrogate, which UTF-8 cannot carry,
    goes as its \\u escape, for the handler to refuse as it would alone.)"""
    if body is None:
        return None
    try:
        return compact(body).encode()
    except UnicodeEncodeError:
        return json.dumps(body, separators=(",", ":")).encode()


def _failed_dependency(sub, failed):
    return _error(sub, FailedDependency(details={"refers_to": sorted(failed)}))


def _error(sub, exc):
    return Answer(sub.id, exc.status, {}, compact(envelope(exc.code, exc.message, exc.details)))


def _answer(committed, answers):
    return json_answer(f'{{"committed":{compact(committed)},"responses":[{",".join(a.json() for a in answers)}]}}')
