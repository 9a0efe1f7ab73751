"""taskapi: a REST service where each user keeps a list of tasks (Flask + hand-written PostgreSQL)."""

import os
import re

from flask import Flask, current_app, request
from werkzeug.exceptions import NotFound
from werkzeug.middleware.proxy_fix import ProxyFix

# Not imported here: migrate and openapi, which run as `python -m taskapi.migrate` / `-m taskapi.openapi` (runpy
# warns when the package has already imported the module it is asked to run).
from taskapi import auth, batch, changes, config, db, docs, errors, health, labels, lists, logs, metrics, tasks, users
from taskapi.payload import READ_LIMIT, JsonProvider
from taskapi.schemas import parse_path_ids

# The blueprints of the API itself, which the OpenAPI document describes (not docs: the document and its page).
API_BLUEPRINTS = (users.bp, tasks.bp, lists.bp, changes.bp, labels.bp, batch.bp, health.bp)


def create_app(overrides=None):
    """Build the app from the environment; `overrides` (string values, as in the environment) win over it."""
    from taskapi import migrate

    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    app.config.update(config.from_env({**os.environ, **(overrides or {})}))
    app.config.update(MAX_CONTENT_LENGTH=READ_LIMIT, MIGRATION_IDS=migrate.migration_ids())
    # One JSON style in every answer: compact, fields in the documented order, UTF-8 as it is ("Café", not \u
    # escapes: readable, and up to 6x smaller), as PostgreSQL's row_to_json writes the tasks.
    app.json = JsonProvider(app)
    # `//` is not merged into `/` by a redirect (which would name the request's Host): it matches no route, 404.
    app.url_map.merge_slashes = False

    logs.init_app(app)
    metrics.init_app(app)
    errors.init_app(app)
    db.init_app(app)
    auth.init_app(app)
    app.url_value_preprocessor(_path_checks)
    for blueprint in (*API_BLUEPRINTS, docs.bp):
        app.register_blueprint(blueprint)

    app.after_request(_no_type_without_content)
    app.after_request(_answer_headers)

    proxies = app.config["TRUSTED_PROXY_COUNT"]
    if proxies:  # only behind a proxy the operator named; otherwise X-Forwarded-* are ignored
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    return app


def _no_type_without_content(response):
    """204 and 304 answers have no body, so no media type either (Flask would label them text/html). Flask's own
    answer to OPTIONS (an empty 200 with Allow) is a 204, as clients expect of a body-less answer."""
    if request.method == "OPTIONS" and response.status_code == 200 and not response.get_data():
        response.status_code = 204
    if response.status_code in (204, 304):
        del response.headers["Content-Type"]
    return response


# A request line may name the whole URL (`GET http://host/users HTTP/1.1`): its scheme and host are not the path.
ABSOLUTE_FORM = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]*")


def _path_checks(endpoint, values):
    """What every request's path goes through, in this order, in this one place for every route.

    1. A path with `//` anywhere (the leading position included) or an encoded slash (`%2F`) names no resource:
       404, as for any path that matches no route. (A server may decode `%2F` into `/`, or read a leading `//` as
       a host name, and so reach another route than the one the client wrote.)
    2. OPTIONS, a browser's CORS preflight included, is answered from the route alone (its methods; flask-cors
       adds the CORS headers): no token, no id parsed, nothing looked up, so `/users/me/...` preflights are 2xx.
    3. Authentication, and the path's user held to the caller (`me` stands for it), before ids are parsed.
    4. Path ids parsed into UUIDs (404 for anything else).
    """
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
    path = ABSOLUTE_FORM.sub("", raw.split("?", 1)[0])
    if "//" in path or "%2f" in path.lower():
        raise NotFound()
    if request.method == "OPTIONS":
        return
    auth.authorize(endpoint, values)
    parse_path_ids(endpoint, values)


# The docs page loads only its own files; Swagger UI sets inline styles, and the page's icon is a data: URL.
DOCS_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _answer_headers(response):
    """What a browser (and any cache between it and us) needs of every answer: no caching of a user's data (under
    AUTH_MODE=none nothing else would keep a shared cache from storing it), no content sniffing, `Vary: Origin`
    where CORS makes the answer depend on the origin, and a strict policy on the docs page."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.endpoint != "docs.docs_asset":  # Swagger UI's own files, unchanging: conditional caching is fine
        response.headers["Cache-Control"] = "no-store"
    if current_app.config["CORS_ORIGINS"]:
        response.vary.add("Origin")
    if request.endpoint == "docs.docs_page":
        response.headers["Content-Security-Policy"] = DOCS_POLICY
    return response
